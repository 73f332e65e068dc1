"""What every document check shares: its result, the context it runs in, the page as rows of lines,
and how a check is defined (a name, the fields it takes by position, typed arguments, a function).

A check is a small pure function `(fields, values, args, context) -> Outcome`. It never raises on
purpose: a value it cannot read (missing, unparseable) is a skip (`passed=None`), and `run_check`
turns anything a check raises anyway into a failed result that names the error, so one broken
check never costs a document. Messages are for a person reading the result ("total 10.00 is the
CASH line; the final amount is TOTAL 9.00"), so they name the fields and the values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CheckArgs",
    "CheckContext",
    "CheckDefinition",
    "CheckResult",
    "NoArgs",
    "Outcome",
    "PageLine",
    "PageRows",
    "Role",
    "run_check",
]


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one document: passed True (the values agree), False (they do not:
    at least one of `fields` is likely wrong), None (skipped: a value was missing or unreadable)."""

    name: str
    fields: tuple[str, ...]
    passed: bool | None
    message: str

    @property
    def skipped(self) -> bool:
        return self.passed is None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fields": list(self.fields), "passed": self.passed, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(str(data["name"]), tuple(data["fields"]), data["passed"], str(data["message"]))


@dataclass(frozen=True)
class Outcome:
    """What a check function returns; `run_check` adds the name and the fields."""

    passed: bool | None
    message: str


def passed(message: str) -> Outcome:
    return Outcome(True, message)


def failed(message: str) -> Outcome:
    return Outcome(False, message)


def skipped(message: str) -> Outcome:
    return Outcome(None, message)


class CheckArgs(BaseModel):
    """A check's arguments as declared in scenario YAML: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(CheckArgs):
    """For checks that take nothing but their fields."""


@dataclass(frozen=True)
class PageLine:
    """One OCR line on a row of the page: its id (as in `Evidence.line_id`), its text, and the
    display columns it covers in the reading-order text (a rotation-independent horizontal place:
    the layout spaces cells in proportion to the gaps between them)."""

    id: str
    text: str
    start: int = 0
    end: int = 0


@dataclass(frozen=True)
class PageRows:
    """The page as the reading-order layout rendered it: rows top to bottom, each row's lines
    left to right. Checks and signals that need the page (which row a value sits on, what is
    printed beside it) read this; `chatocr.extraction.checking.page_rows` builds it."""

    rows: tuple[tuple[PageLine, ...], ...] = ()
    _where: dict[str, tuple[int, int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for row_index, row in enumerate(self.rows):
            for column, line in enumerate(row):
                self._where.setdefault(line.id, (row_index, column))

    def locate(self, line_id: str) -> tuple[int, int] | None:
        """(row, position in the row) of a line, None when the page does not hold it."""
        return self._where.get(line_id)

    def row_text(self, index: int) -> str:
        return "  ".join(line.text for line in self.rows[index])


@dataclass(frozen=True)
class CheckContext:
    """What a check may know besides the values: the page (rows of lines), each field's evidence
    (the OCR line ids its value was found on), and today's date (injectable for tests)."""

    page: PageRows | None = None
    evidence: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    today: date | None = None

    def current_date(self) -> date:
        return self.today or date.today()


@dataclass(frozen=True)
class Role:
    """What a position in a check's `fields` means. `types` are the field types it accepts
    (scenario `FieldType` values; empty: any); `many` takes one or more fields (at most one role
    per check does); `optional` may be left out (only at the end)."""

    name: str
    types: tuple[str, ...] = ()
    many: bool = False
    optional: bool = False


ArgsT = TypeVar("ArgsT", bound=CheckArgs)
CheckFunction = Callable[[Sequence[str], Sequence[Any], ArgsT, CheckContext], Outcome]


@dataclass(frozen=True)
class CheckDefinition(Generic[ArgsT]):
    """A check as the registry knows it: how scenarios name it, what it says it does, its
    arguments' model, the roles of its fields, and the function."""

    name: str
    summary: str
    roles: tuple[Role, ...]
    args: type[ArgsT]
    function: CheckFunction[ArgsT]

    def assign(self, count: int) -> list[Role] | str:
        """The role of each of `count` declared fields, or why that many do not fit."""
        fixed = [role for role in self.roles if not role.many and not role.optional]
        optional = [role for role in self.roles if role.optional]
        many = [role for role in self.roles if role.many]
        least = len(fixed) + len(many)
        most = None if many else len(fixed) + len(optional)
        if count < least or (most is not None and count > most):
            names = ", ".join(self._role_text(role) for role in self.roles)
            wanted = f"at least {least}" if most is None else (str(least) if least == most else f"{least} to {most}")
            return f"check {self.name!r} takes {wanted} field{'s' if most != 1 else ''} ({names}), got {count}"
        roles: list[Role] = []
        spare = count - least
        for role in self.roles:
            if role.many:
                roles.extend([role] * (1 + spare))
            elif role.optional:
                if spare > 0 and not many:
                    roles.append(role)
                    spare -= 1
            else:
                roles.append(role)
        return roles

    @staticmethod
    def _role_text(role: Role) -> str:
        text = role.name + ("..." if role.many else "")
        return f"[{text}]" if role.optional else text


def run_check(
    definition: CheckDefinition[Any],
    fields: Sequence[str],
    values: Sequence[Any],
    args: CheckArgs,
    context: CheckContext,
    *,
    name: str | None = None,
) -> CheckResult:
    """Run one check; whatever it raises becomes a failed result naming the error, never a crash."""
    label = name or definition.name
    try:
        outcome = definition.function(fields, values, args, context)
    except Exception as error:  # a broken check must not cost the document: report it as failed
        return CheckResult(label, tuple(fields), False, f"check {label!r} raised {type(error).__name__}: {error}")
    return CheckResult(label, tuple(fields), outcome.passed, outcome.message)
