"""Speed of the offline default on a laptop-class CPU: warm, cold, and beside a busy process.

Each configuration runs in a child process of its own (a clean model load, its own peak RSS), on the
same receipts of ../shared/data/sroie_train, with RapidOCR served from one shared OCR cache (OCR is
not what is measured). Configurations:

- `before`: what the local backend did before this benchmark's levers existed: every usable CPU as
  llama.cpp threads, the prefix kept only as llama.cpp's in-process KV cache, llama-cpp-python's
  own sampler chain (the grammar over the whole vocabulary at every token), no drafts.
- `after`: the current defaults (prefix state in memory and on disk, threads from the idle cores,
  chatocr's greedy loop with the lazy grammar check, 3 prompt-lookup drafts per step).
- `after-drafts`: the defaults without drafts (one token per step), which was `after` until round 6.
- `after+fa`: the defaults with llama.cpp's flash attention.
- `NAME@baseline` (e.g. `after@baseline`): configuration NAME on the baseline llama.cpp build.

`--baseline-llama DIR` names llama-cpp-python as built before (installed with `pip install --no-deps
--target DIR WHEEL`, e.g. the AVX2-only wheel an earlier scripts/setup.sh kept in
~/.cache/chatocr/wheels): `before` and every `NAME@baseline` run on it, the rest on the installed
build. Each row says which build ran it (llama.cpp's own list of the CPU features it was built with).

Measured, each as a ratio within this run:
1. warm: median seconds per document after one warm-up document (model loaded, prefix built),
   with prompt-eval and generation seconds and generated tokens/s shown separately, and accuracy on
   company/date/address/total (exact after NFKC + whitespace + case folding; dates and totals
   normalised, as bench_pipeline.py).
2. contention: the warm run again while one CPU-bound process (started and stopped here) competes.
3. cold: a fresh `chatocr extract OTHER --keys company,date,address,total` process after the
   warm runs left the scenario's prefix state on disk, against the same receipt new to a warm
   process (the `after` child times OTHER last, apart from its median), with the time to its first
   output on a terminal (a pty: the status line is on stderr only there), and the same for
   `chatocr repl OTHER`.
4. peak RSS of each warm child.

    python benchmarks/bench_speed.py --docs 10            # about 15-30 minutes on 2 idle cores
    python benchmarks/bench_speed.py --docs 3 --configs before,after   # a quick look
    python benchmarks/bench_speed.py --baseline-llama /tmp/llama-avx2 --configs before,after@baseline,after

Run it alone: llama.cpp on 2 cores slows down many times over when anything else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SROIE = REPO.parent / "shared" / "data" / "sroie_train"
KEYS = ["company", "date", "address", "total"]
ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")  # CSI and two-byte terminal escapes

CONFIGS: dict[str, dict[str, object]] = {
    "before": {"prefix_cache": False, "threads": os.cpu_count() or 1, "speculative": 0, "greedy": False},
    "after": {},
    "after-drafts": {"speculative": 0},
    "after+fa": {"flash_attn": True},
}


def _levers(config: str) -> dict[str, object]:
    return dict(CONFIGS[config.removesuffix("@baseline")])


def child(config: str, images: list[Path], reference: bool = False) -> None:
    """One configuration: warm up on images[0], then time the rest; prints one JSON line. With
    `reference`, the last image is timed apart (the cold process's receipt, new to a warm one)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_pipeline import correct

    from chatocr import ChatOCR
    from chatocr.llm.local import llama_build  # version and vector extensions, as prefix states key it

    ocr = ChatOCR(llm="local", ocr="rapid", llm_options=_levers(config))
    rows = []
    for i, image in enumerate(images):
        label = json.loads((SROIE / "labels" / f"{image.stem}.json").read_text(encoding="utf-8"))
        started = time.perf_counter()
        result = ocr.extract(image, keys=KEYS, scenario="retail_receipt", raise_errors=False)
        seconds = time.perf_counter() - started
        local = [call for call in result.calls if call.purpose in ("extract", "repair")]
        row = {
            "image": image.stem,
            "seconds": seconds,
            "llm_s": result.timings.get("llm_s"),
            "calls": len(local),
            "llm_calls": len(result.calls),  # re-asks (choices) included
            "completion_tokens": result.usage["completion_tokens"],  # every call's
            "right": sum(correct(k, result.values.get(k), label.get(k, "")) for k in KEYS),
            "values": result.values,
            "warmup": i == 0,
            "reference": reference and i == len(images) - 1,
        }
        row.update(_perf_of(ocr))
        rows.append(row)
        print(f"  [{config}] {image.stem}: {seconds:5.1f} s {row.get('perf_summary', '')}", file=sys.stderr, flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"config": config, "rows": rows, "peak_rss_mb": peak_mb, "build": llama_build()}))


def _perf_of(ocr: object) -> dict[str, object]:
    """The last local call's own timings (the backend records them in the reply's raw form)."""
    model = getattr(ocr, "model", None)
    last = getattr(model, "last_perf", None)
    if not last:
        return {}
    return {
        "prompt_eval_s": last.get("prompt_eval_s"),
        "prompt_eval_tokens": last.get("prompt_eval_tokens"),
        "generation_s": last.get("generation_s"),
        "generated_tokens": last.get("generated_tokens"),
        "prefix_state": last.get("prefix_state"),
        "prefix_s": last.get("prefix_s"),
        "perf_summary": f"prefix {last.get('prefix_state')} {last.get('prefix_s')}s, "
        f"prompt {last.get('prompt_eval_tokens')} tok {last.get('prompt_eval_s')}s, "
        f"gen {last.get('generated_tokens')} tok {last.get('generation_s')}s",
    }


def run_child(config: str, images: list[Path], env: dict[str, str], reference: bool = False) -> dict:
    baseline = env.get("BENCH_BASELINE_LLAMA")
    if baseline and (config == "before" or config.endswith("@baseline")):
        env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (baseline, env.get("PYTHONPATH")) if p)}
    command = [sys.executable, __file__, "--child", config, *(["--reference"] if reference else [])]
    command += [str(p) for p in images]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _timed(report: dict) -> list[dict]:
    return [r for r in report["rows"] if not r["warmup"] and not r.get("reference")]


def answers_differing(report: dict, base: dict) -> int:
    """Fields of the timed receipts whose value differs from the same receipt's in `base`."""
    theirs = {r["image"]: r["values"] for r in _timed(base)}
    return sum(
        (row["values"].get(key) != theirs[row["image"]].get(key))
        for row in _timed(report)
        if row["image"] in theirs
        for key in KEYS
    )


def summarise(report: dict) -> dict[str, Any]:
    timed = _timed(report)
    reference = [r["seconds"] for r in report["rows"] if r.get("reference")]
    gen_tokens = sum(r.get("generated_tokens") or 0 for r in timed)
    gen_s = sum(r.get("generation_s") or 0 for r in timed)
    return {
        "median_s": statistics.median(r["seconds"] for r in timed),
        "prompt_eval_s": statistics.median((r.get("prompt_eval_s") or 0) for r in timed),
        "generation_s": statistics.median((r.get("generation_s") or 0) for r in timed),
        "tokens_per_s": gen_tokens / gen_s if gen_s else float("nan"),
        "right": sum(r["right"] for r in timed),
        "fields": len(KEYS) * len(timed),
        "peak_rss_mb": report["peak_rss_mb"],
        "build": report["build"],
        **({"reference_s": reference[0]} if reference else {}),
    }


def burner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def on_a_terminal(command: list[str], env: dict[str, str], leave_at_first: bool = False) -> tuple[float, float, str]:
    """Run `command` with stdin and stderr on a pseudo-terminal (as a person's shell would; stdout
    goes to /dev/null unless the command is interactive): (seconds to its first visible text on the
    terminal, seconds to its end, that first output). `leave_at_first` kills it at the first text."""
    master, slave = pty.openpty()
    started = time.perf_counter()
    stdout = slave if leave_at_first else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdin=slave, stdout=stdout, stderr=slave)
    os.close(slave)
    first_s, first_text = float("nan"), ""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            # Feedback is what a person sees: escape sequences alone (hiding the cursor) do not count.
            visible = ESCAPES.sub("", chunk.decode("utf-8", "replace")).strip()
            if visible and not first_text:
                first_s, first_text = time.perf_counter() - started, visible
                if leave_at_first:
                    process.kill()
    finally:
        process.wait()
        os.close(master)
    return first_s, time.perf_counter() - started, first_text


def cold_extract(image: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """A fresh `chatocr extract` process on a terminal, its OCR cached (an `chatocr ocr` run first):
    (seconds to its first feedback, wall seconds, that feedback)."""
    chatocr = [sys.executable, "-m", "chatocr"]
    subprocess.run([*chatocr, "ocr", str(image)], env=env, stdout=subprocess.DEVNULL, check=True)
    command = [*chatocr, "extract", str(image), "--keys", ",".join(KEYS), "--scenario", "retail_receipt"]
    return on_a_terminal([*command, "--format", "json"], env)


def repl_first_feedback(image: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds from starting `chatocr repl RECEIPT --llm local` on a terminal to its first output."""
    command = [sys.executable, "-m", "chatocr", "repl", str(image), "--llm", "local", "--ocr", "rapid"]
    first_s, _, text = on_a_terminal(command, {**env, "TERM": "xterm"}, leave_at_first=True)
    return first_s, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10, help="timed receipts per configuration (plus one warm-up)")
    parser.add_argument("--configs", default="before,after,after-drafts")
    parser.add_argument("--no-contention", action="store_true")
    parser.add_argument("--baseline-llama", metavar="DIR", help="llama-cpp-python as built before (pip --target DIR)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("images", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, [Path(p) for p in args.images], args.reference)
        return 0
    images = sorted((SROIE / "images").glob("*.jpg"))[: args.docs + 2]
    if len(images) < args.docs + 2:
        raise SystemExit(f"need {args.docs + 2} receipts under {SROIE}")
    warm_set, other = images[: args.docs + 1], images[args.docs + 1]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for config in configs:
        if config.removesuffix("@baseline") not in CONFIGS:
            parser.error(f"unknown configuration {config!r}: {', '.join(CONFIGS)} (each may end in @baseline)")
    if args.baseline_llama and not (Path(args.baseline_llama) / "llama_cpp").is_dir():
        parser.error(f"--baseline-llama {args.baseline_llama}: no llama_cpp package there (pip install --target)")
    print(f"{len(warm_set) - 1} receipts (+1 warm-up), configs {configs}; load now: {os.getloadavg()}")
    from chatocr.llm.local import model_dir

    with tempfile.TemporaryDirectory() as cache:
        # One cache root for every child: the OCR cache is shared (OCR is not measured) and so is
        # the prefix-state store (`before` does not use it); the model stays where it is.
        env = {**os.environ, "CHATOCR_CACHE_DIR": cache, "CHATOCR_MODEL_DIR": str(model_dir())}
        if args.baseline_llama:
            env["BENCH_BASELINE_LLAMA"] = str(Path(args.baseline_llama).resolve())
        # OCR every receipt once, before any configuration is timed: the first would pay for it.
        for image in [*warm_set, other]:
            subprocess.run(
                [sys.executable, "-m", "chatocr", "ocr", "-q", str(image)],
                env=env,
                stdout=subprocess.DEVNULL,
                check=True,
            )
        idle: dict[str, dict[str, Any]] = {}
        busy: dict[str, dict[str, Any]] = {}
        reports: dict[str, dict] = {}
        for config in configs:
            # `after` also times the cold process's receipt last: the same document, warm.
            reference = config == "after"
            reports[config] = run_child(config, [*warm_set, other] if reference else warm_set, env, reference)
            idle[config] = summarise(reports[config])
            print(f"idle  {config:14s} {json.dumps(idle[config])}", flush=True)
        if not args.no_contention:
            for config in configs:
                competitor = burner()
                try:
                    busy[config] = summarise(run_child(config, warm_set, env))
                finally:
                    competitor.kill()
                    competitor.wait()
                print(f"busy  {config:14s} {json.dumps(busy[config])}", flush=True)
        # Cold: the defaults' prefix state for retail_receipt is on disk from the runs above.
        cold = None
        if "after" in configs:
            cold = cold_extract(other, env)
            repl_first = repl_first_feedback(other, env)
    print()
    print(
        "| configuration | llama.cpp build | median s/doc | prompt-eval s | generation s | tokens/s | accuracy "
        "| peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for config in configs:
        s = idle[config]
        print(
            f"| {config} | {s['build']} | {s['median_s']:.2f} | {s['prompt_eval_s']:.2f} | {s['generation_s']:.2f} | "
            f"{s['tokens_per_s']:.1f} | {s['right']}/{s['fields']} | {s['peak_rss_mb']:.0f} |"
        )
    base = idle.get("before")
    print()
    for config in configs:
        if base and config != "before":
            print(f"warm {config} / before: {idle[config]['median_s'] / base['median_s']:.2f}x (target <= 0.5)")
            differ = answers_differing(reports[config], reports["before"])
            print(f"  answers differing from before's: {differ} of {idle[config]['fields']} fields")
        if config in busy:
            print(
                f"contention {config}: busy / idle median {busy[config]['median_s'] / idle[config]['median_s']:.2f}x "
                "(target <= 2.2)"
            )
    if cold is not None:
        first_s, cold_s, first_text = cold
        same = idle["after"].get("reference_s")
        if same:  # the same receipt, new to an already warm process (the comparison)
            ratio = cold_s / same
            print(f"cold process: {cold_s:.1f} s / the same receipt, warm: {same:.1f} s = {ratio:.2f}x (target <= 1.3)")
        warm = idle["after"]["median_s"]
        print(f"cold process: {cold_s:.1f} s / warm median {warm:.1f} s = {cold_s / warm:.2f}x")
        print(f"first feedback on the terminal: extract {first_s:.2f} s {first_text.strip()[:60]!r} (target <= 1 s)")
        repl_s, repl_text = repl_first
        print(f"first feedback on the terminal: repl {repl_s:.2f} s {repl_text.strip()[:60]!r} (target <= 1 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
