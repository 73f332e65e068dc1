"""One extraction request, resolved once.

What a caller asks of every document of one call (`ChatOCR.extract`, `extract_many`,
`extract_pages`, `chatocr extract`, a service request, a Ray actor's batch) is decided here, in
one constructor, `resolve_request`, before any OCR or model call: the keys parsed, the scenario
resolved (or "auto": routed per document), the schema mapped to fields, the confidence
thresholds, the classifier on or off, the plan policy, one result per page or per file, how many
documents in flight. A mistake in any of them is one typed error here, with the same words on
every path; the pipeline then takes the `ExtractionRequest` and decides none of it again.

    request = resolve_request(pipeline, "company,total:amount", "retail_receipt", min_confidence=0.8)
    result, error = await pipeline.extract("receipt.jpg", request)

The options a caller may give besides keys and scenario are `RequestOptions`' keys: typed keyword
arguments in Python (`**options: Unpack[RequestOptions]`), checked by name at run time too, so a
misspelled option says which one was meant (`check_option_names`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import BaseModel

from chatocr.config import check_concurrency, check_min_confidence
from chatocr.conversation.planner import PlanPolicy
from chatocr.errors import ConfigError, SchemaError, UnknownOptionError
from chatocr.extraction.trust import AcceptOptions
from chatocr.extraction.typed_request import MinConfidence, TypedRequest
from chatocr.scenarios.keys import as_keys, split_keys
from chatocr.scenarios.model import FieldSpec, Scenario
from chatocr.typed.references import check_schema_size, resolve_pointer
from chatocr.typed.schema import TypedSchema, typed_schema

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

if TYPE_CHECKING:
    from chatocr.extraction.pipeline import ExtractionPipeline

__all__ = [
    "AUTO",
    "MAX_KEYS",
    "AskOptions",
    "ExtractOptions",
    "ExtractionRequest",
    "Keys",
    "ManyOptions",
    "PageOptions",
    "RequestOptions",
    "ScenarioSpec",
    "check_option_names",
    "resolve_request",
]

AUTO = "auto"  # the scenario "name" that means: route each document
# More keys than this in one request is never one extraction (500 keys are a task of ~16k tokens
# before the document), and millions of them (a 20 MB service request) would cost seconds of CPU
# before any other check: refused first, by count. A schema's properties count alike.
MAX_KEYS = 500

Keys = Iterable[str | FieldSpec] | str | type[BaseModel] | dict[str, Any] | None
ScenarioSpec = str | Path | Scenario | None
SchemaSpec = type[BaseModel] | dict[str, Any] | TypedSchema | None


class AskOptions(TypedDict, total=False):
    """The options of a typed answer (ChatSession.ask(question, schema=...)), each defaulting to
    the config's.

    min_confidence: a grounded value below it is `low_confidence` (a number, or one per field).
    include_low_confidence: keep such values in `result.data`.
    classify: ask the LLM classifier when the local pre-score is not confident.
    policy: how the conversation is laid out (packing, re-statement, examples, order).
    """

    min_confidence: MinConfidence
    include_low_confidence: bool
    classify: bool | None
    policy: PlanPolicy | None


class ExtractOptions(AskOptions, total=False):
    """The options of one extraction besides its keys and scenario.

    schema: a pydantic model or JSON Schema: `result.data` is then an instance of it.
    question: a chat question the typed answer is for (what ChatSession.ask passes).
    accept_precision: the review queue's rule: a field is accepted unseen when its calibrated
        confidence is at the threshold the scenario's calibration held out at this precision (0.99).
    accept_threshold: instead, accept at confidence >= this number.
    Both default to the scenario's own (its YAML), then the config's (docs/trust.md).
    """

    schema: SchemaSpec
    question: str
    accept_precision: float | None
    accept_threshold: float | None


class ManyOptions(ExtractOptions, total=False):
    """concurrency: documents (or pages) in flight."""

    concurrency: int | None


class PageOptions(ManyOptions, total=False):
    """pages: only these page numbers (1-based)."""

    pages: Iterable[int] | None


class RequestOptions(PageOptions, total=False):
    """per_page: one result per PDF page or TIFF frame (`chatocr extract --per-page`, the service)."""

    per_page: bool | None


OPTION_NAMES = frozenset(RequestOptions.__required_keys__ | RequestOptions.__optional_keys__)


def check_option_names(options: Mapping[str, object], valid: Iterable[str] = OPTION_NAMES) -> None:
    """UnknownOptionError for the first option that is not one of `valid`, naming the nearest."""
    choices = sorted(valid)
    for name in options:
        if name not in choices:
            raise UnknownOptionError.of(name, choices)


@dataclass(frozen=True)
class ExtractionRequest:
    """What every document of one call is asked, decided once (see `resolve_request`)."""

    keys: tuple[str | FieldSpec, ...] | None  # as asked: names, or FieldSpecs written in the key syntax
    scenario: Scenario | None  # None: "auto", each document is routed
    typed: TypedRequest = field(default_factory=TypedRequest)  # schema, min_confidence, question
    classify: bool = True
    policy: PlanPolicy = field(default_factory=PlanPolicy)
    per_page: bool = False
    pages: frozenset[int] | None = None
    concurrency: int = 4
    accept: AcceptOptions = field(default_factory=AcceptOptions)  # the review queue's rule

    @property
    def field_names(self) -> list[str] | None:
        """The names of the fields every result will have, when known before routing (a schema,
        keys, or a named scenario's fields); None when they depend on the routed scenario."""
        if self.typed.schema is not None:
            return [f.name for f in self.typed.schema.fields]
        if self.keys:
            return [k.name if isinstance(k, FieldSpec) else str(k) for k in self.keys]
        if self.scenario is not None:
            return [f.name for f in self.scenario.fields]
        return None


def resolve_request(
    pipeline: ExtractionPipeline,
    keys: Keys = None,
    scenario: ScenarioSpec = None,
    **options: Unpack[RequestOptions],
) -> ExtractionRequest:
    """The one constructor of an `ExtractionRequest` (the API, the CLI, the service and Ray actors
    all come here). keys: names, FieldSpecs, text in the key syntax ("company,total:amount=final
    total"), or the schema itself (keys=Model); scenario: a name, a YAML path, a Scenario, or
    None/"auto". Raises the typed error of the first mistake, before any OCR or model call."""
    check_option_names(options)
    config = pipeline.config
    schema = options.get("schema")
    if schema is None and (isinstance(keys, dict) or (isinstance(keys, type) and issubclass(keys, BaseModel))):
        schema, keys = keys, None
    _check_key_count(keys)
    parsed = as_keys(keys)  # type: ignore[arg-type]  # dicts and models were taken above
    min_confidence = options.get("min_confidence")
    min_confidence = config.min_confidence if min_confidence is None else min_confidence
    check_min_confidence(min_confidence)
    concurrency = options.get("concurrency")
    concurrency = config.concurrency if concurrency is None else concurrency
    check_concurrency(concurrency)
    if isinstance(schema, dict):
        _check_schema_properties(schema)
    typed = TypedRequest(
        typed_schema(schema) if schema is not None else None,
        dict(min_confidence) if isinstance(min_confidence, Mapping) else min_confidence,
        bool(options.get("include_low_confidence", False)),
        str(options.get("question", "")),
    )
    per_page = options.get("per_page")
    pages = options.get("pages")
    classify = options.get("classify")
    policy = options.get("policy")
    accept = AcceptOptions.of(config, options.get("accept_threshold"), options.get("accept_precision"))
    return ExtractionRequest(
        keys=None if parsed is None else tuple(parsed),
        scenario=named_scenario(pipeline, scenario),
        typed=typed,
        classify=config.classify if classify is None else bool(classify),
        policy=pipeline.policy if policy is None else policy,
        per_page=config.per_page if per_page is None else bool(per_page),
        pages=None if pages is None else _page_numbers(pages),
        concurrency=concurrency,
        accept=accept,
    )


def named_scenario(pipeline: ExtractionPipeline, spec: ScenarioSpec) -> Scenario | None:
    """The scenario the caller named, or a scenario YAML file (which joins the library, as a user
    directory would); None for "auto"/None (route each document). Unknown names raise a
    ScenarioError with suggestions.

    A Scenario object is the caller's own: it is used for this request as it is and does not join
    the shared library (ExampleBank ranks its examples on their own), so one caller's scenario is
    never listed, routed to or used for another caller's requests (the service's inline YAML)."""
    if spec is None or (isinstance(spec, str) and spec.strip() in ("", AUTO)):
        return None
    if isinstance(spec, Scenario):
        return spec
    return pipeline.library.resolve(spec)


def _check_key_count(keys: object) -> None:
    """ConfigError for more than MAX_KEYS keys, counted before any is parsed."""
    count = len(split_keys(keys)) if isinstance(keys, str) else len(keys) if isinstance(keys, Sized) else 0
    if count > MAX_KEYS:
        raise ConfigError(
            f"{count} keys asked in one request; at most {MAX_KEYS}.",
            hint="Ask for fewer keys at a time (several extractions of the same document).",
        )


def _check_schema_properties(schema: dict[str, Any]) -> None:
    """SchemaError for a JSON Schema asking more than MAX_KEYS properties (nested objects' and
    line items' included), counted before it is mapped: mapping 9,000 of them costs seconds of
    CPU in calls that hold Python's lock for a tenth of a second each (the service's event loop
    waits on them), no extraction asks that many, and the pipeline's own work grows with them."""
    check_schema_size(schema)  # the document's own limits first (values, depth), with their words
    if _schema_property_count(schema, MAX_KEYS) > MAX_KEYS:
        raise SchemaError(
            f"The JSON Schema asks for more than {MAX_KEYS} properties (nested ones included).",
            hint="Ask for fewer fields at a time: several extractions of the same document, each with part of them.",
        )


_NOT_SCHEMAS = frozenset({"enum", "const", "default", "examples", "example", "$defs", "definitions"})


def _schema_property_count(schema: dict[str, Any], limit: int) -> int:
    """The members of every `properties` object in `schema`, a definition reached by a local
    `$ref` counted once (the reference checks of the mapping say what a bad one is), stopping
    past `limit`. Definitions nobody refers to are not counted."""
    count, stack, seen = 0, [schema], set()
    while stack and count <= limit:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            properties = node.get("properties")
            count += len(properties) if isinstance(properties, dict) else 0
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#") and ref not in seen:
                seen.add(ref)
                with contextlib.suppress(SchemaError):
                    stack.append(resolve_pointer(schema, ref))
            stack.extend(value for key, value in node.items() if key not in _NOT_SCHEMAS)
    return count


def _page_numbers(pages: Iterable[int]) -> frozenset[int]:
    numbers = frozenset(pages)
    bad = sorted(n for n in numbers if not isinstance(n, int) or isinstance(n, bool) or n < 1)
    if bad:
        raise ConfigError(f"pages are numbered from 1, got {bad[0]!r}.", hint="Give page numbers 1, 2, ...")
    return numbers
