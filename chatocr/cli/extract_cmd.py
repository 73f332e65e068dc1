"""`chatocr extract FILES_OR_DIRS...`: key fields from one document or a folder of them.

One document prints a table of fields (value, status, confidence) and a route/usage line; many
show a progress bar and a summary. `--out results.jsonl` (or .csv) is appended to as each document
finishes and resumed by the next run (see chatocr/runs/log.py). Exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr import progress
from chatocr.cli.batch_run import BatchRun, BatchTodo, failure_line
from chatocr.cli.common import (
    KEYS_HELP,
    add_backend_options,
    add_memory_options,
    field_table,
    make_chatocr,
    request_from,
    review_line,
    summary_line,
)
from chatocr.cli.status import StatusLine, where_time_went
from chatocr.errors import OutputError, UsageError
from chatocr.extraction.result import Extraction
from chatocr.fileio import atomic_write, check_output_path
from chatocr.runs import ResultLog, collect_inputs, key_inputs
from chatocr.runs.records import csv_columns, csv_text, record_for
from chatocr.secrets import redact
from chatocr.viewer.drawing import drawing_path

__all__ = ["register"]

FORMATS = ("table", "json", "values", "jsonl", "csv", "xlsx")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBER_LIST = re.compile(r"\[\s*((?:-?\d+(?:\.\d+)?,\s*)*-?\d+(?:\.\d+)?)\s*\]")
_PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}


def register(sub: Any) -> None:
    p = sub.add_parser("extract", help="extract key fields from documents (files or folders), resumable")
    p.add_argument("inputs", nargs="+", type=Path, metavar="FILES_OR_DIRS")
    p.add_argument("-s", "--scenario", help="scenario name or YAML file, or auto (default) to route each document")
    p.add_argument("-k", "--keys", help=KEYS_HELP)
    p.add_argument(
        "--schema",
        metavar="MODULE:CLASS|FILE.json",
        help="a pydantic model or JSON Schema: typed, validated values (see docs/typed.md)",
    )
    p.add_argument(
        "--min-confidence",
        type=float,
        metavar="X",
        help="grounded values below this confidence are low_confidence, not trusted (0..1)",
    )
    p.add_argument(
        "--accept-precision",
        type=float,
        metavar="P",
        help="the review queue: accept a field unseen when its calibrated confidence is at the threshold the "
        "scenario's calibration held out at this precision (default: the scenario's, else the config's, 0.99)",
    )
    p.add_argument(
        "--accept-threshold",
        type=float,
        metavar="X",
        help="instead, accept a field at confidence >= X (0..1); the others go to review",
    )
    add_backend_options(p)
    add_memory_options(p)
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        metavar="FILE",
        help="results file (.jsonl/.csv: appended, resumable; .json/.xlsx: at the end)",
    )
    p.add_argument("-f", "--format", choices=FORMATS, help="default: from --out's suffix, else table")
    p.add_argument("-j", "--concurrency", type=int, metavar="N", help="documents in flight (default: config, 4)")
    p.add_argument("--draw", type=Path, metavar="DIR", help="write a PNG per document with the fields drawn")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no status line, progress bar or summary; errors still shown"
    )
    p.add_argument(
        "--timings",
        action="store_true",
        help="after the results, say where each document's time went (OCR, model load, prompt, generation)",
    )
    p.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML report to look at")
    p.add_argument(
        "--per-page",
        action="store_true",
        default=None,
        help="one result per PDF page or TIFF frame (default: config per_page, off: one per file)",
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local (default), or ray: actors on a Ray cluster (extra `ray`)",
    )
    p.add_argument("--address", metavar="ADDR", help="with --executor ray: a running cluster (default: start one here)")
    p.add_argument("--actors", type=int, default=2, metavar="N", help="with --executor ray: actors, one model each")
    p.set_defaults(handler=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.out is None:
        return "table"
    return {".csv": "csv", ".json": "json", ".xlsx": "xlsx"}.get(args.out.suffix.lower(), "jsonl")


def run(args: argparse.Namespace) -> int:
    # Within a second of starting, a terminal user sees what is happening (reading, loading the
    # model, evaluating the prompt, generating...); pipes and --quiet get nothing.
    quiet, timings = getattr(args, "quiet", False), getattr(args, "timings", False)
    with StatusLine.for_terminal(quiet, record=timings) as status, progress.listening(status.update):
        status.say("starting…")
        return _run(args, status)


def _run(args: argparse.Namespace, status: StatusLine) -> int:
    fmt = _format(args)
    _check_usage(args, fmt)
    ocr = make_chatocr(args)
    # Every mistake in the keys, scenario, schema or options fails here, before any document is read.
    request = request_from(
        ocr,
        args.keys,
        args.scenario,
        args.schema,
        min_confidence=args.min_confidence,
        concurrency=args.concurrency,
        per_page=args.per_page,
        accept_precision=getattr(args, "accept_precision", None),
        accept_threshold=getattr(args, "accept_threshold", None),
    )
    if request.per_page and args.executor == "ray":
        raise UsageError("--per-page does not run on Ray yet.", hint="Leave out --per-page, or --executor ray.")
    paths = collect_inputs(args.inputs, ocr.config.ocr if args.ocr is None else args.ocr)
    keyed, unreadable = key_inputs(paths)
    batch = BatchRun(ocr, request, args, fmt, keyed, Console(stderr=True), status=status)
    if fmt == "csv":
        batch.columns = csv_columns(request.field_names, request.per_page)
    if args.out is not None and fmt in ("jsonl", "csv"):
        current = {path: sha for path, sha in keyed.values() if path not in unreadable}
        batch.log = ResultLog(args.out, "csv" if fmt == "csv" else "jsonl", batch.columns, current).open()
        _report_resume(batch.err, batch.log, args.out)
    elif fmt == "csv":
        sys.stdout.write(csv_text(batch.columns or []))
    try:
        todo = BatchTodo.of(paths, keyed, unreadable, batch.log, request.per_page)
        if batch.log is not None and len(todo.pending) < len(paths):
            done = len(paths) - len(todo.pending)
            batch.err.print(f"resuming: {done} of {len(paths)} document(s) already in {args.out}", **_PLAIN)
        results = batch.run(todo)
    finally:
        status.stop()  # before any result is printed: the status line shares the terminal
        if batch.log is not None:
            batch.log.close()
    code = _finish(batch, len(paths), skipped=len(paths) - len(todo.pending))
    if args.timings:
        for result in results:
            batch.err.print(where_time_went(result, status.timeline), **_PLAIN)
    if args.html is not None:
        _write_html(batch)
    return code


def _check_usage(args: argparse.Namespace, fmt: str) -> None:
    """Options that contradict each other or name an impossible output: usage errors, before any work."""
    if fmt == "table" and args.out is not None:
        raise UsageError(
            "--format table prints to the terminal; it cannot go to --out.",
            hint="Use --format jsonl or csv with --out.",
        )
    if args.out is not None and fmt in ("json", "values", "xlsx"):
        _check_out_path(args.out)
    if args.html is not None:  # refused now, not after the documents are done
        check_output_path(args.html)
    if args.draw is not None and args.draw.exists() and not args.draw.is_dir():
        raise UsageError(f"--draw {args.draw} is not a directory.", hint="Give a folder for the pictures.")
    if fmt == "xlsx" and args.out is None:
        raise UsageError("--format xlsx writes a workbook, not text.", hint="Give --out results.xlsx.")
    if args.schema and args.executor == "ray":
        raise UsageError("--schema does not run on Ray yet.", hint="Leave out --schema, or --executor ray.")


def _check_out_path(out: Path) -> None:
    """Usage errors for an --out that cannot receive a whole-file write, before any work: anything but
    a regular file or a new name (a FIFO, a device, a directory, a link: chatocr.fileio), and a
    workbook chatocr did not write."""
    check_output_path(out)
    if out.suffix.lower() == ".xlsx":
        from chatocr.cli.excel import check_own_workbook

        check_own_workbook(out)


def _write_whole(out: Path, text: str) -> None:
    """--out x.json: replaced atomically (chatocr.fileio: checked target, secrets masked)."""
    try:
        atomic_write(out, text)
    except OSError as error:
        raise OutputError(f"Cannot write {out}: {error.strerror or error}.") from None


def _report_resume(err: Console, log: ResultLog, out: Path) -> None:
    if log.repaired_bytes:
        err.print(
            f"repaired {out}: removed a half-written last line ({log.repaired_bytes} bytes)", **_PLAIN, style="yellow"
        )
    if log.dropped_failures:
        err.print(f"retrying {log.dropped_failures} document(s) that failed in an earlier run", **_PLAIN)
    if log.replaced_changed:
        err.print(
            f"redoing {log.replaced_changed} document(s) whose file changed (their old lines are replaced)", **_PLAIN
        )
    if log.streaming:
        err.print(f"{out} is not a regular file: results are streamed to it, without resume", **_PLAIN)


def grounded_summary(result: Extraction) -> dict[str, Any]:
    """The short JSON of `--format values`: each field's value, status and where it is on the image
    (no transcript; `--format json` has everything)."""
    route = result.route
    return {
        "source": result.source,
        "page": result.page,
        "scenario": result.scenario,
        "route": route.mode if route else None,
        "values": result.values,
        **({"data": result.to_dict()["data"], "errors": result.errors} if result.schema else {}),
        "needs_review": result.needs_review,
        "to_review": result.to_review,
        "fields": {
            name: {
                "value": f.value,
                "normalized": f.normalized,
                "status": f.status,
                "confidence": f.confidence,
                "calibrated": f.calibrated,
                "decision": f.decision,
                # x1,y1 .. x4,y4 clockwise from top-left, in page pixels
                "boxes": [
                    {"line": e.line_id, "page": e.page, "box": [round(c) for p in e.box for c in p]} for e in f.evidence
                ],
            }
            for name, f in result.provenance.items()
        },
        "usage": result.usage,
        "seconds": result.timings.get("total_s"),
        "error": result.error,
    }


def _finish(batch: BatchRun, total: int, skipped: int) -> int:
    """Write the whole-file formats, print the tables and the errors, sum up; the exit status."""
    args, results, keyed, err = batch.args, batch.results, batch.keyed, batch.err
    failed = [r for r in results if not r.ok]
    if batch.fmt == "xlsx":
        from chatocr.cli.excel import write_xlsx

        write_xlsx(
            args.out,
            [(keyed[r.source], r) for r in _in_order(results)],
            batch.request.field_names if batch.request.typed.schema is not None or batch.request.keys else None,
            per_page=any(r.page is not None for r in results),
        )
    if batch.fmt in ("json", "values"):
        _write_json(batch, total)
    elif batch.fmt == "table":
        _print_tables(_in_order(results), total)
    for result in failed:
        hint = (result.error or {}).get("hint")
        err.print(f"error: {failure_line(result)}\n  hint: {hint}", highlight=False, markup=False, soft_wrap=True)
    if args.draw is not None and not batch.quiet:  # say where the pictures went
        drawn = sum(drawing_path(args.draw, Path(r.source), r.page).is_file() for r in results if r.ok)
        err.print(f"{drawn} picture(s) in {args.draw.resolve()}", highlight=False, markup=False, soft_wrap=True)
    if (total > 1 or args.out is not None) and not batch.quiet:
        review = review_totals(results)
        err.print(
            f"{len(results) - len(failed)} done, {len(failed)} failed"
            + (f", {skipped} skipped (already done)" if skipped else "")
            + (f"; {review}" if review else "")
            + (f"; results in {args.out}" if args.out else ""),
            soft_wrap=True,
            highlight=False,
        )
    return 1 if failed else 0


def review_totals(results: list[Extraction]) -> str | None:
    """ "37 of 40 fields accepted, 3 to review (in 2 documents)" over the documents of a run."""
    decided = [f for r in results if r.ok for f in r.fields.values() if f.decision is not None]
    if not decided:
        return None
    accepted = sum(f.decision == "accepted" for f in decided)
    documents = sum(r.needs_review for r in results if r.ok)
    fields = "field" if len(decided) == 1 else "fields"
    where = f" (in {documents} document{'s' if documents != 1 else ''})" if documents else ""
    return f"{accepted} of {len(decided)} {fields} accepted, {len(decided) - accepted} to review{where}"


def _write_json(batch: BatchRun, total: int) -> None:
    """--format json (every record) or values (the short summary), to --out or standard output."""
    keyed = batch.keyed
    records = {"json": lambda r: record_for(keyed[r.source], r), "values": grounded_summary}[batch.fmt]
    data: Any = [records(r) for r in _in_order(batch.results)]
    if total == 1 and len(data) == 1:
        data = data[0]
    text = redact(json.dumps(data, ensure_ascii=False, indent=2, default=str)) + "\n"
    if batch.fmt == "values":  # a box on one line: [68, 91, 423, 91, ...], not one number per line
        text = _NUMBER_LIST.sub(lambda m: "[" + ", ".join(_NUMBER.findall(m.group(1))) + "]", text)
    if batch.args.out is not None:
        _write_whole(batch.args.out, text)
    else:
        sys.stdout.write(text)


def _print_tables(results: list[Extraction], total: int) -> None:
    console = Console()
    if total == 1:  # one file: its fields (one table per page with --per-page)
        for result in results:
            if result.page is not None:
                console.print(f"page {result.page}", style="bold", highlight=False)
            if result.ok:
                console.print(field_table(result))
                review = review_line(result)
                if review:
                    console.print(review, style="bold", highlight=False, markup=False)
                console.print(summary_line(result), style="dim", highlight=False)
                for warning in result.warnings:
                    console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False)
        return
    table = Table("document", "scenario", "grounded", "other", "accepted", "to review", "result")
    # Documents with fields to review first, the most to review first.
    for result in sorted(results, key=lambda r: (-len(r.to_review), r.source, r.page or 0)):
        counts = result.status_counts()
        grounded = counts.pop("grounded", 0)
        other = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        name = Path(result.source).name + ("" if result.page is None else f" p{result.page}")
        waiting = len(result.to_review)
        table.add_row(
            name,
            result.scenario or "",
            str(grounded),
            other,
            str(len(result.accepted)),
            f"[yellow]{waiting}[/yellow]" if waiting else "0",
            "[green]ok[/green]" if result.ok else "[red]failed[/red]",
        )
    console.print(table)


def _in_order(results: list[Extraction]) -> list[Extraction]:
    """Per-page results by file and page (whole documents stay in the order they finished)."""
    if any(r.page is not None for r in results):
        return sorted(results, key=lambda r: (r.source, r.page or 0))
    return results


def _write_html(batch: BatchRun) -> None:
    """--html: the report of this run, or of the whole --out JSON Lines file (earlier runs too)."""
    from chatocr.cli.view_cmd import report_written
    from chatocr.viewer import gather_items, read_result_file, write_report

    args, err, ocr = batch.args, batch.err, batch.ocr
    pairs: list[tuple[str | None, Extraction]] = [(batch.keyed[r.source][1], r) for r in _in_order(batch.results)]
    if args.out is not None and batch.fmt == "jsonl" and args.out.is_file():
        pairs, _ = read_result_file(args.out)
    try:
        items = gather_items(pairs, lambda _name: ocr.engine, run_ocr=True)
        target = write_report(args.html, items, title=args.out.name if args.out else "chatocr results")
    except OSError as exc:  # the results are written already: say so, do not fail them
        err.print(f"error: could not write {args.html}: {exc}", markup=False, highlight=False, style="red")
        return
    err.print(report_written(target, len(items)), markup=False, highlight=False, soft_wrap=True)
