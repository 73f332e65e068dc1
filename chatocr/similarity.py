"""Text similarity without a network or a model: TF-IDF over character n-grams (or words), cosine.

A foundation module (it imports nothing of chatocr): example selection and routing in `extraction`
and the memory store below it (`chatocr.memory`, which keeps the same measure in numpy arrays for
stores of thousands of documents) rank with the one definition here.

Why character n-grams: OCR text mixes Chinese (no word boundaries), numbers and English, and OCR
errors break words; overlapping 1- to 3-character grams compare such text robustly. Used to rank
few-shot examples per document (the most similar go nearest the document) and to pre-score which
scenario a document belongs to before asking the LLM.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["SimilarityIndex", "layout_tokens", "ngrams", "words"]

_DIGITS = re.compile(r"\d")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z]{3,}|[\u4e00-\u9fff]+")


def ngrams(text: str, sizes: tuple[int, ...] = (1, 2, 3)) -> Counter[str]:
    """Character n-grams of normalised text. Digits become '0': two receipts share the shape
    '00.00' of their totals, not the particular numbers."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", _DIGITS.sub("0", text)).strip()
    grams: Counter[str] = Counter()
    for size in sizes:
        for i in range(len(text) - size + 1):
            gram = text[i : i + size]
            if gram.strip():
                grams[gram] += 1
    return grams


def words(text: str) -> Counter[str]:
    """Words of three letters or more, and Chinese character bigrams: what a document is about,
    not how it is laid out. Routing uses these: with character n-grams any English document looks
    like the English receipts."""
    text = unicodedata.normalize("NFKC", text).casefold()
    grams: Counter[str] = Counter()
    for token in _WORD.findall(text):
        if token.isascii() or len(token) == 1:
            grams[token] += 1
        else:
            grams.update(token[i : i + 2] for i in range(len(token) - 1))
    return grams


_CELL_GAP = re.compile(r"\s{2,}")
_DATE_SHAPE = re.compile(r"\d{1,4}\s*[年./-]\s*\d{1,2}\s*[月./-]\s*\d{1,4}")
_LAYOUT_BANDS = 5


def _cell_shape(cell: str) -> str:
    """What a cell of a row is: a date, a number, a label (ends with a colon), Chinese or English text."""
    if _DATE_SHAPE.search(cell):
        return "date"
    letters = sum(ch.isalpha() for ch in cell)
    digits = sum(ch.isdigit() for ch in cell)
    if cell.endswith((":", "：")):
        return "label"
    if digits and digits >= letters:
        return "num"
    if any("\u4e00" <= ch <= "\u9fff" for ch in cell):
        return "cjk"
    return "text"


def layout_tokens(text: str) -> Counter[str]:
    """Where things sit, not what they say (SAIL's layout similarity, on reading-order text): per
    row, its band of the page (top to bottom in fifths), its number of cells, the shapes of its
    cells in order ("label num", "text num"), and its label words with the band. Two receipts
    whose TOTAL row sits at the bottom with a number right of it share these tokens whatever
    their shop is called."""
    rows = [row for row in unicodedata.normalize("NFKC", text).casefold().split("\n") if row.strip()]
    tokens: Counter[str] = Counter()
    for number, row in enumerate(rows):
        band = min(_LAYOUT_BANDS - 1, _LAYOUT_BANDS * number // max(1, len(rows)))
        cells = [c.strip() for c in _CELL_GAP.split(row.strip()) if c.strip()]
        shapes = [_cell_shape(c) for c in cells]
        tokens[f"{band}|cells{min(len(cells), 4)}"] += 1
        tokens[f"{band}|{' '.join(shapes[:4])}"] += 1
        for cell, shape in zip(cells, shapes, strict=True):
            if shape in ("label", "text", "cjk") and len(cell) <= 12:
                first = _WORD.findall(cell)
                if first:
                    tokens[f"{band}|w:{first[0][:4]}"] += 1
    return tokens


# Vectors of texts from another corpus kept by `SimilarityIndex.similarity` (a memory's candidates).
_FOREIGN_KEPT = 4096


@dataclass(frozen=True)
class _Vector:
    weights: dict[str, float]
    norm: float


class SimilarityIndex:
    """Documents indexed once; `scores(query)` gives the cosine similarity to each, in [0, 1]."""

    def __init__(self, texts: Sequence[str], tokenize: Callable[[str], Counter[str]] = ngrams) -> None:
        self._tokenize = tokenize
        counts = [tokenize(text) for text in texts]
        df: Counter[str] = Counter()
        for grams in counts:
            df.update(grams.keys())
        n = max(1, len(texts))
        # Smoothed IDF: a gram in every document still counts a little (n+1)/(df+1) > 1.
        self._idf = {gram: math.log((n + 1) / (count + 1)) + 1.0 for gram, count in df.items()}
        self._default_idf = math.log(n + 1) + 1.0
        self._vectors = [self._vector(grams) for grams in counts]
        # Inverted index: a query only touches the documents sharing each of its grams.
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for doc, vector in enumerate(self._vectors):
            for gram, weight in vector.weights.items():
                self._postings.setdefault(gram, []).append((doc, weight / vector.norm))
        self._last: tuple[str, list[float]] | None = None
        self._last_vector: tuple[str, _Vector] | None = None
        self._foreign: dict[str, _Vector] = {}  # texts of another corpus, as `similarity` weighs them

    def __len__(self) -> int:
        return len(self._vectors)

    def _vector(self, grams: Counter[str]) -> _Vector:
        weights = {g: (1.0 + math.log(c)) * self._idf.get(g, self._default_idf) for g, c in grams.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return _Vector(weights, norm)

    def scores(self, query: str) -> list[float]:
        last = self._last
        if last is not None and last[0] == query:  # routing and example ranking ask about the same text
            return list(last[1])
        q = self._query_vector(query)
        out = [0.0] * len(self._vectors)
        for gram, weight in q.weights.items():
            for doc, doc_weight in self._postings.get(gram, ()):
                out[doc] += weight * doc_weight
        out = [value / q.norm for value in out]
        self._last = (query, out)
        return list(out)

    def similarity(self, query: str, texts: Sequence[str]) -> list[float]:
        """The cosine of `query` with each of `texts`, weighted by this index's IDF (a gram it never
        saw weighs as the rarest): texts of another corpus (the memory of reviewed documents)
        scored on the same scale as the indexed ones. For an indexed text it equals `scores`.
        The texts' vectors are kept (the same reviewed documents come back for a shop's receipts)."""
        q = self._query_vector(query)
        out = []
        for text in texts:
            v = self._foreign.get(text)
            if v is None:
                if len(self._foreign) >= _FOREIGN_KEPT:
                    self._foreign.clear()
                v = self._foreign[text] = self._vector(self._tokenize(text))
            small, large = (q, v) if len(q.weights) <= len(v.weights) else (v, q)
            dot = sum(weight * large.weights.get(gram, 0.0) for gram, weight in small.weights.items())
            out.append(dot / (q.norm * v.norm))
        return out

    def _query_vector(self, query: str) -> _Vector:
        last = self._last_vector
        if last is not None and last[0] == query:
            return last[1]
        vector = self._vector(self._tokenize(query))
        self._last_vector = (query, vector)
        return vector

    def rank(self, query: str, candidates: Iterable[int] | None = None) -> list[tuple[int, float]]:
        """(index, score) best first; ties keep index order, so ranking is deterministic."""
        scores = self.scores(query)
        indices = range(len(scores)) if candidates is None else candidates
        return sorted(((i, scores[i]) for i in indices), key=lambda pair: (-pair[1], pair[0]))
