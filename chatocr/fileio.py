"""Reading and writing files safely: the one writer every output goes through, the one reader of
JSON that people or other programs may have written, the one content-addressed JSON cache.

`atomic_write(path, data)` is how chatocr writes a whole file (results JSON and values, the
workbook, the HTML report, exports, drawings, scenario YAML, evaluation reports, OCR and
evaluation cache entries, the rewrite of a results file):

- the target is checked first (`check_output_path`): it must be absent or a regular file. A FIFO,
  a device, a directory or a symlink is refused with `OutputPathError` before anything is written
  (entries of chatocr's own cache folder, or `replace_any=True`, have whatever is at their name
  replaced as a name, never followed);
- known secrets (`chatocr.secrets`) are masked in text, so no file chatocr writes holds an API key
  a document or a model echoed, whatever the format;
- the temporary file is created with `mkstemp` in the target's own directory: O_CREAT | O_EXCL,
  so a symlink planted at a predictable temporary name is never followed (there is none to plant:
  the name is random) and the rename stays on one file system;
- the data is fsync'ed, then `os.replace`d over the target: readers see the old or the new file,
  never half of one; on any error the temporary file is removed and the target is untouched.

`parse_json`, `read_json` and `read_json_lines` read JSON chatocr did not necessarily write
(results files, label files, JSON Schemas): nesting deeper than MAX_JSON_DEPTH or a number longer
than MAX_JSON_NUMBER_CHARS is a `DataFileError` naming the file and line, never a RecursionError
or a ValueError from deep inside `json`; a JSON Lines file gives each line's value or its error,
so one bad line never loses the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from chatocr.errors import DataFileError, InputError, OutputPathError
from chatocr.resources import cache_dir
from chatocr.secrets import redact

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_JSON_NUMBER_CHARS",
    "JSONFileCache",
    "atomic_write",
    "atomic_writer",
    "check_output_path",
    "file_sha256",
    "fsync_dir",
    "json_depth",
    "masked_bytes",
    "parse_json",
    "read_json",
    "read_json_lines",
]

# JSON chatocr reads from files: a results record nests about 10 levels (fields, parts, evidence,
# box, point), a JSON Schema or a label file fewer; 64 leaves room and stops a hostile file long
# before `json` or any recursive walk runs out of stack.
MAX_JSON_DEPTH = 64
# No number in a document, a label or a schema needs more characters; a 5,000-digit integer would
# otherwise be Python's own int-conversion ValueError.
MAX_JSON_NUMBER_CHARS = 100


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


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a path chatocr cannot replace with a whole file: one that exists
    and is not a regular file (a symlink, a directory, a FIFO, a device, a socket), or whose folder
    is a file. `OutputPathError` (a usage error) naming the path; nothing is written or opened."""
    target = Path(path)
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        parent = target.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise OutputPathError(
                f"Cannot write {target}: {parent} is not a directory.", hint="Give a path whose folders are folders."
            ) from None
        return
    except NotADirectoryError:
        parent = next((p for p in reversed(target.parents) if p.exists() and not p.is_dir()), target.parent)
        raise OutputPathError(
            f"Cannot write {target}: {parent} is not a directory.", hint="Give a path whose folders are folders."
        ) from None
    except OSError as error:
        raise OutputPathError(f"Cannot write {target}: {error.strerror or error}.") from None
    if not stat.S_ISREG(mode):
        raise OutputPathError(
            f"{target} is {_kind_of(mode)}: chatocr writes whole files only to a regular file or a new name, "
            "and never through a link.",
            hint="Give the path of a new file (to print JSON, leave out --out).",
        )


def _in_own_cache(target: Path) -> bool:
    """Whether `target` lies in chatocr's own cache folder (chatocr.resources.cache_dir)."""
    try:
        target.absolute().relative_to(cache_dir().absolute())
    except ValueError:
        return False
    return True


def atomic_writer(
    path: str | os.PathLike[str],
    fill: Callable[[IO[bytes]], object],
    *,
    mode: int = 0o644,
    replace_any: bool | None = None,
) -> None:
    """Replace `path` with what `fill(handle)` writes into a binary handle, atomically, after
    `check_output_path`; unless `replace_any` (default: whether `path` is in chatocr's own cache
    folder), where whatever is at the name is replaced as a name, never followed: a cache entry is
    chatocr's, not a user's.

    `mode` is applied as given (masked by the umask), since mkstemp creates files 0600."""
    target = Path(path)
    if not (_in_own_cache(target) if replace_any is None else replace_any):
        check_output_path(target)
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


def masked_bytes(data: bytes | str) -> bytes:
    """What a file of `data` holds once known secrets are masked: text (str, or bytes that are
    UTF-8 text) gets `chatocr.secrets.redact`; binary data (a PNG, a workbook's zip) is written as
    is, its text masked where it was made (drawing labels, workbook cells)."""
    if isinstance(data, str):
        return redact(data).encode("utf-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    masked = redact(text)
    return data if masked == text else masked.encode("utf-8")


def atomic_write(
    path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644, replace_any: bool | None = None
) -> None:
    """Replace `path` with `data` (str is written as UTF-8), known secrets masked, atomically."""
    payload = masked_bytes(data)
    atomic_writer(path, lambda handle: handle.write(payload), mode=mode, replace_any=replace_any)


# -- reading JSON people and other programs wrote -------------------------------------------------


def _bounded_number(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(token: str) -> Any:
        if len(token) > MAX_JSON_NUMBER_CHARS:
            raise ValueError(f"a number of {len(token)} characters (at most {MAX_JSON_NUMBER_CHARS})")
        return kind(token)

    return parse


_PARSE_INT = _bounded_number(int)
_PARSE_FLOAT = _bounded_number(float)


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply lists and objects nest in `value`, counted iteratively (no stack to exhaust) and
    not beyond `limit` + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if level <= limit:
                stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"the member {name!r} is given twice (which one was meant?)")
            seen.add(name)
    return value


def parse_json(text: str | bytes, where: str, *, unique_members: bool = False) -> Any:
    """`text` as JSON, bounded (module docstring); DataFileError naming `where` (a file, file:line).
    unique_members: an object naming a member twice is an error (JSON would keep the last silently)."""
    hook = _unique_members if unique_members else None
    try:
        value = json.loads(text, parse_int=_PARSE_INT, parse_float=_PARSE_FLOAT, object_pairs_hook=hook)
    except RecursionError:
        raise DataFileError(f"{where}: the JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels).") from None
    except json.JSONDecodeError as error:
        at = f"line {error.lineno}, column {error.colno}"
        raise DataFileError(f"{where}: not valid JSON ({error.msg} at {at}).") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise DataFileError(f"{where}: not readable JSON: {error}.") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise DataFileError(f"{where}: the JSON is nested too deeply (more than {MAX_JSON_DEPTH} levels).")
    return value


def _read_text(path: Path, max_bytes: int | None) -> str:
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DataFileError(
                f"{path} is {size:,} bytes, over the limit of {max_bytes:,}.",
                hint="Give a smaller file; the limit keeps a bad file from taking minutes.",
            )
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}).") from None
    except OSError as error:
        raise DataFileError(
            f"Cannot read {path}: {error.strerror or error}.",
            hint="Check that the file exists and that you may read it.",
        ) from None


def read_json(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Any:
    """The JSON value of a whole file (a label file, a JSON Schema, `--format json` results)."""
    target = Path(path)
    return parse_json(_read_text(target, max_bytes), str(target))


def read_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every non-blank line of a JSON Lines file; a line that is not
    bounded JSON gives its DataFileError as the value, so the caller leaves it out and goes on. A
    file that cannot be read at all raises DataFileError."""
    target = Path(path)
    for number, line in enumerate(_read_text(target, None).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_json(line, f"{target}:{number}")
        except DataFileError as error:
            yield number, error


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
        atomic_write(self.path(key), payload, replace_any=True)  # our cache: a planted link is replaced

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
