"""The `chatocr` command: one sub-command module per job, dispatched from here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chatocr.errors import ChatOCRError, UsageError

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from chatocr.cli import doctor_cmd, eval_cmd, extract_cmd, ocr_cmd, plan_cmd, repl, scenarios_cmd, view_cmd

    parser = argparse.ArgumentParser(
        prog="chatocr",
        description="ChatOCR: OCR + an LLM with token-budgeted few-shot dialogue, returning grounded JSON.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (plan_cmd, scenarios_cmd, extract_cmd, eval_cmd, ocr_cmd, doctor_cmd, repl, view_cmd):
        module.register(sub)
    from chatocr.cli import export_cmd  # its own hunk, to merge cleanly with other new commands

    export_cmd.register(sub)
    from chatocr.cli import serve_cmd  # its own hunk too

    serve_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except ChatOCRError as exc:
        # Our errors are written for people: print them plainly, no traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1  # 2 for usage errors, as argparse's own
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
