"""The `vlm` engine with the shipped scripted chat model (the real backends are tested in tests/llm)."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from chatocr.errors import ConfigError, OCRError
from chatocr.llm import ChatReply, ScriptedChatModel
from chatocr.llm.base import ChatModel
from chatocr.ocr import get_ocr_engine
from chatocr.ocr.vlm import DEFAULT_PROMPT, VLMEngine

from .helpers import encode
from .test_images import page, pdf_bytes


def scripted(*answers: object, model: str = "qwen-vl-fake") -> ScriptedChatModel:
    return ScriptedChatModel(answers, model=model)  # type: ignore[arg-type]


def test_reads_text_without_boxes_and_says_so() -> None:
    chat = scripted("```text\n金额：  ¥8,490.57\n\n税率：6%\n```")
    engine = get_ocr_engine("vlm", chat=chat)
    doc = engine.read(encode(page(size=(800, 600)), "PNG"))
    assert not doc.has_boxes and doc.engine == "vlm" and doc.model == "qwen-vl-fake"
    assert [line.text for line in doc.lines] == ["金额：  ¥8,490.57", "税率：6%"]
    assert doc.text() == "金额：  ¥8,490.57\n税率：6%"
    (message,) = chat.calls[0].messages
    assert message.role == "user" and message.content == DEFAULT_PROMPT
    image = Image.open(io.BytesIO(message.images[0].data))
    assert message.images[0].mime == "image/png" and image.size == (800, 600)


def test_large_pages_are_downscaled_and_each_pdf_page_is_one_call() -> None:
    chat = scripted("page one", "page two")
    doc = VLMEngine(chat, max_side=500).read(pdf_bytes(2))
    assert [line.id for line in doc.lines] == ["p0-l0", "p1-l0"]
    sizes = [Image.open(io.BytesIO(call.messages[0].images[0].data)).size for call in chat.calls]
    assert all(max(size) <= 500 for size in sizes)


def test_read_works_inside_a_running_event_loop() -> None:
    chat = scripted("one", "two")
    engine = VLMEngine(chat)

    async def main() -> tuple[str, str]:
        sync = engine.read(page())  # from async code, without awaiting
        awaited = await engine.aread(page())
        return sync.text(), awaited.text()

    assert asyncio.run(main()) == ("one", "two")


def test_failures_are_ocr_errors() -> None:
    with pytest.raises(OCRError, match="failed on page 1"):
        VLMEngine(scripted(RuntimeError("boom"))).read(page())
    with pytest.raises(OCRError, match="no text"):
        VLMEngine(scripted(ChatReply(text=None))).read(page())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a chat backend"):
        get_ocr_engine("vlm")


def test_a_backend_that_takes_no_images_is_refused_up_front() -> None:
    class TextOnly(ScriptedChatModel):
        supports_images = False

    with pytest.raises(ConfigError, match="does not take images") as info:
        VLMEngine(TextOnly(["never sent"]))
    assert "qwen-vl" in (info.value.hint or "")
    assert isinstance(scripted(), ChatModel) and scripted().supports_images


def test_config_key_changes_with_the_prompt_and_model() -> None:
    base = VLMEngine(scripted()).config_key()
    assert VLMEngine(scripted(), prompt="other").config_key() != base
    assert VLMEngine(scripted(model="other")).config_key() != base
