"""The model gets ready beside a document's OCR (`ExtractionPipeline.read(prepare_model=True)`):
the two run at once, the read returns only when both are done (loading a local model silences the
process's output meanwhile), a failing preparation is left to the model's first call to report,
and the OCR's seconds are the OCR's own.

The engine and the model below each wait for the other to have started: they finish only if they
really run at the same time (a sequential read would time out and the test says which waited)."""

from __future__ import annotations

import threading
import time
from typing import Any

from chatocr import ChatOCR
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.ocr.text import TextEngine
from chatocr.ocr.types import OCRDocument
from chatocr.progress import Event

RECEIPT = b"ACME TRADING SDN BHD\nDATE: 01/02/2024\nTOTAL        RM 9.90\n"
GOOD = '{"company": "ACME TRADING SDN BHD", "total": "9.90"}'
KEYS = ["company", "total"]
WAIT = 20.0  # seconds before a party gives up on the other (only when they do not overlap)


class Meeting:
    def __init__(self) -> None:
        self.ocr_started = threading.Event()
        self.ocr_finished = threading.Event()
        self.prepare_started = threading.Event()
        self.order: list[str] = []


class MeetingEngine(TextEngine):
    def __init__(self, meeting: Meeting) -> None:
        super().__init__()
        self.meeting = meeting
        self.met = False

    def read(self, source: Any) -> OCRDocument:
        self.meeting.ocr_started.set()
        self.met = self.meeting.prepare_started.wait(WAIT)
        try:
            return super().read(source)
        finally:
            self.meeting.ocr_finished.set()


class MeetingModel(ScriptedChatModel):
    def __init__(self, meeting: Meeting, *, linger: float = 0.0, fail: bool = False) -> None:
        super().__init__([GOOD], retry_policy=RetryPolicy(max_attempts=1))
        self.meeting, self.linger, self.fail = meeting, linger, fail
        self.met = False
        self.prepared = 0

    def prepare(self) -> None:
        self.meeting.prepare_started.set()
        self.met = self.meeting.ocr_started.wait(WAIT)
        if self.linger:  # a load that outlasts the OCR
            self.meeting.ocr_finished.wait(WAIT)
            time.sleep(self.linger)
        self.prepared += 1
        self.meeting.order.append("prepared")
        if self.fail:
            raise RuntimeError("the weights are missing")


def make(meeting: Meeting, **model_options: Any) -> tuple[ChatOCR, MeetingModel, MeetingEngine]:
    model, engine = MeetingModel(meeting, **model_options), MeetingEngine(meeting)
    return ChatOCR(llm=model, ocr=engine, ocr_cache=False), model, engine


def test_the_model_gets_ready_while_the_ocr_runs_and_the_read_waits_for_both() -> None:
    meeting = Meeting()
    ocr, model, engine = make(meeting, linger=0.5)

    def heard(event: Event) -> None:
        if event.stage == "ocr":  # the pipeline's "OCR done", sent when read() returned
            meeting.order.append("read returned")

    result = ocr.extract(RECEIPT, keys=KEYS, scenario="retail_receipt", on_event=heard)
    assert engine.met and model.met, "the OCR and the model's preparation did not run at the same time"
    assert meeting.order == ["prepared", "read returned"]
    assert result.ok and result.values == {"company": "ACME TRADING SDN BHD", "total": "9.90"}
    # The preparation went on 0.5 s after the OCR finished: that wait is not the OCR's.
    timings = result.timings or {}
    assert timings["total_s"] - timings["ocr_s"] >= 0.5


def test_a_failed_preparation_is_left_to_the_first_call() -> None:
    meeting = Meeting()
    ocr, model, _ = make(meeting, fail=True)
    result = ocr.extract(RECEIPT, keys=KEYS, scenario="retail_receipt")
    assert model.prepared == 1
    assert result.ok and result.values["total"] == "9.90"  # the (scripted) model answered anyway


def test_a_chat_session_prepares_the_model_beside_its_ocr() -> None:
    meeting = Meeting()
    ocr, model, engine = make(meeting)
    session = ocr.chat(RECEIPT, scenario="retail_receipt")
    assert engine.met and model.met and model.prepared == 1
    assert "ACME TRADING" in session.text


def test_an_ocrdocument_is_not_read_again_and_nothing_waits() -> None:
    document = TextEngine().read(RECEIPT)
    meeting = Meeting()
    ocr, model, _ = make(meeting)
    result = ocr.extract(document, keys=KEYS, scenario="retail_receipt")
    assert result.ok and model.prepared == 0 and not meeting.ocr_started.is_set()
