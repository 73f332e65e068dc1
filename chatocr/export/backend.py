"""The ChatOCR an export plans with: the target backend's limits, role rules and tokenizer.

For the in-process local model the tokenizer is loaded alone (llama.cpp `vocab_only`, under a
second on a 2-core machine) instead of the whole 1 GB model: an export counts tokens, it never
generates. The counter is the model's own, so counts are exact for the model a user fine-tunes;
other backends keep their declared counter (tiktoken, characters for ERNIE). Nothing downloads.
"""

from __future__ import annotations

from pathlib import Path

from chatocr.api import ChatOCR
from chatocr.config import load_config
from chatocr.llm.registry import backend_class, get_chat_model
from chatocr.tokens import TokenCounter

__all__ = ["export_chat", "vocab_counter"]


def vocab_counter(model: str | None = None) -> TokenCounter:
    """The local model's own counter from its vocabulary only (see chatocr.llm.local)."""
    from chatocr.llm.local import vocabulary_counter

    return vocabulary_counter(model)


def export_chat(llm: str | None = None, ocr: str | None = None, config: str | Path | None = None) -> ChatOCR:
    """A ChatOCR for `llm` ("provider[:model]", default: the configured one) whose local model, if
    that is the target, counts with its vocabulary only and is never loaded."""
    # No memory of reviewed documents: a training set must not depend on what this machine reviewed
    # (nor carry a document's own reviewed answer in its prompt).
    cfg = load_config({"llm": llm, "ocr": ocr, "memory": False}, path=config)
    provider, _, name = cfg.llm.partition(":")
    # A backend that can count from its vocabulary alone (the in-process local model) is never
    # loaded whole for an export.
    counts_alone = getattr(backend_class(provider), "counts_from_vocabulary", False)
    if counts_alone and "counter" not in cfg.llm_options:
        options = {**cfg.llm_options, "counter": vocab_counter(name or None)}
        return ChatOCR(get_chat_model(cfg.llm, **options), ocr, config=cfg)
    return ChatOCR(cfg.llm, ocr, config=cfg)
