"""The `vlm` engine against a tiny fake chat backend (the real backends are tested in tests/llm)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image

from chatocr.errors import ConfigError, OCRError
from chatocr.messages import Message
from chatocr.ocr import get_ocr_engine
from chatocr.ocr.vlm import DEFAULT_PROMPT, VLMEngine

from .helpers import encode
from .test_images import page, pdf_bytes


@dataclass
class Reply:
    text: str


@dataclass
class FakeChat:
    answers: list[Any]
    model: str = "qwen-vl-fake"
    calls: list[tuple[list[Message], Any]] = field(default_factory=list)

    async def chat(self, messages: list[Message], settings: Any = None) -> Any:
        self.calls.append((messages, settings))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_reads_text_without_boxes_and_says_so() -> None:
    chat = FakeChat([Reply("```text\n金额：  ¥8,490.57\n\n税率：6%\n```")])
    engine = get_ocr_engine("vlm", chat=chat)
    doc = engine.read(encode(page(size=(800, 600)), "PNG"))
    assert not doc.has_boxes and doc.engine == "vlm" and doc.model == "qwen-vl-fake"
    assert [line.text for line in doc.lines] == ["金额：  ¥8,490.57", "税率：6%"]
    assert doc.text() == "金额：  ¥8,490.57\n税率：6%"
    (message,), _ = chat.calls[0]
    assert message.role == "user" and message.content == DEFAULT_PROMPT
    image = Image.open(io.BytesIO(message.images[0].data))
    assert message.images[0].mime == "image/png" and image.size == (800, 600)


def test_large_pages_are_downscaled_and_each_pdf_page_is_one_call() -> None:
    chat = FakeChat([Reply("page one"), Reply("page two")])
    doc = VLMEngine(chat, max_side=500).read(pdf_bytes(2))
    assert [line.id for line in doc.lines] == ["p0-l0", "p1-l0"]
    sizes = [Image.open(io.BytesIO(call[0][0].images[0].data)).size for call in chat.calls]
    assert all(max(size) <= 500 for size in sizes)


def test_read_works_inside_a_running_event_loop() -> None:
    chat = FakeChat([Reply("one"), Reply("two")])
    engine = VLMEngine(chat)

    async def main() -> tuple[str, str]:
        sync = engine.read(page())  # from async code, without awaiting
        awaited = await engine.aread(page())
        return sync.text(), awaited.text()

    assert asyncio.run(main()) == ("one", "two")


def test_failures_are_ocr_errors() -> None:
    with pytest.raises(OCRError, match="failed on page 1"):
        VLMEngine(FakeChat([RuntimeError("boom")])).read(page())
    with pytest.raises(OCRError, match="no text"):
        VLMEngine(FakeChat([object()])).read(page())
    with pytest.raises(ConfigError, match="needs a chat backend"):
        get_ocr_engine("vlm")


def test_config_key_changes_with_the_prompt_and_model() -> None:
    base = VLMEngine(FakeChat([])).config_key()
    assert VLMEngine(FakeChat([]), prompt="other").config_key() != base
    assert VLMEngine(FakeChat([], model="other")).config_key() != base
