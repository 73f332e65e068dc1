"""`chatocr warm SCENARIO...`: the local model's examples evaluated ahead of the first document.

Setup runs it for the main job's scenario, so a fresh machine's first receipt does not spend
15-25 s evaluating examples; run it for your own scenarios (in a container build, before a service
takes traffic) for the same effect. See chatocr/extraction/warming.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from chatocr import progress
from chatocr.cli.common import add_backend_options, keys_option, make_chatocr
from chatocr.cli.status import StatusLine
from chatocr.extraction.warming import WarmedSet
from chatocr.llm.prefix_state import NOT_ON_DISK

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "warm",
        help="evaluate a scenario's examples for the local model now, so its first document does not wait",
        description="Compute and keep (in chatocr's cache) the local model's state after the instructions and "
        "each set of examples a document of the scenario can get; later processes restore it in ~0.1 s.",
    )
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario name or YAML file")
    p.add_argument("-k", "--keys", type=keys_option, help="the keys documents will be asked (default: its fields)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary line")
    add_backend_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # A terminal shows what is happening (loading the model, evaluating N tokens...) from the start;
    # the first set alone can take half a minute.
    with StatusLine.for_terminal(args.quiet) as status, progress.listening(status.update):
        status.say("starting…")
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    chat = make_chatocr(args)
    started = time.perf_counter()
    counts: dict[str, int] = {}
    lost = 0  # sets kept in this process's memory only

    def report(result: WarmedSet, index: int, total: int) -> None:
        nonlocal lost
        source = result.source.removesuffix(NOT_ON_DISK)
        counts[source] = counts.get(source, 0) + 1
        lost += source != result.source
        if not args.quiet:
            ids = ", ".join(result.examples) or "no examples"
            print(f"{result.scenario} [{index}/{total}] {ids}: {result.source} ({result.seconds:.1f} s)", flush=True)

    for name in args.scenarios:
        warmed = chat.warm(name, args.keys, on_set=report)
        if warmed and warmed[0].source == "none":
            print(
                f"{chat.model.provider}: no prefix state is kept (a remote backend, or llm_options prefix_cache "
                "is off); nothing to warm",
                file=sys.stderr,
            )
            return 0
    done = ", ".join(f"{n} {source}" for source, n in sorted(counts.items()))
    print(f"warmed {sum(counts.values())} example set(s) in {time.perf_counter() - started:.1f} s: {done}")
    if lost:
        print(
            f"but {lost} of them {'is' if lost == 1 else 'are'} not kept on disk (see any warning above), so a new "
            "process evaluates them again: make chatocr's cache directory writable (CHATOCR_CACHE_DIR) and leave "
            "llm_options prefix_cache_mb above the states' size (25-50 MB each)",
            file=sys.stderr,
        )
        return 1
    return 0
