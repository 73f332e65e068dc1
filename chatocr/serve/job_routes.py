"""POST /v1/jobs and GET /v1/jobs/{id}: what a client may ask of the jobs store (jobs.py).

    POST /v1/jobs        multipart with several `file` fields (and keys, scenario or scenario_yaml),
                         or JSON {"folder": "/srv/scans/2024", "keys": [...], "scenario": ...} for a
                         folder under one of the server's --job-folder roots  ->  202 {"id", "state", "total"}
    GET  /v1/jobs/{id}   state, progress and the results so far (?offset=&limit= to page them)

A job is checked whole before it is accepted (its body, its names, its folder, its request), in a
worker thread; only then are its uploads written to the store. A job that could never run is a
400 now, not a job left failing later.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError
from chatocr.serve.errors import ServeError
from chatocr.serve.inputs import Form, Received, invalid_body, json_body, keys_field
from chatocr.serve.jobs import JobStore, job_request
from chatocr.serve.settings import ServeSettings

if TYPE_CHECKING:
    from chatocr.serve.app import Service

__all__ = ["JOB_FORM", "MAX_JOB_FILES", "MAX_PAGE", "jobs_router"]

MAX_JOB_FILES = 1000
MAX_PAGE = 1000  # results per GET; page with ?offset=
JOB_FORM = Form(
    ("keys", "scenario", "scenario_yaml"),
    MAX_JOB_FILES,
    f"A job takes at most {MAX_JOB_FILES} files: send the rest as another job.",
)
_JOB_ID = re.compile(r"[0-9a-f]{32}")
_NUMBER = re.compile(r"[0-9]{1,19}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MEMBERS = "Members: folder, keys, scenario or scenario_yaml; or upload files as multipart `file` fields."


class JobBody(BaseModel):
    """The JSON body of POST /v1/jobs: a server-side folder and what to extract from its documents."""

    model_config = ConfigDict(extra="forbid")

    folder: str
    keys: list[str] | str | None = None
    scenario: str | None = None
    scenario_yaml: str | None = None


@dataclass
class NewJob:
    """A job checked and ready for the store: its options and documents (name, location, uploaded)."""

    options: dict[str, Any]
    documents: list[tuple[str, str, bool]] = field(default_factory=list)


def _bad(message: str, hint: str) -> ServeError:
    return ServeError(400, "RequestError", message, hint)


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _not_allowed(folder: str) -> ServeError:
    # The same words whether the folder is missing, unreadable or outside the roots: the answer
    # tells a client nothing about the server's disk beyond the roots it was allowed.
    return ServeError(
        403,
        "FolderNotAllowed",
        f"{_shown(folder, 200)} is not a folder under the server's allowed roots.",
        "Name a folder under one of the roots the operator allowed with --job-folder.",
    )


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def folder_documents(settings: ServeSettings, engine: str, folder: str) -> list[tuple[str, str, bool]]:
    """The documents of a server-side folder under an allowed root (in a worker thread: it walks
    the folder)."""
    from chatocr.runs.inputs import collect_inputs

    if not settings.job_folders:
        raise ServeError(
            403,
            "FolderNotAllowed",
            "This server does not take server-side folders.",
            "Upload the files as multipart `file` fields, or ask the operator for --job-folder.",
        )
    if not folder.strip() or _CONTROL.search(folder):
        raise _bad("folder must be a folder's path, without control characters.", "Name a folder under --job-folder.")
    roots = [Path(r).expanduser().resolve() for r in settings.job_folders]
    try:
        target = Path(folder).expanduser().resolve()
        if not _inside(target, roots) or not target.is_dir():
            raise _not_allowed(folder)
        files = collect_inputs([target], engine)
    except (OSError, ValueError, RuntimeError):  # a name too long, a link loop: as if not there
        raise _not_allowed(folder) from None
    except ChatOCRError as exc:  # no documents in it
        raise ServeError(400, type(exc).__name__, exc.message, exc.hint) from None
    # collect_inputs resolves links: a link pointing out of the allowed roots is left out.
    documents = [(str(f), str(f), False) for f in files if _inside(f, roots)]
    if not documents:
        raise _bad(
            f"No documents in {_shown(folder, 200)} (links out of the allowed roots are left out).",
            "Name another folder.",
        )
    if len(documents) > MAX_JOB_FILES:
        raise _bad(
            f"{_shown(folder, 200)} holds {len(documents)} documents; a job takes at most {MAX_JOB_FILES}.",
            "Name its subfolders as separate jobs.",
        )
    return documents


def parse_job(received: Received, service: Service, ocr: ChatOCR) -> NewJob:
    """A job's request and documents, checked whole (in a worker thread); uploads are written to
    the store only once everything else was accepted, so a refused job leaves no file behind."""
    if received.body is None:
        if not received.files:
            raise _bad("The multipart body has no field `file`.", "Upload each document as a multipart field `file`.")
        fields: dict[str, Any] = dict(received.fields)
        folder = None
    else:
        try:
            body = JobBody.model_validate(json_body(received))
        except ValidationError as exc:
            raise invalid_body(exc, JobBody, _MEMBERS) from None
        fields, folder = body.model_dump(exclude={"folder"}), body.folder
    options = {
        "keys": keys_field(fields.get("keys")),
        "scenario": fields.get("scenario") or None,
        "scenario_yaml": fields.get("scenario_yaml") or None,
    }
    job_request(ocr, options)  # a bad key or scenario: 400, and no job
    if folder is not None:
        return NewJob(options, folder_documents(service.settings, ocr.engine.name, folder))
    store: JobStore = service.store
    return NewJob(options, [(name, store.save_upload(data), True) for name, data in received.files])


def _page_number(request: Request, name: str, default: int, low: int, high: int) -> int:
    given = request.query_params.get(name)
    if given is None:
        return default
    if _NUMBER.fullmatch(given) and low <= int(given) <= high:
        return int(given)
    raise _bad(f"{name}={_shown(given)} is not a number from {low} to {high}.", "Page with ?offset=0&limit=100.")


def jobs_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["jobs"])

    @router.post("/v1/jobs", status_code=202)
    async def create_job(request: Request) -> JSONResponse:
        """Start a job over uploaded files (multipart `file`, repeated) or a server-side `folder`."""
        owner = service.caller(request)
        ocr = service.ready_ocr()
        received = await service.receive(request, JOB_FORM)
        job = await service.offload(request, lambda: parse_job(received, service, ocr))
        created = await asyncio.to_thread(service.store.create, owner, job.options, job.documents)
        service.jobs.notify()
        return JSONResponse({"id": created, "state": "queued", "total": len(job.documents)}, status_code=202)

    @router.get("/v1/jobs/{job}")
    async def job_status(job: str, request: Request) -> Response:
        """Progress and results so far, in document order (`limit` at most 1000 a page)."""
        owner = service.caller(request)
        offset = _page_number(request, "offset", 0, 0, MAX_JOB_FILES)
        limit = _page_number(request, "limit", 100, 1, MAX_PAGE)
        status = None
        if _JOB_ID.fullmatch(job):  # anything else is no job's id: not looked up
            # up to 1,000 results read back and rendered: on the work loop, like every answer
            status = await service.offload(request, lambda: service.store.status(job, owner, offset, limit))
        if status is None:
            raise ServeError(
                404,
                "JobNotFound",
                f"No job {_shown(job, 40)} for this token.",
                "Use the id POST /v1/jobs returned, with the same token.",
            )
        return await service.answer(status)

    return router
