"""What the answer's form costs the local model: the JSON grammar per generated token, and a
compact answer format (no spaces after ":" and ",").

Three variants, each in a child process of its own, on the same receipts of
../shared/data/sroie_train (RapidOCR served from one shared cache, filled before any timing; one
warm-up receipt per child, then the timed ones):

- `spaced`: today's default: the examples' answers written `{"company": "...", "date": ...}`,
  the answer constrained by the JSON-schema grammar (checked lazily, chatocr/llm/decoding.py).
- `compact`: the examples' answers written `{"company":"...","date":...}`; the model copies the
  examples' style, so its answers are compact too (the grammar allows both).
- `no-grammar`: the default prompts, no grammar: what the grammar itself costs per token.

The two alternatives are not product settings: the child replaces the planner's JSON rendering or
the pipeline's answer schema for its run. Short keys mapped back are not a variant: each of the
four keys is one token of Qwen's vocabulary (printed below), so they would save nothing.

    python benchmarks/bench_answer_format.py --docs 10     # about 8 minutes on 2 idle cores

Run it alone: llama.cpp on 2 cores slows down many times over when anything else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_speed  # noqa: E402  (the receipts, the child loop and its accuracy check)

VARIANTS = ("spaced", "compact", "no-grammar")


def _compact_answers() -> None:
    import chatocr.conversation.planner as planner

    class CompactJSON:
        def __getattr__(self, name: str) -> object:
            return getattr(json, name)

        @staticmethod
        def dumps(value: object, **options: object) -> str:
            return json.dumps(value, **{"separators": (",", ":"), **options})  # type: ignore[arg-type]

    planner.json = CompactJSON()  # type: ignore[assignment]


def _no_grammar() -> None:
    import chatocr.extraction.pipeline as pipeline

    pipeline.answer_schema = lambda *args, **kwargs: None  # type: ignore[assignment]


def child(variant: str, images: list[Path]) -> None:
    if variant == "compact":
        _compact_answers()
    elif variant == "no-grammar":
        _no_grammar()
    bench_speed.CONFIGS[variant] = {"threads": 2}
    bench_speed.child(variant, images)


def vocabulary() -> Any:
    """The model's vocabulary alone (no weights): enough to tokenise and to run a grammar."""
    import llama_cpp

    from chatocr.llm.local import ensure_model

    return llama_cpp.Llama(model_path=str(ensure_model()), vocab_only=True, verbose=False)


def key_tokens(vocab: Any) -> dict[str, int]:
    return {key: len(vocab.tokenize(key.encode(), add_bos=False)) for key in bench_speed.KEYS}


def grammar_check_ms(vocab: Any, repeats: int = 200) -> tuple[float, float]:
    """Milliseconds the lazy grammar check adds per generated token (chatocr/llm/decoding.py) with a
    receipt's answer grammar: when the most likely token is allowed (one candidate checked), and
    when it is refused (the 64 most likely checked)."""
    import time

    import numpy as np

    from chatocr.extraction.extractor import json_schema_for
    from chatocr.llm.decoding import GrammarGate, grammar_for
    from chatocr.scenarios import load_scenarios

    fields = load_scenarios().get("retail_receipt").fields
    schema = json_schema_for(tuple(f for f in fields if f.name in bench_speed.KEYS))
    gate = GrammarGate(vocab, grammar_for({"type": "json_object", "schema": schema}))
    logits = np.random.default_rng(0).random(vocab.n_vocab(), dtype=np.float32)
    best = np.array([int(np.argmax(logits))])
    top = np.argpartition(-logits, 64)[:64]
    started = time.perf_counter()
    for _ in range(repeats):
        gate._best_allowed(gate._one, best, np.zeros(1, np.float32))
    one = (time.perf_counter() - started) / repeats * 1000
    started = time.perf_counter()
    for _ in range(repeats):
        gate._best_allowed(gate._top, top, logits[top])
    refused = one + (time.perf_counter() - started) / repeats * 1000
    gate.close()
    return one, refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10, help="timed receipts per variant (plus one warm-up)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("images", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, [Path(p) for p in args.images])
        return 0
    images = sorted((bench_speed.SROIE / "images").glob("*.jpg"))[: args.docs + 1]
    print(f"{len(images) - 1} receipts (+1 warm-up); load now: {os.getloadavg()}")
    vocab = vocabulary()  # not the whole model: the parent only tokenises and checks a grammar
    print(f"tokens per key: {key_tokens(vocab)}")
    one, refused = grammar_check_ms(vocab)
    del vocab
    print(f"grammar check per generated token: {one:.3f} ms (most likely token allowed), {refused:.3f} ms (refused)")
    from chatocr.llm.local import model_dir

    totals: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CHATOCR_CACHE_DIR": cache, "CHATOCR_MODEL_DIR": str(model_dir())}
        for image in images:
            subprocess.run(
                [sys.executable, "-m", "chatocr", "ocr", "-q", str(image)],
                env=env,
                stdout=subprocess.DEVNULL,
                check=True,
            )
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--child", variant, *map(str, images)]
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
            rows = [r for r in json.loads(done.stdout.strip().splitlines()[-1])["rows"] if not r["warmup"]]
            # Every call of every receipt (a re-ask is a call too); the backend's own prompt and
            # generation split is known for each receipt's last call only, so it is not summed here.
            model_s = sum(r["llm_s"] or 0 for r in rows)
            tokens = sum(r["completion_tokens"] or 0 for r in rows)
            totals[variant] = {
                "model_s": model_s,
                "tokens": tokens,
                "s_per_doc": model_s / len(rows),
                "calls": sum(r["llm_calls"] for r in rows),
                "right": sum(r["right"] for r in rows),
                "fields": len(bench_speed.KEYS) * len(rows),
            }
            print(f"{variant:10s} {json.dumps(totals[variant])}", flush=True)
    base = totals["spaced"]
    print()
    print("| variant | model s, all receipts | / spaced | generated tokens (all calls) | / spaced | calls | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for variant, t in totals.items():
        print(
            f"| {variant} | {t['model_s']:.1f} | {t['model_s'] / base['model_s']:.3f}x | {t['tokens']:.0f} | "
            f"{t['tokens'] / base['tokens']:.3f}x | {t['calls']:.0f} | {t['right']:.0f}/{t['fields']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
