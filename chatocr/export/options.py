"""What an export is asked to do, one options object per thing it describes.

    from chatocr.export import SFTOptions, ReviewOptions, SplitOptions, export_sft
    export_sft(["results.jsonl"], "sft/", SFTOptions(formats=("xtuner", "openai"), redact=("name",),
               review=ReviewOptions(min_confidence=0.9), split=SplitOptions(val_ratio=0.2, seed=1)))

    ReviewOptions   which documents of the sources count as reviewed, and how labels map to fields
    SplitOptions    the train/validation split by document
    Backend         the ChatOCR an export plans and reads OCR with (provider, OCR engine, config file)
    SFTOptions      a fine-tuning set: formats, examples, the token limit, redaction, the three above
    OCRLinesOptions line crops for the recognizer: redaction, the first three above

Each is checked when made: a value that cannot work (`max_tokens=0`, `val_ratio=1`, `examples=-1`)
is a UsageError before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from chatocr.errors import UsageError

__all__ = ["Backend", "OCRLinesOptions", "ReviewOptions", "SFTOptions", "SplitOptions"]


def _names(items: Sequence[str] | str) -> tuple[str, ...]:
    """Names given as a sequence or one comma-separated string, stripped, empties dropped."""
    parts = items.split(",") if isinstance(items, str) else items
    return tuple(part.strip() for part in parts if part.strip())


@dataclass(frozen=True)
class ReviewOptions:
    """Which documents are reviewed: a labelled set's scenario (default: its profile, else the
    best field match) and label keys mapped to fields; for results files, the confidence every
    grounded value of an unreviewed document must reach."""

    scenario: str | None = None
    field_map: Mapping[str, str] = field(default_factory=dict)
    min_confidence: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_map", MappingProxyType(dict(self.field_map)))
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise UsageError(f"--min-confidence must be between 0 and 1, got {self.min_confidence}.")


@dataclass(frozen=True)
class SplitOptions:
    """The share of documents held out for validation and the seed of the shuffle (the same seed,
    the same split)."""

    val_ratio: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.val_ratio < 1:
            raise UsageError(f"--val-ratio must be in [0, 1), got {self.val_ratio}.", hint="e.g. --val-ratio 0.1")


@dataclass(frozen=True)
class Backend:
    """The backend the conversations are planned for ("provider[:model]", default: the config's),
    the OCR engine documents are read with (default: the config's), and a config file."""

    llm: str | None = None
    ocr: str | None = None
    config: str | Path | None = None


@dataclass(frozen=True)
class SFTOptions:
    """A supervised fine-tuning set: its formats, the few-shot examples in each conversation, the
    longest record kept (default: the backend's context window), the fields whose values are
    replaced by consistent fakes, and whether files of a previous export may be replaced."""

    formats: Sequence[str] = ("xtuner",)
    examples: int = 0
    max_tokens: int | None = None
    redact: Sequence[str] = ()
    review: ReviewOptions = ReviewOptions()
    split: SplitOptions = SplitOptions()
    backend: Backend = Backend()
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", _names(self.formats) or ("xtuner",))
        object.__setattr__(self, "redact", _names(self.redact))
        if self.examples < 0:
            raise UsageError(f"--examples must be 0 or more, got {self.examples}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise UsageError(
                f"--max-tokens must be at least 1, got {self.max_tokens}: every record would be dropped.",
                hint="Leave it out for the backend's context window, or give the longest record to keep.",
            )


@dataclass(frozen=True)
class OCRLinesOptions:
    """Line crops for PP-OCR's recognizer: the fields whose lines are left out (pixels cannot be
    faked), and whether files of a previous export may be replaced. Only `backend.ocr` and
    `backend.config` are used (no model is loaded)."""

    redact: Sequence[str] = ()
    review: ReviewOptions = ReviewOptions()
    split: SplitOptions = SplitOptions()
    backend: Backend = Backend()
    overwrite: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "redact", _names(self.redact))
