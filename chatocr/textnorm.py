"""The one text normalisation used to compare values with text: NFKC, case-folded, whitespace removed.

Scenario authoring (does an example's answer occur in its text?), grounding (does a value occur in
the OCR text?), the OCR character error rate and the evaluation metrics all compare through
`fold`, so "¥8,490.57" and "￥8,490.57", "TOTAL" and "total", "9. 00" and "9.00" match in each
the same way. `fold_positions` is the same normalisation that also says where each folded
character came from (grounding maps a match back to OCR lines with it).
"""

from __future__ import annotations

import unicodedata

__all__ = ["fold", "fold_positions"]


def fold(text: str) -> str:
    """NFKC, case-folded, every whitespace character removed."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def fold_positions(text: str) -> tuple[str, list[int]]:
    """`fold(text)` and, per folded character, the index of the character of `text` it came from.

    NFKC is applied per character here (so every output character has one source index); it can
    differ from `fold` only for combining sequences, which OCR text does not produce."""
    positions: list[int] = []
    if text.isascii():  # the common case for English documents, ten times faster
        positions = [i for i, ch in enumerate(text) if not ch.isspace()]
        return "".join(text[i] for i in positions).lower(), positions
    chars: list[str] = []
    for index, ch in enumerate(text):
        for out in unicodedata.normalize("NFKC", ch).casefold():
            if not out.isspace():
                chars.append(out)
                positions.append(index)
    return "".join(chars), positions
