"""Document checks: small pure functions that say whether extracted values agree with what a
document of their type must satisfy (check digits, totals that add up, amounts in words equal to
figures, dates that exist, a total that is the page's final amount). Scenarios declare them in
YAML (`checks:`); `chatocr.extraction.checking` runs a scenario's checks on a result.

This part sits below `scenarios` (a scenario validates its declarations when it loads) and knows
nothing of OCR or results: values come in as the extraction normalised them, the page as rows of
lines (`PageRows`).
"""

from chatocr.checks.amounts import amount_to_words, words_to_amount
from chatocr.checks.base import (
    CheckArgs,
    CheckContext,
    CheckDefinition,
    CheckResult,
    NoArgs,
    Outcome,
    PageLine,
    PageRows,
    Role,
    run_check,
)
from chatocr.checks.codes import id_check_digit, uscc_check_character
from chatocr.checks.registry import (
    CHECKS,
    DECLARATION_KEYS,
    check_definition,
    declaration_problems,
    parse_arguments,
    register_check,
)

__all__ = [
    "CHECKS",
    "DECLARATION_KEYS",
    "CheckArgs",
    "CheckContext",
    "CheckDefinition",
    "CheckResult",
    "NoArgs",
    "Outcome",
    "PageLine",
    "PageRows",
    "Role",
    "amount_to_words",
    "check_definition",
    "declaration_problems",
    "id_check_digit",
    "parse_arguments",
    "register_check",
    "run_check",
    "uscc_check_character",
    "words_to_amount",
]
