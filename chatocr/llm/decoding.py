"""Greedy decoding for the local model: the grammar checked lazily, drafts looked up in the prompt.

Extraction asks the local model for one JSON answer at temperature ~0, under a grammar built from
the answer's JSON schema. llama-cpp-python's own loop (`create_chat_completion`) serves every
sampling setting, and pays for that at every token: its sampler chain runs the grammar over all
151,936 candidates of the vocabulary before it picks one, about 30 ms per generated token on two
cores (2-3 s of a receipt: benchmarks/bench_speed.py, the `before` rows' time between prompt
evaluation and generation). At temperature ~0 the answer is the most likely token the grammar allows,
so this loop does what llama.cpp's own `common_sampler` does: take the most likely token, ask the
grammar about that one token, and only when it is refused ask about the 64 most likely (and, if all
of those are refused, the whole vocabulary). The answer is the same token; the check is one
candidate instead of 151,936.

Drafts (`n_draft > 0`): an answer is mostly spans copied from the document, so the tokens that
followed the last few generated tokens where they occur earlier in the prompt are a good guess of
what comes next. The guesses are evaluated in one batch with the token being fed, and kept up to the
first one the model would not have chosen, so the output is what decoding one token at a time gives,
up to llama.cpp's rounding: a batch's sums are not bit-for-bit a single step's, so a near tie can
go the other way (seen once in a session check: a date copied as printed instead of rewritten).
On two cores a batch of 4 tokens costs about 1.5-1.8 single steps (a session measurement) and half
the drafted tokens are kept on receipts: 3 drafts per step generate 1.2x faster there, idle or
beside a busy process (docs/benchmarks.md, bench_speed round 6), so the local backend drafts 3 by
default.

`GreedySequence` decides per document; the batch engine (chatocr/llm/batch.py) evaluates the
tokens of every document in flight in one llama.cpp batch per step.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["DecodeStats", "GrammarGate", "GreedySequence", "chosen_logprob", "grammar_for", "prompt_lookup"]

_NEG_INF = float("-inf")
_TOP_K = 64  # candidates checked when the most likely token is refused
# Smallest n-gram of the recent output that must recur in the prompt before its continuation is
# drafted: single tokens (a quote, a comma) recur everywhere and predict nothing.
_MIN_NGRAM = 2
_MAX_NGRAM = 4
# A token's log-probability (ChatSettings.logprobs) is taken under the grammar's mask only where the
# mask can move it: a token the model gives >= 0.999 unmasked gains at most 0.001 from the mask.
_MASK_BELOW = math.log(0.999)


@lru_cache(maxsize=32)
def _grammar_text(schema_json: str | None) -> tuple[str, str]:
    """(GBNF text, root rule) for a JSON schema, or for any JSON object when None. Converting a
    schema is pure Python and the same schema comes back for every document: cached."""
    from llama_cpp import llama_grammar

    if schema_json is None:
        grammar = llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
    else:
        grammar = llama_grammar.LlamaGrammar.from_json_schema(schema_json, verbose=False)
    return grammar._grammar, grammar._root


def grammar_for(response_format: dict[str, Any] | None) -> tuple[str, str] | None:
    """The grammar of a `response_format` as the local backend builds it (None: free text)."""
    if not response_format or response_format.get("type") != "json_object":
        return None
    schema = response_format.get("schema")
    return _grammar_text(json.dumps(schema, ensure_ascii=False) if schema else None)


class GrammarGate:
    """A llama.cpp grammar sampler asked about the chosen token first, the rest only if refused."""

    def __init__(self, llama: Any, grammar: tuple[str, str]) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        text, root = grammar
        self._sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, text.encode(), root.encode())
        if not self._sampler:
            raise ValueError("llama.cpp could not parse the answer's grammar")
        self._n_vocab = llama.n_vocab()
        # Candidate buffers, filled through numpy views of their (id, logit, p) records.
        self._one = (llama_cpp.llama_token_data * 1)()
        self._top = (llama_cpp.llama_token_data * _TOP_K)()
        self._all: Any = None  # the whole vocabulary, allocated on first need
        self.refusals = 0  # times the most likely token was not allowed

    def close(self) -> None:
        if self._sampler:
            self._llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None

    def _best_allowed(self, buffer: Any, tokens: np.ndarray, logits: np.ndarray) -> int | None:
        """The allowed token of highest logit among `tokens`, None when the grammar refuses all."""
        view = np.ctypeslib.as_array(buffer)
        size = len(tokens)
        view["id"][:size], view["logit"][:size], view["p"][:size] = tokens, logits, 0.0
        array = self._llama_cpp.llama_token_data_array(buffer, size, -1, False)
        self._llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(array))
        kept = np.ctypeslib.as_array(array.data, shape=(array.size,)) if array.size else None
        if kept is None or not np.isfinite(kept["logit"]).any():
            return None
        return int(kept["id"][int(np.argmax(kept["logit"]))])

    def refused(self, tokens: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """Which of `tokens` (at most the 64 most likely) the grammar refuses here, as a mask."""
        view = np.ctypeslib.as_array(self._top)
        size = len(tokens)
        view["id"][:size], view["logit"][:size], view["p"][:size] = tokens, logits, 0.0
        array = self._llama_cpp.llama_token_data_array(self._top, size, -1, False)
        self._llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(array))
        kept = np.ctypeslib.as_array(array.data, shape=(array.size,)) if array.size else None
        if kept is None:
            return np.ones(size, dtype=bool)
        allowed = {int(t) for t, logit in zip(kept["id"], kept["logit"], strict=True) if np.isfinite(logit)}
        return np.array([int(t) not in allowed for t in tokens], dtype=bool)

    def choose(self, logits: np.ndarray) -> int:
        """The most likely token the grammar allows (what full-vocabulary masking + argmax gives)."""
        token = int(np.argmax(logits))
        if self._best_allowed(self._one, np.array([token]), np.zeros(1, np.float32)) is not None:
            return token
        self.refusals += 1
        # Among the k most likely, the best allowed one is the best allowed overall.
        top = np.argpartition(-logits, _TOP_K)[:_TOP_K]
        chosen = self._best_allowed(self._top, top, logits[top])
        if chosen is None:  # every likely token refused: mask the whole vocabulary, as the chain would
            if self._all is None:
                self._all = (self._llama_cpp.llama_token_data * self._n_vocab)()
            chosen = self._best_allowed(self._all, np.arange(self._n_vocab), logits)
        if chosen is None:
            raise ValueError("the grammar allows no token here")
        return chosen

    def accept(self, token: int) -> None:
        self._llama_cpp.llama_sampler_accept(self._sampler, token)


def prompt_lookup(history: Sequence[int], n_draft: int) -> list[int]:
    """Up to `n_draft` tokens that followed the latest earlier occurrence of the last 4, 3 or 2
    tokens of `history` (prompt + output so far); [] when none recurs."""
    end = len(history)
    for n in range(_MAX_NGRAM, _MIN_NGRAM - 1, -1):
        if end <= n:
            continue
        tail = list(history[end - n :])
        for start in range(end - n - 1, -1, -1):
            if history[start] == tail[0] and list(history[start : start + n]) == tail:
                return list(history[start + n : min(end, start + n + n_draft)])
    return []


def chosen_logprob(logits: np.ndarray, token: int, gate: GrammarGate | None) -> float:
    """The natural log of `token`'s probability at temperature 1: the logits' log-softmax, after the
    grammar's mask when there is one (renormalised over the allowed tokens).

    The whole vocabulary's log-sum-exp is one pass over 151,936 floats (~0.2 ms on these cores). The
    mask is applied to the 64 most likely tokens, and only when it can matter: the chosen token is
    allowed, so the mask only raises its probability, and one already at >= 0.999 unmasked is left
    there (off by at most 0.001). Refused tokens outside the 64 most likely stay in the denominator:
    their mass is what the top 64 leave over, which a greedy answer's tokens make small; the
    probability is then a lower bound, never an overstatement."""
    scores = logits.astype(np.float64, copy=False)
    peak = float(scores.max())
    shifted = np.exp(scores - peak)
    total = float(shifted.sum())
    logprob = float(scores[token]) - peak - math.log(total)
    if gate is None or logprob >= _MASK_BELOW:
        return logprob
    top = np.argpartition(-scores, _TOP_K)[:_TOP_K]
    refused = float(shifted[top][gate.refused(top, logits[top])].sum())
    allowed = max(total - refused, float(shifted[token]))
    return min(0.0, float(scores[token]) - peak - math.log(allowed))


@dataclass
class DecodeStats:
    """What one greedy decode did (for timings and benchmarks)."""

    prompt_tokens: int = 0  # evaluated for this call (after the prefix the KV cache held)
    generated: int = 0
    drafted: int = 0
    accepted: int = 0  # drafted tokens kept
    grammar_refusals: int = 0
    finish: str = "stop"  # stop | length | cancelled
    prompt_s: float = 0.0
    generation_s: float = 0.0
    logprob_s: float = 0.0  # computing the answer tokens' log-probabilities, when asked


class GreedySequence:
    """One answer decoded greedily a step at a time, for the batch engine (chatocr/llm/batch.py).

    `start` takes the logits after the prompt; then each step `feed` says which tokens to
    evaluate next (the chosen token, emitted now, and any drafts after it; [] when the answer is
    over, `stats.finish` says why), and `verify` keeps the drafts the model agrees with and picks
    the next token. This is the loop llama.cpp's `common_sampler` runs, one document at a time.
    """

    def __init__(
        self,
        llama: Any,
        prompt: Sequence[int],
        *,
        grammar: tuple[str, str] | None,
        max_tokens: int,
        emit: Callable[[str], None],
        stopped: Callable[[], bool] = lambda: False,
        stats: DecodeStats | None = None,
        drafter: Callable[[Sequence[int], int], list[int]] = prompt_lookup,
        logprobs: list[tuple[str, float]] | None = None,
    ) -> None:
        """logprobs: a list to receive each answer token's (text, log-probability), or None (not
        computed: ChatSettings.logprobs unset)."""
        import llama_cpp

        self._llama_cpp = llama_cpp
        self._llama = llama
        self._vocab = llama._model.vocab
        self.n_ctx = int(llama._n_ctx)  # one document's context (the Llama's own, not a wider batch's)
        self.stats = stats if stats is not None else DecodeStats()
        self.max_tokens = max_tokens
        self._emit, self._stopped = emit, stopped
        # Where drafts come from: the prompt (prompt_lookup), or a draft model (benchmarks/bench_draft.py)
        self._drafter = drafter
        self.history = [int(t) for t in prompt]
        self.gate = GrammarGate(llama, grammar) if grammar is not None else None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.logprobs = logprobs
        self.token = -1  # chosen, not yet fed
        self.token_logprob = 0.0  # its log-probability, when asked
        self.fed: list[int] = []

    def _choose(self, logits: np.ndarray) -> int:
        return self.gate.choose(logits) if self.gate else int(np.argmax(logits))

    def _logprob(self, logits: np.ndarray, token: int) -> float:
        """The chosen token's log-probability under the distribution it was chosen from (0.0 when
        not asked for: nothing is computed)."""
        if self.logprobs is None:
            return 0.0
        started = time.perf_counter()
        try:
            return chosen_logprob(logits, token, self.gate)
        finally:
            self.stats.logprob_s += time.perf_counter() - started

    def _keep(self, token: int, logprob: float) -> None:
        """`token` is part of the answer: the grammar advances, its text goes out."""
        if self.gate:
            self.gate.accept(token)
        self.history.append(token)
        self.stats.generated += 1
        raw = self._llama.detokenize([token])
        if self.logprobs is not None:
            # A token holding part of a UTF-8 character keeps its bytes as surrogate escapes, so
            # the texts joined and encoded with "surrogateescape" are the answer's bytes.
            self.logprobs.append((raw.decode("utf-8", "surrogateescape"), logprob))
        piece = self._decoder.decode(raw)
        if piece:
            self._emit(piece)

    def start(self, logits: np.ndarray) -> None:
        self.token = self._choose(logits)
        self.token_logprob = self._logprob(logits, self.token)

    def feed(self, n_draft: int, n_past: int) -> list[int]:
        """The tokens to evaluate at positions n_past...: the chosen token and its drafts."""
        token, stats = self.token, self.stats
        if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return self._over("stop")
        if self._stopped():
            return self._over("cancelled")
        if stats.generated >= self.max_tokens:
            return self._over("length")
        self._keep(token, self.token_logprob)  # chosen, not yet in the KV cache: emitted, then fed with any drafts
        if n_past + 1 >= self.n_ctx:
            return self._over("length")
        room = min(n_draft, self.max_tokens - stats.generated, self.n_ctx - n_past - 2)
        draft = self._drafter(self.history, room) if room > 0 else []
        stats.drafted += len(draft)
        self.fed = [token, *draft]
        return self.fed

    def verify(self, logits_at: Callable[[int], np.ndarray]) -> int:
        """After the fed tokens were evaluated (row i's logits by `logits_at(i)`; only the last
        row has logits when nothing was drafted): keep drafted tokens while each is what the
        model would have chosen itself. Returns how many fed tokens stay in the KV cache."""
        draft, kept = self.fed[1:], 1
        for i in range(len(self.fed)):
            logits = logits_at(i)
            chosen = self._choose(logits)
            # A draft is kept with the probability the verifying pass gives it: its own row's logits.
            logprob = self._logprob(logits, chosen)
            if i < len(draft) and chosen == draft[i] and not self._llama_cpp.llama_vocab_is_eog(self._vocab, chosen):
                self._keep(chosen, logprob)
                self.stats.accepted += 1
                kept += 1
                continue
            self.token, self.token_logprob = chosen, logprob  # the last row is never a draft: it always decides
            break
        return kept

    def _over(self, finish: str) -> list[int]:
        self.stats.finish = finish
        return []

    def close(self) -> None:
        """Flush a character cut in two at the end and free the grammar."""
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._emit(tail)
        if self.gate:
            self.stats.grammar_refusals = self.gate.refusals
            self.gate.close()
            self.gate = None
