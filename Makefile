# The two quick-start commands (README.md) and a few helpers.
VENV ?= .venv
PY := $(VENV)/bin/python
SHELL := /bin/bash

.PHONY: setup demo plan-demo test test-fast lint bench eval

setup:
	bash scripts/setup.sh

# The main job on the offline defaults (RapidOCR + the local model) on a receipt shipped in the repo:
# prints the grounded JSON (each value, its status, confidence and boxes on the image), then where
# the time went: setup (which also warms the receipt examples' prefix states the first time, ~80 s),
# OCR, model load, the examples' prefix (from disk), the prompt, the generation.
demo:
	@SECONDS=0; bash scripts/setup.sh && echo "[demo] setup: $${SECONDS} s"
	$(VENV)/bin/chatocr extract samples/receipt.jpg --keys company,date,address,total --format values --timings

# How the conversation manager packs a Chinese invoice's examples under ERNIE's 2000-character limit.
plan-demo: setup
	$(VENV)/bin/chatocr plan samples/invoice.txt --scenario vat_invoice --keys invoice_number,issue_date,seller_name,total_amount --limits ernie-2000

# The whole test suite, slow tests (real OCR engines, real local model) included. CI runs this.
test:
	bash scripts/setup.sh --test
	$(PY) -m pytest

test-fast:
	$(PY) -m pytest -m "not slow"

lint:
	$(VENV)/bin/ruff check chatocr tests benchmarks
	$(VENV)/bin/ruff format --check chatocr tests benchmarks
	$(VENV)/bin/mypy

bench:
	$(PY) benchmarks/run_all.py

# Every number in docs/evaluation.md (the real local model on ../shared/data; hours when nothing is
# cached, minutes when it is). Reports go to $(EVAL_OUT); add EVAL_FLAGS=--cached-only to only print.
DATA ?= ../shared/data
EVAL_OUT ?= /tmp/chatocr-eval
EVAL_FLAGS ?=
EVAL := $(VENV)/bin/chatocr eval --llm local --ocr rapid $(EVAL_FLAGS)
eval:
	mkdir -p $(EVAL_OUT)
	$(EVAL) $(DATA)/sroie_train $(DATA)/cn_train_ticket --strategy default --strategy unfocused-all \
		--strategy baseline --out $(EVAL_OUT)/standard.json --markdown $(EVAL_OUT)/standard.md
	$(EVAL) $(DATA)/sroie_train $(DATA)/cn_train_ticket --strategy compare --limit 5 \
		--out $(EVAL_OUT)/compare.json --markdown $(EVAL_OUT)/compare.md
	$(EVAL) $(DATA)/cn_train_ticket --strategy default --no-cache \
		--out $(EVAL_OUT)/tickets.json --markdown $(EVAL_OUT)/tickets.md
