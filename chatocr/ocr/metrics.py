"""Character error rate, for tests and benchmarks of the OCR engines.

Normalisation (stated with every number we publish): NFKC, case-folded, all whitespace removed,
both texts in the same reading order (chatocr's layout: rows by y-overlap, left to right). Removing
whitespace makes the score about characters, not about how an engine splits a row into boxes.

CER = Levenshtein(hypothesis, reference) / len(reference).
"""

from __future__ import annotations

from chatocr.ocr.types import OCRDocument
from chatocr.textnorm import fold

__all__ = ["character_error_rate", "document_cer", "edit_distance", "normalize_for_cer"]


def normalize_for_cer(text: str) -> str:
    return fold(text)  # the one normaliser (chatocr.textnorm)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(hypothesis: str, reference: str) -> float:
    hyp, ref = normalize_for_cer(hypothesis), normalize_for_cer(reference)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(hyp, ref) / len(ref)


def document_cer(hypothesis: OCRDocument, reference: OCRDocument) -> float:
    """CER of one OCR result against ground truth, both rendered in chatocr's reading order."""
    return character_error_rate(hypothesis.text(layout=True), reference.text(layout=True))
