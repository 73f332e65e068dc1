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
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from chatocr import progress
from chatocr.bridge import LoopThread as _LoopThread  # one event loop in a daemon thread for the sync API
from chatocr.config import ChatOCRConfig, load_config
from chatocr.conversation.planner import ConversationPlanner, PlanPolicy
from chatocr.errors import ConfigError, InputError, as_chatocr_error
from chatocr.extraction.pipeline import ExtractionPipeline, PreparedDocument, source_name
from chatocr.extraction.result import CallRecord, Extraction, usage_of
from chatocr.extraction.typed_request import Keys, MinConfidence, TypedRequest, typed_request
from chatocr.extraction.warming import WarmedSet, warm_scenario
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.llm.registry import get_chat_model
from chatocr.ocr.base import OCREngine
from chatocr.ocr.cache import CachedEngine, OCRCache
from chatocr.ocr.registry import make_engine
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.loader import ScenarioLibrary, load_scenarios
from chatocr.scenarios.model import FieldSpec, Scenario
from chatocr.typed.schema import TypedSchema

__all__ = ["ChatOCR", "ChatSession"]

T = TypeVar("T")
Input = Any  # a path, bytes, PIL image, numpy array or an OCRDocument


def _check_concurrency(concurrency: int | None) -> None:
    if concurrency is not None and concurrency < 1:  # a semaphore of 0 would wait forever
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}.", hint="Use 1 for one at a time.")


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
        self.pipeline = ExtractionPipeline(cfg, self.library, model=self.model, engine=engine)
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

    # -- extraction -----------------------------------------------------------------------------

    def _typed(
        self, keys: Keys, schema: Any, min_confidence: MinConfidence, include_low_confidence: bool
    ) -> tuple[list[Any] | None, TypedRequest]:
        """Keys parsed and the typed request resolved: a bad schema or key fails here, before OCR."""
        threshold = self.config.min_confidence if min_confidence is None else min_confidence
        return typed_request(keys, schema, threshold, include_low_confidence)

    async def aextract(
        self,
        source: Input,
        keys: Keys = None,
        scenario: str | Path | Scenario | None = None,
        *,
        schema: type[BaseModel] | dict[str, Any] | TypedSchema | None = None,
        min_confidence: MinConfidence = None,
        include_low_confidence: bool = False,
        classify: bool | None = None,
        policy: PlanPolicy | None = None,
        raise_errors: bool = True,
        on_event: progress.EventCallback | None = None,
    ) -> Extraction:
        """Extract `keys` (default: the scenario's fields) from one document.

        keys: names, FieldSpecs, or text in the key syntax ("company,total:amount=final total").
        scenario: a name, a YAML path or a Scenario; "auto"/None to route.
        schema: a pydantic model or JSON Schema (or keys=Model): `result.data` is then an instance
        of it (see docs/typed.md). min_confidence: per call (float, or {field: float}), else the
        config's. A failure raises a ChatOCRError whose `.result` holds the partial Extraction;
        with raise_errors=False it is returned with `.error` set.
        on_event: called with a chatocr.progress.Event at each stage (reading, OCR, loading the
        model, evaluating the prompt, generating with a token count...), in the working thread.
        """
        keys, typed = self._typed(keys, schema, min_confidence, include_low_confidence)
        with progress.listening(on_event):
            result, error = await self.pipeline.extract(
                source, keys, scenario, classify=classify, policy=policy, typed=typed
            )
        if error is not None and raise_errors:
            raise error.with_result(result)
        return result

    def extract(
        self,
        source: Input,
        keys: Keys = None,
        scenario: str | Path | Scenario | None = None,
        **options: Any,
    ) -> Extraction:
        return self._run(self.aextract(source, keys, scenario, **options))

    async def aextract_many(
        self,
        inputs: Iterable[Input],
        keys: Keys = None,
        scenario: str | Path | Scenario | None = None,
        *,
        concurrency: int | None = None,
        **options: Any,
    ) -> AsyncIterator[Extraction]:
        """Results as they complete; a failed document yields a result with `.error` set. A bad
        schema, key or scenario path fails at once, before any document is read."""
        _check_concurrency(concurrency)
        limit = asyncio.Semaphore(concurrency or self.config.concurrency)
        classify, policy, on_event = options.get("classify"), options.get("policy"), options.get("on_event")
        parsed, typed = self._typed(
            keys, options.get("schema"), options.get("min_confidence"), options.get("include_low_confidence", False)
        )
        named = self.pipeline.scenario_named(scenario)  # a YAML path joins the library once
        chosen = named if named is not None else scenario

        async def one(source: Input) -> Extraction:
            async with limit:
                with progress.listening(on_event):  # inside the task: it never leaks to the caller
                    result, _ = await self.pipeline.extract(
                        source, parsed, chosen, classify=classify, policy=policy, typed=typed
                    )
                return result

        tasks = [asyncio.ensure_future(one(source)) for source in inputs]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()

    def extract_many(
        self,
        inputs: Iterable[Input],
        keys: Keys = None,
        scenario: str | Path | Scenario | None = None,
        *,
        concurrency: int | None = None,
        **options: Any,
    ) -> Iterator[Extraction]:
        """Sync twin of aextract_many: yields each result as soon as it is ready."""
        _check_concurrency(concurrency)
        results: queue.Queue[Extraction | BaseException | None] = queue.Queue()

        async def pump() -> None:
            try:
                async for result in self.aextract_many(inputs, keys, scenario, concurrency=concurrency, **options):
                    results.put(result)
            except BaseException as exc:  # surfaced in the caller's thread
                results.put(exc)
            finally:
                results.put(None)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop_thread().loop)
        try:
            while True:
                item = results.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()

    # -- one result per page ----------------------------------------------------------------------

    async def aextract_pages(
        self,
        source: Input,
        keys: Sequence[str] | str | None = None,
        scenario: str | None = None,
        *,
        pages: Iterable[int] | None = None,
        concurrency: int | None = None,
        **options: Any,
    ) -> list[Extraction]:
        """One Extraction per page of a PDF (or frame of a TIFF; a plain image has one), in page
        order, each with `.page` (1-based): the input is OCR'd once and every page's own document
        goes through `aextract` (options: those of `aextract`). pages: only these page numbers;
        concurrency: pages in flight (default: the config's concurrency).

        With raise_errors=False an input that cannot be read gives one failed Extraction (page None).
        """
        # A bad schema or key fails now, before the input is read (each page then resolves it again: cached).
        self._typed(keys, options.get("schema"), options.get("min_confidence"), False)
        name = source_name(source)
        try:
            document = await self.pipeline.read(source, prepare_model=True)  # the model loads beside the OCR
        except Exception as exc:
            if options.get("raise_errors", True):
                error = as_chatocr_error(exc)
                if error is exc:
                    raise
                raise error from exc
            return [Extraction.failed(name, exc)]
        wanted = None if pages is None else set(pages)
        parts = [p for p in document.pages_as_documents() if wanted is None or p.pages[0].index + 1 in wanted]
        limit = asyncio.Semaphore(concurrency or self.config.concurrency)

        async def one(part: OCRDocument) -> Extraction:
            if isinstance(source, (str, Path)):  # a cached OCR may carry the path it was first read from
                part = replace(part, source=name)
            async with limit:
                result = await self.aextract(part, keys, scenario, **options)
            result.page = part.pages[0].index + 1
            result.ocr["document_pages"] = len(document.pages)
            return result

        return list(await asyncio.gather(*(one(part) for part in parts)))

    def extract_pages(
        self,
        source: Input,
        keys: Sequence[str] | str | None = None,
        scenario: str | None = None,
        **options: Any,
    ) -> list[Extraction]:
        """Sync twin of aextract_pages."""
        return self._run(self.aextract_pages(source, keys, scenario, **options))

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
        named = self.pipeline.scenario_named(scenario)
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

    async def achat(self, source: Input, scenario: str | None = None) -> ChatSession:
        named = self.pipeline.scenario_named(scenario)
        document = await self.pipeline.read(source, prepare_model=True)  # the model loads beside the OCR
        prepared = PreparedDocument.of(document, source_name(source))
        return ChatSession(self, prepared, named)

    def chat(self, source: Input, scenario: str | None = None) -> ChatSession:
        return self._run(self.achat(source, scenario))


class ChatSession:
    """Follow-up questions and corrections about one document, answered from its OCR text. The
    history is kept within the backend's budget by the conversation manager (oldest dropped first)."""

    def __init__(self, owner: ChatOCR, prepared: PreparedDocument, scenario: Scenario | None = None) -> None:
        self.owner = owner
        self.prepared = prepared
        self.scenario = scenario
        self.language, self.title = owner.pipeline.language_and_title(scenario, prepared.text)
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
    async def aask(self, question: str, *, schema: type[BaseModel] | dict[str, Any], **options: Any) -> Extraction: ...

    async def aask(
        self, question: str, *, schema: Any = None, on_delta: Callable[[str], None] | None = None, **options: Any
    ) -> str | Extraction:
        """The model's answer to a question about the document; with `schema`, a typed, grounded
        answer: the Extraction whose `.data` is an instance of the schema (the question guides it).
        `on_delta` gets a free-text answer as it is generated (from backends that stream)."""
        question = question.strip()
        if not question:
            raise InputError("Empty question.", hint="Type a question about the document.")
        if schema is not None:
            return await self._ask_typed(question, schema, **options)
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

    async def _ask_typed(self, question: str, schema: Any, **options: Any) -> Extraction:
        keys, typed = self.owner._typed(
            None, schema, options.pop("min_confidence", None), options.pop("include_low_confidence", False)
        )
        scenario = options.pop("scenario", None) or self.scenario
        result, error = await self.owner.pipeline.extract(
            self.document,
            keys,
            scenario,
            classify=options.pop("classify", None),
            policy=options.pop("policy", None),
            typed=replace(typed, question=question),
        )
        self.calls.extend(result.calls)
        if error is not None:
            raise error.with_result(result)
        answer = json.dumps(result.to_dict()["data"] or result.values, ensure_ascii=False, default=str)
        self.history.append((question, answer))
        return result

    @overload
    def ask(self, question: str, *, on_delta: Callable[[str], None] | None = None) -> str: ...
    @overload
    def ask(self, question: str, *, schema: type[BaseModel] | dict[str, Any], **options: Any) -> Extraction: ...

    def ask(
        self, question: str, *, schema: Any = None, on_delta: Callable[[str], None] | None = None, **options: Any
    ) -> str | Extraction:
        return self.owner._run(self.aask(question, schema=schema, on_delta=on_delta, **options))

    async def aextract(self, keys: Sequence[str] | str | None = None, scenario: str | None = None) -> Extraction:
        return await self.owner.aextract(self.document, keys, scenario)

    def extract(self, keys: Sequence[str] | str | None = None, scenario: str | None = None) -> Extraction:
        return self.owner.extract(self.document, keys, scenario)

    @property
    def usage(self) -> dict[str, float]:
        return {**usage_of(self.calls), "seconds": round(sum(c.latency_s for c in self.calls), 3)}
