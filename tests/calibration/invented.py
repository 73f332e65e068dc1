"""An invented labelled set of receipts (no real data) on which one fixed answer is right for some
documents and wrong for others, in the ways real extractions are wrong: the cash handed over taken
for the total (on the page, a failed check), and values that are not on the page at all.

The scripted model answers `ANSWER` to every call, so a run in a subprocess (where no function
can be handed to the backend) is deterministic whatever the order of calls and re-asks."""

from __future__ import annotations

import json
from pathlib import Path

ANSWER = {
    "company": "ACME TRADING SDN BHD",
    "date": "01/02/2019",
    "address": "12 JALAN MAJU, 50000 KL",
    "total": "9.00",
}


def _receipt(company: str, date: str, total: str, cash: str) -> list[str]:
    return [
        company,
        "12 JALAN MAJU, 50000 KL",
        "TAX INVOICE",
        f"DATE: {date}",
        "BREAD  1  4.00",
        "MILK  1  3.50",
        f"TOTAL  {total}",
        f"CASH  {cash}",
        "THANK YOU",
    ]


def write_receipts(root: Path, right: int = 10, cash: int = 5, other: int = 5) -> Path:
    """`right` receipts the answer reads right, `cash` whose total the answer takes from the CASH
    row, `other` of another shop and day (nothing of the answer on the page but the address)."""
    (root / "labels").mkdir(parents=True)
    (root / "ocr").mkdir()
    kinds = ["right"] * right + ["cash"] * cash + ["other"] * other
    for number, kind in enumerate(kinds):
        company, date, total, paid = ANSWER["company"], ANSWER["date"], ANSWER["total"], "10.00"
        if kind == "cash":
            total, paid = f"{7 + number % 2}.{number:02d}", ANSWER["total"]
        elif kind == "other":
            company, date, total = f"KEDAI {number} ENTERPRISE", f"0{1 + number % 9}/03/2018", f"{20 + number}.50"
        lines = _receipt(company, date, total, paid)
        ocr = [{"text": text, "box": [10, 40 * i, 500, 40 * i + 30]} for i, text in enumerate(lines)]
        labels = {"company": company, "date": date, "address": ANSWER["address"], "total": total}
        name = f"r{number:02d}"
        (root / "ocr" / f"{name}.json").write_text(json.dumps(ocr), encoding="utf-8")
        (root / "labels" / f"{name}.json").write_text(json.dumps(labels), encoding="utf-8")
    return root
