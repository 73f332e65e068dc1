"""The report's accuracy columns: swaps of position-defined fields, the model's own answers
beside the snapped values, and the gap to the OCR ceiling per field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

from chatocr.api import ChatOCR
from chatocr.evaluation.datasets import load_dataset
from chatocr.evaluation.report import markdown_report
from chatocr.evaluation.runner import Evaluator, position_pairs
from chatocr.evaluation.strategies import resolve_strategies
from chatocr.llm.base import ChatSettings
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.messages import Message

from .conftest import TICKETS


def _swapping(messages: Sequence[Message], settings: ChatSettings) -> str:
    """Answers each ticket right, except the stations, given the other way round."""
    text = messages[-1].content
    for lines, labels in TICKETS.values():
        if lines[0] in text:
            answer = {**labels, "ticket_price": labels["ticket_price"].strip("￥元")}
            answer["starting_station"], answer["destination_station"] = (
                labels["destination_station"],
                labels["starting_station"],
            )
            return json.dumps(answer, ensure_ascii=False)
    return "{}"


def test_swapped_stations_are_counted_as_swaps_and_gaps_are_reported(tmp_path: Path, ticket_set: Path) -> None:
    chat = ChatOCR(llm=ScriptedChatModel(_swapping), ocr="text", config={"ocr_cache_dir": str(tmp_path / "o")})
    data = load_dataset(ticket_set, chat.library)
    assert position_pairs(data, chat.library) == [("starting_station", "destination_station")]
    report = asyncio.run(
        Evaluator(chat, ocr_source="text", use_cache=False).run([data], resolve_strategies(["default"]))
    )
    entry = report["results"]["cn_train_ticket_tiny"]["default"]
    assert entry["overall"]["swaps"] == 2  # both tickets
    assert entry["fields"]["starting_station"]["exact"] == 0.0
    assert entry["overall"]["exact_answers"] == entry["overall"]["exact"]  # nothing snapped here
    # Over all sets too (here one set and the SROIE fixtures, which have no position pair).
    sroie = load_dataset(Path(__file__).resolve().parent.parent / "fixtures" / "sroie", chat.library).subset(1)
    both = asyncio.run(
        Evaluator(chat, ocr_source="text", use_cache=False).run([data, sroie], resolve_strategies(["default"]))
    )
    assert both["results"]["ALL"]["default"]["overall"]["swaps"] == 2
    assert both["results"]["ALL"]["default"]["overall"]["exact_answers"] is not None
    md = markdown_report(report)
    assert "swaps" in md and "model's answers exact %" in md
    header = next(line for line in md.splitlines() if line.startswith("| field |"))
    assert "gap default" in header
    station = next(line for line in md.splitlines() if line.startswith("| starting_station |"))
    assert "+100.0" in station  # ceiling 100%, exact 0%: the whole gap is the model's


def test_each_accuracy_lever_is_a_strategy_and_an_ad_hoc_key() -> None:
    import pytest

    from chatocr.errors import ConfigError

    names = [s.name for s in resolve_strategies(["levers"])]
    assert names == ["default", "no-snap", "field-reask", "extractive", "layout-examples", "positions", "accuracy"]
    (adhoc,) = resolve_strategies(["snap=off,reask=on,layout=0.3"])
    assert adhoc.overrides == (("example_layout", 0.3), ("field_reask", True), ("snap", False))
    assert "field_reask=True" in adhoc.label()
    # The default's cache key does not change with the levers' existence; a lever's does.
    default, lever = resolve_strategies(["default", "extractive"])
    assert "overrides" not in default.settings() and lever.settings()["overrides"] == [["extractive", True]]
    with pytest.raises(ConfigError):
        resolve_strategies(["layout=2"])
    with pytest.raises(ConfigError):
        resolve_strategies(["snap=maybe"])
