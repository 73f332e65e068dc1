"""How a document's reading-order text is written for the model: its columns marked by tabs.

The reading-order layout (chatocr/ocr/layout.py) places a row's cells apart with runs of spaces
proportional to the gap. In Qwen's vocabulary a run of spaces is a token of its own before the
next cell's first word, where a tab mostly joins that word's token: written as tabs, a receipt's
gaps cost 3.8% fewer of its own prompt tokens, a train ticket's 4.4% (benchmarks/bench_prompt.py,
docs/benchmarks.md "A lighter prompt"). The model reads the same columns; the examples' texts are
written the same way, so it learns the form it is shown. Only what is sent changes: grounding,
snapping and the viewer keep the layout text with its spaces (a value the model copies across a
tab is found after whitespace is folded, chatocr/extraction/grounding.py).
"""

from __future__ import annotations

import re

__all__ = ["columns"]

_GAP = re.compile(r"(?<=\S) {2,}(?=\S)")


def columns(text: str) -> str:
    """`text` with every gap of two or more spaces between two cells written as one tab."""
    return _GAP.sub("\t", text)
