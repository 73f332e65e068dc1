"""How many threads llama.cpp should use for the next call, on a machine shared with others.

llama.cpp's worker threads meet at a barrier after every layer, spinning while they wait. With as
many threads as cores, one other busy process (or OCR of the next document in this process) takes a
core from one of them and every barrier waits for the preempted thread: a 2-core machine measured
2.6x slower with one competitor, not the 2x a fair share would give. So each call uses the cores
that are idle at that moment, at least one:

    threads = clamp(usable_cpus - other_runnable_threads, 1, usable_cpus)

`usable_cpus` is this process's CPU affinity (containers often allow fewer than os.cpu_count()),
`other_runnable_threads` the kernel's count of runnable threads (/proc/loadavg's fourth field, minus
the calling thread), the smallest of five samples over 60 ms: a thread that is busy only for a
moment is not a competitor. (onnxruntime's workers spin for some milliseconds after each OCR run;
sampled right after OCR, one look counted them and ran the whole prompt on one core, 2x slower.)
A `threads` setting in the config replaces the rule with a fixed number. Where /proc/loadavg does
not exist (macOS, Windows) every usable CPU is used, as before.
"""

from __future__ import annotations

import os
import time

from chatocr.cores import usable_cpus

__all__ = ["runnable_threads", "threads_for_call", "usable_cpus"]


def runnable_threads(samples: int = 5, interval: float = 0.015) -> int | None:
    """Runnable threads on the machine, the caller included: the fewest seen in `samples` looks
    `interval` seconds apart (None where unknown)."""
    counts = []
    for i in range(samples):
        count = _runnable_now()
        if count is None:
            return None
        counts.append(count)
        if i + 1 < samples:
            time.sleep(interval)
    return min(counts)


def _runnable_now() -> int | None:
    """The kernel's count of runnable threads at this instant (/proc/loadavg's fourth field)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            return int(handle.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def threads_for_call(configured: int | None = None) -> int:
    """Threads for the next llama.cpp call: the configured number, else the idle cores (>= 1)."""
    cpus = usable_cpus()
    if configured:
        return max(1, configured)
    running = runnable_threads()
    if running is None:
        return cpus
    # Runnable threads are counted machine-wide: on a host with more CPUs than this process may
    # use, only the share that lands on our CPUs competes with us.
    others = max(0, running - 1) * cpus / max(cpus, os.cpu_count() or cpus)
    return max(1, min(cpus, cpus - round(others)))
