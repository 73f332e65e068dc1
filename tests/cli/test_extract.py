"""`chatocr extract`: one document, formats, batch output, resume after failures and partial lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from chatocr.cli.main import main
from chatocr.runs.records import read_results
from tests.cli.conftest import jsonl, receipts, script

ARGS = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt", "--keys", "company,total"]


def test_one_document_prints_a_table_of_fields(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (doc,) = receipts(home / "in", 1)
    assert main(["extract", str(doc), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "company" in out and "SHOP ABC SDN BHD" in out and "grounded" in out and "1.00" in out
    assert "scenario retail_receipt via given" in out and "1 call(s)" in out


def test_one_document_as_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (doc,) = receipts(home / "in", 1)
    assert main(["extract", str(doc), *ARGS, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["values"] == {"company": "SHOP ABC SDN BHD", "total": "9.00"}
    assert data["fields"]["total"]["status"] == "grounded"
    assert data["input"]["path"] == str(doc.resolve())


def test_values_format_is_the_short_grounded_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (doc,) = receipts(home / "in", 1)
    assert main(["extract", str(doc), *ARGS, "--format", "values"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["values"] == {"company": "SHOP ABC SDN BHD", "total": "9.00"}
    total = data["fields"]["total"]
    assert total["status"] == "grounded" and total["normalized"] == "9.00"
    assert total["boxes"] and len(total["boxes"][0]["box"]) == 8
    assert "calls" not in data and data["route"] == "given"


def test_batch_appends_and_a_rerun_skips_what_is_done(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = receipts(home / "in", 4)
    out = home / "results.jsonl"
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 0
    assert sorted(r["input"]["path"] for r in jsonl(out)) == sorted(str(d.resolve()) for d in docs)
    receipts(home / "in", 6)  # two more documents arrive
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 0
    assert "resuming: 4 of 6" in capsys.readouterr().err
    assert len({r["input"]["path"] for r in jsonl(out)}) == len(jsonl(out)) == 6
    (key, result), *_ = read_results(out)
    assert result.values["total"] == "9.00" and key[0].endswith(".txt")


def test_a_failed_document_fails_the_run_and_is_retried_without_duplicates(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipts(home / "in", 3)
    blank = home / "in" / "blank.txt"
    blank.write_text("   \n", encoding="utf-8")
    out = home / "results.jsonl"
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "has no text" in err and "3 done, 1 failed" in err
    assert [r["ok"] for r in jsonl(out)].count(False) == 1
    blank.write_text("SHOP ABC SDN BHD\nTOTAL 9.00\n", encoding="utf-8")  # the author fixes the input
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 0
    records = jsonl(out)
    assert len(records) == 4 and all(r["ok"] for r in records)


def test_a_half_written_last_line_is_repaired(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    receipts(home / "in", 3)
    out = home / "results.jsonl"
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2], encoding="utf-8")  # died mid-write
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 0
    assert "removed a half-written last line" in capsys.readouterr().err
    records = jsonl(out)
    assert len(records) == 3 and len({r["input"]["path"] for r in records}) == 3


def test_a_changed_file_is_done_again_and_its_new_line_replaces_the_old(home: Path) -> None:
    (doc,) = receipts(home / "in", 1)
    out = home / "results.jsonl"
    assert main(["extract", str(doc), *ARGS, "--out", str(out)]) == 0
    (old,) = jsonl(out)
    doc.write_text("SHOP ABC SDN BHD\nTOTAL 9.00\nthank you\n", encoding="utf-8")
    assert main(["extract", str(doc), *ARGS, "--out", str(out)]) == 0
    (new,) = jsonl(out)  # every document exactly once: the newest result per path
    assert new["input"]["path"] == old["input"]["path"] and new["input"]["sha256"] != old["input"]["sha256"]


def test_csv_output_resumes_and_checks_its_columns(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    receipts(home / "in", 2)
    out = home / "results.csv"
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 0
    assert main(["extract", str(home / "in"), *ARGS, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 2 and rows[0]["total"] == "9.00" and rows[0]["total.status"] == "grounded"
    assert main(["extract", str(home / "in"), *ARGS[:-1], "company", "--out", str(out)]) == 1
    assert "has the columns" in capsys.readouterr().err


def test_unknown_scenario_and_empty_folder_are_clear_errors(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "empty").mkdir()
    assert main(["extract", str(home / "empty"), "--llm", "scripted", "--ocr", "text"]) == 1
    assert "No text files" in capsys.readouterr().err
    receipts(home / "in", 1)
    typo = ["--scenario", "retail_reciept"]
    assert main(["extract", str(home / "in"), "--llm", "scripted", "--ocr", "text", *typo]) == 1
    assert "Did you mean 'retail_receipt'?" in capsys.readouterr().err


def test_draw_writes_a_png_with_the_fields(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"
    label = json.loads((fixtures / "labels" / "X00016469612.json").read_text(encoding="utf-8"))
    script(monkeypatch, [{"company": "BOOK TA .K(TAMAN DAYA) SDN BND", "total": "9.00"}])
    source = fixtures / "ocr" / "X00016469612.json"
    assert label["total"] == "9.00"
    assert main(["extract", str(source), *ARGS, "--draw", str(home / "pics")]) == 0
    (png,) = (home / "pics").glob("*.png")
    with Image.open(png) as image:
        assert image.width > 400 and image.height > 400


@pytest.mark.slow
def test_a_real_receipt_image_with_rapid_ocr_is_grounded_and_drawn(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    image = Path(__file__).resolve().parent.parent / "fixtures" / "sroie" / "images" / "X00016469612.jpg"
    script(monkeypatch, [{"date": "25/12/2018", "total": "9.00"}])
    code = main(
        [
            "extract",
            str(image),
            "--llm",
            "scripted",
            "--ocr",
            "rapid",
            "--scenario",
            "retail_receipt",
            "--keys",
            "date,total",
            "--format",
            "json",
            "--draw",
            str(home / "pics"),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fields"]["date"]["status"] == "grounded" and data["fields"]["date"]["evidence"]
    assert len(list((home / "pics").glob("X00016469612-*.png"))) == 1
