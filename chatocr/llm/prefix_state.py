"""The llama.cpp state after a conversation's stable prefix, kept so it is evaluated once.

A local extraction sends system + few-shot examples + the document. With `order="stable"` the
first two are identical for every document of a scenario, and evaluating them is most of a cold
call's time (about 1,500 tokens at ~30-100 tokens/s on two cores). llama.cpp reuses its KV cache
for the longest common prefix of the previous prompt, but only within one process and only for the
most recent prompt: a new process, or a batch that alternates receipts and tickets, pays for the
whole prefix again. This store keeps the KV state of a sequence after each prefix:

- in memory, the few most recent prefixes (LRU), so alternating scenarios swap states instead of
  re-evaluating;
- on disk (chatocr's cache dir, `llama-state/`), capped in bytes with least-recently-used eviction,
  so the next process restores it in well under a second.

A disk entry is keyed by the model file's identity, n_ctx, the llama.cpp runtime (its version and
the vector extensions it was built with: `local.llama_build()`) and the exact prefix tokens, and
carries a SHA-256 of its payload: a truncated, foreign or corrupt file is
detected, removed and rebuilt (one warning), never loaded. Entries are written with chatocr's one
atomic-write helper (chatocr/fileio.py: an exclusively created temporary file in the same directory,
renamed into place), so an interrupted write (Ctrl-C, a full disk) never leaves a half entry under a
real name; an unwritable directory only disables the disk layer, with one warning.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chatocr import progress
from chatocr.fileio import atomic_writer

__all__ = ["NOT_ON_DISK", "KVSequence", "LlamaSequence", "PrefixStateStore", "model_identity", "shared_prefix"]

log = logging.getLogger("chatocr.llm")

_MAGIC = b"CHATOCR-KV1\n"
_HEADER = struct.Struct("<I")  # length of the JSON header that follows the magic
MIN_PREFIX_TOKENS = 64  # shorter prefixes cost less to evaluate than to look up
NOT_ON_DISK = ", memory only"  # ends a new state's source ("built, memory only") when it was not kept on disk


def model_identity(path: Path, known_sha256: str | None = None) -> str:
    """A model file's identity for cache keys. The shipped model is verified by its SHA-256 at
    assembly, so that hash is used; for any other file, hashing gigabytes at every start would cost
    seconds, so its size, modification time and the SHA-256 of its first and last MiB stand in."""
    if known_sha256:
        return known_sha256
    stat = path.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if stat.st_size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()


class KVSequence(Protocol):
    """One llama.cpp sequence and the tokens its KV cells hold, as the store works on it: sequence 0
    of a Llama (`LlamaSequence`) or any sequence of the batch engine (chatocr/llm/batch.py)."""

    can_cut: bool  # False for recurrent models: their state cannot be cut back at a position

    def held(self) -> Sequence[int]: ...

    def cut(self, n: int) -> None: ...  # keep the first n tokens

    def clear(self) -> None: ...

    def evaluate(self, tokens: Sequence[int]) -> None: ...  # append

    def load(self, payload: bytes, tokens: Sequence[int]) -> bool: ...  # False: refused, sequence cleared

    def save(self) -> bytes: ...


class LlamaSequence:
    """Sequence 0 of a llama_cpp.Llama through its own bookkeeping (`input_ids`, `n_tokens`), which
    calls that need the context alone (llama-cpp-python's sampler, warming) also use."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.can_cut = not (getattr(llama, "_is_recurrent", False) or getattr(llama, "_is_hybrid", False))

    def held(self) -> Sequence[int]:
        return tuple(int(t) for t in self.llama.input_ids[: self.llama.n_tokens])

    def cut(self, n: int) -> None:
        self.llama.n_tokens = n
        self.llama._ctx.kv_cache_seq_rm(-1, n, -1)

    def clear(self) -> None:
        self.llama.reset()

    def evaluate(self, tokens: Sequence[int]) -> None:
        self.llama.eval(list(tokens))

    def load(self, payload: bytes, tokens: Sequence[int]) -> bool:
        if not load_seq_state(self.llama._ctx.ctx, 0, payload):
            self.llama.reset()
            return False
        self.llama.input_ids[: len(tokens)] = tokens
        self.llama.n_tokens = len(tokens)
        return True

    def save(self) -> bytes:
        return seq_state(self.llama._ctx.ctx, 0)


def _sequence(target: Any) -> KVSequence:
    """A KVSequence as is; a Llama as its sequence 0."""
    return target if hasattr(target, "held") else LlamaSequence(target)


@dataclass
class _State:
    tokens: tuple[int, ...]
    payload: bytes


class PrefixStateStore:
    """Restores (or builds and keeps) the KV state of a token prefix in a llama_cpp.Llama.

    Not thread-safe by itself: call it under the lock that serialises the Llama object.
    """

    def __init__(
        self,
        model_id: str,
        n_ctx: int,
        runtime: str,
        directory: Path | None,
        *,
        max_disk_bytes: int = 1 << 30,
        memory_entries: int = 4,
    ) -> None:
        self.model_id = model_id
        self.n_ctx = n_ctx
        self.runtime = runtime
        self.directory = directory
        self.max_disk_bytes = max_disk_bytes
        self.memory_entries = memory_entries
        self._memory: OrderedDict[str, _State] = OrderedDict()
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    # -- keys ---------------------------------------------------------------------------------

    def key(self, tokens: Sequence[int]) -> str:
        digest = hashlib.sha256(f"{self.model_id}|{self.n_ctx}|{self.runtime}|".encode())
        digest.update(struct.pack(f"<{len(tokens)}i", *tokens))
        return digest.hexdigest()

    def _path(self, key: str) -> Path | None:
        return self.directory / f"{key[:40]}.kv" if self.directory is not None else None

    # -- the one operation ----------------------------------------------------------------------

    def prepare(self, target: Any, tokens: Sequence[int]) -> str:
        """Leave `target` (a KVSequence, or a Llama's sequence 0) holding exactly the KV state of
        `tokens` (its next generation then only
        evaluates what follows them). Returns where the state came from: "context" (already there),
        "memory", "disk", "extended" (another prefix's state, cut back to the start the two share,
        then the rest evaluated), "built", or "skipped" (prefix too short or too long). "built" and
        "extended" end with NOT_ON_DISK when the state is kept in memory only (the disk layer off,
        the state over its cap, or the directory not writable): a new process builds it again."""
        sequence = _sequence(target)
        tokens = tuple(int(t) for t in tokens)
        n = len(tokens)
        if n < MIN_PREFIX_TOKENS or n >= self.n_ctx:
            return "skipped"
        if tuple(int(t) for t in sequence.held()[:n]) == tokens:
            return "context"
        key = self.key(tokens)
        with self._lock:
            state = self._memory.get(key)
            if state is not None:
                self._memory.move_to_end(key)
        if state is not None and self._restore(sequence, state):
            return "memory"
        state = self._read(key, tokens)
        if state is not None and self._restore(sequence, state):
            self._remember(key, state)
            progress.emit("prefix", f"restored the examples' state ({n} tokens) from disk")
            return "disk"
        kept = self._start_from_longest(sequence, tokens)
        todo = n - kept
        progress.emit(
            "prefix",
            f"evaluating {todo} tokens of instructions and examples"
            + (f" ({kept} kept from another example set)" if kept else "")
            + " (kept for later documents)",
            tokens=todo,
        )
        if todo:
            sequence.evaluate(tokens[kept:])
        state = _State(tokens, sequence.save())
        self._remember(key, state)
        on_disk = self._write(key, state)
        return ("extended" if kept else "built") + ("" if on_disk else NOT_ON_DISK)

    def _start_from_longest(self, target: Any, tokens: tuple[int, ...]) -> int:
        """Leave `target` holding the longest start of `tokens` that is already computed (in its
        context, in memory or on disk) and return its length; 0 after a reset when none is worth it.

        Documents of one scenario get different example sets (the examples are ranked per
        document), and every set begins with the same system prompt, often with the same first
        example: the state of another set, cut back to what the two share, spares evaluating that
        part again. Only for models whose cache can be cut at a position (not recurrent ones)."""
        sequence = _sequence(target)
        if not sequence.can_cut:
            sequence.clear()
            return 0
        # The context first: on a tie, nothing needs restoring.
        best = shared_prefix(tuple(int(t) for t in sequence.held()), tokens)
        source: tuple[str, _State | None, tuple[int, ...]] | None = None
        with self._lock:
            kept = [(key, state, state.tokens) for key, state in self._memory.items()]
        for key, kept_state, stored in kept + [(key, None, stored) for key, stored in self._disk_prefixes()]:
            shared = shared_prefix(stored, tokens)
            if shared > best:
                best, source = shared, (key, kept_state, stored)
        if best < MIN_PREFIX_TOKENS:
            sequence.clear()
            return 0
        if source is not None:
            key, state, stored = source
            if state is None:  # on disk: read in full, checked like any exact hit
                state = self._read(key, stored)
            if state is None or not self._restore(sequence, state):
                sequence.clear()
                return 0
        # Cut the cache back to the shared start; the next eval writes from there.
        sequence.cut(best)
        return best

    def _disk_prefixes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(key, tokens) of every disk entry for this model, n_ctx and runtime, read from the
        entries' headers only (a few KB each, not their states)."""
        if self.directory is None:
            return []
        found = []
        for path in self.directory.glob("*.kv"):
            try:
                with path.open("rb") as handle:
                    entry = self._header(handle.read)
            except OSError:
                continue  # unreadable: not a candidate (an exact lookup deals with damage)
            if entry is not None and path.name == f"{entry[0]['key'][:40]}.kv":
                found.append((entry[0]["key"], entry[1]))
        return found

    # -- memory ---------------------------------------------------------------------------------

    def _remember(self, key: str, state: _State) -> None:
        with self._lock:
            self._memory[key] = state
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_entries:
                self._memory.popitem(last=False)

    @staticmethod
    def _restore(sequence: KVSequence, state: _State) -> bool:
        return sequence.load(state.payload, state.tokens)

    # -- disk -----------------------------------------------------------------------------------

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message)

    def _read(self, key: str, tokens: tuple[int, ...]) -> _State | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once("read", f"prefix cache: cannot read {path} ({exc}); evaluating the prefix instead")
            return None
        state = self._decode(data, key, tokens)
        if state is None:
            self._warn_once("corrupt", f"prefix cache: {path} is damaged or from another model; rebuilding it")
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least-recently-used eviction goes by modification time
        return state

    def _header(self, read: Callable[[int], bytes]) -> tuple[dict[str, Any], tuple[int, ...]] | None:
        """An entry's header and prefix tokens, read from its start by `read(n)`; None unless it is
        an entry of this model, n_ctx and runtime with a well-formed header and all its tokens."""
        head = read(len(_MAGIC) + _HEADER.size)
        if not head.startswith(_MAGIC) or len(head) < len(_MAGIC) + _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(head, len(_MAGIC))
        try:
            header = json.loads(read(min(size, 1 << 16)))  # a header is a few hundred bytes
        except ValueError:
            return None
        expected = {"model": self.model_id, "n_ctx": self.n_ctx, "runtime": self.runtime}
        if not isinstance(header, dict) or any(header.get(k) != v for k, v in expected.items()):
            return None
        n = header.get("n_tokens")
        if not isinstance(n, int) or not 0 < n < self.n_ctx or not isinstance(header.get("key"), str):
            return None
        raw = read(4 * n)
        return (header, struct.unpack(f"<{n}i", raw)) if len(raw) == 4 * n else None

    def _decode(self, data: bytes, key: str, tokens: tuple[int, ...]) -> _State | None:
        stream = io.BytesIO(data)
        entry = self._header(stream.read)
        if entry is None:
            return None
        header, stored = entry
        payload = stream.read()
        if header["key"] != key or stored != tokens or len(payload) != header.get("payload_size"):
            return None
        if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
            return None
        return _State(tokens, payload)

    def _write(self, key: str, state: _State) -> bool:
        """Keep `state` on disk; False when it is not (no disk layer, over the cap, a failed write)."""
        path = self._path(key)
        if path is None or self.max_disk_bytes <= 0:
            return False
        header = json.dumps(
            {
                "key": key,
                "model": self.model_id,
                "n_ctx": self.n_ctx,
                "runtime": self.runtime,
                "n_tokens": len(state.tokens),
                "payload_size": len(state.payload),
                "payload_sha256": hashlib.sha256(state.payload).hexdigest(),
            }
        ).encode()
        if len(state.payload) > self.max_disk_bytes:
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._evict(len(state.payload))
            tokens = struct.pack(f"<{len(state.tokens)}i", *state.tokens)
            size = _HEADER.pack(len(header))
            atomic_writer(
                path,
                lambda out: out.writelines((_MAGIC, size, header, tokens, state.payload)),
                mode=0o600,
                replace_any=True,
            )
        except OSError as exc:
            self._warn_once("write", f"prefix cache: cannot write to {path.parent} ({exc}); not kept on disk")
            return False
        return True

    def _evict(self, incoming: int) -> None:
        """Remove least-recently-used entries until `incoming` more bytes fit under the cap."""
        assert self.directory is not None
        entries = []
        for entry in self.directory.glob("*.kv"):
            try:
                stat = entry.lstat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries, key=lambda item: item[0]):
            if total + incoming <= self.max_disk_bytes:
                break
            try:
                entry.unlink()
                total -= size
            except OSError:
                pass


def shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common start of two token sequences."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def seq_state(ctx: Any, seq: int) -> bytes:
    """The KV state of one sequence of a llama.cpp context (what a prefix left in it), as bytes."""
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(ctx, seq)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, seq)
    return bytes(buffer)[:written]


def load_seq_state(ctx: Any, seq: int, payload: bytes) -> bool:
    """Put a sequence's KV state (from `seq_state`) into sequence `seq`; False when refused."""
    import llama_cpp

    buffer = (ctypes.c_uint8 * len(payload)).from_buffer_copy(payload)
    return bool(llama_cpp.llama_state_seq_set_data(ctx, buffer, len(payload), seq))
