"""`chatocr scenarios list | show NAME | validate PATH... | schema | new NAME --from IMAGE | test PATH --data DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from chatocr.errors import ScenarioError
from chatocr.fileio import atomic_write
from chatocr.scenarios import load_scenario_file, load_scenarios
from chatocr.scenarios.model import Scenario, ungrounded_example_values
from chatocr.scenarios.schema import scenario_json_schema_text


def register(sub: Any) -> None:
    parser = sub.add_parser("scenarios", help="list, show, validate scenarios; print the JSON schema")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="the scenarios available here")
    p.add_argument("--dir", action="append", default=[], help="also load scenarios from this directory")
    p.add_argument("--plain", action="store_true", help="tab-separated rows without a header, for scripts")
    p.set_defaults(handler=list_scenarios)
    p = actions.add_parser("show", help="one scenario's fields and examples")
    p.add_argument("name")
    p.add_argument("--dir", action="append", default=[], help="also load scenarios from this directory")
    p.set_defaults(handler=show_scenario)
    p = actions.add_parser("validate", help="check scenario files; errors name file, line and fix")
    p.add_argument("paths", nargs="+", type=Path)
    p.set_defaults(handler=validate)
    p = actions.add_parser("schema", help="print the JSON Schema of the scenario format")
    p.set_defaults(handler=schema)
    _register_authoring(actions)


def _register_authoring(actions: Any) -> None:
    from chatocr.cli.common import add_backend_options, keys_option
    from chatocr.cli.scenario_authoring import new_scenario, test_scenario

    p = actions.add_parser(
        "new",
        help="write a scenario: a skeleton from an image's OCR text, or the fields and examples of reviewed documents",
    )
    p.add_argument("name", help="scenario name: lower-case letters, digits, _")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="image", type=Path, metavar="IMAGE", help="a typical document (needs --keys)")
    source.add_argument(
        "--from-reviewed",
        dest="reviewed",
        type=Path,
        metavar="REVIEW_FILE",
        help="the review file of `chatocr review` (or its results file): fields typed from the reviewed values, "
        "the 2-4 most different reviewed documents as examples",
    )
    p.add_argument(
        "-k",
        "--keys",
        type=keys_option,
        help="fields: NAME[:TYPE][=DESCRIPTION], e.g. "
        '"company=the shop\'s name,date:date,total:amount,payment:enum(cash|card)"',
    )
    p.add_argument("-o", "--out", type=Path, metavar="FILE", help="where to write (default: NAME.yaml)")
    p.add_argument("--ocr", metavar="ENGINE", help="OCR engine (default: config, else rapid)")
    p.add_argument("--language", choices=["zh", "en"], help="prompt language (default: guessed from the text)")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(handler=new_scenario)
    p = actions.add_parser("test", help="per-field accuracy of a scenario over a labelled folder")
    p.add_argument("scenario", metavar="PATH", help="a scenario YAML file (or a scenario name)")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="a set: images/, labels/, ocr/")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N documents")
    p.add_argument("-j", "--concurrency", type=int, metavar="N", help="documents in flight")
    p.add_argument("-v", "--verbose", action="store_true", help="list every wrong value")
    add_backend_options(p)
    p.set_defaults(handler=test_scenario)
    p = actions.add_parser("model", help="print a scenario's fields as pydantic models (Python, for type checkers)")
    p.add_argument("name", help="a scenario name or YAML file")
    p.set_defaults(handler=print_model)
    p = actions.add_parser("from-schema", help="write a scenario whose fields are a pydantic model's or JSON Schema's")
    p.add_argument("schema", metavar="MODULE:CLASS|FILE.json")
    p.add_argument("--name", required=True, help="scenario name: lower-case letters, digits, _")
    p.add_argument("--title", help="human title (default: the model's name)")
    p.add_argument("--language", choices=["zh", "en"], default="en", help="prompt language (default: en)")
    p.add_argument("--description", help="which documents it covers (default: the model's docstring)")
    p.add_argument("-o", "--out", type=Path, metavar="FILE", help="where to write (default: print)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(handler=scenario_from_schema)


def print_model(args: argparse.Namespace) -> int:
    from chatocr.typed.export import model_source

    sys.stdout.write(model_source(load_scenarios().resolve(args.name)))
    return 0


def scenario_from_schema(args: argparse.Namespace) -> int:
    from chatocr.errors import ConfigError
    from chatocr.typed.export import scenario_from_model
    from chatocr.typed.loading import load_schema

    typed = load_schema(args.schema)
    assert typed is not None
    source: Any = typed.json_schema if typed.from_json_schema else typed.model
    scenario = scenario_from_model(
        source, name=args.name, title=args.title, language=args.language, description=args.description
    )
    text = scenario.to_yaml()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.out.exists() and not args.force:
        raise ConfigError(f"{args.out} already exists.", hint="Pass --force to overwrite it, or choose --out.")
    atomic_write(args.out, text)  # checked target (never a link or a pipe), whole or not at all
    print(
        f"wrote {args.out}: {len(scenario.fields)} field(s); add instructions and examples, then "
        f"chatocr scenarios validate {args.out}"
    )
    return 0


def list_scenarios(args: argparse.Namespace) -> int:
    library = load_scenarios(args.dir)
    sources = {scenario.name: Path(str(library.sources.get(scenario.name) or "")) for scenario in library}
    if args.plain:  # one tab-separated row per scenario, for scripts: `chatocr scenarios list --plain | cut -f1`
        for scenario in library:
            print(
                "\t".join(
                    [
                        scenario.name,
                        scenario.title,
                        scenario.language,
                        str(len(scenario.fields)),
                        str(len(scenario.examples)),
                        str(sources[scenario.name]),
                    ]
                )
            )
        return 0
    # The name is what one types: never cut or wrapped. The folders go under the table, once each.
    longest = max((len(scenario.name) for scenario in library), default=4)
    table = Table(box=box.HEAVY_HEAD)
    table.add_column("name", no_wrap=True, min_width=longest)
    for column in ("title", "lang", "fields", "examples", "file"):
        table.add_column(column)
    for scenario in library:
        table.add_row(
            scenario.name,
            scenario.title,
            scenario.language,
            str(len(scenario.fields)),
            str(len(scenario.examples)),
            sources[scenario.name].name,
        )
    console = Console()
    console.print(table)
    for folder in dict.fromkeys(str(path.parent) for path in sources.values() if path.name):
        console.print(f"from {folder}", style="dim", highlight=False, markup=False, soft_wrap=True)
    return 0


def show_scenario(args: argparse.Namespace) -> int:
    scenario = load_scenarios(args.dir).resolve(args.name)
    console = Console()
    console.print(f"[bold]{scenario.name}[/bold]: {scenario.title} ({scenario.language})")
    console.print(scenario.description, markup=False)
    if scenario.instructions:
        console.print("\n[bold]instructions[/bold]")
        console.print(scenario.instructions, markup=False)
    table = Table("field", "type", "required", "aliases", "description")
    for field in scenario.fields:
        kind = field.type.value + (f" {list(field.choices)}" if field.choices else "")
        table.add_row(field.name, kind, "yes" if field.required else "", ", ".join(field.aliases), field.description)
    console.print(table)
    console.print(f"{len(scenario.examples)} examples: " + ", ".join(e.id or e.uid for e in scenario.examples))
    return 0


def validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            try:
                scenario = load_scenario_file(file)
            except ScenarioError as exc:
                failed += 1
                for problem in exc.problems:
                    print(problem, file=sys.stderr)
                continue
            warnings = ungrounded_example_values(scenario) + _unfilled_examples(scenario)
            if scenario.name != file.stem:
                warnings.append(f"name {scenario.name!r} differs from the file name {file.name!r}")
            for warning in warnings:
                print(f"{file}: warning: {warning}", file=sys.stderr)
            print(f"{file}: ok ({scenario.name}: {len(scenario.fields)} fields, {len(scenario.examples)} examples)")
    if failed:
        print(f"{failed} file(s) failed; fix the lines named above.", file=sys.stderr)
    return 1 if failed else 0


def _unfilled_examples(scenario: Scenario) -> list[str]:
    """Examples whose answers are all null: a skeleton from `scenarios new` not filled in yet."""
    return [
        f"examples[{i}].answer: every value is null; fill in the values found in its text"
        for i, example in enumerate(scenario.examples)
        if example.answer and all(value is None for value in example.answer.values())
    ]


def schema(args: argparse.Namespace) -> int:
    del args
    sys.stdout.write(scenario_json_schema_text())
    return 0
