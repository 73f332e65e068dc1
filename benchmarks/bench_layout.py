"""Benchmark the reading-order row grouping (chatocr.ocr.layout) at 1k, 10k and 20k lines.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_layout.py

The page is a synthetic receipt-like layout: rows of 20-px lines, three cells per row (a key, a
value, a note), with a slight skew and jitter, so that rows must really be grouped. Printed per
size: the median seconds of `group_rows` and of `render_layout` over 3 runs, and the growth
ratio against the 1k-line run (linear growth would be 10x and 20x; quadratic 100x and 400x).
Target (issue 18): 20,000 lines grouped in <= 1 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from chatocr.ocr.layout import group_rows, render_layout
from chatocr.ocr.types import OCRLine, Page

SIZES = (1_000, 10_000, 20_000)


def synthetic_lines(count: int, seed: int = 7) -> list[OCRLine]:
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        row, cell = divmod(n, 3)
        x0 = 20 + cell * 300 + rng.uniform(-3, 3)
        y0 = 10 + row * 24 + rng.uniform(-2, 2) + x0 * 0.01  # about 0.6 degrees of skew
        x1, y1 = x0 + 120 + rng.uniform(0, 60), y0 + 20
        box = ((x0, y0), (x1, y0 + 1.2), (x1, y1 + 1.2), (x0, y1))
        lines.append(OCRLine(f"l{n}", f"cell {n} 金额 {rng.randint(0, 9999)}", box, 0.99))
    rng.shuffle(lines)  # engines do not list lines in reading order
    return lines


def timed(function: object, *args: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base: float | None = None
    print(f"{'lines':>7} {'group_rows s':>13} {'render_layout s':>16} {'growth vs 1k':>13}")
    for size in SIZES:
        lines = synthetic_lines(size)
        group = timed(group_rows, lines, repeat=args.repeat)
        render = timed(render_layout, [Page(0, 1200, 24 * size // 3 + 40, tuple(lines))], repeat=args.repeat)
        base = base or group
        print(f"{size:>7} {group:>13.3f} {render:>16.3f} {group / base:>12.1f}x")
    print(f"target: 20,000 lines grouped in <= 1 s: {'met' if group <= 1.0 else 'NOT met'} ({group:.3f} s)")


if __name__ == "__main__":
    main()
