"""OCR engines by name: the built-ins, engines registered at run time, and third-party engines
published under the entry-point group `chatocr.ocr`:

    # a plugin's pyproject.toml
    [project.entry-points."chatocr.ocr"]
    myocr = "myocr_plugin:make_engine"     # a callable(**options) -> OCREngine

Built-in factories import their engine module only when called, so `import chatocr` stays light.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Callable
from typing import Any

from chatocr.errors import ConfigError
from chatocr.ocr.base import OCREngine

__all__ = [
    "DEFAULT_OCR_ENGINE",
    "ENTRY_POINT_GROUP",
    "IMAGE_SUFFIXES",
    "TEXT_SUFFIXES",
    "available_ocr_engines",
    "get_ocr_engine",
    "make_engine",
    "register_ocr_engine",
]

ENTRY_POINT_GROUP = "chatocr.ocr"
DEFAULT_OCR_ENGINE = "rapid"
# The files a folder is searched for: what the image engines read (PDF and TIFF page by page), and
# what the `text` engine reads (pre-OCR'd text, a JSON list of lines, JSON Lines).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".pdf"})
TEXT_SUFFIXES = frozenset({".txt", ".json", ".jsonl"})

EngineFactory = Callable[..., OCREngine]


def _rapid(**options: Any) -> OCREngine:
    from chatocr.ocr.rapid import RapidEngine

    return RapidEngine(**options)


def _paddle(**options: Any) -> OCREngine:
    from chatocr.ocr.paddle import PaddleEngine

    return PaddleEngine(**options)


def _text(**options: Any) -> OCREngine:
    from chatocr.ocr.text import TextEngine

    return TextEngine(**options)


def _vlm(**options: Any) -> OCREngine:
    from chatocr.ocr.vlm import VLMEngine

    return VLMEngine(**options)


_BUILTIN: dict[str, EngineFactory] = {"rapid": _rapid, "paddle": _paddle, "text": _text, "vlm": _vlm}
_registered: dict[str, EngineFactory] = {}
_lock = threading.Lock()


def register_ocr_engine(name: str, factory: EngineFactory, *, replace: bool = False) -> None:
    """Make `get_ocr_engine(name, **options)` call `factory(**options)`."""
    if not name or not name.replace("-", "_").isidentifier():
        raise ConfigError(f"Invalid OCR engine name {name!r}: use letters, digits, '-' and '_'.")
    with _lock:
        if not replace and (name in _registered or name in _BUILTIN):
            raise ConfigError(f"An OCR engine named {name!r} already exists.", hint="Pass replace=True to override it.")
        _registered[name] = factory


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_ocr_engines() -> list[str]:
    """Every engine name get_ocr_engine knows (installed or not: a built-in whose extra is missing
    raises MissingDependencyError when asked for)."""
    return sorted({*_BUILTIN, *_registered, *_entry_points()})


def get_ocr_engine(name: str = DEFAULT_OCR_ENGINE, **options: Any) -> OCREngine:
    """A new engine. Runtime registrations win over built-ins, which win over entry points."""
    factory = _registered.get(name) or _BUILTIN.get(name)
    if factory is None:
        entry = _entry_points().get(name)
        if entry is None:
            raise ConfigError(
                f"Unknown OCR engine {name!r}. Known engines: {', '.join(available_ocr_engines())}.",
                hint="Pick one of those, or install the plugin that provides it.",
            )
        try:
            factory = entry.load()
        except Exception as error:  # a broken plugin must not look like a chatocr bug
            raise ConfigError(f"The OCR engine plugin {name!r} ({entry.value}) failed to load: {error}") from error
    try:
        return factory(**options)
    except TypeError as error:
        if "argument" in str(error):
            raise ConfigError(f"Bad options for OCR engine {name!r}: {error}") from error
        raise


def make_engine(spec: str, options: dict[str, Any] | None = None) -> OCREngine:
    """An engine from a spec, as the config and the command line give it: a name, or
    "vlm:provider:model" for the vision-LLM engine with that chat backend (e.g.
    "vlm:dashscope:qwen-vl-max"; or ocr_options {"llm": "provider:model"}, or {"chat": a ChatModel}).
    Every caller builds engines through here."""
    name, _, llm = spec.partition(":")
    options = dict(options or {})
    if name == "vlm" and "chat" not in options:
        llm = llm or options.pop("llm", "")
        if not llm:
            raise ConfigError(
                "The vlm OCR engine needs a vision model.",
                hint='Use ocr="vlm:provider:model", e.g. "vlm:dashscope:qwen-vl-max" (or ocr_options={"llm": ...}).',
            )
        from chatocr.llm.registry import get_chat_model  # the LLM layer only when a VLM is asked for

        options["chat"] = get_chat_model(llm)
    elif llm:
        raise ConfigError(
            f"Only the vlm engine takes a model after ':', got {spec!r}.",
            hint="Give an engine name (rapid, paddle, text) or vlm:provider:model.",
        )
    return get_ocr_engine(name, **options)
