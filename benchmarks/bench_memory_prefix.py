"""What a memory hit costs the local model's prompt-prefix cache, warm (issue #33).

With the planner's "stable" order the local model keeps the state after the system prompt and the
scenario's examples: every receipt that gets the same examples evaluates only its own text. A
memory example is chosen per document, so a receipt that finds one has a conversation prefix of its
own: the model evaluates the new example (and the state is built, and kept on disk) for it.

One process, the local model loaded once, RapidOCR results cached beforehand. Receipts of shops
with more than one receipt in ../shared/data/sroie_train: one receipt of each shop is remembered
(its label as the reviewed answer), another is the query.

1. warm, no memory: a warm-up receipt, then each query receipt;
2. warm, memory: a warm-up receipt, then each query receipt (each finds its shop's receipt);
3. the memory block again (the states of step 2 are now kept: what a repeated example set costs).

Per receipt: seconds, the model's seconds, prompt tokens evaluated anew, where the prefix state
came from (context, memory, disk, built, extended) and its seconds. Prefix states go to a
temporary folder, so nothing this machine computed before takes part.

    python benchmarks/bench_memory_prefix.py [--pairs 4] [--data ../shared/data/sroie_train]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatocr import ChatOCR  # noqa: E402
from chatocr.memory import DocumentKey, MemoryExample, MemoryStore, lines_of  # noqa: E402

KEYS = ["company", "date", "address", "total"]
SCENARIO = "retail_receipt"


def pairs(data: Path, count: int) -> tuple[list[tuple[Path, Path]], Path]:
    """(remembered, query) receipts of `count` shops, and a warm-up receipt of a shop seen once."""
    by_shop: dict[str, list[Path]] = {}
    for label in sorted((data / "labels").glob("*.json")):
        company = json.loads(label.read_text(encoding="utf-8"))["company"]
        by_shop.setdefault(company, []).append(data / "images" / f"{label.stem}.jpg")
    repeated = [paths for paths in by_shop.values() if len(paths) > 1][:count]
    single = next(paths[0] for paths in by_shop.values() if len(paths) == 1)
    return [(paths[0], paths[1]) for paths in repeated], single


def timed(ocr: ChatOCR, image: Path) -> dict[str, Any]:
    started = time.perf_counter()
    result = ocr.extract(image, keys=KEYS, scenario=SCENARIO, raise_errors=False)
    seconds = time.perf_counter() - started
    perf = getattr(ocr.model, "last_perf", None) or {}
    return {
        "image": image.stem,
        "seconds": round(seconds, 2),
        "llm_s": result.timings.get("llm_s"),
        "calls": len(result.calls),
        "prompt_tokens": result.usage["prompt_tokens"],
        "prompt_eval_tokens": perf.get("prompt_eval_tokens"),
        "prefix_state": perf.get("prefix_state"),
        "prefix_s": perf.get("prefix_s"),
        "memory_examples": [e for e in result.examples if e.startswith("memory:")],
    }


def block(name: str, ocr: ChatOCR, warmup: Path, queries: list[Path]) -> list[dict[str, Any]]:
    rows = [timed(ocr, warmup)] + [timed(ocr, q) for q in queries]
    for row in rows:
        print(f"  [{name}] {row}", file=sys.stderr, flush=True)
    return rows[1:]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(r["seconds"] for r in rows), 2),
        "median_llm_s": round(statistics.median(r["llm_s"] for r in rows), 2),
        "median_prompt_eval_tokens": statistics.median(r["prompt_eval_tokens"] or 0 for r in rows),
        "prefix_states": [r["prefix_state"] for r in rows],
        "with_memory_examples": sum(bool(r["memory_examples"]) for r in rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sroie_train")
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()
    chosen, warmup = pairs(args.data, args.pairs)
    with tempfile.TemporaryDirectory(prefix="bench-memory-prefix-") as folder:
        states, memory = Path(folder) / "llama-state", Path(folder) / "memory"
        plain = ChatOCR(llm="local", ocr="rapid", memory=False, llm_options={"prefix_cache_dir": str(states)})
        for image in [warmup, *(p for pair in chosen for p in pair)]:
            plain.engine.read(image)  # OCR cached before anything is timed
        store = MemoryStore(SCENARIO, memory)
        for remembered, _ in chosen:
            label = json.loads((args.data / "labels" / f"{remembered.stem}.json").read_text(encoding="utf-8"))
            document = plain.engine.read(remembered)
            key = DocumentKey(str(remembered.resolve()), hashlib.sha256(remembered.read_bytes()).hexdigest())
            store.add([MemoryExample.from_document(SCENARIO, document.text(), label, key, lines=lines_of(document))])
        queries = [query for _, query in chosen]
        report: dict[str, Any] = {"pairs": [[a.stem, b.stem] for a, b in chosen], "warmup": warmup.stem}
        report["no_memory"] = block("no memory", plain, warmup, queries)
        # The same model object (one load), the memory part added: only example selection differs.
        remembering = ChatOCR(llm=plain.model, ocr=plain.engine, memory_dir=str(memory))
        report["memory"] = block("memory", remembering, warmup, queries)
        report["memory_again"] = block("memory again", remembering, warmup, queries)
    for name in ("no_memory", "memory", "memory_again"):
        report[f"{name}_summary"] = summary(report[name])
        print(f"{name}: {report[f'{name}_summary']}")
    base = report["no_memory_summary"]["median_s"]
    print(f"memory / no memory, median seconds per receipt: {report['memory_summary']['median_s'] / base:.2f}x")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
