"""`vlm`: a vision-language model used as the OCR (Qwen-VL via DashScope, GOT-OCR2.0 or DeepSeek-OCR
served by vLLM, or any OpenAI-compatible vision model).

It needs a chat backend: any object with `async chat(messages, settings) -> reply` where the
reply has `.text` (chatocr.llm's backends are such objects; one that declares
`supports_images = False`, such as ERNIE's native API or the local text model, is refused up
front). Each page is sent as a PNG with a transcription prompt; the answer's lines become the
document's lines. A VLM gives no boxes and no confidences: lines get synthetic boxes (one row
each, spread down the page), confidence 1.0, and the document says `has_boxes=False` so nobody
draws them on the image.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from typing import Any, Protocol

from PIL import Image

from chatocr.bridge import run_sync
from chatocr.errors import ConfigError, OCRError
from chatocr.messages import ImagePart, Message
from chatocr.ocr.base import RawLine, build_page
from chatocr.ocr.images import ImageLimits, Source, load_input
from chatocr.ocr.layout import display_width
from chatocr.ocr.types import OCRDocument

__all__ = ["DEFAULT_PROMPT", "ChatLike", "VLMEngine"]

DEFAULT_PROMPT = (
    "Transcribe all the text in this image, line by line, top to bottom and left to right, exactly "
    "as written (keep the original language, digits and punctuation). Put text that sits on the "
    "same visual row on one line, separated by two spaces. Output only the text, no commentary."
)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*$")


class ChatLike(Protocol):
    """The minimal chat interface this engine needs (chatocr.llm.ChatModel satisfies it)."""

    async def chat(self, messages: Any, settings: Any = None) -> Any: ...


def _default_settings() -> Any:
    """Generous output room for a full page, when chatocr.llm is importable; else the backend's."""
    try:
        from chatocr.llm.base import ChatSettings

        return ChatSettings(max_output_tokens=4096)
    except (ImportError, TypeError, AttributeError):
        return None


class VLMEngine:
    name = "vlm"

    def __init__(
        self,
        chat: ChatLike | None = None,
        *,
        model: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        settings: Any = None,
        max_side: int = 1600,
        limits: ImageLimits | None = None,
    ) -> None:
        """chat: the backend. max_side: pages are downscaled so their longer side fits (VLM
        services cap image size and bill by pixels)."""
        if chat is None or not callable(getattr(chat, "chat", None)):
            raise ConfigError(
                "The vlm OCR engine needs a chat backend: get_ocr_engine('vlm', chat=<a chat model>).",
                hint="Create one with chatocr.llm (e.g. an OpenAI-compatible backend for Qwen-VL or vLLM).",
            )
        if getattr(chat, "supports_images", True) is False:
            name = f"{getattr(chat, 'provider', type(chat).__name__)}:{getattr(chat, 'model', '')}"
            raise ConfigError(
                f"The vlm OCR engine sends page images, and the {name} backend does not take images.",
                hint="Use a vision model through an OpenAI-compatible backend, e.g. --ocr vlm:dashscope:qwen-vl-max "
                "or vlm:vllm:<served model>.",
            )
        self.chat = chat
        self.model = model or str(getattr(chat, "model", "") or type(chat).__name__)
        self.prompt = prompt
        self.settings = settings
        self.max_side = max_side
        self.limits = limits or ImageLimits()

    def config_key(self) -> str:
        settings = {
            "model": self.model,
            "prompt": hashlib.sha256(self.prompt.encode()).hexdigest()[:16],
            "max_side": self.max_side,
            "pdf_dpi": self.limits.pdf_dpi,
        }
        return "vlm:" + json.dumps(settings, sort_keys=True, separators=(",", ":"))

    def read(self, source: Source) -> OCRDocument:
        """Synchronous, like every engine (chatocr.bridge runs the async call, also from code
        that already runs an event loop)."""
        return run_sync(self.aread(source))

    async def aread(self, source: Source) -> OCRDocument:
        if isinstance(source, OCRDocument):
            return source
        started = time.perf_counter()
        loaded = load_input(source, self.limits)
        settings = self.settings if self.settings is not None else _default_settings()
        pages = []
        for index, image in enumerate(loaded.pages):
            message = Message(role="user", content=self.prompt, images=(ImagePart(self._png(image), "image/png"),))
            try:
                reply = await self.chat.chat([message], settings)
            except Exception as error:
                raise OCRError(f"The vision model failed on page {index + 1}: {error}") from error
            text = getattr(reply, "text", None)
            if not isinstance(text, str):
                raise OCRError(f"The vision model's reply has no text: {reply!r:.200}")
            pages.append(build_page(index, image.width, image.height, _lines(text, image)))
        return OCRDocument(
            pages=tuple(pages),
            engine=self.name,
            model=self.model,
            source=loaded.source,
            seconds=time.perf_counter() - started,
            has_boxes=False,
            sha256=loaded.sha256,
            config=self.config_key(),
            warnings=tuple(loaded.warnings),
        )

    def _png(self, image: Image.Image) -> bytes:
        if max(image.size) > self.max_side:
            image = image.copy()
            image.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=False)
        return buffer.getvalue()


def _lines(answer: str, image: Image.Image) -> list[RawLine]:
    """The answer's non-empty lines, minus Markdown fences, on synthetic rows down the page."""
    texts = [line.rstrip() for line in answer.splitlines() if line.strip() and not _FENCE.match(line.strip())]
    if not texts:
        return []
    row = image.height / len(texts)
    char = image.width / max(display_width(t) for t in texts)
    lines = []
    for n, text in enumerate(texts):
        y0, y1 = n * row + row * 0.1, (n + 1) * row - row * 0.1
        x1 = max(1.0, display_width(text) * char)
        lines.append(RawLine(text.strip(), ((0.0, y0), (x1, y0), (x1, y1), (0.0, y1)), 1.0))
    return lines
