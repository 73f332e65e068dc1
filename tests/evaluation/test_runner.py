"""The runner on text OCR with scripted models: oracle answers score 100%, caching, ratios."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatocr.api import ChatOCR
from chatocr.evaluation import runner
from chatocr.evaluation.datasets import load_dataset
from chatocr.evaluation.report import markdown_report, print_report
from chatocr.evaluation.runner import Evaluator, FixedOrderBank
from chatocr.evaluation.strategies import resolve_strategies
from chatocr.llm.scripted import ScriptedChatModel

from .conftest import SROIE, oracle_model


def _chat(model: ScriptedChatModel, tmp_path: Path) -> ChatOCR:
    return ChatOCR(llm=model, ocr="text", config={"ocr_cache_dir": str(tmp_path / "ocr-cache")})


def test_oracle_scores_full_marks_and_cache_resumes(tmp_path: Path, ticket_set: Path) -> None:
    model = oracle_model()
    chat = _chat(model, tmp_path)
    sets = [load_dataset(SROIE, chat.library), load_dataset(ticket_set, chat.library)]
    strategies = resolve_strategies(["default", "examples-0", "pairs", "fixed-examples", "classifier", "baseline"])
    lines: list[str] = []
    evaluator = Evaluator(chat, ocr_source="text", cache_dir_path=tmp_path / "results", progress=lines.append)
    report = asyncio.run(evaluator.run(sets, strategies, command="chatocr eval ..."))
    assert len(lines) == 5 and lines[0].startswith("[1/5] sroie/")  # round-robin over the sets
    assert lines[1].startswith("[2/5] cn_train_ticket_tiny/")
    for set_name in ("sroie", "cn_train_ticket_tiny"):
        for name in ("default", "examples-0", "pairs", "fixed-examples", "baseline"):
            overall = report["results"][set_name][name]["overall"]
            assert overall["exact"] == 1.0, (set_name, name, report["results"][set_name][name]["mismatches"])
            assert overall["f1"] == 1.0
    tickets = report["results"]["cn_train_ticket_tiny"]
    assert tickets["default"]["overall"]["grounding_rate"] == 1.0
    assert report["ocr_recall"]["cn_train_ticket_tiny"]["overall"] == 1.0
    # Human OCR of SROIE misreads some label values: the ceiling is below 100%.
    assert report["ocr_recall"]["sroie"]["overall"] < 1.0
    base = tickets["baseline"]
    assert base["usage"]["calls_per_doc"] == 1.0
    assert base["vs_baseline"]["tokens_ratio"] == 1.0
    assert tickets["default"]["vs_baseline"]["exact_delta_points"] == 0.0
    assert tickets["default"]["vs_baseline"]["tokens_ratio"] > 1.0  # system prompt and examples cost tokens
    assert tickets["examples-0"]["usage"]["tokens_per_doc"] < tickets["default"]["usage"]["tokens_per_doc"]
    assert "routing_accuracy" in tickets["classifier"]
    assert "ALL" in report["results"] and report["run"]["llm"] == "scripted:scripted"
    calls = len(model.calls)
    assert calls > 0

    # The same run again: every outcome comes from the result cache, no model call.
    again = Evaluator(chat, ocr_source="text", cache_dir_path=tmp_path / "results")
    second = asyncio.run(again.run(sets, strategies))
    assert len(model.calls) == calls
    assert second["results"]["sroie"]["default"]["usage"]["cached"] == 3
    assert second["results"]["sroie"]["default"]["overall"] == report["results"]["sroie"]["default"]["overall"]

    md = markdown_report(report)
    assert "| default |" in md and "OCR recall" in md
    print_report(report)


def test_cached_outcomes_belong_to_the_code_that_made_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = oracle_model()
    chat = _chat(model, tmp_path)
    data = load_dataset(SROIE, chat.library).subset(2)
    cache = tmp_path / "results"
    asyncio.run(Evaluator(chat, ocr_source="text", cache_dir_path=cache).run([data], resolve_strategies(["default"])))
    calls = len(model.calls)
    asyncio.run(Evaluator(chat, ocr_source="text", cache_dir_path=cache).run([data], resolve_strategies(["default"])))
    assert len(model.calls) == calls  # the same code: served from the cache
    # Another chatocr (a changed snapping rule, an upgrade): the model is asked again.
    monkeypatch.setattr(runner, "_code_digest", lambda: "another chatocr")
    asyncio.run(Evaluator(chat, ocr_source="text", cache_dir_path=cache).run([data], resolve_strategies(["default"])))
    assert len(model.calls) > calls


def test_wrong_answers_and_errors_are_counted(tmp_path: Path) -> None:
    model = ScriptedChatModel(lambda messages, settings: '{"company": "WRONG", "total": "9.00"}')
    chat = _chat(model, tmp_path)
    data = load_dataset(SROIE, chat.library).subset(1)  # label total 9.00
    report = asyncio.run(
        Evaluator(chat, ocr_source="text", use_cache=False).run([data], resolve_strategies(["baseline"]))
    )
    fields = report["results"]["sroie"]["baseline"]["fields"]
    assert fields["total"]["exact"] == 1.0 and fields["company"]["exact"] == 0.0
    assert fields["date"]["predicted"] == 0 and fields["date"]["recall"] == 0.0
    # An image-only set read as text has no ocr/ file: recorded per document, not raised.
    broken = load_dataset(SROIE, chat.library).subset(1)
    evaluator = Evaluator(chat, ocr_source="image", use_cache=False)
    evaluator.ocr_docs.clear()
    result = asyncio.run(evaluator.run([broken], resolve_strategies(["baseline"])))
    assert result["documents"][0]["error"]  # the text engine cannot read a JPEG


def test_fixed_order_bank_keeps_file_order() -> None:
    chat = ChatOCR(llm=ScriptedChatModel(["{}"]), ocr="text", config={"ocr_cache": False})
    bank = FixedOrderBank(chat.library)
    scenario = chat.library.get("retail_receipt")
    fields = scenario.fields[:2]
    ranked = bank.select("KOPI & BAKE CO. PTE LTD TAX INVOICE", fields, scenario)
    assert [e.id for e in ranked] == [scenario.example_id(i) for i in range(len(scenario.examples))]


def test_cached_only_reports_finished_documents(tmp_path: Path) -> None:
    model = oracle_model()
    chat = _chat(model, tmp_path)
    data = load_dataset(SROIE, chat.library)
    cache = tmp_path / "results"
    first = Evaluator(chat, ocr_source="text", cache_dir_path=cache)
    asyncio.run(first.run([data.subset(2)], resolve_strategies(["baseline"])))
    calls = len(model.calls)
    partial = Evaluator(chat, ocr_source="text", cache_dir_path=cache, cached_only=True)
    report = asyncio.run(partial.run([data], resolve_strategies(["baseline"])))
    assert len(model.calls) == calls  # nothing ran
    assert report["results"]["sroie"]["baseline"]["usage"]["documents"] == 2
    assert partial.skipped == ["sroie/X51008123580"]
    # A strategy with nothing cached leaves every document out.
    none = Evaluator(chat, ocr_source="text", cache_dir_path=cache, cached_only=True)
    asyncio.run(none.run([data], resolve_strategies(["default", "baseline"])))
    assert len(none.skipped) == 3 and len(model.calls) == calls


def test_a_copy_of_a_document_is_reported_under_its_own_id(tmp_path: Path, ticket_set: Path) -> None:
    """Two documents with the same OCR text (a copy in the folder, a page scanned twice, the same
    page turned) share one result-cache entry; each is still reported, under its own id (the copy
    used to come back under the first one's id and vanish from the report)."""
    first = sorted((ticket_set / "ocr").glob("*.json"))[0]
    for sub, suffix in (("ocr", ".json"), ("labels", ".json")):
        source = ticket_set / sub / f"{first.stem}{suffix}"
        (ticket_set / sub / f"{first.stem}-copy{suffix}").write_text(source.read_text(encoding="utf-8"), "utf-8")
    model = oracle_model()
    chat = _chat(model, tmp_path)
    data = load_dataset(ticket_set, chat.library)
    evaluator = Evaluator(chat, ocr_source="text", cache_dir_path=tmp_path / "results", concurrency=1)
    report = asyncio.run(evaluator.run([data], resolve_strategies(["default"])))
    ids = sorted(d["document"] for d in report["documents"])
    assert ids == sorted(doc.id for doc in data.documents) and f"{first.stem}-copy" in ids
    default = report["results"][data.name]["default"]
    assert default["usage"]["cached"] == 1 and default["overall"]["exact"] == 1.0
