"""How should memory examples and a scenario's own examples be ranked together? Measured, no model.

The scenario's examples are scored by `ExampleBank` (TF-IDF cosine, IDF over the scenario
library's examples); the memory's by its own index (the same measure, IDF over the reviewed
documents). The two IDFs come from different corpora, so their scores need not be on one scale.
This script puts every document of a labelled set into a memory (its labels as the reviewed
answers, its OCR text), then, for each document (leave-one-out: never its own example), ranks:

- raw:       both lists by their own scores, merged;
- rescored:  the memory's candidates scored again with the library's IDF (SimilarityIndex.similarity),
             so both lists are on the library's scale (what chatocr does);
- memory:    the memory's candidates first, then the scenario's.

and reports, over the documents that have another document of the same shop (same `company`
label) in memory, how often the top example is one of that shop and how often one is among the
first `--examples`; over the others, how many memory examples still take a slot; and the score
distributions on each scale.

    python benchmarks/memory_ranking.py /work/shared/data/sroie_train [--ocr rapid|text] [--examples 2]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatocr.evaluation.datasets import load_dataset  # noqa: E402
from chatocr.extraction.examples import ExampleBank, remembered_examples, resolve_fields  # noqa: E402
from chatocr.memory import DocumentKey, MemoryExample, MemoryStore  # noqa: E402
from chatocr.ocr.cache import CachedEngine, OCRCache  # noqa: E402
from chatocr.ocr.registry import make_engine  # noqa: E402
from chatocr.scenarios import load_scenarios  # noqa: E402

SAME_FIELD = "company"


def _texts(dataset_dir: Path, ocr: str) -> tuple[list[str], list[dict[str, str]], list[DocumentKey], str]:
    library = load_scenarios()
    dataset = load_dataset(dataset_dir, library)
    engine = make_engine(ocr, {}) if ocr != "text" else make_engine("text", {})
    if ocr != "text":
        engine = CachedEngine(engine, OCRCache())
    texts, labels, keys = [], [], []
    for doc in dataset.documents:
        source = doc.image if ocr != "text" else doc.ocr
        assert source is not None, doc.id
        texts.append(engine.read(source).text())
        labels.append({k: str(v) for k, v in doc.labels.items()})
        keys.append(DocumentKey(str(source), hashlib.sha256(source.read_bytes()).hexdigest()))
    return texts, labels, keys, dataset.scenario


def _top(pairs: Sequence[tuple[str, float]], n: int) -> list[str]:
    return [name for name, _ in sorted(pairs, key=lambda p: -p[1])[:n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--ocr", default="rapid")
    parser.add_argument("--examples", type=int, default=2, help="slots (config max_examples)")
    parser.add_argument("--candidates", type=int, default=4, help="memory matches considered per document")
    args = parser.parse_args(argv)

    texts, labels, keys, scenario_name = _texts(args.data, args.ocr)
    library = load_scenarios()
    scenario = library.get(scenario_name)
    fields = resolve_fields(scenario, list(labels[0]))
    bank = ExampleBank(library)
    with tempfile.TemporaryDirectory() as folder:
        store = MemoryStore(scenario_name, folder)
        examples = [
            MemoryExample.from_document(scenario_name, text, label, key)
            for text, label, key in zip(texts, labels, keys, strict=True)
        ]
        store.add(examples)
        shop_of = {e.id: label.get(SAME_FIELD) for e, label in zip(examples, labels, strict=True)}
        rules = {"raw": [0, 0, 0.0], "rescored": [0, 0, 0.0], "memory": [0, 0, 0.0]}
        with_shop = 0
        without_shop = 0
        scales: dict[str, list[float]] = {k: [] for k in ("mem_same", "mem_other", "lib_same", "lib_other", "scen")}
        for i, text in enumerate(texts):
            shop = labels[i].get(SAME_FIELD)
            has_shop = any(shop_of[e.id] == shop for j, e in enumerate(examples) if j != i)
            matches = store.search(text, limit=args.candidates, leave_out=keys[i])
            remembered = remembered_examples(matches, fields, scenario)
            own = bank.select(text, fields, scenario)
            rescored = bank.index.similarity(text, [m.example.text for m in matches])
            same = [shop_of[m.example.id] == shop for m in matches]
            for m, r, s in zip(matches, rescored, same, strict=True):
                scales["mem_same" if s else "mem_other"].append(m.score)
                scales["lib_same" if s else "lib_other"].append(r)
            scales["scen"].extend(e.score or 0.0 for e in own[:1])
            mem_ids = {e.id: m.example.id for e, m in zip(remembered, matches, strict=True)}
            ranked = {
                "raw": _top([(e.id, e.score or 0.0) for e in [*remembered, *own]], args.examples),
                "rescored": _top(
                    [(e.id, r) for e, r in zip(remembered, rescored, strict=True)]
                    + [(e.id, e.score or 0.0) for e in own],
                    args.examples,
                ),
                "memory": [e.id for e in [*remembered, *own]][: args.examples],
            }
            for rule, chosen in ranked.items():
                shops = [shop_of.get(mem_ids.get(c, "")) for c in chosen]
                if has_shop:
                    rules[rule][0] += shops[0] == shop if shops else 0
                    rules[rule][1] += shop in shops
                else:
                    rules[rule][2] += sum(c in mem_ids for c in chosen)
            with_shop += has_shop
            without_shop += not has_shop
    print(f"{args.data.name}: {len(texts)} documents (OCR {args.ocr}), leave-one-out memory of the others")
    print(f"{with_shop} have another document of the same {SAME_FIELD} in memory; {without_shop} have none")
    print(f"rule      top-1 same shop   same shop in top {args.examples}   memory slots when no same shop (mean)")
    for rule, (top1, topn, slots) in rules.items():
        print(
            f"{rule:9} {top1:>5}/{with_shop:<12} {topn:>5}/{with_shop:<18} {slots / max(1, without_shop):.2f} of "
            f"{args.examples}"
        )
    print("scores (median [min, max]):")
    for name, values in scales.items():
        if values:
            print(f"  {name:10} {statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}] n={len(values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
