"""Jobs: several documents in the background, kept in SQLite across a restart (and a kill -9)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import ANSWER, KEYS, TOKEN, auth, base_env, httpx

OTHER = "another-token-abcdef0123456789"

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _receipt(n: int) -> bytes:
    return f"SHOP ABC SDN BHD\nRECEIPT NO {n}\nTOTAL 9.00\n".encode()


def _submit(server: Any, count: int) -> str:
    files = [("file", (f"r{n:02d}.txt", _receipt(n), "text/plain")) for n in range(count)]
    end = time.monotonic() + 120
    while True:
        response = httpx.post(
            f"{server.url}/v1/jobs", files=files, data={"keys": ",".join(KEYS)}, headers=auth(), timeout=30
        )
        # With several workers, /readyz answered by one says nothing of the others: a worker still
        # loading says NotReady with Retry-After, and a client retries, as this one does.
        if response.status_code != 503 or "NotReady" not in response.text or time.monotonic() > end:
            break
        time.sleep(min(1.0, float(response.headers.get("Retry-After", "1"))))
    assert response.status_code == 202, response.text
    assert response.json()["total"] == count
    return str(response.json()["id"])


def _status(server: Any, job: str, token: str | None = None) -> Any:
    return httpx.get(f"{server.url}/v1/jobs/{job}", headers=auth(token) if token else auth(), timeout=10)


def _wait(server: Any, job: str, until: Any, deadline_s: float = 120) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        status: dict[str, Any] = _status(server, job).json()
        if until(status):
            return status
        time.sleep(0.3)
    raise AssertionError(f"job {job} never reached the state: {status}")


def test_a_restarted_server_answers_for_a_finished_job(start_server: Any, tmp_path: Path) -> None:
    data = tmp_path / "jobs"
    env = base_env(tmp_path, tokens=f"{TOKEN},{OTHER}")
    first = start_server(data_dir=data, env=env)
    job = _submit(first, 3)
    done = _wait(first, job, lambda s: s["state"] == "done")
    assert (done["total"], done["done"], done["failed"]) == (3, 3, 0)
    assert [r["input"]["path"] for r in done["results"]] == ["r00.txt", "r01.txt", "r02.txt"]
    assert all(r["values"] == ANSWER for r in done["results"])
    first.stop()
    assert not list((data / "uploads").iterdir())  # uploads go once their job is done
    second = start_server(data_dir=data, env=env)
    again = _status(second, job)
    assert again.status_code == 200 and again.json()["results"] == done["results"]
    assert _status(second, job, OTHER).status_code == 404  # a job belongs to the token that made it
    assert _status(second, "0" * 32).status_code == 404


def test_a_killed_server_resumes_the_job_and_every_document_appears_once(start_server: Any, tmp_path: Path) -> None:
    data = tmp_path / "jobs"
    slow = start_server("--job-concurrency", "1", data_dir=data, latency=0.6)
    job = _submit(slow, 8)
    partial = _wait(slow, job, lambda s: s["done"] >= 2)
    assert partial["state"] == "running" and partial["pending"] > 0
    slow.kill()  # SIGKILL: no clean shutdown, the job is left 'running' with a lease
    fast = start_server(data_dir=data)
    done = _wait(fast, job, lambda s: s["state"] == "done")
    paths = [r["input"]["path"] for r in done["results"]]
    assert paths == [f"r{n:02d}.txt" for n in range(8)]  # each once, in order
    assert done["done"] == 8 and done["failed"] == 0


def test_a_folder_job_only_under_an_allowed_root(start_server: Any, tmp_path: Path) -> None:
    allowed = tmp_path / "scans"
    (allowed / "batch").mkdir(parents=True)
    for n in range(3):
        (allowed / "batch" / f"doc{n}.txt").write_bytes(_receipt(n))
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(_receipt(99))
    (allowed / "batch" / "link.txt").symlink_to(outside / "secret.txt")  # a planted link out of the root
    server = start_server("--job-folder", str(allowed))
    refused = httpx.post(f"{server.url}/v1/jobs", json={"folder": str(outside)}, headers=auth())
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "FolderNotAllowed"
    created = httpx.post(f"{server.url}/v1/jobs", json={"folder": str(allowed / "batch"), "keys": KEYS}, headers=auth())
    assert created.status_code == 202, created.text
    done = _wait(server, created.json()["id"], lambda s: s["state"] == "done")
    names = sorted(Path(r["input"]["path"]).name for r in done["results"])
    assert names == ["doc0.txt", "doc1.txt", "doc2.txt"]  # not the linked file


def test_a_bad_document_is_recorded_and_the_others_finish(start_server: Any) -> None:
    server = start_server()
    files = [
        ("file", ("good.txt", _receipt(1), "text/plain")),
        ("file", ("empty.txt", b"", "text/plain")),
        ("file", ("good2.txt", _receipt(2), "text/plain")),
    ]
    created = httpx.post(f"{server.url}/v1/jobs", files=files, data={"keys": "company,total"}, headers=auth())
    done = _wait(server, created.json()["id"], lambda s: s["state"] == "done")
    assert (done["done"], done["failed"]) == (2, 1)
    failed = [r for r in done["results"] if r["error"]]
    assert failed[0]["input"]["path"] == "empty.txt" and failed[0]["error"]["hint"]


def test_the_jobs_store_refuses_a_planted_link(tmp_path: Path) -> None:
    from chatocr.errors import ConfigError
    from chatocr.serve.jobs import JobStore

    data = tmp_path / "data"
    data.mkdir()
    victim = tmp_path / "precious.db"
    victim.write_bytes(b"user data")
    (data / "jobs.sqlite3").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        JobStore(data)
    assert victim.read_bytes() == b"user data"
    linked = tmp_path / "linked"
    linked.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ConfigError, match="symbolic link"):
        JobStore(linked)


def test_two_worker_processes_serve_and_share_the_store(start_server: Any) -> None:
    server = start_server("--workers", "2")
    job = _submit(server, 2)
    done = _wait(server, job, lambda s: s["state"] == "done")
    assert done["done"] == 2 and all(r["values"] == ANSWER for r in done["results"])
    for _ in range(4):  # whichever worker answers, the store is the same
        assert _status(server, job).json()["state"] == "done"
