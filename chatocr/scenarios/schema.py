"""The JSON Schema of the scenario format, for editors (YAML language servers read it through the
`# yaml-language-server: $schema=...` comment at the top of each scenario file)."""

from __future__ import annotations

import json
from typing import Any

from chatocr.scenarios.model import Scenario

__all__ = ["scenario_json_schema", "scenario_json_schema_text"]


def scenario_json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "chatocr scenario"
    return schema


def scenario_json_schema_text() -> str:
    return json.dumps(scenario_json_schema(), ensure_ascii=False, indent=2) + "\n"
