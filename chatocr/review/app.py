"""The review pages over HTTP (FastAPI): one page, its script and style shipped in the package (no
CDN, nothing downloaded), and a small JSON API the page talks to.

    GET  ./                                          the page
    GET  ./static/review.js | review.css             its script and style (nothing else is served)
    GET  ./api/documents                             the documents, with how much of each is reviewed
    GET  ./api/documents/{n}                         one document: fields, review, OCR lines, notes
    GET  ./api/documents/{n}/pages/{p}/image         its page image (JPEG), only the result's own
    POST ./api/documents/{n}/events                  corrections: [{"field", "action": accept|fix, "value",
                                                     "lines": [line ids]}] or [{"action": "undo", "event": id}]

Every path is relative, so `review_router` can be mounted under a prefix (part of `chatocr serve`,
behind its tokens: pass its dependencies). `create_review_app` is the local app of `chatocr
review`: it answers only requests addressed to the loopback host (a page elsewhere cannot reach
it through DNS rebinding), and a correction must carry the page's own token in `X-Review-Token`
and be JSON (a page of another origin can neither read the token nor send JSON without asking).

Document text reaches the page only as JSON, and the script writes it with textContent: a value
`<img src=x onerror=alert(1)>` shows as those characters. The page's Content-Security-Policy
allows only its own script, style, images and API calls.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from chatocr.errors import ChatOCRError, InputError, UsageError
from chatocr.review.session import ReviewSession

__all__ = ["CSP", "create_review_app", "review_router"]

ASSETS = Path(__file__).with_name("assets")
_STATIC = {"review.js": "text/javascript; charset=utf-8", "review.css": "text/css; charset=utf-8"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
_MAX_ACTIONS = 200
_NOT_FOUND = HTTPException(status_code=404, detail="Not Found")


@lru_cache(maxsize=4)
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _page(session: ReviewSession, token: str) -> str:
    from html import escape

    title = f"review: {session.results_path.name}"
    return (
        _asset("review.html")
        .replace("{{title}}", escape(title))
        .replace("{{token}}", escape(token))
        .replace("{{reviewer}}", escape(session.reviewer or ""))
    )


def _number(text: str, limit: int) -> int:
    """A path segment as an index below `limit`; 404 for anything else (no path is ever opened
    from a request: documents and pages are numbers)."""
    if not text.isdigit() or len(text) > 9 or int(text) >= limit:
        raise _NOT_FOUND
    return int(text)


def _error(exc: ChatOCRError, status: int) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=status, headers=_SECURITY_HEADERS)


def review_router(session: ReviewSession, *, token: str | None = None, dependencies: Sequence[Any] = ()) -> APIRouter:
    """The review routes for one results file. token: what corrections must carry in
    `X-Review-Token` (None: no such check, e.g. behind `chatocr serve`'s bearer tokens)."""
    router = APIRouter(dependencies=list(dependencies))
    page_token = token or ""

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(_page(session, page_token), headers=_SECURITY_HEADERS)

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise _NOT_FOUND
        return Response(_asset(name), media_type=_STATIC[name], headers=_SECURITY_HEADERS)

    @router.get("/api/documents")
    def documents() -> JSONResponse:
        return JSONResponse(session.summary(), headers=_SECURITY_HEADERS)

    @router.get("/api/documents/{number}")
    def document(number: str) -> JSONResponse:
        return JSONResponse(session.view(_number(number, len(session.documents))), headers=_SECURITY_HEADERS)

    @router.get("/api/documents/{number}/pages/{page}/image")
    def image(number: str, page: str) -> Response:
        index = _number(number, len(session.documents))
        try:
            data, _ = session.page_image(index, _number(page, 1000))
        except (KeyError, InputError, OSError):
            raise _NOT_FOUND from None
        return Response(data, media_type="image/jpeg", headers=_SECURITY_HEADERS)

    @router.post("/api/documents/{number}/events")
    async def events(number: str, request: Request) -> JSONResponse:
        index = _number(number, len(session.documents))
        if token is not None and not hmac.compare_digest(request.headers.get("x-review-token", ""), token):
            raise HTTPException(
                status_code=403, detail="This page's review token is missing or wrong; reload the page."
            )
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPException(status_code=415, detail="Send the corrections as JSON.")
        try:
            body = await request.json()
        except ValueError:
            return _error(UsageError("The corrections are not JSON."), 400)
        actions = body.get("actions") if isinstance(body, dict) else None
        if (
            not isinstance(actions, list)
            or not all(isinstance(a, dict) for a in actions)
            or len(actions) > _MAX_ACTIONS
        ):
            return _error(UsageError('Send {"actions": [{"field": ..., "action": "accept"|"fix"|"undo"}, ...]}.'), 400)
        try:  # in a worker thread: finding OCR lines may run the engine, which must not stall the loop
            view = await run_in_threadpool(session.record, index, actions)
        except UsageError as exc:
            return _error(exc, 400)
        except ChatOCRError as exc:  # the review file cannot be written: the page must say so
            return _error(exc, 500)
        return JSONResponse(view, headers=_SECURITY_HEADERS)

    return router


def _local_only(request: Request) -> None:
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    if name not in _LOCAL_HOSTS:
        raise HTTPException(status_code=403, detail="The review app answers requests to 127.0.0.1 only.")


def create_review_app(session: ReviewSession, *, token: str | None = None) -> FastAPI:
    """The local app of `chatocr review`: the review routes at /, loopback requests only, and
    corrections that carry the page's token (a fresh random one unless given)."""
    app = FastAPI(title="chatocr review", docs_url=None, redoc_url=None, openapi_url=None)
    page_token = token or secrets.token_urlsafe(24)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(review_router(session, token=page_token, dependencies=[Depends(_local_only)]))
    return app
