"""The review file: every correction a person made to a results file, as it was made.

`results.jsonl` -> `results.review.jsonl` beside it (the results file is never rewritten). One JSON
Lines record per event, appended as `chatocr.runs.log` appends results: one `os.write` on an
O_APPEND descriptor opened without following links, under an exclusive lock, fsync'ed before the
page is told it is saved. An event:

    {"chatocr_review": 1, "id": "5f0c...", "time": "2026-12-07T18:00:00.123Z", "reviewer": "ann",
     "document": {"path": "/scans/a.jpg", "sha256": "...", "page": null},
     "field": "total", "action": "fix", "old": "9.00", "new": "9.90",
     "lines": [{"id": "p0-l24", "text": "TOTAL 9.90", "box": [[x, y], ...], "page": 0}]}

`action` is `accept` (the value shown is right: new = old), `fix` (a new value; `lines` are the
OCR lines it was taken from, so the corrected value has its boxes; none when typed) or `undo`
(`undoes`: the id of the event taken back). Nothing is ever deleted: loading folds the history,
and a field's current review is its latest event not undone, so two browser tabs correcting the
same field both stay in the history and the later one is current.

A line that is not JSON, or JSON that is not a review event (another program's, a hand edit), and
a last line cut short by a crash, are reported with their line number; every other line is loaded.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from chatocr.errors import OutputError, UsageError
from chatocr.secrets import redact

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "EVENT_FORMAT",
    "DocKey",
    "FieldReview",
    "ReviewEvent",
    "ReviewLog",
    "ReviewState",
    "new_event",
    "review_path_for",
]

EVENT_FORMAT = 1
Action = Literal["accept", "fix", "undo"]
DocKey = tuple[str, str, int | None]  # (path, sha256, page) as the results file names the document
_ACTIONS = ("accept", "fix", "undo")
_INCOMPLETE = "an incomplete last line (a write was interrupted); left as it is"


def review_path_for(results: Path) -> Path:
    """`results.jsonl` -> `results.review.jsonl` in the same folder."""
    return results.with_name(f"{results.stem}.review.jsonl")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ReviewEvent:
    id: str
    time: str
    document: DocKey
    field: str
    action: Action
    old: Any = None
    new: Any = None
    lines: tuple[Mapping[str, Any], ...] = ()
    reviewer: str | None = None
    undoes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        path, sha256, page = self.document
        data: dict[str, Any] = {
            "chatocr_review": EVENT_FORMAT,
            "id": self.id,
            "time": self.time,
            "reviewer": self.reviewer,
            "document": {"path": path, "sha256": sha256, "page": page},
            "field": self.field,
            "action": self.action,
            "old": self.old,
            "new": self.new,
            "lines": [dict(line) for line in self.lines],
        }
        if self.undoes is not None:
            data["undoes"] = self.undoes
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ReviewEvent:
        """ValueError (saying what is wrong) for anything that is not one of our events."""
        if not isinstance(data, dict) or data.get("chatocr_review") != EVENT_FORMAT:
            raise ValueError("not a chatocr review event")
        document = data.get("document")
        if not isinstance(document, dict) or not isinstance(document.get("path"), str):
            raise ValueError("the event names no document")
        page = document.get("page")
        if page is not None and (not isinstance(page, int) or isinstance(page, bool)):
            raise ValueError("the document's page is not a number")
        action, name, event_id = data.get("action"), data.get("field"), data.get("id")
        if action not in _ACTIONS or not isinstance(name, str) or not name or not isinstance(event_id, str):
            raise ValueError("the event has no valid id, field or action")
        lines = data.get("lines") or []
        if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
            raise ValueError("the event's lines are not a list of objects")
        undoes = data.get("undoes")
        if action == "undo" and not isinstance(undoes, str):
            raise ValueError("an undo names no event")
        return cls(
            id=event_id,
            time=str(data.get("time") or ""),
            document=(document["path"], str(document.get("sha256") or ""), page),
            field=name,
            action=action,
            old=data.get("old"),
            new=data.get("new"),
            lines=tuple(lines),
            reviewer=None if data.get("reviewer") is None else str(data["reviewer"]),
            undoes=undoes if action == "undo" else None,
        )


def new_event(
    document: DocKey,
    field_name: str,
    action: Action,
    *,
    old: Any = None,
    new: Any = None,
    lines: Sequence[Mapping[str, Any]] = (),
    reviewer: str | None = None,
    undoes: str | None = None,
) -> ReviewEvent:
    return ReviewEvent(
        secrets.token_hex(8), _now(), document, field_name, action, old, new, tuple(lines), reviewer, undoes
    )


@dataclass(frozen=True)
class FieldReview:
    """A field's current review: the event that decided it."""

    event: ReviewEvent

    @property
    def value(self) -> Any:
        return self.event.new

    @property
    def state(self) -> str:
        return "accepted" if self.event.action == "accept" else "fixed"


@dataclass
class ReviewState:
    """The review file folded: every event in order, each field's current review, and the lines
    that could not be loaded (line number, why)."""

    events: list[ReviewEvent] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    _by_id: dict[str, ReviewEvent] = field(default_factory=dict)
    _undone: set[str] = field(default_factory=set)
    _history: dict[tuple[DocKey, str], list[ReviewEvent]] = field(default_factory=dict)

    def apply(self, event: ReviewEvent, line: int | None = None) -> None:
        if event.id in self._by_id:
            self.problems.append((line or 0, f"event {event.id} appears twice; the first is kept"))
            return
        if event.action == "undo":
            target = self._by_id.get(event.undoes or "")
            if target is None or target.document != event.document:
                self.problems.append((line or 0, f"the undo {event.id} names no earlier event of its document"))
                return
            self._undone.add(target.id)
        self._by_id[event.id] = event
        self.events.append(event)
        self._history.setdefault((event.document, event.field), []).append(event)

    def current(self, document: DocKey, field_name: str) -> FieldReview | None:
        """The field's latest accept or fix that was not undone."""
        for event in reversed(self._history.get((document, field_name), [])):
            if event.action != "undo" and event.id not in self._undone:
                return FieldReview(event)
        return None

    def history(self, document: DocKey, field_name: str) -> list[ReviewEvent]:
        return list(self._history.get((document, field_name), []))

    def undone(self, event_id: str) -> bool:
        return event_id in self._undone

    def event(self, event_id: str) -> ReviewEvent | None:
        return self._by_id.get(event_id)

    def documents(self) -> set[DocKey]:
        return {event.document for event in self.events}


class ReviewLog:
    """The review file of one results file: read (incrementally: only what was appended since the
    last read) and appended to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = ReviewState()
        self._offset = 0  # bytes of complete lines already folded
        self._line = 0  # their count
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file read

    def _refuse_link(self) -> None:
        if self.path.is_symlink():
            raise UsageError(
                f"The review file {self.path} is a symbolic link; chatocr does not write through links.",
                hint="Remove the link, or review a copy of the results file in another folder.",
            )

    def refresh(self) -> ReviewState:
        """Fold what other writers (another tab, another process) appended since the last read."""
        self._refuse_link()
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return self.state
        except OSError as exc:
            raise UsageError(f"Cannot read the review file {self.path}: {exc.strerror or exc}.") from None
        with open(fd, "rb") as handle:
            stat = os.fstat(handle.fileno())
            identity = (stat.st_dev, stat.st_ino)
            if identity != self._identity or stat.st_size < self._offset:  # replaced or cut: read again
                self.state, self._offset, self._line, self._identity = ReviewState(), 0, 0, identity
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        # An incomplete last line noted before may be complete (or followed by our lines) now.
        self.state.problems = [p for p in self.state.problems if p[1] != _INCOMPLETE]
        for raw in complete.split(b"\n")[:-1]:
            self._line += 1
            self._fold(raw, self._line)
        self._offset += len(complete)
        tail = data[len(complete) :]
        if tail.strip():
            self._note_tail(self._line + 1)
        return self.state

    def _fold(self, raw: bytes, number: int) -> None:
        if not raw.strip():
            return
        try:
            event = ReviewEvent.from_dict(json.loads(raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            reason = "not JSON" if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)) else str(exc)
            self.state.problems.append((number, reason))
            return
        self.state.apply(event, number)

    def _note_tail(self, number: int) -> None:
        self.state.problems.append((number, _INCOMPLETE))

    def append(self, events: Iterable[ReviewEvent]) -> ReviewState:
        """Write the events (one line each) with one write, under the lock, then fsync; the
        state folds them (and anything others appended before them)."""
        batch = list(events)
        if not batch:
            return self.refresh()
        payload = "".join(redact(json.dumps(e.to_dict(), ensure_ascii=False, default=str)) + "\n" for e in batch)
        self._refuse_link()
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise OutputError(
                f"Cannot write the review file {self.path}: {exc.strerror or exc}.",
                hint="Check the folder's permissions, or copy the results file to a folder you may write.",
            ) from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # another process appending waits for this line
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                payload = "\n" + payload  # after a line cut short by a crash: start a line of our own
            data = payload.encode("utf-8")
            written = os.write(fd, data)
            while written < len(data):  # only on a full disk or a signal; still one record per call
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as exc:
            raise OutputError(f"Cannot write the review file {self.path}: {exc.strerror or exc}.") from None
        finally:
            os.close(fd)  # closing releases the lock
        return self.refresh()
