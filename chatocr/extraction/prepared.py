"""A document as extraction sees it (`PreparedDocument`), and what is asked of the model for it
(`ExtractionTask`): the two values the pipeline hands to the checked loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from chatocr.conversation.planner import PlanExample, PlanPolicy, TaskSpec
from chatocr.errors import InputError
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.noise import PageWords, page_words
from chatocr.extraction.remembered import Recall
from chatocr.extraction.routing import language_of
from chatocr.extraction.typed_request import TypedRequest
from chatocr.ocr.layout import LayoutText
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.model import Scenario

__all__ = ["ExtractionTask", "PreparedDocument", "source_name"]

Input = Any  # a path, bytes, PIL image, numpy array or an OCRDocument


def source_name(source: Input) -> str:
    if isinstance(source, OCRDocument):
        return source.source or "<document>"
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        return str(source)
    return f"<{type(source).__name__}>"


@dataclass(frozen=True)
class PreparedDocument:
    """One document as extraction sees it: the OCR result, its reading-order text (what the model
    is shown), and what is derived from that text once: its language, the index that grounds
    values in it, how much of it reads as words."""

    source: str
    document: OCRDocument
    layout: LayoutText

    @classmethod
    def of(cls, document: OCRDocument, source: str | None = None) -> PreparedDocument:
        prepared = cls(source or source_name(document), document, document.layout())
        if not prepared.text.strip():
            raise InputError(
                f"{prepared.source}: OCR found no text in the document.",
                hint="Check that the image is not blank, too small or rotated; try another --ocr engine.",
            )
        return prepared

    @property
    def text(self) -> str:
        return self.layout.text

    @cached_property
    def language(self) -> str:
        """The text's language ("zh" or "en"): the prompts' language when no scenario decides it."""
        return language_of(self.text)

    @cached_property
    def index(self) -> TextIndex:
        return TextIndex(self.layout)

    @cached_property
    def words(self) -> PageWords:
        """How much of the text reads as words; `.noise` when (almost) none does (a photo of a wall)."""
        return page_words(self.text)


@dataclass(frozen=True)
class ExtractionTask:
    """What is asked of the model for one document, decided in one place (`build_task`)."""

    spec: TaskSpec  # title, the fields asked, the (focused) instructions
    examples: list[PlanExample]  # ranked, most relevant first
    language: str  # of the prompts
    scenario: Scenario | None  # the scenario given or routed to; None: no scenario matched
    warnings: tuple[str, ...] = ()
    typed: TypedRequest = field(default_factory=TypedRequest)  # a schema, min_confidence (docs/typed.md)
    policy: PlanPolicy = field(default_factory=PlanPolicy)  # how the conversation is laid out
    memory: Recall | None = None  # what the memory of reviewed documents offered (None: not asked)
