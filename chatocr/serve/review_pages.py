"""The review pages under `chatocr serve --review RESULTS`, behind the service's tokens.

    GET  /review/login   a form for the service's token (a browser cannot send a bearer header
                         when it opens a page, nor with the page's images)
    POST /review/login   token=...: a cookie signed with that token (HttpOnly, SameSite=Strict,
                         Path=/review, 12 hours), then 303 to /review/
    /review/...          the review app's pages and API (chatocr.review.review_router): for a
                         bearer token or that cookie; corrections also carry the page's own token
                         (X-Review-Token), so another site's page can never post one

The cookie holds no token: an expiry, the token's id and an HMAC keyed by a key derived from the
token, so every worker process checks it alike and removing the token voids it. Without tokens
(a service on the loopback address only) the pages answer requests addressed to the loopback host
only, as `chatocr review` does (a page elsewhere cannot reach them through DNS rebinding).

Fully reviewed documents join the memory the service extracts with (`--memory DIR`, the config's
`memory_dir`, or the per-user one; none with `--no-memory`), so the next request for a similar
document gets them as examples.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from chatocr.config import load_config
from chatocr.ocr.base import OCREngine
from chatocr.review import MemorySettings, ReviewSession
from chatocr.serve.errors import ServeError
from chatocr.serve.settings import ServeSettings, TokenSet

if TYPE_CHECKING:
    from chatocr.serve.app import Service

__all__ = ["COOKIE", "PREFIX", "memory_overrides", "review_pages"]

PREFIX = "/review"
COOKIE = "chatocr_review"
LIFETIME_S = 12 * 3600
_LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
_LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
_LOGIN = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chatocr review: sign in</title>
<style>body{{font:16px system-ui,sans-serif;margin:4em auto;max-width:28em}}input{{font:inherit;width:100%}}
p.error{{color:#b00}}</style></head>
<body><h1>chatocr review</h1><p>{results}</p>{problem}
<form method="post" action="login"><label>The service's token<br>
<input type="password" name="token" autocomplete="current-password" autofocus required></label>
<p><button type="submit">Open the review</button></p></form></body></html>
"""


def memory_overrides(settings: ServeSettings) -> dict[str, Any]:
    """The config overrides of `serve --memory DIR` / `--no-memory` (none when neither was given)."""
    if settings.memory is False:
        return {"memory": False}
    if settings.memory_dir is not None:
        return {"memory": True, "memory_dir": settings.memory_dir}
    return {}


def _key(tokens: TokenSet, caller: str) -> bytes | None:
    return tokens.signing_key(caller, purpose="review-cookie")


def _cookie(tokens: TokenSet, caller: str, now: float) -> str:
    expires = str(int(now + LIFETIME_S))
    key = _key(tokens, caller)
    assert key is not None
    mac = hmac.new(key, f"{expires}|{caller}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{caller}.{mac}"


def _cookie_caller(tokens: TokenSet, value: str, now: float) -> str | None:
    """The caller a cookie was handed to, when it is ours, unexpired and its token still valid."""
    expires, _, rest = value.partition(".")
    caller, _, mac = rest.partition(".")
    if not expires.isdigit() or int(expires) < now or not mac:
        return None
    key = _key(tokens, caller)
    if key is None:
        return None
    wanted = hmac.new(key, f"{expires}|{caller}".encode(), hashlib.sha256).hexdigest()
    return caller if hmac.compare_digest(wanted, mac) else None


def _loopback(request: Request) -> bool:
    host = request.headers.get("host", "")
    name = host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
    return name in _LOOPBACK


def _session(service: Service, settings: ServeSettings) -> ReviewSession:
    """The review of `--review RESULTS`; its fully reviewed documents join the served memory."""
    config = load_config(memory_overrides(settings), path=settings.config)
    root = Path(config.memory_dir).expanduser() if config.memory_dir else None

    def engine_for(name: str) -> OCREngine | None:
        """The service's own OCR engine for results it would read the same way (and its cache)."""
        ocr = service.ocr
        return ocr.engine if ocr is not None and ocr.engine.name == name else None

    assert settings.review is not None
    return ReviewSession(
        Path(settings.review), engine_for=engine_for, memory=MemorySettings(enabled=config.memory, root=root)
    )


def review_pages(service: Service, settings: ServeSettings) -> APIRouter:
    """The routes to mount at `PREFIX`: the sign-in page and the review app behind the tokens."""
    from chatocr.review.app import review_router

    session = _session(service, settings)
    tokens = service.tokens
    page_token = secrets.token_urlsafe(24)

    def allowed(request: Request) -> None:
        if not tokens:
            if not _loopback(request):
                raise ServeError(403, "Forbidden", "Without tokens the review answers requests to 127.0.0.1 only.")
            return
        if request.headers.get("authorization"):
            service.caller(request)  # a program with a bearer token (401 when it is wrong)
            return
        if _cookie_caller(tokens, request.cookies.get(COOKIE, ""), time.time()) is not None:
            return
        if request.method == "GET" and request.url.path.rstrip("/") == PREFIX:
            raise HTTPException(status_code=303, headers={"Location": f"{PREFIX}/login"})
        raise ServeError(401, "Unauthorized", "Sign in first.", f"Open {PREFIX}/login in the browser.")

    router = APIRouter(include_in_schema=False)

    @router.get("/login")
    def login_page() -> HTMLResponse:
        return _login_page(session, "")

    @router.post("/login")
    async def login(request: Request) -> Response:
        body = (await request.body())[:4096].decode("utf-8", "replace")
        presented = (parse_qs(body).get("token") or [""])[0].strip()
        caller = tokens.match(presented) if tokens and presented else None
        if caller is None:
            status = 401 if tokens else 404
            return _login_page(session, "That is not one of this service's tokens.", status=status)
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(
            COOKIE,
            _cookie(tokens, caller, time.time()),
            max_age=LIFETIME_S,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    router.include_router(review_router(session, token=page_token, dependencies=[Depends(allowed)]))
    return router


def _login_page(session: ReviewSession, problem: str, *, status: int = 200) -> HTMLResponse:
    html = _LOGIN.format(
        results=escape(f"{session.results_path.name}: {len(session.documents)} document(s)"),
        problem=f'<p class="error">{escape(problem)}</p>' if problem else "",
    )
    headers = {"Content-Security-Policy": _LOGIN_CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(html, status_code=status, headers=headers)
