"""Two `chatocr eval --out` reports of the same documents, before and after a change: exact and
grounded counts per field (a Markdown table), tokens, calls and seconds per document, and every
prediction that changed with its label.

    python benchmarks/compare_reports.py BEFORE.json AFTER.json [--strategy default]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def rows(report: dict[str, Any], strategy: str) -> dict[tuple[str, str], Row]:
    return {(r["dataset"], r["document"]): r for r in report["documents"] if r["strategy"] == strategy}


def field_table(before: dict[tuple[str, str], Row], after: dict[tuple[str, str], Row], common: list[Any]) -> None:
    counts: dict[tuple[str, str], list[int]] = {}
    for key in common:
        for name, old in before[key]["fields"].items():
            new = after[key]["fields"].get(name, {})
            c = counts.setdefault((key[0], name), [0, 0, 0, 0, 0])
            c[0] += 1
            c[1] += bool(old["match"])
            c[2] += bool(new.get("match"))
            c[3] += old.get("status") == "grounded"
            c[4] += new.get("status") == "grounded"
    print("| set | field | n | exact before | exact after | grounded before | grounded after |")
    print("|---|---|---|---|---|---|---|")
    total = [0, 0, 0]
    for (dataset, name), c in sorted(counts.items()):
        print(f"| {dataset} | {name} | {c[0]} | {c[1]} | {c[2]} | {c[3]} | {c[4]} |")
        total = [total[0] + c[0], total[1] + c[1], total[2] + c[2]]
    n = max(total[0], 1)
    print(f"| ALL | | {total[0]} | {total[1]} ({total[1] / n:.1%}) | {total[2]} ({total[2] / n:.1%}) | | |")


def costs(before: dict[tuple[str, str], Row], after: dict[tuple[str, str], Row], common: list[Any]) -> None:
    def mean(side: dict[tuple[str, str], Row], *keys: str) -> float:
        return statistics.mean(sum(side[k][key] for key in keys) for k in common)

    for label, keys in [
        ("prompt + completion tokens", ("prompt_tokens", "completion_tokens")),
        ("prompt tokens", ("prompt_tokens",)),
        ("completion tokens", ("completion_tokens",)),
        ("calls", ("calls",)),
        ("seconds (in flight, waits included)", ("seconds",)),
    ]:
        a, b = mean(before, *keys), mean(after, *keys)
        print(f"{label} per document: {a:.2f} -> {b:.2f} ({b / a:.3f}x)")


def changes(before: dict[tuple[str, str], Row], after: dict[tuple[str, str], Row], common: list[Any]) -> None:
    changed = 0
    for key in common:
        for name, old in before[key]["fields"].items():
            new = after[key]["fields"].get(name, {})
            if old["predicted"] == new.get("predicted"):
                continue
            changed += 1
            was, now = ("right" if old["match"] else "wrong"), ("right" if new.get("match") else "wrong")
            print(f"  {key[0]}/{key[1]} {name}: {old['predicted']!r} ({was}) -> {new.get('predicted')!r} ({now})")
    print(f"changed predictions: {changed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--strategy", default="default")
    args = parser.parse_args()
    before = rows(json.loads(args.before.read_text(encoding="utf-8")), args.strategy)
    after = rows(json.loads(args.after.read_text(encoding="utf-8")), args.strategy)
    common = sorted(set(before) & set(after))
    print(f"documents: {len(before)} before, {len(after)} after, {len(common)} in both")
    field_table(before, after, common)
    costs(before, after, common)
    changes(before, after, common)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
