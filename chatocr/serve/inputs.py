"""Reading a request into a document and its options, for every shape the interface allows.

Multipart: the field `file` (an image, a PDF, or a .txt/.json of OCR text) and the form fields
`keys` (comma-separated or a JSON list), `scenario`, `schema` (JSON text), `per_page`, and for chat
`question` and `history` (JSON). JSON: `text` (OCR text, or a list of lines `{"text", "box",
"confidence"}`) or `image_base64`, with the same options as fields. Every mistake is a 400 that
names the field, never FastAPI's default 422 dump.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError, UnknownOptionError
from chatocr.extraction.request import ExtractionRequest
from chatocr.ocr.images import ImageLimits
from chatocr.ocr.registry import TEXT_SUFFIXES
from chatocr.ocr.text import TextEngine
from chatocr.ocr.types import OCRDocument
from chatocr.serve.errors import ServeError, from_chatocr_error

__all__ = [
    "ChatBody",
    "Document",
    "ExtractBody",
    "ExtractInput",
    "keys_field",
    "read_chat",
    "read_extract",
    "served_request",
]

_BAD = "RequestError"


class ExtractBody(BaseModel):
    """The JSON body of POST /v1/extract: one of `text` or `image_base64`, and what to extract."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    text: str | list[dict[str, Any] | str] | None = Field(None, description="OCR text, or a list of lines")
    image_base64: str | None = Field(None, description="an image or PDF, base64-encoded")
    filename: str | None = Field(None, description="a name for the document in the result")
    keys: list[str] | str | None = Field(None, description="fields to extract (default: the scenario's)")
    scenario: str | None = Field(None, description='a scenario name, or "auto" to route')
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="a JSON Schema of the result")
    per_page: bool = Field(False, description="one result per PDF page")


class ChatBody(BaseModel):
    """The JSON body of POST /v1/chat: the document, the question, and the history so far."""

    model_config = ConfigDict(extra="forbid")

    text: str | list[dict[str, Any] | str] | None = None
    image_base64: str | None = None
    filename: str | None = None
    scenario: str | None = None
    question: str
    history: list[tuple[str, str]] = Field(default_factory=list, description="[[question, answer], ...]")


@dataclass
class Document:
    source: OCRDocument | bytes  # OCR text parsed already, or the bytes for the OCR engine
    name: str
    sha256: str


@dataclass
class ExtractInput:
    """What POST /v1/extract was sent: the document, and the options of its request as given."""

    document: Document
    keys: list[str] | None = None
    scenario: str | None = None
    schema: dict[str, Any] | None = None
    per_page: bool = False


def served_request(ocr: ChatOCR, keys: list[str] | None, scenario: str | None, **options: Any) -> ExtractionRequest:
    """A request's options resolved by the constructor every caller uses (ChatOCR.request): a
    mistake is a 400 with the same words as anywhere else, before any work is queued."""
    try:
        return ocr.request(keys, scenario, **options)
    except ChatOCRError as exc:
        raise from_chatocr_error(exc) from None


def _bad(message: str, hint: str) -> ServeError:
    return ServeError(400, _BAD, message, hint)


def _refuse_unknown_members(exc: ValidationError, body: type[BaseModel]) -> None:
    """A member the body does not have is a misspelled option: said as it is said anywhere else."""
    for error in exc.errors():
        if error["type"] == "extra_forbidden" and error["loc"]:
            names = {info.alias or name for name, info in body.model_fields.items()}
            raise from_chatocr_error(UnknownOptionError.of(str(error["loc"][-1]), names))


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())


def text_document(content: str | list[Any], name: str, limits: ImageLimits) -> Document:
    raw = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    try:
        document = TextEngine(limits=limits).read_text(raw, source=name, sha256=digest)
    except ChatOCRError as exc:
        raise ServeError(400, type(exc).__name__, exc.message, exc.hint) from None
    return Document(document, name, digest)


def bytes_document(data: bytes, name: str, limits: ImageLimits) -> Document:
    if PurePath(name).suffix.lower() in TEXT_SUFFIXES:
        try:
            content = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _bad(f"{name} is not UTF-8 text.", "Send OCR text as UTF-8, or an image as an image.") from None
        return text_document(content, name, limits)
    return Document(data, name, hashlib.sha256(data).hexdigest())


def keys_field(value: Any) -> list[str] | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                raise _bad("keys is not a JSON list.", 'Send keys as "a,b,c" or ["a", "b", "c"].') from None
        else:
            value = stripped.split(",")
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise _bad("keys must be a list of strings.", 'Send keys as "a,b,c" or ["a", "b", "c"].')
    keys = [k.strip() for k in value if k.strip()]
    return keys or None


def _json_field(name: str, value: Any, kind: type) -> Any:
    if value is None or isinstance(value, kind):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        raise _bad(f"{name} is not valid JSON.", f"Send {name} as JSON text.") from None
    if not isinstance(parsed, kind):
        raise _bad(f"{name} must be a JSON {kind.__name__}.", f"Send {name} as JSON text.")
    return parsed


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise _bad(f"per_page must be true or false, got {value!r}.", "Send per_page=true or per_page=false.")


async def _form(request: Request) -> tuple[Document | None, dict[str, Any]]:
    form = await request.form(max_files=1, max_fields=16)
    upload = form.get("file")
    fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
    if upload is None:
        return None, fields
    if not isinstance(upload, UploadFile):
        raise _bad("The field `file` must be a file upload.", "Send the document as multipart field `file`.")
    data = await upload.read()
    limits = request.app.state.service.limits
    return bytes_document(data, upload.filename or "upload", limits), fields


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad("The request body is not valid JSON.", "Send application/json, or multipart with `file`.") from None


def _document_from(body: ExtractBody | ChatBody, limits: ImageLimits) -> Document:
    if (body.text is None) == (body.image_base64 is None):
        raise _bad(
            "Give exactly one of `text` and `image_base64`.",
            "Send OCR text as `text`, an image or PDF as `image_base64`, or upload it as multipart `file`.",
        )
    if body.text is not None:
        return text_document(body.text, body.filename or "text", limits)
    try:
        data = base64.b64decode(body.image_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise _bad("image_base64 is not valid base64.", "Encode the file's bytes with standard base64.") from None
    return bytes_document(data, body.filename or "image", limits)


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_extract(request: Request) -> ExtractInput:
    limits = request.app.state.service.limits
    if _is_multipart(request):
        document, fields = await _form(request)
        if document is None:
            raise _bad("The multipart body has no field `file`.", "Upload the document as multipart field `file`.")
        unknown = sorted(set(fields) - {"keys", "scenario", "schema", "per_page"})
        if unknown:
            raise from_chatocr_error(
                UnknownOptionError.of(unknown[0], ["file", "keys", "scenario", "schema", "per_page"])
            )
        return ExtractInput(
            document,
            keys_field(fields.get("keys")),
            fields.get("scenario") or None,
            _json_field("schema", fields.get("schema"), dict),
            _flag(fields.get("per_page")),
        )
    try:
        body = ExtractBody.model_validate(await _json(request))
    except ValidationError as exc:
        _refuse_unknown_members(exc, ExtractBody)
        raise _bad(
            f"Invalid request: {_problems(exc)}",
            "Fields: text or image_base64, keys, scenario, schema, per_page (see /docs).",
        ) from None
    return ExtractInput(
        _document_from(body, limits), keys_field(body.keys), body.scenario or None, body.json_schema, body.per_page
    )


async def read_chat(request: Request) -> tuple[Document, ChatBody]:
    limits = request.app.state.service.limits
    if _is_multipart(request):
        document, fields = await _form(request)
        if document is None:
            raise _bad("The multipart body has no field `file`.", "Upload the document as multipart field `file`.")
        try:
            body = ChatBody.model_validate(
                {
                    "text": "-",  # the uploaded file is the document; `text` only satisfies the model
                    "question": fields.get("question", ""),
                    "scenario": fields.get("scenario") or None,
                    "history": _json_field("history", fields.get("history"), list) or [],
                }
            )
        except ValidationError as exc:
            raise _bad(f"Invalid request: {_problems(exc)}", "Fields: file, question, history, scenario.") from None
        return document, body
    try:
        body = ChatBody.model_validate(await _json(request))
    except ValidationError as exc:
        _refuse_unknown_members(exc, ChatBody)
        raise _bad(
            f"Invalid request: {_problems(exc)}",
            "Fields: text or image_base64, question, history [[q, a], ...], scenario.",
        ) from None
    return _document_from(body, limits), body
