"""Tiny labelled sets for evaluation tests: the SROIE fixtures (with attribution, in tests/fixtures)
and a synthetic train-ticket set written to a temporary directory (no real ticket data)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chatocr.llm.base import ChatSettings
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.messages import Message

SROIE = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"

TICKETS: dict[str, tuple[list[str], dict[str, str]]] = {
    "t1": (
        [
            "Q012345",
            "东山站  G101  西河站",
            "2019年01月02日08：09开  03车04A号",
            "￥55.5元  二等座",
            "1101011990****1234张三",
        ],
        {
            "ticket_num": "Q012345",
            "starting_station": "东山站",
            "destination_station": "西河站",
            "train_num": "G101",
            "date": "2019年01月02日08：09开",
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
            "2018年05月06日21:30开  12车无座",
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
}


@pytest.fixture
def ticket_set(tmp_path: Path) -> Path:
    root = tmp_path / "cn_train_ticket_tiny"
    (root / "labels").mkdir(parents=True)
    (root / "ocr").mkdir()
    for doc_id, (lines, labels) in TICKETS.items():
        ocr = [{"text": t, "box": [10, 30 * i, 400, 30 * i + 20]} for i, t in enumerate(lines)]
        (root / "ocr" / f"{doc_id}.json").write_text(json.dumps(ocr, ensure_ascii=False), encoding="utf-8")
        (root / "labels" / f"{doc_id}.json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    return root


def _label_sets() -> list[tuple[str, dict[str, Any]]]:
    """(a line that identifies the document, its labels) for every test document."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((SROIE / "labels").glob("*.json")):
        lines = json.loads((SROIE / "ocr" / path.name).read_text(encoding="utf-8"))
        out.append((lines[0]["text"], json.loads(path.read_text(encoding="utf-8"))))
    for lines, labels in TICKETS.values():
        out.append(
            (lines[0], {**labels, "ticket_price": labels["ticket_price"].strip("￥元"), "name": labels["name"][-2:]})
        )
    return out


def oracle_model() -> ScriptedChatModel:
    """Answers with the labels of the document in the last message (keys from the JSON schema for
    chatocr, from the labels for the baseline)."""
    known = _label_sets()

    def answer(messages: Sequence[Message], settings: ChatSettings) -> str:
        last = messages[-1].content
        for marker, labels in known:
            if marker in last:
                schema = settings.json_mode if isinstance(settings.json_mode, dict) else None
                keys = list(schema["properties"]) if schema else list(labels)
                return json.dumps({k: labels.get(k) for k in keys}, ensure_ascii=False)
        return "{}"

    return ScriptedChatModel(answer)
