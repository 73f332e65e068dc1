"""`chatocr review RESULTS [--port N] [--reviewer NAME]`: check and correct a results file in the
browser, on 127.0.0.1. Corrections go to RESULTS' review file (`results.review.jsonl`) as they are
made; a fully reviewed document joins its scenario's memory (`--memory DIR`, `--no-memory`).
`--export-labels DIR` writes the reviewed documents as a labelled set instead of serving.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from chatocr.errors import MissingDependencyError, UsageError

__all__ = ["register", "run"]

DEFAULT_PORT = 8765


def register(sub: Any) -> None:
    p = sub.add_parser("review", help="check and correct a results file in the browser (127.0.0.1)")
    p.add_argument("results", type=Path, metavar="RESULTS", help="a results file of `chatocr extract --out`")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free one)"
    )
    p.add_argument("--reviewer", metavar="NAME", help="your name, recorded with each correction")
    p.add_argument(
        "--memory", type=Path, metavar="DIR", help="the memory reviewed documents join (default: the per-user one)"
    )
    p.add_argument("--no-memory", action="store_true", help="reviewed documents join no memory")
    p.add_argument(
        "--review-file", type=Path, metavar="FILE", help="where corrections go (default: RESULTS.review.jsonl)"
    )
    p.add_argument("--ocr", metavar="ENGINE", help="OCR engine for the lines (default: the one each result names)")
    p.add_argument("--no-ocr", action="store_true", help="never run OCR: OCR lines only from the OCR cache")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.add_argument(
        "--export-labels", type=Path, metavar="DIR", help="write the reviewed documents as a labelled set, then exit"
    )
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(handler=run)


def _session(args: argparse.Namespace) -> Any:
    from chatocr.cli.common import memory_overrides
    from chatocr.cli.view_cmd import engine_lookup
    from chatocr.config import load_config
    from chatocr.review import MemorySettings, ReviewSession

    # --memory DIR / --no-memory, else the config's memory and memory_dir (as extract reads them).
    config = load_config(memory_overrides(args), path=args.config)
    root = Path(config.memory_dir).expanduser() if config.memory_dir else None
    session = ReviewSession(
        args.results,
        reviewer=args.reviewer,
        engine_for=engine_lookup(args.config, args.ocr),
        run_ocr=not args.no_ocr,
        memory=MemorySettings(enabled=config.memory, root=root),
        review_path=args.review_file,
    )
    for number, problem in session.problems:
        print(f"warning: {args.results}:{number}: {problem}; left out", file=sys.stderr)
    for number, problem in session.state().problems:
        print(f"warning: {session.log.path}:{number}: {problem}", file=sys.stderr)
    return session


def _export(session: Any, folder: Path) -> int:
    from chatocr.review.labels import export_labels

    report = export_labels(session, folder)
    for name, why in report.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    for doc_id, note in report.notes:
        print(f"note: {doc_id}: {note}", file=sys.stderr)
    print(f"wrote {len(report.written)} reviewed document(s) to {folder} (images/, labels/, ocr/)")
    print(f"next: chatocr eval {folder}    or    chatocr export sft {folder} --out DIR")
    return 0 if report.written else 1


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"Cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}.",
            hint="Another program uses that port: give another with --port N (or --port 0 for any free one).",
        ) from None
    sock.listen(64)
    return sock


def _prefetch(session: Any) -> None:
    """OCR lines of every document found ahead (the cache, or the engine), in the background."""
    for doc in session.documents[1:]:
        try:
            doc.ocr(session.engine_for, session.run_ocr)
        except Exception:  # the page reports it when the document is opened
            continue


def run(args: argparse.Namespace) -> int:
    session = _session(args)
    if args.export_labels is not None:
        return _export(session, args.export_labels)
    try:
        import uvicorn

        from chatocr.review.app import create_review_app
    except ImportError:
        raise MissingDependencyError("chatocr review", "serve", package="fastapi, uvicorn") from None
    app = create_review_app(session)
    session.documents[0].ocr(session.engine_for, session.run_ocr)  # the first page opens at once
    threading.Thread(target=_prefetch, args=(session,), daemon=True, name="review-prefetch").start()
    sock = _listen(args.port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    print(
        f"review of {len(session.documents)} document(s) at {url}\ncorrections go to {session.log.path}; Ctrl-C stops",
        flush=True,
    )
    if args.open:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
