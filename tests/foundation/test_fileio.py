"""chatocr.fileio: the one atomic-write helper and the one JSON file cache."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

import pytest

from chatocr.fileio import JSONFileCache, atomic_write, atomic_writer


def test_atomic_write_creates_folders_and_applies_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write(target, "{}\n", mode=0o640)
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 & ~_umask()
    assert os.listdir(target.parent) == ["out.json"]


def test_a_symlink_at_the_target_is_replaced_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    atomic_write(link, b"new")
    assert victim.read_text() == "precious" and not link.is_symlink() and link.read_bytes() == b"new"


def test_a_failure_while_writing_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old")

    def fill(handle: IO[bytes]) -> None:
        handle.write(b"half")
        raise ValueError("checksum mismatch")

    with pytest.raises(ValueError, match="checksum"):
        atomic_writer(target, fill)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.gguf"]


def test_json_cache_round_trip_and_damaged_entries_are_misses(tmp_path: Path) -> None:
    cache = JSONFileCache(tmp_path)
    key = "ab" * 32
    assert cache.get_json(key) is None
    cache.put_json(key, {"pages": [1, 2]})
    assert cache.get_json(key) == {"pages": [1, 2]} and cache.path(key).parent.name == "ab"
    cache.path(key).write_text("{broken")
    assert cache.get_json(key) is None
    assert cache.clear() == 1 and cache.get_json(key) is None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
