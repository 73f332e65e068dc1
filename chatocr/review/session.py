"""A review of one results file: its documents, its review file, the corrections coming in from the
page, and (when a document is fully reviewed) its example in the memory of its scenario.

The web app (chatocr.review.app) is a thin layer over this; everything here is plain Python, so a
REPL or a test can review without a browser.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatocr.errors import InputError, MemoryStoreError, UsageError
from chatocr.memory import DocumentKey, MemoryExample, MemoryStore, lines_of
from chatocr.ocr.types import OCRDocument
from chatocr.review.documents import (
    EngineFor,
    PageImages,
    ReviewDocument,
    document_view,
    evidence_line,
    field_needs_review,
    read_results_file,
    safe_image,
)
from chatocr.review.events import ReviewEvent, ReviewLog, ReviewState, new_event, review_path_for

__all__ = ["MAX_VALUE_CHARS", "MemorySettings", "ReviewSession"]

# A typed value longer than this is refused (a page's whole text pasted by mistake).
MAX_VALUE_CHARS = 20_000


@dataclass(frozen=True)
class MemorySettings:
    """Where a fully reviewed document's example goes: the memory under `root` (None: the default
    per-user folder), or nowhere (`enabled` False)."""

    enabled: bool = True
    root: Path | None = None


@dataclass
class ReviewSession:
    results_path: Path
    reviewer: str | None = None
    engine_for: EngineFor | None = None
    run_ocr: bool = True
    memory: MemorySettings = field(default_factory=MemorySettings)
    review_path: Path | None = None

    def __post_init__(self) -> None:
        if not self.results_path.is_file():
            raise InputError(
                f"No such results file: {self.results_path}", hint="Give the --out file of chatocr extract."
            )
        self.documents, self.problems = read_results_file(self.results_path)
        if not self.documents:
            raise InputError(
                f"No chatocr results in {self.results_path}.",
                hint="Give the .jsonl (or --format json) file written by `chatocr extract --out`.",
            )
        self.log = ReviewLog(self.review_path or review_path_for(self.results_path))
        self.images = PageImages()
        self.memory_notes: list[str] = []
        self._lock = threading.Lock()
        self._stores: dict[str, MemoryStore] = {}
        self._remembered: dict[tuple[Any, ...], str] = {}  # document key -> review state it was added in
        self._memory_said: dict[tuple[Any, ...], str] = {}  # document key -> what memory last said of it

    # -- reading ---------------------------------------------------------------------------------

    def state(self) -> ReviewState:
        with self._lock:
            return self.log.refresh()

    def document(self, number: int) -> ReviewDocument:
        if not 0 <= number < len(self.documents):
            raise KeyError(number)
        return self.documents[number]

    def summary(self) -> dict[str, Any]:
        """The list of documents, with how much of each is reviewed."""
        state = self.state()
        items = []
        for doc in self.documents:
            reviewed = sum(state.current(doc.key, name) is not None for name in doc.result.fields)
            needing = sum(
                field_needs_review(item) and state.current(doc.key, item.name) is None
                for item in doc.result.fields.values()
            )
            items.append(
                {
                    "number": doc.number,
                    "name": doc.name,
                    "ok": doc.result.ok,
                    "fields": len(doc.result.fields),
                    "reviewed": reviewed,
                    "needing": needing,
                }
            )
        return {
            "results": str(self.results_path),
            "review_file": str(self.log.path),
            "reviewer": self.reviewer,
            "documents": items,
            "problems": [{"line": n, "problem": p} for n, p in self.problems],
            "review_problems": [{"line": n, "problem": p} for n, p in state.problems],
            "memory": self.memory_notes[-5:],
        }

    def view(self, number: int) -> dict[str, Any]:
        doc = self.document(number)
        document, notes = doc.ocr(self.engine_for, self.run_ocr)
        image = safe_image(doc)
        view = document_view(doc, self.state(), document, notes, image, lambda page: self._image_size(doc, page))
        view["memory"] = self._memory_said.get(doc.key)
        return view

    def _image_size(self, doc: ReviewDocument, page: int) -> tuple[int, int] | None:
        try:
            return self.page_image(doc.number, page)[1]
        except (InputError, OSError):
            return None

    def page_image(self, number: int, page: int) -> tuple[bytes, tuple[int, int]]:
        """A page image of a document as JPEG; KeyError when there is none to show (the page says why)."""
        doc = self.document(number)
        path, _ = safe_image(doc)
        if path is None:
            raise KeyError(page)
        index = doc.result.page - 1 if doc.result.page is not None else page
        if page != 0 and doc.result.page is not None:
            raise KeyError(page)
        return self.images.jpeg(path, index)

    # -- writing ---------------------------------------------------------------------------------

    def record(self, number: int, actions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Apply the page's actions to a document, each one event in the review file; returns the
        document's view as it now stands. UsageError for an action that cannot be (no such field,
        a line not on this document, a value too long)."""
        doc = self.document(number)
        document, _ = doc.ocr(self.engine_for, self.run_ocr)
        lines = doc.lines_by_id(document)
        with self._lock:
            state = self.log.refresh()
            events = [self._event(doc, state, lines, action) for action in actions]
            if events:
                state = self.log.append(events)
        self._remember(doc, state, document)
        return self.view(number)

    def _event(
        self, doc: ReviewDocument, state: ReviewState, lines: Mapping[str, Mapping[str, Any]], action: Mapping[str, Any]
    ) -> ReviewEvent:
        kind = action.get("action")
        if kind == "undo":
            target = state.event(str(action.get("event") or ""))
            if target is None or target.document != doc.key or target.action == "undo" or state.undone(target.id):
                raise UsageError("Nothing to undo there: that correction is not in this document's history.")
            return new_event(
                doc.key, target.field, "undo", old=target.new, new=target.old, reviewer=self.reviewer, undoes=target.id
            )
        name = action.get("field")
        item = doc.result.fields.get(name) if isinstance(name, str) else None
        if item is None:
            raise UsageError(f"{doc.name} has no field {name!r}.", hint=f"Its fields: {', '.join(doc.result.fields)}.")
        current = state.current(doc.key, item.name)
        shown = current.value if current is not None else item.value
        if kind == "accept":
            chosen = list(current.event.lines) if current is not None else [evidence_line(e) for e in item.evidence]
            return new_event(doc.key, item.name, "accept", old=shown, new=shown, lines=chosen, reviewer=self.reviewer)
        if kind != "fix":
            raise UsageError(f"Unknown review action {kind!r}.", hint="Use accept, fix or undo.")
        value = action.get("value")
        if len(str(value)) > MAX_VALUE_CHARS:
            raise UsageError(f"The value for {item.name} is over {MAX_VALUE_CHARS} characters.")
        if isinstance(value, str):
            value = value.strip() or None
        picked = []
        for line_id in action.get("lines") or []:
            if not isinstance(line_id, str) or line_id not in lines:
                raise UsageError(f"{doc.name} has no OCR line {line_id!r}.", hint="Click a line drawn on the page.")
            picked.append(dict(lines[line_id]))
        return new_event(doc.key, item.name, "fix", old=shown, new=value, lines=picked, reviewer=self.reviewer)

    # -- memory ----------------------------------------------------------------------------------

    def complete_values(self, doc: ReviewDocument, state: ReviewState) -> dict[str, Any] | None:
        """The reviewed answer when every field of the document has a current review, else None."""
        values = {}
        for name in doc.result.fields:
            review = state.current(doc.key, name)
            if review is None:
                return None
            values[name] = review.value
        return values

    def _remember(self, doc: ReviewDocument, state: ReviewState, document: OCRDocument | None) -> None:
        """A fully reviewed document joins its scenario's memory (once per reviewed state)."""
        values = self.complete_values(doc, state)
        if values is None or not self.memory.enabled:
            return
        marker = repr(sorted(values.items(), key=lambda item: item[0]))
        if self._remembered.get(doc.key) == marker:
            return
        scenario = doc.result.scenario
        if scenario is None or document is None:
            why = "it has no scenario" if scenario is None else "its OCR lines are not available"
            self._note(doc, f"reviewed, not remembered: {why}")
            return
        try:
            store = self._stores.get(scenario) or MemoryStore(scenario, self.memory.root)
            self._stores[scenario] = store
            source = DocumentKey(doc.key[0], doc.key[1], doc.key[2])
            example = MemoryExample.from_document(
                scenario, document.text(), values, source, lines=lines_of(document), reviewer=self.reviewer
            )
            outcome = store.add([example])
        except MemoryStoreError as exc:
            self._note(doc, f"reviewed, not remembered: {exc.message}")
            return
        self._remembered[doc.key] = marker
        self._note(doc, f"remembered in the memory of {scenario}" + (f"; {outcome.message}" if outcome.message else ""))

    def _note(self, doc: ReviewDocument, message: str) -> None:
        """What the memory did with a document: on the terminal's log, and on its page."""
        self.memory_notes.append(f"{doc.name}: {message}")
        self._memory_said[doc.key] = message
