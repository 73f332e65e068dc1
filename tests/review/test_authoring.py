"""`chatocr scenarios new NAME --from-reviewed REVIEW_FILE`: fields typed from the reviewed values,
the most different reviewed documents as examples, a YAML that loads and validates as any scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatocr.cli.main import main
from chatocr.errors import ConfigError
from chatocr.review import MemorySettings, ReviewSession
from chatocr.review.authoring import ReviewedExample, infer_field, most_different, scenario_yaml
from chatocr.scenarios import load_scenario_file
from chatocr.scenarios.loader import load_scenario_text
from tests.review.conftest import KEYS, ResultsSet


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["25/12/2018", "2019-01-03", "14 Mar 2018"], "date"),
        (["9.00", "RM 12.50", "¥41.0元"], "amount"),
        (["3", "12", None, "0"], "number"),
        (["003B052946", "T45330543"], "text"),
        (["1234567890123"], "text"),  # a long digit string is an identifier
        (["二等座", "二等座", "一等座", "二等座", "二等座", "一等座"], "enum"),
        (["cash", "card", "cash"], "text"),  # too few documents to call it an enum
        (["二等座"] * 6, "text"),  # one value alone: nothing says what else there is
        ([["a", "b"], ["c"]], "list"),
        (["25/12/2018", "SHOP ABC"], "text"),
        ([None, None], "text"),
    ],
)
def test_types_are_inferred_from_the_values(values: list[Any], kind: str) -> None:
    field = infer_field("f", values)
    assert field["type"] == kind
    if kind == "enum":
        assert field["choices"] == ["一等座", "二等座"]
    assert field["description"].startswith("TODO")


def test_the_most_different_documents_are_taken_first() -> None:
    alike = "KEDAI MAJU SDN BHD\nJALAN RIA 3\nTOTAL 9.00\nCASH 10.00"
    texts = [
        alike,
        alike.replace("9.00", "9.50"),
        "增值税普通发票\n购买方 名称：某某公司\n价税合计 ￥1130.00",
        alike.replace("3", "4"),
    ]
    first_two = most_different(texts, 2)
    assert 2 in first_two and len(set(first_two)) == 2
    assert sorted(most_different(texts, 9)) == [0, 1, 2, 3] and most_different([], 3) == []


def test_a_yaml_made_of_mixed_values_still_validates() -> None:
    reviewed = [
        ReviewedExample("a", "SHOP A\nTOTAL 9.00", {"total": "9.00", "when": "25/12/2018", "n": 3}),
        ReviewedExample("b", "SHOP B\nTOTAL N/A", {"total": "N/A", "when": None, "n": 4}),
    ]
    scenario = load_scenario_text(scenario_yaml("mixed", reviewed, "r.jsonl"), "mixed.yaml")
    kinds = {f.name: f.type.value for f in scenario.fields}
    assert kinds == {"total": "text", "when": "date", "n": "number"}
    with pytest.raises(ConfigError, match="not valid"):
        scenario_yaml("../bad", reviewed, "r.jsonl")
    with pytest.raises(ConfigError, match="no fully reviewed document"):
        scenario_yaml("ok", [], "r.jsonl")


def test_scenario_from_reviewed_documents_round_trips(
    results_set: ResultsSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chatocr.cli.view_cmd import engine_lookup

    session = ReviewSession(
        results_set.results, engine_for=engine_lookup(None, None), memory=MemorySettings(enabled=False)
    )
    for number in range(3):  # the three receipts; the fourth document is left unreviewed
        session.record(number, [{"field": name, "action": "accept"} for name in KEYS])
    session.record(1, [{"field": "total", "action": "fix", "value": "RM 31.00"}])
    out = tmp_path / "my_receipts.yaml"
    assert (
        main(["scenarios", "new", "my_receipts", "--from-reviewed", str(results_set.review_file), "-o", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "3 of 3 reviewed document(s) as examples" in printed
    scenario = load_scenario_file(out)
    assert scenario.name == "my_receipts" and scenario.language == "en"
    assert {f.name: f.type.value for f in scenario.fields} == {
        "company": "text",
        "date": "date",
        "address": "text",
        "total": "amount",
    }
    assert len(scenario.examples) == 3
    reviewed = {doc.result.values["company"]: doc for doc in session.documents[:3]}
    for example in scenario.examples:
        doc = reviewed[example.answer["company"]]
        expected = {name: session.state().current(doc.key, name).value for name in KEYS}  # type: ignore[union-attr]
        assert example.answer == expected
        assert doc.ocr(session.engine_for, True)[0].text().splitlines()[0].strip() in example.text  # type: ignore[union-attr]
    assert main(["scenarios", "validate", str(out)]) == 0
    # The results file names the same review file; a second run refuses to overwrite without --force.
    assert main(["scenarios", "new", "my_receipts", "--from-reviewed", str(results_set.results), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (
        main(
            ["scenarios", "new", "my_receipts", "--from-reviewed", str(results_set.results), "-o", str(out), "--force"]
        )
        == 0
    )


def test_from_reviewed_needs_reviewed_documents(
    results_set: ResultsSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["scenarios", "new", "x", "--from-reviewed", str(results_set.results), "-o", str(tmp_path / "x.yaml")])
        == 1
    )
    assert "No review file" in capsys.readouterr().err
    assert main(["scenarios", "new", "x", "--from", str(results_set.images[0]), "-o", str(tmp_path / "y.yaml")]) == 2
    assert "--keys" in capsys.readouterr().err
