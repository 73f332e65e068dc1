"""The training conversation of one document: exactly what `ChatOCR.extract` would send for it.

A model fine-tuned on one conversation and later sent another underperforms, so the export does
not render prompts of its own: it asks chatocr's own task builder and conversation planner, with
the backend's limits, role rules and token counter, and appends the answer as the assistant turn
(rendered by the same `answer` template the planner uses for example answers: the JSON object
with every requested key, null for an absent value).

The task comes from the shared per-document pipeline (`chat.pipeline.build_task`,
chatocr/extraction/pipeline.py), the one place that decides what extraction asks; a test replays
the real extraction loop and checks that the exported conversation is the one it sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chatocr.api import ChatOCR
from chatocr.conversation.planner import Plan, PlanExample, TaskSpec
from chatocr.scenarios.model import Scenario

__all__ = ["TrainingConversation", "answer_text", "build_task", "plan_conversation"]


@dataclass(frozen=True)
class TrainingConversation:
    """The planned messages (role/content, system first when the backend has a system role) and
    the assistant's answer that follows them."""

    messages: list[dict[str, str]]
    answer: str
    task: TaskSpec
    language: str
    plan: Plan

    @property
    def with_answer(self) -> list[dict[str, str]]:
        return [*self.messages, {"role": "assistant", "content": self.answer}]


def build_task(
    chat: ChatOCR, scenario_name: str | None, keys: Sequence[str], text: str
) -> tuple[TaskSpec, list[PlanExample], Scenario | None, str]:
    """The task (fields, title, focused instructions), its ranked examples, the scenario and the
    prompt language, as extraction builds them for a document routed to `scenario_name` (None: the
    fallback)."""
    pipeline = chat.pipeline
    request = pipeline.request(list(keys), scenario_name)
    task = pipeline.build_task(text, request.scenario, request)
    return task.spec, list(task.examples), task.scenario, task.language


def answer_text(chat: ChatOCR, language: str, task: TaskSpec, answer: Mapping[str, Any]) -> str:
    """The assistant turn: every requested key in order, null when absent, as the planner renders
    an example's answer (json.dumps, ensure_ascii=False, through the `answer` template)."""
    ordered = {key: answer.get(key) for key in task.keys}
    planner = chat.pipeline.planner(language)
    return planner.prompts.render("answer", number=1, answer=json.dumps(ordered, ensure_ascii=False), labelled=False)


def plan_conversation(
    chat: ChatOCR,
    scenario_name: str | None,
    keys: Sequence[str],
    text: str,
    answer: Mapping[str, Any],
    *,
    examples: int = 0,
) -> TrainingConversation:
    """Plan the conversation for `text` with at most `examples` few-shot examples (0: the task
    alone, what a fine-tuned model is sent by `chatocr eval --strategy tuned`)."""
    task, ranked, _, language = build_task(chat, scenario_name, keys, text)
    policy = replace(chat.pipeline.policy, max_examples=examples)
    plan = chat.pipeline.planner(language).plan(task, ranked, text, policy=policy)
    messages = [{"role": m.role, "content": m.content} for m in plan.messages]
    return TrainingConversation(messages, answer_text(chat, language, task, answer), task, language, plan)
