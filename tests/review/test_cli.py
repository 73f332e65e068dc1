"""`chatocr review` on the command line: bad input gets a typed error and an exit code, lines that
are not results are named, `--export-labels` writes the reviewed documents, a busy port says what
to do."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from chatocr.cli.main import main
from chatocr.review.events import ReviewLog, new_event
from tests.review.conftest import KEYS, ResultsSet


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(tmp_path / "missing.jsonl")]) == 1
    assert "No such results file" in capsys.readouterr().err
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"hello": "world"}\nnot json\n', encoding="utf-8")
    assert main(["review", str(foreign)]) == 1
    assert "No chatocr results" in capsys.readouterr().err
    assert main(["review", str(foreign), "--memory", str(tmp_path), "--no-memory"]) == 2
    assert "contradict" in capsys.readouterr().err


def test_export_labels_and_lines_that_are_not_results(
    results_set: ResultsSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with results_set.results.open("a", encoding="utf-8") as handle:
        handle.write("a line of another program\n")
    first = json.loads(results_set.results.read_text(encoding="utf-8").splitlines()[0])
    document = (first["input"]["path"], first["input"]["sha256"], None)
    ReviewLog(results_set.review_file).append(
        [new_event(document, name, "accept", old=first["values"][name], new=first["values"][name]) for name in KEYS]
    )
    out = tmp_path / "labelled"
    assert main(["review", str(results_set.results), "--export-labels", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{results_set.results}:5: not a chatocr result" in captured.err
    assert "wrote 1 reviewed document(s)" in captured.out and "chatocr eval" in captured.out
    (label,) = (out / "labels").iterdir()
    assert json.loads(label.read_text(encoding="utf-8")) == {k: first["values"][k] for k in KEYS}
    # Nothing reviewed: nothing written, exit 1.
    results_set.review_file.unlink()
    assert main(["review", str(results_set.results), "--export-labels", str(tmp_path / "none")]) == 1


def test_a_busy_port_says_what_to_do(results_set: ResultsSet, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("uvicorn", reason="the serve extra")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["review", str(results_set.results), "--port", str(port)]) == 2
    assert "--port 0" in capsys.readouterr().err
