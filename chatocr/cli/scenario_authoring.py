"""`chatocr scenarios new` (a YAML skeleton from an image) and `chatocr scenarios test` (per-field
accuracy of a scenario over a labelled set in the shared/data layout).

Accuracy uses the project's one evaluation normalisation (chatocr.evaluation.metrics): NFKC,
case-folded, whitespace removed (so runs of spaces and line breaks never count), amounts compared
as numbers; it is printed with every report.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from chatocr.cli.common import make_chatocr
from chatocr.cli.ocr_cmd import read_document
from chatocr.errors import ConfigError, InputError, UsageError
from chatocr.evaluation.datasets import load_dataset
from chatocr.evaluation.metrics import NORMALIZATION, get_normalizer
from chatocr.fileio import atomic_write
from chatocr.scenarios import load_scenarios
from chatocr.scenarios.keys import parse_keys
from chatocr.scenarios.loader import load_scenario_text

__all__ = ["new_scenario", "skeleton_yaml", "test_scenario"]

_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
_CJK = re.compile(r"[\u3400-\u9fff]")


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _fields(keys: str) -> list[dict[str, Any]]:
    """ "company=the shop's name,date:date,total:amount" -> field dicts (the shared key syntax,
    chatocr/scenarios/keys.py; type text unless given)."""
    out = []
    for key in parse_keys(keys):
        field: dict[str, Any] = {
            "name": key.name,
            "type": key.type.value,
            "description": key.description or f"TODO: what {key.name} is and where it sits",
        }
        if key.choices:
            field["choices"] = list(key.choices)
        out.append(field)
    if not out:
        raise ConfigError("--keys is empty.", hint="Give the fields to extract, e.g. --keys company,date,total:amount")
    return out


def skeleton_yaml(name: str, text: str, keys: str, source: str, language: str | None = None) -> str:
    text = "\n".join(line.rstrip() for line in text.strip().splitlines())  # literal blocks refuse trailing spaces
    cjk, latin = len(_CJK.findall(text)), len(re.findall(r"[A-Za-z]", text))
    language = language or ("zh" if cjk > 0.3 * (cjk + latin) else "en")
    fields = _fields(keys)
    data = {
        "name": name,
        "title": name.replace("_", " ").capitalize(),
        "language": language,
        "description": f"TODO: which documents this covers (used to route documents to it). Made from {source}.",
        "instructions": "",
        "fields": fields,
        "examples": [{"id": f"{name}-1", "text": text, "answer": {f["name"]: None for f in fields}}],
    }
    header = (
        f"# Scenario skeleton made by `chatocr scenarios new` from {source}.\n"
        "# 1. Fill each example answer with the value exactly as it appears in the example text\n"
        "#    (null when the document has none); correct the OCR text if it misread something.\n"
        "# 2. Replace the TODO descriptions; add `required: true` to fields every document carries.\n"
        "# 3. chatocr scenarios validate THIS_FILE, then chatocr scenarios test THIS_FILE --data DIR\n"
    )
    body = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    return header + body


def new_scenario(args: argparse.Namespace) -> int:
    if not _SLUG.match(args.name):
        raise ConfigError(
            f"Scenario name {args.name!r} is not valid.",
            hint="Use lower-case letters, digits and _, starting with a letter: my_receipt.",
        )
    out: Path = args.out or Path(f"{args.name}.yaml")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} already exists.", hint="Pass --force to overwrite it, or choose --out.")
    if getattr(args, "reviewed", None) is not None:
        return _from_reviewed(args, out)
    if not args.keys:
        raise UsageError("--from IMAGE needs --keys.", hint="e.g. --keys company,date:date,total:amount")
    document = read_document(args.image, args.ocr, args.config)
    text = document.text()
    if not text.strip():
        raise InputError(f"{args.image}: OCR found no text.", hint="Try another image or --ocr engine.")
    content = skeleton_yaml(args.name, text, args.keys, args.image.name, args.language)
    load_scenario_text(content, str(out))  # the skeleton itself must load
    atomic_write(out, content)
    console = Console()
    console.print(
        f"wrote {out}: {len(document.lines)} OCR lines as the first example, "
        f"{len(_fields(args.keys))} field(s) with null answers",
        highlight=False,
    )
    console.print(
        f"next: fill in the answers, then\n  chatocr scenarios validate {out}\n"
        f"  chatocr scenarios test {out} --data DIR",
        highlight=False,
        markup=False,
    )
    return 0


def test_scenario(args: argparse.Namespace) -> int:
    library = load_scenarios()
    scenario = library.resolve(args.scenario)  # a YAML file or a name
    dataset = load_dataset(args.data, library, scenario=scenario.name).subset(args.limit)
    ocr = make_chatocr(args, scenarios=library, concurrency=args.concurrency)
    use_text = (args.ocr or ocr.config.ocr) == "text"
    sources: dict[str, Any] = {}
    for doc in dataset.documents:
        source = doc.ocr if use_text else doc.image
        if source is None:
            raise InputError(
                f"{dataset.root}: {doc.id} has no {'ocr/ file' if use_text else 'image'}.",
                hint="Use --ocr text for sets with ocr/ files, an OCR engine for images.",
            )
        sources[str(source)] = doc
    correct = {f: 0 for f in dataset.fields}
    misses: list[tuple[str, str, Any, Any]] = []
    failed: list[tuple[str, str]] = []
    console = Console()
    bar = (TextColumn(f"[bold]test {scenario.name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*bar, console=Console(stderr=True), disable=len(sources) < 2) as progress:
        task = progress.add_task("test", total=len(sources))
        for result in ocr.extract_many(list(sources), dataset.fields, scenario.name):
            doc = sources[result.source]
            if not result.ok:
                failed.append((doc.id, (result.error or {}).get("message", "")))
            for name in dataset.fields:
                norm = get_normalizer(dataset.normalizers.get(name, "text"))
                predicted = result.values.get(name)
                if norm(predicted) == norm(doc.labels.get(name)):
                    correct[name] += 1
                else:
                    misses.append((doc.id, name, doc.labels.get(name), predicted))
            progress.advance(task)
    _report(console, scenario.name, dataset.name, len(sources), correct, misses, failed, args.verbose)
    return 1 if failed else 0


def _report(
    console: Console,
    scenario: str,
    data: str,
    total: int,
    correct: dict[str, int],
    misses: list[tuple[str, str, Any, Any]],
    failed: list[tuple[str, str]],
    verbose: bool,
) -> None:
    table = Table(
        "field", "correct", "accuracy", title=f"{scenario} on {data} ({total} documents)", title_justify="left"
    )
    for name, count in correct.items():
        table.add_row(name, f"{count}/{total}", f"{count / total:.1%}" if total else "-")
    pairs = total * len(correct)
    table.add_row(
        "[bold]all fields[/bold]",
        f"{sum(correct.values())}/{pairs}",
        f"{sum(correct.values()) / pairs:.1%}" if pairs else "-",
    )
    console.print(table)
    console.print(f"normalisation: {NORMALIZATION}", style="dim", highlight=False, markup=False)
    if verbose:
        for doc_id, name, label, predicted in misses:
            console.print(f"  {doc_id} {name}: expected {label!r}, got {predicted!r}", highlight=False, markup=False)
    for doc_id, message in failed:
        console.print(f"failed: {doc_id}: {message}", style="red", highlight=False, markup=False)


def _review_files(given: Path) -> tuple[Path, Path]:
    """(results file, review file) from either of them."""
    from chatocr.review import review_path_for

    suffix = ".review.jsonl"
    if given.name.endswith(suffix):
        base = given.name[: -len(suffix)]
        for candidate in (given.with_name(f"{base}.jsonl"), given.with_name(f"{base}.json")):
            if candidate.is_file():
                return candidate, given
        raise InputError(
            f"The results file of {given} is not beside it ({base}.jsonl).",
            hint="Give the results file itself: chatocr scenarios new NAME --from-reviewed RESULTS.jsonl",
        )
    return given, review_path_for(given)


def _from_reviewed(args: argparse.Namespace, out: Path) -> int:
    from chatocr.cli.view_cmd import engine_lookup
    from chatocr.review import MemorySettings, ReviewSession
    from chatocr.review.authoring import ReviewedExample, scenario_yaml

    results, review = _review_files(args.reviewed)
    if not review.is_file():
        raise InputError(f"No review file {review}.", hint=f"Review the documents first: chatocr review {results}")
    session = ReviewSession(
        results,
        engine_for=engine_lookup(args.config, args.ocr),
        memory=MemorySettings(enabled=False),
        review_path=review,
    )
    state = session.state()
    reviewed = []
    for doc in session.documents:
        values = session.complete_values(doc, state)
        if values is None:
            continue
        document, notes = doc.ocr(session.engine_for, session.run_ocr)
        if document is None:
            print(f"warning: {doc.name}: reviewed, left out: {'; '.join(notes)}", file=sys.stderr)
            continue
        reviewed.append(ReviewedExample(doc.name, document.text(), values))
    content = scenario_yaml(args.name, reviewed, results.name, language=args.language)
    scenario = load_scenario_text(content, str(out))  # it must load like any scenario
    atomic_write(out, content)
    kinds = ", ".join(f"{f.name}: {f.type.value}" for f in scenario.fields)
    print(
        f"wrote {out}: {len(scenario.fields)} field(s) ({kinds}), {len(scenario.examples)} of "
        f"{len(reviewed)} reviewed document(s) as examples"
    )
    print(
        f"next: replace the TODO descriptions, then\n  chatocr scenarios validate {out}\n"
        f"  chatocr scenarios test {out} --data DIR"
    )
    return 0
