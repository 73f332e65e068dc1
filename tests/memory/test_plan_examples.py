"""Memory matches become the planner's examples in the shape ExampleBank.select gives them
(chatocr.extraction.examples.remembered_examples), and a real plan takes them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from chatocr.conversation import ConversationPlanner, PlanExample, TaskSpec, load_prompts
from chatocr.extraction.examples import MEMORY_PREFIX, ExampleBank, remembered_examples, resolve_fields
from chatocr.memory import DocumentKey, MemoryExample, MemoryStore
from chatocr.messages import Limits
from chatocr.scenarios import load_scenarios
from chatocr.tokens import CharCounter
from tests.memory.conftest import receipts

SCENARIO = "retail_receipt"


def _store(tmp_path: Path) -> tuple[MemoryStore, list[tuple[str, dict[str, str]]]]:
    store = MemoryStore(SCENARIO, tmp_path)
    made = list(receipts(8, seed=21, shops=3))
    store.add(
        [
            MemoryExample.from_document(
                SCENARIO,
                text,
                # Reviewed under an alias ("store") for one document: the field's other names find it.
                {
                    ("store" if n == 0 else "company"): answer["company"],
                    "date": answer["date"],
                    "total": answer["total"],
                },
                DocumentKey(f"/scans/r{n}.jpg", hashlib.sha256(str(n).encode()).hexdigest()),
            )
            for n, (text, answer) in enumerate(made)
        ]
    )
    return store, made


def test_matches_become_plan_examples_like_example_bank_gives(tmp_path: Path) -> None:
    store, made = _store(tmp_path)
    scenario = load_scenarios().get(SCENARIO)
    fields = resolve_fields(scenario, ["shop", "total", "tax"])  # an alias, a field, a field never reviewed
    query = made[0][0].replace(made[0][1]["total"], "1.00")
    matches = store.search(query, limit=3)
    examples = remembered_examples(matches, fields, scenario)
    bank = ExampleBank(load_scenarios()).select(query, fields, scenario)
    assert all(type(e) is PlanExample for e in [*examples, *bank])
    assert len(examples) == 3
    first, match = examples[0], matches[0]
    assert first.id == f"{MEMORY_PREFIX}{SCENARIO}/{match.example.id}" and first.score == match.score
    assert list(first.answer) == ["shop", "total", "tax"] == list(bank[0].answer)
    assert first.answer["shop"] == made[0][1]["company"] and first.answer["total"] == made[0][1]["total"]
    assert first.answer["tax"] is None
    # Focused as the scenario's examples are: the lines holding the answers, the rest elided.
    assert made[0][1]["company"] in first.text and "[...]" in first.text and len(first.text) < len(query)
    unfocused = remembered_examples(matches, fields, scenario, focus=False)[0]
    assert unfocused.text == match.example.text


def test_a_match_answering_none_of_the_keys_is_left_out(tmp_path: Path) -> None:
    store, made = _store(tmp_path)
    scenario = load_scenarios().get(SCENARIO)
    matches = store.search(made[1][0], limit=2)
    assert remembered_examples(matches, resolve_fields(scenario, ["payment_method"]), scenario) == []
    # Without a scenario, keys are matched by name (case-insensitive).
    plain = remembered_examples(matches, resolve_fields(None, ["TOTAL"]), None)
    assert [e.answer for e in plain] == [{"TOTAL": m.example.answer["total"]} for m in matches]


def test_a_plan_takes_remembered_examples(tmp_path: Path) -> None:
    store, made = _store(tmp_path)
    scenario = load_scenarios().get(SCENARIO)
    fields = resolve_fields(scenario, ["company", "date", "total"])
    examples = remembered_examples(store.search(made[2][0], limit=2), fields, scenario)
    planner = ConversationPlanner(load_prompts("en"), CharCounter(), Limits(max_input_chars=20000))
    plan = planner.plan(TaskSpec("receipt", tuple(fields)), examples, made[2][0])
    assert {e.id for e in plan.report.included} == {e.id for e in examples}  # (in conversation order)
    assert any(made[2][1]["company"] in m.content for m in plan.messages[:-1])  # an example's answer was shown
