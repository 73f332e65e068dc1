"""Writing files safely: the one atomic-write helper and the one content-addressed JSON cache.

`atomic_write(path, data)` is how chatocr replaces a whole file (OCR and evaluation cache entries,
`extract --out x.json`, the rewrite of a results file, the assembled local model):

- the temporary file is created with `mkstemp` in the target's own directory: O_CREAT | O_EXCL,
  so a symlink planted at a predictable temporary name is never followed (there is none to plant:
  the name is random) and the rename stays on one file system;
- the data is fsync'ed, then `os.replace`d over the target: readers see the old or the new file,
  never half of one. A symlink at the target itself is replaced, its target is never written;
- on any error the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from chatocr.errors import InputError

__all__ = ["JSONFileCache", "atomic_write", "atomic_writer", "file_sha256", "fsync_dir"]


def file_sha256(path: Path) -> str:
    """SHA-256 of a regular file's content: how a document is known across runs (results files,
    exports, the viewer). InputError when it cannot be read (or is a pipe or a device, which
    opening with O_NONBLOCK lets us find out without waiting on it)."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InputError(f"{path} is not a regular file.", hint="Give image, PDF or text files.")
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as error:
        raise InputError(
            f"Cannot read {path}: {error.strerror or error}.",
            hint="Check that the file exists and that you may read it.",
        ) from None
    return digest.hexdigest()


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - not possible on every platform
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def atomic_writer(path: str | os.PathLike[str], fill: Callable[[IO[bytes]], object], *, mode: int = 0o644) -> None:
    """Replace `path` with what `fill(handle)` writes into a binary handle, atomically.

    `mode` is applied as given (masked by the umask), since mkstemp creates files 0600."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, mode & ~umask)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(target.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` (str is written as UTF-8), atomically."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    atomic_writer(path, lambda handle: handle.write(payload), mode=mode)


class JSONFileCache:
    """Small JSON files keyed by a hex digest: `<dir>/<key[:2]>/<key>.json`, written atomically.

    A missing, damaged or unreadable entry is a miss (None), so the caller recomputes and
    overwrites it. Concurrent writers of the same key write the same content; the last wins."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get_json(self, key: str) -> Any | None:
        try:
            return json.loads(self.path(key).read_bytes())
        except (OSError, ValueError, RecursionError):
            return None

    def put_json(self, key: str, data: Any) -> None:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        atomic_write(self.path(key), payload)

    def entries(self) -> Iterable[Path]:
        return self.directory.glob("*/*.json")

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        removed = 0
        for entry in self.entries():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
        return removed
