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
lease while it works. A job whose lease ran out, or whose process is gone, is claimed again.
Uploaded files are kept under the data directory (mode 0700) until their job finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from chatocr.errors import ChatOCRError, ConfigError, ImageTooLargeError, InputError
from chatocr.extraction.request import ExtractionRequest
from chatocr.extraction.result import Extraction
from chatocr.resources import cache_dir
from chatocr.runs.records import record_for
from chatocr.serve.errors import ServeError
from chatocr.serve.inputs import bytes_document, keys_field, served_request

if TYPE_CHECKING:
    from chatocr.serve.app import Service

__all__ = ["JobRunner", "JobStore", "jobs_router"]

LEASE_SECONDS = 60.0
MAX_JOB_FILES = 1000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,
    finished REAL, options TEXT NOT NULL, worker TEXT, lease REAL
);
CREATE TABLE IF NOT EXISTS documents (
    job TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, location TEXT NOT NULL,
    uploaded INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', result TEXT,
    PRIMARY KEY (job, idx)
);
"""
_WORKER = f"{socket.gethostname()}:{os.getpid()}"


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
        """Take the oldest queued job, or a running one whose process is gone or lease expired."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, state, worker, lease FROM jobs WHERE state IN ('queued', 'running') ORDER BY created"
            ).fetchall()
            for job, state, worker, lease in rows:
                if state == "queued" or (lease or 0) < now or not _worker_alive(worker):
                    db.execute(
                        "UPDATE jobs SET state = 'running', worker = ?, lease = ? WHERE id = ?",
                        (_WORKER, now + LEASE_SECONDS, job),
                    )
                    return str(job)
        return None

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
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'done', finished = ?, worker = NULL, lease = NULL WHERE id = ?",
                (time.time(), job),
            )
            uploads = [
                row[0] for row in db.execute("SELECT location FROM documents WHERE job = ? AND uploaded = 1", (job,))
            ]
        for location in uploads:
            Path(location).unlink(missing_ok=True)

    # -- reading ------------------------------------------------------------------------------

    def options(self, job: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT options FROM jobs WHERE id = ?", (job,)).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def status(self, job: str, owner: str, offset: int = 0, limit: int = 100) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, created, finished, options FROM jobs WHERE id = ? AND owner = ?", (job, owner)
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
        state, created, finished, options = row
        return {
            "id": job,
            "state": state,
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
    """Claims jobs from the store and extracts their documents, `job_concurrency` at a time."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

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
                raise
            except Exception:  # the job stays 'running'; its lease runs out and it is claimed again
                import logging

                logging.getLogger("chatocr.serve").exception("job %s failed in the runner", job)
                await asyncio.sleep(1)

    async def _run(self, job: str) -> None:
        store, service = self.service.store, self.service
        ocr = service.ocr
        assert ocr is not None
        options = store.options(job)
        limit = asyncio.Semaphore(service.settings.job_concurrency)
        try:  # checked when the job was accepted; a scenario removed since fails every document alike
            request: ExtractionRequest | None = ocr.request(options.get("keys"), options.get("scenario"))
            refused: BaseException | None = None
        except ChatOCRError as exc:
            request, refused = None, exc

        async def one(idx: int, name: str, location: str, uploaded: bool) -> None:
            async with limit:
                try:
                    if refused is not None:
                        raise refused
                    data = await asyncio.to_thread(_read_capped, Path(location), service.limits.max_bytes)
                    document = bytes_document(data, name, service.limits)
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


def _as_error(exc: BaseException) -> BaseException:
    """A document's failure as chatocr records it: a refused upload (ServeError) or an unreadable
    stored file (OSError) said in chatocr's words."""
    if isinstance(exc, ServeError):  # refused as the same bytes sent to /v1/extract would be
        kind = ImageTooLargeError if exc.status == 413 else InputError
        return kind(exc.message, hint=exc.hint)
    if isinstance(exc, OSError):
        return InputError(f"Cannot read the stored document: {exc.strerror or exc}.", hint="Check the file.")
    return exc


def _read_capped(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ServeError(
            413,
            "RequestTooLarge",
            f"{path.name} is over the limit of {limit} bytes.",
            "Downscale or split the document.",
        )
    return data


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _folder_documents(service: Service, folder: str) -> list[tuple[str, str, bool]]:
    from chatocr.runs.inputs import collect_inputs

    roots = [Path(r).expanduser().resolve() for r in service.settings.job_folders]
    if not roots:
        raise ServeError(
            403,
            "FolderNotAllowed",
            "This server does not take server-side folders.",
            "Upload the files as multipart `file` fields, or ask the operator for --job-folder.",
        )
    target = Path(folder).expanduser().resolve()
    if not _inside(target, roots) or not target.is_dir():
        raise ServeError(
            403,
            "FolderNotAllowed",
            f"{folder} is not a folder under the server's allowed roots.",
            "Name a folder under one of the roots the operator allowed with --job-folder.",
        )
    assert service.ocr is not None
    try:
        files = collect_inputs([target], service.ocr.engine.name)
    except ChatOCRError as exc:
        raise ServeError(400, type(exc).__name__, exc.message, exc.hint) from None
    # collect_inputs resolves links: a link pointing out of the allowed roots is left out.
    return [(str(f), str(f), False) for f in files if _inside(f, roots)][:MAX_JOB_FILES]


def jobs_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["jobs"])

    @router.post("/v1/jobs", status_code=202)
    async def create_job(request: Request) -> JSONResponse:
        """Start a job over uploaded files (multipart `file`, repeated) or a server-side `folder`."""
        owner = service.caller(request)
        service.ready_ocr()
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=MAX_JOB_FILES, max_fields=16)
            uploads = [v for k, v in form.multi_items() if k == "file" and isinstance(v, UploadFile)]
            if not uploads:
                raise ServeError(
                    400,
                    "RequestError",
                    "The multipart body has no field `file`.",
                    "Upload each document as a multipart field named `file`.",
                )
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            documents = []
            for upload in uploads:
                data = await upload.read()
                location = await asyncio.to_thread(service.store.save_upload, data)
                documents.append((upload.filename or "upload", location, True))
        else:
            try:
                fields = await request.json()
            except ValueError:
                raise ServeError(
                    400,
                    "RequestError",
                    "The request body is not valid JSON.",
                    'Send {"folder": ..., "keys": ...} or multipart `file` fields.',
                ) from None
            if not isinstance(fields, dict) or not isinstance(fields.get("folder"), str):
                raise ServeError(
                    400,
                    "RequestError",
                    "A JSON job needs `folder` (a server-side folder).",
                    "Or upload the files as multipart `file` fields.",
                )
            documents = _folder_documents(service, fields["folder"])
        scenario = fields.get("scenario") or None
        if scenario is not None and not isinstance(scenario, str):
            raise ServeError(400, "RequestError", "scenario must be a string.", "Send a scenario name.")
        keys = keys_field(fields.get("keys"))
        served_request(service.ready_ocr(), keys, scenario)  # a bad key or scenario: 400, and no job
        options = {"keys": keys, "scenario": scenario}
        job = await asyncio.to_thread(service.store.create, owner, options, documents)
        service.jobs.wake.set()
        return JSONResponse({"id": job, "state": "queued", "total": len(documents)}, status_code=202)

    @router.get("/v1/jobs/{job}")
    async def job_status(job: str, request: Request, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """Progress and results so far, in document order."""
        owner = service.caller(request)
        status = await asyncio.to_thread(service.store.status, job, owner, max(0, offset), max(1, min(limit, 1000)))
        if status is None:
            raise ServeError(
                404,
                "JobNotFound",
                f"No job {job} for this token.",
                "Use the id POST /v1/jobs returned, with the same token.",
            )
        return status

    return router
