"""How fast does the review page open a 50-document results file in a real headless browser?

Builds a results file of 50 SROIE receipts (../shared/data/sroie_train: the images and their OCR
boxes; the 3 fixture receipts cycled where that folder is absent), extracted by the real pipeline
with the scripted backend answering each receipt's labels, written by the real results log; the
OCR cache holds each receipt's lines under the rapid engine's key (where `chatocr review` finds
them after a `chatocr extract`). Starts `chatocr review RESULTS --port 0` as a real process and
opens its page in Debian's chromium (selenium, headless) --repeat times: the time from navigation
start until the first document is shown (its fields, OCR lines and page image drawn: the page's
`window.__shownAt`). The server's start (until it prints its URL) is shown beside. The first
opening is the server's first (the page image encoded, the OCR read from the cache); the others
are a reload. Baseline in the same run: a results file of 1 document.
Target (issue #33): <= 1 s for 50 documents.

    python benchmarks/bench_review.py [--documents 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from chatocr import ChatOCR  # noqa: E402
from chatocr.fileio import file_sha256  # noqa: E402
from chatocr.llm.scripted import ScriptedChatModel  # noqa: E402
from chatocr.ocr.cache import OCRCache  # noqa: E402
from chatocr.ocr.registry import get_ocr_engine  # noqa: E402
from chatocr.ocr.text import TextEngine  # noqa: E402
from chatocr.runs import ResultLog  # noqa: E402
from tests.viewer.browser import chromium  # noqa: E402

SROIE = ROOT.parent / "shared" / "data" / "sroie_train"
FIXTURES = ROOT / "tests" / "fixtures" / "sroie"
KEYS = ["company", "date", "address", "total"]
TARGET_S = 1.0


def receipts(count: int) -> list[tuple[Path, Path, Path]]:
    folder = SROIE if (SROIE / "images").is_dir() else FIXTURES
    found = []
    for image in sorted((folder / "images").glob("*.jpg")):
        ocr, labels = folder / "ocr" / f"{image.stem}.json", folder / "labels" / f"{image.stem}.json"
        if ocr.is_file() and labels.is_file():
            found.append((image, ocr, labels))
    if not found:
        sys.exit(f"no receipts with OCR and labels in {folder}")
    return [found[n % len(found)] for n in range(count)]


def build_results(folder: Path, count: int, rapid_key: str) -> Path:
    """A results file of `count` receipts (each its own file), their OCR in the OCR cache."""
    (folder / "images").mkdir(parents=True)
    current: dict[str, str] = {}
    ocr = ChatOCR(
        llm=ScriptedChatModel(lambda messages, settings: current["answer"]),
        ocr="text",
        config={"ocr_cache": False, "classify": False},
    )
    cache = OCRCache()
    results = folder / "results.jsonl"
    with ResultLog(results) as log:
        for n, (image, ocr_file, labels) in enumerate(receipts(count)):
            copy = folder / "images" / f"{n:03d}-{image.name}"
            copy.write_bytes(image.read_bytes() + n.to_bytes(4, "big"))  # its own content, its own document
            with Image.open(copy) as picture:
                size = picture.size
            read = TextEngine().read(ocr_file)
            page = replace(read.pages[0], width=size[0], height=size[1])
            document = replace(read, pages=(page,), source=str(copy), engine="rapid", model="fixture")
            sha256 = file_sha256(copy)
            cache.put(OCRCache.key(sha256, "rapid", rapid_key), replace(document, sha256=sha256))
            current["answer"] = json.dumps(json.loads(labels.read_text(encoding="utf-8")))
            log.append((str(copy), sha256), ocr.extract(document, KEYS, "retail_receipt"))
    return results


def start(results: Path) -> tuple[subprocess.Popen[str], str, float]:
    """The server process, its URL, and the seconds until it printed it (Python, FastAPI, the
    results file read, the OCR engine built and the first document's lines found)."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "chatocr", "review", str(results), "--port", "0", "--no-memory"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("review of"):
            return process, line.split(" at ", 1)[1].strip(), time.perf_counter() - started
    raise SystemExit(f"chatocr review did not start: {process.stderr.read() if process.stderr else ''}")


def open_times(url: str, repeat: int) -> list[float]:
    """Seconds from navigation start to the first document shown, per opening."""
    from selenium.webdriver.support.ui import WebDriverWait

    times = []
    with chromium() as driver:
        for _ in range(repeat):
            driver.get("about:blank")
            driver.get(url)
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script("return document.documentElement.dataset.shown") == "true"
            )
            times.append(float(driver.execute_script("return window.__shownAt")) / 1000)
            count = len(driver.find_elements("css selector", "#doc-list li"))
            lines = len(driver.find_elements("css selector", "#document .ocr-line"))
            assert count > 0 and lines > 0, "the first document was not drawn"
    return times


def measure(folder: Path, count: int, repeat: int, rapid_key: str) -> tuple[list[float], int, float]:
    results = build_results(folder, count, rapid_key)
    process, url, startup = start(results)
    try:
        return open_times(url, repeat), results.stat().st_size, startup
    finally:
        process.terminate()
        process.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chatocr-bench-review-") as temp:
        os.environ["CHATOCR_CACHE_DIR"] = str(Path(temp) / "cache")  # the server process inherits it
        started = time.perf_counter()
        rapid_key = get_ocr_engine("rapid").config_key()
        rows = []
        for count in (1, args.documents):
            times, size, startup = measure(Path(temp) / f"run{count}", count, args.repeat, rapid_key)
            rows.append((count, times, size, startup))
        print(f"built and measured in {time.perf_counter() - started:.0f} s")
    print(
        f"{'documents':>9}  {'results file':>12}  {'server start':>12}  {'first open':>10}  {'reload median':>13}"
        f"  {'max':>6}"
    )
    for count, times, size, startup in rows:
        reloads = times[1:] or times
        print(
            f"{count:>9}  {size / 1024:>10.0f} KB  {startup:>11.2f}s  {times[0]:>9.2f}s"
            f"  {statistics.median(reloads):>12.2f}s  {max(times):>5.2f}s"
        )
    worst = max(rows[-1][1])
    verdict = "met" if worst <= TARGET_S else "MISSED"
    print(
        f"target <= {TARGET_S:.0f} s from navigation start for {args.documents} documents: {verdict} "
        f"(worst {worst:.2f} s)"
    )


if __name__ == "__main__":
    main()
