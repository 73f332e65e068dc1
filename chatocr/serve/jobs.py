"""Jobs: many documents extracted in the background, kept in a durable store.

    POST /v1/jobs        multipart with several `file` fields (and keys, scenario), or JSON
                         {"folder": "/srv/scans/2024", "keys": [...], "scenario": ...} for a folder
                         under one of the server's --job-folder roots  ->  202 {"id", "state", "total"}
    GET  /v1/jobs/{id}   state, progress and the results so far (?offset=&limit= to page them)

The store is SQLite through the standard library: one file, no server to run, transactions that
survive a crash (WAL, synchronous=FULL), and row locks good enough for the few writers a service
has (one per worker process). Each document's result is committed as it finishes, so a restarted
server answers for finished jobs and resumes unfinished ones from the first document not done.
A job belongs to the token that created it; another token gets 404 for it.

Which process runs a job: the one that claims it (UPDATE ... WHERE state = 'queued') and renews a
lease while it works. A job whose lease ran out, or whose process is gone, is claimed again, up to
MAX_ATTEMPTS runs in all: a job that brings its process down every time is not re-run forever.
Uploaded files are kept under the data directory (mode 0700) until their job finishes.

How a job ends: `done` when at least one document has its result (failed documents carry their
own `error`); `failed`, with the job's `error`, when every document failed, when the job cannot be
run at all (its scenario left the library since), when the runner fails on it, or when it was
started MAX_ATTEMPTS times without finishing. Never `running` with nobody running it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sqlite3
import stat
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError, ConfigError, DocumentTooLargeError, ImageTooLargeError, InputError
from chatocr.extraction.request import ExtractionRequest
from chatocr.extraction.result import Extraction
from chatocr.ocr.images import ImageLimits
from chatocr.resources import cache_dir
from chatocr.runs.records import record_for
from chatocr.serve.errors import ServeError
from chatocr.serve.inputs import Document, bytes_document, check_fits, model_chars
from chatocr.serve.scenarios import served_request, served_scenario

if TYPE_CHECKING:
    from chatocr.serve.app import Service

__all__ = ["MAX_ATTEMPTS", "JobRunner", "JobStore", "job_request"]

log = logging.getLogger("chatocr.serve")

LEASE_SECONDS = 60.0
MAX_ATTEMPTS = 3  # runs of one job (a restart after a crash is one more); then it is `failed`
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
    finished REAL, options TEXT NOT NULL, worker TEXT, lease REAL,
    error TEXT, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS documents (
    job TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, location TEXT NOT NULL,
    uploaded INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', result TEXT,
    PRIMARY KEY (job, idx)
);
"""
_WORKER = f"{socket.gethostname()}:{os.getpid()}"
# Columns a store made by an earlier chatocr lacks: added when it is opened.
_ADDED_COLUMNS = (("error", "TEXT"), ("attempts", "INTEGER NOT NULL DEFAULT 0"))


def _worker_alive(worker: str | None) -> bool:
    """Whether the process named `host:pid` may still be running (unknown hosts count as alive)."""
    if not worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class JobStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.blobs = directory / "uploads"
        for folder in (directory, self.blobs):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = directory / "jobs.sqlite3"
        for path in (
            directory,
            self.blobs,
            database,
            database.with_name("jobs.sqlite3-wal"),
            database.with_name("jobs.sqlite3-shm"),
        ):
            if path.is_symlink():  # a planted link would make the store write elsewhere
                raise ConfigError(
                    f"{path} is a symbolic link; the jobs store will not follow it.",
                    hint="Give --data-dir a directory of its own, with no links in it.",
                )
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        with self._tx() as db:  # in one transaction: several workers may open the store at once
            have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    @classmethod
    def open(cls, directory: Path | None) -> JobStore:
        return cls(directory or cache_dir("serve"))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- writing ------------------------------------------------------------------------------

    def save_upload(self, data: bytes) -> str:
        """Keep an uploaded file until its job is done: a fresh name, created exclusively, never
        through a link."""
        fd, path = tempfile.mkstemp(prefix="doc-", dir=self.blobs)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def create(self, owner: str, options: dict[str, Any], documents: list[tuple[str, str, bool]]) -> str:
        """documents: (name, location, uploaded). Returns the job id."""
        job = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, owner, state, created, options) VALUES (?, ?, 'queued', ?, ?)",
                (job, owner, time.time(), json.dumps(options)),
            )
            db.executemany(
                "INSERT INTO documents (job, idx, name, location, uploaded) VALUES (?, ?, ?, ?, ?)",
                [(job, i, name, location, int(up)) for i, (name, location, up) in enumerate(documents)],
            )
        return job

    def claim(self) -> str | None:
        """Take the oldest queued job, or a running one whose process is gone or lease expired;
        one started MAX_ATTEMPTS times already is failed instead."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, state, worker, lease, attempts FROM jobs WHERE state IN ('queued', 'running') "
                "ORDER BY created"
            ).fetchall()
            abandoned: list[str] = []
            claimed = None
            for job, state, worker, lease, attempts in rows:
                if state == "queued" or (lease or 0) < now or not _worker_alive(worker):
                    if attempts >= MAX_ATTEMPTS:
                        abandoned += self._failed(db, job, _abandoned(attempts))
                        continue
                    db.execute(
                        "UPDATE jobs SET state = 'running', worker = ?, lease = ?, attempts = attempts + 1 "
                        "WHERE id = ?",
                        (_WORKER, now + LEASE_SECONDS, job),
                    )
                    claimed = str(job)
                    break
        _remove(abandoned)
        return claimed

    def release(self, job: str) -> None:
        """Give a job back to the queue (this server is stopping): that run does not count."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'queued', worker = NULL, lease = NULL, attempts = MAX(0, attempts - 1) "
                "WHERE id = ? AND worker = ? AND state = 'running'",
                (job, _WORKER),
            )

    def renew(self, job: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET lease = ? WHERE id = ? AND worker = ?", (time.time() + LEASE_SECONDS, job, _WORKER)
            )

    def pending(self, job: str) -> list[tuple[int, str, str, bool]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, name, location, uploaded FROM documents WHERE job = ? AND state = 'pending' ORDER BY idx",
                (job,),
            ).fetchall()
        return [(int(i), str(n), str(loc), bool(up)) for i, n, loc, up in rows]

    def record(self, job: str, idx: int, result: dict[str, Any]) -> None:
        state = "done" if result.get("error") is None else "failed"
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET state = ?, result = ? WHERE job = ? AND idx = ? AND state = 'pending'",
                (state, json.dumps(result, ensure_ascii=False, default=str), job, idx),
            )
            db.execute("UPDATE jobs SET lease = ? WHERE id = ?", (time.time() + LEASE_SECONDS, job))

    def finish(self, job: str) -> None:
        """The job is over: `done`, or `failed` with its error when every document failed."""
        with self._tx() as db:
            counts = dict(db.execute("SELECT state, COUNT(*) FROM documents WHERE job = ? GROUP BY state", (job,)))
            first = db.execute(
                "SELECT result FROM documents WHERE job = ? AND state = 'failed' ORDER BY idx LIMIT 1", (job,)
            ).fetchone()
            if counts.get("failed") and not counts.get("done"):
                error = (json.loads(first[0]).get("error") if first and first[0] else None) or {}
                summary = {
                    "type": str(error.get("type", "JobFailed")),
                    "message": f"All {counts['failed']} document(s) failed; the first: {error.get('message', '')}",
                    "hint": str(error.get("hint", "See each document's error in `results`.")),
                }
                uploads = self._failed(db, job, summary)
            else:
                db.execute(
                    "UPDATE jobs SET state = 'done', finished = ?, worker = NULL, lease = NULL WHERE id = ?",
                    (time.time(), job),
                )
                uploads = self._uploads(db, job)
        _remove(uploads)

    def fail(self, job: str, error: dict[str, str]) -> None:
        """The job cannot be run (or its runner failed): `failed` with `error`, its documents not run."""
        with self._tx() as db:
            uploads = self._failed(db, job, error)
        _remove(uploads)

    def _failed(self, db: sqlite3.Connection, job: str, error: dict[str, str]) -> list[str]:
        db.execute(
            "UPDATE jobs SET state = 'failed', error = ?, finished = ?, worker = NULL, lease = NULL WHERE id = ?",
            (json.dumps(error, ensure_ascii=False), time.time(), job),
        )
        db.execute("UPDATE documents SET state = 'failed' WHERE job = ? AND state = 'pending'", (job,))
        return self._uploads(db, job)

    @staticmethod
    def _uploads(db: sqlite3.Connection, job: str) -> list[str]:
        return [row[0] for row in db.execute("SELECT location FROM documents WHERE job = ? AND uploaded = 1", (job,))]

    # -- reading ------------------------------------------------------------------------------

    def options(self, job: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT options FROM jobs WHERE id = ?", (job,)).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def status(self, job: str, owner: str, offset: int = 0, limit: int = 100) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, created, finished, options, error FROM jobs WHERE id = ? AND owner = ?", (job, owner)
            ).fetchone()
            if row is None:
                return None
            counts = dict(
                self._db.execute(
                    "SELECT state, COUNT(*) FROM documents WHERE job = ? GROUP BY state", (job,)
                ).fetchall()
            )
            results = self._db.execute(
                "SELECT result FROM documents WHERE job = ? AND result IS NOT NULL ORDER BY idx LIMIT ? OFFSET ?",
                (job, limit, offset),
            ).fetchall()
        state, created, finished, options, error = row
        return {
            "id": job,
            "state": state,
            "error": json.loads(error) if error else None,
            "created": created,
            "finished": finished,
            "options": json.loads(options),
            "total": sum(counts.values()),
            "done": counts.get("done", 0),
            "failed": counts.get("failed", 0),
            "pending": counts.get("pending", 0),
            "offset": offset,
            "results": [json.loads(r[0]) for r in results],
        }


class JobRunner:
    """Claims jobs from the store and extracts their documents, `job_concurrency` at a time, on the
    service's work loop (serve/worker.py)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.wake = asyncio.Event()  # lives on the work loop: set it through `notify`
        self._running: Future[None] | None = None

    def start(self) -> None:
        if self._running is None:
            self._running = self.service.worker.submit(self._loop())

    def notify(self) -> None:
        """A job was stored: look for it now, not at the next lease tick."""
        self.service.worker.notify(self.wake.set)

    async def stop(self) -> None:
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # wrap_future says a cancel in asyncio's words
                await asyncio.wrap_future(self._running)

    async def _loop(self) -> None:
        store = self.service.store
        while True:
            job = await asyncio.to_thread(store.claim)
            if job is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=LEASE_SECONDS / 4)
                self.wake.clear()
                continue
            try:
                await self._run(job)
            except asyncio.CancelledError:
                store.release(job)  # the server is stopping: the next one takes the job up again
                raise
            except Exception:  # a bug: the job fails with an error naming it, and is not re-run
                log.exception("job %s failed in the runner", job)
                await asyncio.to_thread(store.fail, job, _internal_error(job))

    async def _run(self, job: str) -> None:
        store, service = self.service.store, self.service
        ocr = service.ocr
        assert ocr is not None
        options = await asyncio.to_thread(store.options, job)
        try:  # checked when the job was accepted; a scenario that left the library since fails it
            request = await asyncio.to_thread(job_request, ocr, options)
        except (ServeError, ChatOCRError) as exc:
            await asyncio.to_thread(store.fail, job, _error_record(exc))
            return
        limit = asyncio.Semaphore(service.settings.job_concurrency)
        most = model_chars(ocr)

        async def one(idx: int, name: str, location: str, uploaded: bool) -> None:
            async with limit:
                try:
                    document = await asyncio.to_thread(_stored_document, Path(location), name, service.limits, most)
                except (ServeError, OSError, ChatOCRError) as exc:
                    failed = Extraction.failed(name, _as_error(exc))
                    await asyncio.to_thread(store.record, job, idx, record_for((name, ""), failed))
                    return
                result = await ocr.aextract(document.source, request=request, raise_errors=False)
                await asyncio.to_thread(store.record, job, idx, record_for((name, document.sha256), result))

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(LEASE_SECONDS / 3)
                await asyncio.to_thread(store.renew, job)

        beating = asyncio.ensure_future(heartbeat())
        try:
            pending = await asyncio.to_thread(store.pending, job)
            await asyncio.gather(*(one(*doc) for doc in pending))
        finally:
            beating.cancel()
        await asyncio.to_thread(store.finish, job)


def job_request(ocr: ChatOCR, options: dict[str, Any]) -> ExtractionRequest:
    """A job's request from its stored options, resolved as a request's are (a scenario by name or
    inline YAML, never a path): when the job is accepted, and again when it runs."""
    scenario = served_scenario(ocr, options.get("scenario"), options.get("scenario_yaml"))
    return served_request(ocr, options.get("keys"), scenario)


def _error_record(exc: ServeError | ChatOCRError) -> dict[str, str]:
    return {
        "type": exc.type if isinstance(exc, ServeError) else type(exc).__name__,
        "message": exc.message,
        "hint": exc.hint,
    }


def _internal_error(job: str) -> dict[str, str]:
    return {
        "type": "InternalError",
        "message": f"The server failed while running job {job}.",
        "hint": "This is a bug in chatocr: report it with the job id (the server's log has the details).",
    }


def _abandoned(attempts: int) -> dict[str, str]:
    return {
        "type": "JobAbandoned",
        "message": f"The job was started {attempts} times and never finished (its server stopped each time).",
        "hint": "Submit it again with fewer or smaller documents; if it stops again, tell the server's operator.",
    }


def _as_error(exc: BaseException) -> BaseException:
    """A document's failure as chatocr records it: a refused upload (ServeError) or an unreadable
    stored file (OSError) said in chatocr's words."""
    if isinstance(exc, ServeError):  # refused as the same bytes sent to /v1/extract would be
        kinds: dict[str, type[ChatOCRError]] = {"DocumentTooLargeError": DocumentTooLargeError}
        kind = ImageTooLargeError if exc.status == 413 else kinds.get(exc.type, InputError)
        return kind(exc.message, hint=exc.hint)
    if isinstance(exc, OSError):
        return InputError(f"Cannot read the stored document: {exc.strerror or exc}.", hint="Check the file.")
    return exc


def _stored_document(path: Path, name: str, limits: ImageLimits, most_chars: int | None) -> Document:
    """A job's document from its file (an upload, or a file of an allowed folder), in a worker
    thread: read within the byte limit, OCR text parsed. A pipe or a device with a document's name
    is refused at once (opened O_NONBLOCK, checked with fstat), never waited on."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InputError(
                f"{name} is not a regular file (a pipe or a device?).", hint="Give image, PDF or text files."
            )
        data = handle.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ServeError(
            413, "RequestTooLarge", f"{name} is over the limit of {limits.max_bytes} bytes.", "Downscale or split it."
        )
    document = bytes_document(data, name, limits, most_chars)
    check_fits(document, most_chars)  # text the model cannot read: refused here, not on the event loop
    return document


def _remove(paths: list[str]) -> None:
    for location in paths:
        Path(location).unlink(missing_ok=True)
