"""ChatOCR: the product's main job behind one object.

    from chatocr import ChatOCR
    ocr = ChatOCR()                                   # offline defaults: RapidOCR + the local model
    result = ocr.extract("receipt.jpg", keys=["company", "total"])
    result.values, result.fields["total"].status, result.fields["total"].evidence

    for result in ocr.extract_many(paths, concurrency=4):   # as each finishes; failures included
        ...
    session = ocr.chat("invoice.png"); session.ask("Who is the seller?")

The core is async (`aextract`, `aextract_many`, `achat`); the sync methods run it on one event loop
owned by this object, in a background thread, so they also work inside Jupyter or a running loop.
Every method takes the same typed keyword options as its twin (`RequestOptions` in
extraction/request.py); a misspelled one is an `UnknownOptionError` naming the nearest, before any
OCR or model call. What a call asks is resolved once into an `ExtractionRequest`
(`ChatOCR.request(...)`), which the CLI, the service and Ray actors build the same way and may pass
as `request=`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import queue
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from chatocr import progress
from chatocr.bridge import LoopThread as _LoopThread  # one event loop in a daemon thread for the sync API
from chatocr.config import ChatOCRConfig, load_config
from chatocr.conversation.planner import ConversationPlanner
from chatocr.errors import ConfigError, InputError, UnknownOptionError, as_chatocr_error
from chatocr.extraction.pipeline import ExtractionPipeline, PreparedDocument, source_name
from chatocr.extraction.remembered import ExampleMemory
from chatocr.extraction.request import (
    AskOptions,
    ExtractionRequest,
    ExtractOptions,
    Keys,
    ManyOptions,
    PageOptions,
    RequestOptions,
    ScenarioSpec,
    check_option_names,
    named_scenario,
)
from chatocr.extraction.result import CallRecord, Extraction, usage_of
from chatocr.extraction.warming import WarmedSet, warm_scenario
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.llm.registry import get_chat_model
from chatocr.ocr.base import OCREngine
from chatocr.ocr.cache import CachedEngine, OCRCache
from chatocr.ocr.registry import make_engine
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.loader import ScenarioLibrary, load_scenarios
from chatocr.scenarios.model import FieldSpec, Scenario

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

__all__ = ["ChatOCR", "ChatSession"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
Input = Any  # a path, bytes, PIL image, numpy array or an OCRDocument


def _checked_keywords(method: F) -> F:
    """Python's own TypeError for a misspelled keyword names no alternative: say the nearest one
    (the same UnknownOptionError as a misspelled option anywhere else)."""
    signature = inspect.signature(method)
    named = [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            unknown = next((k for k in kwargs if k not in signature.parameters), None)
            if unknown is None:
                raise
            raise UnknownOptionError.of(unknown, named) from error
        return method(*args, **kwargs)

    return call  # type: ignore[return-value]


class ChatOCR:
    """OCR, routing, few-shot planning and checked extraction, configured once, used many times.

    llm: "provider[:model]" or a ChatModel; ocr: an engine name or an OCREngine; config: a
    ChatOCRConfig, a dict, or a TOML path; keyword overrides win over everything and are validated
    like the rest. The per-document work is `self.pipeline`'s (chatocr/extraction/pipeline.py):
    this object assembles it from the config and offers the sync API.
    """

    def __init__(
        self,
        llm: str | ChatModel | None = None,
        ocr: str | OCREngine | None = None,
        *,
        config: ChatOCRConfig | dict[str, Any] | str | Path | None = None,
        scenarios: ScenarioLibrary | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(config, ChatOCRConfig):
            # Validated again: model_copy(update=...) would accept max_steps=0 or concurrency=0.
            self.config = load_config({**dict(config), **overrides}, use_files=False, use_env=False)
        elif isinstance(config, dict):
            self.config = load_config({**config, **overrides}, use_files=False, use_env=False)
        else:
            self.config = load_config(overrides, path=config)
        cfg = self.config
        self.model: ChatModel = llm if isinstance(llm, ChatModel) else get_chat_model(llm or cfg.llm, **cfg.llm_options)
        engine = ocr if ocr is not None and not isinstance(ocr, str) else make_engine(ocr or cfg.ocr, cfg.ocr_options)
        if cfg.ocr_cache and not isinstance(engine, CachedEngine):
            cache = OCRCache(Path(cfg.ocr_cache_dir)) if cfg.ocr_cache_dir else OCRCache()
            engine = CachedEngine(engine, cache)
        self.engine = engine
        self.library = scenarios if scenarios is not None else load_scenarios(cfg.scenario_dirs)
        # The memory of reviewed documents (config memory, memory_dir, memory_cap): opened once, here.
        memory = ExampleMemory.of(cfg)
        self.pipeline = ExtractionPipeline(cfg, self.library, model=self.model, engine=engine, memory=memory)
        self._loop: _LoopThread | None = None
        self._loop_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------------

    def _loop_thread(self) -> _LoopThread:
        with self._loop_lock:
            if self._loop is None:
                self._loop = _LoopThread()
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop_thread().run(coro)

    def planner(self, language: str) -> ConversationPlanner:
        """The conversation manager for this backend and language (the pipeline's)."""
        return self.pipeline.planner(language)

    def settings(self, **changes: Any) -> ChatSettings:
        return self.pipeline.settings(**changes)

    async def read(self, source: Input) -> OCRDocument:
        """OCR an input (in a worker thread: engines are CPU-bound), or pass an OCRDocument through."""
        return await self.pipeline.read(source)

    def scenario(self, name: str) -> Scenario:
        return self.library.get(name)

    # -- the request ----------------------------------------------------------------------------

    @_checked_keywords
    def request(
        self, keys: Keys = None, scenario: ScenarioSpec = None, **options: Unpack[RequestOptions]
    ) -> ExtractionRequest:
        """What every document of a call is asked, resolved once (chatocr/extraction/request.py):
        keys parsed, scenario resolved (None/"auto": routed per document), schema mapped, options
        checked. Every mistake is raised here, before any OCR or model call. Pass the result as
        `request=` to the extract methods to ask many documents the same."""
        return self.pipeline.request(keys, scenario, **options)

    def _resolved(
        self,
        keys: Keys,
        scenario: ScenarioSpec,
        request: ExtractionRequest | None,
        options: Mapping[str, Any],
        allowed: type,
    ) -> ExtractionRequest:
        valid = allowed.__required_keys__ | allowed.__optional_keys__  # type: ignore[attr-defined]
        for name in options:
            if name not in valid:
                raise UnknownOptionError.of(name, [*valid, "request", "raise_errors", "on_event"])
        if request is None:
            return self.pipeline.request(keys, scenario, **options)
        if keys is not None or scenario is not None or options:
            raise ConfigError(
                "Give either request= or the keys, scenario and options to build one, not both.",
                hint="Put every option into ChatOCR.request(...), or leave out request=.",
            )
        return request

    # -- extraction -----------------------------------------------------------------------------

    @_checked_keywords
    async def aextract(
        self,
        source: Input,
        keys: Keys = None,
        scenario: ScenarioSpec = None,
        *,
        request: ExtractionRequest | None = None,
        raise_errors: bool = True,
        on_event: progress.EventCallback | None = None,
        **options: Unpack[ExtractOptions],
    ) -> Extraction:
        """Extract `keys` (default: the scenario's fields) from one document.

        keys: names, FieldSpecs, or text in the key syntax ("company,total:amount=final total");
        scenario: a name, a YAML path or a Scenario; "auto"/None to route. options: schema (a
        pydantic model or JSON Schema, or keys=Model: `result.data` is then an instance of it, see
        docs/typed.md), min_confidence, include_low_confidence, classify, policy (ExtractOptions).
        A failure raises a ChatOCRError whose `.result` holds the partial Extraction; with
        raise_errors=False it is returned with `.error` set.
        on_event: called with a chatocr.progress.Event at each stage (reading, OCR, loading the
        model, evaluating the prompt, generating with a token count...), in the working thread.
        """
        resolved = self._resolved(keys, scenario, request, options, ExtractOptions)
        with progress.listening(on_event):
            result, error = await self.pipeline.extract(source, resolved)
        if error is not None and raise_errors:
            raise error.with_result(result)
        return result

    @_checked_keywords
    def extract(
        self,
        source: Input,
        keys: Keys = None,
        scenario: ScenarioSpec = None,
        *,
        request: ExtractionRequest | None = None,
        raise_errors: bool = True,
        on_event: progress.EventCallback | None = None,
        **options: Unpack[ExtractOptions],
    ) -> Extraction:
        """Sync twin of aextract."""
        return self._run(
            self.aextract(
                source, keys, scenario, request=request, raise_errors=raise_errors, on_event=on_event, **options
            )
        )

    @_checked_keywords
    async def aextract_many(
        self,
        inputs: Iterable[Input],
        keys: Keys = None,
        scenario: ScenarioSpec = None,
        *,
        request: ExtractionRequest | None = None,
        on_event: progress.EventCallback | None = None,
        **options: Unpack[ManyOptions],
    ) -> AsyncIterator[Extraction]:
        """Results as they complete, `concurrency` documents in flight; a failed document yields a
        result with `.error` set. A bad schema, key, option or scenario path fails at once, before
        any document is read."""
        resolved = self._resolved(keys, scenario, request, options, ManyOptions)
        limit = asyncio.Semaphore(resolved.concurrency)

        async def one(source: Input) -> Extraction:
            async with limit:
                with progress.listening(on_event):  # inside the task: it never leaks to the caller
                    result, _ = await self.pipeline.extract(source, resolved)
                return result

        tasks = [asyncio.ensure_future(one(source)) for source in inputs]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()

    @_checked_keywords
    def extract_many(
        self,
        inputs: Iterable[Input],
        keys: Keys = None,
        scenario: ScenarioSpec = None,
        *,
        request: ExtractionRequest | None = None,
        on_event: progress.EventCallback | None = None,
        **options: Unpack[ManyOptions],
    ) -> Iterator[Extraction]:
        """Sync twin of aextract_many: yields each result as soon as it is ready."""
        resolved = self._resolved(keys, scenario, request, options, ManyOptions)  # fails now, not at next()
        return self._iterate(self.aextract_many(inputs, request=resolved, on_event=on_event))

    def _iterate(self, results: AsyncIterator[Extraction]) -> Iterator[Extraction]:
        """An async iterator's items in this thread, as each is ready (it runs on our loop)."""
        ready: queue.Queue[Extraction | BaseException | None] = queue.Queue()

        async def pump() -> None:
            try:
                async for result in results:
                    ready.put(result)
            except BaseException as exc:  # surfaced in the caller's thread
                ready.put(exc)
            finally:
                ready.put(None)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop_thread().loop)
        try:
            while True:
                item = ready.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()

    # -- one result per page ----------------------------------------------------------------------

    @_checked_keywords
    async def aextract_pages(
        self,
        source: Input,
        keys: Keys = None,
        scenario: ScenarioSpec = None,
        *,
        request: ExtractionRequest | None = None,
        raise_errors: bool = True,
        on_event: progress.EventCallback | None = None,
        **options: Unpack[PageOptions],
    ) -> list[Extraction]:
        """One Extraction per page of a PDF (or frame of a TIFF; a plain image has one), in page
        order, each with `.page` (1-based): the input is OCR'd once and every page's own document
        goes through the pipeline. options: those of `aextract`, plus pages (only these page
        numbers) and concurrency (pages in flight; default: the config's concurrency).

        With raise_errors=False an input that cannot be read gives one failed Extraction (page None).
        """
        resolved = self._resolved(keys, scenario, request, options, PageOptions)  # before the input is read
        name = source_name(source)
        try:
            with progress.listening(on_event):
                document = await self.pipeline.read(source, prepare_model=True)  # the model loads beside the OCR
        except Exception as exc:
            if raise_errors:
                error = as_chatocr_error(exc)
                if error is exc:
                    raise
                raise error from exc
            return [Extraction.failed(name, exc)]
        parts = [
            p for p in document.pages_as_documents() if resolved.pages is None or p.pages[0].index + 1 in resolved.pages
        ]
        limit = asyncio.Semaphore(resolved.concurrency)

        async def one(part: OCRDocument) -> Extraction:
            if isinstance(source, (str, Path)):  # a cached OCR may carry the path it was first read from
                part = replace(part, source=name)
            async with limit:
                with progress.listening(on_event):
                    result, error = await self.pipeline.extract(part, resolved)
            result.page = part.pages[0].index + 1
            result.ocr["document_pages"] = len(document.pages)
            if error is not None and raise_errors:
                raise error.with_result(result)
            return result

        return list(await asyncio.gather(*(one(part) for part in parts)))

    @_checked_keywords
    def extract_pages(
        self,
        source: Input,
        keys: Keys = None,
        scenario: ScenarioSpec = None,
        *,
        request: ExtractionRequest | None = None,
        raise_errors: bool = True,
        on_event: progress.EventCallback | None = None,
        **options: Unpack[PageOptions],
    ) -> list[Extraction]:
        """Sync twin of aextract_pages."""
        return self._run(
            self.aextract_pages(
                source, keys, scenario, request=request, raise_errors=raise_errors, on_event=on_event, **options
            )
        )

    # -- warming ----------------------------------------------------------------------------------

    async def awarm(
        self,
        scenario: str | Path | Scenario,
        keys: Sequence[str | FieldSpec] | str | None = None,
        *,
        on_set: Callable[[WarmedSet, int, int], None] | None = None,
        on_event: progress.EventCallback | None = None,
    ) -> list[WarmedSet]:
        """Compute the local model's kept state of every example set `scenario` can give a
        document asked `keys` (default: its fields), so the first document of each set does not
        evaluate its examples (chatocr/extraction/warming.py). Already kept sets cost a lookup;
        backends that keep no state return one set with source "none"."""
        named = named_scenario(self.pipeline, scenario)
        if named is None:
            raise ConfigError("Warming needs a scenario name, not auto.", hint="e.g. retail_receipt")
        with progress.listening(on_event):
            return await warm_scenario(self.pipeline, named, keys, on_set=on_set)

    def warm(
        self, scenario: str | Path | Scenario, keys: Sequence[str | FieldSpec] | str | None = None, **options: Any
    ) -> list[WarmedSet]:
        """Sync twin of awarm."""
        return self._run(self.awarm(scenario, keys, **options))

    # -- chat -------------------------------------------------------------------------------------

    async def achat(self, source: Input, scenario: ScenarioSpec = None) -> ChatSession:
        named = named_scenario(self.pipeline, scenario)
        document = await self.pipeline.read(source, prepare_model=True)  # the model loads beside the OCR
        prepared = PreparedDocument.of(document, source_name(source))
        return ChatSession(self, prepared, named)

    def chat(self, source: Input, scenario: ScenarioSpec = None) -> ChatSession:
        return self._run(self.achat(source, scenario))


class ChatSession:
    """Follow-up questions and corrections about one document, answered from its OCR text. The
    history is kept within the backend's budget by the conversation manager (oldest dropped first)."""

    def __init__(self, owner: ChatOCR, prepared: PreparedDocument, scenario: Scenario | None = None) -> None:
        self.owner = owner
        self.prepared = prepared
        self.scenario = scenario
        self.language, self.title = owner.pipeline.language_and_title(scenario, prepared.language)
        self.history: list[tuple[str, str]] = []
        self.calls: list[CallRecord] = []
        self.dropped_history = 0

    @property
    def document(self) -> OCRDocument:
        return self.prepared.document

    @property
    def text(self) -> str:
        return self.prepared.text

    @overload
    async def aask(self, question: str, *, on_delta: Callable[[str], None] | None = None) -> str: ...
    @overload
    async def aask(
        self,
        question: str,
        *,
        schema: type[BaseModel] | dict[str, Any],
        scenario: ScenarioSpec = None,
        **options: Unpack[AskOptions],
    ) -> Extraction: ...

    async def aask(
        self,
        question: str,
        *,
        schema: Any = None,
        scenario: ScenarioSpec = None,
        on_delta: Callable[[str], None] | None = None,
        **options: Unpack[AskOptions],
    ) -> str | Extraction:
        """The model's answer to a question about the document; with `schema`, a typed, grounded
        answer: the Extraction whose `.data` is an instance of the schema (the question guides it;
        options as ChatOCR.extract's). `on_delta` gets a free-text answer as it is generated (from
        backends that stream)."""
        return await self._answer(question, schema, scenario, on_delta, options)

    async def _answer(
        self,
        question: str,
        schema: Any,
        scenario: ScenarioSpec,
        on_delta: Callable[[str], None] | None,
        options: AskOptions,
    ) -> str | Extraction:
        check_option_names(options, AskOptions.__optional_keys__)
        question = question.strip()
        if not question:
            raise InputError("Empty question.", hint="Type a question about the document.")
        if schema is not None:
            request = self.owner.request(None, scenario or self.scenario, schema=schema, question=question, **options)
            return await self._ask_typed(question, request)
        answer, self.dropped_history = await self.owner.pipeline.answer(
            self.prepared,
            question,
            self.history,
            language=self.language,
            title=self.title,
            calls=self.calls,
            on_delta=on_delta,
        )
        self.history.append((question, answer))
        return answer

    async def _ask_typed(self, question: str, request: ExtractionRequest) -> Extraction:
        result, error = await self.owner.pipeline.extract(self.document, request)
        self.calls.extend(result.calls)
        if error is not None:
            raise error.with_result(result)
        answer = json.dumps(result.to_dict()["data"] or result.values, ensure_ascii=False, default=str)
        self.history.append((question, answer))
        return result

    @overload
    def ask(self, question: str, *, on_delta: Callable[[str], None] | None = None) -> str: ...
    @overload
    def ask(
        self,
        question: str,
        *,
        schema: type[BaseModel] | dict[str, Any],
        scenario: ScenarioSpec = None,
        **options: Unpack[AskOptions],
    ) -> Extraction: ...

    def ask(
        self,
        question: str,
        *,
        schema: Any = None,
        scenario: ScenarioSpec = None,
        on_delta: Callable[[str], None] | None = None,
        **options: Unpack[AskOptions],
    ) -> str | Extraction:
        """Sync twin of aask."""
        return self.owner._run(self._answer(question, schema, scenario, on_delta, options))

    async def aextract(self, keys: Keys = None, scenario: ScenarioSpec = None) -> Extraction:
        return await self.owner.aextract(self.document, keys, scenario)

    def extract(self, keys: Keys = None, scenario: ScenarioSpec = None) -> Extraction:
        return self.owner.extract(self.document, keys, scenario)

    @property
    def usage(self) -> dict[str, float]:
        return {**usage_of(self.calls), "seconds": round(sum(c.latency_s for c in self.calls), 3)}
