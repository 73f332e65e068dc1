"""Settings of a ChatOCR run, from arguments, a TOML file, a dict, or the environment.

Precedence (later wins): defaults < user config (~/.config/chatocr/config.toml) < project config
(./chatocr.toml) < environment (CHATOCR_*) < explicit arguments. Credentials never live here:
backends read them from the environment (see docs/llm.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chatocr.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ChatOCRConfig", "load_config"]

USER_CONFIG = Path("~/.config/chatocr/config.toml")
PROJECT_CONFIG = Path("chatocr.toml")


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
    concurrency: int = Field(4, ge=1)
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

    @field_validator("min_confidence")
    @classmethod
    def _in_unit_range(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        for number in value.values() if isinstance(value, dict) else [value]:
            if not 0.0 <= number <= 1.0:
                raise ValueError(f"min_confidence must be between 0 and 1, got {number}")
        return value

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
    from chatocr.secrets import CREDENTIAL_OPTIONS

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
    sources: list[str] = []
    if use_files:
        for candidate in (USER_CONFIG, PROJECT_CONFIG):
            data = _read_toml(candidate)
            if data:
                merged.update(data)
                sources.append(str(candidate))
    if path is not None:
        data = _read_toml(Path(path))
        if not data and not Path(path).expanduser().exists():
            raise ConfigError(f"Config file {path} does not exist.")
        merged.update(data)
        sources.append(str(path))
    if use_env:
        for variable, key in _ENV.items():
            value = os.environ.get(variable)
            if value not in (None, ""):
                merged[key] = value
                sources.append(variable)
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ChatOCRConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"Invalid chatocr settings ({', '.join(sources) or 'arguments'}): {problems}",
            hint="See `ChatOCRConfig` in chatocr/config.py for the keys and their types.",
        ) from exc
