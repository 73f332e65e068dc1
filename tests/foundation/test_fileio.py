"""chatocr.fileio: the one writer (checked target, secrets masked, atomic), the one bounded JSON
reader and the one JSON file cache."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

import pytest

from chatocr.errors import DataFileError, OutputPathError
from chatocr.fileio import (
    MAX_JSON_DEPTH,
    JSONFileCache,
    atomic_write,
    atomic_writer,
    check_output_path,
    parse_json,
    read_json,
    read_json_lines,
)
from chatocr.secrets import Secret


def test_atomic_write_creates_folders_and_applies_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write(target, "{}\n", mode=0o640)
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 & ~_umask()
    assert os.listdir(target.parent) == ["out.json"]


def test_a_symlink_at_the_target_is_refused_before_writing_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    with pytest.raises(OutputPathError, match="symbolic link"):
        atomic_write(link, b"new")
    assert victim.read_text() == "precious" and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["out.json", "victim"]  # no temporary file either


def test_a_cache_entry_replaces_whatever_is_at_its_name_never_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "entry.json"
    link.symlink_to(victim)
    atomic_write(link, b"new", replace_any=True)
    assert victim.read_text() == "precious" and not link.is_symlink() and link.read_bytes() == b"new"


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "dangling link"])
def test_a_target_that_is_not_a_regular_file_is_refused_before_any_work(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "out.xlsx"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "dangling link":
        target.symlink_to(tmp_path / "nowhere")
    else:
        target = Path("/dev/null")
    called = []
    with pytest.raises(OutputPathError) as info:
        atomic_writer(target, lambda handle: called.append(handle))
    assert called == [] and str(target) in str(info.value) and info.value.hint
    if kind != "device":
        assert sorted(os.listdir(tmp_path)) == ["out.xlsx"]


def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="afile is not a directory"):
        check_output_path(tmp_path / "afile" / "out.json")
    check_output_path(tmp_path / "new" / "folders" / "out.json")  # absent folders are created later


def test_every_text_written_has_known_secrets_masked(tmp_path: Path) -> None:
    key = "sk-fileio-SECRET-42424242"
    Secret(key)
    atomic_write(tmp_path / "a.txt", f"text {key} end")
    atomic_write(tmp_path / "b.json", f'{{"v": "{key}"}}'.encode())
    png = b"\x89PNG\r\n\x1a\n" + key.encode()  # binary: written as is (its text is masked where made)
    atomic_write(tmp_path / "c.png", png)
    assert (tmp_path / "a.txt").read_text() == "text *** end"
    assert (tmp_path / "b.json").read_text() == '{"v": "***"}'
    assert (tmp_path / "c.png").read_bytes() == png


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


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a":' * 20_000, "nested too deeply"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "nested too deeply"),
        ("1" * 5000, "a number of 5000 characters"),
        ('{"x": ' + "9" * 400 + ".5}", "a number of 402 characters"),
        ("{broken", "not valid JSON"),
    ],
)
def test_hostile_json_is_a_typed_error_naming_where(text: str, said: str) -> None:
    with pytest.raises(DataFileError, match=said) as info:
        parse_json(text, "labels/a.json:3")
    assert "labels/a.json:3" in str(info.value)


def test_a_member_given_twice_is_refused_when_asked_and_kept_last_otherwise() -> None:
    """Request bodies (the service) ask for unique members: which of two `text`s was meant?"""
    nested = '{"a": 1, "b": {"c": 2, "c": 3}}'
    with pytest.raises(DataFileError, match="'c' is given twice") as info:
        parse_json(nested, "request body", unique_members=True)
    assert "request body" in str(info.value)
    assert parse_json(nested, "file") == {"a": 1, "b": {"c": 3}}  # files: JSON's own rule, as before
    assert parse_json('{"a": [{"b": 1}, {"b": 2}]}', "body", unique_members=True) == {"a": [{"b": 1}, {"b": 2}]}


def test_json_lines_give_each_bad_line_its_error_and_the_others_their_value(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n' + "[" * 5000 + "\n\n" + '{"b": ' + "7" * 5000 + "}\n" + '{"c": 3}\n')
    got = list(read_json_lines(path))
    assert [n for n, _ in got] == [1, 2, 4, 5]
    assert got[0][1] == {"a": 1} and got[3][1] == {"c": 3}
    assert isinstance(got[1][1], DataFileError) and f"{path}:2" in str(got[1][1])
    assert isinstance(got[2][1], DataFileError) and f"{path}:4" in str(got[2][1])


def test_a_json_file_over_its_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text('{"a": "' + "x" * 2000 + '"}')
    with pytest.raises(DataFileError, match="over the limit of 1,000"):
        read_json(path, max_bytes=1000)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(DataFileError, match="not UTF-8"):
        read_json(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
