"""`chatocr memory list|show|remove|import|export`: the memory of reviewed documents, per scenario.

    chatocr memory list [SCENARIO]                  the stores, or one store's examples
    chatocr memory show SCENARIO ID                 one example: where it came from, its answer, its text
    chatocr memory remove SCENARIO ID...            forget examples
    chatocr memory import DATA_DIR                  a labelled set (images/, labels/, ocr/) as examples
    chatocr memory export SCENARIO --out DIR        a store as a labelled set (labels/, ocr/, images/)

`--memory DIR` names the memory's folder (default: the config's `memory_dir`, else the per-user
one, $CHATOCR_DATA_DIR/memory or ~/.local/share/chatocr/memory). Reviewed documents join it from `chatocr review`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr.errors import InputError, MemoryStoreError, UsageError
from chatocr.memory import DEFAULT_CAP, DocumentKey, MemoryExample, MemoryStore, default_root, lines_of, store_names

__all__ = ["register"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def register(sub: Any) -> None:
    parser = sub.add_parser("memory", help="the memory of reviewed documents: list, show, remove, import, export")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        p.add_argument("--memory", type=Path, metavar="DIR", help="the memory's folder (default: the per-user one)")
        return p

    p = add("list", "the stores, or one scenario's examples")
    p.add_argument("scenario", nargs="?", help="a scenario name: list its examples")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(handler=list_memory)
    p = add("show", "one example")
    p.add_argument("scenario")
    p.add_argument("id", help="an example id (or its first characters)")
    p.add_argument("--json", action="store_true", help="the example as JSON")
    p.set_defaults(handler=show_example)
    p = add("remove", "forget examples")
    p.add_argument("scenario")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(handler=remove_examples)
    p = add("import", "a labelled set (images/, labels/, ocr/) as examples")
    p.add_argument("data", type=Path, metavar="DATA_DIR")
    p.add_argument("-s", "--scenario", help="the set's scenario (default: chosen from its labels)")
    p.add_argument("--map", action="append", default=[], metavar="LABEL_KEY=FIELD", help="map a label key to a field")
    p.add_argument("--ocr", metavar="ENGINE", help="OCR the images with this engine (default: the set's ocr/ files)")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.add_argument("--cap", type=int, default=DEFAULT_CAP, help=f"examples kept per scenario (default {DEFAULT_CAP})")
    p.set_defaults(handler=import_set)
    p = add("export", "a store as a labelled set (labels/, ocr/, and images/ still where they were)")
    p.add_argument("scenario")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR")
    p.set_defaults(handler=export_store)


def _root(args: argparse.Namespace) -> Path:
    """--memory DIR, else the config's memory_dir (files, $CHATOCR_MEMORY_DIR), else the per-user folder."""
    if args.memory is not None:
        return Path(args.memory)
    from chatocr.config import load_config

    configured = load_config(path=getattr(args, "config", None)).memory_dir
    return Path(configured).expanduser() if configured else default_root()


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M") if seconds else "-"


def list_memory(args: argparse.Namespace) -> int:
    root = _root(args)
    console = Console()
    if args.scenario is None:
        names = store_names(root)
        if not names:
            print(f"no memory in {root} yet: `chatocr review RESULTS` adds the documents you review", file=sys.stderr)
            return 0
        table = Table("scenario", "examples", "last used", title=f"memory in {root}", title_justify="left")
        for name in names:
            store = MemoryStore(name, root)
            try:
                examples = store.examples()
            except MemoryStoreError as exc:
                table.add_row(name, "-", f"unusable: {exc.message}")
                continue
            if args.json:
                print(json.dumps({"scenario": name, "examples": len(examples)}))
            table.add_row(name, str(len(examples)), _when(max((e.last_used for e in examples), default=0)))
        if not args.json:
            console.print(table)
        return 0
    examples = MemoryStore(args.scenario, root).examples()
    if args.json:
        for example in examples:
            print(json.dumps(example.summary(), ensure_ascii=False))
        return 0
    table = Table("id", "document", "fields", "added", "last used", "from", title=f"memory of {args.scenario}")
    for example in examples:
        name = Path(example.source.path).name + (f" p{example.source.page}" if example.source.page else "")
        table.add_row(
            example.id[:12],
            name,
            str(len(example.answer)),
            _when(example.added),
            _when(example.last_used),
            example.origin,
        )
    console.print(table)
    return 0


def show_example(args: argparse.Namespace) -> int:
    example = MemoryStore(args.scenario, _root(args)).get(args.id)
    if args.json:
        print(json.dumps(example.to_dict(), ensure_ascii=False, indent=2))
        return 0
    console = Console()
    console.print(f"[bold]{example.id}[/bold] in the memory of {example.scenario}", highlight=False)
    source = example.source
    console.print(
        f"from {source.path}" + (f" page {source.page}" if source.page else ""), markup=False, highlight=False
    )
    console.print(
        f"added {_when(example.added)} ({example.origin}), last used {_when(example.last_used)}", highlight=False
    )
    table = Table("field", "value")
    for name, value in example.answer.items():
        table.add_row(
            name,
            "(none)" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False),
        )
    console.print(table)
    console.print(example.text, markup=False, highlight=False)
    return 0


def remove_examples(args: argparse.Namespace) -> int:
    removed = MemoryStore(args.scenario, _root(args)).remove(args.ids)
    print(f"removed {len(removed)} example(s) from the memory of {args.scenario}")
    return 0


def _field_map(items: list[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        key, sep, target = item.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise UsageError(f"--map {item!r} is not LABEL_KEY=FIELD.", hint="e.g. --map store_name=company")
        mapping[key.strip()] = target.strip()
    return mapping


def import_set(args: argparse.Namespace) -> int:
    from chatocr.evaluation.datasets import label_answer, load_dataset
    from chatocr.fileio import file_sha256
    from chatocr.ocr.text import TextEngine
    from chatocr.scenarios import load_scenarios

    dataset = load_dataset(args.data, load_scenarios(), scenario=args.scenario, field_map=_field_map(args.map))
    engine: Any = TextEngine()
    if args.ocr:
        from chatocr.cli.view_cmd import engine_lookup

        engine = engine_lookup(args.config, args.ocr)(args.ocr)
        if engine is None:
            raise UsageError(f"The OCR engine {args.ocr!r} cannot be used here.", hint="Run `chatocr doctor`.")
    examples, skipped = [], []
    for doc in dataset.documents:
        source = doc.image if args.ocr else (doc.ocr or None)
        if source is None:
            skipped.append((doc.id, "no ocr/ file (give --ocr ENGINE to read its image)"))
            continue
        try:
            document = engine.read(source)
            identity = doc.image or source  # the document is its image when it has one
            key = DocumentKey(str(identity.resolve()), file_sha256(identity))
            answer = {f: label_answer(doc.labels.get(f), dataset.normalizers.get(f, "text")) for f in dataset.fields}
            examples.append(
                MemoryExample.from_document(
                    dataset.scenario, document.text(), answer, key, lines=lines_of(document), origin="import"
                )
            )
        except (InputError, MemoryStoreError) as exc:
            skipped.append((doc.id, exc.message))
    store = MemoryStore(dataset.scenario, _root(args), cap=args.cap)
    outcome = store.add(examples)
    store.save_index()
    for doc_id, why in skipped:
        print(f"skipped {doc_id}: {why}", file=sys.stderr)
    if outcome.message:
        print(outcome.message, file=sys.stderr)
    print(
        f"imported {len(outcome.added)} document(s) of {dataset.name} into the memory of {dataset.scenario} "
        f"({outcome.replaced} replaced an earlier example) in {store.folder}"
    )
    return 0 if examples or not dataset.documents else 1


def export_store(args: argparse.Namespace) -> int:
    from chatocr.fileio import atomic_write

    examples = MemoryStore(args.scenario, _root(args)).examples()
    if not examples:
        raise MemoryStoreError(f"The memory of {args.scenario} holds no examples to export.")
    for folder in (args.out, args.out / "labels", args.out / "ocr", args.out / "images"):
        if folder.is_symlink():
            raise UsageError(f"{folder} is a symbolic link; chatocr does not write through links.")
        folder.mkdir(parents=True, exist_ok=True)
    copied = 0
    for example in examples:
        doc_id = f"{_UNSAFE.sub('_', Path(example.source.path).stem).strip('._')[:80] or 'document'}-{example.id[:10]}"
        atomic_write(
            args.out / "labels" / f"{doc_id}.json",
            json.dumps(dict(example.answer), ensure_ascii=False, indent=1) + "\n",
        )
        atomic_write(args.out / "ocr" / f"{doc_id}.json", json.dumps(_ocr_json(example), ensure_ascii=False) + "\n")
        copied += _copy_image(example, args.out / "images", doc_id)
    print(
        f"wrote {len(examples)} example(s) of {args.scenario} to {args.out} "
        f"(labels/, ocr/; {copied} image(s) still found)"
    )
    return 0


def _ocr_json(example: MemoryExample) -> Any:
    """The example's OCR as chatocr's OCR JSON (what `--ocr text` reads), or its rows of text."""
    from chatocr.ocr.types import OCRDocument, OCRLine, Page, box_from_any

    if not example.lines:
        return [row for row in example.text.splitlines() if row.strip()]
    pages: dict[int, list[OCRLine]] = {}
    for line in example.lines:
        pages.setdefault(int(line.get("page", 0)), []).append(
            OCRLine(str(line["id"]), str(line["text"]), box_from_any(line["box"]), float(line.get("confidence", 1.0)))
        )
    built = []
    for index, lines in sorted(pages.items()):
        width = max(x for line in lines for x, _ in line.box)
        height = max(y for line in lines for _, y in line.box)
        built.append(Page(index, int(width) + 1, int(height) + 1, tuple(lines)))
    return OCRDocument(tuple(built), "memory", example.scenario, example.source.path, 0.0).to_dict()


def _copy_image(example: MemoryExample, folder: Path, doc_id: str) -> int:
    """The example's image, when its file is still there unchanged (and not a link), copied."""
    from chatocr.fileio import atomic_write, file_sha256
    from chatocr.ocr.registry import IMAGE_SUFFIXES

    path = Path(example.source.path)
    if example.source.page is not None or path.suffix.lower() not in IMAGE_SUFFIXES or path.suffix.lower() == ".pdf":
        return 0
    try:
        if path.is_symlink() or not path.is_file() or file_sha256(path) != example.source.sha256:
            return 0
        atomic_write(folder / f"{doc_id}{path.suffix.lower()}", path.read_bytes())
    except (OSError, InputError):
        return 0
    return 1
