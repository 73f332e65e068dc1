"""The review queue's decision: which fields a person may accept unseen, which to look at.

A field whose confidence is at or above the accept threshold is `accepted`; any other (below it,
or with no confidence at all) goes to `review`, lowest confidence first. The threshold is given
per call, or chosen from a scenario's calibration for a target precision (`--accept-precision
0.99`: the lowest calibrated confidence at which the held-out precision is still >= 99 %, stored
in the calibration file), or is the scenario's calibration default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from chatocr.calibration.model import Calibration
from chatocr.errors import CalibrationError, ConfigError

__all__ = ["AcceptRule", "Decision", "ReviewQueue", "accept_rule", "decide", "review_queue"]

Decision = Literal["accepted", "review"]


def decide(confidence: float | None, threshold: float) -> Decision:
    """`accepted` at or above the threshold; `review` below it or without a confidence."""
    return "accepted" if confidence is not None and confidence >= threshold else "review"


@dataclass(frozen=True)
class AcceptRule:
    """The threshold in force and where it came from, for the result and the CLI's summary."""

    threshold: float  # math.inf when no threshold reaches the asked precision: everything to review
    source: str  # "given" | "precision 0.99 (held out)" | ...
    note: str = ""


def accept_rule(
    calibration: Calibration | None,
    *,
    threshold: float | None = None,
    precision: float | None = None,
    default_precision: float | None = None,
) -> AcceptRule | None:
    """The accept threshold for a call: `threshold` if given; else the one the calibration's
    held-out curve gives for `precision`; else for the scenario's `default_precision`; None when
    nothing asks for a decision. CalibrationError when a precision is asked of no calibration."""
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"An accept threshold is a probability in [0, 1], got {threshold}.")
        return AcceptRule(threshold, "given")
    wanted = precision if precision is not None else default_precision
    if wanted is None:
        return None
    if not 0.0 < wanted <= 1.0:
        raise ConfigError(f"An accept precision is a share in (0, 1], got {wanted}.", hint="For 99 %, give 0.99.")
    if calibration is None or calibration.held_out is None:
        raise CalibrationError(
            f"An accept precision of {wanted:g} needs the scenario's calibration, and it has none.",
            hint="Fit a calibration for the scenario on labelled documents, or give an accept threshold instead.",
        )
    chosen = calibration.accept_threshold(wanted)
    source = f"precision {wanted:g} (held out)"
    if chosen is None:
        return AcceptRule(
            float("inf"),
            source,
            f"no threshold reached {wanted:.0%} held-out precision: every field goes to review",
        )
    return AcceptRule(chosen, source)


@dataclass(frozen=True)
class ReviewQueue:
    accepted: tuple[str, ...]
    review: tuple[str, ...]  # lowest confidence first (no confidence before any)

    @property
    def needs_review(self) -> bool:
        return bool(self.review)

    def summary(self) -> str:
        """ "37 of 40 fields accepted, 3 to review"."""
        total = len(self.accepted) + len(self.review)
        return (
            f"{len(self.accepted)} of {total} field{'s' if total != 1 else ''} accepted, {len(self.review)} to review"
        )


def review_queue(confidences: Mapping[str, float | None], rule: AcceptRule) -> ReviewQueue:
    """Each field accepted or to review under `rule`, the fields to review in the order to look at them."""
    accepted = tuple(name for name, value in confidences.items() if decide(value, rule.threshold) == "accepted")
    review = sorted(
        (name for name in confidences if name not in accepted),
        key=lambda name: (confidences[name] is not None, confidences[name] or 0.0),
    )
    return ReviewQueue(accepted, tuple(review))
