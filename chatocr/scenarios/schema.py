"""The JSON Schema of the scenario format, for editors (YAML language servers read it through the
`# yaml-language-server: $schema=...` comment at the top of each scenario file).

A declared check (`checks:`) is one of the registered checks: the schema lists each with its own
arguments (`oneOf`, told apart by `check`), so an editor completes and checks them as the loader does.
"""

from __future__ import annotations

import json
from typing import Any

from chatocr.checks import CHECKS, CheckDefinition
from chatocr.scenarios.model import Scenario

__all__ = ["scenario_json_schema", "scenario_json_schema_text"]


def _check_schema(definition: CheckDefinition[Any], definitions: dict[str, Any]) -> dict[str, Any]:
    arguments = definition.args.model_json_schema(ref_template="#/$defs/{model}")
    definitions.update(arguments.pop("$defs", {}))
    roles = ", ".join(
        role.name + ("..." if role.many else "") + (" (optional)" if role.optional else "") for role in definition.roles
    )
    least = sum(1 for role in definition.roles if not role.optional)
    fields: dict[str, Any] = {
        "type": "array",
        "items": {"type": "string"},
        "minItems": least,
        "description": f"The scenario's fields, in this order: {roles}.",
    }
    if not any(role.many for role in definition.roles):
        fields["maxItems"] = len(definition.roles)
    return {
        "type": "object",
        "title": definition.name,
        "description": definition.summary,
        "properties": {
            "check": {"const": definition.name},
            "fields": fields,
            "name": {"type": "string", "description": "The name its result carries (default: the check's)."},
            **arguments.get("properties", {}),
        },
        "required": ["check", "fields"],
        "additionalProperties": False,
    }


def scenario_json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "chatocr scenario"
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    declaration = definitions["CheckDeclaration"]
    definitions["CheckDeclaration"] = {
        "description": declaration.get("description", ""),
        "oneOf": [_check_schema(definition, definitions) for definition in CHECKS.values()],
    }
    return schema


def scenario_json_schema_text() -> str:
    return json.dumps(scenario_json_schema(), ensure_ascii=False, indent=2) + "\n"
