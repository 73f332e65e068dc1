"""The parts import only the parts below them (docs/architecture.md): the import-linter contract in
pyproject.toml holds, the page draws the same layers as the contract, and the check would see an
import that runs back up."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _contract() -> dict[str, object]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return contract  # type: ignore[no-any-return]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_import_runs_back_up_the_layers() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_the_architecture_page_draws_the_contracts_layers() -> None:
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```text\n# layers, top to bottom\n(.*?)```", page, re.S)
    assert block is not None, "docs/architecture.md has no '# layers, top to bottom' block"
    drawn = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    assert [line for line in drawn if line] == _contract()["layers"]


def test_an_import_running_back_up_is_caught(tmp_path: Path) -> None:
    """A copy of the package where the results log imports the command line: the contract breaks
    and names the import."""
    shutil.copytree(REPO / "chatocr", tmp_path / "chatocr", ignore=shutil.ignore_patterns("__pycache__", "assets"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    log = tmp_path / "chatocr" / "runs" / "log.py"
    log.write_text(log.read_text(encoding="utf-8") + "\n\ndef _late() -> None:\n    import chatocr.cli.main\n")
    done = _lint(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "chatocr.runs.log -> chatocr.cli.main" in done.stdout
