"""Fields whose meaning is position: swapped answers are put back by where their lines sit."""

from __future__ import annotations

import pytest

from chatocr.extraction.positions import precedes, put_back_by_position
from chatocr.extraction.result import Evidence, FieldResult
from chatocr.scenarios import FieldSpec, load_scenarios


def evidence(line_id: str, x0: float, y0: float, x1: float, y1: float, page: int = 0) -> Evidence:
    return Evidence(line_id, line_id, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], 0.9, page)


LEFT = evidence("p0-l1", 10, 100, 120, 130)
RIGHT = evidence("p0-l3", 400, 104, 520, 132)  # the same row, slightly lower
BELOW = evidence("p0-l7", 10, 300, 200, 330)

FIELDS = (FieldSpec(name="start", before="end"), FieldSpec(name="end"))


def grounded(name: str, value: str, where: Evidence) -> FieldResult:
    return FieldResult(name, value, value, status="grounded", match="exact", match_score=1.0, evidence=[where])


def test_left_of_on_one_row_else_above() -> None:
    assert precedes(LEFT, RIGHT) is True and precedes(RIGHT, LEFT) is False
    assert precedes(RIGHT, BELOW) is True and precedes(BELOW, LEFT) is False
    assert precedes(LEFT, LEFT) is None
    assert precedes(evidence("p1-l0", 0, 0, 1, 1, page=1), LEFT) is False


def test_swapped_stations_are_put_back_and_the_result_says_so() -> None:
    results = {"start": grounded("start", "上海虹桥站", RIGHT), "end": grounded("end", "北京南站", LEFT)}
    fixed, warnings = put_back_by_position(FIELDS, results)
    assert fixed["start"].value == "北京南站" and fixed["start"].name == "start"
    assert fixed["end"].value == "上海虹桥站" and fixed["end"].evidence == [RIGHT]
    assert len(warnings) == 1 and "start" in warnings[0]


@pytest.mark.parametrize(
    "results",
    [
        {"start": grounded("start", "北京南站", LEFT), "end": grounded("end", "上海虹桥站", RIGHT)},  # in order
        {"start": grounded("start", "A", LEFT), "end": grounded("end", "B", LEFT)},  # one line: unknown
        {  # one of them not grounded: nothing to tell from
            "start": FieldResult("start", "X", "X", status="ungrounded"),
            "end": grounded("end", "北京南站", LEFT),
        },
        {"start": grounded("start", "北京南站", RIGHT)},  # the other not asked
    ],
)
def test_nothing_changes_without_evidence_of_a_swap(results: dict[str, FieldResult]) -> None:
    fixed, warnings = put_back_by_position(FIELDS, results)
    assert fixed == results and warnings == []


def test_scenarios_declare_their_position_pairs() -> None:
    library = load_scenarios()
    assert library.get("train_ticket").field("starting_station").before == "destination_station"  # type: ignore[union-attr]
    assert library.get("vat_invoice").field("buyer_name").before == "seller_name"  # type: ignore[union-attr]


def test_before_must_name_another_field() -> None:
    from pydantic import ValidationError

    from chatocr.scenarios.model import Scenario

    with pytest.raises(ValidationError, match="before"):
        Scenario(name="x", title="x", language="en", description="x", fields=(FieldSpec(name="a", before="zzz"),))
