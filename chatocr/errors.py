"""Every error chatocr raises on purpose, in one tree.

    ChatOCRError                      base: catch this to catch everything of ours
    ├── UserError                     the caller's or the author's mistake: fix the input or config
    │   ├── ConfigError               bad settings, unknown provider/engine/scenario name
    │   │   ├── SchemaError           a pydantic model or JSON Schema chatocr cannot extract into
    │   │   ├── UnknownOptionError    an option or setting that does not exist (names the nearest one)
    │   │   └── UsageError            a command line that cannot work as given (the CLI exits 2)
    │   │       └── OutputPathError   an output path that is not a regular file or absent (a FIFO, a
    │   │                             device, a directory, a symlink, another program's file)
    │   ├── ScenarioError             a scenario YAML that does not load (names file and line)
    │   ├── TemplateError             a prompt template that does not render
    │   └── MissingDependencyError    an optional extra is not installed (says the pip command)
    ├── PlanningError                 the conversation cannot be fitted to the backend's limits
    │   └── DocumentTooLargeError     the document alone exceeds the total input budget
    ├── InputError                    a document we cannot read (corrupt, empty, huge, unsupported)
    │   ├── DataFileError             a JSON (Lines) file chatocr reads (results, labels, schemas) that
    │   │                             is broken, nested too deeply, or of the wrong shape (file:line)
    │   ├── UnsupportedInputError     not an image or PDF we read (or an array of the wrong shape)
    │   ├── CorruptImageError         looks like an image/PDF but does not decode
    │   ├── EncryptedInputError       a password-protected PDF
    │   ├── EmptyImageError           a zero-byte file, a zero-size image, only blank pages, no pages
    │   ├── ImageTooLargeError        over the pixel limit (decompression bombs) or the byte limit
    │   └── TooManyPagesError         a PDF or TIFF with more pages than the page limit
    ├── OCRError                      an OCR engine failed on a readable input
    ├── OutputError                   chatocr could not write its output (disk full, file too large)
    ├── LLMError                      a chat backend failed; `retryable` says whether trying again may help
    │   ├── AuthenticationError       missing, wrong or expired credentials
    │   ├── RateLimitError            too many requests (carries retry_after when the service says)
    │   ├── ContextTooLongError       the input is too long for the model: re-plan with less
    │   ├── InvalidRequestError       the service refused the request as malformed
    │   ├── ServiceUnavailableError   5xx, overloaded, connection refused
    │   ├── LLMTimeoutError           no answer in time
    │   └── MalformedResponseError    the answer could not be understood
    ├── ExtractionError               the extraction loop could not produce a result
    ├── CalibrationError              labelled outcomes that cannot give a calibrated confidence
    └── MemoryStoreError              a memory store of reviewed examples that cannot be used as asked

Every error carries `hint`: one sentence telling the reader what to do next. `str(error)` includes it.
An error that ends one document's extraction carries what was done before it, `result` (the partial
Extraction; None for errors raised before a document was started). `error_record(exc)` is the one
JSON form of any failure, ours or not (`Extraction.error`, results files, the service, Ray).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the result type is only named here: errors sit below every other part
    from chatocr.extraction.result import Extraction

__all__ = [
    "AuthenticationError",
    "CalibrationError",
    "ChatOCRError",
    "ConfigError",
    "ContextTooLongError",
    "CorruptImageError",
    "DataFileError",
    "DocumentTooLargeError",
    "EmptyImageError",
    "EncryptedInputError",
    "ExtractionError",
    "ImageTooLargeError",
    "InputError",
    "InvalidRequestError",
    "LLMError",
    "LLMTimeoutError",
    "MalformedResponseError",
    "MemoryStoreError",
    "MissingDependencyError",
    "OCRError",
    "OutputError",
    "OutputPathError",
    "PlanningError",
    "RateLimitError",
    "ScenarioError",
    "SchemaError",
    "ServiceUnavailableError",
    "TemplateError",
    "TooManyPagesError",
    "UnknownOptionError",
    "UnsupportedInputError",
    "UsageError",
    "UserError",
    "as_chatocr_error",
    "error_record",
]

# What a failure that is not one of ours tells the reader: it is a bug to report, not their mistake.
BUG_HINT = "This is a bug in chatocr; please report it."


class ChatOCRError(Exception):
    """Base class of every error chatocr raises on purpose."""

    default_hint: str = ""
    # The partial result of the document this error ended (see `with_result`), else None.
    result: Extraction | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        super().__init__(message)

    def with_result(self, result: Extraction) -> ChatOCRError:
        """This error, carrying the partial result of the document it ended (for `raise ... from`)."""
        self.result = result
        return self

    def to_dict(self) -> dict[str, str]:
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UserError(ChatOCRError):
    """A mistake in what the caller gave us; running again unchanged will fail again."""


class ConfigError(UserError):
    default_hint = "Check the settings you passed (or `chatocr doctor` for what is available here)."


class SchemaError(ConfigError):
    """A typed request (pydantic model or JSON Schema) that cannot be mapped to fields."""

    default_hint = (
        "Use str, date/datetime, Decimal/float/int, Literal[...]/Enum, Optional[...], a nested model of "
        "those, or list[...] of those (see docs/typed.md)."
    )


class UnknownOptionError(ConfigError, TypeError):
    """An option, keyword argument or setting that does not exist: a misspelling, said with the
    nearest valid name. Raised alike for a Python keyword, a command-line flag, a config file key
    and a service request's member; also a TypeError, as Python's own for a bad keyword."""

    @classmethod
    def of(cls, name: str, valid: Iterable[str], *, hint: str | None = None) -> UnknownOptionError:
        choices = sorted(valid)
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        message = f"Unknown option {name!r}" + (f": did you mean {close[0]!r}?" if close else ".")
        return cls(message, hint=hint or f"The options are: {', '.join(choices)}.")


class UsageError(ConfigError):
    """Options that contradict each other or name an impossible path; `chatocr` exits 2 for these,
    as argparse does for its own usage errors."""

    default_hint = "See `chatocr COMMAND --help` for the options."


class ScenarioError(UserError):
    """A scenario file that does not load. `problems` lists every `file:line: message` found."""

    default_hint = "Fix the scenario file; `chatocr scenarios schema` prints the format for editors."

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message, hint=hint)


class TemplateError(UserError):
    default_hint = "Fix the prompt template named above; variables must exist (templates are strict)."


class MissingDependencyError(UserError, ImportError):
    """An optional part is not installed. The message names the pip command that installs it."""

    def __init__(self, what: str, extra: str, *, package: str | None = None) -> None:
        command = f'pip install "chatocr[{extra}]"'
        super().__init__(
            f"{what} needs the optional package {package or extra!r}, which is not installed.",
            hint=f"Install it with: {command}",
        )
        self.extra = extra


class PlanningError(ChatOCRError):
    default_hint = "Use a backend with larger limits, fewer keys, or a shorter document."


class DocumentTooLargeError(PlanningError):
    default_hint = (
        "The document alone does not fit the model's input budget: use a model with a larger context, "
        "or split the document (e.g. one PDF page at a time)."
    )


class InputError(ChatOCRError):
    default_hint = "Check the input named above: that it exists, is readable, and is the kind of file expected."


# What the image engines read (ocr/images.py), for the hints below.
IMAGE_FORMATS = "PNG, JPEG, TIFF, BMP, WebP, GIF or PDF"


class UnsupportedInputError(InputError):
    default_hint = f"Give a {IMAGE_FORMATS} file (or a PIL image / uint8 RGB array)."


class CorruptImageError(InputError):
    default_hint = "The file is damaged or truncated: re-export or re-download it."


class EncryptedInputError(InputError):
    default_hint = "The PDF is password-protected: save an unprotected copy (e.g. `qpdf --decrypt in.pdf out.pdf`)."


class EmptyImageError(InputError):
    default_hint = "The input has nothing to read: check that the right file was given."


class ImageTooLargeError(InputError):
    default_hint = "Downscale the image, or raise the limit (ImageLimits(max_pixels=..., max_bytes=...))."


class TooManyPagesError(InputError):
    default_hint = "Split the document, or raise the limit (ImageLimits(max_pages=...))."


class OCRError(ChatOCRError):
    default_hint = "Try another OCR engine (`--ocr`), or `chatocr doctor` to check the installed engines."


class OutputError(ChatOCRError):
    default_hint = "Free disk space (or choose another --out); the next run resumes where this one stopped."


class LLMError(ChatOCRError):
    """A chat backend failed. `retryable` tells the retry layer whether trying again may help."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None, provider: str | None = None) -> None:
        self.provider = provider
        super().__init__(message, hint=hint)


class AuthenticationError(LLMError):
    default_hint = "Set a valid API key or access token (see `chatocr doctor` for the variable to set)."


class RateLimitError(LLMError):
    retryable = True
    default_hint = "The service is rate-limiting: lower --concurrency, wait, or raise your quota."

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        hint: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, hint=hint, provider=provider)


class ContextTooLongError(LLMError):
    default_hint = "The input is too long for this model; chatocr re-plans with fewer examples when it can."


class InvalidRequestError(LLMError):
    default_hint = "The service refused the request; check the model name and settings."


class ServiceUnavailableError(LLMError):
    retryable = True
    default_hint = "The service is unavailable or unreachable; check the base URL and try again later."


class LLMTimeoutError(LLMError):
    retryable = True
    default_hint = "The model did not answer in time; raise the timeout or use a faster model."


class MalformedResponseError(LLMError):
    retryable = True
    default_hint = "The service answered something that is not a chat completion; check the base URL."


class ExtractionError(ChatOCRError):
    default_hint = "See the result's transcript and warnings for what the model answered."


class CalibrationError(ChatOCRError):
    """Fitting a calibrated confidence failed for what the labelled data is (too few documents,
    every value right), or an accept precision was asked of a scenario that has no calibration."""

    default_hint = "Fit the calibration on more labelled documents (docs/trust.md)."


class MemoryStoreError(ChatOCRError):
    """A memory store (chatocr.memory) that is read-only, damaged, from another chatocr version, or
    named with a path; raised only where the caller asked for the store itself (`chatocr memory`,
    adding a reviewed document). Extraction never fails for its memory: it goes on without it."""

    default_hint = "See `chatocr memory list` for the stores; give another one with --memory DIR."


class OutputPathError(UsageError):
    """An output path chatocr refuses before writing anything: it exists and is not a regular file
    (a FIFO, a device, a directory, a symlink), or it is a file chatocr did not write and must not
    replace (a user's workbook)."""

    default_hint = "Give --out the path of a new file, or of a regular file chatocr wrote before."


class DataFileError(InputError):
    """A JSON or JSON Lines file chatocr reads (a results file, a label file, a JSON Schema) that
    does not parse, nests too deeply, holds a number too long, or has members of the wrong type.
    The message names the file and the line."""

    default_hint = "Fix or remove the line named above (a results file: as written by `chatocr extract --out`)."


def as_chatocr_error(exc: BaseException) -> ChatOCRError:
    """`exc` when it is one of ours; anything else is a bug in chatocr, wrapped with it as the cause."""
    if isinstance(exc, ChatOCRError):
        return exc
    wrapped = ChatOCRError(f"{type(exc).__name__}: {exc}", hint=BUG_HINT)
    wrapped.__cause__ = exc
    return wrapped


def error_record(exc: BaseException, *, hint: str = BUG_HINT) -> dict[str, str]:
    """The JSON form of a failure: {"type", "message", "hint"}. A foreign exception is named as
    itself, with its message's first line (a worker's exception carries a whole remote traceback)
    and `hint` (what the caller knows of where it came from; by default: a bug to report)."""
    if isinstance(exc, ChatOCRError):
        return exc.to_dict()
    lines = str(exc).strip().splitlines()
    return {"type": type(exc).__name__, "message": lines[0] if lines else repr(exc), "hint": hint}
