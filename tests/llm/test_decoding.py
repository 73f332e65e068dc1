"""The local backend's greedy loop: prompt-lookup drafts, the lazy grammar check, and answers equal
to llama-cpp-python's own sampler at temperature ~0 (real model)."""

from __future__ import annotations

import asyncio
import ctypes
import json

import numpy as np
import pytest

from chatocr.llm import get_chat_model, local
from chatocr.llm.base import ChatSettings
from chatocr.llm.decoding import GrammarGate, chosen_logprob, grammar_for, prompt_lookup
from chatocr.messages import Message
from tests.llm.test_local import DOCUMENT, FEW_SHOT, RECEIPT_SCHEMA


def test_prompt_lookup_continues_the_latest_earlier_occurrence() -> None:
    history = [7, 1, 2, 3, 4, 5, 9, 1, 2, 3, 8, 6, 1, 2, 3]
    # the last 4 tokens (3 8 6 ... no) do not recur; the last 3 (1 2 3) recur at 7 (latest) and 1
    assert prompt_lookup(history, 2) == [8, 6]
    assert prompt_lookup(history, 10) == [8, 6, 1, 2, 3]  # never past the end of the history
    assert prompt_lookup([5, 1, 7, 1], 3) == []  # a single recurring token predicts nothing
    assert prompt_lookup([1, 2], 3) == []
    assert prompt_lookup(history, 0) == []


def test_grammar_of_a_response_format() -> None:
    pytest.importorskip("llama_cpp")
    assert grammar_for(None) is None and grammar_for({"type": "text"}) is None
    text, root = grammar_for({"type": "json_object", "schema": RECEIPT_SCHEMA}) or ("", "")
    assert root == "root" and '\\"store\\"' in text
    # the properties keep their order: the answer's keys come in the order asked
    rule = next(line for line in text.splitlines() if line.startswith("root ::="))
    assert rule.index("store-kv") < rule.index("date-kv") < rule.index("total-kv")
    assert grammar_for({"type": "json_object"}) is not None  # any JSON object


@pytest.fixture(scope="module")
def vocabulary() -> object:
    pytest.importorskip("llama_cpp")
    import llama_cpp

    path = local.resolve_model_path()
    model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    yield model
    model.close()


def _masked_argmax(llama: object, grammar: tuple[str, str], accepted: list[int], logits: np.ndarray) -> int:
    """The reference: llama.cpp's grammar over the whole vocabulary, then argmax."""
    kept = _masked_logits(llama, grammar, accepted, logits)
    return int(np.argmax(kept))


def _masked_logits(llama: object, grammar: tuple[str, str], accepted: list[int], logits: np.ndarray) -> np.ndarray:
    """The logits with every token the grammar refuses here at -inf (the whole vocabulary checked)."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, grammar[0].encode(), grammar[1].encode())  # type: ignore[attr-defined]
    try:
        for token in accepted:
            llama_cpp.llama_sampler_accept(sampler, token)
        n = len(logits)
        data = (llama_cpp.llama_token_data * n)()
        view = np.ctypeslib.as_array(data)
        view["id"], view["logit"], view["p"] = np.arange(n), logits, 0.0
        array = llama_cpp.llama_token_data_array(data, n, -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        kept = np.ctypeslib.as_array(array.data, shape=(array.size,))
        out = np.full(n, -np.inf)
        out[kept["id"]] = kept["logit"]
        return out
    finally:
        llama_cpp.llama_sampler_free(sampler)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    finite = logits[np.isfinite(logits)]
    peak = float(finite.max())
    return logits - peak - float(np.log(np.exp(finite - peak).sum()))


def test_a_chosen_tokens_logprob_without_a_grammar_is_the_log_softmax() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=5000).astype(np.float32) * 4
    token = int(np.argmax(logits))
    assert chosen_logprob(logits, token, None) == pytest.approx(float(_log_softmax(logits.astype(float))[token]))
    # a token's probability, not the best one's: any token can be asked about
    assert chosen_logprob(logits, 7, None) == pytest.approx(float(_log_softmax(logits.astype(float))[7]))
    flat = np.zeros(1000, np.float32)
    assert chosen_logprob(flat, 3, None) == pytest.approx(-np.log(1000))


@pytest.mark.slow
def test_a_chosen_tokens_logprob_under_a_grammar_is_renormalised_over_the_allowed(vocabulary: object) -> None:
    """Against the whole vocabulary masked by llama.cpp's grammar: equal where the refused tokens sit
    among the 64 most likely (the case drawn here), never above it, and the unmasked value below."""
    llama = vocabulary
    grammar = grammar_for({"type": "json_object", "schema": RECEIPT_SCHEMA})
    assert grammar is not None
    answer = '{"store": "GOLDEN BAKERY", "date": "2021-07-15", "total": "5.50"}'
    tokens = llama.tokenize(answer.encode(), add_bos=False, special=False)  # type: ignore[attr-defined]
    rng = np.random.default_rng(2)
    n_vocab = llama.n_vocab()  # type: ignore[attr-defined]
    raised = 0
    for cut in range(1, len(tokens), 2):
        gate = GrammarGate(llama, grammar)
        try:
            for token in tokens[:cut]:
                gate.accept(token)
            logits = rng.normal(size=n_vocab).astype(np.float32) - 20.0
            top = rng.choice(n_vocab, size=40, replace=False)
            logits[top] = rng.normal(size=40).astype(np.float32) * 2 + 5  # a peaked head of 41 tokens
            logits[tokens[cut]] = 6.0  # the true next token among them, allowed
            chosen = gate.choose(logits)
            masked = _log_softmax(_masked_logits(llama, grammar, tokens[:cut], logits))
            ours = chosen_logprob(logits, chosen, gate)
            unmasked = float(_log_softmax(logits.astype(float))[chosen])
            assert ours == pytest.approx(float(masked[chosen]), abs=1e-4)
            assert unmasked <= ours + 1e-9
            raised += ours > unmasked + 1e-3
        finally:
            gate.close()
    assert raised  # the mask mattered somewhere: the grammar refused some of the likely tokens


@pytest.mark.slow
def test_the_lazy_grammar_check_chooses_what_full_masking_chooses(vocabulary: object) -> None:
    """At several points of a JSON answer, for logits whose favourite is allowed, refused, or far
    down the list, the gate picks the token that masking the whole vocabulary picks."""
    llama = vocabulary
    grammar = grammar_for({"type": "json_object", "schema": RECEIPT_SCHEMA})
    assert grammar is not None
    answer = '{"store": "GOLDEN BAKERY", "date": "2021-07-15", "total": "5.50"}'
    tokens = llama.tokenize(answer.encode(), add_bos=False, special=False)  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    n_vocab = llama.n_vocab()  # type: ignore[attr-defined]
    paths = {"first": 0, "top": 0, "all": 0}
    for cut in range(0, len(tokens), 3):
        gate = GrammarGate(llama, grammar)
        try:
            for token in tokens[:cut]:
                gate.accept(token)
            for trial in range(3):
                logits = rng.normal(size=n_vocab).astype(np.float32)
                if trial == 0 and cut < len(tokens):  # the true next token is the favourite
                    logits[tokens[cut]] = 50.0
                before = gate.refusals
                chosen = gate.choose(logits)
                assert chosen == _masked_argmax(llama, grammar, tokens[:cut], logits)
                if gate.refusals == before:
                    paths["first"] += 1
                elif gate._all is None:
                    paths["top"] += 1
                else:
                    paths["all"] += 1
        finally:
            gate.close()
    assert paths["first"] and (paths["top"] or paths["all"]), paths


@pytest.mark.slow
def test_greedy_answers_as_the_sampler_does_with_and_without_drafts(qwen: local.LocalChatModel) -> None:
    sampled = get_chat_model("local", greedy=False)
    one_at_a_time = get_chat_model("local", speculative=0)
    settings = ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60)
    messages = [*FEW_SHOT, DOCUMENT]
    plain = sampled.chat_sync(messages, settings)
    assert sampled.last_perf["decoding"] == "sampled"  # type: ignore[attr-defined]
    greedy = one_at_a_time.chat_sync(messages, settings)
    assert one_at_a_time.last_perf["decoding"] == "greedy"  # type: ignore[attr-defined]
    assert one_at_a_time.last_perf["drafted"] == 0  # type: ignore[attr-defined]
    fast = qwen.chat_sync(messages, settings)  # the default drafts 3 tokens per step
    assert greedy.text == plain.text == fast.text
    assert json.loads(greedy.text) == {"store": "GOLDEN BAKERY", "date": "2021-07-15", "total": "5.50"}
    perf = qwen.last_perf
    assert perf["decoding"] == "greedy"
    assert perf["drafted"] > 0 and 0 < perf["accepted"] <= perf["drafted"]
    assert greedy.usage.prompt_tokens == plain.usage.prompt_tokens
    assert greedy.finish_reason == "stop" and not greedy.truncated


@pytest.mark.slow
def test_greedy_stops_at_max_tokens_and_streams_chinese_whole(qwen: local.LocalChatModel) -> None:
    pieces: list[str] = []
    ask = [Message("user", "把下面这句话重复三遍：北京南站到上海虹桥站。")]
    reply = asyncio.run(qwen.chat(ask, ChatSettings(max_output_tokens=12, temperature=0), on_delta=pieces.append))
    assert reply.truncated and reply.finish_reason == "length"
    assert qwen.last_perf["generated_tokens"] == 12
    assert "".join(pieces) == reply.text and "\ufffd" not in reply.text  # no character cut in two


@pytest.mark.slow
def test_greedy_cancel_stops_and_the_next_call_works(qwen: local.LocalChatModel) -> None:
    ask = [Message("user", "Count from 1 to 300, one number per line.")]
    pieces: list[str] = []

    async def run() -> None:
        task = asyncio.create_task(qwen.chat(ask, ChatSettings(max_output_tokens=600), on_delta=pieces.append))
        while len(pieces) < 5:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    generation = qwen.last_generation
    assert generation is not None and generation.thread is not None
    generation.thread.join(timeout=60)
    assert not generation.thread.is_alive() and generation.cancelled and generation.pieces < 600
    reply = qwen.chat_sync([*FEW_SHOT, DOCUMENT], ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60))
    assert json.loads(reply.text)["store"] == "GOLDEN BAKERY"


def _reference_logprobs(model: local.LocalChatModel, messages: list[Message], answer: list[int]) -> list[float]:
    """Each answer token's log-softmax from llama.cpp evaluating the prompt and then the answer one
    token at a time on sequence 0, outside the batch engine (the context alone)."""
    import llama_cpp

    loaded = model.llama()
    llama = loaded.llama
    wire = [{"role": m.role, "content": m.content} for m in messages]
    prompt = llama.tokenize(loaded.prompt_formatter(messages=wire).prompt.encode(), add_bos=False, special=True)
    out: list[float] = []
    with loaded.engine.exclusive():
        llama.reset()
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llama._ctx.ctx), -1, 0, -1)
        llama.eval(prompt)
        for token in answer:
            row = llama_cpp.llama_get_logits_ith(llama._ctx.ctx, -1)
            logits = np.ctypeslib.as_array(row, shape=(llama.n_vocab(),)).astype(float)
            out.append(float(_log_softmax(logits)[token]))
            llama.eval([token])
        llama.reset()
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llama._ctx.ctx), -1, 0, -1)
    return out


@pytest.mark.slow
def test_greedy_token_logprobs_spell_the_answer_and_are_llama_cpps_log_softmax(qwen: local.LocalChatModel) -> None:
    """ChatSettings.logprobs: one (text, logprob) per generated token, the texts spelling the answer
    (a Chinese character split over tokens as surrogate escapes), accepted drafts included, each
    the log-softmax llama.cpp gives that token evaluated one at a time; nothing when not asked."""
    ask = [Message("user", "Repeat exactly: 龘 is a rare character. The total is 5.50 RM.")]
    settings = ChatSettings(max_output_tokens=24, temperature=0, logprobs=True)
    reply = qwen.chat_sync(ask, settings)
    tokens = reply.token_logprobs
    assert tokens and qwen.last_perf["decoding"] == "greedy" and qwen.last_perf["accepted"] > 0
    assert "".join(t for t, _ in tokens).encode("utf-8", "surrogateescape") == reply.text.encode("utf-8")
    assert len(tokens) == qwen.last_perf["generated_tokens"]
    ids = qwen.llama().llama.tokenize(reply.text.encode(), add_bos=False, special=False)
    reference = _reference_logprobs(qwen, ask, list(ids))
    assert len(ids) == len(tokens)
    # llama.cpp's batched sums differ from one-at-a-time ones in the last bits (docs in decoding.py),
    # and more when the idle-core rule gives the two a different thread count (a busy machine: seen
    # 0.06 on a log-probability of -0.4); compared as probabilities, what the calibration reads
    np.testing.assert_allclose(np.exp([lp for _, lp in tokens]), np.exp(reference), atol=0.05)
    assert all(lp <= 0.0 for _, lp in tokens)
    plain = qwen.chat_sync(ask, ChatSettings(max_output_tokens=24, temperature=0))
    assert plain.text == reply.text and plain.token_logprobs is None and "logprob_s" not in qwen.last_perf


@pytest.mark.slow
def test_each_value_of_a_grammar_constrained_answer_gets_a_probability(qwen: local.LocalChatModel) -> None:
    from chatocr.calibration import value_probabilities

    settings = ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60, logprobs=True)
    reply = qwen.chat_sync([*FEW_SHOT, DOCUMENT], settings)
    assert reply.token_logprobs is not None
    probabilities = value_probabilities(reply.text, reply.token_logprobs)
    assert set(probabilities) == {"store", "date", "total"}
    assert all(0.5 < p.probability <= 1.0 for p in probabilities.values())  # copied from a clear receipt
    # The same answer one token at a time (no drafts): the same tokens, the same probabilities.
    single = get_chat_model("local", speculative=0).chat_sync([*FEW_SHOT, DOCUMENT], settings)
    assert single.token_logprobs is not None and single.text == reply.text
    assert [t for t, _ in single.token_logprobs] == [t for t, _ in reply.token_logprobs]
    np.testing.assert_allclose(
        [lp for _, lp in single.token_logprobs], [lp for _, lp in reply.token_logprobs], atol=0.02
    )
