"""Receipts for the memory tests: the benchmark's synthetic receipts (benchmarks/synthetic_receipts.py),
shops that print the same header on each of their receipts."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from synthetic_receipts import receipts  # noqa: E402

__all__ = ["receipts"]
