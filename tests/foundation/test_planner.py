"""The conversation manager: packing policies, budgets, document splitting, role rules, and
property tests over random limits, examples and documents."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatocr.conversation import ConversationPlanner, Plan, PlanExample, PlanPolicy, TaskSpec, load_prompts
from chatocr.conversation.text import columns
from chatocr.errors import DocumentTooLargeError, PlanningError
from chatocr.messages import Limits, RoleRules
from chatocr.scenarios import FieldSpec
from chatocr.tokens import CharCounter, FunctionCounter, TiktokenCounter

ERNIE_ROLES = RoleRules(system="field", alternate=True, odd_count=True)
TASK = TaskSpec(
    "receipt",
    (FieldSpec(name="company"), FieldSpec(name="total", type="amount"), FieldSpec(name="date", type="date")),
    "The total includes tax.",
)


def make_examples(n: int, size: int = 300) -> list[PlanExample]:
    out = []
    for i in range(n):
        body = f"SHOP {i} SDN BHD\nDATE 0{i % 9 + 1}/05/2024\n" + ("ITEM 1.00\n" * (size // 10))
        out.append(
            PlanExample(
                f"ex{i}",
                body + f"TOTAL {i}.50",
                {"company": f"SHOP {i} SDN BHD", "total": f"{i}.50", "date": f"0{i % 9 + 1}/05/2024"},
                1 - i / 100,
            )
        )
    return out


def planner(
    limits: Limits, policy: PlanPolicy | None = None, language: str = "en", counter=None
) -> ConversationPlanner:  # type: ignore[no-untyped-def]
    return ConversationPlanner(load_prompts(language), counter or TiktokenCounter(), limits, policy)


DOC = "ACME TRADING\n12 JALAN BESAR\nDATE 01/02/2024\nTOTAL 99.90\n"


def example_positions(plan: Plan, examples: list[PlanExample]) -> dict[str, int]:
    """Index of the message holding each example's text."""
    where = {}
    for ex in examples:
        hits = [i for i, m in enumerate(plan.messages) if ex.text in m.content]
        if hits:
            where[ex.id] = hits[0]
    return where


# -- policies -------------------------------------------------------------------------------------


def test_pairs_gives_each_example_its_own_turn_with_its_answer() -> None:
    examples = make_examples(3)
    plan = planner(Limits(max_input_tokens=8000), PlanPolicy(packing="pairs")).plan(TASK, examples, DOC)
    roles = [m.role for m in plan.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    for i in (1, 3, 5):
        answer = json.loads(plan.messages[i + 1].content)
        ex = next(e for e in examples if e.text in plan.messages[i].content)
        assert answer == ex.answer  # the assistant side is the example's own answer
    # Most relevant (ex0) nearest the document, least relevant first.
    assert examples[0].text in plan.messages[5].content
    assert examples[2].text in plan.messages[1].content
    assert [e.turn for e in plan.report.included] == [1, 2, 3]


def test_packed_fills_turns_up_to_the_message_limit() -> None:
    examples = make_examples(6)
    one = planner(Limits(), counter=CharCounter())._turn_texts(examples[:1], "")[0]
    limits = Limits(max_message_chars=int(len(one) * 2.6), max_input_chars=100_000)
    plan = planner(limits, PlanPolicy(packing="packed"), counter=CharCounter()).plan(TASK, examples, DOC)
    assert plan.report.example_turns == 3
    assert len(plan.report.included) == 6
    for message in plan.messages:
        assert len(message.content) <= limits.max_message_chars  # type: ignore[operator]
    # The assistant side of a packed turn gives every example's answer, labelled in order.
    assistant = plan.messages[2].content
    assert assistant.count("Answer to example") == 2


def test_single_puts_everything_in_one_user_message() -> None:
    examples = make_examples(3)
    plan = planner(Limits(max_input_tokens=8000), PlanPolicy(packing="single")).plan(TASK, examples, DOC)
    assert [m.role for m in plan.messages] == ["system", "user"]
    final = plan.messages[-1].content
    assert all(ex.text in final for ex in examples)
    assert final.index(examples[2].text) < final.index(examples[0].text) < final.index("ACME TRADING")
    assert all(e.turn == 0 for e in plan.report.included)


def test_least_relevant_examples_are_dropped_first() -> None:
    examples = make_examples(10)
    p = planner(Limits(max_input_tokens=1400), PlanPolicy(packing="pairs"))
    plan = p.plan(TASK, examples, DOC)
    kept = [e.id for e in plan.report.included]
    assert kept and kept == [f"ex{i}" for i in range(len(kept))]
    assert all(d.reason == "over the total input budget" for d in plan.report.dropped)
    assert plan.report.total_tokens <= 1400


def test_max_examples_is_respected_and_reported() -> None:
    plan = planner(Limits(), PlanPolicy(max_examples=2)).plan(TASK, make_examples(5), DOC)
    assert len(plan.report.included) == 2
    assert [d.reason for d in plan.report.dropped] == ["max_examples reached"] * 3


def test_zero_examples_wording_does_not_mention_examples() -> None:
    plan = planner(Limits()).plan(TASK, [], DOC)
    assert "examples" not in plan.messages[-1].content
    plan = planner(Limits()).plan(TASK, make_examples(1), DOC)
    assert "and the examples" in plan.messages[-1].content


def test_final_turn_restates_the_task_with_keys_and_document() -> None:
    plan = planner(Limits(), PlanPolicy(packing="pairs")).plan(TASK, make_examples(4), DOC)
    final = plan.messages[-1]
    assert final.role == "user" and final.kind == "task"
    assert '["company", "total", "date"]' in final.content
    assert DOC.strip() in final.content


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_task_opening_before_the_document_is_marked_stable_and_is_the_same_for_every_document(
    language: str,
) -> None:
    """A local model keeps its state through the task's opening (Message.stable_head): it must end
    before the document, at a line break, and not change with the document."""
    heads = []
    for doc in (DOC, "OTHER SHOP\nTOTAL 1.00\n"):
        final = planner(Limits(), language=language).plan(TASK, make_examples(2), doc).messages[-1]
        head = final.content[: final.stable_head]
        assert final.stable_head > 0 and head.endswith("\n") and doc.strip() not in head
        assert final.content[final.stable_head :].startswith(doc.strip().split("\n")[0])
        heads.append(head)
    assert heads[0] == heads[1] and '["company", "total", "date"]' in heads[0]


def test_restate_every_adds_reminders_counted_back_from_the_document() -> None:
    plan = planner(Limits(), PlanPolicy(packing="pairs", restate_every=2)).plan(TASK, make_examples(5), DOC)
    users = [m.content for m in plan.messages if m.kind == "examples"]
    # Turns are listed outermost first: turn numbers 5,4,3,2,1 -> reminders on 4 and 2.
    assert ["Reminder" in u for u in users] == [False, True, False, True, False]


def test_chinese_prompts_are_used_for_chinese_tasks() -> None:
    plan = planner(Limits(), language="zh").plan(TASK, make_examples(1), DOC)
    assert "下面正式开始" in plan.messages[-1].content
    assert "示例" in plan.messages[1].content


# -- document splitting ---------------------------------------------------------------------------


def test_long_document_is_split_into_marked_parts_with_the_task_last() -> None:
    doc = "\n".join(f"line {i:03d} " + "x" * 60 for i in range(120))
    limits = Limits(max_message_chars=2000, roles=ERNIE_ROLES)
    plan = planner(limits, counter=CharCounter()).plan(TASK, [], doc)
    assert plan.report.document_parts > 1
    parts = [m for m in plan.messages if m.kind == "document-part"]
    assert len(parts) == plan.report.document_parts - 1
    assert "part 1 of" in parts[0].content
    assert all(len(m.content) <= 2000 for m in plan.messages)
    assert "line 119" in plan.messages[-1].content and plan.messages[-1].kind == "task"
    # Nothing lost: every line appears exactly once across the parts.
    joined = "\n".join(m.content for m in plan.messages)
    for i in range(120):
        assert joined.count(f"line {i:03d} ") == 1


def test_a_single_huge_line_is_cut_to_fit() -> None:
    doc = "A" * 5000
    plan = planner(Limits(max_message_chars=1500), counter=CharCounter()).plan(TASK, [], doc)
    assert all(len(m.content) <= 1500 for m in plan.messages)
    assert sum(m.content.count("A") for m in plan.messages) >= 5000


def test_document_larger_than_the_total_budget_is_refused_clearly() -> None:
    with pytest.raises(DocumentTooLargeError, match=r"does not fit the input budget") as info:
        planner(Limits(max_input_tokens=500)).plan(TASK, [], "word " * 2000)
    assert "500 tokens" in str(info.value)
    assert "hint:" in str(info.value)


def test_per_message_limit_smaller_than_the_task_is_refused() -> None:
    with pytest.raises(PlanningError):
        planner(Limits(max_message_chars=50), counter=CharCounter()).plan(TASK, [], DOC)


def test_no_keys_is_refused() -> None:
    with pytest.raises(PlanningError, match="No keys"):
        planner(Limits()).plan(TaskSpec("x", ()), [], DOC)


# -- roles --------------------------------------------------------------------------------------


def test_system_none_merges_into_the_first_user_message() -> None:
    limits = Limits(roles=RoleRules(system="none", alternate=True, odd_count=True))
    plan = planner(limits, PlanPolicy(packing="pairs")).plan(TASK, make_examples(2), DOC)
    assert plan.messages[0].role == "user"
    assert plan.messages[0].content.startswith("You are a careful")
    assert [m.role for m in plan.messages] == ["user", "assistant", "user", "assistant", "user"]


def test_template_syntax_in_documents_and_examples_is_verbatim() -> None:
    doc = "TOTAL {{ 7*7 }}\n{% if True %}yes{% endif %}"
    ex = PlanExample("tricky", "{{ config }} {% raw %}", {"company": "{{ config }}", "total": None, "date": None})
    plan = planner(Limits()).plan(TASK, [ex], doc)
    text = "\n".join(m.content for m in plan.messages)
    assert doc in text and "{{ config }} {% raw %}" in text and "49" not in text


def test_planning_is_deterministic_and_reuses_cached_counts() -> None:
    examples = make_examples(8)
    p = planner(Limits(max_input_tokens=3000))
    first = p.plan(TASK, examples, DOC)
    second = p.plan(TASK, examples, DOC)
    assert first.messages == second.messages
    assert p.counter.hits > 0  # type: ignore[attr-defined]
    fresh = planner(Limits(max_input_tokens=3000)).plan(TASK, examples, DOC)
    assert fresh.messages == first.messages


def test_report_round_trips_and_summarises() -> None:
    from chatocr.conversation import PlanReport

    plan = planner(Limits(max_input_tokens=2000)).plan(TASK, make_examples(4), DOC)
    again = PlanReport.from_dict(json.loads(json.dumps(plan.report.to_dict())))
    assert again == plan.report
    assert re.search(r"packing=packed messages=\d+ examples=\d+", plan.report.summary())
    assert sum(m.tokens for m in plan.report.messages) == plan.report.total_tokens


# -- properties -------------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.sampled_from(list("abcdefgh 0123456789.:/\n价税合计发票金额¥{}%#")), min_size=1, max_size=400
)
word_counter = FunctionCounter(lambda s: len(s.split()) + len(s) // 7, "words+")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Limits, PlanPolicy, list[PlanExample], str, TaskSpec, str]:
    unit = draw(st.sampled_from(["chars", "tokens", "both"]))
    per_msg = draw(st.one_of(st.none(), st.integers(300, 4000)))
    total = draw(st.one_of(st.none(), st.integers(800, 12000)))
    limits = Limits(
        max_message_chars=per_msg if unit in ("chars", "both") else None,
        max_message_tokens=(per_msg // 2 if per_msg else None) if unit in ("tokens", "both") else None,
        max_input_chars=total if unit in ("chars", "both") else None,
        max_input_tokens=(total // 2 if total else None) if unit in ("tokens", "both") else None,
        message_overhead_tokens=draw(st.integers(0, 8)),
        roles=draw(
            st.sampled_from([RoleRules(), ERNIE_ROLES, RoleRules(system="none", alternate=True, odd_count=True)])
        ),
    )
    policy = PlanPolicy(
        packing=draw(st.sampled_from(["single", "pairs", "packed"])),
        restate_every=draw(st.one_of(st.none(), st.integers(1, 3))),
        max_examples=draw(st.one_of(st.none(), st.integers(0, 6))),
        order=draw(st.sampled_from(["relevance", "stable"])),
    )
    n = draw(st.integers(0, 8))
    examples = [
        PlanExample(f"e{i}", f"[[e{i}]] " + draw(TEXT), {"k0": draw(st.one_of(st.none(), TEXT)), "k1": None})
        for i in range(n)
    ]
    document = draw(st.text(alphabet=st.sampled_from(list("abc xyz 123\n金额{%}")), min_size=1, max_size=3000))
    keys = draw(st.lists(st.sampled_from(["k0", "k1", "k2", "总额"]), min_size=1, max_size=4, unique=True))
    task = TaskSpec("doc", tuple(FieldSpec(name=k) for k in keys))
    language = draw(st.sampled_from(["zh", "en"]))
    return limits, policy, examples, document, task, language


def _roles_ok(plan: Plan, rules: RoleRules) -> bool:
    messages = plan.messages
    if rules.system == "none":
        assert all(m.role != "system" for m in messages)
        body = messages
    else:
        assert messages[0].role == "system"
        assert all(m.role != "system" for m in messages[1:])
        body = messages[1:]
    roles = [m.role for m in body]
    assert roles[0] == "user" and roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles))  # strictly alternating
    assert len(body) % 2 == 1
    return True


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plans_always_respect_limits_roles_and_task(
    case: tuple[Limits, PlanPolicy, list[PlanExample], str, TaskSpec, str],
) -> None:
    limits, policy, examples, document, task, language = case
    p = ConversationPlanner(load_prompts(language), word_counter, limits, policy)
    try:
        plan = p.plan(task, examples, document)
    except PlanningError:
        # Examples never cause a failure: it must fail without them too.
        with pytest.raises(PlanningError):
            ConversationPlanner(load_prompts(language), word_counter, limits, policy).plan(task, [], document)
        return
    overhead = limits.message_overhead_tokens
    for m in plan.messages:
        if limits.max_message_chars is not None:
            assert len(m.content) <= limits.max_message_chars
        if limits.max_message_tokens is not None:
            assert word_counter.count(m.content) <= limits.max_message_tokens
    total_chars = sum(len(m.content) for m in plan.messages)
    total_tokens = sum(word_counter.count(m.content) + overhead for m in plan.messages)
    if limits.max_input_chars is not None:
        assert total_chars <= limits.max_input_chars
    if limits.input_token_budget() is not None:
        assert total_tokens <= limits.input_token_budget()  # type: ignore[operator]
    assert (plan.report.total_chars, plan.report.total_tokens) == (total_chars, total_tokens)
    assert _roles_ok(plan, limits.roles)
    final = plan.messages[-1]
    assert final.role == "user"
    assert json.dumps(task.keys, ensure_ascii=False) in final.content
    # The document is all there, its last part in the final message.
    parts = plan.document_parts
    assert len(parts) == plan.report.document_parts
    assert "".join("".join(parts).split()) == "".join(document.split())
    assert parts[-1] in final.content
    part_messages = [m for m in plan.messages if m.kind == "document-part"]
    assert len(part_messages) == len(parts) - 1
    for part, message in zip(parts, part_messages, strict=False):
        assert part in message.content
    # No example split across messages; included ones appear whole, once, most relevant last.
    included = [e.id for e in plan.report.included]
    assert len(included) <= len(examples)
    if policy.max_examples is not None:
        assert len(included) <= policy.max_examples
    by_id = {e.id: e for e in examples}
    positions = []
    for ex_id in included:
        ex = by_id[ex_id]
        holders = [i for i, m in enumerate(plan.messages) if columns(ex.text) in m.content and m.role == "user"]
        assert holders, f"{ex_id} missing"
        positions.append((holders[-1], int(ex_id[1:])))
    if policy.order == "relevance":  # most relevant (lowest rank) last, nearest the document
        ranks_in_order = [rank for _, rank in sorted(positions, key=lambda pr: (pr[0], -pr[1]))]
        assert ranks_in_order == sorted(ranks_in_order, reverse=True)
    else:  # a fixed layout: by id, whatever the ranking
        ids_in_order = [f"e{rank}" for _, rank in sorted(positions, key=lambda pr: (pr[0], f"e{pr[1]}"))]
        assert ids_in_order == sorted(ids_in_order)
    assert {e.id for e in plan.report.dropped} | set(included) == set(by_id)
    # Deterministic.
    again = ConversationPlanner(load_prompts(language), word_counter, limits, policy).plan(task, examples, document)
    assert again.messages == plan.messages


def test_stable_order_keeps_the_same_prefix_for_documents_with_the_same_examples() -> None:
    examples = make_examples(4)
    p = planner(Limits(max_input_tokens=6000), PlanPolicy(order="stable"))
    first = p.plan(TASK, examples, DOC)
    second = p.plan(TASK, list(reversed(examples)), "OTHER SHOP\nTOTAL 1.00")  # another ranking
    assert first.messages[:-1] == second.messages[:-1]
    assert {e.id for e in first.report.included} == {e.id for e in second.report.included}
    assert first.report.order == "stable"


def test_the_documents_and_the_examples_columns_are_written_as_tabs() -> None:
    """Gaps of two or more spaces between cells are sent as one tab (a run of spaces is a token
    of its own in Qwen's vocabulary; a tab mostly joins the next word's), in the document and in
    the examples alike; single spaces inside a cell stay."""
    assert columns("TOTAL AMOUNT      9.00\nCASH  10.00 \n  x") == "TOTAL AMOUNT\t9.00\nCASH\t10.00 \n  x"
    planner = ConversationPlanner(load_prompts("en"), CharCounter(), Limits(max_input_chars=20000))
    task = TaskSpec("receipt", (FieldSpec(name="total"),), "")
    example = PlanExample("e1", "SUBTOTAL    8.00\nTOTAL    9.00", {"total": "9.00"})
    plan = planner.plan(task, [example], "Doc No : 7    Date : 01-02-2019\nTOTAL AMOUNT      3.50")
    sent = "\n".join(m.content for m in plan.messages)
    assert "Doc No : 7\tDate : 01-02-2019\nTOTAL AMOUNT\t3.50" in sent and "SUBTOTAL\t8.00\nTOTAL\t9.00" in sent
    assert "  " not in plan.messages[-1].content.split("```")[1]
