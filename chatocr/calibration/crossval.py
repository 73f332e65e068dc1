"""K-fold cross-validation by document: fit on some documents, score the fields of the others.

A document's fields are never split across folds: fields of one document share its OCR, its
layout and the model's mood, so scoring a field whose neighbours were fitted on would flatter the
fit. Documents are shuffled with a seeded generator, then dealt to folds in turn.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

__all__ = ["cross_validate", "document_folds"]

SampleT = TypeVar("SampleT")
ModelT = TypeVar("ModelT")


def document_folds(documents: Sequence[Hashable], k: int, seed: int = 0) -> list[set[Hashable]]:
    """The distinct documents dealt into `k` folds (at most as many folds as documents), the same
    for the same documents and seed whatever their order."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    distinct = sorted(set(documents), key=repr)
    random.Random(seed).shuffle(distinct)
    folds: list[set[Hashable]] = [set() for _ in range(min(k, len(distinct)))]
    for index, document in enumerate(distinct):
        folds[index % len(folds)].add(document)
    return folds


def cross_validate(
    samples: Sequence[SampleT],
    document_of: Callable[[SampleT], Hashable],
    fit: Callable[[Sequence[SampleT]], ModelT],
    predict: Callable[[ModelT, SampleT], float | None],
    *,
    k: int = 5,
    seed: int = 0,
) -> list[float | None]:
    """Each sample's prediction by a model fitted without its document, in the samples' order."""
    folds = document_folds([document_of(s) for s in samples], k, seed)
    if len(folds) < 2:
        raise ValueError("cross-validation needs samples from at least 2 documents")
    predictions: list[float | None] = [None] * len(samples)
    for held_out in folds:
        training = [s for s in samples if document_of(s) not in held_out]
        model = fit(training)
        for index, sample in enumerate(samples):
            if document_of(sample) in held_out:
                predictions[index] = predict(model, sample)
    return predictions
