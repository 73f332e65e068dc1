"""Batch extraction on a Ray cluster (extra `ray`).

Two entries, one worker class:

- `extract_dataset(ds, ...)`: a Ray Dataset of rows `{"path": ...}` (and optionally `"bytes"`) in,
  a Dataset of rows `{"path", "sha256", "ok", "record"}` out (`record`: the JSON of
  `chatocr extract --format json`). Ray Data runs the actor pool and the back-pressure.
- `extract_paths(paths, ...)`: what `chatocr extract DIR --executor ray` uses. Results come back
  to the driver as each document finishes, so the driver writes the same resumable results file
  as the local batch (chatocr/runs/log.py: exactly once per path + content hash).

Each actor holds one ChatOCR and one request (`ChatOCR.request`, the constructor every caller
uses), built once in its constructor from plain values: the model and the OCR engine load once per
actor, not per document, and a mistake in the options fails at once. Actors are created with
`max_restarts=-1, max_task_retries=-1`, so when one dies (killed, out of memory, node lost) Ray
restarts it and re-runs the calls it had in flight; the driver keeps the first result per document,
so each appears once. A document that fails is a result with `error` set (`Extraction.failed`),
recorded like any other; it is never dropped.

The driver reads each file and sends its bytes (workers need no shared file system); the result's
`source` is still the driver's path, as in the local batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatocr.errors import ConfigError, MissingDependencyError
from chatocr.extraction.result import Extraction

__all__ = ["ChatOCRSpec", "Extractor", "extract_dataset", "extract_paths", "init_ray"]

ACTOR_NAME = "chatocr-extractor-{run}-{index}"
# A failure that is not chatocr's own on a worker (the actor died, a Ray error): where to look.
WORKER_HINT = "The Ray worker failed on this document; see the Ray logs (`ray logs`)."


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("Batch runs on Ray", "ray", package="ray") from None
    return ray


@dataclass(frozen=True)
class ChatOCRSpec:
    """What every actor builds its ChatOCR from: plain values that travel to the workers (never a
    model object; API keys are read on each worker from its environment or keys file)."""

    llm: str | None = None
    ocr: str | None = None
    config: str | dict[str, Any] | None = None
    keys: tuple[str, ...] | None = None
    scenario: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # config settings
    options: dict[str, Any] = field(default_factory=dict)  # the request's (ChatOCR.request), plain values

    def build(self) -> Any:
        from chatocr.api import ChatOCR
        from chatocr.llm.credentials import load_keys_file

        load_keys_file()
        return ChatOCR(llm=self.llm, ocr=self.ocr, config=self.config, **self.overrides)


class Extractor:
    """The actor: one ChatOCR, loaded once, extracting documents; several in flight at once
    (`aextract`, an async actor), so a local model decodes them together in one batch. Never
    raises for a document: a failure comes back as a record with `error` set."""

    def __init__(self, spec: ChatOCRSpec) -> None:
        self.spec = spec
        self.chatocr = spec.build()
        self.request = self.chatocr.request(list(spec.keys) if spec.keys else None, spec.scenario, **spec.options)
        if hasattr(self.chatocr.model, "llama"):
            _ = self.chatocr.model.llama  # the local model loads lazily: load it now, once

    async def aextract(self, path: str, data: bytes | None = None) -> dict[str, Any]:
        """One document, as the actor's remote call: others may be in flight on this actor."""
        try:
            result = await self.chatocr.aextract(
                data if data is not None else path, request=self.request, raise_errors=False
            )
        except Exception as exc:  # nothing of one document may take the actor down
            result = Extraction.failed(path, exc, hint=WORKER_HINT)
        return _record(path, data, result)

    def extract(self, path: str, data: bytes | None = None) -> dict[str, Any]:
        """One document, synchronously (Ray Data's map_batches calls the extractor in its worker)."""
        try:
            result = self.chatocr.extract(data if data is not None else path, request=self.request, raise_errors=False)
        except Exception as exc:  # nothing of one document may take the actor down
            result = Extraction.failed(path, exc, hint=WORKER_HINT)
        return _record(path, data, result)

    async def ping(self) -> bool:
        return True


def _record(path: str, data: bytes | None, result: Extraction) -> dict[str, Any]:
    from chatocr.runs.records import record_for

    content = data if data is not None else Path(path).read_bytes()
    result.source = path  # the driver's name for it, not "<N bytes>"
    return record_for((path, hashlib.sha256(content).hexdigest()), result)


def _check_reachable(address: str) -> None:
    """Fail fast on a host:port nobody listens on: Ray itself retries such an address for minutes."""
    import socket
    from urllib.parse import urlsplit

    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.hostname is None or parts.port is None:
        return
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=5).close()
    except OSError as exc:
        raise ConfigError(
            f"Could not start or reach the Ray cluster at {address}: {exc.strerror or exc}.",
            hint="Start it with `ray start --head` and give its address (shown by `ray status`), or leave out "
            "--address to start a Ray on this machine.",
        ) from None


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to `address` (a running cluster: "auto", "ray://host:10001", "host:6379") or start a
    local one. Returns whether this call started Ray (and so should shut it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, **options)
    except Exception as exc:  # Ray's own errors: connection refused, auth token missing, bad address
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ConfigError(
            f"Could not start or reach {where}: {first}",
            hint="Check the address (`ray status` on the head node). With Ray's token authentication, make the "
            "cluster's token available here (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token).",
        ) from None
    return True


def _from_record(record: dict[str, Any]) -> tuple[tuple[str, str], Extraction]:
    meta = record["input"]
    return (str(meta["path"]), str(meta["sha256"])), Extraction.from_dict(
        {k: v for k, v in record.items() if k != "input"}
    )


def extract_paths(
    paths: Iterable[str | Path],
    spec: ChatOCRSpec,
    *,
    actors: int = 2,
    actor_cpus: float | None = None,
    run_name: str = "run",
    on_ready: Callable[[], None] | None = None,
) -> Iterator[tuple[tuple[str, str], Extraction]]:
    """(path, sha256) and the Extraction of each document, as each finishes, each document once.
    Ray must be initialised (init_ray). Each actor has its request's `concurrency` documents in
    flight (a local model decodes them together). `actor_cpus`: CPUs Ray reserves per actor
    (default: Ray's, none while running, so an I/O-bound backend can have more actors than cores).
    `on_ready` is called once every actor has loaded its ChatOCR (benchmarks start their clock)."""
    ray = _ray()
    if actors < 1:
        raise ConfigError("--actors must be at least 1.")
    options: dict[str, Any] = {"max_restarts": -1, "max_task_retries": -1}
    if actor_cpus is not None:
        options["num_cpus"] = actor_cpus
    remote = ray.remote(Extractor)
    pool_actors = [
        remote.options(name=ACTOR_NAME.format(run=run_name, index=i), **options).remote(spec) for i in range(actors)
    ]
    try:
        ray.get([actor.ping.remote() for actor in pool_actors])  # every actor has loaded its ChatOCR
        if on_ready is not None:
            on_ready()
        per_actor = int(spec.options.get("concurrency") or 4)
        yield from _dispatch(ray, pool_actors, [str(p) for p in paths], per_actor)
    finally:
        for actor in pool_actors:
            ray.kill(actor, no_restart=True)


def _dispatch(
    ray: Any, actors: list[Any], todo: list[str], per_actor: int
) -> Iterator[tuple[tuple[str, str], Extraction]]:
    """Keep `per_actor` documents in flight on each actor; each result as it comes, each document
    once. A call Ray could not complete (an actor it could not bring back) is that document's
    failure, recorded like any other."""
    waiting = list(reversed(todo))
    in_flight: dict[Any, tuple[Any, str]] = {}
    load = {id(actor): 0 for actor in actors}

    def fill(actor: Any) -> None:
        while waiting and load[id(actor)] < per_actor:
            path = waiting.pop()
            in_flight[actor.aextract.remote(path, Path(path).read_bytes())] = (actor, path)
            load[id(actor)] += 1

    for actor in actors:
        fill(actor)
    seen: set[str] = set()
    while in_flight:
        (ref,), _ = ray.wait(list(in_flight), num_returns=1)
        actor, path = in_flight.pop(ref)
        load[id(actor)] -= 1
        try:
            key, result = _from_record(ray.get(ref))
        except Exception as exc:  # the actor could not be brought back: its document still gets a line
            key = (path, hashlib.sha256(Path(path).read_bytes()).hexdigest())
            result = Extraction.failed(path, exc, hint=WORKER_HINT)
        if key[0] not in seen:  # a retried call answered twice: the first answer stands
            seen.add(key[0])
            yield key, result
        fill(actor)


class _DatasetExtractor:
    """The Ray Data callable class: one Extractor (one ChatOCR) per actor of the pool."""

    def __init__(self, spec: ChatOCRSpec) -> None:
        self.extractor = Extractor(spec)

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        rows = []
        has_bytes = "bytes" in batch.columns
        for index in range(len(batch)):
            path = str(batch["path"].iloc[index])
            data = batch["bytes"].iloc[index] if has_bytes else None
            record = self.extractor.extract(path, bytes(data) if data is not None else None)
            rows.append(
                {
                    "path": path,
                    "sha256": record["input"]["sha256"],
                    "ok": record["error"] is None,
                    "record": json.dumps(record, ensure_ascii=False, default=str),
                }
            )
        return pd.DataFrame(rows, columns=["path", "sha256", "ok", "record"])


def extract_dataset(
    ds: Any,
    spec: ChatOCRSpec | None = None,
    *,
    actors: int = 2,
    actor_cpus: float | None = None,
    batch_size: int = 1,
    **spec_fields: Any,
) -> Any:
    """A Dataset of results from a Dataset of documents (rows with `path`, optionally `bytes`).

    ds = ray.data.from_items([{"path": str(p)} for p in paths])
    out = extract_dataset(ds, llm="dashscope:qwen-plus", keys=("company", "total"), actors=8)
    for row in out.iter_rows(): json.loads(row["record"])["values"]
    """
    _ray()
    spec = spec or ChatOCRSpec(**spec_fields)
    # Ray Data restarts a dead actor of its pool and retries its batches (max_restarts=-1 by default).
    return ds.map_batches(
        _DatasetExtractor,
        fn_constructor_kwargs={"spec": spec},
        concurrency=actors,
        batch_size=batch_size,
        batch_format="pandas",
        num_cpus=actor_cpus,
    )
