"""The per-document pipeline: every caller (the API, batch, `chatocr plan`, `chatocr eval`, the chat
session, the REPL) reaches extraction through these few methods, so what `plan` shows is what
`extract` sends.

    read -> prepare -> route -> build_task -> run
    (OCR)  (layout,   (given,   (fields,     (plan -> chat -> parse -> validate -> ground
            index)     prescore, language,    -> re-ask, within the budget; fills the Extraction)
                       classifier title, examples)
                       or fallback)

`ExtractionPipeline` holds the parts (scenarios, example bank, router, backend, OCR engine) and
the settings, and decides once what is decided per document: which scenario was named, the
fields asked, the language and title, the plan policy. Re-planning with less is the planner's
job (`ConversationPlanner.shrink`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from chatocr import progress
from chatocr.config import ChatOCRConfig
from chatocr.conversation.planner import ConversationPlanner, Plan, PlanExample, PlanPolicy, TaskSpec
from chatocr.conversation.templates import load_prompts
from chatocr.errors import (
    ChatOCRError,
    ConfigError,
    ContextTooLongError,
    DocumentTooLargeError,
    InputError,
    ScenarioError,
    as_chatocr_error,
    error_record,
)
from chatocr.extraction.examples import ExampleBank, resolve_fields
from chatocr.extraction.extractor import ExtractionBudget, evaluate, merge_best, tokens_used
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.levers import answer_schema, choice_questions, finish_fields, open_problems
from chatocr.extraction.noise import PageWords, page_words
from chatocr.extraction.parsing import parse_reply
from chatocr.extraction.reask import Question, answers_from, choice_schema, render_question
from chatocr.extraction.result import CallRecord, Extraction, FieldResult, Route
from chatocr.extraction.routing import Router, RoutingPolicy, language_of
from chatocr.extraction.typed_request import TypedRequest
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.messages import Limits, Message
from chatocr.ocr.base import OCREngine
from chatocr.ocr.layout import LayoutText
from chatocr.ocr.types import OCRDocument
from chatocr.scenarios.keys import as_keys
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import FieldSpec, Scenario
from chatocr.tokens import TokenCounter

__all__ = [
    "ExtractionPipeline",
    "ExtractionTask",
    "PreparedDocument",
    "plan_policy",
    "source_name",
]

log = logging.getLogger("chatocr")

Input = Any  # a path, bytes, PIL image, numpy array or an OCRDocument

_NOISE_WARNING = (
    "the OCR text holds (almost) no words, only symbols and stray letters: nothing was asked of the model "
    "and every field is missing. Check that the image shows a document, in focus and the right way up."
)

# The title of a document that matched no scenario, in the prompts' language.
_UNTITLED = {"zh": "文档", "en": "document"}


def source_name(source: Input) -> str:
    if isinstance(source, OCRDocument):
        return source.source or "<document>"
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        return str(source)
    return f"<{type(source).__name__}>"


def plan_policy(config: ChatOCRConfig, model: ChatModel | None) -> PlanPolicy:
    """The configured plan policy. order "auto" is "stable" for a backend with a prompt-prefix cache
    (the same examples in the same order let it re-use everything before the document)."""
    order = config.order
    if order == "auto":
        order = "stable" if model is not None and model.supports_prefix_cache else "relevance"
    return PlanPolicy(config.packing, config.restate_every, config.max_examples, order)


@dataclass(frozen=True)
class PreparedDocument:
    """One document as extraction sees it: the OCR result, its reading-order text (what the model
    is shown) and the index that grounds values in that text (built on first use)."""

    source: str
    document: OCRDocument
    layout: LayoutText

    @classmethod
    def of(cls, document: OCRDocument, source: str | None = None) -> PreparedDocument:
        prepared = cls(source or source_name(document), document, document.layout())
        if not prepared.text.strip():
            raise InputError(
                f"{prepared.source}: OCR found no text in the document.",
                hint="Check that the image is not blank, too small or rotated; try another --ocr engine.",
            )
        return prepared

    @property
    def text(self) -> str:
        return self.layout.text

    @cached_property
    def index(self) -> TextIndex:
        return TextIndex(self.layout)

    @cached_property
    def words(self) -> PageWords:
        """How much of the text reads as words; `.noise` when (almost) none does (a photo of a wall)."""
        return page_words(self.text)


@dataclass(frozen=True)
class ExtractionTask:
    """What is asked of the model for one document, decided in one place (`build_task`)."""

    spec: TaskSpec  # title, the fields asked, the (focused) instructions
    examples: list[PlanExample]  # ranked, most relevant first
    language: str  # of the prompts
    scenario: Scenario | None  # the scenario given or routed to; None: no scenario matched
    warnings: tuple[str, ...] = ()
    typed: TypedRequest = field(default_factory=TypedRequest)  # a schema, min_confidence (docs/typed.md)


@dataclass
class _Loop:
    """One run of the extraction loop: what it works on, and its state."""

    prepared: PreparedDocument
    task: ExtractionTask
    planner: ConversationPlanner
    policy: PlanPolicy
    plan: Plan
    messages: list[Message]
    calls: list[CallRecord] = field(default_factory=list)
    best: dict[str, FieldResult] = field(default_factory=dict)
    replans: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    steps: int = 0  # answers received (a refused call is not a step)
    # A field-aware re-ask in flight (config field_reask): its questions, and every field asked so far.
    choosing: list[Question] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)

    def shrink(self, *, within: Limits | None = None, extra: Sequence[Message] = ()) -> Plan:
        """The planner's smaller plan for this task (see ConversationPlanner.shrink)."""
        spec, examples = self.task.spec, self.task.examples
        return self.planner.shrink(
            self.plan, spec, examples, self.prepared.text, policy=self.policy, within=within, extra=extra
        )


class ExtractionPipeline:
    """The parts and settings of extraction, and the one path a document takes through them.

    model None (with `limits` and `counter`): a planning-only pipeline, as `chatocr plan` uses;
    routing then never calls a classifier and `run` is refused.
    """

    def __init__(
        self,
        config: ChatOCRConfig,
        library: ScenarioLibrary,
        *,
        model: ChatModel | None,
        engine: OCREngine | None = None,
        bank: ExampleBank | None = None,
        limits: Limits | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        if model is None and (limits is None or counter is None):
            raise ConfigError("A pipeline without a chat model needs limits and a token counter to plan with.")
        self.config = config
        self.library = library
        self.model = model
        self.engine = engine
        self.bank = bank if bank is not None else ExampleBank(library, layout_weight=config.example_layout)
        self.router = Router(library, RoutingPolicy(classify=config.classify))
        self.limits: Limits = limits if limits is not None else model.limits  # type: ignore[union-attr]
        self.counter: TokenCounter = counter if counter is not None else model.counter  # type: ignore[union-attr]
        self.policy = plan_policy(config, model)
        self.budget = ExtractionBudget(max_steps=config.max_steps, max_tokens=config.max_tokens)
        self._planners: dict[str, ConversationPlanner] = {}

    def derive(
        self,
        *,
        config: ChatOCRConfig | None = None,
        bank: ExampleBank | None = None,
        model: ChatModel | None = None,
    ) -> ExtractionPipeline:
        """A pipeline with the same engine and scenarios and other settings, example bank or backend
        (another backend brings its own limits and counter, e.g. a fine-tuned model in eval)."""
        if model is not None:
            return ExtractionPipeline(config or self.config, self.library, model=model, engine=self.engine, bank=bank)
        return ExtractionPipeline(
            config or self.config,
            self.library,
            model=self.model,
            engine=self.engine,
            bank=bank,
            limits=self.limits,
            counter=self.counter,
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

    def policy_or_default(self, policy: PlanPolicy | None) -> PlanPolicy:
        """The plan policy a caller gave (eval strategies do), else the configured one."""
        return policy if policy is not None else self.policy

    def settings(self, **changes: Any) -> ChatSettings:
        cfg = self.config
        base = {"temperature": cfg.temperature, "max_output_tokens": cfg.max_output_tokens, "timeout": cfg.timeout}
        return ChatSettings(**{**base, **changes})

    def scenario_named(self, name: str | Path | Scenario | None) -> Scenario | None:
        """The scenario the caller named, or a scenario YAML file (which joins the library); None
        for "auto"/None (route it). Unknown names raise a ScenarioError with suggestions."""
        return None if name in (None, "", "auto") else self.library.resolve(name)

    def language_and_title(self, scenario: Scenario | None, text: str) -> tuple[str, str]:
        """The prompts' language and the document's title: the scenario's; else the text's language
        and the fallback scenario's title when it speaks that language, else a plain "document"."""
        if scenario is not None:
            return scenario.language, scenario.title
        language = language_of(text)
        fallback = self.router.fallback_scenario()
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
        self, prepared: PreparedDocument, scenario: str | Path | Scenario | None, *, classify: bool | None = None
    ) -> tuple[Route, Scenario | None, list[CallRecord]]:
        """The scenario named, else the router's choice (pre-score, classifier) or None (fallback)."""
        named = self.scenario_named(scenario)
        if named is not None:
            return Route("given", named.name, 1.0, [], "named by the caller"), named, []
        if prepared.words.noise:  # nothing to classify, and nothing will be asked (see `run`)
            classify = False
        planner = self.planner(language_of(prepared.text))
        return await self.router.route(
            prepared.text, self.model, classify=classify, planner=planner, settings=self.settings()
        )

    def build_task(
        self,
        text: str,
        scenario: Scenario | None,
        keys: Sequence[str | FieldSpec] | str | None = None,
        typed: TypedRequest | None = None,
    ) -> ExtractionTask:
        """What to ask: the fields (a typed request's schema's; else the keys, in the key syntax,
        by the scenario's names and aliases; else the scenario's own, else the fallback
        scenario's), the language and title, the instructions focused on those fields, and the
        examples ranked for this document."""
        typed = typed or TypedRequest()
        keys = as_keys(keys)  # "total:amount=final total" items are typed and described
        warnings: list[str] = []
        fields = typed.schema.fields if typed.schema is not None else resolve_fields(scenario, keys)
        fallback = self.router.fallback_scenario()
        if not fields:
            if fallback is None:
                raise ScenarioError(
                    "No scenario matched and no keys were given.", hint="Pass keys=[...] or a scenario name."
                )
            fields = fallback.fields
            warnings.append(f"no scenario matched: extracted the {fallback.name!r} fields")
        base = scenario or fallback
        language, title = self.language_and_title(scenario, text)
        focus = self.config.focus
        instructions = ""
        if base is not None:
            instructions = base.instructions_for(f.name for f in fields) if focus else base.instructions
        if typed.question:  # ChatSession.ask(question, schema=...): the question is the task's focus
            instructions = f"{instructions}\n{typed.question}".strip()
        spec = TaskSpec(title, tuple(fields), instructions)
        examples = self.bank.select(text, spec.fields, scenario, focus=focus)
        return ExtractionTask(spec, examples, language, scenario, tuple(warnings), typed)

    def plan(self, prepared: PreparedDocument, task: ExtractionTask, policy: PlanPolicy | None = None) -> Plan:
        """The first conversation `run` sends for this task (what `chatocr plan` shows)."""
        return self.planner(task.language).plan(
            task.spec, task.examples, prepared.text, policy=self.policy_or_default(policy)
        )

    async def run(
        self, prepared: PreparedDocument, task: ExtractionTask, result: Extraction, policy: PlanPolicy | None = None
    ) -> None:
        """plan -> chat -> parse -> validate -> ground -> re-ask with the concrete problems, until
        none remain or the budget (steps, tokens) is spent; per field the best answer is kept.
        Fills `result` (fields, values, plan, calls, steps, re-plans, warnings) as it goes, so a
        failure mid-way still leaves what was done. A page whose text is noise (extraction/noise.py)
        asks nothing: every field missing, with a warning."""
        model = self.model
        if model is None:
            raise ConfigError("This pipeline only plans: it has no chat model to run with.")
        policy = self.policy_or_default(policy)
        planner = self.planner(task.language)
        settings = self.settings(json_mode=answer_schema(self.config, task.spec.fields, prepared.layout))
        budget = self.budget
        plan = self.plan(prepared, task, policy)
        loop = _Loop(prepared, task, planner, policy, plan, list(plan.messages))
        result.examples = [e.id for e in plan.report.included]
        result.plan = plan.report
        result.warnings.extend(task.warnings)
        if prepared.words.noise:  # a model shown noise copies some of it: no value is better
            loop.warnings.append(_NOISE_WARNING)
            for spec in task.spec.fields:
                loop.best[spec.name] = FieldResult(
                    spec.name, None, status="missing", required=spec.required, problem="the page holds no words"
                )
            self._fill(result, loop, task, self.config)
            return
        try:
            while loop.steps < budget.max_steps:
                if loop.calls and tokens_used(loop.calls, model) >= budget.max_tokens:
                    loop.warnings.append(
                        f"stopped after {loop.steps} step(s): the token budget ({budget.max_tokens}) is spent"
                    )
                    break
                purpose = "extract" if loop.steps == 0 else "choose" if loop.choosing else "repair"
                record = CallRecord.start(purpose, model, loop.messages)
                loop.calls.append(record)
                result.calls.append(record)
                progress.emit(
                    "ask",
                    f"asking {model.provider}:{model.model}"
                    + (" again about the problems found" if loop.steps else f" for {len(task.spec.fields)} field(s)"),
                )
                step_settings = settings
                if loop.choosing:
                    step_settings = self.settings(json_mode=choice_schema(loop.choosing))
                try:
                    reply = await model.chat(loop.messages, step_settings)
                except ContextTooLongError as exc:
                    record.error = f"ContextTooLongError: {exc.message}"
                    loop.choosing = []  # the re-plan drops the question with the history: ask anew
                    self._replan(loop, exc)
                    result.plan = loop.plan.report
                    result.examples = [e.id for e in loop.plan.report.included]
                    continue
                except Exception as exc:  # kept in the transcript, then the document fails
                    record.error = f"{type(exc).__name__}: {exc}"
                    raise
                record.finish(reply)
                loop.steps += 1
                problems = self._check_choice(loop, reply.text) if loop.choosing else self._check(loop, reply.text)
                if reply.truncated:
                    problems.append("the answer was cut off: answer with the JSON object only, no other text")
                if not problems:
                    break
                if loop.steps >= budget.max_steps:
                    loop.warnings.append(f"unresolved after {loop.steps} step(s): " + "; ".join(problems))
                    break
                self._reask(loop, reply.text, problems, self.config)
        finally:
            self._fill(result, loop, task, self.config)

    @staticmethod
    def _check(loop: _Loop, answer: str) -> list[str]:
        parsed = parse_reply(answer)
        if parsed.data is None:
            return [f"{parsed.error}; answer with one JSON object only"]
        prepared = loop.prepared
        results, problems = evaluate(loop.task.spec.fields, parsed.data, prepared.document, prepared.index)
        loop.best = merge_best(loop.best, results)
        review = loop.task.typed.review()  # low confidence marked; a typed model's validation problems
        if review is not None:
            problems.extend(review(loop.best))
        return problems

    @staticmethod
    def _check_choice(loop: _Loop, answer: str) -> list[str]:
        """A field-aware re-ask's reply: the chosen candidates (the page's text) checked and
        grounded like any answer; then what is still wrong with the best answers."""
        questions, loop.choosing = loop.choosing, []
        chosen = answers_from(questions, parse_reply(answer).data)
        asked = tuple(q.field for q in questions)
        prepared = loop.prepared
        results, _ = evaluate(asked, chosen, prepared.document, prepared.index)
        loop.best = merge_best(loop.best, {n: r for n, r in results.items() if r.value is not None})
        return open_problems(loop.task.spec.fields, loop.best)

    def _replan(self, loop: _Loop, refused: ContextTooLongError) -> None:
        """A smaller plan after "context too long": below the declared limits and below what was
        just refused (a backend whose real window is smaller than its declared one would otherwise
        get the same plan again)."""
        budget = self.budget
        if len(loop.replans) >= budget.max_replans:
            raise refused
        factor = budget.replan_factor ** (len(loop.replans) + 1)
        within = loop.planner.limits_below(loop.messages, factor, budget.replan_factor)
        try:
            loop.plan = loop.shrink(within=within)
        except DocumentTooLargeError:
            if not loop.plan.report.included:
                raise
            # Even the bare task is over that share of what was refused; any plan with fewer
            # examples is still smaller than the refused one: take one within the scaled limits.
            loop.plan = loop.shrink(within=loop.planner.limits.scaled(factor))
        loop.messages = list(loop.plan.messages)
        loop.replans.append(
            f"context too long at step {loop.steps + 1}: re-planned with {factor:.0%} of the budget, at most "
            f"{budget.replan_factor:.0%} of what was refused ({len(loop.plan.report.included)} examples, "
            f"{loop.plan.report.document_parts} document part(s))"
        )

    @staticmethod
    def _reask(loop: _Loop, answer: str, problems: list[str], config: ChatOCRConfig) -> None:
        """The conversation plus the model's answer and the re-ask, within the budget: the planner
        shrinks the plan when needed; when nothing smaller fits, the problems are appended to the
        plain task instead. With config field_reask, bad required fields not yet asked about are
        asked alone, as numbered choices, instead of repeating the whole task."""
        fields, index = loop.task.spec.fields, loop.prepared.index
        loop.choosing = choice_questions(config, fields, loop.best, index, loop.asked)
        if loop.choosing:
            loop.asked |= {q.field.name for q in loop.choosing}
            repair = render_question(loop.planner.prompts, loop.choosing)
        else:
            keys_json = json.dumps(loop.task.spec.keys, ensure_ascii=False)
            repair = loop.planner.prompts.render("repair", problems=problems, keys_json=keys_json)
        extra = [Message("assistant", answer, kind="answer"), Message("user", repair, kind="repair")]
        if loop.planner.fits([*loop.messages, *extra]):
            loop.messages = [*loop.messages, *extra]
            return
        try:
            loop.messages = [*loop.shrink(extra=extra).messages, *extra]
        except ChatOCRError:  # nothing fits with the history: ask again from the plain task
            last = loop.messages[-1]
            loop.messages = [*loop.messages[:-1], Message("user", f"{last.content}\n\n{repair}", kind="task+repair")]

    @staticmethod
    def _fill(result: Extraction, loop: _Loop, task: ExtractionTask, config: ChatOCRConfig) -> None:
        for spec in task.spec.fields:
            loop.best.setdefault(
                spec.name,
                FieldResult(spec.name, None, status="missing", required=spec.required, problem="no readable answer"),
            )
        fields, moved = finish_fields(config, task.spec.fields, loop.best, loop.prepared.index, loop.prepared.document)
        loop.warnings.extend(moved)
        result.fields = {f.name: fields[f.name] for f in task.spec.fields}
        result.values = {name: f.value for name, f in result.fields.items() if f.value is not None}
        result.steps = loop.steps
        result.replans = loop.replans
        result.warnings.extend(loop.warnings)
        ungrounded = [n for n, f in result.fields.items() if f.status == "ungrounded"]
        if ungrounded:
            result.warnings.append(f"not found in the document (do not trust): {', '.join(ungrounded)}")
        task.typed.finish(result)  # result.data / errors / schema; low_confidence

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

    async def extract(
        self,
        source: Input,
        keys: Sequence[str | FieldSpec] | str | None = None,
        scenario: str | Path | Scenario | None = None,
        *,
        classify: bool | None = None,
        policy: PlanPolicy | None = None,
        typed: TypedRequest | None = None,
    ) -> tuple[Extraction, ChatOCRError | None]:
        """One document from input to result. Never raises for the document's own failure: the
        error is returned beside the partial result (and recorded in `result.error`)."""
        started = time.perf_counter()
        result = Extraction(source=source_name(source))
        error: ChatOCRError | None = None
        ocr_seconds = 0.0
        with progress.about(result.source):  # events of this document name it
            try:
                self.scenario_named(scenario)  # an unknown name fails before the OCR is paid for
                if not isinstance(source, OCRDocument):
                    progress.emit("read", "reading the document and running OCR")
                document, ocr_seconds = await self._read(source, prepare_model=True)
                result.ocr = _ocr_summary(document)
                result.warnings.extend(document.warnings)
                cached = " (from the OCR cache)" if document.cached else ""
                progress.emit("ocr", f"OCR: {len(document.lines)} lines{cached}", seconds=ocr_seconds)
                prepared = PreparedDocument.of(document, result.source)
                result.route, chosen, calls = await self.route(prepared, scenario, classify=classify)
                result.calls.extend(calls)
                result.scenario = chosen.name if chosen else None
                progress.emit("route", f"scenario {result.scenario or '(none: fallback)'} ({result.route.mode})")
                task = self.build_task(prepared.text, chosen, keys, typed)
                await self.run(prepared, task, result, policy)
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
