"""Several documents decoded together in one llama.cpp context: the local model's batch engine.

Generating a token on a CPU is bound by reading the weights, not by arithmetic: on 2 cores one
token takes ~50 ms, while 2 tokens of two documents in one llama.cpp batch take ~75 ms and 4 take
~120 ms (docs/benchmarks.md, bench_batch). So when several documents are in flight for the local
model (extract_many, the CLI over a folder, eval -j, the service's jobs, a Ray actor's documents),
each step advances every one of them by a token: one batch with several sequence ids.

- Every call goes through the engine, one document alone too: it then issues exactly the
  llama.cpp calls the one-document loop did (its prompt in `n_batch` chunks, then steps of the
  chosen token and its prompt-lookup drafts), on sequence 0.
- Each document has its own sequence (`KVSlot`): its own grammar, drafts, stop flag, usage and
  timings (`Job`), and progress events sent in the context of the call that asked.
- Prompts are shared where they agree: a new document's sequence starts as a copy of the longest
  start it shares with any sequence (`llama_memory_seq_cp` only tags the cells: no memory, no
  evaluation), else from the kept prefix states (chatocr/llm/prefix_state.py).
- A newly arrived document's prompt is read in chunks of `prefill_chunk` tokens while others are
  generating, so that their tokens ride along in the same batches instead of waiting ~5 s.
- While two or more documents generate, drafts are off (`batch_drafts`): a drafted token then costs
  as much as another document's token and about half of them are refused.
- A document that does not fit, is cancelled, or whose grammar fails ends alone with a typed error;
  the others go on.

The engine's thread holds the loaded model's lock while documents are in flight; a call that needs
the context alone (llama-cpp-python's sampler, warming) asks for it with `exclusive()`, which lets
the documents in flight finish and clears the other sequences first.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chatocr import cores, progress
from chatocr.errors import ContextTooLongError, InvalidRequestError, LLMError
from chatocr.llm.cpu import threads_for_call, usable_cpus
from chatocr.llm.decoding import DecodeStats, GreedySequence
from chatocr.llm.prefix_state import MIN_PREFIX_TOKENS, PrefixStateStore, load_seq_state, seq_state, shared_prefix

__all__ = ["BatchEngine", "Job", "KVSlot"]

log = logging.getLogger("chatocr.llm")


@dataclass
class Job:
    """One document's request to the engine, and what became of it."""

    prompt: list[int]
    prefix: list[int]  # the stable prefix's tokens (system + examples + the task's opening), or []
    grammar: tuple[str, str] | None
    max_tokens: int
    n_draft: int  # drafts per step while it is the only document generating
    batch_drafts: int  # drafts per step while others generate too
    prefill_chunk: int
    store: PrefixStateStore | None
    fixed_threads: int | None
    stop: threading.Event
    emit: Callable[[str], None]  # each piece of the answer, in order (called on the engine's thread)
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    stats: DecodeStats = field(default_factory=DecodeStats)
    perf: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # Each answer token's (text, log-probability) when asked (ChatSettings.logprobs), else None.
    token_logprobs: list[tuple[str, float]] | None = None

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class KVSlot:
    """One llama.cpp sequence of the engine's context and the tokens its KV cells hold (a
    KVSequence for the prefix store). Sequence 0 also keeps the Llama's own bookkeeping
    (`input_ids`, `n_tokens`) up to date, for the calls that use the context alone."""

    can_cut = True

    def __init__(self, engine: BatchEngine, seq: int) -> None:
        self.engine = engine
        self.seq = seq
        self.tokens: list[int] = []

    def held(self) -> Sequence[int]:
        return self.tokens

    def _mirror(self) -> None:
        if self.seq == 0:
            llama = self.engine.llama
            llama.input_ids[: len(self.tokens)] = self.tokens
            llama.n_tokens = len(self.tokens)

    def set(self, tokens: Sequence[int]) -> None:
        self.tokens = [int(t) for t in tokens]
        self._mirror()

    def cut(self, n: int) -> None:
        self.engine.memory_rm(self.seq, n)
        self.set(self.tokens[:n])

    def clear(self) -> None:
        self.cut(0)

    def evaluate(self, tokens: Sequence[int]) -> None:
        self.engine.evaluate_alone(self, tokens)

    def load(self, payload: bytes, tokens: Sequence[int]) -> bool:
        if not load_seq_state(self.engine.ctx, self.seq, payload):
            self.clear()
            return False
        self.set(tokens)
        return True

    def save(self) -> bytes:
        return seq_state(self.engine.ctx, self.seq)


@dataclass
class _Running:
    """A job admitted to a sequence: reading its prompt (`todo`), then generating (`todo` None)."""

    job: Job
    slot: KVSlot
    decoder: GreedySequence
    todo: list[int] | None
    started: float = field(default_factory=time.perf_counter)
    base: int = 0  # index of its first row in this step's batch
    rows: list[int] = field(default_factory=list)  # the tokens it put in this step's batch


_Row = tuple[int, int, int, bool]  # a batch row: token, position, sequence, wants logits

# Seconds over which `BatchEngine.activity` averages the tokens generated per second.
RATE_WINDOW = 3.0


class BatchEngine:
    """Drives one loaded model's context for every document in flight (see the module's doc)."""

    def __init__(self, llama: Any, lock: threading.Lock, *, width: int, n_batch: int) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.llama = llama
        self.lock = lock
        self.width = max(1, min(width, n_batch))
        self.n_batch = n_batch
        self.n_ctx = int(llama._n_ctx)  # one document's context
        self.slots = [KVSlot(self, seq) for seq in range(self.width)]
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._cv = threading.Condition()
        self._pending: deque[Job] = deque()
        self._worker: threading.Thread | None = None
        self._exclusive = 0  # callers waiting for (or holding) the context alone
        self.widest = 0  # most documents seen in flight at once (for benchmarks)
        self.in_flight = 0  # documents reading their prompt or generating, as of the last step
        # The cores the documents in flight may use (the idle ones at the last admission, this
        # process's own OCR not counted as a competitor), the threads set now, and whether a
        # caller fixed the number (`threads`): see `_pace`.
        self._room = usable_cpus()
        self._threads = 0
        self._fixed = False
        self.waited = 0.0  # seconds the documents in flight waited for this process's OCR
        self._made: deque[tuple[float, int]] = deque()  # (when, tokens generated) per step, recent

    @property
    def ctx(self) -> Any:
        return self.llama._ctx.ctx

    # -- what calls use -------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue `job`; the engine's thread picks it up at its next step (or starts for it)."""
        with self._cv:
            self._pending.append(job)
            self._start_worker()

    def _start_worker(self) -> None:  # under self._cv
        if self._worker is None and self._pending and not self._exclusive:
            self._worker = threading.Thread(target=self._drive, name="chatocr-local-batch", daemon=True)
            self._worker.start()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The context alone, on sequence 0 through the Llama's own bookkeeping: documents in flight
        finish first, nothing new starts meanwhile, the other sequences are emptied."""
        with self._cv:
            self._exclusive += 1
        try:
            with self.lock:
                for slot in self.slots[1:]:
                    slot.clear()
                yield
                self.slots[0].tokens = [int(t) for t in self.llama.input_ids[: self.llama.n_tokens]]
                self._threads = 0  # the call set its own
        finally:
            with self._cv:
                self._exclusive -= 1
                self._start_worker()

    def activity(self) -> dict[str, Any]:
        """What a progress display shows: the documents in flight and the tokens generated per
        second by all of them together over the last RATE_WINDOW seconds (the answers' tokens; a
        drafted token counts once it is kept). Read on the engine's thread, where pieces are emitted."""
        made = self._made
        if len(made) < 2:
            return {"in_flight": self.in_flight, "tokens_per_s": 0.0}
        span = made[-1][0] - made[0][0]
        tokens = sum(n for _, n in list(made)[1:])
        return {"in_flight": self.in_flight, "tokens_per_s": round(tokens / span, 1) if span > 0 else 0.0}

    def _count_made(self, tokens: int) -> None:
        now = time.perf_counter()
        made = self._made
        made.append((now, tokens))
        while len(made) > 2 and now - made[1][0] > RATE_WINDOW:
            made.popleft()

    # -- the engine's thread ----------------------------------------------------------------------

    def _drive(self) -> None:
        active: list[_Running] = []
        with self.lock:
            try:
                while True:
                    with self._cv:
                        admitting: list[Job] = []
                        while self._pending and len(active) + len(admitting) < self.width and not self._exclusive:
                            admitting.append(self._pending.popleft())
                        if not active and not admitting:
                            self._worker = None
                            self.in_flight = 0
                            self._made.clear()
                            return
                    for job in admitting:
                        running = self._admit(job, active)
                        if running is not None:
                            active.append(running)
                    if admitting:
                        self._drop_idle(active)
                    self.widest = max(self.widest, len(active))
                    self.in_flight = len(active)
                    if active:
                        self._step(active)
            except Exception as error:  # a failure of the engine itself: every job hears of it
                log.exception("local: the batch engine failed")
                self._abandon(active, error)

    def _abandon(self, active: list[_Running], error: BaseException) -> None:
        with self._cv:
            waiting = list(self._pending)
            self._pending.clear()
            self._worker = None
        failure = error if isinstance(error, LLMError) else LLMError(f"local: the batch engine failed: {error!r}")
        for running in active:
            running.slot.tokens = []  # what its cells hold is unknown now
            self._finish(running, failure)
        for job in waiting:
            job.fail(failure)
        for slot in self.slots:
            slot.tokens = []
        self.memory_rm(-1, 0)

    # -- admitting a document -----------------------------------------------------------------------

    def _admit(self, job: Job, active: list[_Running]) -> _Running | None:
        if job.stop.is_set():  # cancelled while waiting
            job.stats.finish = "cancelled"
            job.done.set()
            return None
        n = len(job.prompt)
        if n >= self.n_ctx:
            job.fail(ContextTooLongError(f"local: Requested tokens ({n}) exceed context window of {self.n_ctx}"))
            return None
        busy = {running.slot.seq for running in active}
        free = [slot for slot in self.slots if slot.seq not in busy]
        slot = max(free, key=lambda s: (shared_prefix(s.tokens, job.prompt), -s.seq))
        threads = threads_for_call(job.fixed_threads)
        self._fixed = bool(job.fixed_threads)
        # Threads busy with this process's own OCR were counted among the competitors just now;
        # they are not: `_pace` gives the model the cores they leave, step by step.
        self._room = threads if self._fixed else min(usable_cpus(), threads + cores.taken())
        self._set_threads(threads)
        started = time.perf_counter()
        try:
            source = job.context.run(self._prepare, slot, job)
            decoder = GreedySequence(
                self.llama,
                job.prompt,
                grammar=job.grammar,
                max_tokens=job.max_tokens,
                emit=lambda piece: job.context.run(job.emit, piece),  # progress listeners are per call
                stopped=job.stop.is_set,
                stats=job.stats,
                logprobs=job.token_logprobs,
            )
        except ValueError as exc:  # the answer's grammar refused by llama.cpp
            slot.clear()
            job.fail(InvalidRequestError(f"local: {exc}"))
            return None
        job.perf.update(prefix_state=source, prefix_s=round(time.perf_counter() - started, 4), threads=threads)
        job.perf["seq"] = slot.seq
        job.stats.prompt_tokens = n - len(slot.tokens)
        job.context.run(progress.emit, "prompt", "evaluating the document and the task")
        return _Running(job, slot, decoder, todo=job.prompt[len(slot.tokens) :])

    def _prepare(self, slot: KVSlot, job: Job) -> str:
        """Leave `slot` holding the longest start of the job's prompt that is already computed
        (another sequence's cells, the kept prefix state, or its own), at least one prompt token
        short so that the last one is evaluated for fresh logits. Returns where the prefix came from."""
        prompt = job.prompt
        best, source = shared_prefix(slot.tokens, prompt), None
        for other in self.slots:
            shared = shared_prefix(other.tokens, prompt) if other is not slot else 0
            if shared > best:
                best, source = shared, other
        copied = source is not None and best >= MIN_PREFIX_TOKENS
        if copied:
            assert source is not None
            slot.clear()
            self._llama_cpp.llama_memory_seq_cp(self._memory(), source.seq, slot.seq, 0, best)
            slot.set(prompt[:best])
        state = "none"
        if job.store is not None and job.prefix:
            state = job.store.prepare(slot, job.prefix)
            if state == "context" and copied:
                state = "sequence"
        slot.cut(min(shared_prefix(slot.tokens, prompt), len(prompt) - 1))
        return state

    def _drop_idle(self, active: list[_Running]) -> None:
        """Empty the sequences no document uses: their cells would widen every step's attention
        (llama.cpp attends over the cells up to the highest one in use, masked), and what they held
        was offered to the documents just admitted."""
        busy = {running.slot.seq for running in active}
        for slot in self.slots:
            if slot.seq not in busy and slot.tokens:
                slot.clear()

    # -- one step -------------------------------------------------------------------------------------

    def _set_threads(self, threads: int) -> None:
        if threads != self._threads:
            self._llama_cpp.llama_set_n_threads(self.ctx, threads, threads)
            self._threads = threads

    def _pace(self) -> None:
        """Before a step: decode on the cores this process's own OCR leaves (chatocr/cores.py),
        or wait while it holds all of them. llama.cpp's threads wait for each other after every
        layer, so one of them sharing a core with the OCR would stall every step."""
        if self._fixed:
            return
        busy = cores.taken()
        if busy >= self._room:
            started = time.perf_counter()
            while busy >= self._room:
                busy = cores.wait_until_below(self._room, timeout=1.0)
            self.waited += time.perf_counter() - started
        self._set_threads(max(1, self._room - busy))

    def _step(self, active: list[_Running]) -> None:
        """One llama.cpp batch: every generating document's next token (and drafts), then prompt
        chunks of documents still reading theirs; then each document takes its rows' logits."""
        self._pace()
        for running in [r for r in active if r.job.stop.is_set() and r.todo is not None]:
            running.job.stats.finish = "cancelled"  # stopped while reading its prompt
            self._retire(active, running)
        for running in active:
            running.job.perf["batch"] = max(running.job.perf.get("batch", 1), len(active))
        generating = [r for r in active if r.todo is None]
        batch: list[_Row] = []
        for running in generating:
            self._feed(active, running, len(generating), batch)
        reading = [r for r in active if r.todo]
        for running in reading:
            self._feed_prompt(running, batch, bool(generating))
        if not batch:
            return
        if not self._decode(batch):
            for running in [r for r in active if r.rows]:
                running.slot.tokens = []  # the failed batch may have left cells: start it afresh
                self.memory_rm(running.slot.seq, 0)
                self._retire(active, running, LLMError("local: llama.cpp could not decode the batch (no room left)"))
            return
        for running in [r for r in active if r.rows]:
            try:
                self._take(running)
            except ValueError as exc:  # the grammar allows nothing here: this document only
                running.slot.clear()
                self._retire(active, running, InvalidRequestError(f"local: {exc}"))
                continue

    def _feed(self, active: list[_Running], running: _Running, generating: int, batch: list[_Row]) -> None:
        job, slot = running.job, running.slot
        n_draft = job.n_draft if generating == 1 else min(job.n_draft, job.batch_drafts)
        n_draft = max(0, min(n_draft, self.n_batch // self.width - 1))  # every document's rows fit
        fed = running.decoder.feed(n_draft, len(slot.tokens))
        running.rows = fed
        if not fed:  # the answer is over (stop, length, cancelled)
            self._retire(active, running)
            return
        running.base = len(batch)
        n_past = len(slot.tokens)
        for i, token in enumerate(fed):
            batch.append((token, n_past + i, slot.seq, len(fed) > 1 or i == len(fed) - 1))

    def _feed_prompt(self, running: _Running, batch: list[_Row], others_generating: bool) -> None:
        assert running.todo is not None
        room = self.n_batch - len(batch)
        take = min(len(running.todo), running.job.prefill_chunk if others_generating else self.n_batch, room)
        running.rows = running.todo[:take]
        if take <= 0:
            return
        running.base = len(batch)
        n_past = len(running.slot.tokens)
        last = take == len(running.todo)
        for i, token in enumerate(running.rows):
            batch.append((token, n_past + i, running.slot.seq, last and i == take - 1))

    def _take(self, running: _Running) -> None:
        """After the decode: a prompt chunk is now in the cache; generated tokens are verified."""
        slot, rows = running.slot, running.rows
        running.rows = []

        def logits_at(i: int) -> np.ndarray:
            row = self._llama_cpp.llama_get_logits_ith(self.ctx, running.base + i)
            return np.ctypeslib.as_array(row, shape=(self.llama.n_vocab(),))

        if running.todo is not None:
            slot.set(slot.tokens + rows)
            running.todo = running.todo[len(rows) :]
            if not running.todo:
                now = time.perf_counter()
                running.job.stats.prompt_s = now - running.started
                running.started = now
                running.todo = None
                running.decoder.start(logits_at(len(rows) - 1))
            return
        kept = running.decoder.verify(logits_at)  # one row without drafts: row 0 has the logits
        self._count_made(kept)
        slot.set(slot.tokens + rows[:kept])
        if kept < len(rows):  # drop the refused drafts from the KV cache
            self.memory_rm(slot.seq, len(slot.tokens))

    def _retire(self, active: list[_Running], running: _Running, error: BaseException | None = None) -> None:
        active.remove(running)
        self._finish(running, error)

    def _finish(self, running: _Running, error: BaseException | None) -> None:
        job = running.job
        with contextlib.suppress(Exception):  # the grammar's memory, a character cut in two
            running.decoder.close()
        if running.todo is None:
            job.stats.generation_s = time.perf_counter() - running.started
        if error is not None:
            job.fail(error)
        else:
            job.done.set()

    # -- llama.cpp ------------------------------------------------------------------------------------

    def _memory(self) -> Any:
        return self._llama_cpp.llama_get_memory(self.ctx)

    def memory_rm(self, seq: int, start: int) -> None:
        """Forget sequence `seq`'s cells from position `start` on (-1: every sequence)."""
        self._llama_cpp.llama_memory_seq_rm(self._memory(), seq, start, -1)

    def _decode(self, rows: Sequence[_Row]) -> bool:
        batch = self._batch
        batch.n_tokens = len(rows)
        for i, (token, position, seq, logits) in enumerate(rows):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        return bool(self._llama_cpp.llama_decode(self.ctx, batch) == 0)

    def evaluate_alone(self, slot: KVSlot, tokens: Sequence[int]) -> None:
        """Append `tokens` to one sequence, nothing else in the batches (a prefix being built)."""
        tokens = [int(t) for t in tokens]
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            n_past = len(slot.tokens)
            rows = [(t, n_past + i, slot.seq, i == len(chunk) - 1) for i, t in enumerate(chunk)]
            if not self._decode(rows):
                slot.clear()
                raise LLMError("local: llama.cpp could not evaluate the prefix (no room left)")
            slot.set(slot.tokens + chunk)

    def close(self) -> None:
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
