"""The evaluation report: every outcome scored against its labels, per dataset (and over all sets),
per strategy, per field, with the OCR's recall beside it and ratios to the baseline strategy.

    report = build_report(datasets, strategies, outcomes, ocr_docs, pairs)

The report is plain JSON (`chatocr eval --out`); evaluation/report.py prints it as tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatocr.evaluation.datasets import Dataset, Document
from chatocr.evaluation.metrics import NORMALIZATION, FieldCounts, get_normalizer, normalize, ocr_contains
from chatocr.evaluation.outcome import DocOutcome
from chatocr.evaluation.strategies import Strategy
from chatocr.ocr.types import OCRDocument

__all__ = ["build_report"]

Pairs = dict[str, list[tuple[str, str]]]


def build_report(
    datasets: Sequence[Dataset],
    strategies: Sequence[Strategy],
    outcomes: Sequence[DocOutcome],
    ocr_docs: dict[tuple[str, str], OCRDocument],
    pairs: Pairs | None = None,
) -> dict[str, Any]:
    """Metrics per dataset (and over all sets), per strategy, per field; ratios to the baseline.

    pairs: per dataset, the fields told apart by position ((first, second), e.g. the start and
    destination stations): a document answering each with the other's label counts as a swap."""
    scorer = _Scorer(strategies, {(o.dataset, o.document, o.strategy): o for o in outcomes}, ocr_docs, pairs or {})
    results = {dataset.name: scorer.score_dataset(dataset) for dataset in datasets}
    if len(datasets) > 1:
        results["ALL"] = scorer.combined()
        scorer.ocr_recall["ALL"] = {"overall": scorer.overall_ocr.summary()["ocr_recall"]}
    return {
        "chatocr_eval": 1,
        "normalization": NORMALIZATION,
        "datasets": [d.describe() for d in datasets],
        "strategies": [
            {"name": s.name, "label": s.label(), "description": s.description, "settings": s.settings()}
            for s in strategies
        ],
        "baseline": scorer.baseline,
        "ocr_recall": scorer.ocr_recall,
        "results": results,
        "documents": scorer.details,
    }


@dataclass
class _Totals:
    """One strategy's counts over every dataset (the report's "ALL")."""

    counts: FieldCounts = field(default_factory=FieldCounts)
    answers: FieldCounts = field(default_factory=FieldCounts)  # the model's own answers, before snapping
    outcomes: list[DocOutcome] = field(default_factory=list)
    swaps: int | None = None  # None: no dataset has position pairs


@dataclass
class _StrategyCounts:
    """One strategy's counts on one dataset."""

    fields: dict[str, FieldCounts]
    answers: FieldCounts = field(default_factory=FieldCounts)
    done: list[DocOutcome] = field(default_factory=list)
    swaps: int = 0
    route_right: int = 0
    route_total: int = 0


class _Scorer:
    def __init__(
        self,
        strategies: Sequence[Strategy],
        by_key: dict[tuple[str, str, str], DocOutcome],
        ocr_docs: dict[tuple[str, str], OCRDocument],
        pairs: Pairs,
    ) -> None:
        self.strategies = strategies
        self.by_key = by_key
        self.ocr_docs = ocr_docs
        self.pairs = pairs
        self.baseline = next((s.name for s in strategies if s.kind == "baseline"), None)
        self.totals = {s.name: _Totals() for s in strategies}
        self.overall_ocr = FieldCounts()
        self.ocr_recall: dict[str, dict[str, Any]] = {}
        self.details: list[dict[str, Any]] = []

    def score_dataset(self, dataset: Dataset) -> dict[str, Any]:
        texts = self._ocr_texts(dataset)
        per_strategy = {strategy.name: self._score_strategy(dataset, strategy, texts) for strategy in self.strategies}
        _add_ratios(per_strategy, self.baseline)
        return per_strategy

    def _ocr_texts(self, dataset: Dataset) -> dict[str, list[str]]:
        """Each reported document's OCR text (with and without layout), and the OCR's recall of the
        labels, which does not depend on the strategy. Over the documents reported: a --cached-only
        report leaves unfinished ones out."""
        ocr_counts = {name: FieldCounts() for name in dataset.fields}
        texts: dict[str, list[str]] = {}
        for doc in dataset.documents:
            if not any((dataset.name, doc.id, s.name) in self.by_key for s in self.strategies):
                continue
            document = self.ocr_docs.get((dataset.name, doc.id))
            texts[doc.id] = (
                [normalize(document.text(layout=True)), normalize(document.text(layout=False))] if document else []
            )
            for name in dataset.fields:
                kind = dataset.normalizers.get(name, "text")
                wanted = get_normalizer(kind)(doc.labels.get(name))
                found = ocr_contains(texts[doc.id], doc.labels.get(name), kind) if wanted else None
                ocr_counts[name].add(wanted, wanted, in_ocr=found)
        total = FieldCounts()
        for counts in ocr_counts.values():
            total.merge(counts)
        self.overall_ocr.merge(total)
        self.ocr_recall[dataset.name] = {
            "fields": {name: c.summary()["ocr_recall"] for name, c in ocr_counts.items()},
            "overall": total.summary()["ocr_recall"],
        }
        return texts

    def _score_strategy(self, dataset: Dataset, strategy: Strategy, texts: dict[str, list[str]]) -> dict[str, Any]:
        counts = _StrategyCounts({name: FieldCounts() for name in dataset.fields})
        for doc in dataset.documents:
            outcome = self.by_key.get((dataset.name, doc.id, strategy.name))
            if outcome is None:
                continue
            counts.done.append(outcome)
            if strategy.route == "classifier" and strategy.kind == "chatocr":
                counts.route_total += 1
                counts.route_right += outcome.scenario == dataset.scenario
            self.details.append(self._score_document(dataset, doc, outcome, texts[doc.id], counts))
        return self._summary(dataset, strategy, counts)

    def _score_document(
        self, dataset: Dataset, doc: Document, outcome: DocOutcome, texts: list[str], counts: _StrategyCounts
    ) -> dict[str, Any]:
        """One document's row of the report's `documents`, counted into `counts`."""
        row: dict[str, Any] = {"dataset": dataset.name, "document": doc.id, "strategy": outcome.strategy, "fields": {}}
        for name in dataset.fields:
            kind = dataset.normalizers.get(name, "text")
            norm = get_normalizer(kind)
            predicted, label = outcome.values.get(name), doc.labels.get(name)
            status = outcome.statuses.get(name)
            pred_n, label_n = norm(predicted), norm(label)
            grounded = None if not pred_n or status is None else status == "grounded"
            in_ocr = ocr_contains(texts, label, kind) if label_n else None
            match = counts.fields[name].add(
                pred_n,
                label_n,
                grounded=grounded,
                in_ocr=in_ocr,
                where=doc.id,
                raw_prediction=predicted,
                raw_label=label,
            )
            row["fields"][name] = {"predicted": predicted, "label": label, "match": match, "status": status}
            counts.answers.add(norm(outcome.answers.get(name, predicted)), label_n)
        counts.swaps += sum(_swapped(dataset, doc, outcome, a, b) for a, b in self.pairs.get(dataset.name, []))
        row.update(
            error=outcome.error,
            calls=outcome.calls,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            seconds=outcome.seconds,
            scenario=outcome.scenario,
            route=outcome.route,
            examples=outcome.examples,
        )
        return row

    def _summary(self, dataset: Dataset, strategy: Strategy, counts: _StrategyCounts) -> dict[str, Any]:
        total = FieldCounts()
        for field_counts in counts.fields.values():
            total.merge(field_counts)
        totals = self.totals[strategy.name]
        totals.counts.merge(total)
        totals.outcomes.extend(counts.done)
        totals.answers.merge(counts.answers)
        has_pairs = bool(self.pairs.get(dataset.name))
        if has_pairs:
            totals.swaps = (totals.swaps or 0) + counts.swaps
        overall = total.summary()
        overall["exact_answers"] = counts.answers.summary()["exact"]
        if has_pairs:
            overall["swaps"] = counts.swaps
        entry: dict[str, Any] = {
            "fields": {name: c.summary() for name, c in counts.fields.items()},
            "overall": overall,
            "usage": _usage(counts.done),
            "mismatches": {name: c.mismatches[:20] for name, c in counts.fields.items() if c.mismatches},
        }
        if counts.route_total:
            entry["routing_accuracy"] = round(counts.route_right / counts.route_total, 4)
        return entry

    def combined(self) -> dict[str, Any]:
        """Each strategy over every dataset."""
        combined: dict[str, Any] = {}
        for strategy in self.strategies:
            totals = self.totals[strategy.name]
            combined[strategy.name] = {
                "overall": {
                    **totals.counts.summary(),
                    "exact_answers": totals.answers.summary()["exact"],
                    **({} if totals.swaps is None else {"swaps": totals.swaps}),
                },
                "usage": _usage(totals.outcomes),
            }
        _add_ratios(combined, self.baseline)
        return combined


def _usage(outcomes: list[DocOutcome]) -> dict[str, Any]:
    n = len(outcomes)
    if not n:
        return {"documents": 0}
    prompt = sum(o.prompt_tokens for o in outcomes)
    completion = sum(o.completion_tokens for o in outcomes)
    return {
        "documents": n,
        "errors": sum(o.error is not None for o in outcomes),
        "calls_per_doc": round(sum(o.calls for o in outcomes) / n, 3),
        "prompt_tokens_per_doc": round(prompt / n, 1),
        "completion_tokens_per_doc": round(completion / n, 1),
        "tokens_per_doc": round((prompt + completion) / n, 1),
        "llm_seconds_per_doc": round(sum(o.llm_seconds for o in outcomes) / n, 3),
        "seconds_per_doc": round(sum(o.seconds for o in outcomes) / n, 3),
        "cached": sum(o.cached for o in outcomes),
    }


def _ratio(value: Any, base: Any) -> float | None:
    if not isinstance(value, (int, float)) or not isinstance(base, (int, float)) or not base:
        return None
    return round(value / base, 3)


def _swapped(dataset: Dataset, doc: Document, outcome: DocOutcome, first: str, second: str) -> bool:
    """Whether the outcome answered `first` with `second`'s label and the other way round."""
    norm_a = get_normalizer(dataset.normalizers.get(first, "text"))
    norm_b = get_normalizer(dataset.normalizers.get(second, "text"))
    label_a, label_b = norm_a(doc.labels.get(first)), norm_b(doc.labels.get(second))
    if not label_a or not label_b or label_a == label_b:
        return False
    return norm_a(outcome.values.get(first)) == label_b and norm_b(outcome.values.get(second)) == label_a


def _add_ratios(per_strategy: dict[str, Any], baseline: str | None) -> None:
    if baseline is None or baseline not in per_strategy:
        return
    base = per_strategy[baseline]
    for entry in per_strategy.values():
        overall, usage = entry["overall"], entry["usage"]
        base_overall, base_usage = base["overall"], base["usage"]
        exact, base_exact = overall.get("exact"), base_overall.get("exact")
        entry["vs_baseline"] = {
            "exact_delta_points": (
                round(100 * (exact - base_exact), 2) if exact is not None and base_exact is not None else None
            ),
            "exact_ratio": _ratio(exact, base_exact),
            "f1_ratio": _ratio(overall.get("f1"), base_overall.get("f1")),
            "tokens_ratio": _ratio(usage.get("tokens_per_doc"), base_usage.get("tokens_per_doc")),
            "prompt_tokens_ratio": _ratio(usage.get("prompt_tokens_per_doc"), base_usage.get("prompt_tokens_per_doc")),
            "calls_ratio": _ratio(usage.get("calls_per_doc"), base_usage.get("calls_per_doc")),
            "seconds_ratio": _ratio(usage.get("seconds_per_doc"), base_usage.get("seconds_per_doc")),
        }
