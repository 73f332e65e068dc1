"""Choosing a chat model by name: `get_chat_model("provider:model", **options)`.

Built-in backends are registered here in code; their modules (and SDKs) are imported only when a
model of that kind is made. Third-party packages add backends through the entry-point group
`chatocr.llm`: each entry point names a factory `(model: str | None, **options) -> ChatModel`,
registered under the entry point's name. Discovery happens once, on the first lookup of an
unknown name or on `available_backends()`.

    [project.entry-points."chatocr.llm"]
    mycloud = "chatocr_mycloud:make_model"
"""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from chatocr.errors import ConfigError
from chatocr.llm.base import ChatModel
from chatocr.llm.presets import PRESETS

__all__ = ["ENTRY_POINT_GROUP", "BackendFactory", "available_backends", "get_chat_model", "register_backend"]

log = logging.getLogger("chatocr.llm")

ENTRY_POINT_GROUP = "chatocr.llm"
BackendFactory = Callable[..., ChatModel]

_factories: dict[str, BackendFactory] = {}
_lock = threading.Lock()
_discovered = False


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make `get_chat_model("name:...")` call `factory(model, **options)`."""
    if not name or ":" in name:
        raise ConfigError(f"A backend name must be non-empty and contain no ':', got {name!r}.")
    with _lock:
        if name in _factories and not replace and _factories[name] is not factory:
            raise ConfigError(
                f"A chat backend named {name!r} is already registered.",
                hint="Pass replace=True to override it.",
            )
        _factories[name] = factory


def _lazy(module: str, cls: str, **fixed: Any) -> BackendFactory:
    """A factory importing its module on first use (keeps SDK imports out of `import chatocr`)."""

    def factory(model: str | None = None, **options: Any) -> ChatModel:
        backend = getattr(importlib.import_module(module), cls)
        instance: ChatModel = backend(model, **{**fixed, **options})
        return instance

    factory.__qualname__ = f"{cls}[{', '.join(f'{k}={v!r}' for k, v in fixed.items())}]"
    return factory


def _register_builtins() -> None:
    register_backend("openai", _lazy("chatocr.llm.openai_backend", "OpenAIChatModel"))
    for preset in PRESETS:
        if preset == "openai":
            continue
        # "qianfan" names the qianfan-SDK backend; Qianfan V2 through the openai SDK is "qianfan-openai".
        name = "qianfan-openai" if preset == "qianfan" else preset
        register_backend(
            name, _lazy("chatocr.llm.openai_backend", "OpenAIChatModel", preset=preset, provider=name)
        )
    register_backend("ernie", _lazy("chatocr.llm.erniebot_backend", "ErnieBotChatModel"))
    register_backend("qianfan", _lazy("chatocr.llm.qianfan_backend", "QianfanChatModel"))
    register_backend("local", _lazy("chatocr.llm.local", "LocalChatModel"))
    register_backend("scripted", _scripted)


SCRIPTED_ANSWERS_ENV = "CHATOCR_SCRIPTED_ANSWERS"


def _scripted(model: str | None = None, **options: Any) -> ChatModel:
    """"scripted:name" with the answers in `script=[...]` (a queue) or a function.

    Without `script`, the answers come from $CHATOCR_SCRIPTED_ANSWERS (so that a CLI run in a
    subprocess, e.g. `chatocr extract --llm scripted`, can be scripted): inline JSON or the path of
    a JSON file holding a list of answers, or {"answers": [...], "latency": seconds}. The answers
    are given in turn and cycle; an answer that is not a string is sent as its JSON text.
    """
    from chatocr.llm.scripted import ScriptedChatModel

    if "script" not in options and os.environ.get(SCRIPTED_ANSWERS_ENV):
        answers, latency = _answers_from_env(os.environ[SCRIPTED_ANSWERS_ENV])
        options.setdefault("latency", latency)
        turn = itertools.count()
        options["script"] = lambda messages, settings: answers[next(turn) % len(answers)]
    return ScriptedChatModel(options.pop("script", ()), model=model or "scripted", **options)


def _answers_from_env(value: str) -> tuple[list[str], float]:
    text = value.strip()
    try:
        if not text.startswith(("[", "{")):
            text = Path(text).expanduser().read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"${SCRIPTED_ANSWERS_ENV} is neither inline JSON nor a readable JSON file: {exc}",
            hint='Set it to e.g. \'["first answer", {"total": "9.00"}]\' or the path of such a file.',
        ) from exc
    latency = 0.0
    if isinstance(data, dict):
        latency = float(data.get("latency", 0.0))
        data = data.get("answers")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"${SCRIPTED_ANSWERS_ENV} must hold a non-empty list of answers.")
    return [a if isinstance(a, str) else json.dumps(a, ensure_ascii=False) for a in data], latency


def _discover_plugins() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _factories:
            log.warning(
                "Plugin %s tries to replace the built-in backend %r; ignored.", entry.value, entry.name
            )
            continue
        try:
            factory = entry.load()
        except Exception as exc:  # a broken plugin must not break every other backend
            log.warning("Could not load chat backend plugin %r (%s): %s", entry.name, entry.value, exc)
            continue
        register_backend(entry.name, factory)


def available_backends() -> list[str]:
    """Every registered backend name, plugins included, sorted."""
    _discover_plugins()
    return sorted(_factories)


def get_chat_model(spec: str | ChatModel, **options: Any) -> ChatModel:
    """A chat model from "provider" or "provider:model" (only the first ':' splits, so
    "ollama:qwen2.5:1.5b" works), or `spec` itself when it already is a ChatModel."""
    if isinstance(spec, ChatModel):
        if options:
            raise ConfigError("Options cannot be applied to an existing ChatModel instance.")
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"Expected 'provider:model' or a ChatModel, got {spec!r}.")
    provider, _, model = spec.strip().partition(":")
    factory = _factories.get(provider)
    if factory is None:
        _discover_plugins()
        factory = _factories.get(provider)
    if factory is None:
        raise ConfigError(
            f"Unknown LLM provider {provider!r} in {spec!r}.",
            hint=f"Known providers: {', '.join(available_backends())}.",
        )
    # model=... in the options is the same as "provider:model"; the string wins when both are given.
    chosen = model or options.pop("model", None)
    options.pop("model", None)
    return factory(chosen or None, **options)


_register_builtins()
