"""`chatocr extract` over many documents: the run's settings in one object (`BatchRun`), what is
left to do (`BatchTodo`), and the loop that records each result as it finishes, with a progress
bar, in this process (`ChatOCR.extract_many` / `extract_pages`) or on Ray actors.

Every document is asked the same `ExtractionRequest`, resolved once by the command before any
document is read; the results file (chatocr/runs/log.py) gets each result as soon as it is ready.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from chatocr import progress
from chatocr.api import ChatOCR
from chatocr.cli.common import memory_overrides
from chatocr.cli.status import StatusLine
from chatocr.extraction.request import ExtractionRequest
from chatocr.extraction.result import Extraction
from chatocr.runs import DocKey, ResultLog, pages_to_do
from chatocr.runs.records import format_line
from chatocr.scenarios.keys import split_keys
from chatocr.viewer.drawing import save_drawing

__all__ = ["BatchRun", "BatchTodo", "failure_line"]


@dataclass(frozen=True)
class BatchTodo:
    """What a run still has to do: whole documents, or (one result per page) each file's pages
    still missing; and the files that could not be read, failed before any work."""

    pending: list[Path]  # files with anything left to do, in input order
    pages: dict[Path, set[int] | None] | None  # per page: each file's pages to do (None: all); else None
    unreadable: list[Extraction]

    @classmethod
    def of(
        cls,
        paths: Sequence[Path],
        keyed: dict[str, DocKey],
        unreadable: dict[str, Extraction],
        log: ResultLog | None,
        per_page: bool,
    ) -> BatchTodo:
        pages = pages_to_do(paths, keyed, log) if per_page else None
        if pages is None:
            pending = [p for p in paths if log is None or keyed[str(p)] not in log.done]
        else:
            pending = list(pages)
            pages = {p: todo for p, todo in pages.items() if str(p) not in unreadable}
        return cls(pending, pages, [unreadable[str(p)] for p in pending if str(p) in unreadable])

    @property
    def readable(self) -> list[Path]:
        failed = {r.source for r in self.unreadable}
        return [p for p in self.pending if str(p) not in failed]


@dataclass
class BatchRun:
    """One `chatocr extract` run over its documents."""

    ocr: ChatOCR
    request: ExtractionRequest
    args: argparse.Namespace
    fmt: str  # jsonl, csv, json, values, xlsx, table
    keyed: dict[str, DocKey]  # every input's (path, sha256)
    err: Console
    log: ResultLog | None = None
    columns: list[str] | None = None  # CSV
    status: StatusLine | None = None
    results: list[Extraction] = field(default_factory=list)
    failed: int = 0

    @property
    def quiet(self) -> bool:
        return bool(getattr(self.args, "quiet", False))

    def run(self, todo: BatchTodo) -> list[Extraction]:
        """Each document's result recorded as it finishes (the unreadable ones first, at once)."""
        total = len(todo.pending)
        if not total:
            return self.results
        show_bar = total > 1 and not self.quiet
        if show_bar and self.status is not None:
            self.status.stop()  # the bar owns the terminal now; the latest event shows in it
        with Progress(*_BAR, console=self.err, disable=not show_bar, transient=False) as bar:
            task = bar.add_task("extract", total=total, counts="", stage="", model="")
            if show_bar and self.status is not None:

                def show(event: progress.Event) -> None:
                    model = _model_text(event)  # kept as it was by events that do not carry it
                    if model is None:
                        bar.update(task, stage=_stage_text(event))
                    else:
                        bar.update(task, stage=_stage_text(event), model=model)

                self.status.sink = show
            batches = itertools.chain(([r] for r in todo.unreadable), self._batches(todo))
            for result, last_of_file in _flatten(batches):
                self._record(result, bar.console if show_bar else None)
                counts = f"[green]{len(self.results) - self.failed} ok[/green] [red]{self.failed} failed"
                bar.update(task, advance=1 if last_of_file else 0, counts=counts)
        return self.results

    def _record(self, result: Extraction, console: Console | None) -> None:
        key = self.keyed[result.source]
        if self.log is not None:
            self.log.append(key, result)
        elif self.fmt in ("jsonl", "csv"):
            sys.stdout.write(format_line("csv" if self.fmt == "csv" else "jsonl", key, result, self.columns))
            sys.stdout.flush()
        if not result.ok:
            self.failed += 1
            if console is not None:
                console.print(
                    f"failed: {failure_line(result)}", style="red", markup=False, highlight=False, soft_wrap=True
                )
        elif self.args.draw is not None:
            self._draw(result, console or self.err)
        self.results.append(result)

    def _batches(self, todo: BatchTodo) -> Iterator[list[Extraction]]:
        """Each file's results as the file finishes: one per document, or its pages."""
        readable = todo.readable
        if todo.pages is not None:
            yield from self._page_batches(todo.pages)
        elif readable and getattr(self.args, "executor", "local") == "ray":
            yield from ([r] for r in self._on_ray(readable))
        elif readable:
            yield from ([r] for r in self.ocr.extract_many([str(p) for p in readable], request=self.request))

    def _page_batches(self, todo: dict[Path, set[int] | None]) -> Iterator[list[Extraction]]:
        """One result per page: each file's page results as the file finishes. About the request's
        concurrency pages in flight in all: that many files at once, or fewer with several pages."""
        limit = self.request.concurrency
        files = max(1, min(limit, len(todo)))
        with ThreadPoolExecutor(max_workers=files) as pool:
            futures = [
                pool.submit(
                    self.ocr.extract_pages,
                    str(path),
                    request=_for_pages(self.request, pages, max(1, limit // files)),
                    raise_errors=False,
                )
                for path, pages in todo.items()
            ]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()

    def _on_ray(self, paths: list[Path]) -> Iterator[Extraction]:
        """--executor ray: actors built from the command's --llm/--ocr/--config, each resolving
        the same request from the same options (ChatOCR.request on the worker)."""
        from chatocr.distributed.ray_batch import ChatOCRSpec, extract_paths, init_ray

        args, request = self.args, self.request
        options: dict[str, Any] = {"classify": request.classify, "concurrency": request.concurrency}
        if request.typed.min_confidence is not None:
            options["min_confidence"] = request.typed.min_confidence
        options.update(accept_precision=request.accept.precision, accept_threshold=request.accept.threshold)
        spec = ChatOCRSpec(
            llm=args.llm,
            ocr=args.ocr,
            config=str(args.config) if args.config else None,
            keys=tuple(split_keys(args.keys)) if args.keys else None,  # as typed: the actors parse them alike
            scenario=request.scenario.name if request.scenario is not None else None,
            overrides=memory_overrides(args),  # --memory DIR / --no-memory, on every actor
            options=options,
        )
        started = init_ray(args.address)
        try:
            for _, result in extract_paths(paths, spec, actors=args.actors, run_name=f"cli{os.getpid()}"):
                yield result
        finally:
            if started:
                import ray

                ray.shutdown()

    def _draw(self, result: Extraction, console: Console) -> None:
        try:
            document = self.ocr.engine.read(result.source)  # the OCR cache makes this cheap
            save_drawing(result, document, Path(result.source), self.args.draw)
        except Exception as exc:  # a picture that fails must not fail the document
            console.print(f"[yellow]could not draw {result.source}: {exc}[/yellow]", highlight=False)


_BAR = (
    TextColumn("[bold]extract"),
    BarColumn(),
    MofNCompleteColumn(),
    TextColumn("{task.fields[counts]}"),
    TimeElapsedColumn(),
    TextColumn("ETA"),
    TimeRemainingColumn(),
    TextColumn("{task.fields[model]}"),
    TextColumn("[dim]{task.fields[stage]}"),
)


def _model_text(event: progress.Event) -> str | None:
    """The model's documents in flight and tokens per second, from the events that carry them (a
    local model's generated pieces: chatocr/llm/batch.py's `activity`); None for the others."""
    data = event.data
    if "in_flight" not in data or "tokens_per_s" not in data:
        return None
    return f"{data['in_flight']} in flight · {float(data['tokens_per_s']):.1f} tok/s"


def _for_pages(request: ExtractionRequest, pages: set[int] | None, concurrency: int) -> ExtractionRequest:
    """The run's request for one file's pages (its pages still to do, its share of the pages in flight)."""
    return replace(request, pages=None if pages is None else frozenset(pages), concurrency=concurrency)


def _flatten(batches: Iterator[list[Extraction]]) -> Iterator[tuple[Extraction, bool]]:
    """Each result, and whether it is the last of its file (the progress bar counts files)."""
    for batch in batches:
        for n, result in enumerate(batch):
            yield result, n == len(batch) - 1


def _stage_text(event: progress.Event) -> str:
    """The latest event, short enough for the progress bar's last column."""
    name = Path(event.source).name if event.source else ""
    return f"{name}: {event.message}"[:60] if name else event.message[:60]


def failure_line(result: Extraction) -> str:
    """`SOURCE: message` for a failed document; the message is not prefixed twice when the error
    already names the document (the pipeline's input errors do)."""
    message = str((result.error or {}).get("message"))
    if message.startswith(f"{result.source}:"):
        return message
    return f"{result.source}: {message}"
