"""The loaded local models: one llama.cpp model per process and set of load parameters.

The loaded `Llama` is kept per process (keyed by path and load parameters), created lazily on the
first call, and never reset between calls: llama.cpp then reuses the KV cache for the longest
common prompt prefix, so a second document behind the same system prompt and few-shot examples
only evaluates its own tokens. Llama objects are not thread-safe: each loaded model has one lock,
held by whoever drives its context (the batch engine, chatocr/llm/batch.py, or a call that needs
the context alone). Token counts are exact, from the model's own tokenizer (read-only on the
vocabulary, so counting does not wait for a generation).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatocr import progress
from chatocr.errors import MissingDependencyError
from chatocr.llm.model_files import resolve_model_path
from chatocr.tokens import CachedCounter, FunctionCounter, TokenCounter

__all__ = ["Loaded", "formatters", "get_llama", "import_llama", "llama_build", "llama_cpp_module", "vocabulary_counter"]


@dataclass
class Loaded:
    llama: Any
    lock: threading.Lock
    # the batch engine driving this model's context (chatocr/llm/batch.py), made on first use
    engine: Any = None
    # The GGUF's own chat template, as llama-cpp-python applies it: without the assistant header
    # (to tokenise a stable prefix exactly as the request will) and with it (the whole prompt).
    formatter: Any = None
    prompt_formatter: Any = None


def formatters(loaded: Loaded) -> bool:
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


_loaded: dict[tuple[object, ...], Loaded] = {}
_loaded_lock = threading.Lock()


def import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependencyError("The local backend", "local", package="llama-cpp-python") from exc
    return llama_cpp


def llama_cpp_module() -> Any:
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


def get_llama(key: tuple[object, ...], sequences: int = 1, **params: Any) -> Loaded:
    """The loaded model for `key`, loading it with `params` (llama_cpp.Llama's) on first use.
    `sequences` > 1: a context for that many documents at once (see `_widen`)."""
    with _loaded_lock:
        loaded = _loaded.get(key)
        if loaded is None:
            if not _loaded:
                atexit.register(_close_all)
            llama_cpp = import_llama()
            what = "vocabulary" if params.get("vocab_only") else "model"
            progress.emit("load", f"loading the local {what} {Path(params['model_path']).name}")
            started = time.perf_counter()
            with _quiet_native_stderr():
                llama = llama_cpp.Llama(**params)
                if sequences > 1:
                    _widen(llama, sequences)
            progress.emit("load", f"{what} loaded", seconds=time.perf_counter() - started)
            loaded = Loaded(llama, threading.Lock())
            _loaded[key] = loaded
        return loaded


def _widen(llama: Any, sequences: int) -> None:
    """Give `llama` a context of `sequences` sequences that share one KV buffer of `sequences`
    times the per-document context (llama-cpp-python's constructor always makes one sequence).

    Unified (one buffer, cells shared between sequences): a kept prefix copied into another
    sequence costs no memory and no evaluation (llama_memory_seq_cp only tags the cells). Every
    sequence stays within the per-document n_ctx the planner budgets for, so `sequences` x n_ctx
    cells always hold them all. The Llama object's own bookkeeping (`input_ids`, `_n_ctx`) stays
    that of one document: it describes sequence 0, which calls that need the context alone use."""
    from llama_cpp import _internals

    params = llama.context_params
    params.n_seq_max = sequences
    params.kv_unified = True
    params.n_ctx = llama.n_ctx() * sequences
    # The one-document context goes before the wide one is made, not after: both at once were the
    # process's peak (its KV buffer, 117 MB at 4096 cells, on top of the wide one's).
    llama._ctx.close()
    llama._ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=llama.verbose)


def vocabulary_counter(model: str | None = None) -> TokenCounter:
    """The exact token counter of a local GGUF model ("local:<path>" or the shipped default) from
    its vocabulary alone (llama.cpp `vocab_only`: under a second, not the whole 1 GB), for callers
    that count but never generate (`chatocr export`). Loaded once per process, closed at exit."""
    explicit = model if model and model not in ("default", "qwen2.5-coder-1.5b") else None
    path = resolve_model_path(explicit)
    loaded = get_llama((str(path), "vocab_only"), model_path=str(path), vocab_only=True, verbose=False)

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


def llama_build() -> str:
    """The llama.cpp runtime: its version and the vector extensions it was built with, as llama.cpp
    lists them (`0.3.36 AVX+AVX2+F16C+FMA+BMI2+AVX512+AVX512_VBMI+AVX512_VNNI`). Two builds of one
    version round differently, so a prefix state is kept per build: a state from another build is
    rebuilt, as one from another version is, and a near-tie answer cannot depend on which build
    filled the cache."""
    llama_cpp = llama_cpp_module()
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    features = re.findall(r"\b(AVX\w*|AMX\w*|FMA|F16C|BMI2|NEON|SVE\w*|DOTPROD|MATMUL_INT8) = 1", info)
    return f"{llama_cpp.__version__} {'+'.join(features) or 'generic'}"
