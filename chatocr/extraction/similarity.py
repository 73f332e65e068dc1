"""Moved to `chatocr.similarity` (the foundation), so that the memory store below `extraction`
ranks its examples with the same measure. This name stays until `extraction/routing.py` imports
the new one; import `chatocr.similarity` in new code."""

from chatocr.similarity import SimilarityIndex, layout_tokens, ngrams, words

__all__ = ["SimilarityIndex", "layout_tokens", "ngrams", "words"]
