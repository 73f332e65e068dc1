"""`chatocr export sft|ocr-lines SOURCE...`: reviewed documents as training data.

    chatocr export sft ../shared/data/sroie_train --format xtuner --format openai --out sft/
    chatocr export sft results.jsonl --min-confidence 0.9 --format llamafactory --out sft/
    chatocr export sft ../shared/data/cn_train_ticket --redact name,ticket_num --format alpaca --out sft/
    chatocr export ocr-lines results.jsonl --out rec/

A SOURCE is a labelled set directory (images/, labels/, optional ocr/) or a results file written
by `chatocr extract --out results.jsonl` (corrected by hand or not: see docs/finetuning.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr.errors import UsageError
from chatocr.export.formats import ALIASES, FORMATS
from chatocr.export.options import Backend, OCRLinesOptions, ReviewOptions, SFTOptions, SplitOptions

__all__ = ["register"]

_PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="labelled set directory or results .jsonl")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--ocr", metavar="ENGINE", help="OCR engine (cached); text reads a set's ocr/ files")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.add_argument(
        "-s",
        "--scenario",
        help="scenario name or YAML file of a labelled set (default: its profile, else best field match)",
    )
    p.add_argument("--map", action="append", default=[], metavar="LABEL_KEY=FIELD", help="map a label key to a field")
    p.add_argument(
        "--min-confidence",
        type=float,
        metavar="X",
        help="results files: keep only documents whose grounded values all have confidence >= X",
    )
    p.add_argument("--redact", metavar="FIELD,...", help="replace these fields' values by consistent fakes")
    p.add_argument("--val-ratio", type=float, default=0.1, metavar="R", help="share of documents for validation")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a previous export in DIR")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="turn labelled or reviewed documents into training data (LLM, OCR)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = p.add_subparsers(dest="export_kind", metavar="KIND", required=True)
    sft = kinds.add_parser("sft", help="conversations for supervised fine-tuning of the LLM")
    _common(sft)
    sft.add_argument(
        "-f",
        "--format",
        action="append",
        metavar="NAME",
        help=f"{', '.join(FORMATS)} (aliases {', '.join(ALIASES)}); repeatable or comma-separated (default xtuner)",
    )
    sft.add_argument(
        "--examples",
        type=int,
        default=0,
        metavar="N",
        help="few-shot examples in each conversation (default 0: a tuned model should not need them)",
    )
    sft.add_argument(
        "-l",
        "--llm",
        metavar="PROVIDER[:MODEL]",
        help="the backend the conversations are planned for: limits, roles, tokenizer (default: config)",
    )
    sft.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="drop records longer than N tokens (default: the backend's context window)",
    )
    sft.set_defaults(handler=run_sft)
    lines = kinds.add_parser("ocr-lines", help="line crops + rec_gt.txt for fine-tuning PP-OCR's recognizer")
    _common(lines)
    lines.set_defaults(handler=run_ocr_lines)


def _mapping(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--map expects LABEL_KEY=FIELD, got {item!r}.")
        out[key.strip()] = value.strip()
    return out


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _skipped(console: Console, skipped: list[dict[str, str]]) -> None:
    if skipped:
        console.print(f"left out: {len(skipped)} document(s)", style="yellow", **_PLAIN)
        for item in skipped[:20]:
            console.print(f"  {item['document']}: {item['reason']}", **_PLAIN)
        if len(skipped) > 20:
            console.print(f"  ... and {len(skipped) - 20} more (summary.json lists them all)", **_PLAIN)


def _review(args: argparse.Namespace) -> ReviewOptions:
    return ReviewOptions(scenario=args.scenario, field_map=_mapping(args.map), min_confidence=args.min_confidence)


def run_sft(args: argparse.Namespace) -> int:
    from chatocr.export.sft import export_sft
    from chatocr.llm.credentials import load_keys_file

    load_keys_file()
    options = SFTOptions(
        formats=[name for item in (args.format or ["xtuner"]) for name in _names(item)],
        examples=args.examples,
        max_tokens=args.max_tokens,
        redact=_names(args.redact),
        review=_review(args),
        split=SplitOptions(args.val_ratio, args.seed),
        backend=Backend(args.llm, args.ocr, args.config),
        overwrite=args.overwrite,
    )
    summary = export_sft(args.sources, args.out, options)
    console = Console(stderr=True)
    table = Table(
        "records",
        "train",
        "val",
        "fields",
        "values",
        "duplicates",
        f"over {summary.max_tokens} tokens",
        title=f"{summary.documents} reviewed document(s) -> {summary.out}",
        title_justify="left",
    )
    table.add_row(
        *(
            str(v)
            for v in (
                summary.records,
                summary.train,
                summary.val,
                summary.fields,
                summary.values,
                summary.duplicates,
                summary.over_length,
            )
        )
    )
    console.print(table)
    tokens = Table(
        "scenario",
        "records",
        "min",
        "median",
        "p90",
        "max",
        "mean",
        title=f"tokens per record ({summary.counter})",
        title_justify="left",
    )
    for name, stats in [*summary.tokens_by_scenario.items(), ("all", summary.tokens)]:
        if stats.get("records"):
            tokens.add_row(name, *(str(stats[k]) for k in ("records", "min", "median", "p90", "max", "mean")))
    console.print(tokens)
    _skipped(console, summary.skipped)
    print(json.dumps({"out": summary.out, "files": summary.files}, ensure_ascii=False))
    return 0


def run_ocr_lines(args: argparse.Namespace) -> int:
    from chatocr.export.ocr_lines import export_ocr_lines

    options = OCRLinesOptions(
        redact=_names(args.redact),
        review=_review(args),
        split=SplitOptions(args.val_ratio, args.seed),
        backend=Backend(ocr=args.ocr, config=args.config),
        overwrite=args.overwrite,
    )
    summary = export_ocr_lines(args.sources, args.out, options)
    console = Console(stderr=True)
    console.print(
        f"{summary.lines} line crop(s) from {summary.documents_with_lines} of {summary.documents} document(s) "
        f"-> {summary.out} (train {summary.train}, val {summary.val}; duplicates {summary.duplicates}; "
        f"{', '.join(f'{k} {v}' for k, v in summary.by_reason.items()) or 'none'})",
        **_PLAIN,
    )
    _skipped(console, summary.skipped)
    return 0
