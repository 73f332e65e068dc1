"""OCR engines hand the memory a page's recognition freed back to the system (glibc malloc_trim)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatocr.ocr.base import _malloc_trim, release_freed_memory


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(_malloc_trim() is None, reason="not glibc: release_freed_memory is a no-op")
def test_freed_holes_in_the_heap_are_returned() -> None:
    # 100 KB blocks come from the heap (below glibc's mmap threshold). Freeing every other one
    # leaves holes that free() alone keeps; malloc_trim(0) gives their pages back.
    blocks = [bytearray(100_000) for _ in range(1200)]
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])  # touch every page: resident
    keep = blocks[1::2]
    del blocks
    before = resident_mb()
    release_freed_memory()
    after = resident_mb()
    assert before - after > 30, (before, after)
    assert len(keep) == 600
