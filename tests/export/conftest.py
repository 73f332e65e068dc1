"""Small labelled sets for export tests: the SROIE fixtures (real receipts, with attribution, in
tests/fixtures) and synthetic train tickets written to a temporary directory (no real ticket data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chatocr.api import ChatOCR
from chatocr.export.backend import export_chat

# The datasets library must never reach the hub from a test.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SROIE = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"

# (OCR lines, labels) of synthetic tickets: t1 and t3 share a passenger, t2 and t4 a ticket number
# inside the barcode line, so redaction's consistency is visible.
TICKETS: dict[str, tuple[list[str], dict[str, str]]] = {
    "t1": (
        [
            "Q012345",
            "东山站  G101  西河站",
            "2019年01月02日08:09开  03车04A号",
            "￥55.5元  二等座",
            "1101011990****1234张三",
            "3201901020000Q012345 东山售",
        ],
        {
            "ticket_num": "Q012345",
            "starting_station": "东山站",
            "destination_station": "西河站",
            "train_num": "G101",
            "date": "2019年01月02日08:09开",
            "seat_number": "03车04A号",
            "ticket_grade": "二等座",
            "ticket_price": "￥55.5元",
            "name": "1101011990****1234张三",
        },
    ),
    "t2": (
        [
            "R067890",
            "南岭站  K22  北原站",
            "2018年05月06日21：30开  12车无座",
            "￥18.0元  新空调硬座",
            "2202021985****5678李四",
        ],
        {
            "ticket_num": "R067890",
            "starting_station": "南岭站",
            "destination_station": "北原站",
            "train_num": "K22",
            "date": "2018年05月06日21:30开",
            "seat_number": "12车无座",
            "ticket_grade": "新空调硬座",
            "ticket_price": "￥18.0元",
            "name": "2202021985****5678李四",
        },
    ),
    "t3": (
        [
            "S024680",
            "西河站  D7  东山站",
            "2019年02月03日10:11开  05车06F号",
            "￥60.0元  一等座",
            "1101011990****1234张三",
        ],
        {
            "ticket_num": "S024680",
            "starting_station": "西河站",
            "destination_station": "东山站",
            "train_num": "D7",
            "date": "2019年02月03日10:11开",
            "seat_number": "05车06F号",
            "ticket_grade": "一等座",
            "ticket_price": "￥60.0元",
            "name": "1101011990****1234张三",
        },
    ),
}


def write_ticket_set(root: Path, tickets: dict[str, tuple[list[str], dict[str, str]]] = TICKETS) -> Path:
    (root / "labels").mkdir(parents=True)
    (root / "ocr").mkdir()
    for doc_id, (lines, labels) in tickets.items():
        ocr = [{"text": t, "box": [10, 30 * i + 10, 400, 30 * i + 30]} for i, t in enumerate(lines)]
        (root / "ocr" / f"{doc_id}.json").write_text(json.dumps(ocr, ensure_ascii=False), encoding="utf-8")
        (root / "labels" / f"{doc_id}.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    return root


@pytest.fixture
def ticket_set(tmp_path: Path) -> Path:
    return write_ticket_set(tmp_path / "cn_train_ticket_tiny")


@pytest.fixture
def sroie_set() -> Path:
    return SROIE


@pytest.fixture
def chat() -> ChatOCR:
    """Planning for the scripted backend (character counter, 8192-token window), reading OCR text."""
    return export_chat("scripted", "text")
