"""The CPU cores this process's own work other than the local model is busy on right now.

On a laptop CPU the OCR of the next documents and the local model's decoding share the same few
cores. llama.cpp's threads meet at a barrier after every layer and spin while they wait, so a core
taken from one of them by this very process's OCR stalls every step (on 2 cores, OCR with two
onnxruntime threads beside a two-thread decode oversubscribed the machine twice over). The OCR
engines announce the cores they run on while they run (`taking`), and the local model's batch
engine (chatocr/llm/batch.py) reads `taken()` before every step and decodes on the cores left, or
waits while none are (`wait_until_below`): the process never runs more CPU-bound threads than cores.

Which of the two that gives, overlapping or taking turns, is the OCR's thread count: with one
onnxruntime thread the OCR and the model each have a core meanwhile; with as many threads as cores
(the default: onnxruntime's choice) the model waits while the OCR runs. docs/benchmarks.md, "OCR
beside the model", measures a folder with the OCR beside the model against the OCR first, alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = ["taken", "taking", "usable_cpus", "wait_until_below"]

_taken = 0
_changed = threading.Condition()


def usable_cpus() -> int:
    """CPUs this process may run on (containers often allow fewer than os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def taking(cores: int) -> Iterator[None]:
    """Announce `cores` cores busy with this process's own work (OCR) for the duration of the block."""
    global _taken
    cores = max(0, int(cores))
    with _changed:
        _taken += cores
    try:
        yield
    finally:
        with _changed:
            _taken -= cores
            _changed.notify_all()


def taken() -> int:
    """Cores this process's own work other than the model announces busy at this instant."""
    return _taken


def wait_until_below(cores: int, timeout: float) -> int:
    """Wait (at most `timeout` seconds) until fewer than `cores` cores are announced busy; the
    number busy when it returns."""
    with _changed:
        _changed.wait_for(lambda: _taken < cores, timeout=timeout)
        return _taken
