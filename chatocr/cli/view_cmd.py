"""`chatocr view RESULTS... -o report.html`: an HTML report of an existing results file.

The page images come from the source paths the results store; the OCR lines from the OCR cache
(the engine each result names, with the config's options), else by running OCR again (`--no-ocr`:
never). `chatocr extract ... --html report.html` writes the same report at the end of a run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatocr.config import load_config
from chatocr.errors import InputError
from chatocr.ocr.base import OCREngine

__all__ = ["engine_lookup", "register", "report_written"]

_SHOWN_SKIPPED = 20  # records left out that are listed one by one


def register(sub: Any) -> None:
    p = sub.add_parser("view", help="write a self-contained HTML report of a results file (.jsonl or .json)")
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="results of `chatocr extract --out`")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument("--ocr", metavar="ENGINE", help="OCR engine for the lines (default: the one each result names)")
    p.add_argument("--no-ocr", action="store_true", help="never run OCR: OCR lines only from the OCR cache")
    p.add_argument("--title", help="the report's title (default: the results file's name)")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.set_defaults(handler=run)


def engine_lookup(config_path: Path | None, forced: str | None) -> Callable[[str], OCREngine | None]:
    """engine name -> a cached OCR engine built from the config (once per name); None when the
    engine cannot be built here (a missing extra) or would call a service (vlm)."""
    from chatocr.ocr.cache import CachedEngine, OCRCache
    from chatocr.ocr.registry import get_ocr_engine

    config = load_config(path=config_path)
    engines: dict[str, OCREngine | None] = {}

    def engine_for(name: str) -> OCREngine | None:
        name = forced or name
        if name not in engines:
            engine: OCREngine | None = None
            if name != "vlm" and not name.startswith("vlm:"):
                try:
                    engine = get_ocr_engine(name, **(config.ocr_options if name == config.ocr else {}))
                    if config.ocr_cache:
                        directory = config.ocr_cache_dir
                        engine = CachedEngine(engine, OCRCache(directory) if directory else OCRCache())
                except Exception as exc:  # the report still shows the fields' boxes
                    print(f"warning: OCR lines not shown for {name} results: {exc}", file=sys.stderr)
            engines[name] = engine
        return engines[name]

    return engine_for


def report_written(path: Path, count: int) -> str:
    size = path.stat().st_size
    return f"wrote {path}: {count} document(s), {size / 1024:.0f} KB ({size / 1024 / max(count, 1):.0f} KB each)"


def run(args: argparse.Namespace) -> int:
    from chatocr.viewer import gather_items, read_result_file, write_report

    pairs = []
    for path in args.results:
        if not path.is_file():
            raise InputError(f"No such results file: {path}", hint="Give the --out file of `chatocr extract`.")
        found, skipped = read_result_file(path)  # DataFileError (typed) when it cannot be read at all
        if skipped:
            print(f"warning: {path}: skipped {len(skipped)} line(s) that are not chatocr results:", file=sys.stderr)
            for where, why in skipped[:_SHOWN_SKIPPED]:
                print(f"  {where}: {why}", file=sys.stderr)
            if len(skipped) > _SHOWN_SKIPPED:
                print(f"  ... and {len(skipped) - _SHOWN_SKIPPED} more", file=sys.stderr)
        pairs.extend(found)
    if not pairs:
        raise InputError(
            f"No chatocr results in {', '.join(map(str, args.results))}.",
            hint="Give the .jsonl (or --format json) file written by `chatocr extract --out`; "
            "a CSV has no boxes to draw.",
        )
    items = gather_items(pairs, engine_lookup(args.config, args.ocr), run_ocr=not args.no_ocr)
    title = args.title or ", ".join(p.name for p in args.results)
    target = write_report(args.out, items, title=title)
    print(report_written(target, len(items)), file=sys.stderr)
    return 0
