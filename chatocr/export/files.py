"""Writing an export without following planted symlinks or overwriting what is not ours.

Every file goes through a temporary file in the same directory and `os.replace`: a reader never
sees half a file, and a symlink at the target's name is replaced as a name, never followed. A
target that exists (a file, a link, anything) is refused before anything is written, unless the
caller passes `overwrite`; a directory on the way that is a symlink is refused always.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from chatocr.errors import InputError
from chatocr.fileio import atomic_write

__all__ = ["check_targets", "ensure_dir", "write_bytes"]


def ensure_dir(path: Path) -> Path:
    """`path` as a real directory (created if needed), refusing a symlink."""
    if path.is_symlink():
        raise InputError(
            f"{path} is a symbolic link: chatocr does not write through links.",
            hint="Give --out a real directory.",
        )
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a directory.", hint="Give --out a directory.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_targets(paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse, before writing anything, targets that exist (unless `overwrite`) or are links."""
    existing = []
    for path in paths:
        if path.is_symlink():
            raise InputError(
                f"{path} is a symbolic link: chatocr does not write through links.",
                hint="Remove the link or choose another --out directory.",
            )
        if path.exists():
            if path.is_dir():
                raise InputError(f"{path} is a directory where chatocr writes a file.")
            existing.append(path)
    if existing and not overwrite:
        raise InputError(
            f"{len(existing)} file(s) of a previous export exist, e.g. {existing[0]}.",
            hint="Pass --overwrite to replace them, or choose another --out directory.",
        )


def write_bytes(path: Path, data: bytes) -> None:
    """Write `path` atomically (temporary file + rename); a link at `path` is replaced, not followed."""
    if path.parent.is_symlink():
        raise InputError(f"{path.parent} is a symbolic link: chatocr does not write through links.")
    atomic_write(path, data)  # chatocr.fileio: mkstemp in the folder, fsync, os.replace
