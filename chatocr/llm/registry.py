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
import inspect
import logging
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from chatocr.errors import ConfigError, UnknownOptionError
from chatocr.llm.base import ChatModel
from chatocr.llm.presets import PRESETS

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendFactory",
    "available_backends",
    "backend_class",
    "get_chat_model",
    "register_backend",
]

log = logging.getLogger("chatocr.llm")

ENTRY_POINT_GROUP = "chatocr.llm"
BackendFactory = Callable[..., ChatModel]

_factories: dict[str, BackendFactory] = {}
# name -> how to get the backend's class without building a model (for its capabilities)
_classes: dict[str, Callable[[], type[ChatModel]]] = {}
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


def _lazy(module: str, cls: str, *, constructor: str | None = None, **fixed: Any) -> BackendFactory:
    """A factory importing its module on first use (keeps SDK imports out of `import chatocr`).
    `preset=` picks the preset's class (same wire format, that preset's capabilities);
    `constructor` names a module function to call instead of the class."""

    def backend() -> type[ChatModel]:
        loaded = importlib.import_module(module)
        if "preset" in fixed:
            chosen: type[ChatModel] = loaded.preset_model_class(fixed["preset"])
            return chosen
        found: type[ChatModel] = getattr(loaded, cls)
        return found

    def factory(model: str | None = None, **options: Any) -> ChatModel:
        chosen = backend()
        _check_options(chosen, options, hidden=set(fixed))
        make: Callable[..., ChatModel] = (
            getattr(importlib.import_module(module), constructor) if constructor else chosen
        )
        instance: ChatModel = make(model, **{**fixed, **options})
        return instance

    factory.__qualname__ = f"{cls}[{', '.join(f'{k}={v!r}' for k, v in fixed.items())}]"
    factory.backend_class = backend  # type: ignore[attr-defined]
    return factory


def _check_options(backend: type[ChatModel], options: dict[str, Any], hidden: set[str]) -> None:
    """Unknown options are a ConfigError naming the valid ones, not a TypeError from __init__."""
    parameters = inspect.signature(backend.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    valid = sorted(
        name
        for name, p in parameters.items()
        if name not in ("self", "model", *hidden)
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )
    unknown = [name for name in options if name not in valid]
    if unknown:  # said as a misspelled option is said anywhere else
        raise UnknownOptionError.of(
            unknown[0],
            valid,
            hint=f"The {backend.__name__} backend's options: {', '.join(valid)}. Sampling settings "
            "(temperature, max_output_tokens, timeout) are config keys, not llm_options.",
        )


def _register_builtins() -> None:
    register_backend("openai", _lazy("chatocr.llm.openai_backend", "OpenAIChatModel"))
    for preset in PRESETS:
        if preset == "openai":
            continue
        # "qianfan" names the qianfan-SDK backend; Qianfan V2 through the openai SDK is "qianfan-openai".
        name = "qianfan-openai" if preset == "qianfan" else preset
        register_backend(name, _lazy("chatocr.llm.openai_backend", "OpenAIChatModel", preset=preset, provider=name))
    register_backend("ernie", _lazy("chatocr.llm.erniebot_backend", "ErnieBotChatModel"))
    register_backend("qianfan", _lazy("chatocr.llm.qianfan_backend", "QianfanChatModel"))
    register_backend("local", _lazy("chatocr.llm.local", "LocalChatModel"))
    register_backend("scripted", _lazy("chatocr.llm.scripted", "ScriptedChatModel", constructor="from_registry"))


def _discover_plugins() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _factories:
            log.warning("Plugin %s tries to replace the built-in backend %r; ignored.", entry.value, entry.name)
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


def backend_class(name: str) -> type[ChatModel] | None:
    """The class behind backend `name`, for its capabilities (key_env, supports_*, needs_server...)
    without credentials or a client; None for a plugin registered as a bare function."""
    _discover_plugins()
    factory = _factories.get(name)
    if factory is None:
        known = ", ".join(available_backends())
        raise ConfigError(f"Unknown LLM provider {name!r}.", hint=f"Known providers: {known}.")
    loader = getattr(factory, "backend_class", None)
    if loader is not None:
        found: type[ChatModel] = loader()
        return found
    if isinstance(factory, type) and issubclass(factory, ChatModel):
        return factory
    return None


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
