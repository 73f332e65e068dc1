"""The service's routes: health, extraction and chat, the scenario library. (Jobs: serve/jobs.py.)"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError
from chatocr.extraction.request import ExtractionRequest
from chatocr.runs.records import record_for
from chatocr.serve.errors import ServeError, from_chatocr_error, from_error_dict
from chatocr.serve.inputs import CHAT_FORM, EXTRACT_FORM, Document, ExtractBody, parse_chat, parse_extract
from chatocr.serve.scenarios import MAX_SCENARIO_NAME

if TYPE_CHECKING:
    from chatocr.serve.app import Service

__all__ = ["extract_router", "health_router", "render_json", "run_extract", "scenarios_router"]

log = logging.getLogger("chatocr.serve")


def health_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        ocr = service.ocr
        if ocr is None:
            error = service.load_error
            body = {"ready": False, "error": None if error is None else {"message": error.message, "hint": error.hint}}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"ready": True, "llm": f"{ocr.model.provider}:{ocr.model.model}", "ocr": ocr.engine.name})

    return router


def extract_router(service: Service) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/extract", tags=["extract"], openapi_extra=_extract_openapi())
    async def extract(request: Request) -> Response:
        """Key fields of one document: the Extraction JSON (values, fields with boxes, route, usage)."""
        caller = service.caller(request)
        ocr = service.ready_ocr()
        received = await service.receive(request, EXTRACT_FORM)
        sent = await service.offload(request, lambda: parse_extract(received, ocr, service.limits))
        body = await service.guarded(request, caller, lambda: run_extract(ocr, sent.document, sent.request))
        return await service.answer(body)

    @router.post("/v1/chat", tags=["chat"])
    async def chat(request: Request) -> Response:
        """Answer a question about a document. Stateless: send `history` ([[question, answer], ...])
        as returned by the previous answer; the server keeps nothing between requests."""
        caller = service.caller(request)
        ocr = service.ready_ocr()
        received = await service.receive(request, CHAT_FORM)
        sent = await service.offload(request, lambda: parse_chat(received, ocr, service.limits))

        async def work() -> dict[str, Any]:
            try:
                session = await ocr.achat(sent.document.source, sent.scenario)
                session.history = list(sent.history)
                answer = await session.aask(sent.question)
            except ChatOCRError as exc:
                raise from_chatocr_error(exc) from None
            return {
                "answer": answer,
                "history": [list(turn) for turn in session.history],
                "dropped_history": session.dropped_history,
                "usage": session.usage,
            }

        return await service.answer(await service.guarded(request, caller, work))

    return router


def scenarios_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["scenarios"])

    @router.get("/v1/scenarios")
    async def scenarios(request: Request) -> dict[str, Any]:
        service.caller(request)
        ocr = service.ready_ocr()
        return {
            "scenarios": [
                {"name": s.name, "title": s.title, "language": s.language, "fields": [f.name for f in s.fields]}
                for s in ocr.library
            ]
        }

    @router.get("/v1/scenarios/{name}")
    async def scenario(name: str, request: Request) -> dict[str, Any]:
        service.caller(request)
        ocr = service.ready_ocr()
        if len(name) > MAX_SCENARIO_NAME:  # no such name; and the did-you-mean stays cheap
            raise ServeError(404, "ScenarioError", "No scenario has a name that long.", "See GET /v1/scenarios.")
        if name not in ocr.library:
            try:
                ocr.library.get(name)
            except ChatOCRError as exc:
                raise ServeError(404, type(exc).__name__, exc.message, exc.hint) from None
        found: dict[str, Any] = ocr.library.get(name).model_dump(mode="json")
        return found

    return router


def render_json(body: Any) -> bytes:
    """An answer's bytes: compact JSON, UTF-8 (not ASCII escapes), no NaN."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


async def run_extract(ocr: ChatOCR, doc: Document, request: ExtractionRequest) -> dict[str, Any]:
    """One document (or one result per page) as the Extraction JSON of `chatocr extract --format json`."""
    key = (doc.name, doc.sha256)
    if request.per_page:
        try:
            results = await ocr.aextract_pages(doc.source, request=request, raise_errors=False)
        except ChatOCRError as exc:
            raise from_chatocr_error(exc) from None
        if len(results) == 1 and results[0].error is not None and results[0].page is None:
            raise from_error_dict(results[0].error, record_for(key, results[0]))  # the input itself is unreadable
        return {"input": {"path": doc.name, "sha256": doc.sha256}, "pages": [r.to_dict() for r in results]}
    try:
        result = await ocr.aextract(doc.source, request=request)
    except ChatOCRError as exc:
        partial = exc.result
        if type(exc) is ChatOCRError:  # an unexpected failure inside chatocr: keep the detail in our log
            log.error("extraction failed unexpectedly: %s", exc.message)
        raise from_chatocr_error(exc, record_for(key, partial) if partial is not None else None) from None
    return record_for(key, result)


def _extract_openapi() -> dict[str, Any]:
    schema = ExtractBody.model_json_schema(by_alias=True)
    form = {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "an image, a PDF, or .txt/.json OCR text"},
            "keys": {"type": "string", "description": "comma-separated, or a JSON list"},
            "scenario": {"type": "string", "description": 'a scenario name of this server, or "auto"'},
            "scenario_yaml": {"type": "string", "description": "your own scenario as YAML text (this request only)"},
            "schema": {"type": "string", "description": "a JSON Schema, as JSON text"},
            "per_page": {"type": "boolean"},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "multipart/form-data": {"schema": form}},
        }
    }
