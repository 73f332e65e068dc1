"""A results file that a batch run appends to and a later run resumes from.

Each finished document becomes one line (JSON Lines) or one row (CSV), written with a single
`os.write` on an O_APPEND descriptor and fsync'ed before the next document is reported done. A
document is identified by its absolute path and the SHA-256 of its content, so a re-run skips
what is already in the file and a changed file is done again. Opening the file for a run:

- a last line without its newline (the process died mid-write) is cut off: that document is redone;
- lines of documents that failed are dropped (the file is rewritten atomically), so they are retried;
- another process writing to the same file at the same time is refused (an exclusive lock).

Hence, whatever killed the previous run, every document ends up in the file exactly once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chatocr.errors import ConfigError
from chatocr.extraction.result import Extraction

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DocKey", "DoneKey", "ResultLog", "csv_columns", "csv_row", "csv_text", "done_key", "file_sha256", "format_line",
    "read_results", "record_for",
]

LogFormat = Literal["jsonl", "csv"]
DocKey = tuple[str, str]  # (absolute path, sha256 of the content)
# A done document: its DocKey, or (path, sha256, page) for one result per page (`--per-page`).
DoneKey = tuple[str, str] | tuple[str, str, int]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def record_for(key: DocKey, result: Extraction) -> dict[str, Any]:
    """The JSON Lines record: the Extraction's own JSON plus an `input` key naming the document
    (and, for a per-page result, its page and the input's page count)."""
    meta: dict[str, Any] = {"path": key[0], "sha256": key[1]}
    if result.page is not None:
        meta.update(page=result.page, pages=result.ocr.get("document_pages"))
    return {"input": meta, **result.to_dict()}


def done_key(key: DocKey, result: Extraction) -> DoneKey:
    return key if result.page is None else (key[0], key[1], result.page)


def read_results(path: Path) -> list[tuple[DocKey, Extraction]]:
    """Every complete record of a JSON Lines results file, as Extraction objects."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        meta = data.pop("input")
        out.append(((meta["path"], meta["sha256"]), Extraction.from_dict(data)))
    return out


def csv_columns(keys: Sequence[str] | None, per_page: bool = False) -> list[str]:
    """Fixed CSV columns: per key its value and status when the keys are known before the run,
    else one `values` column holding JSON; per page, its page number and the input's page count."""
    head = ["path", "sha256", *(["page", "pages"] if per_page else []), "ok", "scenario"]
    body = [c for k in keys for c in (k, f"{k}.status")] if keys else ["values"]
    return [*head, *body, "error"]


def format_line(fmt: LogFormat, key: DocKey, result: Extraction, columns: Sequence[str] | None = None) -> str:
    """One document as one line of JSON Lines or CSV (newline included)."""
    if fmt == "csv":
        return csv_text(csv_row(columns or csv_columns(None), key, result))
    return json.dumps(record_for(key, result), ensure_ascii=False, default=str) + "\n"


def csv_text(row: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def csv_row(columns: Sequence[str], key: DocKey, result: Extraction) -> list[str]:
    row = {"path": key[0], "sha256": key[1], "ok": "true" if result.ok else "false",
           "page": "" if result.page is None else str(result.page),
           "pages": str(result.ocr.get("document_pages") or ""),
           "scenario": result.scenario or "", "values": _flat(result.values),
           "error": _flat(result.error["message"]) if result.error else ""}
    for name, item in result.fields.items():
        row[name] = _flat(item.value)
        row[f"{name}.status"] = item.status
    return [row.get(column, "") for column in columns]


def _flat(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split())  # one physical line per row: newlines become spaces


@dataclass
class ResultLog:
    path: Path
    format: LogFormat = "jsonl"
    columns: list[str] | None = None  # CSV only
    done: set[DoneKey] = field(default_factory=set)
    page_counts: dict[DocKey, int] = field(default_factory=dict)  # per-page results: the input's pages
    repaired_bytes: int = 0  # the cut-off partial last line, if any
    dropped_failures: int = 0
    skipped_lines: int = 0  # complete lines that are not records (edited by hand?)
    _fd: int | None = None

    def open(self) -> ResultLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ConfigError(f"Another chatocr run is writing to {self.path}.",
                                      hint="Wait for it to finish, or use another --out file.") from None
            self._fd = fd
            self._recover()
        except BaseException:
            os.close(fd)
            self._fd = None
            raise
        return self

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ResultLog:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recovery -------------------------------------------------------------------------------

    def _recover(self) -> None:
        assert self._fd is not None
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            self.repaired_bytes = len(data) - len(complete)
            os.ftruncate(self._fd, len(complete))
            os.fsync(self._fd)
        lines = complete.decode("utf-8", errors="replace").splitlines(keepends=True)
        kept = self._csv_lines(lines) if self.format == "csv" else self._jsonl_lines(lines)
        if kept != lines:
            self._rewrite("".join(kept))
        if self.format == "csv" and not kept:
            self._write(csv_text(self.columns or []))

    def _jsonl_lines(self, lines: list[str]) -> list[str]:
        kept = []
        for line in lines:
            try:
                data = json.loads(line)
                key = self._done_key(data["input"])
            except (ValueError, KeyError, TypeError):
                self.skipped_lines += line.strip() != ""
                continue
            if data.get("error") is not None:
                self.dropped_failures += 1
                continue
            if key not in self.done:  # a duplicate (never written by us) is dropped too
                self.done.add(key)
                kept.append(line)
        return kept

    def _csv_lines(self, lines: list[str]) -> list[str]:
        if not lines:
            return []
        header = next(csv.reader([lines[0]]))
        if self.columns is not None and header != self.columns:
            raise ConfigError(
                f"{self.path} has the columns {header}, this run writes {self.columns}.",
                hint="Use the same --keys/--scenario as the run that started the file, or another --out file.",
            )
        self.columns = header
        kept = [lines[0]]
        for line in lines[1:]:
            row = next(csv.reader([line]), [])
            if len(row) != len(header):
                self.skipped_lines += line.strip() != ""
                continue
            record = dict(zip(header, row, strict=True))
            if record["ok"] != "true":
                self.dropped_failures += 1
                continue
            key = self._done_key(record)
            if key not in self.done:
                self.done.add(key)
                kept.append(line)
        return kept

    def _done_key(self, meta: dict[str, Any]) -> DoneKey:
        """The key of a record's `input` (JSON) or row (CSV); notes a per-page input's page count."""
        key: DocKey = (str(meta["path"]), str(meta["sha256"]))
        if meta.get("page") in (None, ""):
            return key
        if meta.get("pages") not in (None, ""):
            self.page_counts[key] = int(meta["pages"])
        return (key[0], key[1], int(meta["page"]))

    def done_pages(self, key: DocKey) -> set[int]:
        return {k[2] for k in self.done if len(k) == 3 and k[0] == key[0] and k[1] == key[1]}

    def _rewrite(self, text: str) -> None:
        """Replace the file's content atomically (temp file + rename), keeping our lock."""
        assert self._fd is not None
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(text.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        old = self._fd
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(old)
        _fsync_dir(self.path.parent)

    # -- appending ------------------------------------------------------------------------------

    def append(self, key: DocKey, result: Extraction) -> None:
        """Write one document's line with one write, then fsync."""
        self._write(format_line(self.format, key, result, self.columns))
        if result.ok:
            self.done.add(done_key(key, result))
            if result.page is not None and result.ocr.get("document_pages"):
                self.page_counts[key] = int(result.ocr["document_pages"])

    def _write(self, text: str) -> None:
        assert self._fd is not None, "ResultLog is not open"
        data = text.encode("utf-8")
        written = os.write(self._fd, data)
        while written < len(data):  # only on a full disk or a signal; still one record per call
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - not possible on every platform
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
