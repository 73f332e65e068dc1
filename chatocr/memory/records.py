"""What the memory holds: one reviewed document as an example (`MemoryExample`), the key of the
document it came from (`DocumentKey`), and a search hit (`MemoryMatch`).

An example is what a person vouched for: the document's OCR text in reading order (what similarity
compares and what the model is shown), its OCR lines with their boxes (the layout, and where each
answer sits), and the accepted answer, field -> value. Secrets are masked on the way in
(`from_document`), as they are in results files.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatocr.errors import MemoryStoreError
from chatocr.ocr.types import OCRDocument
from chatocr.secrets import redact, redact_data

__all__ = [
    "DocumentKey",
    "MemoryExample",
    "MemoryMatch",
    "check_scenario_name",
    "example_id",
    "lines_of",
    "text_digest",
]

# A store's folder is named after its scenario: the scenario-name rule (scenarios/model.py), so a
# name can never be a path ("../x", "/etc", "a/b", "C:").
_SCENARIO_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def check_scenario_name(name: str) -> str:
    """`name` when it can name a store; MemoryStoreError otherwise (path characters above all)."""
    if not isinstance(name, str) or not _SCENARIO_NAME.match(name):
        raise MemoryStoreError(
            f"{name!r} cannot name a memory store: a scenario name is lower-case letters, digits and _, "
            "starting with a letter (no path characters).",
            hint="Give the scenario's name, e.g. retail_receipt.",
        )
    return name


@dataclass(frozen=True)
class DocumentKey:
    """The document an example came from: its path, the SHA-256 of its content, and its page
    (1-based) for one result per page of a PDF, else None."""

    path: str
    sha256: str = ""
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "page": self.page}

    def same_document(self, other: DocumentKey) -> bool:
        """The same content (or, without hashes, the same path) and the same page."""
        if self.page != other.page:
            return False
        if self.sha256 and other.sha256:
            return self.sha256 == other.sha256
        return self.path == other.path


def example_id(key: DocumentKey) -> str:
    """A document's example id: from its content and page (a document reviewed again, or the same
    file under another name, replaces its example instead of adding a second one)."""
    material = f"{key.sha256 or 'path:' + key.path}\n{key.page if key.page is not None else ''}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def text_digest(text: str) -> str:
    """How an example's text is compared for exact duplicates (and the index checks it is current)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def lines_of(document: OCRDocument) -> list[dict[str, Any]]:
    """The OCR lines an example keeps: id, text, 4-point box, confidence, page."""
    return [{**line.to_dict(), "page": page.index} for page in document.pages for line in page.lines]


@dataclass(frozen=True)
class MemoryExample:
    id: str
    scenario: str
    text: str  # reading-order OCR text
    answer: Mapping[str, Any]  # field -> accepted value (None: the document has no such field)
    source: DocumentKey
    lines: Sequence[Mapping[str, Any]] = ()
    added: float = 0.0  # seconds since the epoch
    last_used: float = 0.0
    origin: str = "review"  # review | import | repl
    reviewer: str | None = None
    digest: str = field(default="", compare=False)

    @classmethod
    def from_document(
        cls,
        scenario: str,
        text: str,
        answer: Mapping[str, Any],
        source: DocumentKey,
        *,
        lines: Sequence[Mapping[str, Any]] = (),
        origin: str = "review",
        reviewer: str | None = None,
        now: float = 0.0,
    ) -> MemoryExample:
        """An example as it is stored: known secrets masked in every string it holds."""
        if not text.strip():
            raise MemoryStoreError(
                f"{source.path}: a document without OCR text cannot be an example.",
                hint="Review documents whose OCR lines are shown (not only the fields' boxes).",
            )
        masked_text = redact(text)
        masked_source = DocumentKey(redact(source.path), source.sha256, source.page)
        return cls(
            id=example_id(source),
            scenario=check_scenario_name(scenario),
            text=masked_text,
            answer=redact_data(dict(answer)),  # type: ignore[arg-type]
            source=masked_source,
            lines=redact_data([dict(line) for line in lines]),  # type: ignore[arg-type]
            added=now,
            last_used=now,
            origin=origin,
            reviewer=redact(reviewer) if reviewer else None,
            digest=text_digest(masked_text),
        )

    def summary(self) -> dict[str, Any]:
        """What `chatocr memory list` shows of it."""
        return {
            "id": self.id,
            "scenario": self.scenario,
            "source": self.source.to_dict(),
            "fields": len(self.answer),
            "lines": len(self.lines),
            "added": self.added,
            "last_used": self.last_used,
            "origin": self.origin,
            "reviewer": self.reviewer,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "text": self.text,
            "answer": dict(self.answer),
            "lines": [dict(line) for line in self.lines],
        }


@dataclass(frozen=True)
class MemoryMatch:
    """An example found for a document, with its similarity to it (chatocr.similarity's cosine)."""

    example: MemoryExample
    score: float
