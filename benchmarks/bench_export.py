"""How long does a fine-tuning export of the shared labelled documents take, and how long are its records?

Exports ../shared/data/sroie_train and ../shared/data/cn_train_ticket (50 + 20 = 70 documents) with
RapidOCR's results read from the OCR cache (run `chatocr ocr` on the images once first; a document
the cache misses is OCR'd, which this benchmark reports and which makes the time meaningless) for
the local model (its own tokenizer, vocabulary only), in all four formats, into a temporary
directory that is deleted afterwards (the ticket photos' data never leaves it). Prints, for
`--examples 0` and `--examples 2`: seconds for the whole export, the baseline of reading the 70
cached OCR results alone in the same process, their ratio, and the token-length distribution of
the records per scenario and format. Target: <= 5 s for the 70 documents at --examples 0.

    python benchmarks/bench_export.py [--data ../shared/data] [--llm local] [--ocr rapid] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from chatocr.evaluation.datasets import load_dataset
from chatocr.export.backend import export_chat
from chatocr.export.formats import FORMATS, file_name, from_record
from chatocr.export.options import SFTOptions
from chatocr.export.sft import export_sft, token_stats

SETS = ("sroie_train", "cn_train_ticket")


def _tokens_per_format(out: Path, counter_count: object, overhead: int) -> dict[str, dict[str, object]]:
    """Token lengths of the records as each format carries them (read back from the files)."""
    count = counter_count  # a callable: text -> tokens
    stats: dict[str, dict[str, object]] = {}
    for fmt in FORMATS:
        lengths = []
        for split in ("train", "val"):
            path = out / file_name(fmt, split)
            if not path.exists():
                continue
            text = path.read_text(encoding="utf-8")
            records = [json.loads(x) for x in text.splitlines()] if fmt == "openai" else json.loads(text)
            for record in records:
                lengths.append(sum(count(m["content"]) + overhead for m in from_record(fmt, record)))  # type: ignore[operator]
        stats[fmt] = token_stats(lengths)
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--ocr", default="rapid")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    sources = [args.data / name for name in SETS]
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        print(f"missing labelled sets: {', '.join(missing)}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    chat = export_chat(args.llm, args.ocr)
    setup_s = time.perf_counter() - started

    # Baseline: only reading the cached OCR of the 70 documents (the floor of any export).
    started = time.perf_counter()
    documents = 0
    uncached = []
    for source in sources:
        dataset = load_dataset(source, chat.library)
        for doc in dataset.documents:
            document = chat.engine.read(doc.ocr if args.ocr == "text" else doc.image)
            documents += 1
            if args.ocr != "text" and not document.cached:
                uncached.append(doc.id)
    read_s = time.perf_counter() - started

    results: dict[str, object] = {
        "documents": documents,
        "uncached": uncached,
        "llm": args.llm,
        "ocr": args.ocr,
        "counter": chat.model.counter.name,
        "setup_s": round(setup_s, 3),
        "ocr_read_s": round(read_s, 3),
    }
    for examples in (0, 2):
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            out = Path(tmp) / "sft"
            started = time.perf_counter()
            summary = export_sft(sources, out, SFTOptions(formats=list(FORMATS), examples=examples), chat=chat)
            seconds = time.perf_counter() - started
            per_format = _tokens_per_format(out, chat.model.counter.count, chat.model.limits.message_overhead_tokens)
        results[f"examples_{examples}"] = {
            "seconds": round(seconds, 3),
            "ratio_to_ocr_read": round(seconds / read_s, 2) if read_s else None,
            "records": summary.records,
            "train": summary.train,
            "val": summary.val,
            "duplicates": summary.duplicates,
            "over_length": summary.over_length,
            "max_tokens": summary.max_tokens,
            "skipped": len(summary.skipped),
            "tokens_by_scenario": summary.tokens_by_scenario,
            "tokens_by_format": per_format,
        }
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return 0
    print(
        f"{documents} documents, OCR {args.ocr} ({'all cached' if not uncached else f'{len(uncached)} NOT cached'}), "
        f"tokens: {results['counter']}; setup {setup_s:.2f}s, reading the cached OCR alone {read_s:.2f}s"
    )
    for examples in (0, 2):
        entry = results[f"examples_{examples}"]
        assert isinstance(entry, dict)
        print(
            f"\n--examples {examples}: {entry['seconds']:.2f}s for the export ({entry['ratio_to_ocr_read']}x the OCR "
            f"read), {entry['records']} records (train {entry['train']}, val {entry['val']}), "
            f"{entry['duplicates']} duplicates, {entry['over_length']} over {entry['max_tokens']} tokens, "
            f"{entry['skipped']} skipped"
        )
        print(f"  {'tokens per record':<22} {'n':>3} {'min':>6} {'median':>6} {'p90':>6} {'max':>6} {'mean':>7}")
        rows = [
            *(("scenario " + k, v) for k, v in entry["tokens_by_scenario"].items()),
            *(("format " + k, v) for k, v in entry["tokens_by_format"].items()),
        ]
        for name, stats in rows:
            print(
                f"  {name:<22} {stats['records']:>3} {stats['min']:>6} {stats['median']:>6} {stats['p90']:>6} "
                f"{stats['max']:>6} {stats['mean']:>7}"
            )
    target = results["examples_0"]
    assert isinstance(target, dict)
    met = target["seconds"] <= 5 and not uncached
    print(f"\ntarget: {documents} documents in <= 5 s at --examples 0 (OCR cached): {'MET' if met else 'NOT MET'}")
    bench = {
        "benchmark": "export",
        "results": [
            {
                "name": f"export of {documents} documents, OCR cached, --examples 0",
                "value": target["seconds"],
                "unit": "s",
                "target": "<= 5",
                "met": met,
            },
            {
                "name": "export time / reading the cached OCR alone",
                "value": target["ratio_to_ocr_read"],
                "unit": "x",
                "target": "",
                "met": None,
            },
        ],
    }
    print("BENCH-JSON " + json.dumps(bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
