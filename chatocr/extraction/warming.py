"""Warming: the kept prefix states of a scenario's example sets, computed before any document.

A local model evaluates the system prompt and the few-shot examples before it reads a document:
about a thousand tokens, 15-25 s on two cores, the bulk of a first extraction. The local backend
keeps that state on disk (chatocr/llm/prefix_state.py), so only the first document to use an
example set pays for it. But which examples a document gets depends on the document (they are
ranked by similarity), so a scenario has one prefix per set of examples it can be given: with the
planner's "stable" order (the local backend's), one per combination of `max_examples` of its
examples. Warming computes each of them now (at install time, in a container build, before a
service takes traffic), starting every set from the longest part it shares with one already
computed, so the first real document finds its prefix ready.

Only the sets a document of ordinary length gets are warmed: a document so long that the budget
leaves room for fewer examples gets a smaller set, built on first use as before.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chatocr.conversation.planner import PlanExample
from chatocr.errors import ConfigError
from chatocr.extraction.pipeline import ExtractionPipeline, ExtractionTask
from chatocr.scenarios.model import FieldSpec, Scenario

__all__ = ["WarmedSet", "example_sets", "warm_scenario"]

# The document in a warming plan: only the conversation before the document is kept, so any text
# serves; a short one leaves the budget to the examples, as an ordinary document does.
_PLACEHOLDER = "(the document)"


@dataclass(frozen=True)
class WarmedSet:
    scenario: str
    examples: tuple[str, ...]  # the set's example ids
    source: str  # where the state came from: "built", "extended", "disk", "memory", "context", "none"...
    seconds: float


def example_sets(
    pipeline: ExtractionPipeline, scenario: Scenario, keys: Sequence[str | FieldSpec] | str | None
) -> tuple[ExtractionTask, list[list[PlanExample]]]:
    """(task, the example sets a document of `scenario` asked `keys` can get), in a fixed order."""
    task = pipeline.build_task("", scenario, pipeline.request(keys, scenario))
    policy = task.policy
    if policy.order != "stable":
        raise ConfigError(
            f"Warming needs the examples in a fixed order, but order is {policy.order!r}.",
            hint='Use order = "auto" (stable for the local model) or "stable" in the config.',
        )
    size = len(task.examples) if policy.max_examples is None else min(policy.max_examples, len(task.examples))
    ranked = sorted(task.examples, key=lambda example: example.id)
    return task, [list(chosen) for chosen in itertools.combinations(ranked, size)]


async def warm_scenario(
    pipeline: ExtractionPipeline,
    scenario: Scenario,
    keys: Sequence[str | FieldSpec] | str | None = None,
    *,
    on_set: Callable[[WarmedSet, int, int], None] | None = None,
) -> list[WarmedSet]:
    """Compute (or find already kept) the prefix state of every example set of `scenario` for
    `keys` (default: its fields). `on_set(result, index, total)` after each set."""
    model = pipeline.model
    if model is None:
        raise ConfigError("Warming needs a chat model.", hint="Configure an llm (the local model keeps prefixes).")
    if not model.supports_prefix_cache:  # remote services: nothing of theirs to compute here
        return [WarmedSet(scenario.name, (), "none", 0.0)]
    task, sets = example_sets(pipeline, scenario, keys)
    planner = pipeline.planner(task.language)
    warmed: list[WarmedSet] = []
    for index, chosen in enumerate(sets, 1):
        started = time.perf_counter()
        plan = planner.plan(task.spec, chosen, _PLACEHOLDER, policy=task.policy)
        source = await model.keep_prefix(plan.messages)
        ids = tuple(example.id for example in plan.report.included)
        result = WarmedSet(scenario.name, ids, source, round(time.perf_counter() - started, 3))
        warmed.append(result)
        if on_set is not None:
            on_set(result, index, len(sets))
    return warmed
