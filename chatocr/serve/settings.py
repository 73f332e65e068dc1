"""What `chatocr serve` is configured with, and where its bearer tokens come from.

Settings come from the command line (or `ServeSettings(...)` in Python). Tokens never do, and never
from a config file: they are read from `$CHATOCR_SERVE_TOKENS` (comma-separated), which the keys
file (`~/.config/chatocr/keys.toml`, mode 0600, see chatocr/llm/credentials.py) may set like any
other secret. A server on a non-loopback address without a token refuses to start.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os

from pydantic import BaseModel, ConfigDict, Field

from chatocr.errors import ConfigError
from chatocr.llm.credentials import load_keys_file

__all__ = ["TOKENS_ENV", "ServeSettings", "TokenSet", "check_bind", "is_loopback_host", "load_tokens"]

TOKENS_ENV = "CHATOCR_SERVE_TOKENS"
MIN_TOKEN_LENGTH = 16
_NEW_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class ServeSettings(BaseModel):
    """Limits and wiring of one service process. Every limit answers with a named HTTP error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="uvicorn worker processes, each with its own model and OCR")
    concurrency: int = Field(4, ge=1, description="requests being extracted at once, per process")
    queue: int = Field(32, ge=0, description="requests waiting for a slot; one more is answered 429")
    per_token: int = Field(4, ge=1, description="requests of one token being extracted at once")
    timeout: float = Field(120.0, gt=0, description="seconds per request, waiting included; then 504")
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="request body; more is 413")
    max_pixels: int = Field(40_000_000, ge=1, description="pixels per image page; more is 413")
    max_pages: int = Field(20, ge=1, description="pages of a PDF or TIFF; more is 413")
    cors_origins: tuple[str, ...] = Field((), description="origins allowed by CORS; none: CORS off")
    data_dir: str | None = Field(None, description="jobs database and uploaded job files")
    job_folders: tuple[str, ...] = Field((), description="server-side folders a job may name")
    # 4: the local model decodes up to 4 documents in flight together (chatocr/llm/batch.py).
    job_concurrency: int = Field(4, ge=1, description="documents of jobs extracted at once, per process")
    # The ChatOCR the service runs (the usual --llm/--ocr/--config).
    llm: str | None = None
    ocr: str | None = None
    config: str | None = None
    # The memory of reviewed documents it extracts with (None: the config's) and the review pages
    # of a results file at /review/ (serve/review_pages.py).
    memory: bool | None = Field(None, description="False: no memory of reviewed documents (--no-memory)")
    memory_dir: str | None = Field(None, description="the memory's folder (--memory DIR)")
    review: str | None = Field(None, description="a results file whose review pages are served at /review/")


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class TokenSet:
    """The accepted bearer tokens. Compared in constant time; logged only as a short digest."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens]

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def signing_key(self, caller: str, *, purpose: str) -> bytes | None:
        """A key for signing what the server hands the holder of the token whose id is `caller`
        (a sign-in cookie): derived from that token, so every worker process derives the same and
        removing the token voids what was signed. None when no token has that id."""
        for token in self._tokens:
            if hmac.compare_digest(token_id(token.decode()), caller):
                return hashlib.sha256(b"chatocr\0" + purpose.encode() + b"\0" + token).digest()
        return None

    def match(self, presented: str) -> str | None:
        """The caller's id (a digest, never the token) when `presented` is one of ours."""
        given = presented.encode()
        found = False
        for token in self._tokens:  # no early exit: the time does not tell which token matched
            found |= hmac.compare_digest(token, given)
        return token_id(presented) if found else None


def token_id(token: str) -> str:
    return "t-" + hashlib.sha256(token.encode()).hexdigest()[:10]


def load_tokens() -> TokenSet:
    """Tokens from $CHATOCR_SERVE_TOKENS, which the keys file may set (the environment wins)."""
    load_keys_file()
    raw = os.environ.get(TOKENS_ENV, "")
    tokens = [t.strip() for t in raw.split(",") if t.strip()]
    short = [t for t in tokens if len(t) < MIN_TOKEN_LENGTH]
    if short:
        raise ConfigError(
            f"${TOKENS_ENV} holds {len(short)} token(s) shorter than {MIN_TOKEN_LENGTH} characters.",
            hint=f"Use long random tokens, e.g. from: {_NEW_TOKEN}",
        )
    return TokenSet(tokens)


def check_bind(settings: ServeSettings, tokens: TokenSet) -> None:
    """Refuse to listen beyond this machine without a token."""
    if not tokens and not is_loopback_host(settings.host):
        raise ConfigError(
            f"Refusing to serve on {settings.host} without a bearer token: anyone who can reach it could use it.",
            hint=f"Set ${TOKENS_ENV}=<token>[,<token>...] (or put it in the keys file, mode 0600); "
            f"make one with {_NEW_TOKEN}. Or serve on --host 127.0.0.1.",
        )
