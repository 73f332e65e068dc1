"""The OCR cache: hits on the same content and settings, misses on any change, safe across processes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from chatocr.ocr import CachedEngine, OCRCache, OCRDocument

from .helpers import SROIE, FakeEngine, document, rect

RECEIPT = SROIE / "images" / "X00016469612.jpg"


def test_second_read_is_a_hit_and_equal(tmp_path: Path) -> None:
    engine = FakeEngine()
    cached = CachedEngine(engine, OCRCache(tmp_path))
    first = cached.read(RECEIPT)
    second = cached.read(RECEIPT)
    assert engine.calls == 1
    assert not first.cached and second.cached
    assert second.to_dict() == first.to_dict()
    assert second.sha256 == first.sha256 and second.config == engine.config_key()


def test_the_key_is_the_content_not_the_path(tmp_path: Path) -> None:
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(RECEIPT.read_bytes())
    engine = FakeEngine()
    cached = CachedEngine(engine, OCRCache(tmp_path / "cache"))
    cached.read(RECEIPT)
    assert cached.read(copy).cached
    assert cached.read(RECEIPT.read_bytes()).cached
    assert engine.calls == 1
    array = np.zeros((20, 20, 3), dtype=np.uint8)
    array[5:10, 5:10] = 255
    cached.read(array)
    assert cached.read(array.copy()).cached
    assert engine.calls == 2


def test_a_changed_setting_or_engine_misses(tmp_path: Path) -> None:
    cache = OCRCache(tmp_path)
    CachedEngine(FakeEngine(setting="a"), cache).read(RECEIPT)
    other = FakeEngine(setting="b")
    assert not CachedEngine(other, cache).read(RECEIPT).cached
    assert other.calls == 1
    from chatocr.ocr import ImageLimits

    dpi = FakeEngine(setting="a", limits=ImageLimits(pdf_dpi=300))
    assert not CachedEngine(dpi, cache).read(RECEIPT).cached


def test_damaged_entries_are_misses_and_get_rewritten(tmp_path: Path) -> None:
    cache = OCRCache(tmp_path)
    cached = CachedEngine(FakeEngine(), cache)
    cached.read(RECEIPT)
    entries = list(tmp_path.glob("*/*.json"))
    assert len(entries) == 1
    entries[0].write_text("{not json")
    assert not cached.read(RECEIPT).cached
    assert cached.read(RECEIPT).cached
    assert cache.clear() == 1


def test_documents_pass_through_and_the_default_directory_is_the_chatocr_cache() -> None:
    doc = document(("x", rect(0, 0, 9, 9)))
    cached = CachedEngine(FakeEngine())
    assert cached.read(doc) is doc
    assert cached.cache.directory.name == "ocr"
    assert cached.name == "fake" and cached.config_key() == FakeEngine().config_key()


def _worker(args: tuple[str, int]) -> tuple[int, dict[str, object]]:
    directory, seed = args
    engine = FakeEngine()
    cached = CachedEngine(engine, OCRCache(directory))
    results = []
    for round_ in range(20):
        # Everyone reads the same receipt (a race on one key) and a few private arrays.
        results.append(cached.read(RECEIPT))
        value = (seed * 20 + round_) % 200
        array = np.full((16, 16, 3), value, dtype=np.uint8)
        array[0, 0] = value + 50  # not blank
        cached.read(array)
    return engine.calls, results[-1].to_dict()


def test_concurrent_processes_share_the_cache_safely(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outcomes = pool.map(_worker, [(str(tmp_path), seed) for seed in range(8)])
    # Processes that missed at the same moment each ran OCR: same document, own timing.
    receipts = [{k: v for k, v in result.items() if k != "seconds"} for _, result in outcomes]
    assert all(result == receipts[0] for result in receipts)
    assert not list(tmp_path.glob("*/*.tmp")), "temporary files left behind"
    for entry in tmp_path.glob("*/*.json"):
        OCRDocument.from_dict(json.loads(entry.read_bytes()))  # every entry is whole
    # Each process OCR'd the receipt at most once, and the pool as a whole far less than 8 x 20.
    assert sum(calls for calls, _ in outcomes) < 8 * 21


@pytest.mark.slow
def test_rapid_second_run_is_a_cache_hit(tmp_path: Path) -> None:
    from chatocr.ocr import get_ocr_engine

    engine = CachedEngine(get_ocr_engine("rapid"), OCRCache(tmp_path))
    first = engine.read(RECEIPT)
    second = engine.read(RECEIPT)
    assert not first.cached and second.cached and second.text() == first.text()
