"""Progress events: every stage of a document is announced to the caller's callback, named by the
document, and only to that caller (concurrent calls with other callbacks do not see them)."""

from __future__ import annotations

import asyncio
import threading

from chatocr import ChatOCR, progress
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.ocr.text import TextEngine

RECEIPT = b"ACME TRADING SDN BHD\nDATE: 01/02/2024\nTOTAL        RM 9.90\n"
GOOD = '{"company": "ACME TRADING SDN BHD", "date": "01/02/2024", "total": "9.90"}'
KEYS = ["company", "date", "total"]


def make(answers: list[str]) -> ChatOCR:
    model = ScriptedChatModel(answers, retry_policy=RetryPolicy(max_attempts=1))
    return ChatOCR(llm=model, ocr="text", ocr_cache=False)


def test_every_stage_is_announced_in_order() -> None:
    events: list[progress.Event] = []
    result = make([GOOD]).extract(RECEIPT, keys=KEYS, scenario="retail_receipt", on_event=events.append)
    assert result.ok
    stages = [e.stage for e in events]
    assert stages == ["read", "ocr", "route", "ask", "done"]
    assert "3 lines" in events[1].message and events[1].seconds is not None
    assert "retail_receipt" in events[2].message
    assert events[-1].message == "done" and events[-1].seconds is not None
    assert all(e.source == result.source for e in events)


def test_a_failed_document_still_ends_with_done_failed() -> None:
    events: list[progress.Event] = []
    result = make([GOOD]).extract(b"   ", keys=KEYS, raise_errors=False, on_event=events.append)
    assert result.error is not None
    assert events[-1].stage == "done" and events[-1].message == "failed"


def test_batches_name_each_document() -> None:
    ocr = make([GOOD, GOOD])
    mine: list[progress.Event] = []
    results = list(ocr.extract_many([RECEIPT, RECEIPT], keys=KEYS, scenario="retail_receipt", on_event=mine.append))
    assert len(results) == 2
    assert sum(e.stage == "done" for e in mine) == 2


def test_concurrent_calls_see_only_their_own_events() -> None:
    ocr = make([GOOD, GOOD])
    first: list[progress.Event] = []
    second: list[progress.Event] = []
    engine = TextEngine()
    receipt_a = engine.read_text(RECEIPT.decode(), source="a.txt")
    receipt_b = engine.read_text(RECEIPT.decode(), source="b.txt")

    async def both() -> None:
        await asyncio.gather(
            ocr.aextract(receipt_a, KEYS, "retail_receipt", on_event=first.append),
            ocr.aextract(receipt_b, KEYS, "retail_receipt", on_event=second.append),
        )

    asyncio.run(both())
    assert first and {e.source for e in first} == {"a.txt"}
    assert second and {e.source for e in second} == {"b.txt"}
    progress.emit("x", "nobody listens out here")  # and nothing leaked into this context
    assert not progress.active()


def test_a_failing_callback_never_costs_the_document() -> None:
    def broken(event: progress.Event) -> None:
        raise RuntimeError("display broke")

    result = make([GOOD]).extract(RECEIPT, keys=KEYS, scenario="retail_receipt", on_event=broken)
    assert result.ok and result.values["total"] == "9.90"


def test_listening_is_scoped_to_the_block_and_thread_safe() -> None:
    seen: list[str] = []
    with progress.listening(lambda e: seen.append(e.message)):
        progress.emit("x", "inside")
        worker = threading.Thread(target=progress.emit, args=("x", "other thread, no context"))
        worker.start()
        worker.join()
    progress.emit("x", "outside")
    assert seen == ["inside"]
