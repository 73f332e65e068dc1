"""`chatocr plan`: show the conversation chatocr would send for a document, without sending it.

Useful to see how examples are packed under a backend's limits, and to compare packing policies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from chatocr.cli.common import KEYS_HELP, keys_option, load_schema_option
from chatocr.config import load_config
from chatocr.conversation import ConversationPlanner, PlanPolicy, TaskSpec, load_prompts
from chatocr.errors import InputError
from chatocr.extraction.examples import ExampleBank, resolve_fields
from chatocr.messages import Limits, RoleRules
from chatocr.scenarios import FieldSpec, Scenario, load_scenarios
from chatocr.scenarios.keys import parse_keys
from chatocr.tokens import CharCounter, TiktokenCounter, TokenCounter

ERNIE_ROLES = RoleRules(system="field", alternate=True, odd_count=True)

# Target profiles for planning without a backend. ERNIE's limits are in characters: the early
# ERNIE Bot took about 2000 characters per question, later 4800 (see docs/llm.md).
PRESETS: dict[str, tuple[Limits, str]] = {
    "ernie-2000": (Limits(max_message_chars=2000, max_input_chars=11200, roles=ERNIE_ROLES), "chars"),
    "ernie": (Limits(max_message_chars=4800, max_input_chars=20000, roles=ERNIE_ROLES), "chars"),
    "openai-8k": (Limits(context_window=8192, reserved_output_tokens=1024), "cl100k_base"),
    "local": (Limits(context_window=4096, reserved_output_tokens=512), "cl100k_base"),
}


def register(sub: Any) -> None:
    parser = sub.add_parser("plan", help="show the planned conversation for a document (nothing is sent)")
    parser.add_argument("document", type=Path, help="OCR text of the document (a .txt file)")
    parser.add_argument("--scenario", required=True, help="scenario name or YAML file (see `chatocr scenarios list`)")
    parser.add_argument("--keys", type=keys_option, help=KEYS_HELP)
    parser.add_argument("--schema", metavar="MODULE:CLASS|FILE.json", help="plan for a pydantic model's fields")
    parser.add_argument("--limits", default="ernie-2000", choices=sorted(PRESETS), help="target limits preset")
    parser.add_argument("--packing", choices=["single", "pairs", "packed"], help="default: the configured packing")
    parser.add_argument("--restate-every", type=int, default=None, metavar="N")
    parser.add_argument(
        "--max-examples", metavar="N", help="at most N examples, or 'all' (default: the configured maximum)"
    )
    parser.add_argument(
        "--no-focus",
        dest="focus",
        action="store_false",
        help="send every scenario rule and whole example texts (default: only what concerns the keys asked)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run)


def counter_for(name: str) -> TokenCounter:
    return CharCounter() if name == "chars" else TiktokenCounter(name)


def task_for(scenario: Scenario, keys: str | None) -> tuple[FieldSpec, ...]:
    """The fields as `extract --keys` asks for them (the same key syntax and resolution)."""
    return resolve_fields(scenario, parse_keys(keys) if keys else None)


def run(args: argparse.Namespace) -> int:
    try:
        document = args.document.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {args.document}: {exc}", hint="Give a UTF-8 text file of OCR text.") from exc
    schema = load_schema_option(args.schema)
    library = load_scenarios()
    scenario = library.resolve(args.scenario)
    limits, counter_name = PRESETS[args.limits]
    # The configured settings, the options on top ("all" examples is understood there).
    config = load_config({"packing": args.packing, "max_examples": args.max_examples})
    fields = schema.fields if schema is not None else task_for(scenario, args.keys)
    names = [f.name for f in fields]
    instructions = scenario.instructions_for(names) if args.focus else scenario.instructions
    task = TaskSpec(scenario.title, fields, instructions)
    # As the pipeline does: ranked by similarity to the document, answers cut to the keys asked.
    examples = ExampleBank(library).select(document, fields, scenario, focus=args.focus)
    policy = PlanPolicy(packing=config.packing, restate_every=args.restate_every, max_examples=config.max_examples)
    planner = ConversationPlanner(load_prompts(scenario.language), counter_for(counter_name), limits, policy)
    plan = planner.plan(task, examples, document)
    if args.json:
        print(
            json.dumps(
                {"messages": [m.to_dict() for m in plan.messages], "report": plan.report.to_dict()},
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    console = Console()
    console.print(
        f"[bold]Planned conversation[/bold] for {args.document} with scenario {scenario.name!r}, limits {args.limits!r}"
    )
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
