"""The review file: corrections appended one line each, folded into each field's current review;
nothing is lost when two writers correct the same field; undo; a line that is not ours is
reported with its number and the rest loaded; links are never written through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatocr.errors import UsageError
from chatocr.review.events import ReviewLog, new_event, review_path_for
from chatocr.secrets import Secret

DOC = ("/scans/a.jpg", "a" * 64, None)
OTHER = ("/scans/a.pdf", "b" * 64, 2)
LINE = {"id": "p0-l3", "text": "TOTAL 9.90", "box": [[0, 0], [10, 0], [10, 5], [0, 5]], "page": 0}


def test_review_file_sits_beside_the_results(tmp_path: Path) -> None:
    assert review_path_for(tmp_path / "results.jsonl") == tmp_path / "results.review.jsonl"
    assert review_path_for(tmp_path / "run.json") == tmp_path / "run.review.jsonl"


def test_events_fold_into_the_current_review(tmp_path: Path) -> None:
    log = ReviewLog(tmp_path / "r.review.jsonl")
    fix = new_event(DOC, "total", "fix", old="9.00", new="9.90", lines=[LINE], reviewer="ann")
    state = log.append([fix, new_event(DOC, "date", "accept", old="1/1/2020", new="1/1/2020")])
    current = state.current(DOC, "total")
    assert current is not None and current.value == "9.90" and current.state == "fixed"
    assert current.event.lines[0]["text"] == "TOTAL 9.90" and current.event.reviewer == "ann"
    assert state.current(DOC, "date").state == "accepted"  # type: ignore[union-attr]
    assert state.current(DOC, "company") is None and state.current(OTHER, "total") is None
    # One JSON line per event, as documented.
    lines = (tmp_path / "r.review.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["fix", "accept"]
    assert json.loads(lines[0])["document"] == {"path": "/scans/a.jpg", "sha256": "a" * 64, "page": None}


def test_two_writers_on_one_field_keep_both_and_the_later_is_current(tmp_path: Path) -> None:
    path = tmp_path / "r.review.jsonl"
    tab_one, tab_two = ReviewLog(path), ReviewLog(path)
    tab_one.append([new_event(DOC, "total", "fix", old="9.00", new="1.00")])
    tab_two.append([new_event(DOC, "total", "fix", old="9.00", new="2.00")])
    for log in (tab_one, tab_two, ReviewLog(path)):
        state = log.refresh()
        assert state.current(DOC, "total").value == "2.00"  # type: ignore[union-attr]
        assert [e.new for e in state.history(DOC, "total")] == ["1.00", "2.00"]


def test_undo_takes_a_correction_back_and_keeps_it_in_history(tmp_path: Path) -> None:
    log = ReviewLog(tmp_path / "r.review.jsonl")
    first = new_event(DOC, "total", "accept", old="9.00", new="9.00")
    second = new_event(DOC, "total", "fix", old="9.00", new="9.90")
    log.append([first, second])
    state = log.append([new_event(DOC, "total", "undo", old="9.90", new="9.00", undoes=second.id)])
    assert state.current(DOC, "total").event.id == first.id  # type: ignore[union-attr]
    state = log.append([new_event(DOC, "total", "undo", undoes=first.id)])
    assert state.current(DOC, "total") is None and len(state.history(DOC, "total")) == 4
    # An undo naming another document's event is not applied.
    state = log.append([new_event(OTHER, "total", "undo", undoes=second.id)])
    assert state.problems and "names no earlier event" in state.problems[-1][1]


def test_lines_that_are_not_events_are_reported_and_the_rest_loaded(tmp_path: Path) -> None:
    path = tmp_path / "r.review.jsonl"
    good = new_event(DOC, "total", "fix", old="9.00", new="9.90")
    log = ReviewLog(path)
    log.append([good])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("this is not json\n")
        handle.write(json.dumps({"some": "other program's record"}) + "\n")
        handle.write(
            json.dumps({"chatocr_review": 1, "id": "x", "action": "explode", "field": "t", "document": {"path": "p"}})
            + "\n"
        )
        handle.write('{"chatocr_review": 1, "id": "cut')  # a crash mid-write
    state = ReviewLog(path).refresh()
    assert state.current(DOC, "total").value == "9.90"  # type: ignore[union-attr]
    assert [number for number, _ in state.problems] == [2, 3, 4, 5]
    assert "not JSON" in state.problems[0][1] and "incomplete" in state.problems[3][1]
    # The next event starts a line of its own; the cut line stays (never deleted), reported.
    later = ReviewLog(path)
    state = later.append([new_event(DOC, "date", "accept", old="x", new="x")])
    assert state.current(DOC, "date") is not None
    assert [number for number, _ in state.problems] == [2, 3, 4, 5]
    assert path.read_text(encoding="utf-8").count('"id": "cut') == 1


def test_a_link_at_the_review_file_is_never_written_through(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n", encoding="utf-8")
    path = tmp_path / "r.review.jsonl"
    path.symlink_to(precious)
    with pytest.raises(UsageError, match="symbolic link"):
        ReviewLog(path).append([new_event(DOC, "total", "accept", old="1", new="1")])
    assert precious.read_text(encoding="utf-8") == "keep me\n"


def test_known_secrets_are_masked(tmp_path: Path) -> None:
    key = "sk-review-0123456789abcdef"
    Secret(key)
    path = tmp_path / "r.review.jsonl"
    ReviewLog(path).append([new_event(DOC, "note", "fix", old=key, new=f"token {key}")])
    assert key not in path.read_text(encoding="utf-8")
