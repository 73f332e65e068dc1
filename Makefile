# The two quick-start commands (README.md) and a few helpers.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast lint bench

setup:
	bash scripts/setup.sh

# The main job on the offline defaults, on a sample shipped in the repo.
demo: setup
	$(VENV)/bin/chatocr plan samples/invoice.txt --scenario vat_invoice --keys invoice_number,issue_date,seller_name,total_amount --limits ernie-2000

# The whole test suite, slow tests (real OCR engines, real local model) included. CI runs this.
test:
	bash scripts/setup.sh --test
	$(PY) -m pytest

test-fast:
	$(PY) -m pytest -m "not slow"

lint:
	$(VENV)/bin/ruff check chatocr tests benchmarks
	$(VENV)/bin/mypy

bench:
	$(PY) benchmarks/bench_planner.py
