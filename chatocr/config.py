"""Settings of a ChatOCR run, from arguments, a TOML file, a dict, or the environment.

Precedence (later wins): defaults < user config (~/.config/chatocr/config.toml) < project config
(./chatocr.toml) < environment (CHATOCR_*) < explicit arguments. Credentials never live here:
backends read them from the environment (see docs/llm.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chatocr.errors import ChatOCRError, ConfigError, UnknownOptionError
from chatocr.secrets import CREDENTIAL_OPTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ChatOCRConfig", "check_accept", "check_concurrency", "check_min_confidence", "load_config"]

USER_CONFIG = Path("~/.config/chatocr/config.toml")
PROJECT_CONFIG = Path("chatocr.toml")


# The checks of values a call may also give (ExtractionRequest): one wording from every path.
def check_concurrency(concurrency: int) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        # a semaphore of 0 would wait forever
        raise ConfigError(
            f"concurrency must be at least 1, got {concurrency!r}.",
            hint="Use 1 for one document at a time.",
        )
    return concurrency


def check_min_confidence(value: float | Mapping[str, float]) -> float | Mapping[str, float]:
    numbers = value.values() if isinstance(value, Mapping) else [value]
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0.0 <= number <= 1.0:
            raise ConfigError(
                f"min_confidence must be between 0 and 1, got {number!r}.",
                hint='e.g. 0.8, or one per field: {"total": 0.95}.',
            )
    return value


def check_accept(threshold: float | None, precision: float | None) -> None:
    """The review queue's rule: a threshold in [0, 1] or a precision in (0, 1] (docs/trust.md)."""
    for name, value, low_open in (("accept_threshold", threshold, False), ("accept_precision", precision, True)):
        if value is None:
            continue
        number = not isinstance(value, bool) and isinstance(value, (int, float))
        if not number or not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
            raise ConfigError(
                f"{name} must be {'in (0, 1]' if low_open else 'between 0 and 1'}, got {value!r}.",
                hint="e.g. 0.99 (a share: 99 % of the accepted values right)"
                if low_open
                else "e.g. 0.95 (a calibrated confidence)",
            )


class ChatOCRConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    llm: str = Field("local", description="provider[:model], e.g. local, ernie:ernie-4.0, dashscope:qwen-plus")
    llm_options: dict[str, Any] = Field(default_factory=dict)
    ocr: str = Field("rapid", description="OCR engine: rapid, paddle, text, vlm")
    ocr_options: dict[str, Any] = Field(default_factory=dict)
    ocr_cache: bool = True
    ocr_cache_dir: str | None = None
    scenario_dirs: list[str] = Field(default_factory=list)
    prompt_dirs: list[str] = Field(default_factory=list)
    # Conversation manager.
    packing: Literal["single", "pairs", "packed"] = "packed"
    restate_every: int | None = Field(None, ge=1)
    # At most this many examples (None or "all": as many as the budget allows). Two focused examples cost
    # 0.58x the tokens of a prompt holding every example whole (bench_pipeline); see
    # docs/evaluation.md for the accuracy of 0, 1, 2, 3 and all examples.
    max_examples: int | None = Field(2, ge=0)
    # "auto": "stable" for the in-process local model (its prompt-prefix cache then serves every
    # document that gets the same examples), "relevance" for services.
    order: Literal["auto", "relevance", "stable"] = "auto"
    # Focus the prompt on the keys asked: scenario rules about other fields are left out, and each
    # example's text is cut to the lines holding the requested answers (and their neighbours).
    focus: bool = True
    # Routing.
    classify: bool = True
    # Extraction loop.
    max_steps: int = Field(3, ge=1)
    max_tokens: int = Field(40000, ge=100)
    temperature: float = 0.01
    max_output_tokens: int = Field(768, ge=16)
    timeout: float = Field(300.0, gt=0)
    concurrency: int = 4
    # One result per PDF page / TIFF frame in `chatocr extract` (its --per-page); the API has extract_pages.
    per_page: bool = False
    # Accuracy levers (docs/evaluation.md measures each; `chatocr eval --strategy NAME` turns one on or off).
    # Return a grounded value as the page's own text for it, the model's answer kept beside.
    snap: bool = True
    # Re-ask a missing, ungrounded or invalid required field alone, as a choice among numbered lines.
    field_reask: bool = False
    # Constrain text fields (by the local model's grammar) to strings built from the document's lines.
    extractive: bool = False
    # Weight of layout similarity (where rows and labels sit) beside text similarity in ranking examples.
    example_layout: float = Field(0.0, ge=0.0, le=1.0)
    # Decide fields whose meaning is position (start/destination station, buyer/seller) from the boxes.
    positions: bool = False
    # A grounded value below this confidence (OCR line confidence x match score) gets status
    # low_confidence and is left out of trusted_values() and typed data; per field as a table.
    min_confidence: float | dict[str, float] = Field(0.0)
    # The memory of reviewed documents (chatocr.memory, docs/review.md): each document's examples come
    # from its scenario's and from the documents reviewed for that scenario, ranked together.
    # memory_dir None: the per-user data folder ($CHATOCR_DATA_DIR/memory, ~/.local/share/chatocr/memory).
    # `chatocr eval` turns it off unless given --memory DIR: a measurement must not depend on this machine.
    memory: bool = True
    memory_dir: str | None = None
    # Examples kept per scenario; adding beyond it removes the least recently used (memory.DEFAULT_CAP).
    memory_cap: int = Field(10_000, ge=1)
    # The review queue (docs/trust.md): a field is `accepted` when its calibrated confidence is at the
    # threshold the scenario's calibration held out at this precision, else `review`. A scenario's
    # own accept_precision/accept_threshold (YAML), then a call's, win over these.
    accept_precision: float | None = 0.99
    accept_threshold: float | None = None
    # A second, cheap look (one short call) at grounded fields the model wrote with a probability below
    # second_look_below: the field alone as a choice among numbered texts of the page (docs/trust.md:
    # off: measured on 20 shared documents, its verdicts were no better than a coin).
    second_look: bool = False
    second_look_below: float = Field(0.9, gt=0.0, le=1.0)

    @field_validator("min_confidence")
    @classmethod
    def _in_unit_range(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        check_min_confidence(value)
        return value

    @field_validator("accept_precision", "accept_threshold", mode="before")
    @classmethod
    def _accept_off(cls, value: Any) -> Any:
        """ "none" / "off" mean no such rule (from the environment or a TOML file)."""
        if isinstance(value, str) and value.strip().lower() in ("none", "off", ""):
            return None
        return value

    @field_validator("accept_precision")
    @classmethod
    def _precision(cls, value: float | None) -> float | None:
        check_accept(None, value)
        return value

    @field_validator("accept_threshold")
    @classmethod
    def _threshold(cls, value: float | None) -> float | None:
        check_accept(value, None)
        return value

    @field_validator("concurrency")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        return check_concurrency(value)

    @field_validator("max_examples", "restate_every", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        """ "all" / "none" / "off" mean no limit (from the environment or a TOML file)."""
        if isinstance(value, str) and value.strip().lower() in ("all", "none", "off", ""):
            return None
        return value


_ENV = {
    "CHATOCR_LLM": "llm",
    "CHATOCR_OCR": "ocr",
    "CHATOCR_PACKING": "packing",
    "CHATOCR_RESTATE_EVERY": "restate_every",
    "CHATOCR_MAX_EXAMPLES": "max_examples",
    "CHATOCR_ORDER": "order",
    "CHATOCR_CLASSIFY": "classify",
    "CHATOCR_FOCUS": "focus",
    "CHATOCR_MAX_STEPS": "max_steps",
    "CHATOCR_MAX_TOKENS": "max_tokens",
    "CHATOCR_CONCURRENCY": "concurrency",
    "CHATOCR_OCR_CACHE": "ocr_cache",
    "CHATOCR_PER_PAGE": "per_page",
    "CHATOCR_MEMORY": "memory",
    "CHATOCR_MEMORY_DIR": "memory_dir",
    "CHATOCR_ACCEPT_PRECISION": "accept_precision",
    "CHATOCR_ACCEPT_THRESHOLD": "accept_threshold",
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.expanduser().open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="Fix the config file's syntax.") from exc
    # Accept either top-level keys or a [chatocr] table.
    settings = dict(data.get("chatocr", data))
    _refuse_credentials(settings, path)
    return settings


def _refuse_credentials(settings: dict[str, Any], path: Path) -> None:
    """Credentials never come from config files (they are often world-readable and committed)."""
    for section in ("llm_options", "ocr_options"):
        options = settings.get(section)
        found = sorted(k for k in options if str(k).lower() in CREDENTIAL_OPTIONS) if isinstance(options, dict) else []
        if found:
            raise ConfigError(
                f"{path}: {section} holds a credential ({', '.join(found)}); credentials are never read from "
                "config files.",
                hint="Remove it and put the key in the keys file (~/.config/chatocr/keys.toml, mode 0600) "
                "or the environment, under the variable the backend reads (see `chatocr doctor`).",
            )


def load_config(
    overrides: dict[str, Any] | None = None,
    *,
    path: str | Path | None = None,
    use_files: bool = True,
    use_env: bool = True,
) -> ChatOCRConfig:
    """Build the config from files, environment and `overrides` (None values are ignored)."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}  # where each setting came from: a file or a variable ("" for arguments)

    def take(values: dict[str, Any], source: str) -> None:
        merged.update(values)
        origin.update(dict.fromkeys(values, source))

    if use_files:
        for candidate in (USER_CONFIG, PROJECT_CONFIG):
            take(_read_toml(candidate), str(candidate))
    if path is not None:
        data = _read_toml(Path(path))
        if not data and not Path(path).expanduser().exists():
            raise ConfigError(f"Config file {path} does not exist.")
        take(data, str(path))
    if use_env:
        for variable, key in _ENV.items():
            value = os.environ.get(variable)
            if value not in (None, ""):
                take({key: value}, variable)
    take({k: v for k, v in (overrides or {}).items() if v is not None}, "")
    for key in merged:  # a misspelled setting is named with the nearest one, as a misspelled option is
        if key not in ChatOCRConfig.model_fields:
            raise _from(UnknownOptionError.of(key, ChatOCRConfig.model_fields), origin[key])
    try:
        return ChatOCRConfig.model_validate(merged)
    except ChatOCRError as exc:  # a value a call may also give: the same words as there
        setting = next((key for key in merged if exc.message.startswith(f"{key} ")), "")
        raise _from(exc, origin.get(setting, "")) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        sources = sorted({source for source in origin.values() if source})
        raise ConfigError(
            f"Invalid chatocr settings ({', '.join(sources) or 'arguments'}): {problems}",
            hint="See `ChatOCRConfig` in chatocr/config.py for the keys and their types.",
        ) from exc


def _from(error: ChatOCRError, source: str) -> ChatOCRError:
    """`error`, its message followed by the file or variable the setting came from (if any)."""
    return type(error)(f"{error.message} (in {source})", hint=error.hint) if source else error
