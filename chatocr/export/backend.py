"""The ChatOCR an export plans with: the target backend's limits, role rules and tokenizer.

For the in-process local model the tokenizer is loaded alone (llama.cpp `vocab_only`, under a
second on a 2-core machine) instead of the whole 1 GB model: an export counts tokens, it never
generates. The counter is the model's own, so counts are exact for the model a user fine-tunes;
other backends keep their declared counter (tiktoken, characters for ERNIE). Nothing downloads.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from chatocr.api import ChatOCR
from chatocr.config import load_config
from chatocr.llm.registry import get_chat_model
from chatocr.tokens import CachedCounter, FunctionCounter, TokenCounter

__all__ = ["export_chat", "vocab_counter"]

_vocabs: dict[str, Any] = {}
_lock = threading.Lock()


def vocab_counter(model: str | None = None) -> TokenCounter:
    """The token counter of a local GGUF model ("local:<path>", or the shipped default), from its
    vocabulary only; named like LocalChatModel's, so plan reports read the same."""
    from chatocr.llm.local import _import_llama, _quiet_native_stderr, resolve_model_path

    explicit = model if model and model not in ("default", "qwen2.5-coder-1.5b") else None
    path = resolve_model_path(explicit)
    with _lock:
        llama = _vocabs.get(str(path))
        if llama is None:
            llama_cpp = _import_llama()
            with _quiet_native_stderr():
                llama = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
            _vocabs[str(path)] = llama

    def count(text: str) -> int:
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    return CachedCounter(FunctionCounter(count, name=f"llama:{Path(path).stem}"), maxsize=4096)


def export_chat(llm: str | None = None, ocr: str | None = None, config: str | Path | None = None) -> ChatOCR:
    """A ChatOCR for `llm` ("provider[:model]", default: the configured one) whose local model, if
    that is the target, counts with its vocabulary only and is never loaded."""
    cfg = load_config({"llm": llm, "ocr": ocr}, path=config)
    provider, _, name = cfg.llm.partition(":")
    if provider == "local" and "counter" not in cfg.llm_options:
        options = {**cfg.llm_options, "counter": vocab_counter(name or None)}
        return ChatOCR(get_chat_model(cfg.llm, **options), ocr, config=cfg)
    return ChatOCR(cfg.llm, ocr, config=cfg)
