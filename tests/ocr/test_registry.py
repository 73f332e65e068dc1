"""Engines by name: built-ins, runtime registration, entry-point plugins, clear errors; the public
surface; and the promise that importing chatocr does not import the heavy engines."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import chatocr.ocr
from chatocr.errors import ConfigError, MissingDependencyError
from chatocr.ocr import OCREngine, available_ocr_engines, get_ocr_engine, register_ocr_engine
from chatocr.ocr import registry as registry_module

from .helpers import FakeEngine


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(registry_module._registered)
    yield
    registry_module._registered.clear()
    registry_module._registered.update(saved)


def test_unknown_engine_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"Unknown OCR engine 'tesseract'.*paddle, rapid, text, vlm"):
        get_ocr_engine("tesseract")


def test_register_and_get(clean_registry: None) -> None:
    register_ocr_engine("fake", FakeEngine)
    engine = get_ocr_engine("fake", setting="z")
    assert isinstance(engine, FakeEngine) and isinstance(engine, OCREngine)
    assert engine.setting == "z"
    assert "fake" in available_ocr_engines()
    with pytest.raises(ConfigError, match="already exists"):
        register_ocr_engine("fake", FakeEngine)
    with pytest.raises(ConfigError, match="already exists"):
        register_ocr_engine("rapid", FakeEngine)
    register_ocr_engine("fake", FakeEngine, replace=True)
    with pytest.raises(ConfigError, match="Invalid OCR engine name"):
        register_ocr_engine("bad name!", FakeEngine)
    with pytest.raises(ConfigError, match="Bad options"):
        get_ocr_engine("text", colour="blue")


def test_third_party_engine_through_an_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myocr_plugin.py").write_text(
        "from chatocr.ocr.text import TextEngine\n"
        "class MyEngine(TextEngine):\n"
        "    name = 'myocr'\n"
        "def make_engine(**options):\n"
        "    return MyEngine(**options)\n"
    )
    dist = tmp_path / "myocr_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myocr-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[chatocr.ocr]\nmyocr = myocr_plugin:make_engine\nbroken = myocr_plugin:does_not_exist\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert {"myocr", "broken"} <= set(available_ocr_engines())
    engine = get_ocr_engine("myocr")
    assert engine.name == "myocr"
    assert engine.read(b"hello\nworld").text() == "hello\nworld"
    with pytest.raises(ConfigError, match=r"plugin 'broken'.*failed to load"):
        get_ocr_engine("broken")


def test_missing_engine_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "chatocr\[rapid\]"'):
        get_ocr_engine("rapid")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "paddleocr" else real_find_spec(name, *a)
    )
    with pytest.raises(MissingDependencyError, match=r'pip install "chatocr\[paddle\]"'):
        get_ocr_engine("paddle")


def test_public_surface_is_complete() -> None:
    public = {
        name
        for name, value in vars(chatocr.ocr).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(chatocr.ocr.__all__) == public
    for name in chatocr.ocr.__all__:
        assert getattr(chatocr.ocr, name) is not None


def test_importing_chatocr_ocr_stays_light() -> None:
    code = (
        "import sys, chatocr, chatocr.ocr\n"
        "names = ('rapidocr', 'paddleocr', 'paddle', 'onnxruntime', 'cv2', 'pypdfium2')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
