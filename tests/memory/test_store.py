"""The memory store: a receipt from the same shop is found first; a document reviewed again replaces
its example; leave-one-out; secrets masked; the cap evicts the least recently used; and a store that
is damaged, read-only, from another version, foreign, or reached through a link gives one warning
and no example (search) or a typed error (what a person asked for), never a wrong example."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from chatocr.errors import MemoryStoreError
from chatocr.memory import DocumentKey, MemoryExample, MemoryStore, store_names
from chatocr.memory.store import DB_NAME, INDEX_NAME, TAIL_LIMIT
from chatocr.secrets import Secret
from tests.memory.conftest import receipts

SCENARIO = "retail_receipt"


def example(text: str, answer: dict[str, object], name: str, *, page: int | None = None) -> MemoryExample:
    sha = hashlib.sha256(name.encode()).hexdigest()
    lines = [{"id": f"p0-l{n}", "text": row, "box": [[0, n * 20], [200, n * 20], [200, n * 20 + 18], [0, n * 20 + 18]],
              "confidence": 0.99, "page": 0} for n, row in enumerate(text.splitlines())]  # fmt: skip
    return MemoryExample.from_document(
        SCENARIO, text, answer, DocumentKey(f"/scans/{name}.jpg", sha, page), lines=lines
    )


def fill(store: MemoryStore, count: int, seed: int = 11) -> list[tuple[str, dict[str, str]]]:
    made = list(receipts(count, seed=seed, shops=max(1, count // 3)))
    store.add([example(text, answer, f"doc{n}") for n, (text, answer) in enumerate(made)])
    return made


def test_the_same_shop_is_found_first(tmp_path: Path) -> None:
    store = MemoryStore(SCENARIO, tmp_path)
    made = fill(store, 24)
    assert len(store) == 24 and store_names(tmp_path) == [SCENARIO]
    # A new receipt of the shop of doc 0: another date, items and total, the same header.
    shop = made[0][1]["company"]
    same_shop = [n for n, (_, answer) in enumerate(made) if answer["company"] == shop]
    query = made[0][0].replace(made[0][1]["date"], "01/01/2020")
    matches = store.search(query, limit=3)
    assert matches[0].example.answer["company"] == shop
    assert {m.example.source.path for m in matches[: len(same_shop)]} >= {"/scans/doc0.jpg"}
    assert matches == sorted(matches, key=lambda m: -m.score)
    assert all(0 < m.score <= 1 for m in matches) and store.warnings == []
    # Layout blended in: still the shop's own receipt first.
    assert store.search(query, limit=1, layout_weight=0.5)[0].example.answer["company"] == shop


def test_a_document_reviewed_again_replaces_its_example(tmp_path: Path) -> None:
    store = MemoryStore(SCENARIO, tmp_path)
    first = example("SHOP ONE\nTOTAL 9.00", {"total": "9.00"}, "a")
    again = example("SHOP ONE\nTOTAL 9.00", {"total": "9.50"}, "a")
    assert store.add([first]).replaced == 0
    outcome = store.add([again])
    assert outcome.replaced == 1 and len(store) == 1
    assert store.search("SHOP ONE TOTAL", limit=5)[0].example.answer == {"total": "9.50"}
    assert store.get(first.id[:6]).answer == {"total": "9.50"}  # a unique prefix names it


def test_leave_one_out_never_returns_the_document_nor_a_duplicate_of_its_text(tmp_path: Path) -> None:
    store = MemoryStore(SCENARIO, tmp_path)
    made = fill(store, 9)
    text = made[4][0]
    store.add([example(text, made[4][1], "copy-under-another-name")])  # the same text, another file
    me = DocumentKey("/scans/doc4.jpg", hashlib.sha256(b"doc4").hexdigest())
    everything = store.search(text, limit=20)
    assert {m.example.source.path for m in everything[:2]} == {"/scans/doc4.jpg", "/scans/copy-under-another-name.jpg"}
    left = store.search(text, limit=20, leave_out=me)
    assert len(left) == len(everything) - 2
    assert all(m.example.text != text for m in left)
    # By path alone (no hash known) too; another page of the document is another document.
    assert len(store.search(text, limit=20, leave_out=DocumentKey("/scans/doc4.jpg"))) == len(everything) - 2
    changed = text + "\nTHANK YOU"  # no longer an exact duplicate of either
    assert len(store.search(changed, limit=20, leave_out=me)) == len(everything) - 1
    assert len(store.search(changed, limit=20, leave_out=DocumentKey(me.path, me.sha256, page=2))) == len(everything)


def test_secrets_are_masked_on_the_way_in(tmp_path: Path) -> None:
    key = "sk-test-0123456789abcdef"
    Secret(key)  # a key chatocr knows (as every key it was given)
    store = MemoryStore(SCENARIO, tmp_path)
    store.add([example(f"SHOP\nNOTE {key}\nTOTAL 1.00", {"total": "1.00", "note": key}, "secret")])
    stored = store.examples()[0]
    assert key not in stored.text and "***" in stored.text and stored.answer["note"] == "***"
    assert all(key not in line["text"] for line in stored.lines)
    assert key.encode() not in (tmp_path / SCENARIO / DB_NAME).read_bytes()


def test_the_cap_evicts_the_least_recently_used(tmp_path: Path) -> None:
    clock = iter(range(1000, 2000))
    store = MemoryStore(SCENARIO, tmp_path, cap=3, clock=lambda: float(next(clock)))
    made = list(receipts(4, seed=5, shops=4))
    docs = [example(text, answer, f"d{n}") for n, (text, answer) in enumerate(made)]
    for doc in docs[:3]:
        assert store.add([doc]).evicted == []
    store.touch([docs[0].id])  # d0 used just now: d1 is now the least recently used
    outcome = store.add([docs[3]])
    assert outcome.evicted == [docs[1].id]
    assert outcome.message is not None and "at most 3" in outcome.message and "least recently used" in outcome.message
    assert {e.source.path for e in store.examples()} == {"/scans/d0.jpg", "/scans/d2.jpg", "/scans/d3.jpg"}
    assert all(m.example.id != docs[1].id for m in store.search(made[1][0], limit=5))


@pytest.mark.parametrize("name", ["../escape", "a/b", "/etc", "C:", "Retail", "", "x" * 80, "re..ceipt", "a\x00b"])
def test_a_scenario_name_with_path_characters_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(MemoryStoreError, match="cannot name a memory store"):
        MemoryStore(name, tmp_path)
    with pytest.raises(MemoryStoreError):
        MemoryExample.from_document(name, "TEXT", {}, DocumentKey("/x.jpg"))
    assert list(tmp_path.iterdir()) == []


def _used_store(tmp_path: Path) -> tuple[MemoryStore, str]:
    store = MemoryStore(SCENARIO, tmp_path)
    made = fill(store, 6)
    return store, made[2][0]


def test_a_damaged_store_warns_once_and_finds_nothing(tmp_path: Path) -> None:
    _, query = _used_store(tmp_path)
    (tmp_path / SCENARIO / DB_NAME).write_bytes(b"this is not a database" * 100)
    store = MemoryStore(SCENARIO, tmp_path)
    assert store.search(query) == [] and store.search(query) == []
    assert len(store.warnings) == 1 and "cannot be read" in store.warnings[0]
    with pytest.raises(MemoryStoreError, match="cannot be read") as caught:
        store.examples()
    assert "Move the folder away" in caught.value.hint


def test_a_store_from_another_version_is_left_unchanged(tmp_path: Path) -> None:
    _, query = _used_store(tmp_path)
    db = tmp_path / SCENARIO / DB_NAME
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA user_version = 99")
    before = db.read_bytes()
    store = MemoryStore(SCENARIO, tmp_path)
    assert store.search(query) == []
    assert len(store.warnings) == 1 and "another chatocr version" in store.warnings[0]
    with pytest.raises(MemoryStoreError, match="another chatocr version"):
        store.add([example("NEW\nTOTAL 1.00", {"total": "1.00"}, "new")])
    assert db.read_bytes() == before


def test_a_store_moved_under_another_scenario_is_not_used(tmp_path: Path) -> None:
    _, query = _used_store(tmp_path)
    (tmp_path / SCENARIO).rename(tmp_path / "train_ticket")
    store = MemoryStore("train_ticket", tmp_path)
    assert store.search(query) == [] and "not 'train_ticket'" in store.warnings[0]


def test_a_read_only_store_is_searched_but_not_written(tmp_path: Path) -> None:
    _, query = _used_store(tmp_path)
    store = MemoryStore(SCENARIO, tmp_path, read_only=True)
    assert store.search(query)[0].example.text == query
    with pytest.raises(MemoryStoreError, match="read-only") as caught:
        store.add([example("NEW\nTOTAL 1.00", {"total": "1.00"}, "new")])
    assert "--memory DIR" in caught.value.hint
    store.touch([store.examples()[0].id])  # nothing to record, nothing raised
    assert store.warnings == []


def test_a_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    store, query = _used_store(tmp_path)
    store.save_index()
    index = tmp_path / SCENARIO / INDEX_NAME
    assert index.is_file()
    index.write_bytes(b"PK\x03\x04 broken zip")
    fresh = MemoryStore(SCENARIO, tmp_path)
    assert fresh.search(query)[0].example.text == query
    assert len(fresh.warnings) == 1 and "rebuilt" in fresh.warnings[0]
    assert MemoryStore(SCENARIO, tmp_path).search(query)[0].example.text == query  # and saved whole again
    assert index.read_bytes()[:2] == b"PK" and index.stat().st_size > 100


def test_a_stale_index_never_gives_a_removed_or_changed_example(tmp_path: Path) -> None:
    store, _ = _used_store(tmp_path)
    store.save_index()
    made = list(receipts(6, seed=11, shops=2))
    other = MemoryStore(SCENARIO, tmp_path)  # another process: removes one, changes one, adds one
    removed = example(made[0][0], made[0][1], "doc0")
    other.remove([removed.id])
    other.add([example("COMPLETELY NEW SHOP\nTOTAL 5.00", {"total": "5.00"}, "doc1")])  # doc1 changed text
    other.add([example("ANOTHER NEW SHOP\nTOTAL 7.00", {"total": "7.00"}, "brand-new")])
    reader = MemoryStore(SCENARIO, tmp_path)  # loads the index file saved before those changes
    found = reader.search(made[0][0], limit=20)
    assert removed.id not in {m.example.id for m in found}
    assert all(m.example.text != made[1][0] for m in found)  # doc1's old text is gone
    assert reader.search("ANOTHER NEW SHOP TOTAL 7.00", limit=1)[0].example.source.path == "/scans/brand-new.jpg"
    assert reader.warnings == []


def test_many_additions_save_the_index(tmp_path: Path) -> None:
    store = MemoryStore(SCENARIO, tmp_path)
    fill(store, TAIL_LIMIT + 1)
    assert (tmp_path / SCENARIO / INDEX_NAME).is_file()


def test_links_are_never_followed(tmp_path: Path) -> None:
    _, query = _used_store(tmp_path)
    elsewhere = tmp_path / "elsewhere.npz"
    elsewhere.write_bytes(b"precious")
    index = tmp_path / SCENARIO / INDEX_NAME
    index.unlink(missing_ok=True)
    index.symlink_to(elsewhere)
    fresh = MemoryStore(SCENARIO, tmp_path)
    assert fresh.search(query) == [] and "symbolic link" in fresh.warnings[0]
    with pytest.raises(MemoryStoreError, match="symbolic link"):
        fresh.add([example("NEW\nTOTAL 1.00", {"total": "1.00"}, "new")])
    assert elsewhere.read_bytes() == b"precious"
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(tmp_path, target_is_directory=True)
    assert MemoryStore(SCENARIO, linked_root).search(query) == []
