"""Reading a request into a document and its options, for every shape the interface allows.

Multipart: the field `file` (an image, a PDF, or a .txt/.json of OCR text) and the form fields
`keys` (comma-separated or a JSON list), `scenario`, `scenario_yaml`, `schema` (JSON text),
`per_page`, and for chat `question` and `history` (JSON). JSON: `text` (OCR text, or a list of
lines `{"text", "box", "confidence"}`) or `image_base64`, with the same options as members. Every
mistake is a 400 that names the field, never FastAPI's default 422 dump.

Two steps, so the event loop never does a hostile request's CPU work: `receive` reads the body on
the loop (I/O: a JSON body's bytes, or the form's fields and files), and `parse_extract` /
`parse_chat` turn it into a document and a request in a worker thread (JSON through chatocr's
bounded reader, the body's model, OCR text, base64, inline scenario YAML, the request's schema).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError, DataFileError, UnknownOptionError
from chatocr.extraction.request import ExtractionRequest
from chatocr.fileio import parse_json
from chatocr.ocr.images import ImageLimits
from chatocr.ocr.layout import MAX_LINES_PER_PAGE
from chatocr.ocr.registry import TEXT_SUFFIXES
from chatocr.ocr.text import TextEngine
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.model import Scenario
from chatocr.serve.errors import ServeError, from_chatocr_error
from chatocr.serve.scenarios import served_request, served_scenario

__all__ = [
    "BODY",
    "CHAT_FORM",
    "EXTRACT_FORM",
    "MAX_FORM_FIELDS",
    "UNDECODED",
    "ChatBody",
    "ChatInput",
    "Document",
    "ExtractBody",
    "ExtractInput",
    "Form",
    "Received",
    "bytes_document",
    "check_fits",
    "document_name",
    "invalid_body",
    "json_body",
    "json_field",
    "keys_field",
    "model_chars",
    "not_json",
    "parse_chat",
    "parse_extract",
    "receive",
    "refuse_unknown_members",
]

_BAD = "RequestError"
# A name is a label in the result (`input.path`), never a path on the server; still, a client's
# folders, control characters (a terminal escape, a NUL) or an endless name are refused, not shown.
MAX_NAME_CHARS = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAME_HINT = "Send the file's own name: no folders, no control characters, at most 255 characters."
_SHOWN = 60  # characters of a client's string quoted back in a message
MAX_TEXT_NEWLINES = 4 * MAX_LINES_PER_PAGE
MAX_CHARS_PER_TOKEN = 8  # see check_fits
MAX_FORM_FIELDS = 16  # a route has at most 5 fields; a few more are refused by name (did you mean?)


class ExtractBody(BaseModel):
    """The JSON body of POST /v1/extract: one of `text` or `image_base64`, and what to extract."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    text: str | list[dict[str, Any] | str] | None = Field(None, description="OCR text, or a list of lines")
    image_base64: str | None = Field(None, description="an image or PDF, base64-encoded")
    filename: str | None = Field(None, description="a name for the document in the result")
    keys: list[str] | str | None = Field(None, description="fields to extract (default: the scenario's)")
    scenario: str | None = Field(None, description='a scenario name of this server, or "auto" to route')
    scenario_yaml: str | None = Field(None, description="your own scenario as YAML text, for this request only")
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="a JSON Schema of the result")
    per_page: bool = Field(False, description="one result per PDF page")


class ChatBody(BaseModel):
    """The JSON body of POST /v1/chat: the document, the question, and the history so far."""

    model_config = ConfigDict(extra="forbid")

    text: str | list[dict[str, Any] | str] | None = None
    image_base64: str | None = None
    filename: str | None = None
    scenario: str | None = None
    scenario_yaml: str | None = None
    question: str
    history: list[tuple[str, str]] = Field(default_factory=list, description="[[question, answer], ...]")


@dataclass
class Document:
    source: OCRDocument | bytes  # OCR text parsed already, or the bytes for the OCR engine
    name: str
    sha256: str


@dataclass
class ExtractInput:
    """What POST /v1/extract was sent, resolved: the document and its request."""

    document: Document
    request: ExtractionRequest


@dataclass
class ChatInput:
    """What POST /v1/chat was sent: the document, the question, the history, the scenario."""

    document: Document
    question: str
    history: list[tuple[str, str]]
    scenario: Scenario | None


@dataclass(frozen=True)
class Form:
    """What a multipart body of one route may hold: its text fields, how many `file` fields, and
    what to tell a client who sends more."""

    fields: tuple[str, ...]
    max_files: int
    files_hint: str


EXTRACT_FORM = Form(
    ("keys", "scenario", "scenario_yaml", "schema", "per_page"),
    1,
    "Send one document per request as the field `file` (POST /v1/jobs takes several).",
)
CHAT_FORM = Form(
    ("question", "history", "scenario", "scenario_yaml"),
    1,
    "Send one document per question as the field `file`.",
)


UNDECODED: Any = object()  # Received.decoded before (or without) decoding


@dataclass
class Received:
    """A request's body as read from the client: JSON bytes (a large one decoded already, see
    serve/decoding.py), or a form."""

    body: bytes | None = None
    decoded: Any = UNDECODED
    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (checked name, content)


def _bad(message: str, hint: str) -> ServeError:
    return ServeError(400, _BAD, message, hint)


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


async def receive(request: Request, form: Form) -> Received:
    """The body, read on the event loop (I/O only): a JSON body's bytes, or a form's text fields
    and files. The form's own limits (files, fields, a part's size) are 400s with chatocr's shape."""
    if not _is_multipart(request):
        return Received(body=await request.body())
    try:
        parsed = await request.form(max_files=form.max_files, max_fields=MAX_FORM_FIELDS)
    except HTTPException as exc:  # starlette's wording of the multipart parser's limits and errors
        detail = str(exc.detail)
        if detail.startswith("Too many files"):
            raise _bad(detail, form.files_hint) from None
        if detail.startswith("Too many fields"):
            raise _bad(detail, f"The fields are: file, {', '.join(form.fields)}.") from None
        raise _bad(
            f"The multipart body is not readable: {detail}", "Send multipart/form-data as curl -F does."
        ) from None
    received = Received()
    try:
        for name, value in parsed.multi_items():
            if isinstance(value, UploadFile):
                if name != "file":
                    raise _unknown(name, ["file", *form.fields])
                received.files.append((document_name(value.filename, "upload"), await value.read()))
            elif name == "file":
                raise _bad("The field `file` must be a file upload.", "Send the document as multipart field `file`.")
            elif name in received.fields:
                raise _bad(f"The field {_shown(name)} is given twice.", "Send each field once.")
            else:
                received.fields[name] = value
    finally:
        await parsed.close()
    unknown = sorted(set(received.fields) - set(form.fields))
    if unknown:
        raise _unknown(unknown[0], ["file", *form.fields])
    return received


def _unknown(name: str, valid: Sequence[str]) -> ServeError:
    """A member or field the request does not have is a misspelled option: said as anywhere else."""
    if len(name) > _SHOWN:
        return _bad(f"Unknown option {_shown(name)}.", f"The options are: {', '.join(sorted(valid))}.")
    return from_chatocr_error(UnknownOptionError.of(name, valid))


def document_name(name: str | None, default: str) -> str:
    """A client's name for its document, as the result shows it; refused when it is not a name."""
    if not name:
        return default
    if len(name) > MAX_NAME_CHARS or _CONTROL.search(name) or "/" in name or "\\" in name or name in (".", ".."):
        raise _bad(f"The file name {_shown(name)} is not a file's name.", _NAME_HINT)
    return name


BODY = "The request body"


def json_body(received: Received) -> Any:
    """A request body as JSON, read by chatocr's bounded reader (depth, number length, duplicate
    members): a 400 naming the problem, never a RecursionError or a silently dropped member. A
    large body arrives decoded already (serve/decoding.py)."""
    if received.decoded is not UNDECODED:
        return received.decoded
    assert received.body is not None
    return json_field(BODY, received.body, object)


def not_json(name: str, problem: str) -> ServeError:
    """The 400 for JSON that chatocr's bounded reader refused (`problem` is its DataFileError's words)."""
    return _bad(problem, f"Send {name[0].lower() + name[1:]} as JSON, as the API documents (see /docs).")


def json_field(name: str, value: str | bytes, kind: type) -> Any:
    """`value` parsed as JSON of type `kind` (dict, list, or object for any)."""
    try:
        parsed = parse_json(value, name, unique_members=True)
    except DataFileError as exc:
        raise not_json(name, exc.message) from None
    if not isinstance(parsed, kind):
        raise _bad(f"{name} must be a JSON {kind.__name__}.", f"Send {name} as JSON text.")
    return parsed


def refuse_unknown_members(exc: ValidationError, body: type[BaseModel]) -> None:
    """A member the body does not have is a misspelled option: said as it is said anywhere else."""
    for error in exc.errors():
        if error["type"] == "extra_forbidden" and error["loc"]:
            names = {info.alias or name for name, info in body.model_fields.items()}
            raise _unknown(str(error["loc"][-1]), sorted(names))


def _problems(exc: ValidationError) -> str:
    """The first few problems (a list of a million wrong items is one problem said five times)."""
    errors = exc.errors(include_url=False, include_input=False)
    said = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors[:5]]
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    return "; ".join(said)[:2000] + more


def invalid_body(exc: ValidationError, body: type[BaseModel], hint: str) -> ServeError:
    """The answer for a body its model refuses: a misspelled member by name, else its problems."""
    refuse_unknown_members(exc, body)
    return _bad(f"Invalid request: {_problems(exc)}", hint)


def _check_lines(lines: int, limit: int, name: str) -> None:
    if lines > limit:
        raise ServeError(
            400,
            "DocumentTooLargeError",
            f"{name} has {lines:,} lines, over the limit of {limit:,}.",
            "Split the document into smaller parts (e.g. one page or section per file).",
        )


def text_document(content: str | list[Any], name: str, limits: ImageLimits, most_chars: int | None = None) -> Document:
    """OCR text (or a list of lines) as a document. Counted before it is parsed, by scans that
    are cheap where parsing is not: the text engine splits all of a text into lines before it
    counts them (for 16 MB, a call holding Python's lock for a tenth of a second while the event
    loop waits), so a text of more than four times the page limit in lines, blank ones included
    (OCR text has few), or of more characters than `most_chars` (its characters other than
    whitespace: fewer than its lines hold) is refused first. A JSON text is counted once parsed."""
    if isinstance(content, list):
        _check_lines(len(content), MAX_LINES_PER_PAGE, name)
        texts = (item.get("text", "") if isinstance(item, dict) else item for item in content)
        _check_chars(sum(len(text) for text in texts if isinstance(text, str)), most_chars, name)
    else:
        _check_lines(content.count("\n"), MAX_TEXT_NEWLINES, name)
        if not content.lstrip().startswith(("{", "[")):
            _check_chars(len(content) - sum(content.count(space) for space in " \t\r\n\f\v"), most_chars, name)
    raw = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    try:
        document = TextEngine(limits=limits).read_text(raw, source=name, sha256=digest)
    except ChatOCRError as exc:
        raise ServeError(400, type(exc).__name__, exc.message, exc.hint) from None
    return Document(document, name, digest)


def bytes_document(data: bytes, name: str, limits: ImageLimits, most_chars: int | None = None) -> Document:
    if PurePath(name).suffix.lower() in TEXT_SUFFIXES:
        try:
            content = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _bad(f"{name} is not UTF-8 text.", "Send OCR text as UTF-8, or an image as an image.") from None
        return text_document(content, name, limits, most_chars)
    return Document(data, name, hashlib.sha256(data).hexdigest())


def keys_field(value: Any) -> list[str] | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        stripped = value.strip()
        value = json_field("keys", stripped, list) if stripped.startswith("[") else stripped.split(",")
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise _bad("keys must be a list of strings.", 'Send keys as "a,b,c" or ["a", "b", "c"].')
    keys = [k.strip() for k in value if k.strip()]
    return keys or None


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise _bad(f"per_page must be true or false, got {_shown(str(value))}.", "Send per_page=true or per_page=false.")


def _document_from(body: ExtractBody | ChatBody, limits: ImageLimits, most_chars: int | None) -> Document:
    if (body.text is None) == (body.image_base64 is None):
        raise _bad(
            "Give exactly one of `text` and `image_base64`.",
            "Send OCR text as `text`, an image or PDF as `image_base64`, or upload it as multipart `file`.",
        )
    if body.text is not None:
        return text_document(body.text, document_name(body.filename, "text"), limits, most_chars)
    name = document_name(body.filename, "image")
    try:
        data = base64.b64decode(body.image_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise _bad("image_base64 is not valid base64.", "Encode the file's bytes with standard base64.") from None
    return bytes_document(data, name, limits)


def model_chars(ocr: ChatOCR) -> int | None:
    """The most characters of OCR text the server's model can read in one request, or None.

    The pipeline finds out that a document does not fit only after laying out, indexing and
    ranking all of its text on the event loop: seconds for a few megabytes, while every other
    request waits. Counting characters first, while the body is parsed, refuses it
    before. A character-counted model (ERNIE's limits) is bounded exactly; for a tokenizer, no
    text averages more than MAX_CHARS_PER_TOKEN characters a token (English about 4, numbers 3,
    Chinese 1), so nothing that could fit is refused."""
    limits, counter = ocr.pipeline.limits, ocr.pipeline.counter
    budget = limits.input_token_budget()
    per_token = 1 if counter.name == "chars" else MAX_CHARS_PER_TOKEN
    bounds = [b for b in (limits.max_input_chars, budget * per_token if budget else None) if b is not None]
    return min(bounds) if bounds else None


def _check_chars(chars: int, most: int | None, name: str) -> None:
    if most is not None and chars > most:
        raise ServeError(
            422,
            "DocumentTooLargeError",
            f"{name} holds {chars:,} characters of text; this server's model reads at most about {most:,} "
            "in one request.",
            "Split the document (one page or section per request), or ask the operator for a model "
            "with a larger context.",
        )


def check_fits(document: Document, most: int | None, *, per_page: bool = False) -> None:
    """422 for parsed OCR text its model cannot read in one request (each page, with per_page)."""
    if isinstance(document.source, OCRDocument):  # an image or a PDF: known after OCR, which limits bound
        pages = [sum(len(line.text) for line in page.lines) for page in document.source.pages]
        _check_chars(max(pages, default=0) if per_page else sum(pages), most, document.name)


def _uploaded(received: Received, limits: ImageLimits, most_chars: int | None) -> Document:
    if not received.files:
        raise _bad("The multipart body has no field `file`.", "Upload the document as multipart field `file`.")
    name, data = received.files[0]
    return bytes_document(data, name, limits, most_chars)


def parse_extract(received: Received, ocr: ChatOCR, limits: ImageLimits) -> ExtractInput:
    """POST /v1/extract's document and request (run in a worker thread: it parses and maps)."""
    most = model_chars(ocr)
    if received.body is None:
        fields = received.fields
        document = _uploaded(received, limits, most)
        scenario = served_scenario(ocr, fields.get("scenario"), fields.get("scenario_yaml"))
        schema = json_field("schema", fields["schema"], dict) if fields.get("schema") else None
        per_page = _flag(fields.get("per_page"))
        check_fits(document, most, per_page=per_page)
        options = {"schema": schema, "per_page": per_page}
        return ExtractInput(document, served_request(ocr, keys_field(fields.get("keys")), scenario, **options))
    try:
        body = ExtractBody.model_validate(json_body(received))
    except ValidationError as exc:
        hint = "Members: text or image_base64, filename, keys, scenario or scenario_yaml, schema, per_page (see /docs)."
        raise invalid_body(exc, ExtractBody, hint) from None
    document = _document_from(body, limits, most)
    check_fits(document, most, per_page=body.per_page)
    scenario = served_scenario(ocr, body.scenario, body.scenario_yaml)
    options = {"schema": body.json_schema, "per_page": body.per_page}
    return ExtractInput(document, served_request(ocr, keys_field(body.keys), scenario, **options))


def parse_chat(received: Received, ocr: ChatOCR, limits: ImageLimits) -> ChatInput:
    """POST /v1/chat's document, question, history and scenario (in a worker thread)."""
    most = model_chars(ocr)
    if received.body is None:
        fields = received.fields
        document = _uploaded(received, limits, most)
        history = json_field("history", fields["history"], list) if fields.get("history") else []
        values = {"text": "-", "question": fields.get("question", ""), "history": history}  # `text`: the file
        try:
            body = ChatBody.model_validate(values)
        except ValidationError as exc:
            raise invalid_body(exc, ChatBody, "Fields: file, question, history, scenario or scenario_yaml.") from None
        scenario = served_scenario(ocr, fields.get("scenario"), fields.get("scenario_yaml"))
        check_fits(document, most)
        return ChatInput(document, body.question, body.history, scenario)
    try:
        body = ChatBody.model_validate(json_body(received))
    except ValidationError as exc:
        hint = "Members: text or image_base64, question, history [[q, a], ...], scenario or scenario_yaml."
        raise invalid_body(exc, ChatBody, hint) from None
    scenario = served_scenario(ocr, body.scenario, body.scenario_yaml)
    document = _document_from(body, limits, most)
    check_fits(document, most)
    return ChatInput(document, body.question, body.history, scenario)
