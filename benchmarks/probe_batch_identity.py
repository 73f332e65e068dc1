"""Are one sequence's logits the same computed alone and beside others in one llama.cpp context?
(issue 35: why batched and single-document answers differ; docs/benchmarks.md, "Why batched and
single decoding differ"). Through llama-cpp-python's C API on the shipped local model, 2 threads.

Reference: sequence 0 alone, its prompt read in one 512-token chunk, then one greedy token a step.
Each row computes the same tokens another way and counts the steps whose logits are bit-identical.

    python benchmarks/probe_batch_identity.py          # ~2 minutes on 2 cores; run it alone
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from chatocr.llm.local import resolve_model_path

STEPS = 40
TEXTS = [
    "<|im_start|>user\nExtract company, date, total as JSON from this receipt:\nKEDAI EXAMPLE SDN BHD\n"
    "NO 12 JALAN ABC\nDATE 01/02/2019 10:11\nITEM A 2 x 3.00 6.00\nITEM B 1 x 4.20 4.20\nSUBTOTAL 10.20\n"
    "ROUNDING 0.00\nTOTAL 10.20\nCASH 20.00\nCHANGE 9.80\n<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nExtract company, date, total as JSON from this receipt:\nSYARIKAT PERNIAGAAN GIN KEE\n"
    "TAX INVOICE 25/12/2018\nCEMENT 3 x 12.50 37.50\nTOTAL 37.50\n<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWhat is the train number and the start station?\nG1234 北京南 -> 上海虹桥 2019年01月02日 "
    "08:00 二等座 ¥553.0\n<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nSummarise: the quick brown fox jumps over the lazy dog again and again until it is tired.\n"
    "<|im_end|>\n<|im_start|>assistant\n",
]
Row = tuple[int, int, int, bool]  # token, position, sequence, wants logits


class Probe:
    def __init__(self) -> None:
        import llama_cpp
        import llama_cpp.llama_cpp as capi

        self.capi = capi
        self.llm = llama_cpp.Llama(str(resolve_model_path(None)), n_ctx=512, verbose=False, use_mmap=False)
        self.n_vocab = capi.llama_vocab_n_tokens(capi.llama_model_get_vocab(self.llm._model.model))
        self.prompts = [self.llm.tokenize(t.encode(), add_bos=False, special=True) for t in TEXTS]

    def context(self, unified: bool) -> Any:
        params = self.capi.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = 4096, 512, 512
        params.n_seq_max, params.kv_unified = 4, unified
        params.n_threads = params.n_threads_batch = 2
        return self.capi.llama_init_from_model(self.llm._model.model, params)

    def decode(self, ctx: Any, rows: list[Row]) -> dict[int, np.ndarray]:
        """Decode `rows` as one batch; the logits of the rows that want them, by row index."""
        batch = self.capi.llama_batch_init(len(rows), 0, 1)
        for i, (token, position, seq, wants) in enumerate(rows):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
            batch.seq_id[i][0], batch.logits[i] = seq, wants
        batch.n_tokens = len(rows)
        assert self.capi.llama_decode(ctx, batch) == 0
        out = {
            i: np.ctypeslib.as_array(self.capi.llama_get_logits_ith(ctx, i), shape=(self.n_vocab,)).copy()
            for i, row in enumerate(rows)
            if row[3]
        }
        self.capi.llama_batch_free(batch)
        return out

    def run(self, unified: bool, seqs: list[int], chunk: int) -> list[np.ndarray]:
        """The prompts of `seqs` read together, `chunk` tokens of each a batch, then greedy steps of
        all of them together: sequence 0's logits at the end of its prompt and at each step."""
        ctx = self.context(unified)
        done = dict.fromkeys(seqs, 0)
        last: dict[int, np.ndarray] = {}
        while any(done[s] < len(self.prompts[s]) for s in seqs):
            rows: list[Row] = []
            for s in seqs:
                prompt, end = self.prompts[s], min(len(self.prompts[s]), done[s] + chunk)
                rows += [(prompt[j], j, s, j == len(prompt) - 1) for j in range(done[s], end)]
                done[s] = end
            for i, logits in self.decode(ctx, rows).items():
                last[rows[i][2]] = logits
        trace, token = [last[0]], {s: int(np.argmax(last[s])) for s in seqs}
        for step in range(STEPS):
            rows = [(token[s], len(self.prompts[s]) + step, s, True) for s in seqs]
            for i, logits in self.decode(ctx, rows).items():
                token[rows[i][2]] = int(np.argmax(logits))
                if rows[i][2] == 0:
                    trace.append(logits)
        self.capi.llama_free(ctx)
        return trace

    def fed(self, tokens: list[int], per_step: int) -> list[np.ndarray]:
        """Sequence 0 alone, its known greedy tokens fed `per_step` a step (as accepted drafts)."""
        ctx = self.context(False)
        prompt = self.prompts[0]
        self.decode(ctx, [(t, j, 0, False) for j, t in enumerate(prompt)])
        trace: list[np.ndarray] = []
        for start in range(0, STEPS, per_step):
            rows = [(tokens[k], len(prompt) + k, 0, True) for k in range(start, min(STEPS, start + per_step))]
            out = self.decode(ctx, rows)
            trace += [out[i] for i in range(len(rows))]
        self.capi.llama_free(ctx)
        return trace

    def mixed(self) -> np.ndarray:
        """Sequence 0's prompt read in one batch with three other sequences' generated tokens."""
        ctx = self.context(False)
        for s in (1, 2, 3):
            self.decode(ctx, [(t, j, s, False) for j, t in enumerate(self.prompts[s])])
        prompt = self.prompts[0]
        rows = [(t, j, 0, j == len(prompt) - 1) for j, t in enumerate(prompt)]
        rows += [(100, len(self.prompts[s]), s, False) for s in (1, 2, 3)]
        logits = self.decode(ctx, rows)[len(prompt) - 1]
        self.capi.llama_free(ctx)
        return logits

    def step_ms(self, unified: bool, n: int) -> float:
        """Median ms of a step of `n` sequences' one token each (12 steps)."""
        ctx = self.context(unified)
        for s in range(4):
            self.decode(ctx, [(t, j, s, False) for j, t in enumerate(self.prompts[s])])
        times = []
        for step in range(12):
            rows = [(100, len(self.prompts[s]) + step, s, True) for s in range(n)]
            started = time.perf_counter()
            self.decode(ctx, rows)
            times.append((time.perf_counter() - started) * 1000)
        self.capi.llama_free(ctx)
        return sorted(times)[len(times) // 2]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    gaps = [float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True)]
    return f"{sum(g == 0.0 for g in gaps)} of {len(gaps)} | {max(gaps):.2f}"


def main() -> int:
    probe = Probe()
    alone = probe.run(True, [0], 512)
    streams_alone = probe.run(False, [0], 512)
    tokens = [int(np.argmax(x)) for x in streams_alone[:STEPS]]  # the greedy continuation
    print("| seq 0's logits against alone (512-token prompt chunk, one token a step) | bit-identical | largest gap |")
    print("|---|---|---|")
    print(f"| alone, prompt in 64-token chunks | {_same(alone, probe.run(True, [0], 64))} |")
    print(f"| 4 sequences, unified KV, prompts together | {_same(alone, probe.run(True, [1, 0, 3, 2], 512))} |")
    together = probe.run(False, [1, 0, 3, 2], 512)
    print(f"| 4 sequences, per-sequence KV streams, prompts together | {_same(streams_alone, together)} |")
    print(f"| the same, prompts in 64-token chunks | {_same(streams_alone, probe.run(False, [0, 1, 2, 3], 64))} |")
    print(f"| streams, seq 0's prompt beside 3 generated tokens | {_same(streams_alone[:1], [probe.mixed()])} |")
    for per_step in (2, 3, 4):
        fed = probe.fed(tokens, per_step)
        print(f"| alone, {per_step} known tokens a step (as accepted drafts) | {_same(streams_alone[1:], fed)} |")
    for unified in (True, False):
        one, four = probe.step_ms(unified, 1), probe.step_ms(unified, 4)
        print(f"\nunified={unified}: a step of 1 sequence {one:.1f} ms, of 4 sequences {four:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
