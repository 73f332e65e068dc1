"""How well does the local pre-score route documents? (No LLM: the cheap first step of routing.)

1. Leave-one-out over the built-in scenarios' own examples: each example, removed from its scenario,
   is pre-scored against the rest; counts confident routes and whether they are right, and how many of
   the `generic` scenario's examples (documents no specific scenario covers) are confidently misrouted.
2. The shared data's ocr/ text (SROIE receipts, train tickets, FUNSD forms): confident and right,
   confident and wrong, or not confident (classifier / fallback).

    python benchmarks/routing_check.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chatocr.extraction.routing import Router, RoutingPolicy
from chatocr.scenarios import ScenarioLibrary, load_scenarios

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main() -> int:
    library = load_scenarios(include_env=False)
    policy = RoutingPolicy()

    def confident(ranked: list[tuple[str, float]]) -> bool:
        return ranked[0][1] >= policy.min_score and ranked[0][1] - ranked[1][1] >= policy.min_margin

    right = wrong = unsure = 0
    for scenario in library:
        if scenario.name == "generic":
            continue
        for i in range(len(scenario.examples)):
            rest = [
                s.model_copy(update={"examples": tuple(e for j, e in enumerate(s.examples) if j != i)})
                if s.name == scenario.name
                else s
                for s in library
            ]
            router = Router(ScenarioLibrary(rest))
            ranked = router.prescore(scenario.examples[i].text)
            if not confident(ranked):
                unsure += 1
            elif ranked[0][0] == scenario.name:
                right += 1
            else:
                wrong += 1
    router = Router(library)
    generic = [router.prescore(e.text) for e in library.get("generic").examples]
    misrouted = sum(1 for ranked in generic if confident(ranked))
    print(
        f"leave-one-out: {right} right, {wrong} wrong, {unsure} not confident; "
        f"generic examples confidently routed elsewhere: {misrouted}/{len(generic)}"
    )
    for dataset, expected in (("sroie_train", "retail_receipt"), ("cn_train_ticket", "train_ticket"), ("funsd", None)):
        files = sorted((SHARED / dataset / "ocr").glob("*.json"))
        counts = {"right": 0, "wrong": 0, "not confident": 0}
        for file in files:
            text = "\n".join(line["text"] for line in json.loads(file.read_text(encoding="utf-8")))
            ranked = router.prescore(text)
            key = "not confident" if not confident(ranked) else ("right" if ranked[0][0] == expected else "wrong")
            counts[key] += 1
        print(f"{dataset:16s} ({len(files)} documents, expected {expected or 'no scenario'}): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
