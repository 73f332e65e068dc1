"""`chatocr extract FILES_OR_DIRS...`: key fields from one document or a folder of them.

One document prints a table of fields (value, status, confidence) and a route/usage line; many
show a progress bar and a summary. `--out results.jsonl` (or .csv) is appended to as each document
finishes and resumed by the next run (see chatocr/runs/log.py). Exit status 1 if any failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from chatocr import progress
from chatocr.cli.common import (
    KEYS_HELP,
    add_backend_options,
    field_table,
    keys_option,
    make_chatocr,
    summary_line,
)
from chatocr.cli.status import StatusLine, where_time_went
from chatocr.errors import OutputError, UsageError
from chatocr.extraction.result import Extraction
from chatocr.fileio import atomic_write, check_output_path
from chatocr.runs import DocKey, ResultLog, collect_inputs, key_inputs, pages_to_do
from chatocr.runs.records import csv_columns, csv_text, format_line, record_for
from chatocr.scenarios.keys import parse_keys, split_keys
from chatocr.secrets import redact
from chatocr.typed.loading import load_schema
from chatocr.typed.schema import TypedSchema
from chatocr.viewer.drawing import drawing_path, save_drawing

__all__ = ["register"]

FORMATS = ("table", "json", "values", "jsonl", "csv", "xlsx")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBER_LIST = re.compile(r"\[\s*((?:-?\d+(?:\.\d+)?,\s*)*-?\d+(?:\.\d+)?)\s*\]")
_PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}


def register(sub: Any) -> None:
    p = sub.add_parser("extract", help="extract key fields from documents (files or folders), resumable")
    p.add_argument("inputs", nargs="+", type=Path, metavar="FILES_OR_DIRS")
    p.add_argument("-s", "--scenario", help="scenario name or YAML file, or auto (default) to route each document")
    p.add_argument("-k", "--keys", type=keys_option, help=KEYS_HELP)
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
    add_backend_options(p)
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
    if fmt == "table" and args.out is not None:
        raise UsageError(
            "--format table prints to the terminal; it cannot go to --out.",
            hint="Use --format jsonl or csv with --out.",
        )
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1.", hint="Give --concurrency 1 or more.")
    if args.out is not None and fmt in ("json", "values", "xlsx"):
        _check_out_path(args.out)
    if args.draw is not None and args.draw.exists() and not args.draw.is_dir():
        raise UsageError(f"--draw {args.draw} is not a directory.", hint="Give a folder for the pictures.")
    if fmt == "xlsx" and args.out is None:
        raise UsageError("--format xlsx writes a workbook, not text.", hint="Give --out results.xlsx.")
    if args.schema and args.executor == "ray":
        raise UsageError("--schema does not run on Ray yet.", hint="Leave out --schema, or --executor ray.")
    schema = load_schema(args.schema)  # a bad model or JSON Schema fails now, before any OCR
    ocr = make_chatocr(args, concurrency=args.concurrency, min_confidence=args.min_confidence)
    per_page = ocr.config.per_page if args.per_page is None else args.per_page
    if per_page and args.executor == "ray":
        raise UsageError("--per-page does not run on Ray yet.", hint="Leave out --per-page, or --executor ray.")
    keys = split_keys(args.keys) if args.keys else None
    scenario = None if args.scenario in (None, "", "auto") else args.scenario
    if scenario is not None:
        scenario = ocr.library.resolve(scenario).name  # a name (suggestions if unknown) or a YAML file
    names = [f.name for f in schema.fields] if schema else [f.name for f in parse_keys(args.keys)] if keys else None
    paths = collect_inputs(args.inputs, ocr.config.ocr if args.ocr is None else args.ocr)
    err = Console(stderr=True)
    keyed, unreadable = key_inputs(paths)
    columns = None
    if fmt == "csv":
        fields = names or ([f.name for f in ocr.scenario(scenario).fields] if scenario else None)
        columns = csv_columns(fields, per_page)
    log: ResultLog | None = None
    if args.out is not None and fmt in ("jsonl", "csv"):
        current = {path: sha for path, sha in keyed.values() if path not in unreadable}
        log = ResultLog(args.out, "csv" if fmt == "csv" else "jsonl", columns, current).open()
        _report_resume(err, log, args.out)
    elif fmt == "csv":
        sys.stdout.write(csv_text(columns or []))
    try:
        todo = pages_to_do(paths, keyed, log) if per_page else None
        pending = [p for p in paths if log is None or keyed[str(p)] not in log.done] if todo is None else list(todo)
        if log is not None and len(pending) < len(paths):
            err.print(
                f"resuming: {len(paths) - len(pending)} of {len(paths)} document(s) already in {args.out}",
                soft_wrap=True,
                highlight=False,
            )
        failed_reads = [unreadable[str(p)] for p in pending if str(p) in unreadable]  # reported, not read
        readable = [p for p in pending if str(p) not in unreadable]
        if todo is not None:
            todo = {p: pages for p, pages in todo.items() if str(p) not in unreadable}
        results = _run_batch(
            ocr, readable, keys, scenario, args, fmt, log, keyed, columns, err, todo, failed_reads, schema, status
        )
    finally:
        status.stop()  # before any result is printed: the status line shares the terminal
        if log is not None:
            log.close()
    code = _finish(results, fmt, args, keyed, len(paths), err, skipped=len(paths) - len(pending), keys=names)
    if args.timings:
        for result in results:
            model = ocr.model if len(results) == 1 else None
            err.print(where_time_went(result, model, status.timeline), **_PLAIN)
    if args.html is not None:
        _write_html(ocr, args, results, keyed, fmt, err)
    return code


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


def _run_batch(
    ocr: Any,
    pending: list[Path],
    keys: list[str] | None,
    scenario: str | None,
    args: argparse.Namespace,
    fmt: str,
    log: ResultLog | None,
    keyed: dict[str, DocKey],
    columns: list[str] | None,
    err: Console,
    todo: dict[Path, set[int] | None] | None = None,
    failed_reads: Sequence[Extraction] = (),
    schema: TypedSchema | None = None,
    status: StatusLine | None = None,
) -> list[Extraction]:
    results: list[Extraction] = []
    if not pending and not failed_reads:
        return results
    show_bar = len(pending) + len(failed_reads) > 1 and not getattr(args, "quiet", False)
    bar = (
        TextColumn("[bold]extract"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("[dim]{task.fields[stage]}"),
    )
    failed = 0
    if show_bar and status is not None:
        status.stop()  # the bar owns the terminal now; the latest event shows in it
    with Progress(*bar, console=err, disable=not show_bar, transient=False) as bar_display:
        task = bar_display.add_task("extract", total=len(pending) + len(failed_reads), counts="", stage="")
        if show_bar and status is not None:
            status.sink = lambda event: bar_display.update(task, stage=_stage_text(event))
        batches: Iterator[list[Extraction]] = iter(())
        if todo is None and pending:
            batches = ([r] for r in _results(ocr, pending, keys, scenario, args, schema))
        elif todo:
            batches = page_batches(ocr, todo, keys, scenario, args.concurrency, schema)
        batches = itertools.chain(([r] for r in failed_reads), batches)  # unreadable files: failed at once
        for result, last_of_file in _flatten(batches):
            key = keyed[result.source]
            if log is not None:
                log.append(key, result)
            elif fmt in ("jsonl", "csv"):
                sys.stdout.write(format_line("csv" if fmt == "csv" else "jsonl", key, result, columns))
                sys.stdout.flush()
            if not result.ok:
                failed += 1
                if show_bar:
                    bar_display.console.print(
                        f"failed: {_failure(result)}",
                        style="red",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
            elif args.draw is not None:
                _draw(ocr, result, args.draw, bar_display.console)
            results.append(result)
            bar_display.update(
                task,
                advance=1 if last_of_file else 0,
                counts=f"[green]{len(results) - failed} ok[/green] [red]{failed} failed",
            )
    return results


def _results(
    ocr: Any,
    pending: list[Path],
    keys: list[str] | None,
    scenario: str | None,
    args: argparse.Namespace,
    schema: TypedSchema | None = None,
) -> Iterator[Extraction]:
    """Each document's result as it finishes: in this process, or on Ray actors (--executor ray)."""
    if getattr(args, "executor", "local") == "ray":
        from chatocr.distributed.ray_batch import run_from_cli

        yield from run_from_cli(pending, args, keys, scenario)
    else:
        yield from ocr.extract_many(
            [str(p) for p in pending], keys, scenario, concurrency=args.concurrency, schema=schema
        )


def _failure(result: Extraction) -> str:
    """`SOURCE: message` for a failed document; the message is not prefixed twice when the error
    already names the document (the pipeline's input errors do)."""
    message = str((result.error or {}).get("message"))
    if message.startswith(f"{result.source}:"):
        return message
    return f"{result.source}: {message}"


def _stage_text(event: progress.Event) -> str:
    """The latest event, short enough for the progress bar's last column."""
    name = Path(event.source).name if event.source else ""
    return f"{name}: {event.message}"[:60] if name else event.message[:60]


def _draw(ocr: Any, result: Extraction, out_dir: Path, console: Console) -> None:
    try:
        document = ocr.engine.read(result.source)  # the OCR cache makes this cheap
        save_drawing(result, document, Path(result.source), out_dir)
    except Exception as exc:  # a picture that fails must not fail the document
        console.print(f"[yellow]could not draw {result.source}: {exc}[/yellow]", highlight=False)


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
        "fields": {
            name: {
                "value": f.value,
                "normalized": f.normalized,
                "status": f.status,
                "confidence": f.confidence,
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


def _finish(
    results: list[Extraction],
    fmt: str,
    args: argparse.Namespace,
    keyed: dict[str, DocKey],
    total: int,
    err: Console,
    skipped: int | None = None,
    keys: list[str] | None = None,
) -> int:
    failed = [r for r in results if not r.ok]
    if fmt == "xlsx":
        from chatocr.cli.excel import write_xlsx

        write_xlsx(
            args.out,
            [(keyed[r.source], r) for r in _in_order(results)],
            keys,
            per_page=any(r.page is not None for r in results),
        )
    if fmt in ("json", "values"):
        records = {"json": lambda r: record_for(keyed[r.source], r), "values": grounded_summary}[fmt]
        data: Any = [records(r) for r in _in_order(results)]
        if total == 1 and len(data) == 1:
            data = data[0]
        text = redact(json.dumps(data, ensure_ascii=False, indent=2, default=str)) + "\n"
        if fmt == "values":  # a box on one line: [68, 91, 423, 91, ...], not one number per line
            text = _NUMBER_LIST.sub(lambda m: "[" + ", ".join(_NUMBER.findall(m.group(1))) + "]", text)
        if args.out is not None:
            _write_whole(args.out, text)
        else:
            sys.stdout.write(text)
    elif fmt == "table":
        _print_tables(_in_order(results), total)
    for result in failed:
        error = result.error or {}
        err.print(
            f"error: {_failure(result)}\n  hint: {error.get('hint')}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    quiet = getattr(args, "quiet", False)
    if args.draw is not None and not quiet:  # say where the pictures went
        drawn = sum(drawing_path(args.draw, Path(r.source), r.page).is_file() for r in results if r.ok)
        err.print(f"{drawn} picture(s) in {args.draw.resolve()}", highlight=False, markup=False, soft_wrap=True)
    if (total > 1 or args.out is not None) and not quiet:
        skipped = total - len(results) if skipped is None else skipped
        err.print(
            f"{len(results) - len(failed)} done, {len(failed)} failed"
            + (f", {skipped} skipped (already done)" if skipped else "")
            + (f"; results in {args.out}" if args.out else ""),
            soft_wrap=True,
            highlight=False,
        )
    return 1 if failed else 0


def _print_tables(results: list[Extraction], total: int) -> None:
    console = Console()
    if total == 1:  # one file: its fields (one table per page with --per-page)
        for result in results:
            if result.page is not None:
                console.print(f"page {result.page}", style="bold", highlight=False)
            if result.ok:
                console.print(field_table(result))
                console.print(summary_line(result), style="dim", highlight=False)
                for warning in result.warnings:
                    console.print(f"warning: {warning}", style="yellow", highlight=False, markup=False)
        return
    table = Table("document", "scenario", "grounded", "other", "result")
    for result in sorted(results, key=lambda r: (r.source, r.page or 0)):
        counts = result.status_counts()
        grounded = counts.pop("grounded", 0)
        other = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        name = Path(result.source).name + ("" if result.page is None else f" p{result.page}")
        table.add_row(
            name, result.scenario or "", str(grounded), other, "[green]ok[/green]" if result.ok else "[red]failed[/red]"
        )
    console.print(table)


def page_batches(
    ocr: Any,
    todo: dict[Path, set[int] | None],
    keys: list[str] | None,
    scenario: str | None,
    concurrency: int | None,
    schema: TypedSchema | None = None,
) -> Iterator[list[Extraction]]:
    """--per-page: each file's page results as the file finishes. About `concurrency` pages in
    flight in all: that many files at once, or fewer files with several pages each."""
    limit = concurrency or ocr.config.concurrency
    files = max(1, min(limit, len(todo)))
    with ThreadPoolExecutor(max_workers=files) as pool:
        futures = [
            pool.submit(
                ocr.extract_pages,
                str(path),
                keys,
                scenario,
                pages=pages,
                raise_errors=False,
                concurrency=max(1, limit // files),
                schema=schema,
            )
            for path, pages in todo.items()
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _flatten(batches: Iterator[list[Extraction]]) -> Iterator[tuple[Extraction, bool]]:
    """Each result, and whether it is the last of its file (the progress bar counts files)."""
    for batch in batches:
        for n, result in enumerate(batch):
            yield result, n == len(batch) - 1


def _in_order(results: list[Extraction]) -> list[Extraction]:
    """Per-page results by file and page (whole documents stay in the order they finished)."""
    if any(r.page is not None for r in results):
        return sorted(results, key=lambda r: (r.source, r.page or 0))
    return results


def _write_html(
    ocr: Any, args: argparse.Namespace, results: list[Extraction], keyed: dict[str, DocKey], fmt: str, err: Console
) -> None:
    """--html: the report of this run, or of the whole --out JSON Lines file (earlier runs too)."""
    from chatocr.cli.view_cmd import report_written
    from chatocr.viewer import gather_items, read_result_file, write_report

    pairs: list[tuple[str | None, Extraction]] = [(keyed[r.source][1], r) for r in _in_order(results)]
    if args.out is not None and fmt == "jsonl" and args.out.is_file():
        pairs, _ = read_result_file(args.out)
    try:
        items = gather_items(pairs, lambda _name: ocr.engine, run_ocr=True)
        target = write_report(args.html, items, title=args.out.name if args.out else "chatocr results")
    except OSError as exc:  # the results are written already: say so, do not fail them
        err.print(f"error: could not write {args.html}: {exc}", markup=False, highlight=False, style="red")
        return
    err.print(report_written(target, len(items)), markup=False, highlight=False, soft_wrap=True)
