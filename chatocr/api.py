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
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from chatocr.config import ChatOCRConfig, load_config
from chatocr.conversation.planner import ConversationPlanner, PlanPolicy, TaskSpec
from chatocr.conversation.templates import load_prompts
from chatocr.errors import ChatOCRError, ConfigError, InputError, ScenarioError
from chatocr.extraction.examples import ExampleBank, resolve_fields
from chatocr.extraction.extractor import ExtractionBudget, json_schema_for, run_extraction
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.result import CallRecord, Extraction, Route, usage_of
from chatocr.extraction.routing import Router, RoutingPolicy
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.llm.registry import get_chat_model
from chatocr.ocr.base import OCREngine
from chatocr.ocr.cache import CachedEngine, OCRCache
from chatocr.ocr.registry import get_ocr_engine
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.loader import ScenarioLibrary, load_scenarios
from chatocr.scenarios.model import Scenario

__all__ = ["ChatOCR", "ChatSession"]

T = TypeVar("T")
Input = Any  # a path, bytes, PIL image, numpy array or an OCRDocument


class _LoopThread:
    """One event loop in a daemon thread: the sync API submits coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="chatocr-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


def _source_name(source: Input) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, OCRDocument):
        return source.source or "<document>"
    return f"<{type(source).__name__}>"


def _error_dict(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, ChatOCRError):
        return {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    return {"type": type(exc).__name__, "message": str(exc), "hint": "This is a bug in chatocr; please report it."}


class ChatOCR:
    """OCR, routing, few-shot planning and checked extraction, configured once, used many times.

    llm: "provider[:model]" or a ChatModel; ocr: an engine name or an OCREngine; config: a
    ChatOCRConfig, a dict, or a TOML path; keyword overrides win over everything.
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
            self.config = config.model_copy(update={k: v for k, v in overrides.items() if v is not None})
        elif isinstance(config, dict):
            self.config = load_config({**config, **overrides}, use_files=False, use_env=False)
        else:
            self.config = load_config(overrides, path=config)
        cfg = self.config
        self.model: ChatModel = llm if isinstance(llm, ChatModel) else get_chat_model(llm or cfg.llm, **cfg.llm_options)
        engine = ocr if ocr is not None and not isinstance(ocr, str) else _make_engine(ocr or cfg.ocr, cfg.ocr_options)
        if cfg.ocr_cache and not isinstance(engine, CachedEngine):
            cache = OCRCache(Path(cfg.ocr_cache_dir)) if cfg.ocr_cache_dir else OCRCache()
            engine = CachedEngine(engine, cache)
        self.engine = engine
        self.library = scenarios if scenarios is not None else load_scenarios(cfg.scenario_dirs)
        self.bank = ExampleBank(self.library)
        self.router = Router(self.library, RoutingPolicy(classify=cfg.classify))
        order = cfg.order if cfg.order != "auto" else ("stable" if self.model.provider == "local" else "relevance")
        self.policy = PlanPolicy(cfg.packing, cfg.restate_every, cfg.max_examples, order)
        self.budget = ExtractionBudget(max_steps=cfg.max_steps, max_tokens=cfg.max_tokens)
        self._planners: dict[str, ConversationPlanner] = {}
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
        """The conversation manager for this backend and language (cached: it caches counts)."""
        planner = self._planners.get(language)
        if planner is None:
            prompts = load_prompts(language, self.config.prompt_dirs)
            planner = ConversationPlanner(prompts, self.model.counter, self.model.limits, self.policy)
            self._planners[language] = planner
        return planner

    def settings(self, **changes: Any) -> ChatSettings:
        cfg = self.config
        base = {"temperature": cfg.temperature, "max_output_tokens": cfg.max_output_tokens, "timeout": cfg.timeout}
        return ChatSettings(**{**base, **changes})

    async def read(self, source: Input) -> OCRDocument:
        """OCR an input (in a worker thread: engines are CPU-bound), or pass an OCRDocument through."""
        if isinstance(source, OCRDocument):
            return source
        return await asyncio.to_thread(self.engine.read, source)

    def scenario(self, name: str) -> Scenario:
        return self.library.get(name)

    # -- extraction -----------------------------------------------------------------------------

    async def aextract(
        self,
        source: Input,
        keys: Sequence[str] | str | None = None,
        scenario: str | None = None,
        *,
        classify: bool | None = None,
        policy: PlanPolicy | None = None,
        raise_errors: bool = True,
    ) -> Extraction:
        """Extract `keys` (default: the scenario's fields) from one document.

        scenario: a name, "auto"/None to route. A failure raises a ChatOCRError whose `.result`
        holds the partial Extraction; with raise_errors=False it is returned with `.error` set.
        """
        result, error = await self._extract(source, keys, scenario, classify=classify, policy=policy)
        if error is not None and raise_errors:
            error.result = result  # type: ignore[attr-defined]
            raise error
        return result

    def extract(
        self,
        source: Input,
        keys: Sequence[str] | str | None = None,
        scenario: str | None = None,
        **options: Any,
    ) -> Extraction:
        return self._run(self.aextract(source, keys, scenario, **options))

    async def _extract(
        self,
        source: Input,
        keys: Sequence[str] | str | None,
        scenario_name: str | None,
        *,
        classify: bool | None,
        policy: PlanPolicy | None,
    ) -> tuple[Extraction, ChatOCRError | None]:
        started = time.perf_counter()
        error: ChatOCRError | None = None
        result = Extraction(source=_source_name(source))
        ocr_seconds = 0.0
        if isinstance(keys, str):
            keys = [k.strip() for k in keys.split(",") if k.strip()]
        try:
            if scenario_name not in (None, "", "auto") and scenario_name not in self.library:
                self.library.get(scenario_name)  # raises a ScenarioError with suggestions
            ocr_started = time.perf_counter()
            document = await self.read(source)
            ocr_seconds = time.perf_counter() - ocr_started
            result.ocr = {
                "engine": document.engine,
                "model": document.model,
                "cached": document.cached,
                "pages": len(document.pages),
                "lines": len(document.lines),
                "has_boxes": document.has_boxes,
                "seconds": round(document.seconds, 4),
            }
            result.warnings.extend(document.warnings)
            layout = document.layout()
            text = layout.text
            if not text.strip():
                raise InputError(
                    f"{result.source}: OCR found no text in the document.",
                    hint="Check that the image is not blank, too small or rotated; try another --ocr engine.",
                )
            if scenario_name not in (None, "", "auto"):
                route = Route("given", scenario_name, 1.0, [], "named by the caller")
                scenario: Scenario | None = self.library.get(scenario_name)
                calls: list[CallRecord] = []
            else:
                route, scenario, calls = await self.router.route(text, self.model, classify=classify)
            result.route, result.calls = route, list(calls)
            result.scenario = scenario.name if scenario else None
            fields = resolve_fields(scenario, keys)
            fallback = self.router.fallback_scenario()
            if not fields:
                if fallback is None:
                    raise ScenarioError(
                        "No scenario matched and no keys were given.",
                        hint="Pass keys=[...] or a scenario name.",
                    )
                fields = fallback.fields
                result.warnings.append(f"no scenario matched: extracted the {fallback.name!r} fields")
            base = scenario or fallback
            language = scenario.language if scenario else self.router.language_of(text)
            title = base.title if base else ("文档" if language == "zh" else "document")
            focus = self.config.focus
            instructions = base.instructions if base else ""
            if base is not None and focus:
                instructions = base.instructions_for(f.name for f in fields)
            task = TaskSpec(title, tuple(fields), instructions)
            examples = self.bank.select(text, task.fields, scenario, focus=focus)
            planner = self.planner(language)
            outcome = await run_extraction(
                document=document,
                text=text,
                index=TextIndex(layout),
                task=task,
                examples=examples,
                planner=planner,
                model=self.model,
                settings=self.settings(json_mode=json_schema_for(task.fields)),
                budget=self.budget,
                policy=policy or self.policy,
            )
            result.fields = outcome.fields
            result.values = {name: f.value for name, f in outcome.fields.items() if f.value is not None}
            result.examples = [e.id for e in outcome.plan.report.included]
            result.plan = outcome.plan.report
            result.calls.extend(outcome.calls)
            result.steps = outcome.steps
            result.replans = outcome.replans
            result.warnings.extend(outcome.warnings)
            ungrounded = [n for n, f in outcome.fields.items() if f.status == "ungrounded"]
            if ungrounded:
                result.warnings.append(f"not found in the document (do not trust): {', '.join(ungrounded)}")
        except Exception as exc:  # one document's failure is recorded, never lost
            error = exc if isinstance(exc, ChatOCRError) else _wrap(exc)
            result.error = _error_dict(exc)
        finally:
            total = time.perf_counter() - started
            llm = sum(c.latency_s for c in result.calls)
            result.timings = {
                "ocr_s": round(ocr_seconds, 4),
                "llm_s": round(llm, 4),
                "total_s": round(total, 4),
                "overhead_s": round(max(0.0, total - ocr_seconds - llm), 4),
            }
        return result, error

    async def aextract_many(
        self,
        inputs: Iterable[Input],
        keys: Sequence[str] | str | None = None,
        scenario: str | None = None,
        *,
        concurrency: int | None = None,
        **options: Any,
    ) -> AsyncIterator[Extraction]:
        """Results as they complete; a failed document yields a result with `.error` set."""
        limit = asyncio.Semaphore(concurrency or self.config.concurrency)

        async def one(source: Input) -> Extraction:
            async with limit:
                result, _ = await self._extract(
                    source, keys, scenario, classify=options.get("classify"), policy=options.get("policy")
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
        keys: Sequence[str] | str | None = None,
        scenario: str | None = None,
        *,
        concurrency: int | None = None,
        **options: Any,
    ) -> Iterator[Extraction]:
        """Sync twin of aextract_many: yields each result as soon as it is ready."""
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
        name = _source_name(source)
        try:
            document = await self.read(source)
        except Exception as exc:
            if options.get("raise_errors", True):
                if isinstance(exc, ChatOCRError):
                    raise
                raise _wrap(exc) from exc
            failed = Extraction(source=name)
            failed.error = _error_dict(exc)
            return [failed]
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

    # -- chat -------------------------------------------------------------------------------------

    async def achat(self, source: Input, scenario: str | None = None) -> ChatSession:
        document = await self.read(source)
        text = document.layout().text
        if not text.strip():
            raise InputError(f"{_source_name(source)}: OCR found no text in the document.")
        chosen = self.library.get(scenario) if scenario not in (None, "", "auto") else None
        language = chosen.language if chosen else self.router.language_of(text)
        title = chosen.title if chosen else ("文档" if language == "zh" else "document")
        return ChatSession(self, document, text, title, language)

    def chat(self, source: Input, scenario: str | None = None) -> ChatSession:
        return self._run(self.achat(source, scenario))


def _make_engine(spec: str, options: dict[str, Any]) -> OCREngine:
    """An OCR engine by name. "vlm:provider:model" (or ocr_options {"llm": "provider:model"}) makes
    the vision-LLM engine with that chat backend, e.g. "vlm:dashscope:qwen-vl-max"."""
    name, _, llm = spec.partition(":")
    options = dict(options)
    if name == "vlm" and "chat" not in options:
        llm = llm or options.pop("llm", "")
        if not llm:
            raise ConfigError(
                "The vlm OCR engine needs a vision model.",
                hint='Use ocr="vlm:provider:model", e.g. "vlm:dashscope:qwen-vl-max" (or ocr_options={"llm": ...}).',
            )
        options["chat"] = get_chat_model(llm)
    elif llm:
        raise ConfigError(f"Only the vlm engine takes a model after ':', got {spec!r}.")
    return get_ocr_engine(name, **options)


def _wrap(exc: BaseException) -> ChatOCRError:
    wrapped = ChatOCRError(f"{type(exc).__name__}: {exc}", hint="This is a bug in chatocr; please report it.")
    wrapped.__cause__ = exc
    return wrapped


class ChatSession:
    """Follow-up questions and corrections about one document, answered from its OCR text. The
    history is kept within the backend's budget by the conversation manager (oldest dropped first)."""

    def __init__(self, owner: ChatOCR, document: OCRDocument, text: str, title: str, language: str) -> None:
        self.owner = owner
        self.document = document
        self.text = text
        self.title = title
        self.language = language
        self.history: list[tuple[str, str]] = []
        self.calls: list[CallRecord] = []
        self.dropped_history = 0

    async def aask(self, question: str, *, on_delta: Callable[[str], None] | None = None) -> str:
        """The answer to a question about the document; `on_delta` gets its text as it is generated
        (from backends that stream; others give it once, whole)."""
        question = question.strip()
        if not question:
            raise InputError("Empty question.", hint="Type a question about the document.")
        planner = self.owner.planner(self.language)
        messages, self.dropped_history = planner.plan_chat(self.title, self.text, self.history, question)
        model = self.owner.model
        record = CallRecord.start("chat", model, messages)
        self.calls.append(record)
        try:
            streaming = {"on_delta": on_delta} if on_delta is not None else {}  # only backends that take it
            reply = await model.chat(messages, self.owner.settings(), **streaming)
        except asyncio.CancelledError:
            record.error = "cancelled"
            raise
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        record.finish(reply)
        answer = reply.text.strip()
        self.history.append((question, answer))
        return answer

    def ask(self, question: str, *, on_delta: Callable[[str], None] | None = None) -> str:
        return self.owner._run(self.aask(question, on_delta=on_delta))

    async def aextract(self, keys: Sequence[str] | str | None = None, scenario: str | None = None) -> Extraction:
        return await self.owner.aextract(self.document, keys, scenario)

    def extract(self, keys: Sequence[str] | str | None = None, scenario: str | None = None) -> Extraction:
        return self.owner.extract(self.document, keys, scenario)

    @property
    def usage(self) -> dict[str, float]:
        return {**usage_of(self.calls), "seconds": round(sum(c.latency_s for c in self.calls), 3)}
