"""Each value's probability from token log-probabilities; the review decision; the reliability PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image

from chatocr.calibration import (
    AcceptRule,
    Calibration,
    HeldOut,
    accept_rule,
    decide,
    draw_reliability,
    review_queue,
    value_probabilities,
    value_spans,
)
from chatocr.errors import CalibrationError, ConfigError


def test_value_spans_of_the_first_object() -> None:
    answer = 'Here:\n```json\n{"total": "9.00", "items": [{"a": "}"}], "note": "say \\"hi\\"", "tax": null}\n```'
    spans = value_spans(answer)
    assert {key: answer[a:b] for key, (a, b) in spans.items()} == {
        "total": '9.00"',  # a string's characters and its closing quote
        "items": '[{"a": "}"}]',
        "note": 'say \\"hi\\""',
        "tax": "null",
    }
    assert value_spans("no json here") == {} and value_spans('{"broken": ') == {}


def _tokens(text: str, low: dict[str, float]) -> list[tuple[str, float]]:
    """One token per character, each at -0.001 except those named."""
    return [(char, low.get(char, -0.001)) for char in text]


def test_the_least_likely_token_of_a_value_is_its_probability() -> None:
    answer = '{"total": "9.00", "date": "25/12/2018"}'
    probabilities = value_probabilities(answer, _tokens(answer, {"9": -1.2, "/": -0.3}))
    total, date = probabilities["total"], probabilities["date"]
    assert total.probability == pytest.approx(math.exp(-1.2)) and total.weakest == "9"
    assert total.tokens == 5  # 9 . 0 0 and the closing quote
    assert date.probability == pytest.approx(math.exp(-0.3))
    assert date.joint == pytest.approx(math.exp(-0.3 * 2 - 0.001 * 9))


def test_a_chinese_character_split_over_two_tokens_is_aligned_by_bytes() -> None:
    answer = '{"seller": "中华", "total": "9"}'
    first, second = "中".encode()[:2], "中".encode()[2:]
    tokens = [('{"seller": "', -0.01), (first.decode("utf-8", "surrogateescape"), -2.0)]
    tokens += [(second.decode("utf-8", "surrogateescape"), -0.01), ('华", "total": "', -0.01), ('9"}', -0.5)]
    probabilities = value_probabilities(answer, tokens)
    assert probabilities["seller"].probability == pytest.approx(math.exp(-2.0))
    assert probabilities["total"].probability == pytest.approx(math.exp(-0.5))


def test_tokens_that_do_not_spell_the_answer_give_nothing() -> None:
    answer = '{"total": "9.00"}'
    assert value_probabilities(answer, _tokens('{"total": "9.10"}', {})) == {}
    assert value_probabilities(answer, [("x", float("nan"))]) == {}
    # the answer inside a longer generation (a <think> section before it) is found and aligned
    longer = "<think>ok</think>" + answer
    assert value_probabilities(answer, _tokens(longer, {"9": -0.7}))["total"].probability == pytest.approx(
        math.exp(-0.7)
    )


def test_decisions_and_the_queue() -> None:
    assert decide(0.995, 0.99) == "accepted" and decide(0.99, 0.99) == "accepted"
    assert decide(0.98, 0.99) == "review" and decide(None, 0.0) == "review"
    confidences = {f"f{i}": 0.999 for i in range(37)} | {"company": 0.4, "address": None, "total": 0.95}
    queue = review_queue(confidences, AcceptRule(0.99, "given"))
    assert queue.summary() == "37 of 40 fields accepted, 3 to review"
    assert queue.review == ("address", "company", "total")  # no confidence first, then lowest first
    assert queue.needs_review


def _calibration(curve: tuple[tuple[float, float, float, float], ...]) -> Calibration:
    return Calibration("receipt", (), {}, HeldOut(5, 100, 0.02, curve))


def test_the_accept_rule() -> None:
    curve = ((0.999, 1.0, 0.5, 0.999), (0.99, 0.995, 0.8, 0.995), (0.9, 0.97, 0.95, 0.975), (0.5, 0.9, 1.0, 0.95))
    calibration = _calibration(curve)
    assert accept_rule(calibration, threshold=0.7) == AcceptRule(0.7, "given")
    assert accept_rule(calibration, precision=0.99) == AcceptRule(0.99, "precision 0.99 (held out)")
    assert accept_rule(calibration, default_precision=0.97) == AcceptRule(0.9, "precision 0.97 (held out)")
    assert accept_rule(calibration) is None
    unreachable = accept_rule(_calibration(((0.9, 0.9, 1.0, 0.9),)), precision=0.99)
    assert (
        unreachable is not None
        and unreachable.threshold == math.inf
        and "every field goes to review" in unreachable.note
    )
    with pytest.raises(CalibrationError, match="needs the scenario's calibration"):
        accept_rule(None, precision=0.99)
    with pytest.raises(ConfigError):
        accept_rule(calibration, precision=99)
    with pytest.raises(ConfigError):
        accept_rule(calibration, threshold=1.5)


def test_the_reliability_diagram_is_a_png_showing_each_series(tmp_path: Path) -> None:
    today = ([1.0] * 40 + [0.9] * 20, [True] * 30 + [False] * 10 + [True] * 20)
    calibrated = ([0.95] * 30 + [0.6] * 30, [True] * 29 + [False] + [True] * 18 + [False] * 12)
    path = tmp_path / "reliability.png"
    draw_reliability({"today": today, "calibrated": calibrated}, path, title="retail_receipt: 60 fields")
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert image.format == "PNG" and image.size == (760, 600)
    colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=100000) or []}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours  # both series drawn
    # the calibrated series' point for its 0.6 bin sits at accuracy 0.6: (90 + 0.6*400, 50 + 0.4*400)
    assert image.convert("RGB").getpixel((330, 210)) == (214, 39, 40)
    assert path.stat().st_size > 2000
