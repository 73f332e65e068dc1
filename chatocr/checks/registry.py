"""The checks scenarios may declare, by name, and the validation of a declaration.

A scenario declares checks in YAML (`checks:`), each a mapping: `check` (a name below), `fields`
(the scenario's field names, in the order the check's roles say), an optional `name` for the
result, and the check's own arguments:

    checks:
      - {check: sum, fields: [amount, tax_amount, total_amount], tolerance: 0.01}
      - {check: uscc, fields: [seller_tax_id], allow_legacy: true}

`declaration_problems` says everything wrong with one declaration (an unknown check, a field the
scenario does not have or of the wrong type, a wrong number of fields, wrong or unknown arguments)
as (path inside the declaration, message), so the scenario loader can name the file and the line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from chatocr.checks.amounts import (
    AmountInWordsArgs,
    ItemsSumArgs,
    SumArgs,
    check_amount_in_words,
    check_items_sum,
    check_sum,
)
from chatocr.checks.base import CheckArgs, CheckDefinition, Role
from chatocr.checks.codes import (
    IdNumberArgs,
    InvoiceCodeArgs,
    InvoiceNumberArgs,
    UsccArgs,
    check_id_number,
    check_invoice_code,
    check_invoice_number,
    check_uscc,
)
from chatocr.checks.dates import DateArgs, check_date
from chatocr.checks.page import FinalAmountArgs, check_final_amount

__all__ = [
    "CHECKS",
    "DECLARATION_KEYS",
    "check_definition",
    "declaration_problems",
    "parse_arguments",
    "register_check",
]

AMOUNTS = ("amount", "number")
TEXT = ("text",)
# The keys every declaration has; the rest are the check's own arguments.
DECLARATION_KEYS = ("check", "fields", "name")

CHECKS: dict[str, CheckDefinition[Any]] = {}


def register_check(definition: CheckDefinition[Any]) -> None:
    """Make a check declarable in scenarios (before they load). A name is registered once."""
    if definition.name in CHECKS and CHECKS[definition.name] is not definition:
        raise ValueError(f"a check named {definition.name!r} is already registered")
    CHECKS[definition.name] = definition


for _definition in (
    CheckDefinition(
        "uscc",
        "the unified social credit code's check character (GB 32100-2015)",
        (Role("code", TEXT),),
        UsccArgs,
        check_uscc,
    ),
    CheckDefinition(
        "id_number",
        "the resident ID number's check digit and birth date (GB 11643-1999); with more fields, that the birth "
        "date and gender agree with it",
        (
            Role("id_number", TEXT),
            Role("birth_date", ("date",), optional=True),
            Role("gender", ("enum", "text"), optional=True),
        ),
        IdNumberArgs,
        check_id_number,
    ),
    CheckDefinition(
        "invoice_code",
        "a VAT invoice code: 10 or 12 digits",
        (Role("code", TEXT),),
        InvoiceCodeArgs,
        check_invoice_code,
    ),
    CheckDefinition(
        "invoice_number",
        "a VAT invoice number: 8 digits, or 20 for a fully digital e-invoice",
        (Role("number", TEXT),),
        InvoiceNumberArgs,
        check_invoice_number,
    ),
    CheckDefinition(
        "amount_in_words",
        "an amount in Chinese capitals (壹贰叁…圆角分整) equals its figure",
        (Role("words", TEXT), Role("figure", AMOUNTS)),
        AmountInWordsArgs,
        check_amount_in_words,
    ),
    CheckDefinition(
        "sum",
        "the parts add up to the total (amount + tax = total), within a tolerance",
        (Role("parts", AMOUNTS, many=True), Role("total", AMOUNTS)),
        SumArgs,
        check_sum,
    ),
    CheckDefinition(
        "items_sum",
        "the line items' amounts add up to the subtotal or the total",
        (Role("items", ("list",)), Role("targets", AMOUNTS, many=True)),
        ItemsSumArgs,
        check_items_sum,
    ),
    CheckDefinition(
        "date",
        "a date that exists and is not far in the future",
        (Role("date", ("date",)),),
        DateArgs,
        check_date,
    ),
    CheckDefinition(
        "final_amount",
        "the total is the page's final amount, not the cash, change, rounding, a discount or the subtotal",
        (Role("total", AMOUNTS),),
        FinalAmountArgs,
        check_final_amount,
    ),
):
    register_check(_definition)


def check_definition(name: str) -> CheckDefinition[Any] | None:
    return CHECKS.get(name)


Problem = tuple[tuple[str | int, ...], str]


def declaration_problems(declaration: Any, field_types: Mapping[str, str]) -> list[Problem]:
    """Everything wrong with one declared check, given the scenario's fields and their types."""
    if not isinstance(declaration, Mapping):
        return [((), "a check is a mapping such as {check: sum, fields: [amount, tax, total]}")]
    name = declaration.get("check")
    if not isinstance(name, str) or not name:
        return [((), f"missing `check`: one of {', '.join(CHECKS)}")]
    definition = CHECKS.get(name)
    if definition is None:
        guess = difflib.get_close_matches(name, list(CHECKS), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        return [(("check",), f"unknown check {name!r}{hint}; the checks are {', '.join(CHECKS)}")]
    problems = _field_problems(definition, declaration.get("fields"), field_types)
    label = declaration.get("name")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        problems.append((("name",), "`name` is a non-empty text"))
    arguments = {key: value for key, value in declaration.items() if key not in DECLARATION_KEYS}
    problems.extend(_argument_problems(definition, arguments))
    return problems


def _field_problems(definition: CheckDefinition[Any], fields: Any, field_types: Mapping[str, str]) -> list[Problem]:
    if not isinstance(fields, list | tuple) or not all(isinstance(f, str) for f in fields):
        return [(("fields",), f"`fields` is a list of the scenario's field names for check {definition.name!r}")]
    roles = definition.assign(len(fields))
    if isinstance(roles, str):
        return [(("fields",), roles)]
    problems: list[Problem] = []
    for index, (field, role) in enumerate(zip(fields, roles, strict=True)):
        kind = field_types.get(field)
        if kind is None:
            guess = difflib.get_close_matches(field, list(field_types), n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            problems.append((("fields", index), f"the scenario has no field {field!r}{hint}"))
        elif role.types and kind not in role.types:
            wanted = " or ".join(role.types)
            problems.append(
                (
                    ("fields", index),
                    f"{field!r} is of type {kind}; check {definition.name!r} wants {wanted} as its {role.name}",
                )
            )
    return problems


def _argument_problems(definition: CheckDefinition[Any], arguments: dict[str, Any]) -> list[Problem]:
    try:
        definition.args.model_validate(arguments)
    except ValidationError as error:
        problems: list[Problem] = []
        allowed = [*DECLARATION_KEYS, *definition.args.model_fields]
        for item in error.errors():
            loc = tuple(item["loc"])
            if item["type"] == "extra_forbidden":
                key = str(loc[-1])
                guess = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {guess[0]!r}?)" if guess else f"; its keys are {', '.join(allowed)}"
                problems.append((loc, f"check {definition.name!r} has no argument {key!r}{hint}"))
            else:
                shown = item.get("input")
                got = f" (got {shown!r})" if not isinstance(shown, dict | list) else ""
                problems.append((loc, f"{item['msg']}{got}"))
        return problems
    return []


def parse_arguments(definition: CheckDefinition[Any], declaration: Mapping[str, Any]) -> CheckArgs:
    """The check's arguments from a declaration already validated by `declaration_problems`."""
    arguments: CheckArgs = definition.args.model_validate(
        {k: v for k, v in declaration.items() if k not in DECLARATION_KEYS}
    )
    return arguments
