"""How fast does a 50-document HTML report open in a real headless browser, and how big is it?

Builds the report of 50 SROIE receipts (../shared/data/sroie_train: the images, their OCR boxes,
extractions by the real pipeline with the scripted backend answering each receipt's labels; the 3
fixture receipts cycled where that folder is absent), writes it with embedded downscaled JPEG
pages, and opens it in Debian's chromium (selenium, headless) several times: the median time from
navigation start until the report has drawn its first document, next to the file size and the size
per document. Baseline in the same run: the report of 1 document. Target: <= 2 s for 50 documents.

    python benchmarks/bench_viewer.py [--documents 50] [--repeat 5] [--max-side 1200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from chatocr import ChatOCR  # noqa: E402
from chatocr.llm.scripted import ScriptedChatModel  # noqa: E402
from chatocr.ocr.text import TextEngine  # noqa: E402
from chatocr.viewer import ReportItem, write_report  # noqa: E402
from tests.viewer.browser import chromium  # noqa: E402

SROIE = ROOT.parent / "shared" / "data" / "sroie_train"
FIXTURES = ROOT / "tests" / "fixtures" / "sroie"
TARGET_S = 2.0


def receipts(count: int) -> list[tuple[Path, Path, Path]]:
    """(image, ocr json, labels json) for `count` receipts."""
    folder = SROIE if (SROIE / "images").is_dir() else FIXTURES
    found = []
    for image in sorted((folder / "images").glob("*.jpg")):
        ocr, labels = folder / "ocr" / f"{image.stem}.json", folder / "labels" / f"{image.stem}.json"
        if ocr.is_file() and labels.is_file():
            found.append((image, ocr, labels))
    if not found:
        sys.exit(f"no receipts with OCR and labels in {folder}")
    return [found[n % len(found)] for n in range(count)]


def build_items(count: int) -> list[ReportItem]:
    current: dict[str, str] = {}
    ocr = ChatOCR(
        llm=ScriptedChatModel(lambda messages, settings: current["answer"]),
        ocr="text",
        config={"ocr_cache": False, "classify": False},
    )
    items = []
    for image_path, ocr_path, labels in receipts(count):
        image = Image.open(image_path)
        image.load()
        document = TextEngine().read(ocr_path)
        page = replace(document.pages[0], width=image.width, height=image.height)
        document = replace(document, pages=(page,), source=str(image_path), engine="rapid")
        current["answer"] = labels.read_text(encoding="utf-8")
        result = ocr.extract(document, ["company", "date", "address", "total"], "retail_receipt")
        items.append(ReportItem(result, document, [image]))
    return items


def open_times(driver: Any, report: Path, repeat: int) -> list[float]:
    """Seconds from navigation start until the first document is drawn, per load."""
    times = []
    for _ in range(repeat):
        driver.get("about:blank")
        driver.get(report.as_uri())
        ready = driver.execute_script("return document.documentElement.dataset.readyMs")
        if ready is None:
            raise SystemExit(f"{report} did not finish drawing")
        times.append(float(ready) / 1000)
    return times


def switch_ms(driver: Any) -> float:
    """Median milliseconds to draw the next document (ArrowDown through the whole report)."""
    return float(
        driver.execute_script("""
        const times = [];
        const count = document.querySelectorAll('#doc-list li').length;
        for (let i = 1; i < count; i++) {
            const start = performance.now();
            document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown'}));
            document.body.getBoundingClientRect();  // force layout, as a person would see it
            times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        return times.length ? times[Math.floor(times.length / 2)] : 0;
    """)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--max-side", type=int, default=1200, help="embedded page images: longest side, pixels")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    items = build_items(args.documents)
    extract_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-viewer-") as tmp:
        started = time.perf_counter()
        big = write_report(Path(tmp) / "report-50.html", items, max_side=args.max_side)
        write_s = time.perf_counter() - started
        one = write_report(Path(tmp) / "report-1.html", items[:1], max_side=args.max_side)
        size, one_size = big.stat().st_size, one.stat().st_size
        with chromium() as driver:
            open_times(driver, one, 1)  # warm-up: the browser's first page
            base = statistics.median(open_times(driver, one, args.repeat))
            full = statistics.median(open_times(driver, big, args.repeat))
            switch = switch_ms(driver)
    per_doc_kb = size / 1024 / len(items)
    met = full <= TARGET_S
    print(f"documents: {len(items)} (extracted in {extract_s:.1f} s by the pipeline with the scripted backend)")
    print(
        f"report written in {write_s:.2f} s: {size / 1024 / 1024:.2f} MB, {per_doc_kb:.0f} KB per document "
        f"(embedded JPEG pages, longest side <= {args.max_side} px)"
    )
    print(f"open, 1 document (baseline): median {base * 1000:.0f} ms of {args.repeat}; file {one_size / 1024:.0f} KB")
    print(
        f"open, {len(items)} documents: median {full * 1000:.0f} ms of {args.repeat} "
        f"({full / base:.2f}x the 1-document report); file {size / 1024 / 1024:.2f} MB"
    )
    print(f"next document drawn in a median {switch:.1f} ms")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average after the run: {load} on {os.cpu_count()} CPUs")
    print(f"target: {len(items)}-document report opens in <= {TARGET_S:.0f} s: {'MET' if met else 'NOT MET'}")
    results = [
        {
            "name": f"open a {len(items)}-document report",
            "value": round(full, 3),
            "unit": "s",
            "target": f"<= {TARGET_S}",
            "met": met,
        },
        {
            "name": "ratio to the 1-document report",
            "value": round(full / base, 2),
            "unit": "x",
            "target": "",
            "met": None,
        },
        {"name": "file size per document", "value": round(per_doc_kb), "unit": "KB", "target": "", "met": None},
    ]
    print("BENCH-JSON " + json.dumps({"benchmark": "viewer", "results": results}))  # for run_all.py
    return 0


if __name__ == "__main__":
    sys.exit(main())
