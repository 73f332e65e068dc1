"""A results file that a batch run appends to and a later run resumes from.

Each finished document becomes one line (JSON Lines) or one row (CSV), written with a single
`os.write` on an O_APPEND descriptor and fsync'ed before the next document is reported done. A
document is identified by its absolute path and the SHA-256 of its content, so a re-run skips
what is already in the file and a changed file is done again. Opening the file for a run:

- a last line without its newline (the process died mid-write) is cut off: that document is redone;
- lines of documents that failed are dropped (the file is rewritten atomically), so they are retried;
- a document is known by its path: when its content changed since its line was written, the old
  line is dropped the same way and the new result replaces it (the newest result per path);
- another process writing to the same file at the same time is refused (an exclusive lock);
- a file holding anything chatocr did not write (another program's lines, a hand edit) is refused
  before anything in it is changed: chatocr never deletes data it did not write;
- the path must be a regular file (or not exist): a symlink, a directory or a path under a file is
  a usage error; a pipe or device (`--out /dev/stdout`) gets the lines streamed, without resume.

Hence, whatever killed the previous run, every document ends up in the file exactly once.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatocr.errors import ConfigError, OutputError, UsageError
from chatocr.extraction.result import Extraction
from chatocr.fileio import atomic_write, fsync_dir
from chatocr.runs.records import DocKey, DoneKey, LogFormat, csv_text, done_key, format_line

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ResultLog"]


@dataclass
class ResultLog:
    path: Path
    format: LogFormat = "jsonl"
    columns: list[str] | None = None  # CSV only
    # The documents of this run, path -> sha256: a line of one of these paths with another sha256
    # (the file changed) is replaced by the new result.
    current: dict[str, str] = field(default_factory=dict)
    done: set[DoneKey] = field(default_factory=set)
    page_counts: dict[DocKey, int] = field(default_factory=dict)  # per-page results: the input's pages
    repaired_bytes: int = 0  # the cut-off partial last line, if any
    dropped_failures: int = 0
    replaced_changed: int = 0  # lines of documents whose content changed since
    streaming: bool = False  # a pipe or device: lines are written, nothing is read or rewritten
    _fd: int | None = None

    def open(self) -> ResultLog:
        fd = self._open_target()
        if self.streaming:
            self._fd = fd
            if self.format == "csv":
                self._write(csv_text(self.columns or []))
            return self
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ConfigError(
                        f"Another chatocr run is writing to {self.path}.",
                        hint="Wait for it to finish, or use another --out file.",
                    ) from None
            self._fd = fd
            self._recover()
        except BaseException:
            os.close(fd)
            self._fd = None
            raise
        return self

    def _open_target(self) -> int:
        """The results file's descriptor; usage errors for paths that cannot be a results file."""
        where = self.path
        if where.is_symlink() and not _system_stream(where):
            raise UsageError(
                f"--out {where} is a symbolic link; chatocr does not write through links.",
                hint="Give the real path of the results file.",
            )
        if where.is_dir():
            raise UsageError(f"--out {where} is a directory.", hint="Give a file name, e.g. results.jsonl.")
        if _system_stream(where) or (where.exists() and not where.is_file()):  # /dev/stdout, a FIFO: stream
            self.streaming = True
            try:
                return os.open(where, os.O_WRONLY | os.O_APPEND)
            except OSError as error:
                raise UsageError(f"Cannot write to --out {where}: {error.strerror or error}.") from None
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(
                f"--out {where}: {where.parent} is not a directory.", hint="Give a path whose folders are folders."
            ) from None
        except OSError as error:
            raise UsageError(f"Cannot create the folder of --out {where}: {error.strerror or error}.") from None
        try:
            return os.open(where, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            raise UsageError(
                f"Cannot open --out {where}: {error.strerror or error}.", hint="Check the path and its permissions."
            ) from None

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
        tail = data[len(complete) :]
        lines = complete.decode("utf-8", errors="replace").splitlines(keepends=True)
        foreign: list[int] = []
        kept = self._csv_lines(lines, foreign) if self.format == "csv" else self._jsonl_lines(lines, foreign)
        if tail and not self._ours(tail):
            foreign.append(len(lines) + 1)
        if foreign:  # before anything is changed: never delete what chatocr did not write
            shown = ", ".join(map(str, foreign[:5])) + (", ..." if len(foreign) > 5 else "")
            raise ConfigError(
                f"{self.path} holds {len(foreign)} line(s) chatocr did not write (line {shown}); "
                "it was left unchanged.",
                hint="Give another --out file, or remove those lines if they are not needed.",
            )
        if tail:
            self.repaired_bytes = len(tail)
            os.ftruncate(self._fd, len(complete))
            os.fsync(self._fd)
        if kept != lines:
            self._rewrite("".join(kept))
        if self.format == "csv" and not kept:
            self._write(csv_text(self.columns or []))

    def _ours(self, tail: bytes) -> bool:
        """Whether a half-written last line is the start of one of our records (cut by a kill)."""
        if self.format == "csv":
            return self.columns is not None and self.path.stat().st_size > len(tail)  # after our header
        prefix = b'{"input": {"path": '  # how every line of ours begins (record_for, json.dumps)
        return prefix.startswith(tail) or tail.startswith(prefix)

    def _stale(self, key: DoneKey) -> bool:
        """A line of a document of this run whose content has changed since."""
        return key[0] in self.current and self.current[key[0]] != key[1]

    def _jsonl_lines(self, lines: list[str], foreign: list[int]) -> list[str]:
        kept = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue  # blank lines carry nothing
            try:
                data = json.loads(line)
                key = self._done_key(data["input"])
            except (ValueError, KeyError, TypeError, RecursionError):
                foreign.append(number)
                continue
            if data.get("error") is not None:
                self.dropped_failures += 1
                continue
            if self._stale(key):
                self.replaced_changed += 1
                continue
            if key not in self.done:  # a duplicate (never written by us) is dropped too
                self.done.add(key)
                kept.append(line)
        return kept

    def _csv_lines(self, lines: list[str], foreign: list[int]) -> list[str]:
        if not lines:
            return []
        header = next(csv.reader([lines[0]]), [])
        if header[:2] != ["path", "sha256"] or not {"ok", "scenario"} <= set(header) or header[-1:] != ["error"]:
            foreign.append(1)
            return lines
        if self.columns is not None and header != self.columns:
            raise ConfigError(
                f"{self.path} has the columns {header}, this run writes {self.columns}.",
                hint="Use the same --keys/--scenario as the run that started the file, or another --out file.",
            )
        self.columns = header
        kept = [lines[0]]
        for number, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            row = next(csv.reader([line]), [])
            if len(row) != len(header):
                foreign.append(number)
                continue
            record = dict(zip(header, row, strict=True))
            if record["ok"] != "true":
                self.dropped_failures += 1
                continue
            key = self._done_key(record)
            if self._stale(key):
                self.replaced_changed += 1
                continue
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
        atomic_write(self.path, text)
        old = self._fd
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(old)
        fsync_dir(self.path.parent)

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
        try:
            written = os.write(self._fd, data)
            while written < len(data):  # only on a full disk or a signal; still one record per call
                written += os.write(self._fd, data[written:])
            if not self.streaming:  # a pipe or tty cannot be fsync'ed
                os.fsync(self._fd)
        except OSError as error:  # ENOSPC, EFBIG (a file size limit), EIO: stop, the next run resumes
            raise OutputError(f"Cannot write to {self.path}: {error.strerror or error}.") from None


def _system_stream(path: Path) -> bool:
    """/dev/stdout, /dev/fd/N, /dev/null...: the system's own streams, even when the shell has
    pointed them at a file (then /dev/stdout is a link to it): written as a stream, never rewritten."""
    return path.absolute().parts[:2] == ("/", "dev")
