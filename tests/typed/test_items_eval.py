"""Item precision/recall/F1: the matching rule, and the command's path on the scripted backend over
the two SROIE fixtures that are among the hand-labelled receipts (data/sroie_items)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from chatocr import ChatOCR
from chatocr.evaluation.items import LABELS, SAMPLES, evaluate_items, load_item_labels, match_items, score_items
from chatocr.llm import ChatSettings, ScriptedChatModel
from chatocr.messages import Message
from chatocr.typed.loading import load_schema

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sroie"


def test_matching_needs_description_and_amount_one_to_one() -> None:
    labels = [{"description": "Teh  Tarik", "amount": "3.00"}, {"description": "TEH TARIK", "amount": "3.00"}]
    assert match_items([{"description": "teh tarik", "amount": "3.0"}], labels) == 1
    assert match_items([{"description": "TEH TARIK", "amount": "3.10"}], labels) == 0
    assert match_items([{"description": "TEH TARIK", "amount": "3"}] * 3, labels) == 2
    score = score_items(
        [
            (
                [{"description": "A", "amount": "1"}, {"description": "B", "amount": "2"}],
                [{"description": "A", "amount": "1.00"}],
            )
        ]
    )
    assert (score.precision, score.recall, round(score.f1, 3)) == (0.5, 1.0, 0.667)


def test_the_labels_follow_their_rules() -> None:
    labels = load_item_labels(LABELS)
    assert len(labels) == 10 and sum(len(v) for v in labels.values()) == 17
    for items in labels.values():
        for item in items:
            assert set(item) == {"description", "quantity", "amount"} and item["description"].strip()
            assert item["amount"].replace(".", "").isdigit()  # no currency, no tax code


def test_item_evaluation_on_the_scripted_backend() -> None:
    labels = {k: v for k, v in load_item_labels(LABELS).items() if (FIXTURES / "ocr" / f"{k}.json").exists()}
    assert sorted(labels) == ["X00016469612", "X51005433541"]
    truth = {k: json.loads((FIXTURES / "labels" / f"{k}.json").read_text(encoding="utf-8")) for k in labels}
    first_lines = {
        k: json.loads((FIXTURES / "ocr" / f"{k}.json").read_text(encoding="utf-8"))[0]["text"] for k in labels
    }

    def answer(messages: Sequence[Message], settings: ChatSettings) -> str:
        doc = next(k for k, line in first_lines.items() if line in messages[-1].content)
        items = [dict(i) for i in labels[doc]]
        if doc == "X51005433541":
            items[1]["amount"] = "5.50"  # PORK at the VEGE price: in the text, but not this item
        return json.dumps(
            {"company": truth[doc]["company"], "date": truth[doc]["date"], "total": truth[doc]["total"], "items": items}
        )

    chat = ChatOCR(llm=ScriptedChatModel(answer), ocr="text", ocr_cache=False)
    scores, rows = evaluate_items(chat, FIXTURES, labels, load_schema(f"{SAMPLES}:Receipt"))
    assert scores["failed"] == 0 and scores["all"]["labelled"] == 3 and scores["all"]["predicted"] == 3
    assert scores["all"]["matched"] == 2 and scores["all"]["precision"] == scores["all"]["recall"] == 0.6667
    assert {r["id"]: len(r["grounded"]) for r in rows}["X00016469612"] == 1
