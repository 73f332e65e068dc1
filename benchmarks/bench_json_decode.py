"""How long Python holds its interpreter lock decoding a large JSON request body, and what the
service's decoding process costs it instead (chatocr/serve/decoding.py, issue 34).

The server's event loop needs that lock to answer anyone, /healthz included, and json.loads holds
it for a whole string: the numbers below are the longest single stall a body of that kind causes
in the server when decoded there, against the cost that stays in the server when the child
decodes it (unpickling the value it sends back).

    python benchmarks/bench_json_decode.py            # ~10 s
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import statistics
import time
from collections.abc import Callable

from chatocr.fileio import parse_json


def _best_ms(work: Callable[[bytes], object], data: bytes, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work(data)
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def _bounded(body: bytes) -> object:
    """The service's reader: chatocr's bounded JSON (depth, number length, duplicate members)."""
    return parse_json(body, "body", unique_members=True)


def main() -> int:
    bodies = {
        "15 MB of OCR text, 1.4 M lines": json.dumps({"text": "TOTAL 9.00\n" * 1_400_000}).encode(),
        "15 MB base64 image": json.dumps({"image_base64": base64.b64encode(os.urandom(11_000_000)).decode()}).encode(),
        "3 MB of OCR text, 10,000 lines": json.dumps(
            {"text": "\n".join("ITEM " + "ABCDEFGHIJ " * 27 + "9.00" for _ in range(10_000))}
        ).encode(),
        "1 MB of OCR text": json.dumps({"text": "TOTAL 9.00\n" * 95_000}).encode(),
    }
    print(f"{'body':34s} {'bytes':>11s} {'json.loads ms':>14s} {'bounded reader ms':>18s} {'unpickle ms':>12s}")
    ratios = []
    for name, body in bodies.items():
        loads = _best_ms(json.loads, body)
        bounded = _best_ms(_bounded, body)
        pickled = pickle.dumps((True, _bounded(body)), protocol=pickle.HIGHEST_PROTOCOL)
        unpickle = _best_ms(pickle.loads, pickled)
        ratios.append(bounded / unpickle)
        print(f"{name:34s} {len(body):11,d} {loads:14.1f} {bounded:18.1f} {unpickle:12.1f}")
    ratio = statistics.median(ratios)
    print(f"\nstall in the server, decoded there / decoded in the child: median {ratio:.1f}x")
    result = {"name": "stall decoded in the server / in the child (median)", "value": round(ratio, 1)}
    print("BENCH-JSON " + json.dumps({"benchmark": "json_decode", "results": [{**result, "target": "(reported)"}]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
