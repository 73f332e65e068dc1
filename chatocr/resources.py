"""Where chatocr finds its built-in prompts and scenarios, the user's own directories, and its cache.

In a source checkout the built-ins are the repository's top-level `prompts/` and `scenarios/`
(the layout the user asked for); in an installed wheel they are copied to `chatocr/_builtin/`.
Users add directories with arguments or the environment (`CHATOCR_PROMPT_PATH`,
`CHATOCR_SCENARIO_PATH`, os.pathsep-separated); later directories override earlier ones.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["builtin_prompts_dir", "builtin_scenarios_dir", "cache_dir", "data_dir", "user_dirs"]

_PACKAGE = Path(__file__).resolve().parent


def _builtin(name: str) -> Path:
    installed = _PACKAGE / "_builtin" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"chatocr's built-in {name}/ directory is missing (looked in {installed} and {checkout}); reinstall chatocr."
    )


def builtin_prompts_dir() -> Path:
    return _builtin("prompts")


def builtin_scenarios_dir() -> Path:
    return _builtin("scenarios")


def user_dirs(variable: str) -> list[Path]:
    """Directories named in an os.pathsep-separated environment variable, in order."""
    value = os.environ.get(variable, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def cache_dir(*parts: str) -> Path:
    """chatocr's cache: $CHATOCR_CACHE_DIR, else $XDG_CACHE_HOME/chatocr, else ~/.cache/chatocr."""
    root = os.environ.get("CHATOCR_CACHE_DIR")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "chatocr"
    return base.joinpath(*parts)


def data_dir(*parts: str) -> Path:
    """chatocr's data, which unlike the cache is not recomputed when lost (the memory of reviewed
    documents): $CHATOCR_DATA_DIR, else $XDG_DATA_HOME/chatocr, else ~/.local/share/chatocr."""
    root = os.environ.get("CHATOCR_DATA_DIR")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "chatocr"
    return base.joinpath(*parts)
