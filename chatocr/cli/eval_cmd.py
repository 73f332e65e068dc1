"""`chatocr eval DATA_DIR...`: accuracy and cost of extraction strategies on labelled sets.

    chatocr eval ../shared/data/sroie_train ../shared/data/cn_train_ticket --llm local --ocr rapid \\
        --strategy compare --limit 10 --out report.json

Each set is a directory with images/, labels/ and optionally ocr/ (see chatocr/evaluation/datasets.py).
`--ocr text` reads the sets' ocr/ files instead of running an OCR engine. Every strategy runs on the
same OCR results; per-document outcomes are cached (see --cache-dir), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from chatocr.api import ChatOCR
from chatocr.cli.calibrate_cmd import add_calibrate_options, calibrate_from_run
from chatocr.cli.common import add_memory_options, keys_option
from chatocr.errors import ConfigError, UsageError
from chatocr.evaluation.datasets import Dataset, load_dataset
from chatocr.evaluation.learning import check_sizes, learning_curve, markdown_curve, parse_sizes, print_curve
from chatocr.evaluation.report import markdown_report, print_report
from chatocr.evaluation.runner import Evaluator
from chatocr.evaluation.strategies import GROUPS, STRATEGIES, Strategy, resolve_strategies
from chatocr.evaluation.trust_report import print_trust, trust_markdown
from chatocr.evaluation.typed import typed_agreement
from chatocr.extraction.remembered import ExampleMemory
from chatocr.fileio import atomic_write, check_output_path
from chatocr.llm.base import ChatSettings
from chatocr.messages import Message
from chatocr.scenarios.keys import parse_keys, split_keys
from chatocr.secrets import redact
from chatocr.typed.loading import load_schema
from chatocr.typed.schema import TypedSchema

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="measure accuracy, tokens and time of extraction strategies on labelled document sets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data_dirs", nargs="+", type=Path, metavar="DATA_DIR", help="set with images/, labels/, [ocr/]")
    p.add_argument(
        "-s",
        "--scenario",
        help="scenario name or YAML file for every set (default: the set's profile, else best field match)",
    )
    p.add_argument(
        "-k",
        "--keys",
        type=keys_option,
        help="the evaluated fields as asked: NAME[:TYPE][=DESCRIPTION], "
        "comma-separated (a description or type for a set's field; other keys are refused)",
    )
    p.add_argument(
        "--schema",
        action="append",
        default=[],
        metavar="MODULE:CLASS|FILE.json",
        help="extract as this pydantic model / JSON Schema (typed values checked against the labels); "
        "one for all sets, or one per DATA_DIR in order",
    )
    p.add_argument("-l", "--llm", metavar="PROVIDER[:MODEL]", help="chat backend (default: config, else local)")
    p.add_argument("--ocr", metavar="ENGINE", help="OCR engine: rapid, paddle, vlm, or text for the sets' ocr/ files")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.add_argument(
        "--strategy",
        action="append",
        metavar="NAME",
        help=f"strategy, group or key=value spec; repeatable (default: standard). Groups: {', '.join(GROUPS)}. "
        f"Names: {', '.join(STRATEGIES)}",
    )
    p.add_argument(
        "--tuned-llm",
        metavar="PROVIDER[:MODEL]",
        help="the backend of --strategy tuned, e.g. local:/path/to/tuned.gguf (default: --llm)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="first N documents of each set (sorted by id)")
    p.add_argument("-o", "--out", type=Path, metavar="FILE", help="write the full report as JSON")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the tables as Markdown")
    p.add_argument(
        "--map", action="append", default=[], metavar="LABEL_KEY=FIELD", help="map a label key to a scenario field"
    )
    p.add_argument(
        "-j",
        "--concurrency",
        type=int,
        metavar="N",
        help="documents in flight (default: the config's, 4: the local model decodes them together)",
    )
    p.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="per-document result cache (default: ~/.cache/chatocr/eval)"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached results")
    p.add_argument(
        "--cached-only",
        action="store_true",
        help="run nothing: report the documents whose every strategy outcome is already cached",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-document progress lines")
    add_memory_options(p, default="none: an evaluation uses no memory unless given one")
    p.add_argument(
        "--learning-curve",
        metavar="N,N,...",
        help="accuracy on the documents after the largest N, once the first N of each set (file order) joined "
        "a fresh memory (their labels as the answers), for each N; e.g. 0,1,2,5,10,20",
    )
    add_calibrate_options(p)  # --calibrate: docs/trust.md
    p.set_defaults(handler=run)


def _null_responder(messages: Sequence[Message], settings: ChatSettings) -> str:
    """`--llm scripted`: answers every key with null (exercises the whole run without a model)."""
    schema = settings.json_mode if isinstance(settings.json_mode, dict) else {}
    keys = list(schema.get("properties", {})) if schema else []
    return json.dumps(dict.fromkeys(keys))


def _schemas(specs: list[str], datasets: list[Dataset]) -> dict[str, TypedSchema]:
    """--schema: one for every set, or one per set in order; each must have the set's fields."""
    if not specs:
        return {}
    if len(specs) not in (1, len(datasets)):
        raise ConfigError(
            f"{len(specs)} --schema options for {len(datasets)} data sets.",
            hint="Give one --schema for all sets, or one per DATA_DIR in the same order.",
        )
    loaded = [load_schema(spec) for spec in specs]
    out: dict[str, TypedSchema] = {}
    for index, dataset in enumerate(datasets):
        schema = loaded[index if len(loaded) > 1 else 0]
        assert schema is not None
        missing = [f for f in dataset.fields if f not in {field.name for field in schema.fields}]
        if missing:
            raise ConfigError(
                f"--schema {schema.name} has no field for {', '.join(missing)} of {dataset.name}.",
                hint="The model must declare the set's evaluated fields (see docs/typed.md).",
            )
        out[dataset.name] = schema
    return out


def _keys(text: str | None, datasets: list[Dataset]) -> list[str]:
    """--keys: items for fields the sets evaluate (a key no set evaluates is a ConfigError)."""
    if not text:
        return []
    evaluated = {name for dataset in datasets for name in dataset.fields}
    unknown = [key.name for key in parse_keys(text) if key.name not in evaluated]
    if unknown:
        raise ConfigError(
            f"--keys names fields no set evaluates: {', '.join(unknown)}.",
            hint=f"The evaluated fields: {', '.join(sorted(evaluated))} (map label keys with --map).",
        )
    return split_keys(text)


def _mapping(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--map expects LABEL_KEY=FIELD, got {item!r}.")
        out[key.strip()] = value.strip()
    return out


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run."""
    words = ["chatocr", "eval", *(str(d) for d in args.data_dirs)]
    for spec in args.schema:
        words += ["--schema", spec]
    if args.keys:
        words += ["--keys", args.keys]
    options = ("scenario", "llm", "tuned_llm", "ocr", "config", "limit", "out", "markdown", "cache_dir", "memory")
    for option in (*options, "learning_curve"):
        value = getattr(args, option, None)
        if value is not None:
            words += [f"--{option.replace('_', '-')}", str(value)]
    for name in args.strategy or []:
        words += ["--strategy", name]
    for item in args.map:
        words += ["--map", item]
    if args.concurrency is not None:
        words += ["--concurrency", str(args.concurrency)]
    if args.no_cache:
        words.append("--no-cache")
    if getattr(args, "calibrate", False):
        words.append("--calibrate")
    if args.cached_only:
        words.append("--cached-only")
    return " ".join(shlex.quote(w) for w in words)


def _memory(args: argparse.Namespace, chat: ChatOCR) -> ExampleMemory | None:
    """--memory DIR: that memory, searched leave-one-out; else none (whatever the config says)."""
    if args.memory is not None and args.no_memory:
        raise UsageError("--memory and --no-memory contradict each other.", hint="Give one of them.")
    if args.memory is not None and args.learning_curve:
        raise UsageError(
            "--learning-curve fills memories of its own; it takes no --memory.", hint="Leave out --memory."
        )
    if args.memory is None:
        return None
    if not args.memory.is_dir():
        raise UsageError(f"--memory {args.memory}: no such folder.", hint="chatocr memory import DATA_DIR fills one.")
    return ExampleMemory(args.memory, layout_weight=chat.config.example_layout)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1.")
    for path in (args.out, args.markdown, getattr(args, "reliability", None)):  # refused now, not after the run
        if path is not None:
            check_output_path(path)
    strategies = resolve_strategies(args.strategy)
    if getattr(args, "tuned_llm", None):
        strategies = [replace(s, llm=args.tuned_llm) if s.name == "tuned" else s for s in strategies]
    scripted = (args.llm or "").split(":", 1)[0] == "scripted"
    # No memory from the config: an evaluation's memory is --memory DIR's (or the curve's), or none.
    if scripted:
        from chatocr.llm.scripted import ScriptedChatModel

        chat = ChatOCR(llm=ScriptedChatModel(_null_responder), ocr=args.ocr, config=args.config, memory=False)
    else:
        chat = ChatOCR(llm=args.llm, ocr=args.ocr, config=args.config, memory=False)
    memory = _memory(args, chat)
    mapping = _mapping(args.map)
    scenario = chat.library.resolve(args.scenario).name if args.scenario else None  # a name or a YAML file
    datasets = [
        load_dataset(d, chat.library, scenario=scenario, field_map=mapping).subset(args.limit) for d in args.data_dirs
    ]
    schemas = _schemas(args.schema, datasets)
    key_items = _keys(args.keys, datasets)
    err = Console(stderr=True, soft_wrap=True)
    ocr_name = args.ocr or chat.config.ocr
    ocr_source = "text" if ocr_name == "text" else "image"
    evaluator = Evaluator(
        chat,
        ocr_source=ocr_source,
        cache_dir_path=args.cache_dir,
        use_cache=not args.no_cache and not scripted,
        progress=None if args.quiet else (lambda line: err.print(line, markup=False, highlight=False)),
        concurrency=chat.config.concurrency if args.concurrency is None else args.concurrency,
        ocr_name=ocr_name,
        cached_only=args.cached_only,
        schemas=schemas,
        keys=key_items,
        memory=memory,
    )
    for dataset in datasets:
        err.print(
            f"{dataset.name}: {len(dataset.documents)} documents, scenario {dataset.scenario}, "
            f"fields {', '.join(dataset.fields)}"
            + (f"; label keys not evaluated: {', '.join(dataset.unmapped)}" if dataset.unmapped else ""),
            markup=False,
        )
    command = _command(args)
    if args.learning_curve:
        return _curves(args, evaluator, datasets, strategies, command, err)
    report = asyncio.run(evaluator.run(datasets, strategies, command=command))
    if evaluator.skipped:
        err.print(f"not yet cached, left out: {len(evaluator.skipped)} document(s)", markup=False)
    if schemas:
        typed_runs = {s.name for s in strategies if s.kind != "baseline"}  # the baseline is never typed
        outcomes = [o for o in evaluator.outcomes if o.strategy in typed_runs]
        report["typed"] = typed_agreement(datasets, outcomes, schemas)
    if getattr(args, "calibrate", False):
        report["trust"] = calibrate_from_run(args, evaluator, datasets, strategies, err)
    console = Console(width=None if sys.stdout.isatty() else 200)
    print_report(report, console)
    if "trust" in report:
        print_trust(report["trust"], console)
    for name, by_strategy in report.get("typed", {}).items():
        for strategy, typed in by_strategy.items():
            print(
                f"typed ({typed['schema']}) {name} / {strategy}: {typed['equal']}/{typed['labelled']} values equal "
                f"to the typed labels; {typed['validated']}/{typed['documents']} documents validated"
            )
    if args.out:  # atomic (chatocr.fileio), known secrets masked, like every file chatocr writes
        atomic_write(args.out, redact(json.dumps(report, ensure_ascii=False, indent=2, default=str)))
        err.print(f"report written to {args.out}", markup=False)
    if args.markdown:
        trust = trust_markdown(report["trust"]) if "trust" in report else ""
        atomic_write(args.markdown, redact(markdown_report(report) + trust))
    return 0


def _curves(
    args: argparse.Namespace,
    evaluator: Evaluator,
    datasets: list[Dataset],
    strategies: list[Strategy],
    command: str,
    err: Console,
) -> int:
    """--learning-curve: one curve per set (evaluation/learning.py), printed; --out / --markdown get them all."""
    sizes = parse_sizes(args.learning_curve)
    runs = [s for s in strategies if s.kind != "baseline"]
    if len(runs) != 1 or len(strategies) != 1:
        raise UsageError(
            "--learning-curve measures one chatocr strategy.", hint="Give one --strategy (e.g. default), no baseline."
        )
    for dataset in datasets:
        check_sizes(dataset, sizes)
    strategy = runs[0]
    curves = []
    console = Console(width=None if sys.stdout.isatty() else 200)
    for dataset in datasets:
        with tempfile.TemporaryDirectory(prefix="chatocr-curve-") as folder:
            curve = asyncio.run(
                learning_curve(
                    evaluator, dataset, strategy, sizes, Path(folder), command=command, progress=evaluator.progress
                )
            )
        curves.append(curve)
        print_curve(curve, console)
    if args.out:
        atomic_write(args.out, redact(json.dumps({"learning_curves": curves, "command": command}, indent=2)))
        err.print(f"learning curves written to {args.out}", markup=False)
    if args.markdown:
        atomic_write(args.markdown, redact("\n".join(markdown_curve(curve) for curve in curves)))
    return 0
