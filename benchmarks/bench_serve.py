"""What the HTTP service costs and whether it holds under load (`chatocr serve`, a real uvicorn
subprocess on 127.0.0.1, httpx clients in this process).

1. Overhead: POST /v1/extract with OCR text and chatocr's scripted backend answering instantly,
   N requests (default 1000) at concurrency 32. Median and p99 latency and errors (target 0); and
   the service's cost per request against an in-process `aextract` of the same document in the
   same run, both at concurrency 32: (service wall time - in-process wall time) / N.
   Target: <= 5 ms. Also the same difference one request at a time (median latencies).
2. Load held: 500 requests at concurrency 64, a backend of 200 ms latency, 4 slots and a queue of
   32: every request is answered (a result or 429), none lost (no transport error, no 5xx), and the
   server's RSS grows by <= 50 MB over the run.

    python benchmarks/bench_serve.py                 # both, about 1-2 minutes on 2 cores
    python benchmarks/bench_serve.py --requests 200  # shorter

The client shares the machine's cores with the server: the latencies include the client's time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from chatocr import ChatOCR
from chatocr.llm.registry import get_chat_model
from chatocr.ocr.text import TextEngine

REPO = Path(__file__).resolve().parent.parent
CHATOCR = Path(sys.executable).with_name("chatocr")
TEXT = "SHOP ABC SDN BHD\nNO 12 JALAN BESAR\nDATE 25/12/2018\nTOTAL 9.00\n"
KEYS = ["company", "date", "total"]
ANSWER = {"company": "SHOP ABC SDN BHD", "date": "25/12/2018", "total": "9.00"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, latency: float, *args: str) -> None:
        self.folder = tempfile.TemporaryDirectory()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CHATOCR_SCRIPTED_ANSWERS": json.dumps({"answers": [ANSWER], "latency": latency}),
            "CHATOCR_CACHE_DIR": self.folder.name,
        }
        env.pop("CHATOCR_SERVE_TOKENS", None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(self.folder.name) / "server.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(CHATOCR),
                "serve",
                "--port",
                str(self.port),
                "--llm",
                "scripted",
                "--ocr",
                "text",
                "--data-dir",
                self.folder.name,
                *args,
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        end = time.monotonic() + 120
        while time.monotonic() < end:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not become ready")

    def server_times(self) -> list[float]:
        """Seconds the server spent on each POST /v1/extract so far (its access log: from the
        request's arrival to the last byte of the answer, without the client's or the network's time)."""
        self._log.flush()
        times = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if "chatocr.serve.access" in line and "POST /v1/extract" in line:
                times.append(float(line.split(" caller=")[0].rsplit(" ", 1)[1].removesuffix("ms")) / 1000)
        return times

    def close(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        self._log.close()
        self.folder.cleanup()


async def fire(url: str, count: int, concurrency: int) -> tuple[list[float], dict[str, int], float]:
    """`count` POSTs, `concurrency` in flight. Latencies of answered requests, outcome counts, wall."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    body = {"text": TEXT, "keys": KEYS}
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.post(f"{url}/v1/extract", json=body)
                except httpx.TransportError as exc:
                    outcomes[f"lost: {type(exc).__name__}"] = outcomes.get(f"lost: {type(exc).__name__}", 0) + 1
                    return
                latencies.append(time.perf_counter() - started)
                key = str(response.status_code)
                if response.status_code == 200 and response.json()["values"] != ANSWER:
                    key = "200 wrong values"
                outcomes[key] = outcomes.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return latencies, outcomes, time.perf_counter() - started


async def in_process(count: int, concurrency: int) -> tuple[float, float]:
    """The same document through aextract in this process: (wall time at `concurrency`, median
    latency one at a time)."""
    os.environ["CHATOCR_SCRIPTED_ANSWERS"] = json.dumps({"answers": [ANSWER]})
    ocr = ChatOCR(llm=get_chat_model("scripted"), ocr="text", ocr_cache=False)
    engine = TextEngine()
    await ocr.aextract(engine.read_text(TEXT), KEYS)  # warm-up
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            # parsed per request, as the service does
            result = await ocr.aextract(engine.read_text(TEXT), KEYS, raise_errors=False)
            assert result.values == ANSWER

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    wall = time.perf_counter() - started
    singles = []
    for _ in range(min(count, 200)):
        started = time.perf_counter()
        await ocr.aextract(engine.read_text(TEXT), KEYS)
        singles.append(time.perf_counter() - started)
    return wall, statistics.median(singles)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def overhead(requests: int) -> list[tuple[str, float, str, bool]]:
    server = Server(0.0, "--concurrency", "32", "--queue", str(requests), "--per-token", "32")
    try:
        asyncio.run(fire(server.url, 50, 8))  # warm-up
        before = len(server.server_times())
        latencies, outcomes, wall = asyncio.run(fire(server.url, requests, 32))
        loaded = server.server_times()[before:]
        before = len(server.server_times())
        singles, _, _ = asyncio.run(fire(server.url, min(requests, 200), 1))
        single_server = server.server_times()[before:]
    finally:
        server.close()
    local_wall, local_single = asyncio.run(in_process(requests, 32))
    errors = requests - outcomes.get("200", 0)
    added = (statistics.median(single_server) - local_single) * 1000
    per_request = (wall - local_wall) / requests * 1000
    print(
        f"overhead: {requests} requests at concurrency 32: outcomes {outcomes}, wall {wall:.2f} s "
        f"({requests / wall:.0f} req/s)"
    )
    print(
        f"  latency at the client: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99(latencies) * 1000:.1f} ms"
        f"; in the server: median {statistics.median(loaded) * 1000:.1f} ms, p99 {p99(loaded) * 1000:.1f} ms"
    )
    print(
        f"  in-process aextract, same concurrency: wall {local_wall:.2f} s; (service wall - in-process wall) / N "
        f"= {per_request:.2f} ms per request (client, sockets and server together)"
    )
    print(
        f"  one at a time: in the server {statistics.median(single_server) * 1000:.2f} ms, at the client "
        f"{statistics.median(singles) * 1000:.2f} ms, in-process aextract {local_single * 1000:.2f} ms"
    )
    print(
        f"  service overhead per request (in the server - in-process aextract, medians): {added:.2f} ms "
        f"(target <= 5 ms: {'met' if added <= 5 else 'NOT MET'})"
    )
    return [
        (f"overhead: errors in {requests} requests at c=32", float(errors), "0", errors == 0),
        ("overhead: client latency median at c=32 (ms)", statistics.median(latencies) * 1000, "(reported)", True),
        ("overhead: client latency p99 at c=32 (ms)", p99(latencies) * 1000, "(reported)", True),
        ("overhead: (service wall - in-process wall) / N at c=32 (ms)", per_request, "(reported)", True),
        ("overhead: per request, in the server - in-process aextract (ms)", added, "<= 5", added <= 5),
    ]


def load(requests: int) -> list[tuple[str, float, str, bool]]:
    server = Server(0.2, "--concurrency", "4", "--queue", "32", "--per-token", "4", "--timeout", "300")
    try:
        asyncio.run(fire(server.url, 20, 4))  # warm-up
        before = rss_mb(server.process.pid)
        _latencies, outcomes, wall = asyncio.run(fire(server.url, requests, 64))
        after = rss_mb(server.process.pid)
        alive = httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.close()
    answered = outcomes.get("200", 0) + outcomes.get("429", 0)
    lost = requests - answered
    growth = after - before
    print(
        f"load: {requests} requests at concurrency 64, backend 200 ms, 4 slots + queue 32: {outcomes} in {wall:.1f} s"
    )
    print(
        f"  answered {answered}/{requests} (lost {lost}); server RSS {before:.0f} -> {after:.0f} MB "
        f"(+{growth:.1f} MB, target <= 50); healthy after: {alive}"
    )
    return [
        (
            "load: requests answered (result or 429) of 500" if requests == 500 else f"load: answered of {requests}",
            float(answered),
            f"= {requests}",
            answered == requests and alive,
        ),
        ("load: requests lost", float(lost), "0", lost == 0),
        ("load: server RSS growth (MB)", growth, "<= 50", growth <= 50),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests of the overhead run (default 1000)")
    parser.add_argument("--load-requests", type=int, default=500, help="requests of the load run (default 500)")
    args = parser.parse_args()
    results = overhead(args.requests) + load(args.load_requests)
    print(
        "BENCH-JSON "
        + json.dumps(
            {
                "benchmark": "serve",
                "results": [{"name": n, "value": round(v, 3), "target": t, "met": m} for n, v, t, m in results],
            }
        )
    )
    return 0 if all(m for *_, m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
