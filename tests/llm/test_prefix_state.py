"""The prefix state that survives the process: disk format and its failure modes (fast), and the
real local model restoring a prefix built by another process (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatocr.llm import cpu
from chatocr.llm.local import llama_build, stable_prefix
from chatocr.llm.prefix_state import PrefixStateStore, _State, model_identity
from chatocr.messages import Message

TOKENS = tuple(range(1000, 1100))


def store(directory: Path, **changes: object) -> PrefixStateStore:
    options: dict[str, object] = {"model_id": "m1", "n_ctx": 4096, "runtime": "0.3.36", "directory": directory}
    options.update(changes)
    return PrefixStateStore(**options)  # type: ignore[arg-type]


def written(directory: Path, payload: bytes = b"kv-bytes" * 100) -> tuple[PrefixStateStore, str, Path]:
    s = store(directory)
    key = s.key(TOKENS)
    s._write(key, _State(TOKENS, payload))
    path = s._path(key)
    assert path is not None and path.is_file()
    return s, key, path


def test_an_entry_round_trips(tmp_path: Path) -> None:
    _, key, _ = written(tmp_path)
    state = store(tmp_path)._read(key, TOKENS)
    assert state is not None and state.payload == b"kv-bytes" * 100 and state.tokens == TOKENS
    assert [p.name for p in tmp_path.iterdir()] == [f"{key[:40]}.kv"]  # no temp file left behind


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip-payload", "flip-header", "empty", "garbage"],
)
def test_a_damaged_entry_is_detected_and_removed(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    _, key, path = written(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip-payload":
        data[-5] ^= 0xFF
    elif damage == "flip-header":
        data[20] ^= 0x01
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(os.urandom(len(data)))
    path.write_bytes(bytes(data))
    assert store(tmp_path)._read(key, TOKENS) is None
    assert not path.exists()
    assert "damaged or from another model" in caplog.text


def test_the_runtime_names_the_llama_cpp_build_as_it_reports_itself() -> None:
    """Two builds of one llama.cpp version (AVX2 only, AVX-512) round differently: the runtime a
    state is kept under names the build's vector extensions, so neither uses the other's states."""
    llama_cpp = pytest.importorskip("llama_cpp")
    version, _, features = llama_build().partition(" ")
    assert version == llama_cpp.__version__
    info = llama_cpp.llama_print_system_info().decode()
    assert features and all(f"{feature} = 1" in info for feature in features.split("+"))


@pytest.mark.parametrize(
    "change", [{"model_id": "m2"}, {"n_ctx": 2048}, {"runtime": "0.3.99"}, {"runtime": "0.3.36 AVX+AVX2+AVX512"}]
)
def test_an_entry_from_another_model_context_or_runtime_is_never_used(tmp_path: Path, change: dict) -> None:
    _, key, path = written(tmp_path)
    other = store(tmp_path, **change)
    # Another model/context/runtime computes another key, so it never even opens this file ...
    assert other.key(TOKENS) != key
    # ... and a file renamed into its place is refused by the header check.
    target = other._path(other.key(TOKENS))
    assert target is not None
    path.rename(target)
    assert other._read(other.key(TOKENS), TOKENS) is None


def test_other_tokens_under_the_same_name_are_refused(tmp_path: Path) -> None:
    s, key, _ = written(tmp_path)
    assert s._read(key, tuple(reversed(TOKENS))) is None


def test_an_unwritable_directory_only_disables_the_disk_layer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    s = store(blocker / "llama-state")
    assert not s._write(s.key(TOKENS), _State(TOKENS, b"x" * 10))  # the caller learns it is memory only
    assert not s._write(s.key(TOKENS), _State(TOKENS, b"x" * 10))
    assert caplog.text.count("cannot write") == 1  # one warning, not one per call
    assert blocker.read_text().startswith("a file")


def test_write_says_whether_the_state_is_on_disk(tmp_path: Path) -> None:
    state = _State(TOKENS, b"x" * 100)
    assert store(tmp_path / "ok")._write("k" * 64, state)
    assert not store(None)._write("k" * 64, state)  # no disk layer
    assert not store(tmp_path / "capped", max_disk_bytes=50)._write("k" * 64, state)  # over the cap
    assert not (tmp_path / "capped").exists()


def test_a_planted_symlink_at_the_entry_name_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("user data")
    cache = tmp_path / "cache"
    cache.mkdir()
    s = store(cache)
    key = s.key(TOKENS)
    path = s._path(key)
    assert path is not None
    path.symlink_to(victim)
    s._write(key, _State(TOKENS, b"payload"))
    assert victim.read_text() == "user data"
    assert not path.is_symlink() and s._read(key, TOKENS) is not None


def test_the_disk_cap_evicts_least_recently_used(tmp_path: Path) -> None:
    s = store(tmp_path, max_disk_bytes=3700)
    keys = []
    for i in range(3):
        tokens = tuple(range(i * 100, i * 100 + 80))
        key = s.key(tokens)
        s._write(key, _State(tokens, bytes(1000)))
        os.utime(s._path(key), (1_000_000 + i, 1_000_000 + i))  # type: ignore[arg-type]
        keys.append(key)
    names = {p.name for p in tmp_path.glob("*.kv")}
    assert f"{keys[0][:40]}.kv" not in names  # the oldest went
    assert {f"{k[:40]}.kv" for k in keys[1:]} <= names
    assert sum(p.stat().st_size for p in tmp_path.glob("*.kv")) <= 3700


def test_the_kept_starts_on_disk_are_this_models_entries_only(tmp_path: Path) -> None:
    """A prefix not kept may start from a kept one that shares its start: the candidates are read
    from the entries' headers, and anything foreign, damaged or misnamed is not one."""
    s, key, path = written(tmp_path)
    other_tokens = (*TOKENS[:70], 7, 7, 7)
    other = store(tmp_path, model_id="m2")
    other._write(other.key(other_tokens), _State(other_tokens, b"other model"))
    (tmp_path / ("0" * 40 + ".kv")).write_bytes(b"not an entry at all")
    (tmp_path / ("1" * 40 + ".kv")).write_bytes(path.read_bytes())  # a copy under the wrong name
    assert s._disk_prefixes() == [(key, TOKENS)]
    assert store(tmp_path / "nothing-here")._disk_prefixes() == []


class FakeLlama:
    """What PrefixStateStore reads of a llama_cpp.Llama before restoring anything."""

    _is_recurrent = False

    def __init__(self, held: tuple[int, ...] = ()) -> None:
        self.input_ids = list(held) + [0] * 100
        self.n_tokens = len(held)
        self.resets = 0
        self.cut_at: list[int] = []
        self._ctx = self

    def reset(self) -> None:
        self.n_tokens = 0
        self.resets += 1

    def kv_cache_seq_rm(self, seq: int, start: int, end: int) -> bool:
        self.cut_at.append(start)
        return True


def test_a_new_prefix_starts_from_what_the_context_shares_with_it(tmp_path: Path) -> None:
    llama = FakeLlama(held=TOKENS)
    shared = store(tmp_path)._start_from_longest(llama, (*TOKENS[:90], 1, 2))  # type: ignore[arg-type]
    assert shared == 90 and llama.n_tokens == 90 and llama.cut_at == [90] and llama.resets == 0
    # Too little in common to be worth it: start over.
    fresh = FakeLlama(held=TOKENS)
    assert store(tmp_path)._start_from_longest(fresh, (*TOKENS[:10], 1, 2)) == 0  # type: ignore[arg-type]
    assert fresh.resets == 1 and fresh.n_tokens == 0


def test_a_damaged_entry_sharing_the_start_is_removed_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s, _, path = written(tmp_path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # the header still names this model: only the payload's hash can tell
    path.write_bytes(bytes(data))
    llama = FakeLlama()
    assert s._start_from_longest(llama, (*TOKENS[:80], 5, 5)) == 0  # type: ignore[arg-type]
    assert llama.resets == 1 and not path.exists()
    assert "damaged or from another model" in caplog.text


def test_model_identity_changes_with_the_file(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"a" * 5000)
    first = model_identity(model)
    model.write_bytes(b"b" * 5000)
    assert model_identity(model) != first
    assert model_identity(model, "known-sha") == "known-sha"


def test_stable_prefix_is_system_and_examples_only() -> None:
    messages = [
        Message("system", "s", kind="system"),
        Message("user", "e", kind="examples"),
        Message("assistant", "a", kind="answers"),
        Message("user", "doc", kind="task"),
    ]
    assert stable_prefix(messages) == messages[:3]
    merged = [Message("user", "s+e", kind="system+examples"), Message("assistant", "a", kind="answers"), messages[3]]
    assert stable_prefix(merged) == merged[:2]
    assert stable_prefix([Message("user", "q")]) == []
    assert stable_prefix(messages[:3]) == []  # nothing follows: no document to serve


def test_threads_use_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "usable_cpus", lambda: 2)
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cpu, "runnable_threads", lambda: 1)  # only the caller
    assert cpu.threads_for_call() == 2
    monkeypatch.setattr(cpu, "runnable_threads", lambda: 2)  # one competitor
    assert cpu.threads_for_call() == 1
    monkeypatch.setattr(cpu, "runnable_threads", lambda: 9)
    assert cpu.threads_for_call() == 1
    assert cpu.threads_for_call(configured=3) == 3
    monkeypatch.setattr(cpu, "runnable_threads", lambda: None)
    assert cpu.threads_for_call() == 2


def test_a_thread_busy_for_a_moment_is_not_a_competitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime's workers spin briefly after OCR: one look would count them and halve llama.cpp's
    threads for the whole call; the fewest runnable over several looks does not."""
    looks = iter([3, 1, 2, 3, 3])
    monkeypatch.setattr(cpu, "_runnable_now", lambda: next(looks))
    monkeypatch.setattr(cpu.time, "sleep", lambda seconds: None)
    assert cpu.runnable_threads() == 1
    steady = iter([2] * 5)  # a competitor that keeps running is seen in every look
    monkeypatch.setattr(cpu, "_runnable_now", lambda: next(steady))
    assert cpu.runnable_threads() == 2
    monkeypatch.setattr(cpu, "_runnable_now", lambda: None)
    assert cpu.runnable_threads() is None


def test_runnable_threads_reads_the_kernel() -> None:
    if not Path("/proc/loadavg").exists():
        pytest.skip("no /proc/loadavg here")
    running = cpu.runnable_threads()
    assert running is not None and running >= 1


# ---- the real model, across processes --------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, sys
    from chatocr.llm.local import LocalChatModel
    from chatocr.llm.base import ChatSettings
    from chatocr.messages import Message
    system = "You copy fields from OCR text into JSON. " + "Copy values exactly as printed. " * 30
    HEAD = "Read the document below and answer with its total as JSON, copied as printed.\\nDocument:\\n"
    example = "\\n".join(f"ITEM {i} NASI LEMAK {i * 3} RM {i}.50" for i in range(40))
    total = "29.50" if sys.argv[5] == "a" else "31.70"  # example sets that share all but the end
    messages = [
        Message("system", system, kind="system"),
        Message("user", "Example:\\n" + example + "\\nTOTAL RM " + total, kind="examples"),
        Message("assistant", '{"total": "' + total + '"}', kind="answers"),
        Message("user", HEAD + sys.argv[2] + "\\nGive total.", kind="task",
                stable_head=len(HEAD) if sys.argv[4] == "head" else 0),
    ]
    model = LocalChatModel(prefix_cache_dir=sys.argv[1], prefix_cache=sys.argv[3] == "on")
    reply = model.chat_sync(messages, ChatSettings(temperature=0, max_output_tokens=16,
        json_mode={"type": "object", "properties": {"total": {"type": "string"}}, "required": ["total"]}))
    print(json.dumps({"text": reply.text, **reply.raw["chatocr"]}))
    """
)


def run_child(cache: Path, document: str, prefix: str = "on", head: str = "no", example: str = "a") -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(cache), document, prefix, head, example],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_process_restores_the_prefix_and_answers_the_same(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    cache = tmp_path / "llama-state"
    first = run_child(cache, "SUBTOTAL 11.00\nTOTAL RM 12.30\nCASH 20.00")
    assert first["prefix_state"] == "built"
    assert len(list(cache.glob("*.kv"))) == 1
    second = run_child(cache, "TOTAL RM 7.80\nCHANGE 2.20")
    assert second["prefix_state"] == "disk"
    cold = run_child(tmp_path / "unused", "TOTAL RM 7.80\nCHANGE 2.20", prefix="off")
    assert cold["prefix_state"] == "none"
    assert json.loads(second["text"]) == json.loads(cold["text"])  # a restored prefix changes nothing
    # A damaged entry is rebuilt, never used.
    entry = next(cache.glob("*.kv"))
    entry.write_bytes(entry.read_bytes()[:-100])
    third = run_child(cache, "TOTAL RM 7.80\nCHANGE 2.20")
    assert third["prefix_state"] == "built" and json.loads(third["text"]) == json.loads(cold["text"])
    # The task's document-independent opening (Message.stable_head) is kept in the state too: a new
    # process then evaluates only what follows it, and answers the same.
    run_child(cache, "SUBTOTAL 11.00\nTOTAL RM 12.30\nCASH 20.00", head="head")
    through = run_child(cache, "TOTAL RM 7.80\nCHANGE 2.20", head="head")
    assert through["prefix_state"] == "disk" and json.loads(through["text"]) == json.loads(cold["text"])
    assert through["prompt_eval_tokens"] <= second["prompt_eval_tokens"] - 15


@pytest.mark.slow
def test_another_example_set_starts_from_the_part_it_shares_with_a_kept_one(tmp_path: Path) -> None:
    """A new process whose examples differ from a kept set's only at the end restores that set's
    state, cut back to the shared start, evaluates the rest, and answers as a cold process does."""
    pytest.importorskip("llama_cpp")
    cache = tmp_path / "llama-state"
    document = "TOTAL RM 7.80\nCHANGE 2.20"
    first = run_child(cache, document)
    assert first["prefix_state"] == "built"
    other = run_child(cache, document, example="b")
    assert other["prefix_state"] == "extended"
    assert len(list(cache.glob("*.kv"))) == 2  # the new set is kept too
    cold = run_child(tmp_path / "unused", document, prefix="off", example="b")
    assert json.loads(other["text"]) == json.loads(cold["text"])
    assert run_child(cache, document, example="b")["prefix_state"] == "disk"
