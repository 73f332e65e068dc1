"""API keys for the command line: from the environment, or from a keys file only its owner can read.

The keys file (default `~/.config/chatocr/keys.toml`, or `$CHATOCR_KEYS_FILE`) maps environment
variable names to values, exactly the names the backends read:

    DASHSCOPE_API_KEY = "sk-..."
    EB_ACCESS_TOKEN = "..."

It must have mode 0600 (no group or world bits): a readable one is refused with the `chmod`
command that fixes it, before any value is read. A variable already set in the environment wins.
Values are never printed: `chatocr doctor` says only "set" or "not set".
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from chatocr.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["KEYS_FILE_ENV", "keys_file_path", "load_keys_file"]

KEYS_FILE_ENV = "CHATOCR_KEYS_FILE"
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def keys_file_path() -> Path:
    configured = os.environ.get(KEYS_FILE_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".config") / "chatocr" / "keys.toml"


def _check_private(path: Path) -> None:
    info = path.stat()
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"The keys file {path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            "chatocr will not use it.",
            hint=f"Make it private: chmod 600 {path}",
        )
    if os.name == "posix" and hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(
            f"The keys file {path} belongs to another user; chatocr will not use it.",
            hint="Use a keys file you own, with mode 0600.",
        )


def load_keys_file(path: Path | None = None, *, apply: bool = True) -> list[str]:
    """The variable names the keys file defines (none when it does not exist). With `apply`,
    each one not already set in the environment is set from the file."""
    path = path or keys_file_path()
    if not path.exists():
        return []
    _check_private(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # tomllib's messages give the position, never the text: safe to show.
        where = f": {exc}" if isinstance(exc, tomllib.TOMLDecodeError) else ""
        raise ConfigError(
            f"The keys file {path} is not valid TOML{where}.", hint='Write one line per key: NAME = "value".'
        ) from None
    names = []
    for name, value in data.items():
        if not _NAME.match(name) or not isinstance(value, str):
            raise ConfigError(
                f"The keys file {path}: {name!r} must be an UPPER_CASE name with a string value.",
                hint='Write one line per key: DASHSCOPE_API_KEY = "sk-..."',
            )
        names.append(name)
        if apply and not os.environ.get(name):
            os.environ[name] = value
    return names
