"""The HTTP service under a mix of good and hostile requests (issue 34): `chatocr serve --llm
scripted --ocr text` as a uvicorn subprocess on 127.0.0.1 with its default limits (4 slots, a
queue of 32, a 20 MB body), httpx clients in this process, /healthz polled by a process of its own.

Two phases in one run, each N requests (default 1000) at concurrency 32:

1. baseline: every request good (POST /v1/extract as JSON and as an upload, /v1/chat, an inline
   scenario), so the same clients and polling give the numbers without hostility;
2. hostile: the same good requests with a third of them (by default) replaced by hostile ones, a
   spread over every class of issue 34's part 2 (a scenario path, JSON nested 100,000 deep, a
   5,000-digit number, duplicate members, keys with NULs, 10,000 keys, 500 keys, two files, 10,000
   form fields, a file name with folders, an unknown route, a wrong method, a job offset past
   2**63, a NUL in a job folder, inline YAML alias bombs and oversize, a declared body over the
   limit, a schema of 9,000 properties and the biggest one allowed, 15 MB of OCR text in 1.4 M
   lines, 3 MB in 10,000 lines (more than the model reads), a client hanging up mid-upload).

Targets: no 5xx and no lost request; every good request answered with the right values; every
hostile one a 4xx in chatocr's error shape; /healthz answering within 100 ms throughout (max and
p99 of the poller's round trips); the server's log free of tracebacks. Reported: the server's RSS
before, at its peak and after each phase.

    python benchmarks/bench_serve_hostile.py                    # ~3-5 minutes on 2 cores
    python benchmarks/bench_serve_hostile.py --requests 300     # shorter
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chatocr.extraction.request import MAX_KEYS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import ANSWER, CHATOCR, KEYS, REPO, TEXT, free_port, p99, rss_mb

TOKEN = "bench-token-0123456789abcdef"
HEALTHZ_TARGET_MS = 100.0
INLINE = """name: bench_inline
title: Receipt
language: en
description: a shop receipt
fields:
  - name: company
  - name: date
    type: date
  - name: total
    type: amount
examples:
  - text: |-
      KEDAI EXAMPLE SDN BHD
      DATE 01/02/2019
      TOTAL 4.20
    answer: {company: KEDAI EXAMPLE SDN BHD, date: 01/02/2019, total: "4.20"}
"""


class Server:
    """`chatocr serve` with a token, a job root and its default limits; its log and its RSS."""

    def __init__(self) -> None:
        self.folder = tempfile.TemporaryDirectory()
        root = Path(self.folder.name)
        (root / "scans").mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HOME": str(root),
            "CHATOCR_SCRIPTED_ANSWERS": json.dumps({"answers": [ANSWER], "latency": 0.0}),
            "CHATOCR_CACHE_DIR": str(root / "cache"),
            "CHATOCR_SERVE_TOKENS": TOKEN,
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        self._log = self.log_path.open("wb")
        args = ["--llm", "scripted", "--ocr", "text", "--data-dir", str(root / "data")]
        self.process = subprocess.Popen(
            [str(CHATOCR), "serve", "--port", str(self.port), *args, "--job-folder", str(root / "scans")],
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

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        self._log.close()
        self.folder.cleanup()


# ---- what is sent --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One request: how to send it, and what answer is right for it."""

    kind: str
    method: str = "POST"
    route: str = "/v1/extract"
    options: dict[str, Any] = field(default_factory=dict)  # httpx keyword arguments
    raw: Callable[[int], int] | None = None  # a socket-level request: returns the status seen (0: none)
    good: bool = False
    statuses: tuple[int, ...] = (400,)


def _form(files: Any, data: dict[str, str] | None = None) -> dict[str, Any]:
    """A multipart body encoded once (httpx would encode 10,000 fields again for every request,
    and the client's CPU is the server's too on this machine)."""
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return {"content": request.read(), "headers": {"content-type": request.headers["content-type"]}}


def _good_requests() -> list[Sent]:
    upload = {"file": ("receipt.txt", TEXT.encode(), "text/plain")}
    return [
        Sent("good: extract JSON", options={"json": {"text": TEXT, "keys": KEYS}}, good=True, statuses=(200,)),
        Sent("good: extract upload", options=_form(upload, {"keys": ",".join(KEYS)}), good=True, statuses=(200,)),
        Sent(
            "good: chat",
            route="/v1/chat",
            options={"json": {"text": TEXT, "question": "?"}},
            good=True,
            statuses=(200,),
        ),
        Sent(
            "good: inline scenario",
            options={"json": {"text": TEXT, "keys": KEYS, "scenario_yaml": INLINE}},
            good=True,
            statuses=(200,),
        ),
    ]


def _declared_too_big(port: int) -> int:
    head = f"POST /v1/extract HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    head += "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        answer = sock.recv(4096).decode("latin-1")
    return int(answer.split(" ", 2)[1]) if answer.startswith("HTTP/1.1 ") else 0


def _hang_up(port: int) -> int:
    head = f"POST /v1/extract HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    head += "Content-Type: multipart/form-data; boundary=XB\r\nContent-Length: 5000000\r\n\r\n"
    part = b'--XB\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n' + b"A" * 50_000
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + part)
        time.sleep(0.05)
    return 0  # nobody hears the answer; the server's log must say "client hung up"


def _hostile_requests(job: str, scans: str) -> list[Sent]:
    """Every class of hostile input, its body built once."""
    json_headers = {"content-type": "application/json"}
    receipt = ("file", ("r.txt", TEXT.encode(), "text/plain"))
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 10)}]\n" for n in range(8)
    )
    schema = {"type": "object", "properties": {f"f{n}": {"type": "string"} for n in range(9000)}}
    long_lines = "\n".join("ITEM " + "ABCDEFGHIJ " * 27 + "9.00" for _ in range(10_000))
    limit_schema = {"type": "object", "properties": {f"f{n}": {"type": "string"} for n in range(MAX_KEYS)}}
    return [
        Sent("scenario path", options={"json": {"text": TEXT, "scenario": "/etc/passwd"}}),
        Sent("scenario path (form)", options=_form([receipt], {"scenario": "~/.ssh/config.yaml"})),
        Sent("nested 100,000 deep", options={"content": b"[" * 100_000 + b"]" * 100_000, "headers": json_headers}),
        Sent("5,000-digit number", options={"content": b'{"text": ' + b"9" * 5000 + b"}", "headers": json_headers}),
        Sent(
            "duplicate members",
            route="/v1/chat",
            options={"content": b'{"text": "x", "question": "a", "question": "b"}', "headers": json_headers},
        ),
        Sent("text a number", options={"json": {"text": 5}}),
        Sent("keys with NUL", options={"json": {"text": TEXT, "keys": ["to\x00tal"]}}),
        Sent("10,000 keys", options={"json": {"text": TEXT, "keys": [f"k{n}" for n in range(10_000)]}}),
        Sent("500 keys", options={"json": {"text": TEXT, "keys": [f"k{n}" for n in range(500)]}}, statuses=(422,)),
        Sent("two files", options=_form([receipt, receipt])),
        Sent("10,000 form fields", options=_form([receipt], {f"f{n}": "x" for n in range(10_000)})),
        Sent("file name with folders", route="/v1/jobs", options=_form([("file", ("../../x.txt", b"x"))])),
        Sent("unknown route", route="/v1/extrakt", options={"json": {}}, statuses=(404,)),
        Sent("wrong method", method="GET", route="/v1/extract", statuses=(405,)),
        Sent("job offset past 2**63", method="GET", route=f"/v1/jobs/{job}?offset=18446744073709551616"),
        Sent("NUL in a job folder", route="/v1/jobs", options={"json": {"folder": scans + "/a\x00b"}}),
        Sent("inline YAML alias bomb", options={"json": {"text": TEXT, "scenario_yaml": bomb}}),
        Sent(
            "inline YAML over 256 KB",
            options={"json": {"text": TEXT, "scenario_yaml": "#\n" * 140_000}},
            statuses=(413,),
        ),
        Sent("declared body over 20 MB", raw=_declared_too_big, statuses=(413,)),
        Sent("schema of 9,000 properties", options={"json": {"text": TEXT, "schema": schema}}),
        Sent(
            f"schema of {MAX_KEYS} properties",
            options={"json": {"text": TEXT, "schema": limit_schema}},
            statuses=(200, 422),
        ),
        Sent(
            "15 MB of OCR text, 1.4 M lines",
            options={"content": json.dumps({"text": "TOTAL 9.00\n" * 1_400_000}).encode(), "headers": json_headers},
        ),
        Sent(
            "3 MB of OCR text, 10,000 lines",
            options={"content": json.dumps({"text": long_lines}).encode(), "headers": json_headers},
            statuses=(422,),
        ),
        Sent("hang-up mid-upload", raw=_hang_up, statuses=(0,)),
    ]


# ---- /healthz, polled from a process of its own -----------------------------------------------------


def poll_healthz(port: int, interval: float, stop: Any, results: Any) -> None:
    """Round trips of GET /healthz on one keep-alive connection until `stop`: (seconds, status)."""
    import http.client

    samples: list[tuple[float, int]] = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            samples.append((time.perf_counter() - started, response.status))
        except (OSError, http.client.HTTPException):
            samples.append((time.perf_counter() - started, 0))
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        time.sleep(interval)
    results.put(samples)


def children_rss_mb(pid: int) -> float:
    """RSS of `pid`'s child processes (the service's JSON decoding process), by /proc."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(rss_mb(int(child)) for child in children)
    return total


# ---- one phase -------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    good_latencies: list[float] = field(default_factory=list)
    healthz: list[tuple[float, int]] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    child_rss: list[float] = field(default_factory=list)  # the server's JSON decoding process
    wall: float = 0.0

    def count(self, kind: str, outcome: str) -> None:
        self.outcomes.setdefault(kind, Counter())[outcome] += 1


def _right(sent: Sent, response: httpx.Response) -> str:
    """'ok' when the answer is the right one for `sent`, else what was wrong."""
    if response.status_code not in sent.statuses:
        return f"status {response.status_code}"
    if sent.good:
        body = response.json()
        values = json.loads(body["answer"]) if sent.route == "/v1/chat" else body["values"]
        return "ok" if values == ANSWER else "wrong values"
    error = response.json().get("error", {})
    if response.status_code != 200 and not (error.get("type") and error.get("message") and error.get("hint")):
        return "not chatocr's error shape"
    return "ok"


async def _send(client: httpx.AsyncClient, server: Server, sent: Sent, phase: Phase) -> None:
    started = time.perf_counter()
    if sent.raw is not None:
        status = await asyncio.to_thread(sent.raw, server.port)
        phase.count(sent.kind, "ok" if status in sent.statuses else f"status {status}")
        return
    try:
        response = await client.request(sent.method, f"{server.url}{sent.route}", **sent.options)
    except httpx.TransportError as exc:
        phase.count(sent.kind, f"lost: {type(exc).__name__}")
        return
    if sent.good:
        phase.good_latencies.append(time.perf_counter() - started)
    phase.count(sent.kind, "5xx" if response.status_code >= 500 else _right(sent, response))


def run_phase(name: str, server: Server, plan: list[Sent], concurrency: int) -> Phase:
    phase = Phase(name)
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    poller = context.Process(target=poll_healthz, args=(server.port, 0.02, stop, results))
    poller.start()
    sampling = threading.Event()

    def sample_rss() -> None:
        while not sampling.is_set():
            phase.rss.append(rss_mb(server.process.pid))
            phase.child_rss.append(children_rss_mb(server.process.pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample_rss)
    sampler.start()
    time.sleep(0.5)  # the poller's first round trips before the load

    async def fire() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(limits=limits, timeout=300, headers=headers) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(sent: Sent) -> None:
                async with gate:
                    await _send(client, server, sent, phase)

            await asyncio.gather(*(one(sent) for sent in plan))

    started = time.perf_counter()
    asyncio.run(fire())
    phase.wall = time.perf_counter() - started
    time.sleep(0.5)
    stop.set()
    phase.healthz = results.get(timeout=60)
    poller.join(timeout=30)
    time.sleep(1.0)  # the server settles: the RSS it keeps
    sampling.set()
    sampler.join()
    return phase


def _plan(requests: int, hostile_share: float, hostile: list[Sent], seed: int) -> list[Sent]:
    rng = random.Random(seed)
    good = _good_requests()
    count = round(requests * hostile_share)
    plan = [hostile[n % len(hostile)] for n in range(count)]
    plan += [good[n % len(good)] for n in range(requests - count)]
    rng.shuffle(plan)
    return plan


def report(phase: Phase) -> dict[str, Any]:
    latencies = [seconds * 1000 for seconds, _ in phase.healthz]
    failed_polls = sum(1 for _, status in phase.healthz if status != 200)
    good = {k: c for k, c in phase.outcomes.items() if k.startswith("good")}
    hostile = {k: c for k, c in phase.outcomes.items() if not k.startswith("good")}
    numbers = {
        "requests": sum(sum(c.values()) for c in phase.outcomes.values()),
        "good sent": sum(sum(c.values()) for c in good.values()),
        "good right": sum(c["ok"] for c in good.values()),
        "hostile sent": sum(sum(c.values()) for c in hostile.values()),
        "hostile as promised": sum(c["ok"] for c in hostile.values()),
        "5xx": sum(c["5xx"] for c in phase.outcomes.values()),
        "lost": sum(n for c in phase.outcomes.values() for k, n in c.items() if k.startswith("lost")),
        "healthz polls": len(latencies),
        "healthz failed": failed_polls,
        "healthz p50 ms": statistics.median(latencies),
        "healthz p99 ms": p99(latencies),
        "healthz max ms": max(latencies),
        "good latency median ms": statistics.median(phase.good_latencies) * 1000,
        "good latency p99 ms": p99(phase.good_latencies) * 1000,
        "wall s": phase.wall,
        "RSS before MB": phase.rss[0],
        "RSS peak MB": max(phase.rss),
        "RSS after MB": phase.rss[-1],
        "decoding process RSS peak MB": max(phase.child_rss),
    }
    print(f"\n{phase.name}: {numbers['requests']} requests in {phase.wall:.1f} s")
    for kind, outcomes in sorted(phase.outcomes.items()):
        print(f"  {kind:32s} {dict(outcomes)}")
    for name, value in numbers.items():
        print(f"  {name:28s} {value:.1f}" if isinstance(value, float) else f"  {name:28s} {value}")
    return numbers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per phase (default 1000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--hostile", type=float, default=1 / 3, help="share of hostile requests (default 1/3)")
    parser.add_argument("--seed", type=int, default=34)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    server = Server()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        receipt = {"file": ("r.txt", TEXT.encode(), "text/plain")}
        job = httpx.post(f"{server.url}/v1/jobs", files=receipt, headers=headers, timeout=30).json()["id"]
        warm = _plan(40, 0.0, [], args.seed)
        run_phase("warm-up", server, warm, 8)
        scans = str(Path(server.folder.name) / "scans")
        baseline = report(
            run_phase("baseline (all good)", server, _plan(args.requests, 0.0, [], args.seed), args.concurrency)
        )
        plan = _plan(args.requests, args.hostile, _hostile_requests(job, scans), args.seed)
        mixed = report(run_phase("hostile mix", server, plan, args.concurrency))
        log = server.log()
    finally:
        server.close()
    print(f"load average after: {os.getloadavg()}")
    hung_up = log.count("client hung up before sending its whole request")
    clean = not any(bad in log for bad in ("Traceback", "a bug in chatocr", "internal error"))
    print(f"server log: {hung_up} hang-ups logged at info; tracebacks or 'bug' lines: {'none' if clean else 'FOUND'}")
    growth = mixed["RSS after MB"] - mixed["RSS before MB"]
    results = [
        ("hostile mix: 5xx answers", float(mixed["5xx"]), "0", mixed["5xx"] == 0),
        ("hostile mix: requests lost", float(mixed["lost"]), "0", mixed["lost"] == 0),
        (
            "hostile mix: good requests answered right",
            float(mixed["good right"]),
            f"= {mixed['good sent']}",
            mixed["good right"] == mixed["good sent"],
        ),
        (
            "hostile mix: hostile requests as promised (4xx, error shape)",
            float(mixed["hostile as promised"]),
            f"= {mixed['hostile sent']}",
            mixed["hostile as promised"] == mixed["hostile sent"],
        ),
        (
            "hostile mix: /healthz max (ms)",
            mixed["healthz max ms"],
            f"<= {HEALTHZ_TARGET_MS:g}",
            mixed["healthz max ms"] <= HEALTHZ_TARGET_MS and mixed["healthz failed"] == 0,
        ),
        (
            "hostile mix: /healthz p99 (ms)",
            mixed["healthz p99 ms"],
            f"<= {HEALTHZ_TARGET_MS:g}",
            mixed["healthz p99 ms"] <= HEALTHZ_TARGET_MS,
        ),
        ("baseline: /healthz p99 (ms)", baseline["healthz p99 ms"], "(reported)", True),
        ("hostile mix: server RSS growth (MB)", growth, "(reported)", True),
        ("server log: no traceback, no 'bug'", 1.0 if clean else 0.0, "1", clean),
    ]
    print(
        "BENCH-JSON "
        + json.dumps(
            {
                "benchmark": "serve_hostile",
                "results": [{"name": n, "value": round(v, 2), "target": t, "met": m} for n, v, t, m in results],
            }
        )
    )
    return 0 if all(m for *_, m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
