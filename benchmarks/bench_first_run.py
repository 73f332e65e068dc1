"""`make demo`'s first run on a fresh machine: where the time goes, with and without warming.

The demo's extraction (`chatocr extract samples/receipt.jpg --keys company,date,address,total`) as
a fresh process with an empty chatocr cache (no OCR cache, no prefix state), the model already
assembled (setup did that), measured three ways in one run:

1. `unwarmed`: the first run as it was before setup warmed anything (the examples evaluated by
   the first document);
2. `warmed`: after `chatocr warm retail_receipt --keys ...` (what setup now runs; its time is
   shown as setup's);
3. `warm process`: the same receipt in a process that has already extracted another one (model
   loaded, the receipt's OCR cached, prefix states kept): the warm figure.

Printed: each run's wall time and its own "where the time went" line, and the ratio of the first
run's extraction to the warm figure (target <= 1.5 with warming).

    python benchmarks/bench_first_run.py          # about 4 minutes on 2 idle cores

Run it alone: llama.cpp on 2 cores slows down many times over when anything else runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECEIPT = REPO / "samples" / "receipt.jpg"
KEYS = "company,date,address,total"
DEMO = [sys.executable, "-m", "chatocr", "extract", str(RECEIPT), "--keys", KEYS, "--format", "values", "--timings"]

# Another receipt first, so the demo's receipt is new to a process whose model is loaded (as in a
# batch); its OCR is cached by then, as in every warm figure of docs/benchmarks.md.
WARM_UP = REPO / "tests" / "fixtures" / "sroie" / "images" / "X51005433541.jpg"
WARM_PROCESS = textwrap.dedent(
    f"""
    import json, time
    from chatocr import ChatOCR
    chat = ChatOCR()
    chat.extract({str(WARM_UP)!r}, keys={KEYS!r})
    started = time.perf_counter()
    result = chat.extract({str(RECEIPT)!r}, keys={KEYS!r})
    print(json.dumps({{"seconds": time.perf_counter() - started, "values": result.values}}))
    """
)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str, str]:
    """(wall seconds, stdout, the "where the time went" line) of one fresh process."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    where = next((line for line in done.stderr.splitlines() if line.startswith("where the time went")), "")
    return seconds, done.stdout, where


def answer(stdout: str) -> dict[str, object]:
    """The values of a `--format values` output (which also carries boxes, usage and seconds)."""
    return {name: field["value"] for name, field in json.loads(stdout)["fields"].items()}


def main() -> int:
    from chatocr.llm.local import model_dir

    print(f"{RECEIPT.name}; load now: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as root:
        base = {**os.environ, "CHATOCR_MODEL_DIR": str(model_dir())}
        fresh = {**base, "CHATOCR_CACHE_DIR": str(Path(root) / "unwarmed")}
        unwarmed_s, unwarmed_values, unwarmed_where = timed(DEMO, fresh)
        print(f"unwarmed first run: {unwarmed_s:.1f} s wall; {unwarmed_where}", flush=True)

        warmed_env = {**base, "CHATOCR_CACHE_DIR": str(Path(root) / "warmed")}
        warm_s, warm_out, _ = timed(
            [sys.executable, "-m", "chatocr", "warm", "retail_receipt", "-k", KEYS, "-q"], warmed_env
        )
        print(f"setup's warm step: {warm_s:.1f} s wall; {warm_out.strip()}", flush=True)
        warmed_s, warmed_values, warmed_where = timed(DEMO, warmed_env)
        print(f"warmed first run: {warmed_s:.1f} s wall; {warmed_where}", flush=True)

        process = subprocess.run(
            [sys.executable, "-c", WARM_PROCESS], env=warmed_env, capture_output=True, text=True, check=True
        )
        warm_figure = float(json.loads(process.stdout.strip().splitlines()[-1])["seconds"])
        print(f"warm process, the receipt after another: {warm_figure:.1f} s", flush=True)
        for name, values in (("unwarmed", unwarmed_values), ("warmed", warmed_values)):
            print(f"{name} answer: {answer(values)}")

    print()
    print("| first run | wall s | / warm figure | target |")
    print("|---|---|---|---|")
    print(f"| unwarmed (before) | {unwarmed_s:.1f} | {unwarmed_s / warm_figure:.2f}x | |")
    print(f"| warmed by setup | {warmed_s:.1f} | {warmed_s / warm_figure:.2f}x | <= 1.5 |")
    print(f"| (setup's warm step) | {warm_s:.1f} | | |")
    print(f"same answer warmed and unwarmed: {answer(warmed_values) == answer(unwarmed_values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
