"""Trust wired into extraction (chatocr/extraction/trust.py, loop.py): each field's value
probability from the step whose answer was kept, failed checks re-asked, the scenario's
calibration applied, the accept/review decision, and every way a calibration file can be bad.

On a real SROIE receipt's OCR (tests/fixtures) with scripted answers whose token probabilities
are set per value; calibrations fitted by `fit_calibration` on a synthetic world of known truth."""

from __future__ import annotations

import json
import math
import random
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chatocr import ChatOCR
from chatocr.calibration import (
    FieldSignals,
    Sample,
    calibration_path,
    fit_calibration,
    save_calibration,
    value_spans,
)
from chatocr.errors import ConfigError
from chatocr.extraction.result import Extraction
from chatocr.llm.base import ChatReply
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.resources import builtin_scenarios_dir

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"
RECEIPT = FIXTURES / "ocr" / "X00016469612.json"  # TOTAL 9.00, CASH 10.00, 25/12/2018
KEYS = ["company", "date", "address", "total"]
RIGHT = {
    "company": "BOOK TA .K(TAMAN DAYA) SDN BND",
    "date": "25/12/2018",
    "address": "NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR.",
    "total": "9.00",
}


def reply(values: dict[str, Any], weak: dict[str, float] | None = None) -> ChatReply:
    """The answer as a backend with token probabilities gives it: one token per character, each
    near certain, the first of each value in `weak` at that probability."""
    text = json.dumps(values, ensure_ascii=False)
    spans = value_spans(text)
    at = {spans[key][0]: math.log(p) for key, p in (weak or {}).items()}
    return ChatReply(text, token_logprobs=tuple((char, at.get(i, -0.0005)) for i, char in enumerate(text)))


def _world(seed: int = 3, documents: int = 60) -> list[Sample]:
    """Fields whose value probability is the chance they are right (a calibrated model)."""
    rng = random.Random(seed)
    samples = []
    for d in range(documents):
        for name in KEYS:
            p = rng.choice([0.15, 0.5, 0.9999, 0.9999])
            signals = FieldSignals("grounded", 0.99, "exact", 1.0, 1.0, "x", 0.0, None, p, (), (), False)
            samples.append(Sample(f"d{d}", name, signals, rng.random() < p))
    return samples


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    """A user scenario directory holding retail_receipt (overriding the built-in one)."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(builtin_scenarios_dir() / "retail_receipt.yaml", folder / "retail_receipt.yaml")
    return folder


def _chat(model: ScriptedChatModel, scenario_dir: Path, **config: Any) -> ChatOCR:
    return ChatOCR(llm=model, ocr="text", config={"scenario_dirs": [str(scenario_dir)], **config})


def _calibrate(scenario_dir: Path) -> Path:
    target = calibration_path(scenario_dir / "retail_receipt.yaml")
    save_calibration(fit_calibration(_world(), "retail_receipt"), target)
    return target


def test_the_kept_steps_probability_failed_check_reasked_and_recorded(scenario_dir: Path) -> None:
    cash = {**RIGHT, "total": "10.00"}  # the CASH line: on the page, so grounded, and the check fails
    second = {**RIGHT, "company": None, "total": "9.00"}  # the re-ask: the company lost, the total right
    answers = [reply(cash, {"company": 0.6, "total": 0.7}), *[reply(second, {"total": 0.95})] * 2]
    result = _chat(ScriptedChatModel(answers), scenario_dir).extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
    assert [c.purpose for c in result.calls] == ["extract", "repair", "repair"]  # the company asked for again
    repair = result.calls[1].messages[-1]["content"]
    assert (
        "check final_amount failed: total 10.00 is the CASH line; the final amount is ROUND D TOTAL (RM) 9.00" in repair
    )
    assert [(r.check, r.step, r.values) for r in result.rechecks] == [("final_amount", 1, {"total": "10.00"})]
    assert result.values["total"] == "9.00" and result.values["company"] == RIGHT["company"]
    signals = {name: f.signals for name, f in result.fields.items()}
    # The company kept from step 1 keeps step 1's probability; the total is step 2's.
    assert signals["company"].value_probability == pytest.approx(0.6)  # type: ignore[union-attr]
    assert signals["total"].value_probability == pytest.approx(0.95)  # type: ignore[union-attr]
    assert signals["total"].checks_passed == ("final_amount",)  # type: ignore[union-attr]
    assert signals["total"].label == "total"  # type: ignore[union-attr]
    assert [(c.name, c.passed) for c in result.checks] == [("final_amount", True), ("date", True)]


def test_a_value_failing_a_check_its_predecessor_passed_is_not_taken(scenario_dir: Path) -> None:
    bad_date = {**RIGHT, "date": "31/02/2018"}  # no such day: invalid, asked again
    worse = {**RIGHT, "total": "10.00"}  # the re-ask trades the right total for the CASH line
    model = ScriptedChatModel([reply(bad_date), reply(worse), reply(worse)])
    result = _chat(model, scenario_dir).extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
    assert result.values["date"] == "25/12/2018"
    assert result.values["total"] == "9.00"  # kept from the first answer, which passed final_amount
    assert result.fields["total"].signals.checks_failed == ()  # type: ignore[union-attr]


def test_the_scenarios_calibration_gives_the_confidence_and_the_decision(scenario_dir: Path) -> None:
    target = _calibrate(scenario_dir)
    model = ScriptedChatModel([reply(RIGHT, {"company": 0.2, "address": 0.5})])
    result = _chat(model, scenario_dir).extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
    fields = result.fields
    assert all(f.calibrated for f in fields.values())
    assert fields["company"].confidence < fields["address"].confidence < fields["total"].confidence  # type: ignore[operator]
    assert fields["total"].confidence > 0.95 and fields["company"].confidence < 0.5  # type: ignore[operator]
    assert fields["total"].grounding_confidence == pytest.approx(1.0, abs=0.05)
    assert "value_probability" in fields["total"].signals_used and "label" in fields["total"].signals_used
    rule = result.acceptance
    assert rule is not None and rule.calibration == str(target) and rule.source.startswith("precision 0.99 (config)")
    assert rule.threshold is not None and 0.9 < rule.threshold < 1.0
    assert result.to_review[0] == "company"  # lowest confidence first
    assert {"company", "address"} <= set(result.to_review) and "total" in result.accepted
    assert (
        result.needs_review
        and result.review_summary() == f"{len(result.accepted)} of 4 fields accepted, {len(result.to_review)} to review"
    )


def test_without_token_probabilities_the_other_signals_are_used_and_named(scenario_dir: Path) -> None:
    _calibrate(scenario_dir)
    model = ScriptedChatModel([json.dumps(RIGHT)])  # a backend without token probabilities
    result = _chat(model, scenario_dir).extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
    total = result.fields["total"]
    assert total.calibrated and total.signals is not None and total.signals.value_probability is None
    assert "value_probability" not in total.signals_used
    assert total.signals_used == ["ocr_confidence", "match", "label", "checks"]


def test_accept_rules_per_call_per_scenario_and_config(scenario_dir: Path) -> None:
    _calibrate(scenario_dir)
    answers = [reply(RIGHT, {"company": 0.2})]
    given = _chat(ScriptedChatModel(answers), scenario_dir).extract(
        str(RECEIPT), keys=KEYS, scenario="retail_receipt", accept_threshold=0.0
    )
    assert given.accepted == KEYS and given.acceptance.source == "threshold 0 (given)"  # type: ignore[union-attr]
    strict = _chat(ScriptedChatModel(answers), scenario_dir).extract(
        str(RECEIPT), keys=KEYS, scenario="retail_receipt", accept_precision=1.0
    )
    assert strict.accepted == [] and strict.acceptance.threshold is None  # type: ignore[union-attr]
    assert "every field to review" in strict.acceptance.note  # type: ignore[union-attr]
    # The scenario's own default (its YAML), over the config's.
    yaml = scenario_dir / "retail_receipt.yaml"
    yaml.write_text(yaml.read_text(encoding="utf-8") + "\naccept_threshold: 0.0\n", encoding="utf-8")
    own = _chat(ScriptedChatModel(answers), scenario_dir, accept_precision=0.5).extract(
        str(RECEIPT), keys=KEYS, scenario="retail_receipt"
    )
    assert own.acceptance.source == "threshold 0 (scenario retail_receipt)" and own.accepted == KEYS  # type: ignore[union-attr]
    off = _chat(ScriptedChatModel(answers), scenario_dir, accept_precision=None).extract(
        str(RECEIPT), keys=KEYS, scenario="retail_receipt", accept_precision=0.99
    )
    assert off.acceptance.source.startswith("precision 0.99 (given)")  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="accept_precision"):
        _chat(ScriptedChatModel(answers), scenario_dir).request(KEYS, "retail_receipt", accept_precision=1.5)
    with pytest.raises(ConfigError, match="accept_threshold"):
        _chat(ScriptedChatModel(answers), scenario_dir).request(KEYS, "retail_receipt", accept_threshold=-0.1)


def test_a_failed_check_lowers_the_confidence_of_its_fields(scenario_dir: Path) -> None:
    cash = {**RIGHT, "total": "10.00"}
    # Uncalibrated: halved. The re-ask answers the same: the check still fails at the end.
    always = ScriptedChatModel(lambda messages, settings: reply(cash))  # type: ignore[arg-type,return-value]
    plain = _chat(always, scenario_dir).extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
    total = plain.fields["total"]
    assert total.signals.checks_failed == ("final_amount",)  # type: ignore[union-attr]
    assert total.confidence == pytest.approx(total.grounding_confidence * 0.5)  # type: ignore[operator]
    assert total.decision == "review" and not total.calibrated
    assert [(r.check, r.step) for r in plain.rechecks] == [("final_amount", 1)]  # asked about once
    # Calibrated: never above the same signals without the failure, whatever the fitted weight.
    _calibrate(scenario_dir)
    failed = _chat(always, scenario_dir).extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
    assert failed.fields["total"].calibrated and failed.fields["total"].signals.checks_failed  # type: ignore[union-attr]
    right = _chat(ScriptedChatModel([reply(RIGHT)]), scenario_dir).extract(
        str(RECEIPT), keys=KEYS, scenario="retail_receipt"
    )
    assert failed.fields["total"].confidence <= right.fields["total"].confidence  # type: ignore[operator]


BAD_FILES = {
    "not JSON": "{not json",
    "another version": lambda d: {**d, "version": 99},
    "another scenario": lambda d: {**d, "scenario": "train_ticket"},
    "numbers that do not fit": lambda d: {**d, "models": [{**d["models"][0], "weights": [1.0]}]},
    "empty": "",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_calibration_file_is_one_warning_and_the_uncalibrated_confidence(
    scenario_dir: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = _calibrate(scenario_dir)
    bad = BAD_FILES[kind]
    text = bad if isinstance(bad, str) else json.dumps(bad(json.loads(target.read_text(encoding="utf-8"))))
    target.write_text(text, encoding="utf-8")
    chat = _chat(ScriptedChatModel(lambda messages, settings: reply(RIGHT)), scenario_dir)  # type: ignore[arg-type,return-value]
    results = [chat.extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt") for _ in range(2)]
    for result in results:
        assert result.ok
        warnings = [w for w in result.warnings if w.startswith(f"calibration {target}")]
        assert len(warnings) == 1 and "the uncalibrated confidence is used" in warnings[0]
        assert not any(f.calibrated for f in result.fields.values())
        assert result.fields["total"].confidence == result.fields["total"].grounding_confidence
        assert result.accepted == [] and "no calibration" in result.acceptance.note  # type: ignore[union-attr]
    logged = [r for r in caplog.records if str(target) in r.getMessage()]
    assert len(logged) == 1  # logged once for the file, however many documents


def test_a_calibration_fitted_with_another_model_is_not_used(scenario_dir: Path) -> None:
    """A calibration is the model's own (its token probabilities, its error rates): another model's
    fields keep their uncalibrated confidence, and the accept rule's note names both models (not a
    warning: the file is fine, e.g. the one shipped beside a built-in scenario)."""
    target = calibration_path(scenario_dir / "retail_receipt.yaml")
    fitted = fit_calibration(_world(), "retail_receipt")
    model = ScriptedChatModel(lambda messages, settings: reply(RIGHT))  # type: ignore[arg-type,return-value]
    for label, used in [("openai:gpt-4o-mini", False), (model.label, True), ("", True)]:
        save_calibration(replace(fitted, model=label), target)
        result = _chat(model, scenario_dir).extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
        assert all(f.calibrated == used for f in result.fields.values()), label
        assert not [w for w in result.warnings if "calibration" in w]
        note = result.acceptance.note  # type: ignore[union-attr]
        if used:
            assert result.acceptance.calibration == str(target) and not note  # type: ignore[union-attr]
        else:
            assert result.accepted == [] and f"fitted with openai:gpt-4o-mini, not {model.label}" in note
            assert note.endswith("no field can be accepted at 99% precision")
    assert json.loads(target.read_text(encoding="utf-8"))["model"] == ""  # written, and read back


def test_results_old_and_new_load_back(scenario_dir: Path) -> None:
    _calibrate(scenario_dir)
    result = _chat(ScriptedChatModel([reply({**RIGHT, "total": "10.00"}), reply(RIGHT)]), scenario_dir).extract(
        str(RECEIPT), keys=KEYS, scenario="retail_receipt"
    )
    again = Extraction.from_json(result.to_json())
    assert again.fields["total"].signals == result.fields["total"].signals
    assert again.checks == result.checks and again.acceptance == result.acceptance
    assert again.rechecks == result.rechecks and again.to_review == result.to_review
    old = json.loads(result.to_json())
    for member in ("checks", "acceptance", "rechecks"):
        del old[member]
    for field in old["fields"].values():
        for member in ("grounding_confidence", "calibrated", "signals", "signals_used", "decision"):
            del field[member]
    before = Extraction.from_dict(old)  # a record written before trust existed
    assert before.fields["total"].decision is None and before.review_summary() is None and not before.needs_review
    assert before.fields["total"].signals is None and before.checks == []


def _second_looker(first: ChatReply, choose: str | None) -> ScriptedChatModel:
    """The extraction's answer, then, asked a second look, the number of the candidate `choose`
    (None: 0, none of them)."""

    def answer(messages: Any, settings: Any) -> Any:
        last = messages[-1]
        if last.kind != "second_look":
            return first
        numbers = dict(re.findall(r"^(\d+)\. (.+?)(?:    \[|$)", last.content, flags=re.M))
        picked = next((n for n, text in numbers.items() if text.strip() == choose), "0")
        return json.dumps({"total": int(picked)})

    return ScriptedChatModel(answer)


@pytest.mark.parametrize(("choose", "agreed"), [("10.00", True), ("9.00", False), (None, False)])
def test_a_second_look_at_a_value_the_model_was_unsure_of(scenario_dir: Path, choose: str | None, agreed: bool) -> None:
    cash = {**RIGHT, "total": "10.00"}  # the CASH line, written unsure; the re-ask answers the same
    model = _second_looker(reply(cash, {"total": 0.4, "date": 0.95}), choose)
    chat = _chat(model, scenario_dir, second_look=True, second_look_below=0.9)
    result = chat.extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt")
    assert [c.purpose for c in result.calls] == ["extract", "repair", "second_look"]
    question = result.calls[-1].messages[-1]["content"]
    # The value and its rivals from the rows naming the field, numbered, in reading order.
    assert re.findall(r"^\d+\. (\S+)", question, flags=re.M) == ["9.00", "9.00", "10.00"]
    assert "[on the row: CASH" in question
    assert "date" not in question.split("\n", 1)[1]  # 0.95 is not below 0.9: only the total is looked at
    assert len(question) < 1200  # no document, no examples: a short question
    assert result.fields["total"].signals.second_look is agreed  # type: ignore[union-attr]
    assert result.fields["date"].signals.second_look is None  # type: ignore[union-attr]
    assert result.values["total"] == "10.00"  # a signal only: the value stays the loop's
    assert "second_look" in result.fields["total"].signals.available  # type: ignore[union-attr]


def test_no_second_look_when_sure_or_off_or_out_of_budget_or_without_rivals(scenario_dir: Path) -> None:
    sure = _chat(_second_looker(reply(RIGHT), "9.00"), scenario_dir, second_look=True)
    assert [c.purpose for c in sure.extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt").calls] == ["extract"]
    alone = _chat(_second_looker(reply(RIGHT, {"total": 0.4}), "9.00"), scenario_dir, second_look=True)
    # every text a total row holds is 9.00, the value itself: nothing to choose between
    assert [c.purpose for c in alone.extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt").calls] == ["extract"]
    off = _chat(_second_looker(reply(RIGHT, {"total": 0.4}), "9.00"), scenario_dir)
    assert [c.purpose for c in off.extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt").calls] == ["extract"]
    spent = _chat(_second_looker(reply(RIGHT, {"total": 0.4}), "9.00"), scenario_dir, second_look=True, max_tokens=100)
    assert [c.purpose for c in spent.extract(str(RECEIPT), keys=KEYS, scenario="retail_receipt").calls] == ["extract"]
