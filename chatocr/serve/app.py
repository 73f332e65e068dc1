"""The FastAPI application: routes, authentication, limits, and the one ChatOCR behind them.

    POST /v1/extract            multipart `file` or JSON `text`/`image_base64` -> the Extraction JSON
    POST /v1/chat               a question about a document; the client sends the history (stateless)
    POST /v1/jobs, GET /v1/jobs/{id}   several documents in the background, in a durable store
    GET  /v1/scenarios[/{name}] the scenarios this server knows
    GET  /healthz               the process is up;  GET /readyz: OCR engine and model are loaded
    GET  /docs                  OpenAPI

The ChatOCR is built once per process in a worker thread after start-up, so /healthz answers
while the model loads; extraction requests before it is ready get 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError
from chatocr.ocr.images import ImageLimits
from chatocr.serve.admission import Admission
from chatocr.serve.decoding import BodyDecoder
from chatocr.serve.errors import ServeError, error_body
from chatocr.serve.inputs import Form, Received, receive
from chatocr.serve.job_routes import jobs_router
from chatocr.serve.jobs import JobRunner, JobStore
from chatocr.serve.middleware import AccessLog, BodyLimit, BodyTooLarge, too_large_body
from chatocr.serve.review_pages import PREFIX as REVIEW_PREFIX
from chatocr.serve.review_pages import memory_overrides, review_pages
from chatocr.serve.routes import extract_router, health_router, render_json, scenarios_router
from chatocr.serve.settings import ServeSettings, TokenSet
from chatocr.serve.worker import WorkLoop

__all__ = ["Service", "create_app"]

log = logging.getLogger("chatocr.serve")
T = TypeVar("T")
ChatOCRFactory = Callable[[], ChatOCR]


def build_chatocr(settings: ServeSettings) -> ChatOCR:
    """The ChatOCR of the usual --llm/--ocr/--config, loaded now (not at the first request)."""
    from chatocr.llm.credentials import load_keys_file

    load_keys_file()  # the model's API keys, like every other command
    ocr = ChatOCR(llm=settings.llm, ocr=settings.ocr, config=settings.config, **memory_overrides(settings))
    load = getattr(ocr.model, "llama", None)  # an in-process model loads lazily: load it before ready
    if callable(load):
        load()
    return ocr


class Service:
    """What the routes share: settings, tokens, the ChatOCR (once loaded), admission, jobs."""

    def __init__(self, settings: ServeSettings, tokens: TokenSet, factory: ChatOCRFactory) -> None:
        self.settings = settings
        self.tokens = tokens
        self.factory = factory
        self.limits = ImageLimits(
            max_pixels=settings.max_pixels, max_pages=settings.max_pages, max_bytes=settings.max_body_bytes
        )
        self.admission = Admission(settings.concurrency, settings.queue, settings.per_token)
        # Everything a request costs in Python (parsing it, extracting, rendering the answer, the
        # job runner) runs on the work loop's one thread, never on uvicorn's loop (serve/worker.py).
        # A document in flight may wait on two blocking calls at once (its OCR, the model loading).
        self.worker = WorkLoop(call_threads=2 * (settings.concurrency + settings.job_concurrency) + 2)
        self.decoder = BodyDecoder()
        self.ocr: ChatOCR | None = None
        self.load_error: ChatOCRError | None = None
        self.loaded = asyncio.Event()
        data_dir = Path(settings.data_dir).expanduser() if settings.data_dir else None
        self.store = JobStore.open(data_dir)
        self.jobs = JobRunner(self)

    async def load(self) -> None:
        try:
            ocr = await asyncio.to_thread(self.factory)
        except ChatOCRError as exc:
            self.load_error = exc
            log.error("chatocr could not load its model or OCR engine: %s", exc)
            return
        except Exception as exc:  # reported by /readyz, and the process stays up for it
            self.load_error = ChatOCRError(f"{type(exc).__name__}: {exc}", hint="See the server's log.")
            log.exception("chatocr could not load its model or OCR engine")
            return
        _apply_limits(ocr, self.limits)
        self.decoder.start()
        self.ocr = ocr
        self.loaded.set()
        self.jobs.start()

    def ready_ocr(self) -> ChatOCR:
        if self.ocr is not None:
            return self.ocr
        if self.load_error is not None:
            raise ServeError(
                503,
                "NotReady",
                f"The server could not load its model or OCR: {self.load_error.message}",
                self.load_error.hint,
            )
        raise ServeError(
            503,
            "NotReady",
            "The server is still loading its model and OCR engine.",
            "Retry after the seconds in Retry-After; GET /readyz says when it is ready.",
            headers={"Retry-After": "5"},
        )

    def caller(self, request: Request) -> str:
        """The caller's id (a digest of its token), after checking the bearer token."""
        if not self.tokens:
            caller = "anonymous"
        else:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            matched = self.tokens.match(presented.strip()) if scheme.lower() == "bearer" else None
            if matched is None:
                raise ServeError(
                    401,
                    "Unauthorized",
                    "A valid bearer token is required." if presented else "No bearer token was sent.",
                    "Send the header `Authorization: Bearer <token>` with a token the server's operator gave you.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            caller = matched
        request.state.caller = caller
        return caller

    def remaining(self, request: Request) -> float:
        """Seconds left of the request's timeout, counted from its first step (reading its body)."""
        state = request.scope.setdefault("state", {})
        deadline = state.setdefault("deadline", time.monotonic() + self.settings.timeout)
        return max(0.0, float(deadline) - time.monotonic())

    async def within(self, request: Request, step: Awaitable[T]) -> T:
        """`step` (reading the body, parsing it) within what is left of the request's timeout."""
        try:
            return await asyncio.wait_for(step, self.remaining(request))
        except asyncio.TimeoutError:
            raise self.timed_out() from None

    async def receive(self, request: Request, form: Form) -> Received:
        """The body (read on the event loop: I/O only), a large JSON body decoded in the decoding
        process (serve/decoding.py), within the request's timeout."""
        received = await self.within(request, receive(request, form))
        if self.decoder.wants(received):  # the child decodes it; the decoder's thread waits on the pipes
            # Awaited from the work loop, not this one: measured, alternating the two (three pairs of
            # the hostile load test), /healthz p99 62-66 ms this way, 65-69 ms awaited here.
            await self.within(request, self.worker.run(self.decoder.decode(received)))
        return received

    async def offload(self, request: Request, work: Callable[[], T]) -> T:
        """CPU work on a request (parsing, mapping its schema) on the work loop, so the event loop
        keeps answering (/healthz) while it runs, within the request's timeout. A timed-out parse
        finishes (Python cannot interrupt it); the limits on every input bound it."""
        return await self.within(request, self.worker.call(work))

    async def answer(self, body: Any) -> Response:
        """`body` as a JSON response, rendered on the work loop: a long document's transcript is
        megabytes of JSON the event loop need not spend its time on."""
        return Response(await self.worker.call(lambda: render_json(body)), media_type="application/json")

    def timed_out(self) -> ServeError:
        return ServeError(
            504,
            "RequestTimeout",
            f"No answer within the request timeout of {self.settings.timeout:g} s.",
            "Send a smaller document or fewer keys, retry later, or ask the operator to raise --timeout.",
        )

    async def guarded(self, request: Request, caller: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run `work` on the work loop in an admission slot, within the request timeout (waiting and
        reading the body included); give the slot back as soon as the client disconnects."""

        async def admitted() -> T:
            async with self.admission.slot(caller):
                return await self.worker.run(work())

        task = asyncio.ensure_future(asyncio.wait_for(admitted(), self.remaining(request)))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise ClientGone
        try:
            return task.result()
        except asyncio.TimeoutError:
            raise self.timed_out() from None


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _apply_limits(ocr: ChatOCR, limits: ImageLimits) -> None:
    """The service's pixel and page limits become the OCR engine's own (it checks them while decoding)."""
    engine: Any = getattr(ocr.engine, "engine", ocr.engine)  # inside the cache wrapper
    current = getattr(engine, "limits", None)
    if isinstance(current, ImageLimits):
        engine.limits = dataclasses.replace(
            current, max_pixels=limits.max_pixels, max_pages=limits.max_pages, max_bytes=limits.max_bytes
        )


def create_app(
    settings: ServeSettings | None = None,
    tokens: TokenSet | None = None,
    *,
    chatocr: ChatOCR | ChatOCRFactory | None = None,
) -> FastAPI:
    """The service as an ASGI app. `chatocr`: a ready ChatOCR or a function making one (default:
    from the settings' llm/ocr/config)."""
    settings = settings or ServeSettings()
    tokens = tokens if tokens is not None else TokenSet([])
    if isinstance(chatocr, ChatOCR):
        ready = chatocr
        factory: ChatOCRFactory = lambda: ready  # noqa: E731
    else:
        factory = chatocr or (lambda: build_chatocr(settings))
    service = Service(settings, tokens, factory)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.ensure_future(service.load())
        try:
            yield
        finally:
            loading.cancel()
            await service.jobs.stop()
            await service.worker.aclose()
            service.decoder.close()
            service.store.close()

    app = FastAPI(
        title="chatocr",
        version="1",
        lifespan=lifespan,
        description='Key fields from document images as grounded JSON. Errors: {"error": {"type", "message", "hint"}}.',
    )
    app.state.service = service
    _answer_errors(app)
    for router in (health_router(service), extract_router(service), scenarios_router(service), jobs_router(service)):
        app.include_router(router)
    if settings.review is not None:  # serve --review RESULTS: the review pages, behind the tokens
        app.include_router(review_pages(service, settings), prefix=REVIEW_PREFIX)
    if settings.cors_origins:  # off unless configured
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(AccessLog)
    return app


def _answer_errors(app: FastAPI) -> None:
    """Every failure answers chatocr's error shape, {"error": {"type", "message", "hint"}}."""

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(too_large_body(exc.limit), status_code=413, headers={"Connection": "close"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(error_body("RequestError", f"Invalid request: {problems}", "See /docs."), status_code=400)

    @app.exception_handler(HTTPException)
    async def _framework(request: Request, exc: HTTPException) -> JSONResponse:
        """The framework's own answers (no such route, a method a route does not take) in our shape."""
        kind, message, hint = _framework_error(request, exc)
        return JSONResponse(error_body(kind, message, hint), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it; the access log records the disconnect

    @app.exception_handler(ClientDisconnect)
    async def _hung_up(request: Request, exc: ClientDisconnect) -> Response:
        # A client that hangs up mid-upload is the network's news, not a bug: said once, at info.
        log.info("client hung up before sending its whole request (%s %s)", request.method, request.url.path)
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        request_id = request.scope.get("state", {}).get("request_id", "")
        return JSONResponse(
            error_body(
                "InternalError",
                f"The server failed on this request (id {request_id}).",
                "This is a bug in chatocr: report it with the request id.",
            ),
            status_code=500,
        )


def _framework_error(request: Request, exc: HTTPException) -> tuple[str, str, str]:
    """(type, message, hint) for an answer the framework gives on its own."""
    where = request.url.path if len(request.url.path) <= 200 else request.url.path[:200] + "..."
    if exc.status_code == 404:
        return "NotFound", f"No such route: {request.method} {where}.", "The routes are listed at /docs."
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return (
            "MethodNotAllowed",
            f"{where} does not take {request.method}.",
            f"Use {allowed}; see /docs." if allowed else "See /docs.",
        )
    try:
        kind = HTTPStatus(exc.status_code).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        kind = "RequestError"
    return kind, str(exc.detail), "See /docs for what the service takes."
