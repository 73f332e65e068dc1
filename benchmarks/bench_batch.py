"""Many documents on one CPU (issue 35): a folder through `chatocr extract` with documents decoded together.

Configurations (each `chatocr extract` / each latency child is a process of its own):

- `before`: documents one at a time through the local model (`batch_width = 1`), or, with
  `--baseline-src DIR`, the chatocr source tree before the batch engine existed (its defaults,
  run with PYTHONPATH=DIR): what `chatocr extract DIR` did until now.
- `after`: today's defaults (up to `batch_width` documents decoded together in one context).
- `after-wN`: the defaults with `batch_width = N`.
- `+ocr1` after any of them (`after+ocr1`): RapidOCR on one onnxruntime thread (`ocr_options.threads`).
- `+serial` (`after+serial`): not overlapping: the folder's OCR first, in a process of its own
  (timed), then `chatocr extract` on the cached OCR; its wall time is the sum of the two.

Measured, as ratios within this run, configurations interleaved round by round:
1. throughput: `chatocr extract FOLDER --keys company,date,address,total` on the first --docs
   SROIE receipts with a fresh OCR cache (OCR is part of the run, the model loads once), the
   examples' prefix states warmed beforehand (`chatocr warm`, as setup does): documents per hour,
   its peak RSS, and how many fields differ from `before`'s answers;
2. latency: one receipt at a time in a warm process (OCR cached, one warm-up receipt first): median
   seconds, and the answers;
3. contention: the latency run of `after` beside one CPU-bound process: busy / idle median.

    python benchmarks/bench_batch.py --docs 20 --baseline-src /tmp/chatocr-before
    python benchmarks/bench_batch.py --docs 8 --latency 3 --configs before,after,after-w2   # a quick look

Run it alone and read the load average it prints: llama.cpp on 2 cores slows down many times over
when anything else runs. It prints llama.cpp's build (the CPU features it uses: AVX-512 or not).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def base_of(config: str) -> str:
    return config.split("+", 1)[0]


def ocr_options_of(config: str) -> dict[str, object]:
    return {"threads": 1} if "+ocr1" in config else {}


def options_of(config: str) -> dict[str, object]:
    for modifier in config.split("+")[1:]:
        if modifier not in ("ocr1", "serial"):
            raise SystemExit(f"unknown modifier {modifier!r} in {config!r}: ocr1, serial")
    config = base_of(config)
    if config == "before":
        return {"batch_width": 1}
    if config == "after":
        return {}
    if config.startswith("after-w") and config[7:].isdigit():
        return {"batch_width": int(config[7:])}
    raise SystemExit(f"unknown configuration {config!r}: before, after, after-wN")


def environment(config: str, env: dict[str, str], baseline: str | None) -> dict[str, str]:
    """The child's environment: the baseline tree first on the path for `before` when given."""
    paths = [baseline] if baseline and base_of(config) == "before" else [str(REPO)]
    return {**env, "PYTHONPATH": os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def write_config(path: Path, ocr_cache: Path, options: dict[str, object], ocr: dict[str, object]) -> Path:
    lines = [f'ocr_cache_dir = "{ocr_cache}"', "[llm_options]", *(f"{k} = {json.dumps(v)}" for k, v in options.items())]
    lines += ["[ocr_options]", *(f"{k} = {json.dumps(v)}" for k, v in ocr.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


OCR_ALL = (
    "import sys, time\n"
    "from chatocr import ChatOCR\n"
    "ocr = ChatOCR(config=sys.argv[1])\n"
    "started = time.perf_counter()\n"
    "for path in sys.argv[2:]:\n    ocr.engine.read(path)\n"
    "print('OCR_S', time.perf_counter() - started)\n"
)


PEAK = (
    "import resource, runpy, sys\n"
    "sys.argv = ['chatocr', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('chatocr', run_name='__main__')\n"
    "finally:\n    print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)\n"
)


def throughput(config: str, folder: Path, work: Path, env: dict[str, str], baseline: str | None) -> dict[str, Any]:
    """One `chatocr extract FOLDER` process with a fresh OCR cache: wall seconds, docs/hour, answers."""
    run = Path(tempfile.mkdtemp(dir=work, prefix=f"{config}-"))
    options = {} if baseline and base_of(config) == "before" else options_of(config)
    cfg = write_config(run / "chatocr.toml", run / "ocr-cache", options, ocr_options_of(config))
    out = run / "results.jsonl"
    command = [sys.executable, "-c", PEAK, "extract", str(folder), "-k", ",".join(KEYS), "-s", "retail_receipt"]
    command += ["-o", str(out), "-q", "-c", str(cfg)]
    load = os.getloadavg()
    ocr_seconds = 0.0
    started = time.perf_counter()
    if "+serial" in config:  # the folder's OCR first, alone; then the model on the cached OCR
        images = [str(p) for p in sorted(folder.iterdir())]
        first = [sys.executable, "-c", OCR_ALL, str(cfg), *images]
        read = subprocess.run(first, env=environment(config, env, baseline), capture_output=True, text=True, check=True)
        ocr_seconds = float(read.stdout.split("OCR_S")[-1])
    done = subprocess.run(command, env=environment(config, env, baseline), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{config}: chatocr extract failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = [float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_MB")]
    values = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        values[Path(record["input"]["path"]).stem] = record.get("values", {})
    count = len(list(folder.iterdir()))
    return {
        "config": config,
        "seconds": seconds,
        "docs": count,
        "docs_per_hour": count / seconds * 3600,
        "peak_rss_mb": peak[0] if peak else float("nan"),
        "ocr_first_s": ocr_seconds,
        "values": values,
        "load_before": load,
        "load_after": os.getloadavg(),
    }


def latency_child(config: str, images: list[Path]) -> None:
    """Warm up on images[0], then time each other receipt alone; one JSON line."""
    from chatocr import ChatOCR

    ocr = ChatOCR(llm="local", ocr="rapid", llm_options=options_of(config) if config != "before-src" else {})
    rows = []
    for i, image in enumerate(images):
        started = time.perf_counter()
        result = ocr.extract(image, keys=KEYS, scenario="retail_receipt", raise_errors=False)
        rows.append(
            {"image": image.stem, "seconds": time.perf_counter() - started, "values": result.values, "warmup": i == 0}
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "peak_rss_mb": peak}))


def latency(config: str, images: list[Path], env: dict[str, str], baseline: str | None) -> dict[str, Any]:
    child = "before-src" if baseline and base_of(config) == "before" else config
    command = [sys.executable, __file__, "--latency-child", child, *map(str, images)]
    load = os.getloadavg()
    done = subprocess.run(
        command, env=environment(config, env, baseline), stdout=subprocess.PIPE, text=True, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    timed = [r for r in report["rows"] if not r["warmup"]]
    return {
        "median_s": statistics.median(r["seconds"] for r in timed),
        "values": {r["image"]: r["values"] for r in timed},
        "peak_rss_mb": report["peak_rss_mb"],
        "load_before": load,
    }


def differing(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> int:
    return sum(a[doc].get(key) != b[doc].get(key) for doc in a if doc in b for key in KEYS)


def cpu_features() -> str:
    from chatocr.llm.loaded import llama_build

    flags = ""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
        for line in handle:
            if line.startswith("flags"):
                flags = line
                break
    avx512 = sorted({f for f in flags.split() if f.startswith("avx512")})
    return f"llama.cpp {llama_build()}; CPU avx512: {','.join(avx512) or 'none'}; cores {os.cpu_count()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20, help="receipts in the folder")
    parser.add_argument("--configs", default="before,after")
    parser.add_argument("--rounds", type=int, default=1, help="throughput runs per configuration, interleaved")
    parser.add_argument("--latency", type=int, default=4, help="receipts timed alone per configuration (0: skip)")
    parser.add_argument("--no-contention", action="store_true")
    parser.add_argument("--baseline-src", metavar="DIR", help="the chatocr source tree before the batch engine")
    parser.add_argument("--latency-child", help=argparse.SUPPRESS)
    parser.add_argument("images", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.latency_child:
        latency_child(args.latency_child, [Path(p) for p in args.images])
        return 0
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for config in configs:
        options_of(config)
    baseline = str(Path(args.baseline_src).resolve()) if args.baseline_src else None
    images = sorted((SROIE / "images").glob("*.jpg"))
    print(f"{cpu_features()}\nconfigs {configs}, baseline {baseline or 'batch_width=1'}; load {os.getloadavg()}")
    from chatocr.llm.model_files import model_dir

    with tempfile.TemporaryDirectory() as cache:
        work = Path(cache)
        env = {**os.environ, "CHATOCR_CACHE_DIR": str(work / "cache"), "CHATOCR_MODEL_DIR": str(model_dir())}
        folder = work / "receipts"
        folder.mkdir()
        for image in images[: args.docs]:
            (folder / image.name).symlink_to(image)
        # The examples' states, as setup leaves them: no configuration pays for building them.
        warm = [sys.executable, "-m", "chatocr", "warm", "retail_receipt", "--keys", ",".join(KEYS), "--quiet"]
        subprocess.run(warm, env=environment("after", env, None), check=True)
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
        for round_ in range(args.rounds):
            for config in configs if round_ % 2 == 0 else configs[::-1]:
                result = throughput(config, folder, work, env, baseline)
                runs[config].append(result)
                serial = f" (OCR first {result['ocr_first_s']:.1f} s)" if result["ocr_first_s"] else ""
                print(
                    f"throughput {config}: {result['seconds']:.1f} s{serial}, {result['docs_per_hour']:.0f} docs/h, "
                    f"peak RSS "
                    f"{result['peak_rss_mb']:.0f} MB, load {result['load_before'][0]:.2f} -> "
                    f"{result['load_after'][0]:.2f}",
                    flush=True,
                )
        timed: dict[str, dict[str, Any]] = {}
        busy: dict[str, Any] = {}
        if args.latency:
            latency_images = images[args.docs : args.docs + args.latency + 1]
            for image in latency_images:  # OCR cached for the latency children
                ocr = [sys.executable, "-m", "chatocr", "ocr", "-q", str(image)]
                subprocess.run(ocr, env=env, stdout=subprocess.DEVNULL, check=True)
            for config in configs:
                timed[config] = latency(config, latency_images, env, baseline)
                t = timed[config]
                print(f"latency {config}: median {t['median_s']:.2f} s, load {t['load_before'][0]:.2f}", flush=True)
            if not args.no_contention and "after" in configs:
                burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                try:
                    busy = latency("after", latency_images, env, baseline)
                finally:
                    burner.kill()
                    burner.wait()
                print(f"latency after, beside a busy process: median {busy['median_s']:.2f} s")
    report(configs, runs, timed, busy)
    return 0


def report(
    configs: list[str], runs: dict[str, list[dict[str, Any]]], timed: dict[str, Any], busy: dict[str, Any]
) -> None:
    base = configs[0]
    print("\n| configuration | docs/h (each run) | median docs/h | / " + base + " | fields differing | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    base_rate = statistics.median(r["docs_per_hour"] for r in runs[base])
    for config in configs:
        rates = [r["docs_per_hour"] for r in runs[config]]
        rate = statistics.median(rates)
        differ = differing(runs[config][0]["values"], runs[base][0]["values"])
        peak = max(r["peak_rss_mb"] for r in runs[config])
        shown = ", ".join(f"{x:.0f}" for x in rates)
        print(f"| {config} | {shown} | {rate:.0f} | **{rate / base_rate:.2f}x** | {differ} | {peak:.0f} |")
    if timed:
        print(f"\n| configuration | latency median s | / {base} | fields differing | peak RSS MB |")
        print("|---|---|---|---|---|")
        for config in configs:
            t = timed[config]
            ratio = t["median_s"] / timed[base]["median_s"]
            differ = differing(t["values"], timed[base]["values"])
            print(f"| {config} | {t['median_s']:.2f} | {ratio:.2f}x | {differ} | {t['peak_rss_mb']:.0f} |")
    if busy and "after" in timed:
        print(
            f"\nbeside one busy process: {busy['median_s']:.2f} s / idle {timed['after']['median_s']:.2f} s = "
            f"{busy['median_s'] / timed['after']['median_s']:.2f}x (target <= 2.2)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
