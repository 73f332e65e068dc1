"""The documents of a batch run: files and folders given by the user, each known by its path and
the SHA-256 of its content (`DocKey`), and, resuming a per-page run, the pages still to do.

Shared by `chatocr extract`, the service's folder jobs and the Ray runner, so that a folder means
the same documents wherever it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chatocr.errors import InputError
from chatocr.extraction.result import Extraction
from chatocr.fileio import file_sha256
from chatocr.ocr.registry import IMAGE_SUFFIXES, TEXT_SUFFIXES
from chatocr.runs.log import ResultLog
from chatocr.runs.records import DocKey

__all__ = ["collect_inputs", "key_inputs", "pages_to_do"]


def collect_inputs(paths: Sequence[Path], engine: str) -> list[Path]:
    """Files as given; folders searched recursively for what the engine reads. Sorted, de-duplicated."""
    suffixes = TEXT_SUFFIXES if engine == "text" else IMAGE_SUFFIXES
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in file.relative_to(path).parts)
                # Not only regular files: a dangling link or a pipe with a document's name is
                # reported as a failed document rather than silently left out.
                if not file.is_dir() and file.suffix.lower() in suffixes and not hidden:
                    found[file if file.is_symlink() and not file.exists() else file.resolve()] = None
        elif path.exists() or path.is_symlink():
            found[path.resolve() if path.exists() else path.absolute()] = None
        else:
            raise InputError(f"No such file or folder: {path}", hint="Check the path.")
    if not found:
        raise InputError(
            f"No {'text' if engine == 'text' else 'image or PDF'} files in {', '.join(map(str, paths))}.",
            hint=f"Files ending in {', '.join(sorted(suffixes))} are read (with --ocr {engine}).",
        )
    return list(found)


def key_inputs(paths: Sequence[Path]) -> tuple[dict[str, DocKey], dict[str, Extraction]]:
    """Each input's (path, sha256); a file that cannot be read becomes a failed result instead of
    stopping the run (its sha256 is empty, so it is retried by the next run)."""
    keyed: dict[str, DocKey] = {}
    unreadable: dict[str, Extraction] = {}
    for path in paths:
        try:
            keyed[str(path)] = (str(path), file_sha256(path))
        except InputError as error:
            keyed[str(path)] = (str(path), "")
            unreadable[str(path)] = Extraction.failed(str(path), error)
    return keyed, unreadable


def pages_to_do(paths: Sequence[Path], keyed: dict[str, DocKey], log: ResultLog | None) -> dict[Path, set[int] | None]:
    """One result per page: for each file not complete in the results file, the pages still to do
    (None: all of them)."""
    todo: dict[Path, set[int] | None] = {}
    for path in paths:
        key = keyed[str(path)]
        done = log.done_pages(key) if log is not None else set()
        count = log.page_counts.get(key) if log is not None else None
        if not done:
            todo[path] = None
        elif count is None:  # pages done but their count unknown (an edited file): do the rest
            todo[path] = {n for n in range(1, max(done) + 2) if n not in done} or None
        elif len(done) < count:
            todo[path] = set(range(1, count + 1)) - done
    return todo
