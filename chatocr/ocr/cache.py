"""An on-disk OCR cache keyed by the input's content and the engine's configuration.

key = sha256(format version, sha256(input bytes or pixels), engine name, engine.config_key())

so the same image OCR'd by the same engine with the same settings is read once, and any changed
setting (another model, other params, another PDF DPI) misses. Entries are small JSON files
(`<dir>/<key[:2]>/<key>.json`). Writers go through a temporary file in the same directory and
`os.replace`, which is atomic on POSIX and Windows: concurrent processes never see half a file,
and when two of them OCR the same image at once the last write wins with an identical result.
A damaged entry counts as a miss and is overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from chatocr.ocr.base import OCREngine
from chatocr.ocr.images import Source, source_digest
from chatocr.ocr.types import FORMAT_VERSION, OCRDocument
from chatocr.resources import cache_dir

__all__ = ["CachedEngine", "OCRCache"]


class OCRCache:
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        """directory: default `cache_dir("ocr")` ($CHATOCR_CACHE_DIR/ocr or ~/.cache/chatocr/ocr)."""
        self.directory = Path(directory) if directory is not None else cache_dir("ocr")

    @staticmethod
    def key(digest: str, engine: str, config_key: str) -> str:
        material = json.dumps([FORMAT_VERSION, digest, engine, config_key], ensure_ascii=False)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> OCRDocument | None:
        try:
            data = json.loads(self.path(key).read_bytes())
            return replace(OCRDocument.from_dict(data), cached=True)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # damaged or from another format version: recompute and overwrite

    def put(self, key: str, document: OCRDocument) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(document.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        fd, temp = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        removed = 0
        for entry in self.directory.glob("*/*.json"):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
        return removed


class CachedEngine:
    """Wraps an engine with an OCRCache; itself an OCREngine with the same name and config."""

    def __init__(self, engine: OCREngine, cache: OCRCache | None = None) -> None:
        self.engine = engine
        self.cache = cache or OCRCache()
        self.name = engine.name

    def config_key(self) -> str:
        return self.engine.config_key()

    def read(self, source: Source) -> OCRDocument:
        if isinstance(source, OCRDocument):
            return source
        limits = getattr(self.engine, "limits", None)
        digest = source_digest(source, limits)
        if digest is None:
            return self.engine.read(source)
        key = OCRCache.key(digest, self.name, self.engine.config_key())
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        document = self.engine.read(source)
        self.cache.put(key, document)
        return document

    def __repr__(self) -> str:
        return f"<CachedEngine {self.engine!r} in {self.cache.directory}>"
