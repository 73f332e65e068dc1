"""The scenario format: loading, validation errors with file and line, the built-in library."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatocr.errors import ScenarioError
from chatocr.scenarios import (
    FieldSpec,
    Scenario,
    load_scenario_file,
    load_scenario_text,
    load_scenarios,
    scenario_json_schema,
)
from chatocr.scenarios.model import ungrounded_example_values
from chatocr.scenarios.schema import scenario_json_schema_text

REPO = Path(__file__).resolve().parents[2]

GOOD = textwrap.dedent(
    """\
    name: parking_ticket
    title: Parking ticket
    language: en
    description: Parking tickets with a plate number and a fine.
    instructions: The fine is the amount due, not the discount amount.
    fields:
      - name: plate
        description: Vehicle registration plate
        required: true
        aliases: [registration]
      - name: fine
        type: amount
      - name: zone
        type: enum
        choices: [A, B]
      - name: offences
        type: list
        items:
          - {name: code, type: text}
          - {name: amount, type: amount}
    examples:
      - id: first
        text: "PLATE KL 4455 ZONE A FINE 40.00"
        answer:
          plate: KL 4455
          fine: "40.00"
          zone: A
          offences:
            - {code: P12, amount: "40.00"}
    """
)


def problems_of(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(path)
    return info.value.problems


def test_good_scenario_loads() -> None:
    scenario = load_scenario_text(GOOD)
    assert scenario.name == "parking_ticket"
    assert [f.name for f in scenario.fields] == ["plate", "fine", "zone", "offences"]
    assert scenario.field("Registration") is scenario.fields[0]  # aliases, case-insensitive
    assert scenario.example_id(0) == "parking_ticket/first"
    assert scenario.examples[0].uid == load_scenario_text(GOOD).examples[0].uid


def test_unknown_key_names_file_line_and_suggests(tmp_path: Path) -> None:
    text = GOOD.replace("    type: amount\n", "    typ: amount\n", 1)
    problems = problems_of(text, tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 's.yaml'}:12: fields[1].typ: unknown key 'typ'")
    assert "did you mean 'type'?" in problems[0]


def test_wrong_type_value_is_reported_with_line(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("type: amount\n", "type: money\n", 1), tmp_path)
    assert problems == [
        f"{tmp_path / 's.yaml'}:12: fields[1].type: Input should be 'text', 'date', 'amount', 'number', "
        "'enum', 'list' or 'object' (got 'money')"
    ]


def test_example_answer_missing_a_field(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("      zone: A\n", ""), tmp_path)
    assert len(problems) == 1
    assert ":25: examples[0].answer: missing field 'zone'" in problems[0]
    assert "use null when absent" in problems[0]


def test_example_answer_with_a_field_that_does_not_exist(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("      zone: A\n", "      zone: A\n      colour: red\n"), tmp_path)
    assert len(problems) == 1
    assert ":28: examples[0].answer.colour: unknown field 'colour'" in problems[0]


def test_example_answer_type_errors(tmp_path: Path) -> None:
    text = GOOD.replace('fine: "40.00"', 'fine: "forty"').replace("zone: A\n", "zone: C\n")
    problems = problems_of(text, tmp_path)
    assert any(":26: examples[0].answer.fine: 'forty' is not a number" in p for p in problems)
    assert any(":27: examples[0].answer.zone: 'C' is not one of the choices" in p for p in problems)


def test_required_field_may_not_be_null(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("plate: KL 4455", "plate: null"), tmp_path)
    assert any("examples[0].answer.plate: field 'plate' is required" in p for p in problems)


def test_list_item_keys_are_checked(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("{code: P12, amount", "{cod: P12, amount"), tmp_path)
    assert any("offences[0].cod: unknown item key 'cod'" in p for p in problems)
    assert any("offences[0]: item is missing 'code'" in p for p in problems)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("title: Parking ticket", "title: [Parking"), tmp_path)
    assert problems[0].startswith(f"{tmp_path / 's.yaml'}:")
    assert "YAML syntax error" in problems[0]


def test_missing_required_key_and_bad_language(tmp_path: Path) -> None:
    text = GOOD.replace("title: Parking ticket\n", "").replace("language: en", "language: fr")
    problems = problems_of(text, tmp_path)
    assert any(":1: missing required key 'title'" in p for p in problems)
    assert any(":2: language: Input should be 'zh' or 'en' (got 'fr')" in p for p in problems)


def test_enum_without_choices_and_duplicate_names(tmp_path: Path) -> None:
    problems = problems_of(GOOD.replace("    choices: [A, B]\n", ""), tmp_path)
    assert any("field 'zone' has type enum but no `choices`" in p for p in problems)
    dup = GOOD.replace("aliases: [registration]", "aliases: [fine]")
    assert any("the name 'fine' is used by both 'plate' and 'fine'" in p for p in problems_of(dup, tmp_path))


def test_error_message_is_readable() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(GOOD.replace("    type: amount\n", "    typo: amount\n", 1), "mine.yaml")
    message = str(info.value)
    assert "mine.yaml:12: fields[1].typo: unknown key 'typo' (did you mean 'type'?)" in message
    assert "hint:" in message


def test_python_construction_validates_answers_too() -> None:
    with pytest.raises(ValueError, match="missing field 'b'"):
        Scenario(
            name="x",
            title="X",
            language="en",
            description="d",
            fields=(FieldSpec(name="a"), FieldSpec(name="b")),
            examples=({"text": "a", "answer": {"a": "a"}},),  # type: ignore[arg-type]
        )


def test_builtin_library_loads_every_scenario() -> None:
    library = load_scenarios(include_env=False)
    expected = {
        "vat_invoice",
        "retail_receipt",
        "train_ticket",
        "phone_bill",
        "id_card",
        "business_license",
        "generic",
        "cn_receipt",
        "taxi_receipt",
        "quota_invoice",
    }
    assert expected <= set(library.names())
    for scenario in library:
        assert len(scenario.examples) >= 3, scenario.name
    # Examples model grounding: answer values occur in the example's own text (NFKC, case and
    # whitespace ignored). The one exception is deliberate: a two-column business licence whose
    # address cell interrupts the business-scope paragraph.
    warnings = [(s.name, w) for s in library for w in ungrounded_example_values(s)]
    assert [(name, w.split(":")[0]) for name, w in warnings] == [
        ("business_license", "examples[0].answer.business_scope")
    ]


def test_unquoted_numbers_stay_verbatim_text() -> None:
    text = GOOD.replace("plate: KL 4455", "plate: 044002100111").replace('fine: "40.00"', "fine: 9000.00")
    text = text.replace("zone: A\n", "zone: A\n").replace("code: P12", "code: 13:27:45")
    answer = load_scenario_text(text).examples[0].answer
    assert answer["plate"] == "044002100111"
    assert answer["fine"] == "9000.00"
    assert answer["offences"][0]["code"] == "13:27:45"


def test_user_directory_overrides_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "generic.yaml").write_text(GOOD.replace("parking_ticket", "generic"), encoding="utf-8")
    monkeypatch.setenv("CHATOCR_SCENARIO_PATH", str(tmp_path))
    library = load_scenarios()
    assert library.get("generic").title == "Parking ticket"
    assert library.overridden and library.overridden[0][0] == "generic"


def test_every_broken_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD.replace("    type: amount\n", "    typo: amount\n", 1))
    (tmp_path / "b.yaml").write_text("name: [")
    with pytest.raises(ScenarioError) as info:
        load_scenarios([tmp_path], include_builtin=False, include_env=False)
    problems = info.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(str(tmp_path / "a.yaml") + ":12:")
    assert problems[1].startswith(str(tmp_path / "b.yaml") + ":1: YAML syntax error")


def test_unknown_scenario_name_suggests() -> None:
    library = load_scenarios(include_env=False)
    with pytest.raises(ScenarioError, match="No scenario named 'vat_invoce'") as info:
        library.get("vat_invoce")
    assert "Did you mean 'vat_invoice'?" in str(info.value)


def test_json_schema_is_exported_and_current() -> None:
    schema = scenario_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"name", "title", "language", "description", "fields"}
    committed = (REPO / "schema" / "scenario.schema.json").read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(scenario_json_schema_text()), (
        "schema/scenario.schema.json is stale: run `chatocr scenarios schema > schema/scenario.schema.json`"
    )


def test_never_patterns_rule_out_answers_and_are_checked(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    aliases: [registration]\n",
        "    aliases: [registration]\n    never: ['parking\\s+(ticket|notice)', 'plate']\n",
    )
    plate = load_scenario_text(text).fields[0]
    assert plate.ruled_out("PARKING   Ticket") and plate.ruled_out(" plate ")
    assert plate.ruled_out("KL 4455") is None and plate.ruled_out("PARKING TICKET KL 4455") is None
    bad_regex = text.replace("'plate']", "'(plate']")
    problems = problems_of(bad_regex, tmp_path)
    assert any(":11: fields[0].never: " in p and "not a regular expression" in p for p in problems)
    on_amount = text.replace("  - name: fine\n    type: amount\n", "  - name: fine\n    type: amount\n    never: [x]\n")
    assert any("`never` patterns, which apply to text fields only" in p for p in problems_of(on_amount, tmp_path))
    contradicted = text.replace("plate: KL 4455", "plate: Parking Notice")
    assert any("matches the field's own `never` pattern" in p for p in problems_of(contradicted, tmp_path))


def test_a_train_number_is_a_class_letter_and_digits() -> None:
    """train_ticket's train_num takes China Railway's train numbers only: a station's pinyin, a
    station or a seat is re-asked (its `never` pattern), a number with or without its letter is not."""
    train_num = load_scenarios(include_env=False).get("train_ticket").field("train_num")
    assert train_num is not None
    for wrong in ("Rikaze", "Shanghaihongqiao", "上海虹桥站", "05车12F号", "G7316开", ""):
        assert train_num.ruled_out(wrong), wrong
    for right in ("G7316", "K1158", "Z8802", "D3101", "1461", "T 110", "y501"):
        assert train_num.ruled_out(right) is None, right


HOSTILE_LINES = r"""
import re, sys
from chatocr.scenarios import load_scenarios
patterns = {p for s in load_scenarios() for f in s.fields for p in (*f.never, *f.trim)}
units = ["gst 1 ", "tel 1 ", "co ", "1 ", "1-", ": ", "co reg no ", "sdn ", "tax invoice ", "电话 1 ", "电话：1 ",
         "( ", "reg 1 ", "www.a ", "有限", "小票 "]
for pattern in patterns:
    for unit in units:
        re.fullmatch(pattern, " ".join((unit * 60 + "!").split()), re.IGNORECASE)
print(len(patterns))
"""


def test_built_in_patterns_finish_on_hostile_lines() -> None:
    """`never` and `trim` run on every OCR line and answer: a pattern whose repetitions can split
    a line in many ways (two optional runs of spaces side by side) takes exponential time on a
    long line of repeats. Each built-in one must finish at once; the subprocess's timeout only
    keeps a regression from hanging the suite."""
    python = Path(sys.executable)
    out = subprocess.run([str(python), "-c", HOSTILE_LINES], capture_output=True, text=True, timeout=120, check=True)
    assert int(out.stdout) >= 6  # retail_receipt's and cn_receipt's at least
