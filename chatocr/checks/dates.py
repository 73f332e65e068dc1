"""A date that exists and is not far in the future (nor, if declared, far in the past).

The extraction normalises dates to ISO (YYYY-MM-DD); a value that is not one is a skip. "Today"
comes from the check's context, so tests (and re-checks of old results) can fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from pydantic import Field

from chatocr.checks.base import CheckArgs, CheckContext, Outcome, failed, passed, skipped

__all__ = ["DateArgs", "check_date"]


class DateArgs(CheckArgs):
    max_future_days: int = Field(
        1,
        ge=0,
        description="How many days after today the date may be (1 leaves room for time zones; a train ticket is "
        "bought weeks ahead).",
    )
    max_past_years: int | None = Field(
        None, ge=1, description="How many years before today the date may be (None: no limit)."
    )


def check_date(fields: Sequence[str], values: Sequence[Any], args: DateArgs, context: CheckContext) -> Outcome:
    """The date exists, is at most `max_future_days` after today and, when set, at most
    `max_past_years` before it."""
    name, value = fields[0], values[0]
    if value is None:
        return skipped(f"{name} is empty")
    try:
        day = date.fromisoformat(str(value).strip())
    except ValueError:
        return skipped(f"{name} {value} is not a date that exists")
    today = context.current_date()
    latest = today + timedelta(days=args.max_future_days)
    if day > latest:
        ahead = (day - today).days
        return failed(f"{name} {day.isoformat()} is {ahead} days after today ({today.isoformat()})")
    if args.max_past_years is not None:
        try:
            earliest = today.replace(year=today.year - args.max_past_years)
        except ValueError:  # 29 February in a year that has none
            earliest = today.replace(year=today.year - args.max_past_years, day=28)
        if day < earliest:
            return failed(
                f"{name} {day.isoformat()} is more than {args.max_past_years} years before today ({today.isoformat()})"
            )
    return passed(f"{name} {day.isoformat()} exists and is not in the future")
