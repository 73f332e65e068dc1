"""The review queue at the command line, the way a person uses it: `chatocr calibrate` on labelled
documents writes the calibration beside the scenario, then `chatocr extract` says how many fields
it accepted and which to review, for one document and many; a bad calibration file is one warning.

The documents are invented (tests/calibration/invented.py) and the scripted backend answers the
same values to every document: right on some, the CASH line or another shop's values on others."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chatocr.calibration import read_calibration
from chatocr.resources import builtin_scenarios_dir
from tests.calibration.invented import ANSWER, write_receipts
from tests.cli.conftest import CHATOCR, env, script

BACKEND = ["--llm", "scripted", "--ocr", "text"]
KEYS = ["--scenario", "retail_receipt", "--keys", "company,date,address,total"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHATOCR), *args], capture_output=True, text=True, env=env(), cwd=cwd, timeout=180)


@pytest.fixture
def calibrated(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user scenario folder with retail_receipt, calibrated by `chatocr calibrate` on 20 invented
    receipts; the labelled set is home/set."""
    folder = home / "scenarios"
    folder.mkdir()
    shutil.copy(builtin_scenarios_dir() / "retail_receipt.yaml", folder / "retail_receipt.yaml")
    monkeypatch.setenv("CHATOCR_SCENARIO_PATH", str(folder))
    script(monkeypatch, [ANSWER])
    write_receipts(home / "set")
    done = _run("calibrate", str(home / "set"), "--scenario", "retail_receipt", *BACKEND, "-q", cwd=home)
    assert done.returncode == 0, done.stderr
    target = folder / "retail_receipt.calibration.json"
    assert (
        f"calibration for retail_receipt: {target} (fitted with scripted:scripted on 20 documents, 80 fields"
        in done.stderr
    )
    assert "coverage at 99 %" in done.stdout and "final_amount" in done.stdout  # the held-out tables
    loaded = read_calibration(target, "retail_receipt")
    assert loaded.calibration is not None and loaded.warning is None
    return folder


def _table(out: str) -> list[tuple[str, float, str]]:
    """(field, confidence, decision) of each row of the fields table, in the order shown."""
    rows = []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 5 and cells[0] in ("company", "date", "address", "total"):
            rows.append((cells[0], float(cells[3]), cells[4]))
    return rows


def test_one_document_says_what_is_accepted_and_lists_the_fields_to_review_first(home: Path, calibrated: Path) -> None:
    cash = home / "set" / "ocr" / "r12.json"  # TOTAL 7.12, CASH 9.00: the answer's total is the cash
    done = _run("extract", str(cash), *KEYS, *BACKEND, cwd=home)
    assert done.returncode == 0, done.stderr
    rows = _table(done.stdout)
    assert len(rows) == 4 and rows[0][0] == "total" and rows[0][2] == "review"  # the wrong total first
    decisions = [decision for _, _, decision in rows]
    review = decisions.count("review")
    assert decisions == ["review"] * review + ["accepted"] * (4 - review)  # the fields to review first ...
    confidences = [confidence for _, confidence, _ in rows[:review]]
    assert confidences == sorted(confidences)  # ... lowest confidence first
    summary = re.search(
        r"(\d) of 4 fields accepted, (\d) to review \(accepted at calibrated confidence >= (0\.\d{3})", done.stdout
    )
    assert summary is not None and (int(summary[1]), int(summary[2])) == (4 - review, review)
    threshold = float(summary[3])
    right = _run("extract", str(home / "set" / "ocr" / "r00.json"), *KEYS, *BACKEND, cwd=home)
    assert _table(right.stdout)[-1][2] == "accepted" and "fields accepted" in right.stdout
    values = _run("extract", str(cash), *KEYS, *BACKEND, "--format", "values", cwd=home)
    data = json.loads(values.stdout)
    assert data["needs_review"] is True and data["to_review"][0] == "total" and len(data["to_review"]) == review
    assert data["fields"]["total"]["decision"] == "review" and data["fields"]["total"]["calibrated"] is True
    # the table rounds to two places; the record's confidences decide against the threshold exactly
    fields = data["fields"]
    assert all((fields[f]["confidence"] >= threshold) == (fields[f]["decision"] == "accepted") for f in fields)


def test_many_documents_sum_up_the_review_queue(home: Path, calibrated: Path) -> None:
    out = home / "results.jsonl"
    done = _run("extract", str(home / "set" / "ocr"), *KEYS, *BACKEND, "--out", str(out), cwd=home)
    assert done.returncode == 0, done.stderr
    summary = re.search(
        r"20 done, 0 failed; (\d+) of 80 fields accepted, (\d+) to review \(in (\d+) documents\)", done.stderr
    )
    assert summary is not None, done.stderr
    accepted, review, documents = map(int, summary.groups())
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    decisions = [f["decision"] for r in records for f in r["fields"].values()]
    assert decisions.count("accepted") == accepted and decisions.count("review") == review == 80 - accepted
    assert documents == sum(any(f["decision"] == "review" for f in r["fields"].values()) for r in records) >= 10
    table = _run("extract", str(home / "set" / "ocr"), *KEYS, *BACKEND, cwd=home)
    assert f"{accepted} of 80 fields accepted, {review} to review" in table.stderr
    assert "to review" in table.stdout  # the table's column


def test_accept_options_choose_the_rule(home: Path, calibrated: Path) -> None:
    doc = str(home / "set" / "ocr" / "r12.json")
    everything = _run("extract", doc, *KEYS, *BACKEND, "--accept-threshold", "0", cwd=home)
    assert "4 of 4 fields accepted, 0 to review (accepted at calibrated confidence >= 0.000: threshold 0 (given))" in (
        everything.stdout
    )
    nothing = _run("extract", doc, *KEYS, *BACKEND, "--accept-precision", "1", cwd=home)
    assert "0 of 4 fields accepted, 4 to review; no threshold held out 100% precision" in nothing.stdout
    wrong = _run("extract", doc, *KEYS, *BACKEND, "--accept-precision", "99", cwd=home)
    assert wrong.returncode == 2 and "accept_precision must be in (0, 1], got 99.0" in wrong.stderr


@pytest.mark.parametrize(
    "text", ["{not json", '{"format": "chatocr.calibration", "version": 1, "scenario": "retail_receipt"}']
)
def test_a_bad_calibration_file_is_one_warning_and_no_crash(home: Path, calibrated: Path, text: str) -> None:
    target = calibrated / "retail_receipt.calibration.json"
    target.write_text(text, encoding="utf-8")
    done = _run("extract", str(home / "set" / "ocr" / "r00.json"), *KEYS, *BACKEND, cwd=home)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: calibration ")]
    assert len(warnings) == 1 and "the uncalibrated confidence is used" in " ".join(done.stdout.split())
    assert "0 of 4 fields accepted, 4 to review; no calibration for scenario 'retail_receipt'" in done.stdout
