"""The memory's similarity index: `chatocr.similarity`'s TF-IDF cosine, kept in numpy arrays.

`SimilarityIndex` (what `ExampleBank` ranks a scenario's handful of examples with) scores a query
in pure Python by walking its postings: ~1 s for 10,000 receipts. The memory keeps the very same
measure (the same tokens: `ngrams` for text, `layout_tokens` for layout; the same smoothed IDF,
sub-linear term frequency and cosine) in term-major arrays, so a query touches only the postings
of its own terms, in a few numpy calls.

What is stored is what does not depend on the other documents: per term, the documents holding it
and how often (`Postings`). IDF and the documents' norms change whenever a document joins or
leaves, so they are computed when the index is loaded or changed (`_Weights`), not stored. Adding
documents appends their postings (`Postings.merged`, linear in the index size, no sort); removing
them masks them (`alive`) until `compacted()` drops them.

The file (`save`/`load`) is an uncompressed `.npz` of plain arrays (no pickles: `allow_pickle` is
off, a planted file can at worst fail to load): the vocabulary and the documents' ids as JSON
bytes, postings as int32/uint32 arrays. Anything unexpected in it is an `IndexFileError`; the
store then rebuilds the index from its examples.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from zipfile import BadZipFile

import numpy as np
import numpy.typing as npt

from chatocr.fileio import atomic_writer
from chatocr.similarity import layout_tokens, ngrams

__all__ = ["FORMAT", "ArrayIndex", "IndexFileError", "Postings"]

# Bumped whenever the file's arrays change meaning: an index of another format is rebuilt.
FORMAT = 1
Tokenizer = Callable[[str], Counter[str]]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# The two kinds of similarity and how each tokenizes a document (chatocr.similarity).
KINDS: dict[str, Tokenizer] = {"text": ngrams, "layout": layout_tokens}


class IndexFileError(ValueError):
    """An index file that cannot be this index (damaged, foreign, another format)."""


@dataclass
class Postings:
    """Term-major postings: term t occurs in documents `docs[indptr[t]:indptr[t + 1]]` (in
    increasing order), `counts` times each. `vocab[t]` is the term."""

    vocab: list[str]
    indptr: npt.NDArray[np.int64]
    docs: npt.NDArray[np.int32]
    counts: npt.NDArray[np.uint32]
    terms: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.terms:
            self.terms = {term: number for number, term in enumerate(self.vocab)}

    @classmethod
    def empty(cls) -> Postings:
        return cls([], np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.uint32))

    @property
    def size(self) -> int:
        return int(self.docs.size)

    def with_documents(self, counters: Sequence[Counter[str]], first_doc: int) -> Postings:
        """These postings and those of more documents, numbered from `first_doc` (after every
        document already here); new terms join the end of the vocabulary."""
        vocab = list(self.vocab)
        terms = dict(self.terms)
        term_ids: list[int] = []
        doc_ids: list[int] = []
        counts: list[int] = []
        for offset, grams in enumerate(counters):
            for gram, count in grams.items():
                number = terms.get(gram)
                if number is None:
                    number = terms[gram] = len(vocab)
                    vocab.append(gram)
                term_ids.append(number)
                doc_ids.append(first_doc + offset)
                counts.append(count)
        size = len(vocab)
        order = np.argsort(np.asarray(term_ids, np.int64), kind="stable")  # documents stay in order per term
        sorted_terms = np.asarray(term_ids, np.int64)[order]
        added = Postings(
            vocab,
            np.concatenate([[0], np.cumsum(np.bincount(sorted_terms, minlength=size))]).astype(np.int64),
            np.asarray(doc_ids, np.int32)[order],
            np.minimum(np.asarray(counts, np.int64), np.iinfo(np.uint32).max).astype(np.uint32)[order],
            terms,
        )
        return self._padded(size).merged(added)

    def _padded(self, size: int) -> Postings:
        """The same postings over a vocabulary grown to `size` terms (the new ones empty)."""
        extra = size - (self.indptr.size - 1)
        if extra <= 0:
            return self
        indptr = np.concatenate([self.indptr, np.full(extra, self.indptr[-1], np.int64)])
        return Postings(self.vocab, indptr, self.docs, self.counts, self.terms)

    def merged(self, later: Postings) -> Postings:
        """Both postings in one, `later`'s documents after this one's in each term (a linear
        placement, no sort). `later` has the full vocabulary (this one's is a prefix of it)."""
        base = self._padded(later.indptr.size - 1)
        base_df, later_df = np.diff(base.indptr), np.diff(later.indptr)
        indptr = base.indptr + later.indptr
        total = base.size + later.size
        base_at = np.arange(base.size, dtype=np.int64) + np.repeat(later.indptr[:-1], base_df)
        later_at = np.arange(later.size, dtype=np.int64) + np.repeat(base.indptr[1:], later_df)
        docs = np.empty(total, np.int32)
        counts = np.empty(total, np.uint32)
        docs[base_at], docs[later_at] = base.docs, later.docs
        counts[base_at], counts[later_at] = base.counts, later.counts
        return Postings(later.vocab, indptr, docs, counts, later.terms)

    def kept(self, alive: npt.NDArray[np.bool_], renumber: npt.NDArray[np.int64]) -> Postings:
        """Only the documents marked alive, renumbered (`renumber[old] = new`)."""
        keep = alive[self.docs]
        running = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        return Postings(
            self.vocab,
            running[self.indptr],
            renumber[self.docs[keep]].astype(np.int32),
            self.counts[keep],
            self.terms,
        )


# Terms found in at least this share of the documents are scored as one dense matrix product
# (BLAS) instead of through their postings: receipts share most of their character grams, so ~1,000
# terms hold ~95% of all postings, and walking them was ~100 ms a query at 10,000 documents.
DENSE_SHARE = 1 / 16
DENSE_MAX_TERMS = 1024
DENSE_MIN_DOCUMENTS = 256


@dataclass
class _Weights:
    """What a query needs, for the documents as they are: IDF per term, each posting's weight
    already divided by its document's norm (as `SimilarityIndex` keeps them), and the frequent
    terms' weights as a dense terms x documents matrix (`dense`; `column[term]` is the term's row)."""

    idf: FloatArray
    default_idf: float
    weights: npt.NDArray[np.float32]
    column: IntArray  # term -> its row in `dense`, -1 for terms scored through their postings
    dense: npt.NDArray[np.float32]

    @classmethod
    def of(cls, postings: Postings, alive: npt.NDArray[np.bool_], documents: int) -> _Weights:
        live = int(alive.sum())
        per_term = np.diff(postings.indptr)
        if live == documents:
            df = per_term
        else:  # only live documents count, as if the removed ones were never indexed
            running = np.concatenate([[0], np.cumsum(alive[postings.docs], dtype=np.int64)])
            df = np.diff(running[postings.indptr])
        n = max(1, live)
        idf = np.log((n + 1) / (df + 1.0)) + 1.0
        weights = (1.0 + np.log(postings.counts.astype(np.float64))) * np.repeat(idf, per_term)
        norms = np.sqrt(np.bincount(postings.docs, weights=weights * weights, minlength=documents))
        norms[norms == 0] = 1.0
        normalized = (weights / norms[postings.docs]).astype(np.float32)
        column, dense = _dense_block(postings, per_term, normalized, documents)
        return cls(idf, math.log(n + 1) + 1.0, normalized, column, dense)


def _dense_block(
    postings: Postings, per_term: IntArray, weights: npt.NDArray[np.float32], documents: int
) -> tuple[IntArray, npt.NDArray[np.float32]]:
    """The frequent terms' rows and their terms x documents matrix of weights (a term's row is
    filled from its postings, which are contiguous: one slice per term)."""
    column = np.full(per_term.size, -1, np.int64)
    if documents < DENSE_MIN_DOCUMENTS or per_term.size == 0:
        return column, np.zeros((0, documents), np.float32)
    frequent = np.flatnonzero(per_term >= max(2, int(documents * DENSE_SHARE)))
    frequent = frequent[np.argsort(-per_term[frequent], kind="stable")][:DENSE_MAX_TERMS]
    column[frequent] = np.arange(frequent.size)
    dense = np.zeros((frequent.size, documents), np.float32)
    for row, term in enumerate(frequent.tolist()):
        start, end = postings.indptr[term], postings.indptr[term + 1]
        dense[row, postings.docs[start:end]] = weights[start:end]
    return column, dense


class ArrayIndex:
    """Documents (known by an id and a digest of their text) indexed for text and layout
    similarity; `scores(query, layout_weight)` is `SimilarityIndex`'s cosine, blended as
    `ExampleBank` blends it: (1 - w) x text + w x layout."""

    def __init__(
        self,
        ids: Sequence[str] = (),
        digests: Sequence[str] = (),
        postings: dict[str, Postings] | None = None,
        alive: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        self.ids = list(ids)
        self.digests = list(digests)
        self.postings = postings or {kind: Postings.empty() for kind in KINDS}
        self.alive = np.ones(len(self.ids), np.bool_) if alive is None else alive
        self._weights: dict[str, _Weights] = {}
        self._slots = {doc_id: slot for slot, doc_id in enumerate(self.ids)}

    @classmethod
    def build(cls, ids: Sequence[str], digests: Sequence[str], texts: Sequence[str]) -> ArrayIndex:
        return cls().extended(ids, digests, texts)

    def __len__(self) -> int:
        return int(self.alive.sum())

    @property
    def removed(self) -> int:
        return len(self.ids) - len(self)

    def slot(self, doc_id: str) -> int | None:
        slot = self._slots.get(doc_id)
        return slot if slot is not None and self.alive[slot] else None

    def digest(self, doc_id: str) -> str | None:
        """The text digest a live document was indexed with."""
        slot = self.slot(doc_id)
        return None if slot is None else self.digests[slot]

    def covered(self) -> dict[str, str]:
        """id -> text digest of every live document."""
        return {d: digest for d, digest, live in zip(self.ids, self.digests, self.alive, strict=True) if live}

    def extended(self, ids: Sequence[str], digests: Sequence[str], texts: Sequence[str]) -> ArrayIndex:
        """A new index with these documents too (an id already here is replaced)."""
        alive = self.alive.copy()
        for doc_id in ids:
            if (slot := self._slots.get(doc_id)) is not None:
                alive[slot] = False
        first = len(self.ids)
        postings = {
            kind: self.postings[kind].with_documents([tokenize(text) for text in texts], first)
            for kind, tokenize in KINDS.items()
        }
        return ArrayIndex(
            [*self.ids, *ids], [*self.digests, *digests], postings, np.concatenate([alive, np.ones(len(ids), np.bool_)])
        )

    def without(self, ids: Sequence[str]) -> ArrayIndex:
        """A new index where these documents no longer count (masked; `compacted` drops them)."""
        alive = self.alive.copy()
        for doc_id in ids:
            if (slot := self._slots.get(doc_id)) is not None:
                alive[slot] = False
        return ArrayIndex(self.ids, self.digests, self.postings, alive)

    def compacted(self) -> ArrayIndex:
        """The same live documents, the removed ones' postings dropped."""
        if not self.removed:
            return self
        renumber = np.cumsum(self.alive, dtype=np.int64) - 1
        postings = {kind: p.kept(self.alive, renumber) for kind, p in self.postings.items()}
        ids = [d for d, live in zip(self.ids, self.alive, strict=True) if live]
        digests = [d for d, live in zip(self.digests, self.alive, strict=True) if live]
        return ArrayIndex(ids, digests, postings)

    # -- queries -----------------------------------------------------------------------------

    def _weights_of(self, kind: str) -> _Weights:
        if kind not in self._weights:
            self._weights[kind] = _Weights.of(self.postings[kind], self.alive, len(self.ids))
        return self._weights[kind]

    def prepare(self) -> None:
        """Compute what queries need now (loading does), not on the first query."""
        for kind in KINDS:
            self._weights_of(kind)

    def _kind_scores(self, kind: str, query: str) -> FloatArray:
        postings, weights = self.postings[kind], self._weights_of(kind)
        grams = KINDS[kind](query)
        known = [(postings.terms[g], c) for g, c in grams.items() if g in postings.terms]
        unknown = [(1.0 + math.log(c)) * weights.default_idf for g, c in grams.items() if g not in postings.terms]
        scores = np.zeros(len(self.ids), np.float64)
        if not known:
            return scores
        term_ids = np.fromiter((t for t, _ in known), np.int64, len(known))
        counts = np.fromiter((c for _, c in known), np.float64, len(known))
        query_weights = (1.0 + np.log(counts)) * weights.idf[term_ids]
        norm = math.sqrt(float(np.dot(query_weights, query_weights)) + sum(w * w for w in unknown)) or 1.0
        columns = weights.column[term_ids]
        in_dense = columns >= 0
        if in_dense.any():
            vector = np.zeros(weights.dense.shape[0], np.float32)
            vector[columns[in_dense]] = query_weights[in_dense]
            # einsum, not `@`: BLAS would start its thread pool, which on a busy machine (the
            # local model decoding beside) costs more than the product.
            scores += np.einsum("i,ij->j", vector, weights.dense)
        term_ids, query_weights = term_ids[~in_dense], query_weights[~in_dense]
        starts = postings.indptr[term_ids]
        lengths = postings.indptr[term_ids + 1] - starts
        total = int(lengths.sum())
        if total:
            # Every posting of the other query terms, as one array of positions (no loop per term).
            begins = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            at = np.repeat(starts - begins, lengths) + np.arange(total, dtype=np.int64)
            contributions = weights.weights[at] * np.repeat(query_weights, lengths)
            scores += np.bincount(postings.docs[at], weights=contributions, minlength=len(self.ids))
        return scores / norm

    def scores(self, query: str, layout_weight: float = 0.0) -> FloatArray:
        """Each document's similarity to `query` in [0, 1] (removed documents: -1)."""
        text = self._kind_scores("text", query)
        blended = text if layout_weight <= 0 else (1 - layout_weight) * text
        if layout_weight > 0:
            blended = blended + layout_weight * self._kind_scores("layout", query)
        blended[~self.alive] = -1.0
        return blended

    def rank(
        self, query: str, *, layout_weight: float = 0.0, limit: int = 8, exclude: Sequence[int] = ()
    ) -> list[tuple[str, float]]:
        """The `limit` best (id, score), best first; ties in the order the documents joined."""
        scores = self.scores(query, layout_weight)
        if exclude:
            scores[np.asarray(list(exclude), np.int64)] = -1.0
        count = min(limit, int((scores >= 0).sum()))
        if count <= 0:
            return []
        # The k-th best score; every document scoring at least that is a candidate (argpartition
        # alone would break ties arbitrarily), sorted by score, then by when it joined.
        floor = -np.partition(-scores, count - 1)[count - 1]
        candidates = np.flatnonzero(scores >= floor)
        ordered = candidates[np.lexsort((candidates, -scores[candidates]))][:count]
        return [(self.ids[slot], float(scores[slot])) for slot in ordered.tolist()]

    # -- the file ----------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the (compacted) index atomically (chatocr.fileio: a planted link is replaced)."""
        index = self.compacted()
        arrays: dict[str, Any] = {
            "format": np.asarray([FORMAT], np.int64),
            "ids": _json_bytes(index.ids),
            "digests": _json_bytes(index.digests),
        }
        for kind, postings in index.postings.items():
            arrays[f"{kind}_vocab"] = _json_bytes(postings.vocab)
            arrays[f"{kind}_indptr"] = postings.indptr
            arrays[f"{kind}_docs"] = postings.docs
            arrays[f"{kind}_counts"] = postings.counts

        def fill(handle: IO[bytes]) -> None:
            np.savez(handle, **arrays)

        atomic_writer(path, fill)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ArrayIndex:
        """The index in `path`; IndexFileError for anything that is not a whole index of this format."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"][0]) != FORMAT:
                    raise IndexFileError(f"format {int(data['format'][0])}, this chatocr reads {FORMAT}")
                ids, digests = _from_json_bytes(data["ids"]), _from_json_bytes(data["digests"])
                postings = {
                    kind: Postings(
                        _from_json_bytes(data[f"{kind}_vocab"]),
                        data[f"{kind}_indptr"].astype(np.int64, copy=False),
                        data[f"{kind}_docs"].astype(np.int32, copy=False),
                        data[f"{kind}_counts"].astype(np.uint32, copy=False),
                    )
                    for kind in KINDS
                }
        except IndexFileError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, RecursionError, BadZipFile) as exc:
            raise IndexFileError(str(exc) or type(exc).__name__) from None
        _check(ids, digests, postings)
        index = cls(ids, digests, postings)
        index.prepare()
        return index


def _json_bytes(values: list[str]) -> npt.NDArray[np.uint8]:
    return np.frombuffer(json.dumps(values, ensure_ascii=False).encode("utf-8"), np.uint8)


def _from_json_bytes(array: npt.NDArray[Any]) -> list[str]:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise IndexFileError("a list is not stored as JSON bytes")
    values = json.loads(array.tobytes().decode("utf-8"))
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise IndexFileError("a list of strings was expected")
    return values


def _check(ids: list[str], digests: list[str], postings: dict[str, Postings]) -> None:
    """The arrays are one consistent index: sizes agree, every posting points at a document."""
    if len(ids) != len(digests) or len(set(ids)) != len(ids):
        raise IndexFileError("ids and digests do not match")
    for kind, p in postings.items():
        if p.indptr.ndim != 1 or p.indptr.size != len(p.vocab) + 1 or len(p.terms) != len(p.vocab):
            raise IndexFileError(f"{kind}: the vocabulary and its postings do not match")
        if p.docs.size != p.counts.size or int(p.indptr[0]) != 0 or int(p.indptr[-1]) != p.docs.size:
            raise IndexFileError(f"{kind}: the postings' sizes do not match")
        if p.indptr.size > 1 and bool((np.diff(p.indptr) < 0).any()):
            raise IndexFileError(f"{kind}: the postings are out of order")
        if p.docs.size and (int(p.docs.min()) < 0 or int(p.docs.max()) >= len(ids) or int(p.counts.min()) < 1):
            raise IndexFileError(f"{kind}: a posting names no document")
