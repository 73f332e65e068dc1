"""An isolated home for each corpus case, and the corpus's summary line at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

_outcomes: dict[str, str] = {}


@pytest.fixture
def corpus_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh HOME and working directory: no user config, keys file or scripted answers leak in."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    for name in (
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "CHATOCR_KEYS_FILE",
        "CHATOCR_LLM",
        "CHATOCR_OCR",
        "CHATOCR_SCRIPTED_ANSWERS",
        "CHATOCR_SCENARIO_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.chdir(work)
    yield work


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "test_corpus.py::test_case[" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        _outcomes[report.nodeid] = outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _outcomes:
        return
    met = sum(outcome == "passed" for outcome in _outcomes.values())
    known = sum(outcome == "xfailed" for outcome in _outcomes.values())
    skipped = sum(outcome == "skipped" for outcome in _outcomes.values())
    line = f"bad-input corpus: {len(_outcomes)} cases, {met} met"
    if known:
        line += f", {known} known failure(s) marked xfail"
    if skipped:
        line += f", {skipped} skipped"
    failed = len(_outcomes) - met - known - skipped
    if failed:
        line += f", {failed} NOT met"
    terminalreporter.write_line(line, bold=True, red=bool(failed), green=not failed)
