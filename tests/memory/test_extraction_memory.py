"""Memory in extraction: a document's examples come from its scenario and from the memory of
reviewed documents of that scenario, ranked on one scale; the result names the memory examples it
used and what the memory did; their use is recorded; a store that is damaged, from another
version or read-only is one warning and never stops extraction (ChatOCR.extract and `chatocr
extract`, the scripted backend, text OCR)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from chatocr import ChatOCR
from chatocr.errors import MemoryStoreError
from chatocr.extraction.examples import MEMORY_PREFIX, ExampleBank, resolve_fields
from chatocr.extraction.remembered import ExampleMemory, ranked_together
from chatocr.extraction.result import Extraction
from chatocr.llm import ScriptedChatModel
from chatocr.memory import DocumentKey, MemoryExample, MemoryStore
from chatocr.memory.store import DB_NAME
from chatocr.messages import Message
from chatocr.scenarios import load_scenarios
from tests.memory.conftest import receipts

SCENARIO = "retail_receipt"
KEYS = ["company", "date", "total"]


def _key(n: int) -> DocumentKey:
    return DocumentKey(f"/scans/r{n}.jpg", hashlib.sha256(str(n).encode()).hexdigest())


def _fill(root: Path, made: Sequence[tuple[str, dict[str, str]]]) -> list[MemoryExample]:
    """The receipts as reviewed examples, added long ago (last used at t=1)."""
    examples = [
        MemoryExample.from_document(
            SCENARIO,
            text,
            answer,
            DocumentKey(f"/scans/r{n}.jpg", hashlib.sha256(str(n).encode()).hexdigest()),
            now=1.0,
        )
        for n, (text, answer) in enumerate(made)
    ]
    MemoryStore(SCENARIO, root).add(examples)
    return examples


def _answering(answer: dict[str, str]) -> ScriptedChatModel:
    """A model that gives `answer` for the keys asked, and records what it was sent."""
    sent: list[list[Message]] = []

    def respond(messages: Sequence[Message], settings: Any) -> str:
        sent.append(list(messages))
        return json.dumps({key: answer.get(key) for key in KEYS})

    model = ScriptedChatModel(respond)
    model.sent = sent  # type: ignore[attr-defined]
    return model


def _document(folder: Path, text: str, name: str = "new.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    os.chmod(folder, 0o755)
    os.chmod(path, 0o644)
    return path


def test_a_receipt_of_a_remembered_shop_gets_that_shop_as_its_example(tmp_path: Path) -> None:
    made = list(receipts(10, seed=5, shops=4))
    # The new receipt: the last one whose shop printed an earlier one; the other nine are remembered.
    new = max(n for n, (_, a) in enumerate(made) if sum(b["company"] == a["company"] for _, b in made) > 1)
    text, answer = made.pop(new)
    examples = _fill(tmp_path / "memory", made)
    same_shop = {e.id for e, (_, a) in zip(examples, made, strict=True) if a["company"] == answer["company"]}
    assert same_shop and len(same_shop) < len(made)
    model = _answering(answer)
    ocr = ChatOCR(llm=model, ocr="text", memory_dir=str(tmp_path / "memory"), ocr_cache=False)
    result = ocr.extract(_document(tmp_path / "in", text), keys=KEYS, scenario=SCENARIO)

    used = [e for e in result.examples if e.startswith(MEMORY_PREFIX)]
    assert used and result.memory is not None and result.memory["used"] == used
    best = max(result.memory["offered"], key=lambda item: item["score"])
    assert best["id"].rsplit("/", 1)[1] in same_shop and best["id"] in used
    assert result.memory["found"] == 4 and result.memory["warning"] is None
    assert all(item["score"] is not None and item["memory_score"] is not None for item in result.memory["offered"])
    # The model was shown the remembered answer: the shop's name as reviewed, in an example turn.
    example_turns = [m.content for m in model.sent[0] if m.role == "assistant"]  # type: ignore[attr-defined]
    assert any(answer["company"] in turn for turn in example_turns)
    assert result.values["total"] == answer["total"] and result.warnings == []
    # Use recorded (least-recently-used eviction goes by it): the used ones only.
    last_used = {e.id: e.last_used for e in MemoryStore(SCENARIO, tmp_path / "memory").examples()}
    assert {i for i, t in last_used.items() if t > 1.0} == {u.rsplit("/", 1)[1] for u in used}
    # The result says it in its JSON, and loads again.
    again = Extraction.from_dict(json.loads(result.to_json()))
    assert again.memory == result.memory and again.examples == result.examples


def test_memory_is_a_pipeline_part_turned_off_by_config(tmp_path: Path) -> None:
    made = list(receipts(4, seed=5, shops=1))
    _fill(tmp_path / "memory", made[:3])
    document = _document(tmp_path / "in", made[3][0])
    off = ChatOCR(llm=_answering(made[3][1]), ocr="text", memory=False, memory_dir=str(tmp_path / "memory"))
    assert off.pipeline.memory is None
    result = off.extract(document, keys=KEYS, scenario=SCENARIO)
    assert result.memory is None and not any(e.startswith(MEMORY_PREFIX) for e in result.examples)
    on = ChatOCR(llm=_answering(made[3][1]), ocr="text", memory_dir=str(tmp_path / "memory"), ocr_cache=False)
    store = on.pipeline.memory.store(SCENARIO)  # type: ignore[union-attr]
    for _ in range(2):  # one store per pipeline: the same object, its index loaded once
        on.extract(document, keys=KEYS, scenario=SCENARIO)
        assert on.pipeline.memory.store(SCENARIO) is store  # type: ignore[union-attr]
    # A derived pipeline (another config, as eval's strategies) keeps it; one may drop it.
    assert on.pipeline.derive(config=on.config).memory is on.pipeline.memory
    assert on.pipeline.derive(memory=None).memory is None
    # No scenario (the fallback): no memory is asked.
    fallback = on.extract(document, keys=KEYS, scenario="auto", classify=False)
    assert fallback.scenario != SCENARIO or fallback.memory is not None


def test_both_rankings_on_one_scale_and_an_authored_example_is_not_offered_twice(tmp_path: Path) -> None:
    library = load_scenarios()
    scenario = library.get(SCENARIO)
    bank = ExampleBank(library)
    fields = resolve_fields(scenario, KEYS)
    made = list(receipts(6, seed=9, shops=2))
    # One memory document is, line for line (spaces aside), the scenario's own first example.
    authored = scenario.examples[0]
    store = MemoryStore(SCENARIO, tmp_path)
    store.add(
        [
            MemoryExample.from_document(SCENARIO, t, a, DocumentKey(f"/s/{n}", str(n) * 8))
            for n, (t, a) in enumerate(made[:5])
        ]
        + [
            MemoryExample.from_document(
                SCENARIO,
                "\n".join("  " + row + " " for row in authored.text.splitlines()),
                dict(authored.answer),
                DocumentKey("/s/authored", "f" * 64),
            )
        ]
    )
    memory = ExampleMemory(tmp_path, candidates=6)
    query = made[5][0]
    recall = memory.recall(query, fields, scenario)
    assert recall is not None and recall.found == 6
    own = bank.select(query, fields, scenario)
    merged, rescored = ranked_together(bank, query, own, recall, scenario)
    assert rescored is not None and len(rescored.examples) == 5  # the authored one left out
    # The memory's examples are scored with the library's IDF, as the scenario's are.
    assert list(rescored.rescored) == [round(s, 4) for s in bank.index.similarity(query, list(rescored.texts))]
    assert [e.score for e in merged] == sorted((e.score for e in merged), reverse=True)
    assert {e.id for e in merged} == {e.id for e in own} | {e.id for e in rescored.examples}


@contextlib.contextmanager
def _as_nobody() -> Iterator[None]:
    """Root writes read-only files: as root, the block runs with the effective uid of `nobody`."""
    root = os.geteuid() == 0
    if root:
        os.setegid(65534)
        os.seteuid(65534)
    try:
        yield
    finally:
        if root:
            os.seteuid(0)
            os.setegid(0)


def _mode(root: Path, folders: int, files: int) -> None:
    for path in [root, root / SCENARIO, *(root / SCENARIO).iterdir()]:
        path.chmod(folders if path.is_dir() else files)


def _damaged(root: Path) -> None:
    (root / SCENARIO).mkdir(parents=True)
    (root / SCENARIO / DB_NAME).write_bytes(b"this is not an SQLite database\n" * 64)
    _mode(root, 0o777, 0o666)


def _other_version(root: Path) -> None:
    _fill(root, list(receipts(3, seed=2, shops=1)))
    with contextlib.closing(sqlite3.connect(root / SCENARIO / DB_NAME)) as connection:
        connection.execute("PRAGMA user_version = 99")
        connection.commit()
    _mode(root, 0o777, 0o666)


def _read_only(root: Path) -> None:
    _fill(root, list(receipts(3, seed=2, shops=1)))
    _mode(root, 0o555, 0o444)


def _unreadable(root: Path) -> None:
    _fill(root, list(receipts(3, seed=2, shops=1)))  # another user's store, folder 0700: not even seen into


BAD_STORES = {
    "damaged": _damaged,
    "another version": _other_version,
    "read-only": _read_only,
    "unreadable": _unreadable,
}


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder `nobody` may enter (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="chatocr-memory-"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder, ignore_errors=True)


def _memory_warnings(warnings: Sequence[str]) -> list[str]:
    return [w for w in warnings if w.startswith("memory ")]


@pytest.mark.parametrize("kind", list(BAD_STORES))
def test_a_bad_store_is_one_warning_and_extraction_goes_on(shared_folder: Path, kind: str) -> None:
    root = shared_folder / "memory"
    BAD_STORES[kind](root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    text, answer = next(iter(receipts(1, seed=2, shops=1)))
    document = _document(shared_folder / "in", text)
    ocr = ChatOCR(llm=_answering(answer), ocr="text", memory_dir=str(root), ocr_cache=False)
    with _as_nobody():
        results = [ocr.extract(document, keys=KEYS, scenario=SCENARIO) for _ in range(2)]
    for result in results:  # every result says it, once
        assert result.ok and result.values["total"] == answer["total"]
        (warning,) = _memory_warnings(result.warnings)
        assert result.memory is not None and result.memory["warning"] == warning
        if kind == "read-only":  # read and used; only its use cannot be recorded
            assert "read-only" in warning and result.memory["used"]
        else:
            assert "not used" in warning and not result.memory["used"]
            assert not any(e.startswith(MEMORY_PREFIX) for e in result.examples)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # left as it was


@pytest.mark.parametrize("kind", list(BAD_STORES))
def test_a_bad_store_through_chatocr_extract(shared_folder: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`chatocr extract --memory DIR` in this process (as `nobody` when root: the interpreter
    under /root is not theirs to run in a child), its JSON on stdout."""
    from chatocr.cli.main import main

    root = shared_folder / "memory"
    BAD_STORES[kind](root)
    text, answer = next(iter(receipts(1, seed=2, shops=1)))
    document = _document(shared_folder / "in", text)
    home = shared_folder / "home"
    home.mkdir()
    home.chmod(0o777)
    for name, value in (("HOME", home), ("CHATOCR_CACHE_DIR", home / "cache"), ("CHATOCR_DATA_DIR", home / "data")):
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("CHATOCR_SCRIPTED_ANSWERS", json.dumps({"answers": [{k: answer[k] for k in KEYS}] * 3}))
    monkeypatch.chdir(home)
    command = [str(document), "-k", ",".join(KEYS), "-s", SCENARIO, "--llm", "scripted", "--ocr", "text"]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):  # a warm-up imports what it needs
        assert main(["extract", *command, "--no-memory", "--format", "json"]) == 0
    with _as_nobody(), redirect_stdout(out), redirect_stderr(err):
        code = main(["extract", *command, "--memory", str(root), "--format", "json"])
    assert code == 0, err.getvalue()
    assert "Traceback" not in err.getvalue()
    result = json.loads(out.getvalue())
    result = result[0] if isinstance(result, list) else result
    assert result["values"]["total"] == answer["total"]
    (warning,) = _memory_warnings(result["warnings"])
    assert ("read-only" if kind == "read-only" else "not used") in warning


def test_a_scenario_name_that_cannot_name_a_store_is_refused_not_followed(tmp_path: Path) -> None:
    memory = ExampleMemory(tmp_path)
    for name in ("../outside", "a/b", "/etc", "C:"):
        with pytest.raises(MemoryStoreError, match="path characters"):
            memory.store(name)
    # A scenario may have a longer name than a store's folder: its documents go on without memory.
    scenario = load_scenarios().get(SCENARIO).model_copy(update={"name": "x" * 80})
    recall = memory.recall("TOTAL 9.00", resolve_fields(scenario, KEYS), scenario)
    assert recall is not None and recall.examples == () and "not used" in (recall.problem or "")
    assert list(tmp_path.iterdir()) == []
