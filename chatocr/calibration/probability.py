"""Each answered value's probability from the model's token log-probabilities.

The answer is JSON text, `{"total": "9.00", "date": "25/12/2018"}`; the backend gives each
generated token with its log-probability (`ChatReply.token_logprobs`). A value's tokens are those
overlapping its characters in the text, its closing quote included (deciding where a value ends,
"SDN" or "SDN BHD", is part of deciding the value).

The value's probability is the **minimum** over those tokens, not their product. A product is the
chance of writing exactly this character sequence and falls with length: a 60-character address
copied with near-certainty at every token would score below a hesitant 4-character date. What
tells a right value from a wrong one is the one place where the model chose between readings (the
first digit of a total, CASH's line or TOTAL's), and the least likely token is that place,
whatever the value's length. The product is kept beside it for whoever wants it.

Alignment is by UTF-8 bytes (a Chinese character may be split over two tokens); when the tokens
do not spell the answer text, no probability is given rather than a misaligned one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ValueProbability", "value_probabilities", "value_spans"]


@dataclass(frozen=True)
class ValueProbability:
    probability: float  # exp(the least log-probability among the value's tokens)
    joint: float  # exp(the sum): the chance of exactly this text
    tokens: int
    weakest: str  # the least likely token's text


def _string_end(text: str, start: int) -> int:
    """The index of the quote closing the JSON string opened at text[start] (a quote); -1 if none."""
    at = start + 1
    while at < len(text):
        char = text[at]
        if char == "\\":
            at += 2
            continue
        if char == '"':
            return at
        at += 1
    return -1


def _value_end(text: str, start: int) -> int:
    """Where the JSON value starting at text[start] ends (exclusive); -1 when it does not."""
    if text[start] == '"':
        end = _string_end(text, start)
        return end + 1 if end >= 0 else -1
    if text[start] in "[{":
        depth = 0
        at = start
        while at < len(text):
            char = text[at]
            if char == '"':
                at = _string_end(text, at)
                if at < 0:
                    return -1
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return at + 1
            at += 1
        return -1
    at = start
    while at < len(text) and text[at] not in ",}] \t\r\n":
        at += 1
    return at


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _object_spans(text: str, start: int) -> dict[str, tuple[int, int]] | None:
    """Key -> span of its value for the object opening at text[start]; None if it is no object."""
    spans: dict[str, tuple[int, int]] = {}
    at = _skip_space(text, start + 1)
    while at < len(text) and text[at] != "}":
        if text[at] != '"':
            return None
        key_end = _string_end(text, at)
        if key_end < 0:
            return None
        try:
            key = json.loads(text[at : key_end + 1])
        except ValueError:
            return None
        at = _skip_space(text, key_end + 1)
        if at >= len(text) or text[at] != ":":
            return None
        at = _skip_space(text, at + 1)
        if at >= len(text):
            return None
        end = _value_end(text, at)
        if end < 0:
            return None
        # a string's span is its characters and its closing quote; anything else its own text
        spans.setdefault(key, (at + 1, end) if text[at] == '"' else (at, end))
        at = _skip_space(text, end)
        if at < len(text) and text[at] == ",":
            at = _skip_space(text, at + 1)
    return spans if at < len(text) else None


def value_spans(answer: str) -> dict[str, tuple[int, int]]:
    """Each top-level key of the first JSON object in `answer` (fences or prose around it are
    fine) -> the character span of its value. {} when there is no such object."""
    at = answer.find("{")
    while at >= 0:
        spans = _object_spans(answer, at)
        if spans is not None:
            return spans
        at = answer.find("{", at + 1)
    return {}


def _token_bytes(tokens: Sequence[tuple[str, float]]) -> list[tuple[int, int, str, float]] | None:
    out: list[tuple[int, int, str, float]] = []
    offset = 0
    for text, logprob in tokens:
        try:
            length = len(text.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            return None
        if not math.isfinite(logprob):
            return None
        out.append((offset, offset + length, text, min(logprob, 0.0)))
        offset += length
    return out


def value_probabilities(answer: str, token_logprobs: Sequence[tuple[str, float]]) -> dict[str, ValueProbability]:
    """Each top-level value's probability (see the module's text); {} when the tokens do not spell
    the answer (a backend that dropped partial characters, an answer cleaned after generation)."""
    tokens = _token_bytes(token_logprobs)
    if tokens is None:
        return {}
    try:
        spelled = "".join(text for text, _ in token_logprobs).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return {}
    answer_bytes = answer.encode("utf-8")
    shift = spelled.find(answer_bytes)
    if shift < 0 or spelled.find(answer_bytes, shift + 1) >= 0:
        return {}
    out: dict[str, ValueProbability] = {}
    for key, (start, end) in value_spans(answer).items():
        low = shift + len(answer[:start].encode("utf-8"))
        high = shift + len(answer[:end].encode("utf-8"))
        mine = [
            (text, logprob) for begin, finish, text, logprob in tokens if begin < max(high, low + 1) and low < finish
        ]
        if not mine:
            continue
        weakest = min(mine, key=lambda token: token[1])
        out[key] = ValueProbability(
            probability=math.exp(weakest[1]),
            joint=math.exp(sum(logprob for _, logprob in mine)),
            tokens=len(mine),
            weakest=weakest[0].encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
        )
    return out
