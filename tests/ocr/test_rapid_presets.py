"""RapidOCR presets: named settings of the bundled models, part of the engine's cache key."""

from __future__ import annotations

import pytest

from chatocr.errors import ConfigError

rapid = pytest.importorskip("chatocr.ocr.rapid")
pytest.importorskip("rapidocr")


def test_a_preset_sets_its_params_and_changes_the_cache_key() -> None:
    default = rapid.RapidEngine()
    upscale = rapid.RapidEngine(preset="upscale")
    assert upscale.params["Global.min_side_len"] == 1200
    assert upscale.config_key() != default.config_key()  # a preset's OCR is cached apart
    mine = rapid.RapidEngine(preset="upscale", params={"Global.min_side_len": 900})
    assert mine.params["Global.min_side_len"] == 900  # explicit params win over the preset's


def test_an_unknown_preset_is_a_config_error_naming_the_presets() -> None:
    with pytest.raises(ConfigError) as error:
        rapid.RapidEngine(preset="server")
    assert "hires" in error.value.hint and "upscale" in error.value.hint
