"""The checked loop: chat -> parse -> check -> re-ask or re-plan -> fill, for one document.

    loop = CheckedLoop(model, planner, budget, levers, settings, prepared, task, result)
    await loop.run()          # fills `result` as it goes: a failure mid-way still leaves what was done

One object holds the loop's state (the conversation so far, the best answer per field, the calls,
the re-plans, a field-aware re-ask in flight); what to ask (`ExtractionTask`) is assembled before it
by the pipeline, and the accuracy levers come as one small value (`Levers`), not the config.

- each answer is parsed (extraction/parsing.py), checked and grounded field by field
  (extractor.evaluate; a typed request's review marks low confidence and checks the model), and
  merged with the best answers so far; each value's probability (the backend's token
  log-probabilities, where it gives them) is kept from the step whose answer was kept;
- the scenario's document checks run on the best answers: a failed check's message is a re-ask
  problem, once per check ("total 10.00 is the CASH line; the final amount is TOTAL 9.00"), and
  an answer never replaces one that passed a check with one that fails it;
- problems left (unreadable JSON, missing or extra keys, invalid or ungrounded values) are asked
  again in the conversation, within the planner's budget; with the `field_reask` lever (or a
  ruled-out answer) the bad required fields are asked alone, as numbered choices from the page;
- "context too long" re-plans with less (the planner's `shrink`), below what was just refused;
- the budget (steps, tokens) bounds it; at the end the fields are finished (snapping, positions)
  and written into the result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from chatocr import progress
from chatocr.calibration import ValueProbability, value_probabilities
from chatocr.checks import CheckResult, PageRows
from chatocr.conversation.planner import ConversationPlanner, Plan
from chatocr.errors import ChatOCRError, ContextTooLongError, DocumentTooLargeError
from chatocr.extraction.checking import page_rows, run_checks
from chatocr.extraction.extractor import ExtractionBudget, evaluate, merge_best, tokens_used
from chatocr.extraction.levers import Levers, answer_schema, choice_questions, finish_fields, open_problems
from chatocr.extraction.parsing import parse_reply
from chatocr.extraction.prepared import ExtractionTask, PreparedDocument
from chatocr.extraction.reask import Question, answers_from, choice_schema, render_question
from chatocr.extraction.result import CallRecord, Extraction, FieldResult, Recheck
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.messages import Limits, Message

__all__ = ["NOISE_WARNING", "CheckedLoop"]

NOISE_WARNING = (
    "the OCR text holds (almost) no words, only symbols and stray letters: nothing was asked of the model "
    "and every field is missing. Check that the image shows a document, in focus and the right way up."
)


@dataclass
class CheckedLoop:
    """One document's run of the loop: what it works with, and its state."""

    model: ChatModel
    planner: ConversationPlanner
    budget: ExtractionBudget
    levers: Levers
    settings: ChatSettings  # the configured request settings; the answer's schema is set per step
    prepared: PreparedDocument
    task: ExtractionTask
    result: Extraction
    plan: Plan = field(init=False)
    messages: list[Message] = field(init=False)
    answer_settings: ChatSettings = field(init=False)  # with the answer's JSON schema
    calls: list[CallRecord] = field(default_factory=list)
    best: dict[str, FieldResult] = field(default_factory=dict)
    replans: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    steps: int = 0  # answers received (a refused call is not a step)
    # A field-aware re-ask in flight: its questions, and every field asked so far.
    choosing: list[Question] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)
    # Trust: each field's value probability from the step whose answer is kept; the checks on the
    # best answers after the last step; the checks whose failure was already asked about.
    probabilities: dict[str, ValueProbability] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    checks_asked: set[str] = field(default_factory=set)
    failing: list[Recheck] = field(default_factory=list)  # this step's failed checks, recorded if re-asked

    def __post_init__(self) -> None:
        self.plan = self.planner.plan(self.task.spec, self.task.examples, self.prepared.text, policy=self.task.policy)
        self.messages = list(self.plan.messages)
        schema = answer_schema(self.levers, self.task.spec.fields, self.prepared.layout)
        # Token probabilities where the backend gives them (the value's probability is a signal of
        # correctness); a backend without them answers as before.
        self.answer_settings = replace(self.settings, json_mode=schema, logprobs=self.model.supports_logprobs)

    @cached_property
    def page(self) -> PageRows:
        """The page as rows of lines, for the document checks and label evidence."""
        return page_rows(self.prepared.layout)

    async def run(self) -> None:
        """Until no problem remains or the budget is spent; fills the result (also on failure).
        A page whose text is noise (extraction/noise.py) asks nothing: every field missing."""
        result, task = self.result, self.task
        self._record_plan()
        result.warnings.extend(task.warnings)
        if self.prepared.words.noise:  # a model shown noise copies some of it: no value is better
            self.warnings.append(NOISE_WARNING)
            for spec in task.spec.fields:
                self.best[spec.name] = FieldResult(
                    spec.name, None, status="missing", required=spec.required, problem="the page holds no words"
                )
            self._fill()
            return
        try:
            while self.steps < self.budget.max_steps and not await self._step():
                pass
        finally:
            self._fill()

    async def _step(self) -> bool:
        """One call and its check; True when the loop is done (answered, or the budget spent)."""
        model, budget = self.model, self.budget
        self.failing = []
        if self.calls and tokens_used(self.calls, model) >= budget.max_tokens:
            self.warnings.append(f"stopped after {self.steps} step(s): the token budget ({budget.max_tokens}) is spent")
            return True
        purpose = "extract" if self.steps == 0 else "choose" if self.choosing else "repair"
        record = CallRecord.start(purpose, model, self.messages)
        self.calls.append(record)
        self.result.calls.append(record)
        what = " again about the problems found" if self.steps else f" for {len(self.task.spec.fields)} field(s)"
        progress.emit("ask", f"asking {model.provider}:{model.model}{what}")
        settings = (
            replace(self.settings, json_mode=choice_schema(self.choosing)) if self.choosing else self.answer_settings
        )
        try:
            reply = await model.chat(self.messages, settings)
        except ContextTooLongError as exc:
            record.error = f"ContextTooLongError: {exc.message}"
            self.choosing = []  # the re-plan drops the question with the history: ask anew
            self._replan(exc)
            self._record_plan()
            return False
        except Exception as exc:  # kept in the transcript, then the document fails
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        record.finish(reply)
        self.steps += 1
        problems = self._check_choice(reply.text) if self.choosing else self._check(reply.text, reply.token_logprobs)
        if reply.truncated:
            problems.append("the answer was cut off: answer with the JSON object only, no other text")
        if not problems:
            return True
        if self.steps >= budget.max_steps:
            self.warnings.append(f"unresolved after {self.steps} step(s): " + "; ".join(problems))
            return True
        self.result.rechecks.extend(self.failing)
        self._reask(reply.text, problems)
        return False

    def _record_plan(self) -> None:
        self.result.plan = self.plan.report
        self.result.examples = [e.id for e in self.plan.report.included]

    def _check(self, answer: str, token_logprobs: Sequence[tuple[str, float]] | None = None) -> list[str]:
        parsed = parse_reply(answer)
        if parsed.data is None:
            return [f"{parsed.error}; answer with one JSON object only"]
        prepared = self.prepared
        results, problems = evaluate(self.task.spec.fields, parsed.data, prepared.document, prepared.index)
        answered = value_probabilities(answer, token_logprobs) if token_logprobs else {}
        by_key = {key.strip().casefold(): value for key, value in answered.items()}
        self._merge(results, {name: by_key.get(name.casefold()) for name in results})
        review = self.task.typed.review()  # low confidence marked; a typed model's validation problems
        if review is not None:
            problems.extend(review(self.best))
        return problems + self._check_problems()

    def _merge(self, results: dict[str, FieldResult], probabilities: dict[str, ValueProbability | None]) -> None:
        """The new answers merged with the best so far (extractor.merge_best), each kept value's
        probability with it; then a value that fails a document check its predecessor passed goes
        back to the predecessor (a re-ask after a false alarm must not trade a right value for a
        wrong one)."""
        before = dict(self.best)
        merged = merge_best(self.best, results)
        scenario = self.task.scenario
        if scenario is not None and scenario.checks and before:
            old = {c.name: c.passed for c in run_checks(scenario, before, self.page)}
            for check in run_checks(scenario, merged, self.page):
                if check.passed is False and old.get(check.name) is True:
                    for name in merged:
                        spec = scenario.field(name)
                        if spec is not None and spec.name in check.fields and name in before:
                            merged[name] = before[name]
        self.best = merged
        for name, result in results.items():
            if merged.get(name) is result:
                probability = probabilities.get(name)
                if probability is None:
                    self.probabilities.pop(name, None)
                else:
                    self.probabilities[name] = probability

    def _check_problems(self) -> list[str]:
        """The scenario's checks on the best answers; each failure not yet asked about is a re-ask
        problem (asked once: the model may well be right and the check's alarm false)."""
        scenario = self.task.scenario
        if scenario is None or not scenario.checks:
            return []
        self.checks = run_checks(scenario, self.best, self.page)
        failed = [c for c in self.checks if c.passed is False and c.name not in self.checks_asked]
        self.checks_asked |= {c.name for c in failed}
        self.failing = [Recheck(c.name, self.steps, c.message, self._values_of(c)) for c in failed]
        return [f"check {c.name} failed: {c.message}" for c in failed]

    def _values_of(self, check: CheckResult) -> dict[str, object]:
        """The best answers' values of the fields a check names, by the result's keys."""
        scenario = self.task.scenario
        out: dict[str, object] = {}
        for name, result in self.best.items():
            spec = scenario.field(name) if scenario is not None else None
            if spec is not None and spec.name in check.fields:
                out[name] = result.value
        return out

    def _check_choice(self, answer: str) -> list[str]:
        """A field-aware re-ask's reply: the chosen candidates (the page's text) checked and
        grounded like any answer; then what is still wrong with the best answers."""
        questions, self.choosing = self.choosing, []
        chosen = answers_from(questions, parse_reply(answer).data)
        asked = tuple(q.field for q in questions)
        prepared = self.prepared
        results, _ = evaluate(asked, chosen, prepared.document, prepared.index)
        # A chosen line has no probability of the model's writing it: the value's probability goes.
        chosen_results = {n: r for n, r in results.items() if r.value is not None}
        self._merge(chosen_results, dict.fromkeys(chosen_results))
        return open_problems(self.task.spec.fields, self.best)

    def _shrink(self, *, within: Limits | None = None, extra: Sequence[Message] = ()) -> Plan:
        """The planner's smaller plan for this task (see ConversationPlanner.shrink)."""
        spec, examples = self.task.spec, self.task.examples
        return self.planner.shrink(
            self.plan, spec, examples, self.prepared.text, policy=self.task.policy, within=within, extra=extra
        )

    def _replan(self, refused: ContextTooLongError) -> None:
        """A smaller plan after "context too long": below the declared limits and below what was
        just refused (a backend whose real window is smaller than its declared one would otherwise
        get the same plan again)."""
        budget = self.budget
        if len(self.replans) >= budget.max_replans:
            raise refused
        factor = budget.replan_factor ** (len(self.replans) + 1)
        within = self.planner.limits_below(self.messages, factor, budget.replan_factor)
        try:
            self.plan = self._shrink(within=within)
        except DocumentTooLargeError:
            if not self.plan.report.included:
                raise
            # Even the bare task is over that share of what was refused; any plan with fewer
            # examples is still smaller than the refused one: take one within the scaled limits.
            self.plan = self._shrink(within=self.planner.limits.scaled(factor))
        self.messages = list(self.plan.messages)
        self.replans.append(
            f"context too long at step {self.steps + 1}: re-planned with {factor:.0%} of the budget, at most "
            f"{budget.replan_factor:.0%} of what was refused ({len(self.plan.report.included)} examples, "
            f"{self.plan.report.document_parts} document part(s))"
        )

    def _reask(self, answer: str, problems: list[str]) -> None:
        """The conversation plus the model's answer and the re-ask, within the budget: the planner
        shrinks the plan when needed; when nothing smaller fits, the problems are appended to the
        plain task instead. With the field_reask lever, bad required fields not yet asked about are
        asked alone, as numbered choices, instead of repeating the whole task."""
        fields, index = self.task.spec.fields, self.prepared.index
        self.choosing = choice_questions(self.levers, fields, self.best, index, self.asked)
        if self.choosing:
            self.asked |= {q.field.name for q in self.choosing}
            repair = render_question(self.planner.prompts, self.choosing)
        else:
            keys_json = json.dumps(self.task.spec.keys, ensure_ascii=False)
            repair = self.planner.prompts.render("repair", problems=problems, keys_json=keys_json)
        extra = [Message("assistant", answer, kind="answer"), Message("user", repair, kind="repair")]
        if self.planner.fits([*self.messages, *extra]):
            self.messages = [*self.messages, *extra]
            return
        try:
            self.messages = [*self._shrink(extra=extra).messages, *extra]
        except ChatOCRError:  # nothing fits with the history: ask again from the plain task
            last = self.messages[-1]
            self.messages = [*self.messages[:-1], Message("user", f"{last.content}\n\n{repair}", kind="task+repair")]

    def _fill(self) -> None:
        result, task, prepared = self.result, self.task, self.prepared
        for spec in task.spec.fields:
            self.best.setdefault(
                spec.name,
                FieldResult(spec.name, None, status="missing", required=spec.required, problem="no readable answer"),
            )
        fields, moved = finish_fields(self.levers, task.spec.fields, self.best, prepared.index, prepared.document)
        self.warnings.extend(moved)
        result.fields = {f.name: fields[f.name] for f in task.spec.fields}
        result.values = {name: f.value for name, f in result.fields.items() if f.value is not None}
        result.steps = self.steps
        result.replans = self.replans
        result.warnings.extend(self.warnings)
        ungrounded = [n for n, f in result.fields.items() if f.status == "ungrounded"]
        if ungrounded:
            result.warnings.append(f"not found in the document (do not trust): {', '.join(ungrounded)}")
        task.typed.finish(result)  # result.data / errors / schema; low_confidence
