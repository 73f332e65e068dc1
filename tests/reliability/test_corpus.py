"""The bad-input corpus: one parametrized runner over every case of tests/reliability/cases_*.py.

Each case states the outcome its input must get (a typed error with a hint, an exit code, every
document exactly once, no secret in any file); the runner gives it a fresh folder and an isolated
home and fails it on an unmet expectation, a traceback or a "bug in chatocr" hint. The summary line
("bad-input corpus: N cases, M met") is printed at the end of the run (conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import (  # noqa: F401  (they register cases)
    cases_faults,
    cases_inputs,
    cases_outputs,
    cases_replies,
    cases_schemas,
    cases_serve,
)
from tests.reliability.harness import CASES, Case, Ctx


def _param(item: Case) -> object:
    marks: list[pytest.MarkDecorator] = [pytest.mark.slow] if item.slow else []
    if item.xfail:
        marks.append(pytest.mark.xfail(reason=item.xfail, strict=True))
    return pytest.param(item, id=item.id, marks=marks)


@pytest.mark.parametrize("item", [_param(item) for item in CASES])
def test_case(item: Case, corpus_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The input or fault of `item` gets the outcome `item.expect` says."""
    item.run(Ctx(corpus_home, monkeypatch))


def test_the_corpus_is_at_least_a_hundred_cases_across_every_area() -> None:
    areas = {item.area for item in CASES}
    assert len(CASES) >= 100, len(CASES)
    assert {"image", "pdf", "text", "yaml", "reply", "service", "batch", "security", "cli"} <= areas, areas
    assert len({item.id for item in CASES}) == len(CASES)
