"""`chatocr ocr IMAGE`: the OCR alone, as reading-order text, as lines with boxes, or as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr.config import load_config
from chatocr.ocr import CachedEngine, OCRCache, make_engine
from chatocr.ocr.types import OCRDocument

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("ocr", help="OCR a document and print its text (reading order), lines or JSON")
    p.add_argument("image", type=Path, metavar="IMAGE")
    p.add_argument("--engine", help="rapid, paddle, text, vlm (default: config, else rapid)")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--layout", action="store_true", help="reading-order text, rows kept together (default)")
    shape.add_argument("--lines", action="store_true", help="one row per OCR line: id, confidence, box, text")
    shape.add_argument("--json", action="store_true", help="the whole OCR document as JSON")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the OCR cache")
    p.add_argument("--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.set_defaults(handler=run)


def read_document(path: Path, engine: str | None, config: Path | None = None, cache: bool = True) -> OCRDocument:
    cfg = load_config({"ocr": engine}, path=config)
    ocr = make_engine(cfg.ocr, cfg.ocr_options)
    if cache and cfg.ocr_cache:
        ocr = CachedEngine(ocr, OCRCache(Path(cfg.ocr_cache_dir)) if cfg.ocr_cache_dir else OCRCache())
    return ocr.read(path)


def run(args: argparse.Namespace) -> int:
    document = read_document(args.image, args.engine, args.config, cache=not args.no_cache)
    if args.json:
        print(json.dumps(document.to_dict(), ensure_ascii=False, indent=2))
        return 0
    console = Console()
    if args.lines:
        table = Table("id", "conf", "box (x0,y0,x1,y1)", "text")
        for line in document.lines:
            x0, y0, x1, y1 = line.bounds
            table.add_row(line.id, f"{line.confidence:.2f}", f"{x0:.0f},{y0:.0f},{x1:.0f},{y1:.0f}", line.text)
        console.print(table)
    else:
        print(document.text())
    cached = " (cached)" if document.cached else ""
    console.print(f"{len(document.lines)} lines, {len(document.pages)} page(s), {document.engine} "
                  f"{document.model}{cached}, {document.seconds:.2f}s", style="dim", highlight=False, markup=False)
    for warning in document.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)
    return 0
