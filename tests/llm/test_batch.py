"""Several documents decoded together (chatocr/llm/batch.py) and the local model's one settings object.

The fast tests check the options; the slow ones run the shipped Qwen model with several documents
in flight at once: each gets its own answer, usage and progress events, and a document that does
not fit, is cancelled, or whose grammar fails ends alone while the others finish."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from chatocr import cores, progress
from chatocr.errors import ConfigError, ContextTooLongError, InvalidRequestError, UnknownOptionError
from chatocr.llm import ChatSettings, get_chat_model, local
from chatocr.llm.batch import Job
from chatocr.llm.local_options import LocalModelOptions, local_options
from chatocr.messages import Message

SCHEMA = {
    "type": "object",
    "properties": {"store": {"type": "string"}, "date": {"type": "string"}, "total": {"type": "string"}},
    "required": ["store", "date", "total"],
}
SYSTEM = Message(
    "system",
    "Extract the requested fields from the receipt text. Answer with one JSON object. "
    + "Copy every value exactly as printed on the receipt. " * 8,
    kind="system",
)
EXAMPLE = [
    Message(
        "user", "Receipt:\nSUNNY MART\n2019-03-02\nMILK 3.50\nTOTAL 3.50\nKeys: store, date, total", kind="examples"
    ),
    Message("assistant", '{"store": "SUNNY MART", "date": "2019-03-02", "total": "3.50"}', kind="answers"),
]
RECEIPTS = [
    ("GOLDEN BAKERY", "2021-07-15", "5.50"),
    ("KEDAI MAJU", "2020-01-02", "12.80"),
    ("ACE HARDWARE", "2018-11-30", "7.05"),
]
SETTINGS = ChatSettings(json_mode=SCHEMA, max_output_tokens=60, temperature=0)


def receipt(store: str, date: str, total: str) -> list[Message]:
    text = f"Receipt:\n{store}\n{date}\nBREAD 2.40\nCOFFEE 3.10\nTOTAL {total}\nKeys: store, date, total"
    return [SYSTEM, *EXAMPLE, Message("user", text, kind="task")]


# ---- the settings object (fast) ----------------------------------------------------------------


def test_a_misspelled_option_names_the_nearest_valid_one() -> None:
    with pytest.raises(UnknownOptionError) as info:
        local_options(None, {"n_tread": 2})
    assert info.value.message == "Unknown option 'n_tread': did you mean 'n_threads'?"
    with pytest.raises(ConfigError, match="batch_widht"):
        get_chat_model("local", batch_widht=2)  # refused before anything is loaded


def test_options_validate_types_and_ranges_and_are_frozen(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_ctx"):
        local_options(None, {"n_ctx": "big"})
    with pytest.raises(ConfigError, match="batch_width"):
        local_options(None, {"batch_width": 0})
    # As a TOML table gives them: strings for paths.
    options = local_options(None, {"prefix_cache_dir": str(tmp_path), "threads": 1, "batch_width": 2})
    assert options.prefix_cache_dir == tmp_path and options.fixed_threads == 1 and options.batch_width == 2
    with pytest.raises(ValueError):
        options.n_ctx = 1  # type: ignore[misc]
    # Keywords update a given object; the rest stays.
    assert local_options(options, {"n_ctx": 2048}).batch_width == 2
    assert LocalModelOptions().batch_width >= 1 and LocalModelOptions().speculative == 3


def test_options_object_and_keywords_build_the_same_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not loaded until the first call")
    by_keywords = get_chat_model("local", model_path=str(fake), n_ctx=2048, speculative=0)
    by_object = local.LocalChatModel(options=LocalModelOptions(model_path=fake, n_ctx=2048, speculative=0))
    assert by_keywords.options == by_object.options  # type: ignore[attr-defined]
    assert by_object.model_path == fake == get_chat_model(f"local:{fake}").model_path  # type: ignore[attr-defined]
    assert by_object.limits.context_window == 2048 and by_object.speculative == 0


# ---- the real model, several documents at once (slow) -------------------------------------------


async def _each_in_its_own_context(model: local.LocalChatModel, conversations: list[list[Message]]) -> list:
    """Every conversation as its own task listening to its own progress events."""
    heard: list[list[progress.Event]] = [[] for _ in conversations]

    async def one(i: int) -> object:
        with progress.listening(heard[i].append):
            return await model.chat(conversations[i], SETTINGS)

    replies = await asyncio.gather(*(one(i) for i in range(len(conversations))), return_exceptions=True)
    return list(zip(replies, heard, strict=True))


@pytest.mark.slow
def test_documents_in_flight_together_answer_as_each_alone(qwen: local.LocalChatModel) -> None:
    alone = [json.loads(qwen.chat_sync(receipt(*r), SETTINGS).text) for r in RECEIPTS]
    assert alone[0] == {"store": "GOLDEN BAKERY", "date": "2021-07-15", "total": "5.50"}
    together = asyncio.run(_each_in_its_own_context(qwen, [receipt(*r) for r in RECEIPTS]))
    for (reply, heard), answer, r in zip(together, alone, RECEIPTS, strict=True):
        assert json.loads(reply.text) == answer  # type: ignore[attr-defined]
        perf = reply.raw["chatocr"]  # type: ignore[attr-defined]
        assert perf["batch"] >= 2 and perf["decoding"] == "greedy"  # decoded beside the others
        assert reply.usage.prompt_tokens and reply.usage.completion_tokens  # type: ignore[attr-defined]
        generated = [e for e in heard if e.stage == "generate"]
        # Its own pieces only, counted from 1 in its own context.
        assert generated and generated[0].tokens == 1
        assert generated[-1].tokens == len(generated)
        assert any(e.stage == "prompt" for e in heard)
        assert r[0] in reply.text  # type: ignore[attr-defined]
        # What the progress bar shows: the engine's documents in flight and tokens/s on each piece.
        assert max(e.data["in_flight"] for e in generated) >= 2
        assert generated[-1].data["tokens_per_s"] > 0
    seqs = {reply.raw["chatocr"]["seq"] for reply, _ in together}  # type: ignore[attr-defined]
    assert len(seqs) == len(RECEIPTS)  # one llama.cpp sequence each


@pytest.mark.slow
def test_a_document_over_the_context_ends_alone(qwen: local.LocalChatModel) -> None:
    too_long = [SYSTEM, Message("user", "word " * 5000, kind="task")]
    results = asyncio.run(_each_in_its_own_context(qwen, [receipt(*RECEIPTS[0]), too_long, receipt(*RECEIPTS[1])]))
    (first, _), (failed, _), (last, _) = results
    assert isinstance(failed, ContextTooLongError) and failed.provider == "local"
    assert json.loads(first.text)["store"] == "GOLDEN BAKERY"  # type: ignore[attr-defined]
    assert json.loads(last.text)["store"] == "KEDAI MAJU"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_cancelled_document_ends_alone(qwen: local.LocalChatModel) -> None:
    long = [Message("user", "Count from 1 to 300, one number per line.")]
    pieces: list[str] = []

    async def run() -> tuple[object, object]:
        counting = asyncio.create_task(qwen.chat(long, ChatSettings(max_output_tokens=600), on_delta=pieces.append))
        others = asyncio.ensure_future(
            asyncio.gather(*(qwen.chat(receipt(*r), SETTINGS) for r in RECEIPTS[:2]), return_exceptions=True)
        )
        while len(pieces) < 5:
            await asyncio.sleep(0.005)
        counting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await counting
        return await others, qwen.last_generation

    answers, _ = asyncio.run(run())
    assert [json.loads(a.text)["store"] for a in answers] == ["GOLDEN BAKERY", "KEDAI MAJU"]  # type: ignore[attr-defined]
    assert len(pieces) < 300
    # The engine goes on: the next call works.
    assert json.loads(qwen.chat_sync(receipt(*RECEIPTS[2]), SETTINGS).text)["store"] == "ACE HARDWARE"


@pytest.mark.slow
def test_a_grammar_failure_in_one_sequence_ends_that_document_only(qwen: local.LocalChatModel) -> None:
    """A job whose grammar llama.cpp refuses, submitted to the engine beside two documents."""
    loaded = qwen.llama()
    llama = loaded.llama
    broken = Job(
        prompt=[int(t) for t in llama.tokenize(b"Say hello.", add_bos=False, special=False)],
        prefix=[],
        grammar=("root ::= [", "root"),
        max_tokens=8,
        n_draft=0,
        batch_drafts=0,
        prefill_chunk=64,
        store=None,
        fixed_threads=None,
        stop=threading.Event(),
        emit=lambda piece: None,
    )

    async def run() -> list[object]:
        chats = [asyncio.ensure_future(qwen.chat(receipt(*r), SETTINGS)) for r in RECEIPTS[:2]]
        await asyncio.sleep(0.05)
        loaded.engine.submit(broken)
        return await asyncio.gather(*chats)

    answers = asyncio.run(run())
    assert broken.done.wait(timeout=600)
    assert isinstance(broken.error, InvalidRequestError) and "grammar" in str(broken.error)
    assert [json.loads(a.text)["store"] for a in answers] == ["GOLDEN BAKERY", "KEDAI MAJU"]  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_sampled_call_gets_the_context_alone_between_batches(qwen: local.LocalChatModel) -> None:
    """llama-cpp-python's own sampler (temperature > 0) waits for the documents in flight, runs on
    sequence 0 alone, and the engine then serves documents again."""

    async def run() -> list[object]:
        greedy = [qwen.chat(receipt(*r), SETTINGS) for r in RECEIPTS[:2]]
        sampled = qwen.chat(
            receipt(*RECEIPTS[2]), ChatSettings(json_mode=SCHEMA, max_output_tokens=60, temperature=0.2, seed=1)
        )
        return list(await asyncio.gather(*greedy, sampled))

    replies = asyncio.run(run())
    assert [json.loads(r.text)["store"] for r in replies] == ["GOLDEN BAKERY", "KEDAI MAJU", "ACE HARDWARE"]  # type: ignore[attr-defined]
    assert replies[2].raw["chatocr"]["decoding"] == "sampled"  # type: ignore[attr-defined]
    assert json.loads(qwen.chat_sync(receipt(*RECEIPTS[0]), SETTINGS).text)["total"] == "5.50"


@pytest.mark.slow
def test_documents_in_flight_each_get_their_own_token_probabilities(qwen: local.LocalChatModel) -> None:
    """ChatSettings.logprobs beside other documents: each answer's tokens and probabilities are its
    own, as when decoded alone (within llama.cpp's rounding of batched sums)."""
    asked = ChatSettings(json_mode=SCHEMA, max_output_tokens=60, temperature=0, logprobs=True)
    alone = [qwen.chat_sync(receipt(*r), asked) for r in RECEIPTS]

    async def together() -> list[object]:
        plain = qwen.chat(receipt(*RECEIPTS[0]), SETTINGS)  # one beside them asks for none
        return list(await asyncio.gather(plain, *(qwen.chat(receipt(*r), asked) for r in RECEIPTS)))

    plain, *replies = asyncio.run(together())
    assert plain.token_logprobs is None  # type: ignore[attr-defined]
    for reply, single in zip(replies, alone, strict=True):
        assert reply.raw["chatocr"]["batch"] >= 2 and reply.text == single.text  # type: ignore[attr-defined]
        tokens, reference = reply.token_logprobs, single.token_logprobs  # type: ignore[attr-defined]
        assert tokens and reference and [t for t, _ in tokens] == [t for t, _ in reference]
        assert "".join(t for t, _ in tokens) == reply.text  # type: ignore[attr-defined]
        assert max(abs(a - b) for (_, a), (_, b) in zip(tokens, reference, strict=True)) < 0.02


@pytest.mark.slow
def test_documents_wait_while_this_processs_ocr_holds_every_core(qwen: local.LocalChatModel) -> None:
    """The engine decodes on the cores this process's OCR leaves (chatocr/cores.py): with all of
    them announced busy it waits, and goes on once they are given back."""
    if qwen.fixed_threads:
        pytest.skip("a fixed thread count is used as given")
    engine = qwen.llama().engine
    waited = engine.waited

    async def run() -> object:
        with cores.taking(cores.usable_cpus()):
            chat = asyncio.ensure_future(qwen.chat(receipt(*RECEIPTS[0]), SETTINGS))
            await asyncio.sleep(1.0)
            assert not chat.done()
        return await chat

    reply = asyncio.run(run())
    assert json.loads(reply.text)["store"] == "GOLDEN BAKERY"  # type: ignore[attr-defined]
    assert engine.waited > waited
