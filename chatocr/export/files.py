"""Writing an export without following planted symlinks or overwriting what is not ours.

Every file goes through chatocr.fileio's one writer (a temporary file in the same directory and
`os.replace`, known secrets masked): a reader never sees half a file. Before anything is written,
every target is checked: one that is not a regular file (a symlink, a directory, a FIFO, a device)
is refused always, and one that exists is refused unless the caller passes `overwrite`; an output
folder that is a symlink is refused always.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from chatocr.errors import InputError, OutputPathError
from chatocr.fileio import atomic_write, check_output_path

__all__ = ["check_targets", "ensure_dir", "write_files"]


def ensure_dir(path: Path) -> Path:
    """`path` as a real directory (created if needed), refusing a symlink."""
    if path.is_symlink():
        raise OutputPathError(
            f"{path} is a symbolic link: chatocr does not write through links.",
            hint="Give --out a real directory.",
        )
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} exists and is not a directory.", hint="Give --out a directory.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_targets(paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse, before writing anything, targets that are not regular files (chatocr.fileio) or
    that exist, unless `overwrite`."""
    existing = []
    for path in paths:
        check_output_path(path)
        if path.exists():
            existing.append(path)
    if existing and not overwrite:
        raise InputError(
            f"{len(existing)} file(s) of a previous export exist, e.g. {existing[0]}.",
            hint="Pass --overwrite to replace them, or choose another --out directory.",
        )


def write_files(out_dir: Path, files: Mapping[str, str | bytes], *, overwrite: bool) -> None:
    """Write `files` (name relative to `out_dir` -> text or bytes) into `out_dir`, every target
    checked first: nothing is written when one is refused."""
    ensure_dir(out_dir)
    folders = {(out_dir / name).parent for name in files} - {out_dir}
    for folder in sorted(folders):
        ensure_dir(folder)
    targets = [out_dir / name for name in files]
    check_targets(targets, overwrite)
    for target, data in zip(targets, files.values(), strict=True):
        atomic_write(target, data)  # chatocr.fileio: checked again, secrets masked, temp file + rename
