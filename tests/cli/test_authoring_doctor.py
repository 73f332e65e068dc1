"""`chatocr scenarios new/test`, `chatocr ocr`, `chatocr doctor` and the keys file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from chatocr.cli.main import main
from chatocr.scenarios import load_scenario_file
from tests.cli.conftest import script

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"


def _labelled_set(root: Path) -> Path:
    """The SROIE fixtures in the shared/data layout (images/, labels/, ocr/)."""
    for part in ("images", "labels", "ocr"):
        shutil.copytree(FIXTURES / part, root / part)
    return root


def test_new_writes_a_skeleton_that_validates_once_filled(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = FIXTURES / "ocr" / "X00016469612.json"
    assert (
        main(
            [
                "scenarios",
                "new",
                "my_receipt",
                "--from",
                str(source),
                "--ocr",
                "text",
                "--keys",
                "company,date:date,total:amount",
            ]
        )
        == 0
    )
    path = home / "my_receipt.yaml"
    assert "BOOK TA .K(TAMAN DAYA) SDN BND" in path.read_text(encoding="utf-8")
    assert main(["scenarios", "validate", str(path)]) == 0
    assert "every value is null" in capsys.readouterr().err
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["language"] == "en"
    data["examples"][0]["answer"] = {"company": "BOOK TA .K(TAMAN DAYA) SDN BND", "date": "25/12/2018", "total": "9.00"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["scenarios", "validate", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert load_scenario_file(path).examples[0].answer["total"] == "9.00"
    assert main(["scenarios", "new", "my_receipt", "--from", str(source), "--ocr", "text", "--keys", "a"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_new_refuses_a_bad_name_or_type(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = FIXTURES / "ocr" / "X00016469612.json"
    assert main(["scenarios", "new", "My-Receipt", "--from", str(source), "--ocr", "text", "--keys", "a"]) == 1
    with pytest.raises(SystemExit) as usage:  # an unknown type is a usage error, as in every --keys
        main(["scenarios", "new", "ok", "--from", str(source), "--ocr", "text", "--keys", "a:money"])
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "is not valid" in err and "Unknown type 'money'" in err


def test_scenarios_test_prints_per_field_accuracy(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _labelled_set(home / "set")
    labels = json.loads((data / "labels" / "X00016469612.json").read_text(encoding="utf-8"))
    # Right for the first receipt only: company and total are then 1 of 3.
    script(monkeypatch, [{"company": labels["company"], "date": None, "address": None, "total": labels["total"]}])
    code = main(
        [
            "scenarios",
            "test",
            "retail_receipt",
            "--data",
            str(data),
            "--llm",
            "scripted",
            "--ocr",
            "text",
            "--concurrency",
            "1",
            "-v",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "retail_receipt on set (3 documents)" in out
    assert "NFKC" in out and "expected" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 3}
    assert "1/3" in rows["company"]


def test_ocr_command_prints_text_lines_and_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = str(FIXTURES / "ocr" / "X00016469612.json")
    assert main(["ocr", source, "--engine", "text"]) == 0
    assert "TAN WOON YANN" in capsys.readouterr().out
    assert main(["ocr", source, "--engine", "text", "--lines"]) == 0
    assert "p0-l0" in capsys.readouterr().out
    assert main(["ocr", source, "--engine", "text", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "text"


def test_doctor_reports_keys_as_set_or_not_and_never_their_values(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "")  # recorded, so that the keys file's value is undone too
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-very-secret-value")
    main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    checks = {(c["kind"], c["name"]): c for c in report["checks"]}
    assert checks[("llm", "deepseek")]["ok"] and "DEEPSEEK_API_KEY set" in checks[("llm", "deepseek")]["detail"]
    assert checks[("llm", "dashscope")]["fix"] == "export DASHSCOPE_API_KEY=..."
    assert checks[("ocr", "text")]["ok"] and checks[("llm", "scripted")]["ok"]
    main(["doctor"])
    assert "sk-very-secret-value" not in capsys.readouterr().out


def test_keys_file_must_be_private(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "")  # recorded, so that the keys file's value is undone too
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    keys = home / "keys.toml"
    keys.write_text('DASHSCOPE_API_KEY = "sk-from-the-file"\n', encoding="utf-8")
    monkeypatch.setenv("CHATOCR_KEYS_FILE", str(keys))
    os.chmod(keys, 0o644)
    assert main(["doctor", "--json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    keys_check = next(c for c in report["checks"] if c["name"] == "keys file")
    assert not keys_check["ok"] and keys_check["fix"] == f"Make it private: chmod 600 {keys}"
    assert main(["extract", str(keys), "--llm", "scripted", "--ocr", "text"]) == 1
    assert "can be read by other users" in capsys.readouterr().err
    os.chmod(keys, 0o600)
    main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert next(c for c in report["checks"] if c["name"] == "dashscope")["ok"]
    assert "sk-from-the-file" not in json.dumps(report)
    assert os.environ["DASHSCOPE_API_KEY"] == "sk-from-the-file"
