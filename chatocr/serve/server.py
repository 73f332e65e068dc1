"""Running the service with uvicorn: checks before listening, logging, one or several workers.

With `workers > 1`, uvicorn starts that many processes, each importing `app_from_environment`
(the settings travel in $CHATOCR_SERVE_SETTINGS as JSON; they hold no secret) and each loading its
own model and OCR engine: size `--workers` by memory (the local model is ~2.5 GB per process).
"""

from __future__ import annotations

import copy
import os
import sys
from typing import Any

from chatocr.errors import MissingDependencyError
from chatocr.serve.settings import ServeSettings, check_bind, load_tokens

__all__ = ["SETTINGS_ENV", "app_from_environment", "serve"]

SETTINGS_ENV = "CHATOCR_SERVE_SETTINGS"


def _uvicorn() -> Any:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: FastAPI needs it for uploads)
        import uvicorn
    except ImportError:
        raise MissingDependencyError("chatocr serve", "serve", package="fastapi, uvicorn, python-multipart") from None
    return uvicorn


def log_config(uvicorn: Any) -> dict[str, Any]:
    """uvicorn's own logging plus chatocr's access log (uvicorn's access log is off: it prints
    query strings)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["chatocr"] = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["chatocr"] = {
        "class": "logging.StreamHandler",
        "formatter": "chatocr",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["chatocr"] = {"handlers": ["chatocr"], "level": "INFO", "propagate": False}
    return config


def app_from_environment() -> Any:
    """The app of one uvicorn worker process (factory=True)."""
    from chatocr.serve.app import create_app

    app_process()
    settings = ServeSettings.model_validate_json(os.environ[SETTINGS_ENV])
    return create_app(settings, load_tokens())


# How often a thread holding Python's lock is asked to give it up (Python's default: 5 ms). The
# service's event loop (/healthz, admission, every answer) waits that long for each turn while a
# request is parsed in a thread; 1 ms keeps its waits short at a small cost to the threads.
SWITCH_INTERVAL_S = 0.001


def app_process() -> None:
    """What a service process sets before serving."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def serve(settings: ServeSettings) -> None:
    """Check the tokens and the address, then serve until interrupted."""
    uvicorn = _uvicorn()
    app_process()
    tokens = load_tokens()
    check_bind(settings, tokens)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,
        "log_config": log_config(uvicorn),
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers > 1:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("chatocr.serve.server:app_from_environment", factory=True, workers=settings.workers, **common)
        return
    from chatocr.serve.app import create_app

    uvicorn.run(create_app(settings, tokens), **common)
