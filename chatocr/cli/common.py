"""What several commands share: the --llm/--ocr/--config options, building a ChatOCR from them,
and showing an Extraction as a table."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError, ConfigError, SchemaError, UsageError
from chatocr.extraction.examples import MEMORY_PREFIX
from chatocr.extraction.request import ExtractionRequest
from chatocr.extraction.result import Extraction
from chatocr.llm.credentials import load_keys_file
from chatocr.typed.loading import load_schema

__all__ = [
    "KEYS_HELP",
    "SCENARIO_HELP",
    "STATUS_STYLE",
    "add_backend_options",
    "add_memory_options",
    "field_table",
    "keys_option",
    "make_chatocr",
    "memory_overrides",
    "request_from",
    "review_line",
    "review_order",
    "shown_value",
    "summary_line",
]

STATUS_STYLE = {
    "grounded": "green",
    "low_confidence": "yellow",
    "ungrounded": "yellow",
    "missing": "dim",
    "invalid": "red",
}
KEYS_HELP = (
    "keys to extract: NAME[:TYPE][=DESCRIPTION], comma-separated, e.g. \"company=the shop's name,date:date,"
    "total:amount\"; types text, date, amount, number, enum(A|B), list (default: the scenario's fields)"
)
SCENARIO_HELP = "scenario name or a scenario YAML file"


def keys_option(text: str) -> str:
    """argparse type for --keys: the text, checked now, so a bad type is a usage error (exit 2)
    before anything is read or sent."""
    from chatocr.scenarios.keys import parse_keys

    try:
        parse_keys(text)
    except ChatOCRError as exc:
        raise argparse.ArgumentTypeError(f"{exc.message} {exc.hint}") from None
    return text


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-l", "--llm", metavar="PROVIDER[:MODEL]", help="chat backend (default: config, else local)")
    parser.add_argument("--ocr", metavar="ENGINE", help="OCR engine: rapid, paddle, text, vlm (default: config)")
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")


def add_memory_options(parser: argparse.ArgumentParser, default: str = "the config's, else the per-user one") -> None:
    """--memory DIR / --no-memory: the memory of reviewed documents examples also come from."""
    parser.add_argument(
        "--memory", type=Path, metavar="DIR", help=f"the memory of reviewed documents to use (default: {default})"
    )
    parser.add_argument("--no-memory", action="store_true", help="use no memory of reviewed documents")


def memory_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config overrides of --memory DIR / --no-memory (none when neither was given)."""
    folder, off = getattr(args, "memory", None), getattr(args, "no_memory", False)
    if folder is not None and off:
        raise UsageError("--memory and --no-memory contradict each other.", hint="Give one of them.")
    if off:
        return {"memory": False}
    if folder is not None:
        return {"memory": True, "memory_dir": str(folder)}
    return {}


def request_from(
    ocr: ChatOCR, keys: str | None, scenario: str | None, schema: str | None = None, **options: Any
) -> ExtractionRequest:
    """The command's request, built by the constructor every caller uses (ChatOCR.request), with
    the same words for every mistake. A mistake in the command line's own values (the key syntax,
    a number out of range, an unknown option) exits with the usage status 2, as argparse's errors
    do; a schema that cannot be read or mapped is a file's problem (exit 1), as a scenario file's.
    schema: as `--schema` names it (typed/loading.py)."""
    typed = load_schema(schema)
    try:
        return ocr.request(keys, scenario, schema=typed, **options)
    except (UsageError, SchemaError):
        raise
    except ConfigError as exc:
        raise UsageError(exc.message, hint=exc.hint) from exc


def make_chatocr(args: argparse.Namespace, **overrides: Any) -> ChatOCR:
    """A ChatOCR from the command's options; keys from the keys file join the environment first."""
    load_keys_file()
    return ChatOCR(
        llm=getattr(args, "llm", None),
        ocr=getattr(args, "ocr", None),
        config=getattr(args, "config", None),
        **{**memory_overrides(args), **overrides},
    )


def shown_value(value: Any) -> str:
    """A field's value as a table cell: lists and objects as JSON, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


DECISION_STYLE = {"accepted": "green", "review": "bold yellow"}


def review_order(result: Extraction) -> list[str]:
    """The fields as a person should read them: those to review first (lowest confidence first),
    then the rest in the order asked."""
    review = result.to_review
    return [*review, *(name for name in result.fields if name not in review)]


def field_table(result: Extraction, corrected: Mapping[str, Any] | None = None) -> Table:
    """The fields, those to review first, with value, status, confidence and decision. corrected:
    values a person fixed (the REPL's /fix), shown instead of the model's and marked `corrected`."""
    corrected = corrected or {}
    decided = any(f.decision is not None for f in result.fields.values())
    columns = ["field", "value", "status", "confidence", *(["decision"] if decided else [])]
    table = Table(*columns, title=Path(result.source).name, title_justify="left")
    for name in review_order(result):
        field = result.fields[name]
        if name in corrected:
            row: list[str | Text] = [name, Text(shown_value(corrected[name])), Text("corrected", style="cyan"), ""]
            row += [""] if decided else []
            table.add_row(*row)
            continue
        style = STATUS_STYLE.get(field.status, "")
        confidence = "" if field.confidence is None else f"{field.confidence:.2f}"
        row = [name, Text(shown_value(field.value)), Text(field.status, style=style), confidence]
        if decided:
            row.append(Text(field.decision or "", style=DECISION_STYLE.get(field.decision or "", "")))
        table.add_row(*row)
    return table


def review_line(result: Extraction) -> str | None:
    """ "3 of 4 fields accepted, 1 to review", with what the confidence is and the rule's threshold
    (or why nothing can be accepted); None when no decision was made."""
    summary = result.review_summary()
    if summary is None:
        return None
    rule = result.acceptance
    calibrated = any(f.calibrated for f in result.fields.values())
    what = "calibrated confidence" if calibrated else "uncalibrated confidence (OCR x match)"
    if rule is not None and rule.threshold is not None:
        summary += f" (accepted at {what} >= {rule.threshold:.3f}: {rule.source})"
    if rule is not None and rule.note:
        summary += f"; {rule.note}"
    return summary


def summary_line(result: Extraction) -> str:
    """Route, usage and time in one line."""
    route = result.route
    how = "n/a"
    if route is not None:
        how = route.mode + (f" ({route.confidence:.2f})" if route.confidence is not None else "")
    usage = result.usage
    parts = [
        f"scenario {result.scenario or 'none'} via {how}",
        f"{usage['calls']} call(s), {usage['prompt_tokens']}+{usage['completion_tokens']} tokens",
        f"{result.timings.get('total_s', 0.0):.1f}s",
    ]
    if result.examples:
        remembered = sum(e.startswith(MEMORY_PREFIX) for e in result.examples)
        parts.append(f"{len(result.examples)} example(s)" + (f", {remembered} from memory" if remembered else ""))
    return " · ".join(parts)
