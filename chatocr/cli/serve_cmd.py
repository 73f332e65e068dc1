"""`chatocr serve`: the HTTP service (extra `serve`; see docs/deployment.md).

Tokens come from $CHATOCR_SERVE_TOKENS or the keys file, never from an option or the config file
(command lines are visible to every user of the machine in `ps`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chatocr.cli.common import add_backend_options, add_memory_options, memory_overrides

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve extraction over HTTP (FastAPI + uvicorn), with tokens and limits")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need a token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="processes, each with its own model and OCR (default 1)")
    p.add_argument("-j", "--concurrency", type=int, default=4, metavar="N", help="requests at once per process")
    p.add_argument("--queue", type=int, default=32, metavar="N", help="requests waiting for a slot; then 429")
    p.add_argument("--per-token", type=int, default=4, metavar="N", help="requests of one token extracted at once")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds per request; then 504")
    p.add_argument("--max-body-mb", type=float, default=20.0, metavar="MB", help="request body limit; then 413")
    p.add_argument("--max-pixels", type=int, default=40_000_000, metavar="N", help="pixels per page; then 413")
    p.add_argument("--max-pages", type=int, default=20, metavar="N", help="pages per PDF/TIFF; then 413")
    p.add_argument("--cors-origin", action="append", default=[], metavar="URL", help="allow CORS from URL (repeat)")
    p.add_argument("--data-dir", metavar="DIR", help="jobs database and uploads (default: the chatocr cache)")
    p.add_argument(
        "--job-folder", action="append", default=[], metavar="DIR", help="a server-side folder jobs may name (repeat)"
    )
    p.add_argument("--job-concurrency", type=int, default=4, metavar="N", help="job documents extracted at once (4)")
    add_backend_options(p)
    add_memory_options(p)
    p.add_argument(
        "--review",
        type=Path,
        metavar="RESULTS",
        help="also serve the review pages of this results file at /review/ (behind the tokens)",
    )
    p.set_defaults(handler=run)


def memory_settings(args: argparse.Namespace) -> dict[str, Any]:
    """--memory DIR / --no-memory as ServeSettings' memory and memory_dir."""
    overrides = memory_overrides(args)
    return {"memory": overrides.get("memory"), "memory_dir": overrides.get("memory_dir")}


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from chatocr.errors import ConfigError
    from chatocr.serve import ServeSettings, serve

    try:
        settings = ServeSettings(
            host=args.host,
            port=args.port,
            workers=args.workers,
            concurrency=args.concurrency,
            queue=args.queue,
            per_token=args.per_token,
            timeout=args.timeout,
            max_body_bytes=int(args.max_body_mb * 1024 * 1024),
            max_pixels=args.max_pixels,
            max_pages=args.max_pages,
            cors_origins=tuple(args.cors_origin),
            data_dir=args.data_dir,
            job_folders=tuple(args.job_folder),
            job_concurrency=args.job_concurrency,
            llm=args.llm,
            ocr=args.ocr,
            config=str(args.config) if args.config else None,
            review=str(args.review.resolve()) if args.review else None,
            **memory_settings(args),
        )
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid serve options: {problems}", hint="See `chatocr serve --help`.") from None
    serve(settings)
    return 0
