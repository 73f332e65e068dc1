"""benchmarks/run_all.py reads both BENCH-JSON lines and plain MET / NOT MET text."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module
    spec.loader.exec_module(module)
    return module


def test_machine_readable_lines() -> None:
    run_all = _run_all()
    out = (
        'text\nBENCH-JSON {"benchmark": "x", "results": [{"name": "a", "value": 1.5, "unit": "ms", '
        '"target": "<= 2", "met": true}, {"name": "b", "value": 3, "target": ">= 4", "met": false}]}\n'
    )
    rows, readable = run_all.parse_output("x", out)
    assert readable and [(r.name, r.met) for r in rows] == [("a", True), ("b", False)]
    table = run_all.summary_table([run_all.Outcome("bench_x", [], 0, 1.0, out, "", rows, True)])
    assert table[0] == ["x", "a", "1.5 ms", "<= 2", "MET"] and table[1][4] == "NOT MET"


def test_text_fallback() -> None:
    run_all = _run_all()
    out = (
        "openai raw 1.00 ms | chat 1.05 ms = 1.050x (target <= 1.10x: met) | chat_sync\n"
        "local speed-up 1.20x (target >= 1.5x: NOT met)\n"
        "nothing to see\n"
    )
    rows, readable = run_all.parse_output("backends", out)
    assert not readable and [r.met for r in rows] == [True, False]
