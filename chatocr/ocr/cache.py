"""An on-disk OCR cache keyed by the input's content and the engine's configuration.

key = sha256(format version, sha256(input bytes or pixels), engine name, engine.config_key())

so the same image OCR'd by the same engine with the same settings is read once, and any changed
setting (another model, other params, another PDF DPI) misses. Entries are small JSON files
(`<dir>/<key[:2]>/<key>.json`), a `chatocr.fileio.JSONFileCache`: written atomically (temp file
+ `os.replace`), so concurrent processes never see half a file, and when two of them OCR the same
image at once the last write wins with an identical result. A damaged entry counts as a miss and
is overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

from chatocr.fileio import JSONFileCache
from chatocr.ocr.base import OCREngine
from chatocr.ocr.images import Source, source_digest
from chatocr.ocr.types import FORMAT_VERSION, OCRDocument
from chatocr.resources import cache_dir

__all__ = ["CachedEngine", "OCRCache"]


class OCRCache(JSONFileCache):
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        """directory: default `cache_dir("ocr")` ($CHATOCR_CACHE_DIR/ocr or ~/.cache/chatocr/ocr)."""
        super().__init__(Path(directory) if directory is not None else cache_dir("ocr"))

    @staticmethod
    def key(digest: str, engine: str, config_key: str) -> str:
        material = json.dumps([FORMAT_VERSION, digest, engine, config_key], ensure_ascii=False)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def get(self, key: str) -> OCRDocument | None:
        data = self.get_json(key)
        if data is None:
            return None
        try:
            return replace(OCRDocument.from_dict(data), cached=True)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # damaged or from another format version: recompute and overwrite

    def put(self, key: str, document: OCRDocument) -> None:
        """Store an entry; a cache that cannot be written (full disk, read-only) only costs speed."""
        with contextlib.suppress(OSError):
            self.put_json(key, document.to_dict())


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
