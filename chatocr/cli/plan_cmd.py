"""`chatocr plan`: show the conversation chatocr would send for a document, without sending it.

Useful to see how examples are packed under a backend's limits, and to compare packing policies.
The task is built and planned by the same pipeline `chatocr extract` uses (fields from the keys by
the scenario's names and aliases, focused instructions, examples ranked for the document, the
configured packing, re-statement, order and prompt directories), so what it shows is what
`extract` sends first. No model is called: routing uses the local pre-score only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from chatocr.cli.common import KEYS_HELP, add_memory_options, keys_option, memory_overrides
from chatocr.config import ChatOCRConfig, load_config
from chatocr.conversation.planner import Plan
from chatocr.extraction.pipeline import ExtractionPipeline, ExtractionTask, Planning, PreparedDocument
from chatocr.extraction.remembered import ExampleMemory
from chatocr.extraction.result import Route
from chatocr.llm.registry import get_chat_model
from chatocr.messages import Limits, RoleRules
from chatocr.ocr.cache import CachedEngine, OCRCache
from chatocr.ocr.registry import TEXT_SUFFIXES, make_engine
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios import load_scenarios
from chatocr.tokens import CharCounter, TiktokenCounter, TokenCounter
from chatocr.typed.loading import load_schema

ERNIE_ROLES = RoleRules(system="field", alternate=True, odd_count=True)

# Target profiles for planning without a backend. ERNIE's limits are in characters: the early
# ERNIE Bot took about 2000 characters per question, later 4800 (see docs/llm.md).
PRESETS: dict[str, tuple[Limits, str]] = {
    "ernie-2000": (Limits(max_message_chars=2000, max_input_chars=11200, roles=ERNIE_ROLES), "chars"),
    "ernie": (Limits(max_message_chars=4800, max_input_chars=20000, roles=ERNIE_ROLES), "chars"),
    "openai-8k": (Limits(context_window=8192, reserved_output_tokens=1024), "cl100k_base"),
    "local": (Limits(context_window=4096, reserved_output_tokens=512), "cl100k_base"),
}
PRESET_HELP = {
    "ernie-2000": "early ERNIE Bot: 2000 characters per message, 11200 in all, odd alternating turns, "
    "system prompt in its own field (the limit PP-ChatOCR was built for; the default)",
    "ernie": "ERNIE 4.x: 4800 characters per message, 20000 in all, the same role rules",
    "openai-8k": "an OpenAI-style 8k-token context (1024 kept for the answer), counted with cl100k_base",
    "local": "the local model's 4096-token context (512 kept for the answer), approximated with cl100k_base; "
    "--llm local counts with the model's own tokenizer",
}
# Read as text (the `text` engine) unless --ocr says otherwise; anything else is OCR'd.
# Read as text by `plan` without --ocr (Markdown too: a document pasted into a note).
PLAN_TEXT_SUFFIXES = TEXT_SUFFIXES | {".md"}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "plan",
        help="show the planned conversation for a document (nothing is sent)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="limits presets:\n" + "\n".join(f"  {name:<11} {text}" for name, text in PRESET_HELP.items()),
    )
    parser.add_argument(
        "document", type=Path, help="OCR text (.txt/.json) or an image or PDF (OCR'd with the configured engine)"
    )
    parser.add_argument(
        "-s",
        "--scenario",
        default="auto",
        help="scenario name or YAML file (see `chatocr scenarios list`); default auto: pre-score",
    )
    parser.add_argument("-k", "--keys", type=keys_option, help=KEYS_HELP)
    parser.add_argument("--schema", metavar="MODULE:CLASS|FILE.json", help="plan for a pydantic model's fields")
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--limits",
        choices=sorted(PRESETS),
        help="plan for a preset's limits (see below; default ernie-2000 unless --llm is given)",
    )
    target.add_argument(
        "-l",
        "--llm",
        metavar="PROVIDER[:MODEL]",
        help="plan for this backend's limits and token counter (nothing is sent)",
    )
    parser.add_argument("--ocr", metavar="ENGINE", help="OCR engine for images and PDFs (default: the configured one)")
    parser.add_argument("--packing", choices=["single", "pairs", "packed"], help="default: the configured packing")
    parser.add_argument("--restate-every", metavar="N", help="task reminder every N example turns, or 'off'")
    parser.add_argument(
        "--max-examples", metavar="N", help="at most N examples, or 'all' (default: the configured maximum)"
    )
    parser.add_argument(
        "--no-focus",
        dest="focus",
        action="store_false",
        default=None,
        help="send every scenario rule and whole example texts (default: only what concerns the keys asked)",
    )
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    add_memory_options(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run)


def counter_for(name: str) -> TokenCounter:
    return CharCounter() if name == "chars" else TiktokenCounter(name)


def read_document(path: Path, engine: str | None, config: ChatOCRConfig) -> OCRDocument:
    """The document through the engine asked for, else text files through `text` and anything
    else through the configured engine (and the OCR cache, as `extract` does)."""
    spec = engine or ("text" if path.suffix.lower() in PLAN_TEXT_SUFFIXES else config.ocr)
    reader = make_engine(spec, config.ocr_options if spec == config.ocr else {})
    if config.ocr_cache and spec != "text":  # text is read as it is: nothing to cache
        reader = CachedEngine(reader, OCRCache(Path(config.ocr_cache_dir)) if config.ocr_cache_dir else OCRCache())
    return reader.read(path)


def build_pipeline(args: argparse.Namespace, config: ChatOCRConfig) -> tuple[ExtractionPipeline, str]:
    """The pipeline `extract` would use, for a backend (--llm, built but never called) or for a
    limits preset; and a description of the target."""
    library = load_scenarios(config.scenario_dirs)
    memory = ExampleMemory.of(config)  # what extract's examples come from, the memory's too
    if args.llm:
        model = get_chat_model(args.llm, **(config.llm_options if args.llm == config.llm else {}))
        pipeline = ExtractionPipeline(config, library, model=model, memory=memory)
        return pipeline, f"backend {model.provider}:{model.model}"
    preset = args.limits or "ernie-2000"
    limits, counter = PRESETS[preset]
    planning = Planning(limits, counter_for(counter))
    return ExtractionPipeline(config, library, model=None, planning=planning, memory=memory), f"limits {preset!r}"


def plan_document(args: argparse.Namespace) -> tuple[PreparedDocument, Route, ExtractionTask, Plan, str]:
    config = load_config(
        {
            "packing": args.packing,
            "restate_every": args.restate_every,
            "max_examples": args.max_examples,
            "focus": args.focus,
            **memory_overrides(args),
        },
        path=args.config,
    )
    pipeline, target = build_pipeline(args, config)
    # Every mistake in the keys, the scenario or the schema fails here, before any OCR.
    request = pipeline.request(args.keys, args.scenario, schema=load_schema(args.schema), classify=False)
    prepared = PreparedDocument.of(read_document(args.document, args.ocr, config), str(args.document))
    route, scenario, _ = asyncio.run(pipeline.route(prepared, request))
    task = pipeline.build_task(prepared.text, scenario, request, prepared.language, source=prepared.source)
    return prepared, route, task, pipeline.plan(prepared, task), target


def run(args: argparse.Namespace) -> int:
    prepared, route, task, plan, target = plan_document(args)
    if args.json:
        summary = {
            "scenario": task.scenario.name if task.scenario else None,
            "route": route.mode,
            "keys": task.spec.keys,
            "language": task.language,
            "target": target,
        }
        print(
            json.dumps(
                {"task": summary, "messages": [m.to_dict() for m in plan.messages], "report": plan.report.to_dict()},
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    console = Console()
    scenario = task.scenario.name if task.scenario else "none (fallback)"
    console.print(
        f"[bold]Planned conversation[/bold] for {prepared.source} with scenario {scenario!r} "
        f"({route.mode}), {target}, keys {', '.join(task.spec.keys)}",
        highlight=False,
    )
    for warning in task.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)
    for index, message in enumerate(plan.messages, start=1):
        size = plan.report.messages[index - 1]
        title = f"{index}. {message.role} [{message.kind}] {size.chars} chars / {size.tokens} tokens"
        style = {"system": "magenta", "user": "cyan", "assistant": "green"}[message.role]
        console.print(Panel(message.content, title=title, title_align="left", border_style=style), markup=False)
    table = Table("example", "turn", "status")
    for inc in plan.report.included:
        table.add_row(inc.id, "inline" if inc.turn == 0 else str(inc.turn), "included")
    for drop in plan.report.dropped:
        table.add_row(drop.id, "", f"dropped: {drop.reason}")
    console.print(table)
    console.print(plan.report.summary(), markup=False)
    return 0
