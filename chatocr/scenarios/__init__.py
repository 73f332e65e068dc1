"""Scenarios: document types with fields, instructions and few-shot examples, loaded from YAML."""

from chatocr.scenarios.loader import ScenarioLibrary, load_scenario_file, load_scenario_text, load_scenarios
from chatocr.scenarios.model import Example, FieldSpec, FieldType, ItemField, Scenario, check_answer
from chatocr.scenarios.schema import scenario_json_schema

__all__ = [
    "Example",
    "FieldSpec",
    "FieldType",
    "ItemField",
    "Scenario",
    "ScenarioLibrary",
    "check_answer",
    "load_scenario_file",
    "load_scenario_text",
    "load_scenarios",
    "scenario_json_schema",
]
