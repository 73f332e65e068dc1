"""How fast does the conversation manager plan a document as the example library grows?

Plans a conversation for a 3000-character document against libraries of 10, 100 and 1000
examples (about 600 characters each) under an 8000-token budget (tiktoken cl100k_base), after a
warm-up that fills the planner's caches, and prints the median milliseconds per document and the
ratio to the 10-example case. Targets: <= 5 ms per document at 1000 examples, growing no worse
than linearly (ratio at 1000 <= 100x the 10-example case).

    python benchmarks/bench_planner.py [--repeat 50] [--packing packed]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from chatocr.conversation import ConversationPlanner, PlanExample, PlanPolicy, TaskSpec, load_prompts
from chatocr.messages import Limits
from chatocr.scenarios import FieldSpec
from chatocr.tokens import TiktokenCounter

WORDS = [
    "TOTAL",
    "CASH",
    "CHANGE",
    "GST",
    "TAX",
    "ITEM",
    "QTY",
    "PRICE",
    "RM",
    "SDN",
    "BHD",
    "JALAN",
    "DATE",
    "INVOICE",
    "RECEIPT",
    "发票",
    "金额",
    "税额",
    "合计",
]


def text_of(rng: random.Random, chars: int) -> str:
    lines, line, size = [], [], 0
    while size < chars:
        word = rng.choice(WORDS) if rng.random() < 0.6 else f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"
        line.append(word)
        size += len(word) + 1
        if len(line) >= rng.randint(3, 7):
            lines.append("  ".join(line))
            line = []
    lines.append(" ".join(line))
    return "\n".join(lines)[:chars]


def library(rng: random.Random, n: int) -> list[PlanExample]:
    return [
        PlanExample(
            f"ex{i}",
            text_of(rng, rng.randint(450, 750)),
            {"company": f"SHOP {i}", "date": "01/02/2024", "total": f"{i}.00", "tax": None},
            score=1.0 - i / (n + 1),
        )
        for i in range(n)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50, help="documents planned per library size")
    parser.add_argument("--packing", default="packed", choices=["single", "pairs", "packed"])
    args = parser.parse_args(argv)

    rng = random.Random(7)
    task = TaskSpec("receipt", tuple(FieldSpec(name=k) for k in ("company", "date", "total", "tax")))
    documents = [text_of(rng, 3000) for _ in range(args.repeat)]
    limits = Limits(max_input_tokens=8000, max_message_tokens=4000)
    counter = TiktokenCounter("cl100k_base")
    results: dict[int, float] = {}
    print(f"packing={args.packing} budget=8000 tokens, document=3000 chars, repeat={args.repeat}")
    for size in (10, 100, 1000):
        examples = library(rng, size)
        planner = ConversationPlanner(load_prompts("en"), counter, limits, PlanPolicy(packing=args.packing))
        for document in documents[:3]:  # warm-up: fills the example caches
            planner.plan(task, examples, document)
        times = []
        for document in documents:
            start = time.perf_counter()
            plan = planner.plan(task, examples, document)
            times.append((time.perf_counter() - start) * 1000)
        results[size] = statistics.median(times)
        print(
            f"  {size:5d} examples: median {results[size]:7.2f} ms/document "
            f"(included {len(plan.report.included)}, {plan.report.total_tokens} tokens)"
        )
    ratio_100 = results[100] / results[10]
    ratio_1000 = results[1000] / results[10]
    met_ms = results[1000] <= 5.0
    met_linear = ratio_1000 <= 100.0
    print(f"ratio 100/10 = {ratio_100:.2f}x, 1000/10 = {ratio_1000:.2f}x (linear would be 10x and 100x)")
    print(f"target <= 5 ms at 1000 examples: {'MET' if met_ms else 'NOT MET'} ({results[1000]:.2f} ms)")
    print(f"target growth no worse than linear: {'MET' if met_linear else 'NOT MET'} ({ratio_1000:.2f}x <= 100x)")
    results_json = [
        {
            "name": "ms/document at 1000 examples",
            "value": round(results[1000], 3),
            "unit": "ms",
            "target": "<= 5",
            "met": met_ms,
        },
        {
            "name": "time ratio 1000/10 examples",
            "value": round(ratio_1000, 2),
            "unit": "x",
            "target": "<= 100 (linear)",
            "met": met_linear,
        },
    ]
    print("BENCH-JSON " + json.dumps({"benchmark": "planner", "results": results_json}))  # for run_all.py
    return 0 if met_ms and met_linear else 1


if __name__ == "__main__":
    sys.exit(main())
