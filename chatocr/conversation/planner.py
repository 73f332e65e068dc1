"""The conversation manager: fit instructions, ranked few-shot examples and a document into the
messages a backend accepts.

Why it is shaped so (see BRIEF.md and shared/reference/field-notes.md):
- Services limit one message and the whole input (ERNIE in characters, others in tokens), so the
  examples are packed into as few complete user/assistant turns as the limits allow; the assistant
  side of an example turn is the example's answer, written by us, never generated.
- Models forget a task spread over many turns, so the final user turn always re-states the task
  with the keys next to the document, and `restate_every` adds a short reminder to every Nth
  example turn.
- Models use the end of the context best, so the most relevant examples sit nearest the document
  and the least relevant are dropped first when the budget runs out.

The layout, from first message to last:

    system
    [example turn N]  user: (reminder) examples      assistant: their answers     <- least relevant
    ...
    [example turn 1]  user: (reminder) examples      assistant: their answers     <- most relevant
    [document part 1] user: part 1 of n              assistant: acknowledgement   (only when split)
    ...
    final             user: (inline examples) task + keys + the (last part of the) document

Planning is deterministic: the same inputs give the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chatocr.conversation.plan import Packing, Plan, PlanExample, PlanPolicy, TaskSpec
from chatocr.conversation.report import DroppedExample, IncludedExample, MessageSize, PlanReport
from chatocr.conversation.sizing import Sizer, Turn, document_lines, head_before, largest_fitting_suffix, turn_cost
from chatocr.conversation.templates import PromptSet
from chatocr.conversation.text import columns
from chatocr.errors import DocumentTooLargeError, PlanningError
from chatocr.messages import Limits, Message
from chatocr.tokens import CachedCounter, TokenCounter

__all__ = ["ConversationPlanner", "Packing", "Plan", "PlanExample", "PlanPolicy", "TaskSpec"]


class ConversationPlanner:
    """Plans conversations for one prompt set, token counter and set of limits.

    Keep one planner per backend and reuse it across documents: rendered example blocks and the
    token counts of unchanging text are cached, so only the document is counted anew.
    """

    def __init__(
        self,
        prompts: PromptSet,
        counter: TokenCounter,
        limits: Limits,
        policy: PlanPolicy | None = None,
    ) -> None:
        self.prompts = prompts
        self.counter = counter if isinstance(counter, CachedCounter) else CachedCounter(counter)
        self.limits = limits
        self.policy = policy or PlanPolicy()
        self._sizer = Sizer(limits, self.counter)
        # Keyed by example id; each entry keeps the text and answer objects it was made from and is
        # used only while the example still holds those very objects.
        self._blocks: dict[tuple[str, int, str], tuple[str, Mapping[str, Any], str]] = {}
        self._bounds: dict[str, tuple[str, Mapping[str, Any], tuple[int, int, bool]]] = {}

    def with_limits(self, limits: Limits) -> ConversationPlanner:
        """The same prompts, counter (and its cache) and policy under other limits."""
        return ConversationPlanner(self.prompts, self.counter, limits, self.policy)

    def limits_below(self, refused: Sequence[Message], factor: float, share: float) -> Limits:
        """This planner's limits scaled by `factor`, the total also at most `share` of what `refused`
        held (in characters and tokens): the budget to re-plan with after "context too long"."""
        chars = sum(len(m.content) for m in refused)
        tokens = sum(self.counter.count(m.content) for m in refused)
        return self.limits.scaled(factor).capped(int(chars * share), int(tokens * share))

    def shrink(
        self,
        plan: Plan,
        task: TaskSpec,
        examples: Sequence[PlanExample],
        document: str,
        *,
        policy: PlanPolicy | None = None,
        within: Limits | None = None,
        extra: Sequence[Message] = (),
    ) -> Plan:
        """A smaller plan than `plan` whose messages, followed by `extra`, fit `within` (default:
        this planner's limits). Fewer examples first (the least relevant go), the document as it
        was; then, when `within` is smaller than this planner's limits, the document in the
        smaller parts those limits allow, without examples.

        Used when a service refused the conversation as too long (`within`: a smaller budget) and
        when a re-ask must be appended (`extra`: the answer and the re-ask). Raises
        DocumentTooLargeError when nothing smaller fits.
        """
        policy = policy or self.policy
        target = self if within is None else self.with_limits(within)
        for keep in range(len(plan.report.included) - 1, -1, -1):
            smaller = self.plan(task, examples, document, policy=replace(policy, max_examples=keep))
            if target.fits([*smaller.messages, *extra]):
                return smaller
        if target is not self:
            smaller = target.plan(task, examples, document, policy=replace(policy, max_examples=0))
            if target.fits([*smaller.messages, *extra]):
                return smaller
        raise DocumentTooLargeError(
            "The conversation does not fit even without examples "
            f"(limits: {target._budget_text()}; {len(extra)} message(s) to append).",
            hint="Use a backend with a larger context, or ask for fewer keys.",
        )

    def fits(self, messages: Sequence[Message]) -> bool:
        """Whether `messages` respect the per-message limits and the total input budget (used to
        check a conversation grown after planning, e.g. by a re-ask)."""
        chars = tokens = 0
        for message in messages:
            if not self._sizer.fits_message(message.content):
                return False
            c, t = self._sizer.cost(message.content)
            chars, tokens = chars + c, tokens + t
        return self._sizer.within_total(chars, tokens)

    # -- rendering -----------------------------------------------------------------------------

    def _block(self, example: PlanExample, number: int, kind: str) -> str:
        """The user-side text, the assistant-side answer, or both inline, of one example."""
        key = (example.id, number, kind)
        hit = self._blocks.get(key)
        if hit is not None and hit[0] is example.text and hit[1] is example.answer:
            return hit[2]
        answer = json.dumps(dict(example.answer), ensure_ascii=False)
        if kind == "user":
            text = self.prompts.render("example", number=number, text=columns(example.text))
        elif kind == "answer":
            text = self.prompts.render("answer", number=number, answer=answer, labelled=True)
        else:  # inline: the example and its answer in the same (single) message
            text = (
                self.prompts.render("example", number=number, text=columns(example.text))
                + "\n"
                + self.prompts.render("answer", number=number, answer=answer, labelled=True)
            )
        if len(self._blocks) > 50000:  # bound memory for very long-lived planners
            self._blocks.clear()
            self._bounds.clear()
        self._blocks[key] = (example.text, example.answer, text)
        return text

    def _turn_texts(self, examples: Sequence[PlanExample], reminder: str) -> tuple[str, str]:
        """The user and assistant sides of one example turn. Examples are numbered within the turn,
        so a turn's text never depends on the others (and needs no re-rendering later)."""
        blocks = [self._block(ex, i + 1, "user") for i, ex in enumerate(examples)]
        user = self.prompts.render("examples_turn", blocks=blocks, count=len(examples), reminder=reminder)
        if len(examples) == 1:
            answer = json.dumps(dict(examples[0].answer), ensure_ascii=False)
            assistant = self.prompts.render("answer", number=1, answer=answer, labelled=False)
        else:
            assistant = "\n".join(self._block(ex, i + 1, "answer") for i, ex in enumerate(examples))
        return user, assistant

    def _lower_bound(self, example: PlanExample) -> tuple[int, int, bool]:
        """A cheap lower bound of what adding `example` costs (characters, tokens) and whether it
        can fit one message at all; cached per example, so rejecting examples once the budget is
        full costs almost nothing (libraries of thousands of examples)."""
        hit = self._bounds.get(example.id)
        if hit is not None and hit[0] is example.text and hit[1] is example.answer:
            return hit[2]
        user = self._block(example, 1, "user")
        answer = self._block(example, 1, "answer")
        fits = self._sizer.fits_message(user) and self._sizer.fits_message(answer)
        bound = (len(user) + len(answer), self._sizer.tokens(user) + self._sizer.tokens(answer), fits)
        self._bounds[example.id] = (example.text, example.answer, bound)
        return bound

    def _final_text(
        self,
        task: TaskSpec,
        text: str,
        part: int,
        parts: int,
        inline: Sequence[PlanExample],
        *,
        has_examples: bool = True,
    ) -> str:
        """The final user turn. `has_examples` only changes the wording ("the instructions and the
        examples above"); planning assumes True, the longer wording, and drops it if none fit."""
        examples = ""
        if inline:
            blocks = [self._block(ex, i + 1, "inline") for i, ex in enumerate(inline)]
            examples = self.prompts.render("examples_inline", blocks=blocks, count=len(inline))
        return self.prompts.render(
            "task",
            title=task.title,
            keys=task.keys,
            keys_json=json.dumps(task.keys, ensure_ascii=False),
            text=text,
            part=part,
            parts=parts,
            examples=examples,
            has_examples=has_examples or bool(inline),
        )

    def _system_text(self, task: TaskSpec) -> str:
        fields = [
            {
                "name": f.name,
                "description": f.description,
                "type": f.type.value,
                "required": f.required,
                "choices": list(f.choices),
                "item_keys": [item.name for item in f.items],
            }
            for f in task.fields
        ]
        return self.prompts.render("system", title=task.title, instructions=task.instructions, fields=fields)

    # -- planning ------------------------------------------------------------------------------

    def plan(
        self,
        task: TaskSpec,
        examples: Sequence[PlanExample],
        document: str,
        *,
        policy: PlanPolicy | None = None,
    ) -> Plan:
        """Plan the conversation for one document. `examples` must be ranked, most relevant first."""
        policy = policy or self.policy
        if not task.fields:
            raise PlanningError("No keys to extract.", hint="Ask for at least one key or choose a scenario.")
        sizer = self._sizer
        document = columns(document.strip("\n"))
        system = self._system_text(task)
        if not sizer.fits_message(system):
            raise PlanningError(
                f"The system prompt alone ({len(system)} characters) exceeds the per-message limit.",
                hint="Shorten the scenario's instructions and field descriptions, or ask for fewer keys.",
            )
        # With no system role, the system text may need its own user turn and an acknowledgement:
        # budget for that (the worst case); merging into the first user message only saves.
        ack0 = self.prompts.render("ack", part=0, parts=0)
        fixed_chars, fixed_tokens = sizer.cost(system)
        if self.limits.roles.system == "none":
            chars, tokens = sizer.cost(ack0)
            fixed_chars, fixed_tokens = fixed_chars + chars, fixed_tokens + tokens

        parts = self._split_document(task, document)
        part_messages = self._part_messages(parts)
        for message in part_messages:
            chars, tokens = sizer.cost(message.content)
            fixed_chars, fixed_tokens = fixed_chars + chars, fixed_tokens + tokens

        final_base = self._final_text(task, parts[-1], len(parts), len(parts), ())
        final_chars, final_tokens = sizer.cost(final_base)
        if not sizer.within_total(fixed_chars + final_chars, fixed_tokens + final_tokens):
            task_heavy = sizer.cost(document)[0] * 2 < fixed_chars + final_chars  # the keys, not the page, fill it
            raise DocumentTooLargeError(
                f"The document ({len(document)} characters) with the task does not fit the input budget "
                f"even without examples ({fixed_chars + final_chars} characters / {fixed_tokens + final_tokens} "
                f"tokens needed; limits: {self._budget_text()}).",
                hint=(
                    f"The {len(task.fields)} keys asked for are most of it: ask for fewer keys at a time "
                    "(several extractions of the same document), or use a model with a larger context."
                    if task_heavy
                    else None
                ),
            )

        selected, dropped, turns, final_text = self._choose_examples(
            task, examples, policy, parts, (fixed_chars, fixed_tokens), final_base
        )
        if policy.order == "stable" and len(selected) > 1:
            # Same set, fixed layout: re-pack the chosen examples sorted by id (the last in id order
            # nearest the document). Any that no longer fit are dropped, not others added.
            chosen = sorted((ex for ex, _ in selected), key=lambda ex: ex.id, reverse=True)
            selected, dropped_again, turns, final_text = self._choose_examples(
                task, chosen, policy, parts, (fixed_chars, fixed_tokens), final_base
            )
            ranks = {ex.id: rank for rank, ex in enumerate(examples)}
            dropped = sorted(
                [*dropped, *(replace(d, rank=ranks.get(d.id, d.rank)) for d in dropped_again)],
                key=lambda d: d.rank,
            )
        if not selected:
            final_text = self._final_text(task, parts[-1], len(parts), len(parts), (), has_examples=False)
        messages = self._assemble(system, turns, part_messages, final_text, ack0, parts[-1])
        report = self._report(policy, messages, selected, dropped, turns, len(parts))
        return Plan(messages, report, parts)

    def _budget_text(self) -> str:
        lim = self.limits
        parts = []
        if lim.max_input_chars is not None:
            parts.append(f"{lim.max_input_chars} characters")
        if self._sizer.token_budget is not None:
            parts.append(f"{self._sizer.token_budget} tokens")
        if lim.max_message_chars is not None:
            parts.append(f"{lim.max_message_chars} characters per message")
        if lim.max_message_tokens is not None:
            parts.append(f"{lim.max_message_tokens} tokens per message")
        return ", ".join(parts) or "none"

    def _split_document(self, task: TaskSpec, document: str) -> list[str]:
        """The document as parts, the last of which goes in the final turn with the task. Split only
        when it does not fit one message; filled backwards so the final turn is as full as it can be."""
        if self._sizer.fits_message(self._final_text(task, document, 1, 1, ())):
            return [document]
        # Part numbers change the rendered length only by a few digits: reserve for the worst case.
        return self._split(document, lambda text: self._final_text(task, text, 99999, 99999, ()))

    def _split(self, document: str, render_last: Any) -> list[str]:
        sizer = self._sizer
        worst = 99999

        def final_fits(text: str) -> bool:
            return sizer.fits_message(render_last(text))

        def part_fits(text: str) -> bool:
            return sizer.fits_message(self.prompts.render("document_part", part=worst, parts=worst, text=text))

        if not final_fits("x") or not part_fits("x"):
            raise PlanningError(
                "The per-message limit is smaller than the task prompt itself.",
                hint=f"Raise the per-message limit or ask for fewer keys (limits: {self._budget_text()}).",
            )
        pieces = document_lines(document)
        parts_reversed: list[str] = []
        fits = final_fits
        while pieces:
            chunk: list[str] = []
            while pieces:
                candidate = [pieces[-1], *chunk]
                if fits("".join(candidate)):
                    chunk = candidate
                    pieces.pop()
                    continue
                if not chunk:  # one piece too long for a whole message: cut it to the largest fit
                    head, tail = largest_fitting_suffix(pieces[-1], fits)
                    pieces[-1] = head
                    chunk = [tail]
                break
            parts_reversed.append("".join(chunk).strip("\n"))
            fits = part_fits
        return list(reversed(parts_reversed))

    def _part_messages(self, parts: list[str]) -> list[Message]:
        out: list[Message] = []
        for index, part_text in enumerate(parts[:-1], start=1):
            user = self.prompts.render("document_part", part=index, parts=len(parts), text=part_text)
            ack = self.prompts.render("ack", part=index, parts=len(parts))
            out += [Message("user", user, kind="document-part"), Message("assistant", ack, kind="ack")]
        return out

    def plan_chat(
        self, title: str, document: str, history: Sequence[tuple[str, str]], question: str
    ) -> tuple[list[Message], int]:
        """Messages for a follow-up question about a document: system, the document (split when
        needed), as much recent history (question, answer) as the budget allows, the question.
        Returns the messages and how many of the oldest exchanges were left out."""
        sizer = self._sizer
        document = document.strip("\n")
        system = self.prompts.render("chat_system", title=title)
        if not sizer.fits_message(question):
            raise PlanningError("The question is longer than one message may be.", hint="Ask a shorter question.")

        def render_last(text: str, part: int = 99999, parts: int = 99999) -> str:
            return self.prompts.render("chat_document", text=text, part=part, parts=parts)

        parts = [document] if sizer.fits_message(render_last(document, 1, 1)) else self._split(document, render_last)
        if self.limits.roles.system == "none":  # no system role: its own turn, acknowledged
            ack = self.prompts.render("ack", part=0, parts=0)
            head = [Message("user", system, kind="system"), Message("assistant", ack, kind="ack")]
        else:
            head = [Message("system", system, kind="system")]
        fixed = [*head, *self._part_messages(parts)]
        fixed.append(Message("user", render_last(parts[-1], len(parts), len(parts)), kind="document"))
        fixed.append(Message("assistant", self.prompts.render("chat_ready"), kind="ack"))
        final = Message("user", question, kind="question")
        chars = tokens = 0
        for message in [*fixed, final]:
            c, t = sizer.cost(message.content)
            chars, tokens = chars + c, tokens + t
        if not sizer.within_total(chars, tokens):
            raise DocumentTooLargeError(
                f"The document ({len(document)} characters) does not fit the input budget for a chat "
                f"({self._budget_text()})."
            )
        kept: list[Message] = []
        dropped = 0
        for index in range(len(history) - 1, -1, -1):  # newest first
            asked, answered = history[index]
            pair = [Message("user", asked, kind="question"), Message("assistant", answered, kind="answer")]
            c1, t1 = sizer.cost(asked)
            c2, t2 = sizer.cost(answered)
            fits_each = sizer.fits_message(asked) and sizer.fits_message(answered)
            if not fits_each or not sizer.within_total(chars + c1 + c2, tokens + t1 + t2):
                dropped = index + 1
                break
            chars, tokens = chars + c1 + c2, tokens + t1 + t2
            kept = pair + kept
        return [*fixed, *kept, final], dropped

    def _choose_examples(
        self,
        task: TaskSpec,
        ranked: Sequence[PlanExample],
        policy: PlanPolicy,
        parts: list[str],
        fixed: tuple[int, int],
        final_base: str,
    ) -> tuple[list[tuple[PlanExample, int]], list[DroppedExample], list[Turn], str]:
        """Walk the examples from most to least relevant and keep each one that fits."""
        reminder = self.prompts.render("reminder", title=task.title, keys=task.keys)
        chooser = _Chooser(self, task, policy, parts, fixed, reminder, final_base)
        for rank, example in enumerate(ranked):
            chooser.consider(rank, example)
        return chooser.selected(), chooser.dropped, chooser.turns, chooser.final_text

    def _assemble(
        self,
        system: str,
        turns: list[Turn],
        part_messages: list[Message],
        final_text: str,
        ack0: str,
        part_text: str,
    ) -> list[Message]:
        body: list[Message] = []
        for turn in reversed(turns):  # outermost (least relevant) first
            body += [Message("user", turn.user, kind="examples"), Message("assistant", turn.assistant, kind="answers")]
        body += part_messages
        body.append(Message("user", final_text, kind="task", stable_head=head_before(final_text, part_text)))
        if self.limits.roles.system != "none":
            return [Message("system", system, kind="system"), *body]
        merged = system + "\n\n" + body[0].content
        if self._sizer.fits_message(merged):
            return [Message("user", merged, kind="system+" + body[0].kind), *body[1:]]
        return [Message("user", system, kind="system"), Message("assistant", ack0, kind="ack"), *body]

    def _report(
        self,
        policy: PlanPolicy,
        messages: list[Message],
        selected: list[tuple[PlanExample, int]],
        dropped: list[DroppedExample],
        turns: list[Turn],
        n_parts: int,
    ) -> PlanReport:
        sizes = []
        total_chars = total_tokens = 0
        for message in messages:
            chars, tokens = self._sizer.cost(message.content)
            sizes.append(MessageSize(message.role, message.kind, chars, tokens))
            total_chars += chars
            total_tokens += tokens
        return PlanReport(
            packing=policy.packing,
            restate_every=policy.restate_every,
            max_examples=policy.max_examples,
            order=policy.order,
            counter=self.counter.name,
            system_role=self.limits.roles.system,
            included=[IncludedExample(ex.id, turn, ex.score) for ex, turn in selected],
            dropped=dropped,
            messages=sizes,
            total_chars=total_chars,
            total_tokens=total_tokens,
            budget_chars=self.limits.max_input_chars,
            budget_tokens=self._sizer.token_budget,
            example_turns=len(turns),
            document_parts=n_parts,
        )


_PER_MESSAGE = "would exceed the per-message limit"
_OVER_TOTAL = "over the total input budget"


@dataclass
class _Chooser:
    """One plan's walk over the ranked examples: what is chosen so far and what it costs."""

    planner: ConversationPlanner
    task: TaskSpec
    policy: PlanPolicy
    parts: list[str]
    fixed: tuple[int, int]  # characters and tokens of the system and document-part messages
    reminder: str
    final_text: str
    chosen: list[PlanExample] = field(default_factory=list)  # most relevant first
    dropped: list[DroppedExample] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)  # turns[0] is nearest the document
    final_cost: tuple[int, int] = (0, 0)
    turns_cost: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.final_cost = self.planner._sizer.cost(self.final_text)

    def _within(self, *costs: tuple[int, int]) -> bool:
        """Whether the fixed messages plus `costs` stay within the total input budget."""
        chars = self.fixed[0] + sum(c for c, _ in costs)
        tokens = self.fixed[1] + sum(t for _, t in costs)
        return self.planner._sizer.within_total(chars, tokens)

    def consider(self, rank: int, example: PlanExample) -> None:
        """Keep `example` where it fits, or record why it was left out."""
        reason = self._cannot_fit(example)
        if reason is None:
            reason = self._inline(example) if self.policy.packing == "single" else self._in_a_turn(example)
        if reason is None:
            self.chosen.append(example)
        else:
            self.dropped.append(DroppedExample(example.id, rank, reason, example.score))

    def _cannot_fit(self, example: PlanExample) -> str | None:
        """A cheap refusal before rendering anything: the limit reached, one message too small, or
        even a lower bound of the example's cost over the total budget."""
        limit = self.policy.max_examples
        if limit is not None and len(self.chosen) >= limit:
            return "max_examples reached"
        low_chars, low_tokens, can_fit = self.planner._lower_bound(example)
        if not can_fit:
            return _PER_MESSAGE
        if not self._within(self.final_cost, self.turns_cost, (low_chars, low_tokens)):
            return _OVER_TOTAL
        return None

    def _inline(self, example: PlanExample) -> str | None:
        """packing "single": the examples inline in the final message, in conversation order
        (most relevant last)."""
        sizer, n_parts = self.planner._sizer, len(self.parts)
        inline = [example, *reversed(self.chosen)]
        candidate = self.planner._final_text(self.task, self.parts[-1], n_parts, n_parts, inline)
        if not sizer.fits_message(candidate):
            return _PER_MESSAGE
        cost = sizer.cost(candidate)
        if not self._within(cost):
            return _OVER_TOTAL
        self.final_text, self.final_cost = candidate, cost
        return None

    def _in_a_turn(self, example: PlanExample) -> str | None:
        """pairs / packed: into the outermost open turn (packed), else a new outer turn."""
        sizer, turns, policy = self.planner._sizer, self.turns, self.policy
        options: list[tuple[int, list[PlanExample]]] = []
        if policy.packing == "packed" and turns:
            options.append((len(turns) - 1, [example, *turns[-1].examples]))
        options.append((len(turns), [example]))
        reasons: list[str] = []
        for index, members in options:
            turn_number = index + 1  # 1 = nearest the document
            remind = self.reminder if policy.restate_every and turn_number % policy.restate_every == 0 else ""
            user, assistant = self.planner._turn_texts(members, remind)
            if not (sizer.fits_message(user) and sizer.fits_message(assistant)):
                reasons.append(_PER_MESSAGE)
                continue
            new_turn = Turn(members, user, assistant)
            old = turns[index] if index < len(turns) else None
            delta_chars, delta_tokens = turn_cost(sizer, new_turn)
            if old is not None:
                old_chars, old_tokens = turn_cost(sizer, old)
                delta_chars, delta_tokens = delta_chars - old_chars, delta_tokens - old_tokens
            if not self._within(self.final_cost, self.turns_cost, (delta_chars, delta_tokens)):
                reasons.append(_OVER_TOTAL)
                continue
            if old is None:
                turns.append(new_turn)
            else:
                turns[index] = new_turn
            self.turns_cost = (self.turns_cost[0] + delta_chars, self.turns_cost[1] + delta_tokens)
            return None
        return _OVER_TOTAL if _OVER_TOTAL in reasons else reasons[-1]

    def selected(self) -> list[tuple[PlanExample, int]]:
        """Each chosen example with its turn (1 = nearest the document; 0: inline in the final message)."""
        if self.policy.packing == "single":
            return [(example, 0) for example in self.chosen]
        return [(example, index + 1) for index, turn in enumerate(self.turns) for example in turn.examples]
