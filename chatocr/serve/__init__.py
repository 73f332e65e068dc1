"""chatocr over HTTP (extra `serve`): a FastAPI app served by uvicorn, with bearer tokens,
body/pixel/page limits, per-token concurrency with a bounded queue, timeouts, and durable jobs.

    chatocr serve --port 8000                         # from the command line
    from chatocr.serve import create_app, ServeSettings   # or as an ASGI app

FastAPI is imported only by `create_app` and `serve`, so this package loads without the extra.
See docs/deployment.md.
"""

from __future__ import annotations

from typing import Any

from chatocr.serve.settings import TOKENS_ENV, ServeSettings, TokenSet, check_bind, load_tokens

__all__ = ["TOKENS_ENV", "ServeSettings", "TokenSet", "check_bind", "create_app", "load_tokens", "serve"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The service as an ASGI app; see chatocr.serve.app.create_app."""
    from chatocr.serve.server import _uvicorn

    _uvicorn()  # a clear MissingDependencyError when the extra is not installed
    from chatocr.serve.app import create_app as make

    return make(*args, **kwargs)


def serve(settings: ServeSettings) -> None:
    from chatocr.serve.server import serve as run

    run(settings)
