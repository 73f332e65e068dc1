"""Calibration files: where they live, writing them safely, reading them with checks.

`<scenario>.calibration.json` sits beside the scenario's YAML, so users version it with the
scenario. Reading never raises: a file that cannot be used is ONE warning (logged once per file
version by `CalibrationStore`, returned for the result) and no calibration, so the uncalibrated
confidence is used. A missing file is no warning: most scenarios have none until fitted.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from chatocr.calibration.model import Calibration
from chatocr.fileio import atomic_write

__all__ = [
    "CalibrationStore",
    "LoadedCalibration",
    "calibration_path",
    "parse_calibration",
    "read_calibration",
    "save_calibration",
]

log = logging.getLogger("chatocr.calibration")

MAX_FILE_BYTES = 5 * 1024 * 1024  # a calibration is a few kilobytes; more is not one


def calibration_path(scenario_file: str | Path) -> Path:
    """Where a scenario's calibration lives: beside its YAML, `<name>.calibration.json`."""
    path = Path(scenario_file)
    return path.with_name(f"{path.stem}.calibration.json")


def save_calibration(calibration: Calibration, path: str | Path) -> None:
    """Write the file atomically (never half a file, never through a planted symlink)."""
    atomic_write(path, json.dumps(calibration.to_dict(), ensure_ascii=False, indent=1) + "\n")


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def parse_calibration(text: str, scenario: str) -> Calibration:
    """The calibration in `text` for `scenario`; ValueError saying what is wrong."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("it nests too deeply") from None
    except ValueError as error:
        raise ValueError(f"not readable JSON ({error})") from None
    return Calibration.from_dict(data, scenario)


@dataclass(frozen=True)
class LoadedCalibration:
    """A calibration, or None with the warning that says why not (None, None: no file). unused:
    why a readable calibration is not used here (fitted with another chat model): not a fault of
    the file, so not a warning; the accept rule's note says it."""

    calibration: Calibration | None
    warning: str | None = None
    unused: str | None = None


def read_calibration(path: str | Path, scenario: str) -> LoadedCalibration:
    """The file's calibration for `scenario`, checked; never raises."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"it is over {MAX_FILE_BYTES} bytes, which no calibration is")
        calibration = parse_calibration(path.read_text(encoding="utf-8"), scenario)
    except FileNotFoundError:
        return LoadedCalibration(None)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return LoadedCalibration(
            None,
            f"calibration {path}: {reason}; the uncalibrated confidence is used "
            "(fit the calibration again on labelled documents, or remove the file)",
        )
    return LoadedCalibration(calibration)


class CalibrationStore:
    """Calibrations by file, read once per file version (path, size, modification time); each
    unusable version logs its warning once, however many documents use it."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Path, str], tuple[tuple[int, int], LoadedCalibration]] = {}
        self._lock = threading.Lock()

    def get(self, path: str | Path, scenario: str) -> LoadedCalibration:
        path = Path(path)
        try:
            stat = path.stat()
            version = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            version = (-1, -1)
        key = (path, scenario)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
        loaded = read_calibration(path, scenario)
        with self._lock:
            self._cache[key] = (version, loaded)
        if loaded.warning:
            log.warning("%s", loaded.warning)
        return loaded
