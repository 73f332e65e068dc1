"""Examples from the memory of reviewed documents, ranked together with a scenario's own.

A document routed to a scenario gets its examples from two places: the scenario's own (the
`ExampleBank`) and the documents people reviewed for that scenario (`chatocr.memory`). Both are
ranked by the same TF-IDF similarity, but each over its own corpus: the bank weighs a gram by how
rare it is among the library's examples, the memory by how rare it is among the reviewed
documents. Those scales differ (benchmarks/memory_ranking.py, SROIE with a leave-one-out memory of
the other 49 receipts: a receipt of another shop scores a median 0.38 against the memory's IDF,
0.53 against the library's, where the scenario's best example scores 0.51), so merging the raw
scores would put the memory's examples behind the scenario's even where they are as close to the
document. So: the memory finds its best `candidates` with its own index (fast at 10,000 documents,
and it finds the receipt of the same shop first: 21 of 21 such SROIE receipts), then those few are
scored again with the library's IDF (`ExampleBank.rescore`) and merged with the scenario's
examples by that one score, memory first on a tie. The planner keeps the best `max_examples` that
fit the budgets, as before.

    memory = ExampleMemory.of(config)                     # once per pipeline: None when off
    recall = memory.recall(text, fields, scenario, focus=True)
    examples, recall = ranked_together(bank, text, bank.select(...), recall, scenario)

Store problems (damaged, another version, a link) never stop extraction: the recall carries one
warning and no examples. `leave_one_out` (evaluation) never offers a document its own example nor
one whose text is its text, and records no use (a measurement changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chatocr.config import ChatOCRConfig
from chatocr.conversation.planner import PlanExample
from chatocr.errors import ChatOCRError, MemoryStoreError
from chatocr.extraction.examples import MEMORY_PREFIX, ExampleBank, remembered_examples
from chatocr.fileio import file_sha256
from chatocr.memory import DEFAULT_CAP, DocumentKey, MemoryStore, text_digest
from chatocr.scenarios.model import FieldSpec, Scenario

__all__ = ["CANDIDATES", "ExampleMemory", "Recall", "memory_id", "ranked_together"]

# Memory matches considered per document: twice the default `max_examples`, so a same-shop
# example and the next best both reach the merge.
CANDIDATES = 4


def memory_id(example_id: str) -> str:
    """The store's id of a plan example id `memory:<scenario>/<id>` (unchanged for other ids)."""
    return example_id.rsplit("/", 1)[-1] if example_id.startswith(MEMORY_PREFIX) else example_id


@dataclass(frozen=True)
class Recall:
    """What the memory offered one document: its examples (rescored, best first) with their full
    texts (what rescoring compares), how many matches the store gave, or why it gave none."""

    scenario: str
    examples: tuple[PlanExample, ...] = ()
    texts: tuple[str, ...] = ()
    found: int = 0
    problem: str | None = None
    # Each example's score on the library's scale, what it was ranked by (`ranked_together`).
    rescored: tuple[float, ...] = ()

    def summary(self, used: Sequence[str]) -> dict[str, Any]:
        """What `Extraction.memory` says: the store, what it found, each example offered with its
        similarity in the memory and on the scenario library's scale, which the plan took."""
        offered = []
        for n, example in enumerate(self.examples):
            score = self.rescored[n] if n < len(self.rescored) else None
            offered.append({"id": example.id, "score": score, "memory_score": example.score})
        return {
            "scenario": self.scenario,
            "found": self.found,
            "offered": offered,
            "used": list(used),
            "warning": self.problem,
        }


@dataclass
class ExampleMemory:
    """The memory part of a pipeline: one `MemoryStore` per scenario, opened at its first use and
    kept (its index stays loaded), never per document."""

    root: Path | None = None  # None: the per-user data folder
    cap: int = DEFAULT_CAP
    layout_weight: float = 0.0
    leave_one_out: bool = False
    candidates: int = CANDIDATES
    # leave_one_out: per document (its path, resolved), other files that are the same document
    # (an evaluation finds them by their identical labels), left out with it.
    twins: dict[str, tuple[DocumentKey, ...]] = field(default_factory=dict)
    _stores: dict[str, MemoryStore] = field(default_factory=dict, init=False, repr=False)
    _keys: dict[str, DocumentKey] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def of(cls, config: ChatOCRConfig) -> ExampleMemory | None:
        """The memory the config asks for (None: `memory = false`)."""
        if not config.memory:
            return None
        root = Path(config.memory_dir).expanduser() if config.memory_dir else None
        return cls(root, cap=config.memory_cap, layout_weight=config.example_layout)

    def store(self, scenario: str) -> MemoryStore:
        """The scenario's store (MemoryStoreError for a name that cannot be a store's folder)."""
        store = self._stores.get(scenario)
        if store is None:
            store = MemoryStore(scenario, self.root, cap=self.cap)
            self._stores[scenario] = store
        return store

    def recall(
        self,
        text: str,
        fields: Sequence[FieldSpec],
        scenario: Scenario | None,
        *,
        focus: bool = True,
        source: str | None = None,
    ) -> Recall | None:
        """The memory's examples for a document of `scenario` (None: no scenario, or no text, as
        when warming). source: the document's path, for leave-one-out."""
        if scenario is None or not text.strip():
            return None
        try:
            store = self.store(scenario.name)
        except MemoryStoreError as exc:
            return Recall(scenario.name, problem=f"memory {scenario.name} not used: {exc.message}")
        leave_out = self._key(source, text) if self.leave_one_out else None
        also = self.twins.get(leave_out.path, ()) if leave_out is not None else ()
        matches, problem = store.find(
            text, limit=self.candidates, layout_weight=self.layout_weight, leave_out=leave_out, also=also
        )
        by_id = {f"{MEMORY_PREFIX}{m.example.scenario}/{m.example.id}": m.example.text for m in matches}
        examples = remembered_examples(matches, fields, scenario, focus=focus)
        return Recall(scenario.name, tuple(examples), tuple(by_id[e.id] for e in examples), len(matches), problem)

    def _key(self, source: str | None, text: str) -> DocumentKey:
        """The document being read, as the store knows documents: its file's path and content
        hash (a document without a file is left out by its text alone)."""
        name = source or f"<text {text_digest(text)}>"
        key = self._keys.get(name)
        if key is None:
            path = Path(name)
            try:
                key = DocumentKey(str(path.resolve()), file_sha256(path) if path.is_file() else "")
            except (OSError, ChatOCRError):
                key = DocumentKey(name)
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[name] = key
        return key

    def touch(self, recall: Recall | None, used: Sequence[str]) -> str | None:
        """Record the use of the examples a plan took (least-recently-used eviction goes by it);
        an evaluation (leave_one_out) records nothing. Returns what to warn of when the store is
        read-only: its examples were read and used, their use cannot be recorded."""
        if recall is None or not used or self.leave_one_out:
            return None
        store = self._stores.get(recall.scenario)
        if store is None:
            return None
        problem = store.touch([memory_id(example_id) for example_id in used])
        if problem is not None:
            return f"{problem} (its examples were used)"
        return None

    def fingerprint(self, scenario: str) -> str:
        """What the scenario's store holds, as one digest (an evaluation's cache key): its
        examples' ids and text digests, and how it is searched."""
        try:
            store = self.store(scenario)
            covered = sorted(store.index().covered().items()) if store.exists else []
        except MemoryStoreError as exc:
            covered = [("unusable", exc.message)]
        twins = sorted((path, [k.path for k in keys]) for path, keys in self.twins.items())
        material = f"{covered}|{self.leave_one_out}|{self.candidates}|{self.layout_weight}|{twins}"
        return text_digest(material)


def _plain(text: str) -> str:
    """A text with its lines stripped and empty lines dropped (an authored example and the
    reviewed document it was made from differ only so)."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def ranked_together(
    bank: ExampleBank,
    text: str,
    own: Sequence[PlanExample],
    recall: Recall | None,
    scenario: Scenario | None,
) -> tuple[list[PlanExample], Recall | None]:
    """The scenario's examples and the memory's, ranked by one score: the memory's rescored with
    the library's IDF (see the module docstring), memory first on a tie; and the recall with
    those scores. A remembered document that is already one of the scenario's examples (a
    scenario authored from reviewed documents) is not offered twice."""
    if recall is None or not recall.examples:
        return list(own), recall
    authored = {_plain(e.text) for e in scenario.examples} if scenario is not None else set()
    kept = [(e, t) for e, t in zip(recall.examples, recall.texts, strict=True) if _plain(t) not in authored]
    scores = [round(s, 4) for s in bank.rescore(text, [t for _, t in kept])]
    rescored = [PlanExample(e.id, e.text, e.answer, s) for (e, _), s in zip(kept, scores, strict=True)]
    recall = replace(
        recall,
        examples=tuple(e for e, _ in kept),
        texts=tuple(t for _, t in kept),
        rescored=tuple(scores),
    )
    # sorted() is stable: on equal scores the memory's (listed first) stay ahead.
    return sorted([*rescored, *own], key=lambda e: -(e.score or 0.0)), recall
