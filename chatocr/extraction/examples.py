"""Choose few-shot examples per document, by similarity, and shape their answers to the keys asked.

Fixed per-scene examples were PP-ChatOCR's recipe; choosing them per document by similarity is
what the evidence favours (KATE, SAIL: +6.7 to +13.5 F1). Every example of every scenario is
indexed once; for a document we rank them by TF-IDF character n-gram similarity and hand the
ranked list to the conversation manager, which keeps as many as the backend's budget allows.

An example's answer is projected onto the requested keys (a user may ask for 3 of 14 invoice
fields, by alias, or for keys of their own), so the model sees exactly the output it must give.
With `focus` (the default), its text is cut to the lines that hold those answers and their
neighbours: an item list teaches nothing about where the total is, and costs tokens on every call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatocr.conversation.planner import PlanExample
from chatocr.memory.records import MemoryMatch
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import FieldSpec, Scenario, flat_text
from chatocr.similarity import SimilarityIndex, layout_tokens

__all__ = ["MEMORY_PREFIX", "ExampleBank", "focus_text", "remembered_examples", "resolve_fields"]

# The requested keys as the examples are projected onto them: (name, item keys) per key.
Shape = tuple[tuple[str, tuple[str, ...]], ...]

# What stands for the lines cut from an example's text.
ELISION = "[...]"
# How a remembered (reviewed) example's id begins in a plan and a result's `examples`.
MEMORY_PREFIX = "memory:"


def resolve_fields(scenario: Scenario | None, keys: Sequence[str | FieldSpec] | None) -> tuple[FieldSpec, ...]:
    """The fields to ask for: the scenario's own when no keys are given; else one per key, named as
    the user named it, typed and described by the scenario field it matches (name or alias). A key
    given as a FieldSpec (`--keys total:amount=the final total`) keeps what it sets explicitly."""
    if not keys:
        if scenario is None:
            return ()
        return scenario.fields
    out: list[FieldSpec] = []
    seen: set[str] = set()
    for entry in keys:
        given = entry if isinstance(entry, FieldSpec) else None
        key = given.name.strip() if given is not None else str(entry).strip()
        if not key or key in seen:
            continue
        seen.add(key)
        field = scenario.field(key) if scenario is not None else None
        explicit = {name: getattr(given, name) for name in given.model_fields_set} if given is not None else {}
        if field is None:
            out.append(given or FieldSpec(name=key))
            continue
        update = {"name": key, "aliases": (), **explicit}
        if "type" in explicit and explicit["type"] is not field.type:  # a new type drops the old one's details
            update = {"choices": (), "items": (), **update}
        out.append(FieldSpec.model_validate({**field.model_dump(), **update}))
    return tuple(out)


@dataclass(frozen=True)
class _Entry:
    scenario: Scenario
    index: int


class ExampleBank:
    """Every example of a scenario library, indexed for similarity search."""

    def __init__(self, library: ScenarioLibrary, *, layout_weight: float = 0.0) -> None:
        """layout_weight: the share of layout similarity (where rows, numbers and labels sit:
        similarity.layout_tokens) in the ranking score, beside text similarity (config
        `example_layout`; 0: text only)."""
        self.library = library
        self.layout_weight = layout_weight
        self._own: dict[int, ExampleBank] = {}  # banks of scenarios outside the library, by id
        self._index_library()

    def _index_library(self) -> None:
        """(Re)build the index from the library as it is now. A scenario that joins later (a YAML
        file named with --scenario) changes the library's version, and the next select re-indexes."""
        self._version = self.library.version
        self._entries = [_Entry(s, i) for s in self.library for i in range(len(s.examples))]
        texts = [e.scenario.examples[e.index].text for e in self._entries]
        self.index = SimilarityIndex(texts)
        self.layout_index = SimilarityIndex(texts, tokenize=layout_tokens) if self.layout_weight > 0 else None
        self._projected: dict[tuple[int, Shape, bool], PlanExample | None] = {}

    def select(
        self, text: str, fields: Sequence[FieldSpec], scenario: Scenario | None, *, focus: bool = True
    ) -> list[PlanExample]:
        """Examples ranked by similarity to `text`, most similar first: the scenario's own when one
        was chosen, otherwise those of any scenario that answers at least one requested key.
        focus: cut each example's text to the lines holding the requested answers (see focus_text).
        A scenario that is not the library's own (one request's: ChatOCR.request keeps a Scenario
        object out of the shared library) has its examples ranked in a small bank of its own."""
        if scenario is not None and not self._holds(scenario):
            return self._own_bank(scenario).select(text, fields, scenario, focus=focus)
        if self._version != self.library.version:
            self._index_library()
        # Each key with its item keys: a typed request's line items may ask for fewer of them.
        keys = tuple((f.name, tuple(sub.name for sub in f.items)) for f in fields)
        candidates = [i for i, e in enumerate(self._entries) if scenario is None or e.scenario.name == scenario.name]
        ranked: list[PlanExample] = []
        for i, score in self._rank(text, candidates):
            example = self._project(i, keys, focus)
            if example is not None:
                # Same text and answer objects as cached: the planner's render cache stays valid.
                ranked.append(PlanExample(example.id, example.text, example.answer, round(score, 4)))
        return ranked

    def _holds(self, scenario: Scenario) -> bool:
        return scenario.name in self.library and self.library.get(scenario.name) is scenario

    def _own_bank(self, scenario: Scenario) -> ExampleBank:
        """A bank of `scenario`'s examples alone, kept for the last few such scenarios (a request
        selects again when it re-plans or reads another page). Its library holds the scenario, so
        the id it is kept under is not reused while it is kept."""
        bank = self._own.get(id(scenario))
        if bank is None:
            bank = ExampleBank(ScenarioLibrary([scenario]), layout_weight=self.layout_weight)
            if len(self._own) >= 8:
                del self._own[next(iter(self._own))]
            self._own[id(scenario)] = bank
        return bank

    def _rank(self, text: str, candidates: list[int]) -> list[tuple[int, float]]:
        """(entry, score) best first: text similarity, blended with layout similarity when weighted."""
        if self.layout_index is None:
            return self.index.rank(text, candidates)
        w = self.layout_weight
        by_text, by_layout = self.index.scores(text), self.layout_index.scores(text)
        blended = [(i, (1 - w) * by_text[i] + w * by_layout[i]) for i in candidates]
        return sorted(blended, key=lambda pair: (-pair[1], pair[0]))

    def rescore(self, text: str, texts: Sequence[str]) -> list[float]:
        """`texts` from elsewhere (the memory of reviewed documents) scored against `text` on this
        bank's scale: the library's IDF, the same text/layout blend as `select` (see
        extraction/remembered.py for why scores of another corpus are not taken as they are)."""
        if self._version != self.library.version:
            self._index_library()
        by_text = self.index.similarity(text, texts)
        if self.layout_index is None:
            return by_text
        w = self.layout_weight
        by_layout = self.layout_index.similarity(text, texts)
        return [(1 - w) * a + w * b for a, b in zip(by_text, by_layout, strict=True)]

    def _project(self, entry_index: int, keys: Shape, focus: bool) -> PlanExample | None:
        cache_key = (entry_index, keys, focus)
        if cache_key in self._projected:
            return self._projected[cache_key]
        entry = self._entries[entry_index]
        example = entry.scenario.examples[entry.index]
        answer = {}
        matched = 0
        for key, item_keys in keys:
            field = entry.scenario.field(key)
            if field is not None:
                matched += 1
                answer[key] = _items_projected(example.answer.get(field.name), item_keys)
            else:
                answer[key] = None
        # An example that answers none of the keys teaches only the output format; skip it.
        text = focus_text(example.text, answer) if focus else example.text
        projected = PlanExample(entry.scenario.example_id(entry.index), text, answer) if matched else None
        if len(self._projected) > 20000:
            self._projected.clear()
        self._projected[cache_key] = projected
        return projected


def remembered_examples(
    matches: Sequence[MemoryMatch], fields: Sequence[FieldSpec], scenario: Scenario | None, *, focus: bool = True
) -> list[PlanExample]:
    """Examples from the memory of reviewed documents (chatocr.memory), in the shape
    `ExampleBank.select` gives, so the planner takes them beside (or instead of) the scenario's:
    each answer projected onto the requested keys (a key asked by alias finds the value reviewed
    under the field's name or another alias; list items keep only the item keys asked), the text
    focused on the lines holding the answers, the similarity as the score, and the id
    `memory:<scenario>/<example id>` (what a result names). In the matches' order; a match
    answering none of the keys teaches only the output format and is left out."""
    keys: Shape = tuple((f.name, tuple(sub.name for sub in f.items)) for f in fields)

    def canonical(name: str) -> str:
        field = scenario.field(name) if scenario is not None else None
        return field.name if field is not None else name.strip().casefold()

    out: list[PlanExample] = []
    for match in matches:
        example = match.example
        reviewed = {canonical(str(name)): value for name, value in example.answer.items()}
        answer: dict[str, Any] = {}
        for key, item_keys in keys:
            name = canonical(key)
            answer[key] = _items_projected(reviewed.get(name), item_keys)
        if not any(canonical(key) in reviewed for key, _ in keys):
            continue
        text = focus_text(example.text, answer) if focus else example.text
        out.append(PlanExample(f"{MEMORY_PREFIX}{example.scenario}/{example.id}", text, answer, round(match.score, 4)))
    return out


def _items_projected(value: Any, item_keys: tuple[str, ...]) -> Any:
    """A list-of-objects (or object) answer with only the item keys asked for, in their order."""
    if not item_keys:
        return value
    if isinstance(value, Mapping):
        return {k: value.get(k) for k in item_keys}
    if isinstance(value, list):
        return [{k: item.get(k) for k in item_keys} if isinstance(item, Mapping) else item for item in value]
    return value


def _leaves(value: Any) -> Iterator[str]:
    """The non-empty scalar values inside an answer value (list items' fields included)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and str(value).strip():
        yield flat_text(str(value))


def focus_text(text: str, answer: Mapping[str, Any], context: int = 1) -> str:
    """`text` with only the lines that hold an answer value, `context` lines either side of each
    (the near misses the model must learn to pass over: SUBTOTAL above TOTAL, CHANGE below it),
    every run of other lines replaced by one "[...]" line.

    A line holds a value when the value occurs in it or, for a value spanning lines (an address
    joined from three lines), when the line is part of the value; NFKC, case and whitespace are
    ignored. Unchanged when no value is found (an all-null example) or cutting would save nothing.
    """
    lines = text.splitlines()
    values = [v for v in _leaves(dict(answer)) if v]
    keep = [False] * len(lines)
    for number, line in enumerate(lines):
        flat = flat_text(line)
        if flat and any(v in flat or (len(flat) >= 4 and flat in v) for v in values):
            for near in range(max(0, number - context), min(len(lines), number + context + 1)):
                keep[near] = True
    if not any(keep) or keep.count(False) < 2:
        return text
    out: list[str] = []
    for line, kept in zip(lines, keep, strict=True):
        if kept:
            out.append(line)
        elif not out or out[-1] != ELISION:
            out.append(ELISION)
    return "\n".join(out)
