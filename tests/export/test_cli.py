"""`chatocr export ...` and `chatocr eval --strategy tuned` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatocr.cli.main import main
from chatocr.errors import ConfigError
from chatocr.evaluation.strategies import resolve_strategies


def test_export_sft_and_ocr_lines_commands(sroie_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sft"
    code = main(
        [
            "export",
            "sft",
            str(sroie_set),
            "--ocr",
            "text",
            "--llm",
            "scripted",
            "--format",
            "xtuner,openai",
            "--format",
            "alpaca",
            "--out",
            str(out),
            "--val-ratio",
            "0.34",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    files = json.loads(captured.out.strip().splitlines()[-1])["files"]
    assert {"xtuner_train.json", "openai_val.jsonl", "alpaca_train.json", "dataset_info.json"} <= set(files)
    assert "tokens per record (chars)" in captured.err and "retail_receipt" in captured.err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["records"] == 3 and summary["formats"] == ["xtuner", "openai", "alpaca"]

    # Again into the same directory: refused, with what to do.
    assert main(["export", "sft", str(sroie_set), "--ocr", "text", "--llm", "scripted", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err

    code = main(["export", "ocr-lines", str(sroie_set), "--ocr", "text", "--out", str(tmp_path / "rec")])
    assert code == 0 and "line crop(s) from 3 of 3 document(s)" in capsys.readouterr().err
    assert (tmp_path / "rec" / "rec_gt.txt").read_text(encoding="utf-8").count("\n") >= 9


def test_bad_input_is_one_line_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "sft", str(tmp_path / "missing"), "--llm", "scripted", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No such labelled set or results file") and "Traceback" not in err
    assert (
        main(["export", "sft", str(tmp_path), "--llm", "scripted", "--format", "parquet", "--out", str(tmp_path / "o")])
        == 1
    )
    assert "Unknown training-set format 'parquet'" in capsys.readouterr().err


def test_the_tuned_strategy_sends_the_zero_example_conversation_on_its_own_model() -> None:
    (tuned,) = resolve_strategies(["tuned"])
    assert tuned.max_examples == 0 and tuned.llm is None
    (adhoc,) = resolve_strategies(["examples=0,llm=local:/models/tuned.gguf"])
    assert adhoc.llm == "local:/models/tuned.gguf" and "on local:/models/tuned.gguf" in adhoc.label()
    assert "llm" not in resolve_strategies(["default"])[0].settings()  # old cache keys stay valid
    assert adhoc.settings()["llm"] == "local:/models/tuned.gguf"
    with pytest.raises(ConfigError):
        resolve_strategies(["examples=0,llm="])


def test_eval_compares_default_and_tuned_in_one_command(
    sroie_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tuned strategy runs on --tuned-llm, the default one on --llm: two models, one report."""
    # The tuned model (scripted from the environment) answers a total; --llm scripted answers nulls.
    answer = {"company": None, "date": None, "address": None, "total": "9.00"}
    monkeypatch.setenv("CHATOCR_SCRIPTED_ANSWERS", json.dumps([json.dumps(answer)]))
    report = tmp_path / "report.json"
    code = main(
        [
            "eval",
            str(sroie_set),
            "--llm",
            "scripted",
            "--ocr",
            "text",
            "--strategy",
            "default",
            "--strategy",
            "tuned",
            "--tuned-llm",
            "scripted:tuned-model",
            "--no-cache",
            "--quiet",
            "--out",
            str(report),
        ]
    )
    assert code == 0
    data = json.loads(report.read_text(encoding="utf-8"))
    labels = {s["name"]: s["label"] for s in data["strategies"]}
    assert "on scripted:tuned-model" in labels["tuned"] and "examples=0" in labels["tuned"]
    assert "examples=2" in labels["default"]
    predicted = {(row["strategy"], row["fields"]["total"]["predicted"]) for row in data["documents"]}
    assert predicted == {("default", None), ("tuned", "9.00")}
