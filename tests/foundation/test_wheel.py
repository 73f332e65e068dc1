"""chatocr works from a wheel install, not only from this checkout: the built-in prompts and
scenarios ship inside the package and are found at run time."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation --no-index: builds with the hatchling installed here, offline.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("chatocr-*.whl")
    return path


def test_wheel_contains_prompts_and_scenarios(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "chatocr/_builtin/prompts/zh/task.j2" in names
    assert "chatocr/_builtin/prompts/en/system.j2" in names
    assert "chatocr/_builtin/scenarios/vat_invoice.yaml" in names
    assert not any(name.startswith(("tests/", "prompts/", "scenarios/")) for name in names)


def test_wheel_ships_the_pages_script_and_style(wheel: Path) -> None:
    """The HTML report and the review app load nothing from the network: their script, style and
    page come from the package itself."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("review.html", "review.js", "review.css"):
        assert f"chatocr/review/assets/{asset}" in names
    for asset in ("report.html.j2", "report.js", "report.css"):
        assert f"chatocr/viewer/assets/{asset}" in names


def test_installed_wheel_finds_its_builtins(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    script = (
        "import chatocr, json\n"
        "from chatocr.resources import builtin_prompts_dir, builtin_scenarios_dir\n"
        "from chatocr.scenarios import load_scenarios\n"
        "from chatocr.conversation import load_prompts\n"
        "lib = load_scenarios(include_env=False)\n"
        "print(json.dumps({'file': chatocr.__file__, 'prompts': str(builtin_prompts_dir()),\n"
        "  'scenarios': str(builtin_scenarios_dir()), 'names': sorted(lib.names()),\n"
        "  'reminder': load_prompts('zh').render('reminder', title='发票', keys=['a'])}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("CHATOCR_SCENARIO_PATH", None)
    env.pop("CHATOCR_PROMPT_PATH", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
    )
    import json

    info = json.loads(result.stdout)
    assert info["file"].startswith(str(target))
    assert info["prompts"] == str(target / "chatocr" / "_builtin" / "prompts")
    assert info["scenarios"] == str(target / "chatocr" / "_builtin" / "scenarios")
    assert "vat_invoice" in info["names"] and "generic" in info["names"]
    assert "发票" in info["reminder"]
