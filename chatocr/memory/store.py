"""One scenario's memory: reviewed documents kept as examples, searchable by similarity.

    <root>/<scenario>/examples.sqlite3   the examples: the truth (SQLite, standard library)
    <root>/<scenario>/index.npz          their similarity index: derived, rebuilt when lost or damaged

`root` is the caller's (`--memory DIR`), else `chatocr.resources.data_dir("memory")`
($CHATOCR_DATA_DIR/memory, ~/.local/share/chatocr/memory). Why SQLite: one file, atomic
transactions, several processes (the review app adding while an extraction reads) without a
server, and an example is read by its id without parsing the others (10,000 examples with their
lines are ~75 MB). Rollback journal, not WAL: a store on a read-only disk or folder still opens.

The index covers documents by (id, digest of their text). Loading it checks that against the
examples: an example added since (by another process) is indexed on the spot, one removed or
changed no longer counts, so a stale or foreign index can cost time but never give a wrong
example; a writer saves the index again once more than `TAIL_LIMIT` documents were not in it.
Every add and remove counts the store's generation up (a row of `meta`), so a long-running reader
(`chatocr serve`, the REPL) sees what another process (`chatocr review`) added at its next search,
at the cost of one small query, and brings the index it holds up to date in memory.

Searching never raises: a store that is damaged, read-only when it must be written, from another
chatocr version, or sits behind a symbolic link, adds one warning (`warnings`, and the
`chatocr.memory` logger) and the search finds nothing; the caller goes on without memory. Adding,
removing and listing (what a person asked for) raise `MemoryStoreError` saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chatocr.errors import MemoryStoreError
from chatocr.memory.index import ArrayIndex, IndexFileError
from chatocr.memory.records import (
    DocumentKey,
    MemoryExample,
    MemoryMatch,
    check_scenario_name,
    text_digest,
)
from chatocr.resources import data_dir
from chatocr.secrets import redact

__all__ = ["DEFAULT_CAP", "AddOutcome", "MemoryStore", "default_root", "store_names"]

logger = logging.getLogger("chatocr.memory")

DEFAULT_CAP = 10_000  # examples per scenario; the least recently used go first beyond it
STORE_FORMAT = 1  # PRAGMA user_version of the examples file; another version is left alone
TAIL_LIMIT = 64  # documents missing from the index file before a writer saves it again
DB_NAME = "examples.sqlite3"
INDEX_NAME = "index.npz"
_COLUMNS = (
    "id, text, digest, answer, lines, source_path, source_sha256, source_page, added, last_used, origin, reviewer"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    digest TEXT NOT NULL,
    answer TEXT NOT NULL,
    lines TEXT NOT NULL,
    source_path TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source_page INTEGER,
    added REAL NOT NULL,
    last_used REAL NOT NULL,
    origin TEXT NOT NULL,
    reviewer TEXT
);
CREATE INDEX IF NOT EXISTS examples_by_use ON examples (last_used, added);
CREATE INDEX IF NOT EXISTS examples_by_source ON examples (source_sha256, source_page);
"""


def default_root() -> Path:
    return data_dir("memory")


def store_names(root: str | os.PathLike[str] | None = None) -> list[str]:
    """The scenarios that have a store under `root`, sorted."""
    base = Path(root) if root is not None else default_root()
    if not base.is_dir():
        return []
    names = []
    for entry in sorted(base.iterdir()):
        with contextlib.suppress(MemoryStoreError):
            if entry.is_dir() and (entry / DB_NAME).is_file():
                names.append(check_scenario_name(entry.name))
    return names


@dataclass
class AddOutcome:
    """What adding did: the examples stored, how many replaced an earlier example of the same
    document, which were evicted to stay within the cap, and the message to show for that."""

    added: list[MemoryExample]
    replaced: int = 0
    evicted: list[str] = field(default_factory=list)
    message: str | None = None


class MemoryStore:
    """The memory of one scenario (see the module docstring)."""

    def __init__(
        self,
        scenario: str,
        root: str | os.PathLike[str] | None = None,
        *,
        cap: int = DEFAULT_CAP,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scenario = check_scenario_name(scenario)
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.folder = self.root / self.scenario
        self.cap = max(1, int(cap))
        self.read_only = read_only
        self.clock = clock
        self.warnings: list[str] = []
        self._index: ArrayIndex | None = None
        self._generation = ""  # of the examples `_index` covers
        self._by_digest: dict[str, list[int]] | None = None

    def __repr__(self) -> str:
        return f"<MemoryStore {self.scenario} in {self.root}>"

    @property
    def db_path(self) -> Path:
        return self.folder / DB_NAME

    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_NAME

    @property
    def exists(self) -> bool:
        """Whether the store has an examples file. One that cannot even be looked at (a folder
        another user keeps to themselves) counts as there: opening it says what is wrong."""
        try:
            return self.db_path.is_file()
        except OSError:
            return True

    def _warn(self, message: str) -> None:
        """Said once per store, however often the problem is met."""
        if message not in self.warnings:
            self.warnings.append(message)
            logger.warning("%s", message)

    # -- the examples file -----------------------------------------------------------------------

    def _refuse_links(self) -> None:
        """chatocr never reads or writes a store through a symbolic link (a planted one)."""
        for path in (self.root, self.folder, self.db_path, self.index_path):
            if path.is_symlink():
                raise MemoryStoreError(
                    f"The memory store path {path} is a symbolic link; chatocr does not follow it.",
                    hint="Give the real folder with --memory DIR, or remove the link.",
                )

    @property
    def writable(self) -> bool:
        """Whether adding, removing and recording use can write the store (its folder's permissions)."""
        return self._writable()

    def _writable(self) -> bool:
        if self.read_only:
            return False
        try:
            target = self.folder if self.folder.exists() else self.root
            while not target.exists() and target != target.parent:
                target = target.parent
            # The effective user's permissions (a process running as another user: sudo -u, seteuid).
            effective = os.access in os.supports_effective_ids
            return os.access(target, os.W_OK, effective_ids=effective) and (
                not self.db_path.exists() or os.access(self.db_path, os.W_OK, effective_ids=effective)
            )
        except OSError:  # a folder this user may not even look into
            return False

    @contextlib.contextmanager
    def _connection(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """A connection to the examples file, its format checked; MemoryStoreError when the store
        cannot be used so (missing and not to be created, read-only, unreadable, damaged, another
        version)."""
        try:
            self._refuse_links()
            if write and not self._writable():
                raise MemoryStoreError(
                    f"The memory store {self.folder} is read-only.",
                    hint="Give a folder you may write with --memory DIR (or fix its permissions).",
                )
            if write:
                self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            elif not self.exists:
                raise MemoryStoreError(f"There is no memory store for {self.scenario} in {self.root}.")
        except OSError as exc:  # a folder this user may not enter or create
            raise MemoryStoreError(
                f"The memory store {self.folder} cannot be used: {exc.strerror or exc}.",
                hint="Fix its permissions, or give another folder with --memory DIR.",
            ) from None
        uri = f"{self.db_path.absolute().as_uri()}?mode={'rwc' if write else 'ro'}"
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._damaged(exc) from None
        try:
            self._check_format(connection, write)
            yield connection
        except sqlite3.Error as exc:
            raise self._damaged(exc) from None
        finally:
            connection.close()

    def _damaged(self, exc: sqlite3.Error) -> MemoryStoreError:
        if "readonly" in str(exc) or "read-only" in str(exc):
            return MemoryStoreError(
                f"The memory store {self.folder} is read-only ({exc}).",
                hint="Give a folder you may write with --memory DIR (or fix its permissions).",
            )
        return MemoryStoreError(
            f"The memory store {self.db_path} cannot be read: {exc}.",
            hint="Move the folder away (chatocr starts a new store) or restore it from a backup.",
        )

    def _check_format(self, connection: sqlite3.Connection, write: bool) -> None:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 and not tables and write:  # a new store
            connection.executescript(_SCHEMA)
            connection.execute("INSERT INTO meta VALUES ('scenario', ?)", (self.scenario,))
            connection.execute(f"PRAGMA user_version = {STORE_FORMAT}")
            return
        if version != STORE_FORMAT or not {"meta", "examples"} <= tables:
            raise MemoryStoreError(
                f"The memory store {self.db_path} is from another chatocr version (format {version}, "
                f"this chatocr reads {STORE_FORMAT}); it was left unchanged.",
                hint="Use the chatocr that wrote it, or give another folder with --memory DIR.",
            )
        row = connection.execute("SELECT value FROM meta WHERE key = 'scenario'").fetchone()
        if row is None or row[0] != self.scenario:
            raise MemoryStoreError(
                f"{self.db_path} holds the memory of {row[0] if row else 'no scenario'!r}, not {self.scenario!r}.",
                hint="A store's folder is named after its scenario; move it back where it belongs.",
            )

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        if not self.exists:
            return 0
        with self._connection(write=False) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM examples").fetchone()[0])

    def examples(self) -> list[MemoryExample]:
        """Every example, most recently used first (MemoryStoreError when the store is unusable)."""
        if not self.exists:
            return []
        with self._connection(write=False) as connection:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM examples ORDER BY last_used DESC, added DESC, id")
            return [example for row in rows if (example := self._example(row)) is not None]

    def get(self, example_id: str) -> MemoryExample:
        """One example by its id (or a unique prefix of it, as `chatocr memory list` shows them)."""
        if self.exists:
            with self._connection(write=False) as connection:
                pattern = example_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                rows = connection.execute(
                    f"SELECT {_COLUMNS} FROM examples WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (pattern,)
                ).fetchall()
                if len(rows) == 1 and (example := self._example(rows[0])) is not None:
                    return example
                if len(rows) > 1:
                    raise MemoryStoreError(
                        f"{example_id!r} names more than one example of {self.scenario}.",
                        hint="Give more of the id (chatocr memory list).",
                    )
        raise MemoryStoreError(
            f"No example {example_id!r} in the memory of {self.scenario}.",
            hint=f"chatocr memory list {self.scenario} shows the ids.",
        )

    def _example(self, row: Sequence[Any]) -> MemoryExample | None:
        """A row as an example; None (with a warning) for a row that does not parse."""
        try:
            answer, lines = json.loads(row[3]), json.loads(row[4])
            if not isinstance(answer, dict) or not isinstance(lines, list):
                raise ValueError("answer is not an object or lines not a list")
            return MemoryExample(
                id=str(row[0]),
                scenario=self.scenario,
                text=str(row[1]),
                answer=answer,
                source=DocumentKey(str(row[5]), str(row[6]), None if row[7] is None else int(row[7])),
                lines=lines,
                added=float(row[8]),
                last_used=float(row[9]),
                origin=str(row[10]),
                reviewer=None if row[11] is None else str(row[11]),
                digest=str(row[2]),
            )
        except (ValueError, TypeError, RecursionError) as exc:
            self._warn(f"memory {self.scenario}: example {row[0]!r} is damaged ({exc}); left out")
            return None

    # -- searching -------------------------------------------------------------------------------

    def search(
        self,
        text: str,
        *,
        limit: int = 8,
        layout_weight: float = 0.0,
        leave_out: DocumentKey | None = None,
    ) -> list[MemoryMatch]:
        """The examples most similar to `text`, best first (text similarity blended with layout
        similarity by `layout_weight`, as ExampleBank ranks). `leave_out`: the document being
        read, for leave-one-out evaluation: its own example and any example whose text is exactly
        `text` are never returned. Never raises: an unusable store warns once and finds nothing."""
        return self.find(text, limit=limit, layout_weight=layout_weight, leave_out=leave_out)[0]

    def find(
        self,
        text: str,
        *,
        limit: int = 8,
        layout_weight: float = 0.0,
        leave_out: DocumentKey | None = None,
        also: Sequence[DocumentKey] = (),
    ) -> tuple[list[MemoryMatch], str | None]:
        """`search`, and what kept this search from the memory (None when nothing did): every
        search says it, where `warnings` says each problem once (a result per document needs it
        each time). also: with `leave_out`, more documents to leave out (the same document under
        other file names: two photos of one ticket)."""
        if limit <= 0 or not self.exists:
            return [], None
        try:
            index = self.index()
            excluded = self._excluded(index, text, leave_out, also) if leave_out is not None else []
            ranked = index.rank(text, layout_weight=layout_weight, limit=limit, exclude=excluded)
            found = self._rows([example_id for example_id, _ in ranked]) if ranked else {}
        except MemoryStoreError as exc:
            problem = f"memory {self.scenario} not used: {exc.message}"
            self._warn(problem)
            return [], problem
        except Exception as exc:  # memory only helps: whatever goes wrong, extraction goes on without it
            problem = f"memory {self.scenario} not used: {type(exc).__name__}: {exc}"
            self._warn(problem)
            return [], problem
        out = []
        for example_id, score in ranked:
            example = found.get(example_id)
            # Removed or changed since the index was read (another process): never a wrong example.
            if example is not None and example.digest == index.digest(example_id):
                out.append(MemoryMatch(example, round(score, 4)))
        return out, None

    def _excluded(
        self, index: ArrayIndex, text: str, leave_out: DocumentKey, also: Sequence[DocumentKey] = ()
    ) -> list[int]:
        """The slots of the document's own example, of any example of its very text, and of the
        examples of `also` (the same document under other files, as an evaluation knows them)."""
        if self._by_digest is None:
            self._by_digest = {}
            for number, digest in enumerate(index.digests):
                self._by_digest.setdefault(digest, []).append(number)
        slots = list(self._by_digest.get(text_digest(redact(text)), []))
        with self._connection(write=False) as connection:
            for key in (leave_out, *also):
                rows = connection.execute(
                    "SELECT id, source_path, source_sha256, source_page FROM examples "
                    "WHERE (source_sha256 = ? AND source_sha256 != '') OR source_path = ?",
                    (key.sha256, redact(key.path)),
                ).fetchall()
                for example_id, path, sha256, page in rows:
                    slot = index.slot(example_id)
                    if slot is not None and key.same_document(DocumentKey(path, sha256, page)):
                        slots.append(slot)
        return slots

    def _rows(self, ids: Sequence[str]) -> dict[str, MemoryExample]:
        with self._connection(write=False) as connection:
            marks = ",".join("?" * len(ids))
            rows = connection.execute(f"SELECT {_COLUMNS} FROM examples WHERE id IN ({marks})", list(ids))
            return {example.id: example for row in rows if (example := self._example(row)) is not None}

    def touch(self, ids: Sequence[str]) -> str | None:
        """Mark examples as just used (what least-recently-used eviction goes by); a read-only
        store is left as it is. Returns why the use was not recorded (None when it was, or when
        the store is read-only by choice)."""
        if not ids or not self.exists or self.read_only:
            return None
        if not self._writable():
            return f"memory {self.scenario} is read-only ({self.folder}): its examples' use is not recorded"
        try:
            with self._connection(write=True) as connection:
                marks = ",".join("?" * len(ids))
                connection.execute(f"UPDATE examples SET last_used = ? WHERE id IN ({marks})", [self.clock(), *ids])
        except MemoryStoreError as exc:
            problem = f"memory {self.scenario}: last use not recorded: {exc.message}"
            self._warn(problem)
            return problem
        return None

    # -- the index -------------------------------------------------------------------------------

    def index(self) -> ArrayIndex:
        """The similarity index of the examples as they are now (see the module docstring). Kept
        between calls while the store's generation (counted up by every add and remove, in any
        process) is the same; after a change it is brought up to date in memory."""
        with self._connection(write=False) as connection:
            generation = _generation(connection)
            if self._index is not None and generation == self._generation:
                return self._index
            current = dict(connection.execute("SELECT id, digest FROM examples").fetchall())
            index, damaged = (self._index, False) if self._index is not None else self._index_file()
            covered = index.covered()
            stale = [example_id for example_id, digest in covered.items() if current.get(example_id) != digest]
            missing = [example_id for example_id, digest in current.items() if covered.get(example_id) != digest]
            if stale:
                index = index.without(stale)
            if missing:
                texts = self._texts(connection, missing)
                index = index.extended(missing, [current[i] for i in missing], [texts[i] for i in missing])
        if damaged or len(missing) + len(stale) > TAIL_LIMIT:
            self._save_index(index)
        index.prepare()
        self._index, self._by_digest, self._generation = index, None, generation
        return index

    def _index_file(self) -> tuple[ArrayIndex, bool]:
        """The saved index (empty when there is none); whether it was damaged and must be rebuilt."""
        if not self.index_path.exists():
            return ArrayIndex(), False
        try:
            return ArrayIndex.load(self.index_path), False
        except IndexFileError as exc:
            self._warn(f"memory {self.scenario}: the index {self.index_path} is damaged ({exc}); rebuilt")
            return ArrayIndex(), True

    @staticmethod
    def _texts(connection: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str]:
        texts: dict[str, str] = {}
        for start in range(0, len(ids), 500):  # SQLite's limit on a statement's parameters
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            texts.update(connection.execute(f"SELECT id, text FROM examples WHERE id IN ({marks})", chunk).fetchall())
        return texts

    def texts_of(self, ids: Sequence[str]) -> list[str]:
        """The examples' texts, in the order of `ids`."""
        with self._connection(write=False) as connection:
            texts = self._texts(connection, ids)
        return [texts[example_id] for example_id in ids]

    def _save_index(self, index: ArrayIndex) -> None:
        if not self._writable():
            return
        try:
            self._refuse_links()
            index.save(self.index_path)
        except (OSError, MemoryStoreError) as exc:
            self._warn(f"memory {self.scenario}: the index could not be saved ({exc}); it is rebuilt in memory")

    def save_index(self) -> None:
        """Write the index file now (after importing many documents)."""
        self._save_index(self.index())

    # -- writing ---------------------------------------------------------------------------------

    def add(self, examples: Sequence[MemoryExample]) -> AddOutcome:
        """Store examples (an example of a document already here replaces it), then evict the least
        recently used beyond the cap. MemoryStoreError when the store cannot be written."""
        if not examples:
            return AddOutcome([])
        for example in examples:
            if example.scenario != self.scenario:
                raise MemoryStoreError(
                    f"An example of {example.scenario!r} cannot join the memory of {self.scenario!r}."
                )
        now = self.clock()
        unique = [
            example if example.added else replace(example, added=now, last_used=now)
            for example in {example.id: example for example in examples}.values()
        ]
        with self._connection(write=True) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                ids = [example.id for example in unique]
                replaced = self._count_existing(connection, ids)
                connection.executemany(
                    f"INSERT OR REPLACE INTO examples ({_COLUMNS}) VALUES ({','.join('?' * 12)})",
                    [_row(example) for example in unique],
                )
                evicted = self._evict(connection, protect=set(ids))
                _next_generation(connection)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        message = None
        if evicted:
            message = (
                f"memory {self.scenario} holds at most {self.cap} examples: removed the {len(evicted)} "
                "least recently used"
            )
            logger.info("%s", message)
        # The index held here is brought up to date by the next search (the generation changed).
        if len(unique) > TAIL_LIMIT:  # a few are indexed by the next reader; many are saved now
            self.save_index()
        return AddOutcome(unique, replaced, evicted, message)

    @staticmethod
    def _count_existing(connection: sqlite3.Connection, ids: Sequence[str]) -> int:
        count = 0
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            count += connection.execute(f"SELECT COUNT(*) FROM examples WHERE id IN ({marks})", chunk).fetchone()[0]
        return int(count)

    def _evict(self, connection: sqlite3.Connection, protect: set[str]) -> list[str]:
        """The least recently used examples beyond the cap, deleted (never one just added)."""
        total = int(connection.execute("SELECT COUNT(*) FROM examples").fetchone()[0])
        if total <= self.cap:
            return []
        rows = connection.execute("SELECT id FROM examples ORDER BY last_used, added, id").fetchall()
        victims = [row[0] for row in rows if row[0] not in protect][: total - self.cap]
        for start in range(0, len(victims), 500):
            chunk = victims[start : start + 500]
            connection.execute(f"DELETE FROM examples WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        return victims

    def remove(self, ids: Sequence[str]) -> list[str]:
        """Delete examples by id (or unique prefix); returns the full ids removed."""
        full = [self.get(example_id).id for example_id in ids]
        with self._connection(write=True) as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("DELETE FROM examples WHERE id = ?", [(example_id,) for example_id in full])
            _next_generation(connection)
            connection.execute("COMMIT")
        return full


def _generation(connection: sqlite3.Connection) -> str:
    """The store's generation: counted up by every add and remove (a store written before it was
    counted is at "0" until its next change)."""
    row = connection.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    return str(row[0]) if row is not None else "0"


def _next_generation(connection: sqlite3.Connection) -> None:
    """Count the generation up, inside the writer's transaction: readers then know their index is stale."""
    connection.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
    connection.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")


def _row(example: MemoryExample) -> tuple[Any, ...]:
    return (
        example.id,
        example.text,
        example.digest or text_digest(example.text),
        json.dumps(dict(example.answer), ensure_ascii=False),
        json.dumps([dict(line) for line in example.lines], ensure_ascii=False),
        example.source.path,
        example.source.sha256,
        example.source.page,
        example.added,
        example.last_used,
        example.origin,
        example.reviewer,
    )
