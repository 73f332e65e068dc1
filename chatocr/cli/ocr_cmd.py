"""`chatocr ocr IMAGE`: the OCR alone, as reading-order text, as lines with boxes, or as JSON.

Standard output carries the document alone (`chatocr ocr IMAGE > text.txt` is the text and nothing
else); the summary line (lines, pages, engine, time) and warnings go to standard error."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr.config import load_config
from chatocr.ocr import CachedEngine, OCRCache, make_engine
from chatocr.ocr.types import OCRDocument

__all__ = ["register"]

FORMATS = ("layout", "lines", "json")


def register(sub: Any) -> None:
    p = sub.add_parser("ocr", help="OCR a document and print its text (reading order), lines or JSON")
    p.add_argument("image", type=Path, metavar="IMAGE")
    p.add_argument("--ocr", metavar="ENGINE", help="rapid, paddle, text, vlm (default: config, else rapid)")
    p.add_argument("--engine", dest="ocr", help=argparse.SUPPRESS)  # the old name, kept working
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("-f", "--format", choices=FORMATS, help="layout (default), lines or json")
    shape.add_argument("--layout", dest="format", action="store_const", const="layout", help="= --format layout")
    shape.add_argument("--lines", dest="format", action="store_const", const="lines", help="= --format lines")
    shape.add_argument("--json", dest="format", action="store_const", const="json", help="= --format json")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the OCR cache")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line (lines, engine, time)")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.set_defaults(handler=run, format="layout")


def read_document(path: Path, engine: str | None, config: Path | None = None, cache: bool = True) -> OCRDocument:
    cfg = load_config({"ocr": engine}, path=config)
    ocr = make_engine(cfg.ocr, cfg.ocr_options)
    if cache and cfg.ocr_cache:
        ocr = CachedEngine(ocr, OCRCache(Path(cfg.ocr_cache_dir)) if cfg.ocr_cache_dir else OCRCache())
    return ocr.read(path)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    document = read_document(args.image, args.ocr, args.config, cache=not args.no_cache)
    seconds = time.perf_counter() - started  # this run's time: a cache hit is not the original OCR's
    if args.format == "json":
        print(json.dumps(document.to_dict(), ensure_ascii=False, indent=2))
        return 0
    console = Console()
    if args.format == "lines":
        table = Table("id", "conf", "box (x0,y0,x1,y1)", "text")
        for line in document.lines:
            x0, y0, x1, y1 = line.bounds
            table.add_row(line.id, f"{line.confidence:.2f}", f"{x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}", line.text)
        console.print(table)
    else:
        print(document.text())
    status = Console(stderr=True)  # status, never mixed into the text a user redirects
    if not args.quiet:
        timing = f"{seconds:.2f}s"
        if document.cached:
            timing = f"cached, {seconds:.2f}s (the OCR itself took {document.seconds:.2f}s)"
        status.print(
            f"{len(document.lines)} lines, {len(document.pages)} page(s), {document.engine} {document.model}, {timing}",
            style="dim",
            highlight=False,
            markup=False,
        )
    for warning in document.warnings:
        status.print(f"warning: {warning}", style="yellow", markup=False)
    return 0
