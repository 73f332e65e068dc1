"""Read a JSON object out of whatever a model answered.

Models wrap JSON in code fences, put prose around it, leave trailing commas, use Python literals
(None, True, single quotes), full-width punctuation, or prepend a reasoning model's thinking
(`<think>...</think>`). We accept all of these and say which repairs were needed; we refuse (with
a reason the re-ask can quote) only when no object can be recovered.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_REPLY_CHARS", "ParsedReply", "parse_reply"]

# An answer is a flat object of fields (a list field holds objects of scalars: depth 3). Deeper
# nesting, or an answer longer than a megabyte, is refused with a reason the re-ask quotes, before
# it can exhaust the recursion of json, validation or serialisation.
MAX_DEPTH = 16
MAX_REPLY_CHARS = 1_000_000
# What json.loads raises on hostile input besides JSONDecodeError: RecursionError for deep nesting,
# ValueError for an integer over Python's 4,300-digit limit.
_JSON_FAILURES = (json.JSONDecodeError, RecursionError, ValueError)

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_UNCLOSED_THINK = re.compile(r"^\s*<think>.*", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_FULL_WIDTH = str.maketrans({"｛": "{", "｝": "}", "：": ":", "，": ",", "“": '"', "”": '"'})


@dataclass
class ParsedReply:
    data: dict[str, Any] | None
    repairs: list[str] = field(default_factory=list)
    error: str | None = None  # why nothing could be read, for the re-ask
    # Labelled multi-example answers ("Answer to example 3: {...}") -> the last object given.
    candidates: int = 0


def _objects(text: str) -> list[str]:
    """Every balanced top-level {...} in text, respecting strings."""
    found, depth, start, in_string, escape = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth > 0:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                found.append(text[start : i + 1])
    if depth > 0 and start >= 0:
        found.append(text[start:])  # truncated: try to close it below
    return found


def _load(candidate: str, repairs: list[str]) -> dict[str, Any] | None:
    attempts: list[tuple[str, str | None]] = [(candidate, None)]
    fixed = _TRAILING_COMMA.sub(r"\1", candidate)
    if fixed != candidate:
        attempts.append((fixed, "removed trailing commas"))
    wide = fixed.translate(_FULL_WIDTH)
    if wide != fixed:
        attempts.append((wide, "replaced full-width punctuation"))
    opened = wide.count("{") - wide.count("}")
    if opened > 0:
        quotes = wide.count('"') % 2
        attempts.append((wide + ('"' if quotes else "") + "}" * opened, "closed a truncated object"))
    for text, repair in attempts:
        try:
            value = json.loads(text)
        except _JSON_FAILURES:
            continue
        if isinstance(value, dict):
            if repair:
                repairs.append(repair)
            return value
    for text, repair in attempts:  # Python literals: {'a': None, 'b': True}
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            continue
        if isinstance(value, dict):
            repairs.append((repair + "; " if repair else "") + "read Python literals")
            return value
    return None


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (iterative: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:  # no need to look further down
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_reply(text: str) -> ParsedReply:
    parsed = _parse(text)
    if parsed.data is not None and _depth(parsed.data) > MAX_DEPTH:
        return ParsedReply(
            None,
            parsed.repairs,
            error=f"the JSON nests deeper than {MAX_DEPTH} levels; answer one flat object of fields",
        )
    return parsed


def _parse(text: str) -> ParsedReply:
    repairs: list[str] = []
    if not text or not text.strip():
        return ParsedReply(None, error="the answer was empty")
    if len(text) > MAX_REPLY_CHARS:
        return ParsedReply(None, error=f"the answer was {len(text)} characters long; answer only the JSON object")
    body = text
    if _THINK.search(body):
        body = _THINK.sub("", body)
        repairs.append("dropped the model's <think> section")
    elif _UNCLOSED_THINK.match(body) and "{" not in body.split("</think>")[-1]:
        return ParsedReply(None, repairs, error="the answer was only reasoning, without a JSON object")
    if "{" not in body and "｛" in body:
        body = body.translate(_FULL_WIDTH)
        repairs.append("replaced full-width punctuation")
    fences = _FENCE.findall(body)
    if fences:
        repairs.append("removed code fences")
        body = "\n".join(fences)
    objects = _objects(body)
    if not objects:
        return ParsedReply(None, repairs, error="the answer contained no JSON object")
    if body.strip() != objects[0].strip() and len(objects) == 1 and not fences:
        repairs.append("ignored text around the JSON object")
    # Several objects (e.g. the model imitated labelled example answers): take the last readable.
    for candidate in reversed(objects):
        data = _load(candidate, repairs)
        if data is not None:
            if len(objects) > 1:
                repairs.append(f"took the last of {len(objects)} JSON objects")
            return ParsedReply(data, repairs, candidates=len(objects))
    return ParsedReply(None, repairs, error="the JSON object in the answer is malformed")
