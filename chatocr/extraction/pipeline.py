"""The per-document pipeline: every caller (the API, batch, `chatocr plan`, `chatocr eval`, the chat
session, the REPL) reaches extraction through these few methods, so what `plan` shows is what
`extract` sends.

    request -> read -> prepare -> route -> build_task -> run
    (resolved  (OCR)  (layout,   (the request's (fields,   (the checked loop, extraction/loop.py:
     once)             language,  scenario,      title,     plan -> chat -> parse -> check ->
                       index)     prescore,      examples)  re-ask or re-plan -> fill)
                                  classifier
                                  or fallback)

`ExtractionPipeline` holds the parts (scenarios, example bank, router, backend, OCR engine) and
the settings. What one call asks (keys, scenario, schema, thresholds, classifier, plan policy) is
an `ExtractionRequest` (extraction/request.py), resolved once by `request()`; per document the
pipeline decides only what depends on the document: its route, the fields' language and title,
its examples. Re-planning with less is the planner's job (`ConversationPlanner.shrink`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chatocr import progress
from chatocr.calibration import ValueProbability
from chatocr.config import ChatOCRConfig
from chatocr.conversation.planner import ConversationPlanner, Plan, PlanPolicy, TaskSpec
from chatocr.conversation.templates import load_prompts
from chatocr.errors import ChatOCRError, ConfigError, ScenarioError, as_chatocr_error, error_record
from chatocr.extraction.examples import MEMORY_PREFIX, ExampleBank, resolve_fields
from chatocr.extraction.extractor import ExtractionBudget, tokens_used
from chatocr.extraction.levers import Levers
from chatocr.extraction.loop import CheckedLoop
from chatocr.extraction.prepared import ExtractionTask, PreparedDocument, source_name
from chatocr.extraction.remembered import ExampleMemory, ranked_together
from chatocr.extraction.request import ExtractionRequest, Keys, ScenarioSpec, resolve_request
from chatocr.extraction.result import CallRecord, Extraction, Route
from chatocr.extraction.routing import Router, language_of
from chatocr.extraction.second_look import SecondLook, look_questions, uncertain_fields
from chatocr.extraction.trust import AcceptOptions, TrustAssessor
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.messages import Limits
from chatocr.ocr.base import OCREngine
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import Scenario
from chatocr.tokens import TokenCounter

__all__ = [
    "ExtractionPipeline",
    "ExtractionTask",
    "Planning",
    "PreparedDocument",
    "plan_policy",
    "source_name",
]

log = logging.getLogger("chatocr")

Input = Any  # a path, bytes, PIL image, numpy array or an OCRDocument

# The title of a document that matched no scenario, in the prompts' language.
_UNTITLED = {"zh": "文档", "en": "document"}


def plan_policy(config: ChatOCRConfig, model: ChatModel | None) -> PlanPolicy:
    """The configured plan policy. order "auto" is "stable" for a backend with a prompt-prefix cache
    (the same examples in the same order let it re-use everything before the document)."""
    order = config.order
    if order == "auto":
        order = "stable" if model is not None and model.supports_prefix_cache else "relevance"
    return PlanPolicy(config.packing, config.restate_every, config.max_examples, order)


@dataclass(frozen=True)
class Planning:
    """What a pipeline without a chat model plans with (as `chatocr plan` does): the limits and
    the token counter of the backend it plans for."""

    limits: Limits
    counter: TokenCounter


class ExtractionPipeline:
    """The parts and settings of extraction, and the one path a document takes through them.

    model None with `planning`: a planning-only pipeline, as `chatocr plan` uses; routing then
    never calls a classifier and `run` is refused.
    """

    def __init__(
        self,
        config: ChatOCRConfig,
        library: ScenarioLibrary,
        *,
        model: ChatModel | None,
        engine: OCREngine | None = None,
        bank: ExampleBank | None = None,
        planning: Planning | None = None,
        memory: ExampleMemory | None = None,
    ) -> None:
        """memory: the memory of reviewed documents examples also come from (ExampleMemory.of(config),
        as ChatOCR assembles it); None: the scenarios' examples only."""
        if model is None and planning is None:
            raise ConfigError("A pipeline without a chat model needs the limits and token counter to plan with.")
        self.config = config
        self.library = library
        self.model = model
        self.engine = engine
        self.bank = bank if bank is not None else ExampleBank(library, layout_weight=config.example_layout)
        self.memory = memory
        self.router = Router(library)
        self.fallback: Scenario | None = self.router.fallback_scenario()  # the fields when none matched
        # checks, signals, the calibrations fitted with this model, the review decision
        self.trust = TrustAssessor(library, model.label if model is not None else "")
        self.limits: Limits = planning.limits if planning is not None else model.limits  # type: ignore[union-attr]
        self.counter: TokenCounter = planning.counter if planning is not None else model.counter  # type: ignore[union-attr]
        self.policy = plan_policy(config, model)
        self.levers = Levers.of(config)
        self.budget = ExtractionBudget(max_steps=config.max_steps, max_tokens=config.max_tokens)
        self.base_settings = ChatSettings(
            temperature=config.temperature, max_output_tokens=config.max_output_tokens, timeout=config.timeout
        )
        self._planners: dict[str, ConversationPlanner] = {}

    def derive(
        self,
        *,
        config: ChatOCRConfig | None = None,
        bank: ExampleBank | None = None,
        model: ChatModel | None = None,
        memory: ExampleMemory | bool | None = True,
    ) -> ExtractionPipeline:
        """A pipeline with the same engine and scenarios and other settings, example bank or backend
        (another backend brings its own limits and counter, e.g. a fine-tuned model in eval).
        memory: True keeps this pipeline's (its stores stay open); an ExampleMemory or None replaces it."""
        kept = self.memory if memory is True else memory or None
        if model is not None:
            return ExtractionPipeline(
                config or self.config, self.library, model=model, engine=self.engine, bank=bank, memory=kept
            )
        planning = Planning(self.limits, self.counter) if self.model is None else None
        return ExtractionPipeline(
            config or self.config,
            self.library,
            model=self.model,
            engine=self.engine,
            bank=bank,
            planning=planning,
            memory=kept,
        )

    # -- the parts, configured ----------------------------------------------------------------

    def planner(self, language: str) -> ConversationPlanner:
        """The conversation manager for this backend and language (kept: it caches counts)."""
        planner = self._planners.get(language)
        if planner is None:
            prompts = load_prompts(language, self.config.prompt_dirs)
            planner = ConversationPlanner(prompts, self.counter, self.limits, self.policy)
            self._planners[language] = planner
        return planner

    def settings(self, **changes: Any) -> ChatSettings:
        return replace(self.base_settings, **changes)

    def request(self, keys: Keys = None, scenario: ScenarioSpec = None, **options: Any) -> ExtractionRequest:
        """The request every document of one call is asked: see extraction/request.py."""
        return resolve_request(self, keys, scenario, **options)

    def language_and_title(self, scenario: Scenario | None, language: str) -> tuple[str, str]:
        """The prompts' language and the document's title: the scenario's; else the document's
        language (computed once, by the caller) and the fallback scenario's title when it speaks
        that language, else a plain "document"."""
        if scenario is not None:
            return scenario.language, scenario.title
        fallback = self.fallback
        if fallback is not None and fallback.language == language:
            return language, fallback.title
        return language, _UNTITLED.get(language, _UNTITLED["en"])

    # -- the path of one document ---------------------------------------------------------------

    async def read(self, source: Input, *, prepare_model: bool = False) -> OCRDocument:
        """OCR an input (in a worker thread: engines are CPU-bound), or pass an OCRDocument through.

        prepare_model: get the model ready meanwhile, in another thread (`ChatModel.prepare`: the
        local model loads its weights), for a document the model reads next: a first document then
        waits for the longer of the two, not for both. Returns once both are done, because loading
        a local model silences the whole process's stdout and stderr (llama-cpp-python does), and
        whatever the caller prints next must be seen."""
        document, _ = await self._read(source, prepare_model)
        return document

    async def _read(self, source: Input, prepare_model: bool) -> tuple[OCRDocument, float]:
        """(the document, the seconds the OCR itself took: not the wait for the model)."""
        if isinstance(source, OCRDocument):
            return source, 0.0
        engine = self.engine
        if engine is None:
            raise ConfigError("This pipeline has no OCR engine.", hint="Pass an OCRDocument or configure an engine.")
        started = time.perf_counter()
        finished = started

        def ocr() -> OCRDocument:
            nonlocal finished
            try:
                return engine.read(source)
            finally:
                finished = time.perf_counter()

        preparing = asyncio.ensure_future(asyncio.to_thread(self._prepare_model)) if prepare_model else None
        try:
            document = await asyncio.to_thread(ocr)
        finally:
            if preparing is not None:
                await preparing
        return document, finished - started

    def _prepare_model(self) -> None:
        if self.model is None:
            return
        try:
            self.model.prepare()
        except Exception:  # the model's first call raises it again, where it is reported
            log.debug("preparing the model beside the OCR failed", exc_info=True)

    async def route(
        self, prepared: PreparedDocument, request: ExtractionRequest
    ) -> tuple[Route, Scenario | None, list[CallRecord]]:
        """The request's scenario, else the router's choice (pre-score, classifier) or None (fallback)."""
        if request.scenario is not None:
            return Route("given", request.scenario.name, 1.0, [], "named by the caller"), request.scenario, []
        # A page of noise: nothing to classify, and nothing will be asked (see the checked loop).
        classify = request.classify and not prepared.words.noise
        return await self.router.route(
            prepared.text,
            self.model,
            classify=classify,
            planner=self.planner(prepared.language),
            settings=self.base_settings,
        )

    def build_task(
        self,
        text: str,
        scenario: Scenario | None,
        request: ExtractionRequest,
        language: str | None = None,
        *,
        source: str | None = None,
    ) -> ExtractionTask:
        """What to ask of one document: the fields (the request's schema's; else its keys, by the
        scenario's names and aliases; else the scenario's own, else the fallback scenario's), the
        language and title, the instructions focused on those fields, and the examples ranked for
        this text: the scenario's and the memory's together (extraction/remembered.py). language:
        the document's, when the caller has it (PreparedDocument.language); source: its path (a
        leave-one-out memory leaves its own example out)."""
        typed = request.typed
        warnings: list[str] = []
        fields = typed.schema.fields if typed.schema is not None else resolve_fields(scenario, request.keys)
        fallback = self.fallback
        if not fields:
            if fallback is None:
                raise ScenarioError(
                    "No scenario matched and no keys were given.", hint="Pass keys=[...] or a scenario name."
                )
            fields = fallback.fields
            warnings.append(f"no scenario matched: extracted the {fallback.name!r} fields")
        base = scenario or fallback
        language, title = self.language_and_title(scenario, language or language_of(text))
        focus = self.config.focus
        instructions = ""
        if base is not None:
            instructions = base.instructions_for(f.name for f in fields) if focus else base.instructions
        if typed.question:  # ChatSession.ask(question, schema=...): the question is the task's focus
            instructions = f"{instructions}\n{typed.question}".strip()
        spec = TaskSpec(title, tuple(fields), instructions)
        examples = self.bank.select(text, spec.fields, scenario, focus=focus)
        recall = None
        if self.memory is not None:
            recall = self.memory.recall(text, spec.fields, scenario, focus=focus, source=source)
            examples, recall = ranked_together(self.bank, text, examples, recall, scenario)
            if recall is not None and recall.problem:
                warnings.append(recall.problem)
        return ExtractionTask(spec, examples, language, scenario, tuple(warnings), typed, request.policy, recall)

    def plan(self, prepared: PreparedDocument, task: ExtractionTask) -> Plan:
        """The first conversation `run` sends for this task (what `chatocr plan` shows)."""
        return self.planner(task.language).plan(task.spec, task.examples, prepared.text, policy=task.policy)

    async def run(
        self,
        prepared: PreparedDocument,
        task: ExtractionTask,
        result: Extraction,
        *,
        accept: AcceptOptions | None = None,
    ) -> None:
        """The checked loop (extraction/loop.py) for this document; fills `result` as it goes. Then
        which values to trust (extraction/trust.py): checks, signals, the calibrated confidence and
        the accept/review decision under `accept` (default: the config's)."""
        if self.model is None:
            raise ConfigError("This pipeline only plans: it has no chat model to run with.")
        planner = self.planner(task.language)
        loop = CheckedLoop(self.model, planner, self.budget, self.levers, self.base_settings, prepared, task, result)
        await loop.run()
        looks = await self._second_look(prepared, task, result, loop.probabilities) if self.config.second_look else None
        self.trust.assess(
            result, task.scenario, loop.page, loop.probabilities, looks, accept=accept or AcceptOptions.of(self.config)
        )

    async def _second_look(
        self,
        prepared: PreparedDocument,
        task: ExtractionTask,
        result: Extraction,
        probabilities: Mapping[str, ValueProbability],
    ) -> dict[str, bool] | None:
        """A second look at the uncertain fields (extraction/second_look.py), within the budget."""
        assert self.model is not None
        uncertain = uncertain_fields(task.spec.fields, result.fields, probabilities, self.config.second_look_below)
        questions = look_questions(uncertain, result.fields, prepared.index)
        if not questions or tokens_used(result.calls, self.model) >= self.budget.max_tokens:
            return None
        look = SecondLook(self.model, self.planner(task.language).prompts, self.base_settings, task.spec.title)
        progress.emit("ask", f"a second look at {len(questions)} field(s)")
        return await look.run(questions, result.fields, result.calls)

    async def answer(
        self,
        prepared: PreparedDocument,
        question: str,
        history: Sequence[tuple[str, str]],
        *,
        language: str,
        title: str,
        calls: list[CallRecord],
        on_delta: Callable[[str], None] | None = None,
    ) -> tuple[str, int]:
        """A chat session's answer to `question` about the document, with as much of `history` as
        the budget allows; the call is appended to `calls` (failed ones too). Returns the answer
        and how many of the oldest exchanges were left out. `on_delta` gets the answer's text as
        it is generated (the REPL shows it)."""
        model = self.model
        if model is None:
            raise ConfigError("This pipeline only plans: it has no chat model to answer with.")
        messages, dropped = self.planner(language).plan_chat(title, prepared.text, history, question)
        record = CallRecord.start("chat", model, messages)
        calls.append(record)
        try:
            reply = await model.chat(messages, self.settings(), on_delta=on_delta)
        except asyncio.CancelledError:  # Ctrl-C in the REPL
            record.error = "cancelled"
            raise
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        record.finish(reply)
        return reply.text.strip(), dropped

    async def extract(self, source: Input, request: ExtractionRequest) -> tuple[Extraction, ChatOCRError | None]:
        """One document from input to result, as `request` asks. Never raises for the document's
        own failure: the error is returned beside the partial result (and recorded in
        `result.error`)."""
        started = time.perf_counter()
        result = Extraction(source=source_name(source))
        error: ChatOCRError | None = None
        ocr_seconds = 0.0
        with progress.about(result.source):  # events of this document name it
            try:
                if not isinstance(source, OCRDocument):
                    progress.emit("read", "reading the document and running OCR")
                document, ocr_seconds = await self._read(source, prepare_model=True)
                result.ocr = _ocr_summary(document)
                result.warnings.extend(document.warnings)
                cached = " (from the OCR cache)" if document.cached else ""
                progress.emit("ocr", f"OCR: {len(document.lines)} lines{cached}", seconds=ocr_seconds)
                prepared = PreparedDocument.of(document, result.source)
                result.route, chosen, calls = await self.route(prepared, request)
                result.calls.extend(calls)
                result.scenario = chosen.name if chosen else None
                progress.emit("route", f"scenario {result.scenario or '(none: fallback)'} ({result.route.mode})")
                task = self.build_task(prepared.text, chosen, request, prepared.language, source=prepared.source)
                try:
                    await self.run(prepared, task, result, accept=request.accept)
                finally:
                    self._note_memory(task, result)
            except Exception as exc:  # one document's failure is recorded, never lost
                error = as_chatocr_error(exc)
                result.error = error_record(exc)
            finally:
                total = time.perf_counter() - started
                llm = sum(c.latency_s for c in result.calls)
                result.timings = {
                    "ocr_s": round(ocr_seconds, 4),
                    "llm_s": round(llm, 4),
                    "total_s": round(total, 4),
                    "overhead_s": round(max(0.0, total - ocr_seconds - llm), 4),
                }
                progress.emit("done", "failed" if error else "done", seconds=total)
        return result, error

    def _note_memory(self, task: ExtractionTask, result: Extraction) -> None:
        """What the memory did, on the result; the use of the examples the plan took, recorded."""
        if self.memory is None or task.memory is None:
            return
        used = [example_id for example_id in result.examples if example_id.startswith(MEMORY_PREFIX)]
        result.memory = task.memory.summary(used)
        problem = self.memory.touch(task.memory, used)
        if problem is not None:  # a read-only store: used, not recorded
            result.warnings.append(problem)
            result.memory["warning"] = problem


def _ocr_summary(document: OCRDocument) -> dict[str, Any]:
    return {
        "engine": document.engine,
        "model": document.model,
        "cached": document.cached,
        "pages": len(document.pages),
        "lines": len(document.lines),
        "has_boxes": document.has_boxes,
        "seconds": round(document.seconds, 4),
    }
