"""Measured learning: accuracy after the first N documents of a labelled set joined the memory.

    chatocr eval ../shared/data/sroie_train --learning-curve 0,1,2,5,10,20 --llm local --ocr rapid

For each set, the documents in file order (sorted by id, as `--limit` takes them): the first N
join a memory of reviewed documents (their labels as the accepted answers, as `chatocr memory
import` stores them; their OCR from the same engine the evaluation reads with), and every size is
scored on the same documents: those after the largest N. So the points differ only in what the
memory holds, never in which documents are asked (a curve scored on "the rest" of each size would
mix a harder or easier tail into the comparison). The memory is searched leave-one-out (no
document is in it twice, and an exact duplicate of a held-out document's text is never offered),
in a folder of its own that is removed afterwards: nothing this machine reviewed takes part. The
OCR ceiling (how many labels the OCR text holds at all) is reported beside each field.

Outcomes are cached like any evaluation's, keyed by what the memory holds, so an interrupted
curve resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr.errors import ConfigError, MemoryStoreError
from chatocr.evaluation.datasets import Dataset, label_answer
from chatocr.evaluation.runner import Evaluator, same_documents
from chatocr.evaluation.strategies import Strategy
from chatocr.extraction.examples import MEMORY_PREFIX
from chatocr.extraction.remembered import ExampleMemory
from chatocr.memory import DocumentKey, MemoryExample, lines_of

__all__ = ["learning_curve", "markdown_curve", "parse_sizes", "print_curve"]

Progress = Callable[[str], None]


def parse_sizes(text: str) -> list[int]:
    """ "0,1,2,5,10,20" -> [0, 1, 2, 5, 10, 20] (sorted, each once); ConfigError for anything else."""
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        sizes = []
    if not sizes or sizes[0] < 0:
        raise ConfigError(
            f"--learning-curve {text!r} is not a list of document counts.", hint="e.g. --learning-curve 0,1,2,5,10,20"
        )
    return sizes


def check_sizes(dataset: Dataset, sizes: Sequence[int]) -> None:
    largest = max(sizes)
    if largest >= len(dataset.documents):
        raise ConfigError(
            f"{dataset.name} has {len(dataset.documents)} documents: a memory of {largest} leaves none to score.",
            hint=f"Give sizes below {len(dataset.documents)} (the documents after the largest are scored).",
        )


async def learning_curve(
    evaluator: Evaluator,
    dataset: Dataset,
    strategy: Strategy,
    sizes: Sequence[int],
    root: Path,
    *,
    command: str = "",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The curve of one set under one strategy (see the module docstring); the memory lives in
    `root` (a fresh folder: the caller removes it)."""
    say = progress or (lambda message: None)
    sizes = sorted(set(sizes))
    check_sizes(dataset, sizes)
    largest = max(sizes)
    held_out = dataclasses.replace(dataset, documents=dataset.documents[largest:])
    evaluator.use_memory(ExampleMemory(root, layout_weight=evaluator.chat.config.example_layout))
    memory = evaluator.memory
    assert memory is not None
    memory.twins.update(same_documents([dataset]))  # a scored document's copy among the first N is left out
    points: list[dict[str, Any]] = []
    ocr_ceiling: dict[str, Any] = {}
    added: list[str] = []
    for size in sizes:
        added += await _remember(evaluator, memory, dataset, size, len(added), say)
        say(
            f"learning curve {dataset.name}: {size} document(s) in memory; scoring the "
            f"{len(held_out.documents)} after the first {largest}"
        )
        report = await evaluator.run([held_out], [strategy], command=command)
        entry = report["results"][held_out.name][strategy.name]
        ocr_ceiling = report["ocr_recall"].get(held_out.name, {})
        with_memory = sum(any(e.startswith(MEMORY_PREFIX) for e in o.examples) for o in evaluator.outcomes)
        points.append(
            {
                "size": size,
                "memory": list(added),
                "exact": entry["overall"]["exact"],
                "fields": {name: counts["exact"] for name, counts in entry["fields"].items()},
                "documents": entry["usage"].get("documents", 0),
                "errors": entry["usage"].get("errors", 0),
                "with_memory_examples": with_memory,
                "prompt_tokens_per_doc": entry["usage"].get("prompt_tokens_per_doc"),
                "seconds_per_doc": entry["usage"].get("seconds_per_doc"),
                "mismatches": entry.get("mismatches", {}),
                "rows": report["documents"],  # each scored document: values, matches, examples
            }
        )
    return {
        "dataset": dataset.name,
        "scenario": dataset.scenario,
        "strategy": strategy.name,
        "fields": list(dataset.fields),
        "order": "file order (label files sorted by id)",
        "scored": [doc.id for doc in held_out.documents],
        "points": points,
        "ocr_ceiling": ocr_ceiling,
    }


async def _remember(
    evaluator: Evaluator, memory: ExampleMemory, dataset: Dataset, size: int, start: int, say: Progress
) -> list[str]:
    """Documents [start, size) of the set into the memory, their labels as the answers."""
    store = memory.store(dataset.scenario)
    added = []
    for doc in dataset.documents[start:size]:
        document = await evaluator.read(dataset, doc)
        identity = doc.image or doc.ocr
        if document is None or identity is None:
            say(f"learning curve {dataset.name}: {doc.id} not added (its OCR failed); the memory has one fewer")
            continue
        answer = {
            name: label_answer(doc.labels.get(name), dataset.normalizers.get(name, "text")) for name in dataset.fields
        }
        sha = hashlib.sha256(identity.read_bytes()).hexdigest()
        key = DocumentKey(str(Path(identity).resolve()), sha)
        try:
            example = MemoryExample.from_document(
                dataset.scenario, document.text(), answer, key, lines=lines_of(document), origin="import"
            )
            store.add([example])
        except MemoryStoreError as exc:
            say(f"learning curve {dataset.name}: {doc.id} not added: {exc.message}")
            continue
        added.append(doc.id)
    return added


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _rows(curve: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The curve as a table: a row per field (and all fields), a column per size, the OCR ceiling."""
    points = curve["points"]
    header = ["field", *(f"N={p['size']}" for p in points), "OCR ceiling"]
    ceiling = curve.get("ocr_ceiling", {})
    rows = [
        [name, *(_pct(p["fields"].get(name)) for p in points), _pct(ceiling.get("fields", {}).get(name))]
        for name in curve["fields"]
    ]
    rows.append(["all fields", *(_pct(p["exact"]) for p in points), _pct(ceiling.get("overall"))])
    rows.append(["docs with a memory example", *(f"{p['with_memory_examples']}/{p['documents']}" for p in points), ""])
    rows.append(["prompt tokens/doc", *(f"{p['prompt_tokens_per_doc'] or 0:,.0f}" for p in points), ""])
    return header, rows


def print_curve(curve: dict[str, Any], console: Console) -> None:
    header, rows = _rows(curve)
    table = Table(
        *header,
        title=f"{curve['dataset']}: exact match (%) on the {len(curve['scored'])} documents after the first "
        f"{max(p['size'] for p in curve['points'])}, after N documents joined the memory ({curve['strategy']})",
        title_justify="left",
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)


def markdown_curve(curve: dict[str, Any]) -> str:
    header, rows = _rows(curve)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
