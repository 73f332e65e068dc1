"""Compare `chatocr eval` reports with and without a leave-one-out memory, per field, on the same
documents; split by whether a document has another of the same shop (or station) in the set.

    python benchmarks/memory_loo_report.py DATA_DIR --memory LOO.json --none NONE.json [NONE2.json ...]
        [--same company]

The reports' `documents` rows are matched by document id (several no-memory reports may together
cover the set: a learning curve's N=0 point and a `--limit` run); documents missing from either
side are left out and counted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatocr.evaluation.datasets import load_dataset  # noqa: E402
from chatocr.evaluation.metrics import get_normalizer  # noqa: E402
from chatocr.scenarios import load_scenarios  # noqa: E402


def rows(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """document id -> its report row (the first found), from eval reports or learning-curve files."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        for row in data.get("documents", []):
            out.setdefault(row["document"], row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--memory", type=Path, required=True, help="the report with a leave-one-out memory")
    parser.add_argument("--none", type=Path, nargs="+", required=True, help="reports without memory")
    parser.add_argument("--same", default="company", help="the label field that names the issuer")
    args = parser.parse_args()
    dataset = load_dataset(args.data, load_scenarios())
    with_memory, without = rows([args.memory]), rows(args.none)
    docs = [doc for doc in dataset.documents if doc.id in with_memory and doc.id in without]
    norm = get_normalizer("text")
    issuer = {doc.id: norm(doc.labels.get(args.same)) for doc in dataset.documents}
    groups = {
        "all": docs,
        f"another of the same {args.same} in the set": [
            d for d in docs if sum(issuer[o.id] == issuer[d.id] for o in dataset.documents) > 1
        ],
        f"no other of the same {args.same}": [
            d for d in docs if sum(issuer[o.id] == issuer[d.id] for o in dataset.documents) == 1
        ],
    }
    print(f"{dataset.name}: {len(docs)} documents in both ({len(dataset.documents) - len(docs)} left out)")
    for name, group in groups.items():
        if not group:
            continue
        print(f"\n{name} ({len(group)} documents): exact match, no memory -> leave-one-out memory")
        totals = [0, 0, 0]
        for field in dataset.fields:
            right = [sum(r[d.id]["fields"][field]["match"] for d in group) for r in (without, with_memory)]
            totals = [totals[0] + right[0], totals[1] + right[1], totals[2] + len(group)]
            print(f"  {field:20} {100 * right[0] / len(group):5.1f}% -> {100 * right[1] / len(group):5.1f}%")
        print(f"  {'all fields':20} {100 * totals[0] / totals[2]:5.1f}% -> {100 * totals[1] / totals[2]:5.1f}%")
        used = sum(any(e.startswith("memory:") for e in with_memory[d.id]["examples"]) for d in group)
        tokens = [sum(r[d.id]["prompt_tokens"] for d in group) / len(group) for r in (without, with_memory)]
        print(
            f"  memory examples used for {used} of {len(group)}; prompt tokens/doc {tokens[0]:.0f} -> {tokens[1]:.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
