"""The calibrated confidence: a known logistic relation is recovered, held-out scores are honest,
a signal missing at run time never feeds a model that needs it, and a calibration file that cannot
be used gives one warning and no calibration, never a crash."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest

from chatocr.calibration import (
    VERSION,
    Calibration,
    CalibrationStore,
    FieldSignals,
    Sample,
    calibration_path,
    expected_calibration_error,
    fit_calibration,
    read_calibration,
    save_calibration,
)
from chatocr.errors import CalibrationError


def _truth(label: float, ocr: float, failed: int, field: str) -> float:
    """The probability a value is right, as the synthetic world makes it."""
    offset = {"company": -1.0, "total": 0.5, "date": 1.0}[field]
    return 1 / (1 + math.exp(-(-6.0 + 3.0 * label + 6.0 * ocr - 2.5 * failed + offset)))


def _world(documents: int, seed: int = 3, probability: bool = False) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for d in range(documents):
        for field in ("company", "total", "date"):
            label = float(rng.choice([0.0, 0.7, 0.9, 1.0]))
            ocr = float(rng.uniform(0.6, 1.0))
            failed = int(rng.uniform() < 0.15)
            p = _truth(label, ocr, failed, field)
            signals = FieldSignals(
                status="grounded",
                ocr_confidence=ocr,
                match="exact",
                match_score=1.0,
                label_score=label,
                checks_failed=("sum",) if failed else (),
                checked=True,
                value_probability=float(rng.uniform(0.5, 1.0)) if probability else None,
            )
            samples.append(Sample(f"doc{d}", field, signals, bool(rng.uniform() < p)))
    return samples


@pytest.fixture(scope="module")
def fitted() -> tuple[Calibration, list[Sample]]:
    samples = _world(800)
    return fit_calibration(samples, "receipt", folds=5, seed=0), samples


def test_a_known_logistic_relation_is_recovered(fitted: tuple[Calibration, list[Sample]]) -> None:
    calibration, _ = fitted
    fresh = _world(300, seed=11)
    predicted = np.array([calibration.confidence(s.signals, s.field) for s in fresh])
    truth = np.array(
        [
            _truth(s.signals.label_score or 0, s.signals.ocr_confidence or 0, len(s.signals.checks_failed), s.field)
            for s in fresh
        ]
    )
    assert float(np.mean(np.abs(predicted - truth))) < 0.03
    assert float(np.corrcoef(predicted, truth)[0, 1]) > 0.98


def test_held_out_scores_are_calibrated_and_say_where_to_accept(fitted: tuple[Calibration, list[Sample]]) -> None:
    calibration, samples = fitted
    held = calibration.held_out
    assert held is not None and held.folds == 5 and held.fields == len(samples)
    assert held.ece < 0.04
    threshold = calibration.accept_threshold(0.95)
    assert threshold is not None and 0.5 < threshold < 1.0
    # on fresh documents from the same world, what is accepted there is about as right as promised
    fresh = _world(600, seed=21)
    accepted = [s.correct for s in fresh if (calibration.confidence(s.signals, s.field) or 0) >= threshold]
    assert len(accepted) > 100 and float(np.mean(accepted)) > 0.93


def test_the_raw_confidence_of_the_same_world_is_not_calibrated(fitted: tuple[Calibration, list[Sample]]) -> None:
    _, samples = fitted
    today = [(s.signals.ocr_confidence or 0) * (s.signals.match_score or 0) for s in samples]
    calibrated = [fitted[0].confidence(s.signals, s.field) for s in samples]
    right = [s.correct for s in samples]
    assert expected_calibration_error(today, right) > 3 * expected_calibration_error(calibrated, right)


def test_a_model_needing_a_signal_is_not_used_without_it() -> None:
    calibration = fit_calibration(_world(200, probability=True), "receipt", folds=3)
    assert [m.name for m in calibration.models] == ["with_probability", "base"]
    signals = _world(1, seed=5, probability=True)[0].signals
    assert calibration.model_for(signals).name == "with_probability"  # type: ignore[union-attr]
    without = FieldSignals(**{**signals.to_dict(), "value_probability": None, "checks_failed": ()})
    assert calibration.model_for(without).name == "base"  # type: ignore[union-attr]
    assert 0.0 < (calibration.confidence(without, "total") or 0) < 1.0


def test_fitting_on_what_cannot_give_a_calibration_is_a_clear_error() -> None:
    one_document = [Sample("d", "total", FieldSignals("grounded"), i % 2 == 0) for i in range(10)]
    with pytest.raises(CalibrationError, match="too few"):
        fit_calibration(one_document, "receipt")
    all_right = [Sample(f"d{i}", "total", FieldSignals("grounded"), True) for i in range(10)]
    with pytest.raises(CalibrationError, match="All 10 labelled fields were right"):
        fit_calibration(all_right, "receipt")


def test_a_file_round_trips(tmp_path: Path, fitted: tuple[Calibration, list[Sample]]) -> None:
    calibration, samples = fitted
    path = calibration_path(tmp_path / "receipt.yaml")
    assert path.name == "receipt.calibration.json"
    save_calibration(calibration, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"], data["scenario"]) == ("chatocr.calibration", VERSION, "receipt")
    assert data["fitted_on"] == {"documents": 800, "fields": 2400, "right": sum(s.correct for s in samples)}
    assert set(data["held_out"]["accept"]) == {"0.9", "0.95", "0.98", "0.99"}
    loaded = read_calibration(path, "receipt")
    assert loaded.warning is None and loaded.calibration is not None
    for sample in samples[:50]:
        a = calibration.confidence(sample.signals, sample.field)
        b = loaded.calibration.confidence(sample.signals, sample.field)
        assert a == pytest.approx(b, abs=1e-8)
    assert loaded.calibration.accept_threshold(0.95) == calibration.accept_threshold(0.95)


def _corrupt(data: dict[str, object], change: str) -> str:
    model = data["models"][0]  # type: ignore[index]
    if change == "version":
        data["version"] = VERSION + 1
    elif change == "scenario":
        data["scenario"] = "vat_invoice"
    elif change == "weights":
        model["weights"] = model["weights"][:-1]
    elif change == "feature":
        model["features"][0] = "shoe_size"
    elif change == "scale":
        model["scale"][0] = 0
    elif change == "nan":
        return json.dumps(data).replace(str(model["bias"]), "NaN", 1)
    elif change == "truncated":
        return json.dumps(data)[:200]
    elif change == "not json":
        return "calibration: yes\n"
    elif change == "list":
        return "[1, 2, 3]"
    return json.dumps(data)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("version", f"format version {VERSION + 1}; this chatocr reads version {VERSION}"),
        ("scenario", "fitted for scenario 'vat_invoice', not 'receipt'"),
        ("weights", "weights is not"),
        ("feature", "unknown feature 'shoe_size'"),
        ("scale", "scale is not positive"),
        ("nan", "NaN is not a number"),
        ("truncated", "not readable JSON"),
        ("not json", "not readable JSON"),
        ("list", "not a chatocr calibration file"),
    ],
)
def test_an_unusable_file_gives_one_warning_and_no_calibration(
    tmp_path: Path, fitted: tuple[Calibration, list[Sample]], change: str, reason: str
) -> None:
    path = tmp_path / "receipt.calibration.json"
    path.write_text(_corrupt(fitted[0].to_dict(), change), encoding="utf-8")
    loaded = read_calibration(path, "receipt")
    assert loaded.calibration is None
    assert loaded.warning is not None and reason in loaded.warning and str(path) in loaded.warning
    assert "uncalibrated confidence is used" in loaded.warning


def test_unreadable_files(tmp_path: Path) -> None:
    assert read_calibration(tmp_path / "absent.calibration.json", "receipt") == read_calibration(
        tmp_path / "also-absent.json", "receipt"
    )
    assert read_calibration(tmp_path / "absent.json", "receipt").warning is None  # no file, no warning
    directory = tmp_path / "dir.calibration.json"
    directory.mkdir()
    assert read_calibration(directory, "receipt").warning is not None
    binary = tmp_path / "binary.calibration.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert read_calibration(binary, "receipt").warning is not None
    huge = tmp_path / "huge.calibration.json"
    with huge.open("wb") as handle:
        handle.truncate(6 * 1024 * 1024)
    assert "over" in (read_calibration(huge, "receipt").warning or "")


def test_the_store_warns_once_per_file_version(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "receipt.calibration.json"
    path.write_text("{broken", encoding="utf-8")
    store = CalibrationStore()
    with caplog.at_level(logging.WARNING, logger="chatocr.calibration"):
        for _ in range(5):
            assert store.get(path, "receipt").calibration is None
    assert len([r for r in caplog.records if "receipt.calibration.json" in r.getMessage()]) == 1
    path.write_text("{broken again", encoding="utf-8")
    os.utime(path, ns=(1, 2))  # a new version of the file
    with caplog.at_level(logging.WARNING, logger="chatocr.calibration"):
        store.get(path, "receipt")
    assert len([r for r in caplog.records if "receipt.calibration.json" in r.getMessage()]) == 2


def test_saving_refuses_a_planted_symlink_and_never_follows_it(
    tmp_path: Path, fitted: tuple[Calibration, list[Sample]]
) -> None:
    """Written through chatocr's one writer: a link at the name is refused before anything is
    written (docs/reliability.md), its target untouched."""
    from chatocr.errors import OutputPathError

    victim = tmp_path / "victim.txt"
    victim.write_text("user data", encoding="utf-8")
    path = tmp_path / "receipt.calibration.json"
    path.symlink_to(victim)
    with pytest.raises(OutputPathError):
        save_calibration(fitted[0], path)
    assert victim.read_text(encoding="utf-8") == "user data" and path.is_symlink()
    path.unlink()
    save_calibration(fitted[0], path)
    assert read_calibration(path, "receipt").calibration is not None
