"""Checks declared in scenario YAML: validated when the scenario loads (file, line, did-you-mean),
listed in the JSON schema, declared in the shipped scenarios; a check that raises is a failed
result, never a crash."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from chatocr.checks import CHECKS, CheckContext, CheckDefinition, NoArgs, Outcome, Role, run_check
from chatocr.errors import ScenarioError
from chatocr.scenarios import load_scenario_text, load_scenarios
from chatocr.scenarios.schema import scenario_json_schema

HEAD = textwrap.dedent(
    """\
    name: parking
    title: Parking ticket
    language: en
    description: Parking tickets.
    fields:
      - name: plate
      - name: fine
        type: amount
      - name: fee
        type: amount
      - name: total
        type: amount
      - name: issued
        type: date
    """
)


def _load(checks: str) -> Any:
    return load_scenario_text(HEAD + "checks:\n" + textwrap.indent(textwrap.dedent(checks), "  "), "parking.yaml")


def _problems(checks: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        _load(checks)
    return caught.value.problems


def test_a_good_declaration_loads_and_round_trips() -> None:
    scenario = _load(
        """\
        - {check: sum, fields: [fine, fee, total], tolerance: 0.05}
        - {check: date, name: issued_not_in_future, fields: [issued], max_future_days: 0}
        """
    )
    assert [c.label for c in scenario.checks] == ["sum", "issued_not_in_future"]
    assert scenario.checks[0].arguments == {"tolerance": "0.05"}
    assert load_scenario_text(scenario.to_yaml(), "again.yaml") == scenario


def test_every_problem_is_named_with_its_line() -> None:
    problems = _problems(
        """\
        - {check: sum, fields: [fine, fee, total]}
        - {check: summ, fields: [fine, total]}
        - check: sum
          fields: [fine, totl]
          tolernce: 0.5
        - {check: date, fields: [issued], max_future_days: -3}
        - {check: uscc, fields: [fine]}
        - {check: amount_in_words, fields: [plate]}
        """
    )
    # HEAD is 14 lines, "checks:" line 15, the first declaration line 16
    assert problems == [
        "parking.yaml:17: checks[1].check: unknown check 'summ' (did you mean 'sum'?); the checks are "
        + ", ".join(CHECKS),
        "parking.yaml:19: checks[2].fields[1]: the scenario has no field 'totl' (did you mean 'total'?)",
        "parking.yaml:20: checks[2].tolernce: check 'sum' has no argument 'tolernce' (did you mean 'tolerance'?)",
        "parking.yaml:21: checks[3].max_future_days: Input should be greater than or equal to 0 (got '-3')",
        "parking.yaml:22: checks[4].fields[0]: 'fine' is of type amount; check 'uscc' wants text as its code",
        "parking.yaml:23: checks[5].fields: check 'amount_in_words' takes 2 fields (words, figure), got 1",
    ]


def test_missing_keys_are_named() -> None:
    problems = _problems("- {fields: [fine]}\n- {check: sum}\n")
    assert problems[0].startswith("parking.yaml:16: checks[0]: missing required key 'check'")
    assert problems[1].startswith("parking.yaml:17: checks[1]: missing required key 'fields'")


def test_the_schema_lists_each_check_with_its_arguments() -> None:
    branches = scenario_json_schema()["$defs"]["CheckDeclaration"]["oneOf"]
    by_name = {branch["properties"]["check"]["const"]: branch for branch in branches}
    assert set(by_name) == set(CHECKS)
    assert by_name["sum"]["additionalProperties"] is False
    assert "tolerance" in by_name["sum"]["properties"] and "allow_legacy" in by_name["uscc"]["properties"]
    assert by_name["uscc"]["properties"]["fields"]["maxItems"] == 1


def test_shipped_scenarios_declare_their_checks() -> None:
    library = load_scenarios(include_env=False)
    declared = {scenario.name: {c.check for c in scenario.checks} for scenario in library}
    assert declared["vat_invoice"] >= {"sum", "amount_in_words", "uscc", "invoice_code", "invoice_number", "date"}
    assert declared["business_license"] >= {"uscc", "date"}
    assert declared["id_card"] >= {"id_number"}
    assert declared["retail_receipt"] >= {"final_amount", "date"}
    assert declared["cn_receipt"] >= {"final_amount"}
    assert "final_amount" not in declared["taxi_receipt"]  # its 实收金额 is the fare
    assert declared["quota_invoice"] >= {"amount_in_words"}
    assert declared["train_ticket"] == {"date"}


def test_a_check_that_raises_is_a_failed_result_naming_the_error() -> None:
    def broken(fields: Any, values: Any, args: NoArgs, context: CheckContext) -> Outcome:
        raise ZeroDivisionError("division by zero")

    definition = CheckDefinition("broken", "always raises", (Role("x"),), NoArgs, broken)
    result = run_check(definition, ["total"], ["9.00"], NoArgs(), CheckContext())
    assert result.passed is False
    assert result.message == "check 'broken' raised ZeroDivisionError: division by zero"


def test_role_counts() -> None:
    assert CHECKS["sum"].assign(1) == "check 'sum' takes at least 2 fields (parts..., total), got 1"
    assert [r.name for r in CHECKS["sum"].assign(4)] == ["parts", "parts", "parts", "total"]
    assert [r.name for r in CHECKS["id_number"].assign(2)] == ["id_number", "birth_date"]
    assert CHECKS["id_number"].assign(4) == (
        "check 'id_number' takes 1 to 3 fields (id_number, [birth_date], [gender]), got 4"
    )
