"""The service under hostile input (issue 34, part 2), against a real `chatocr serve` subprocess:
a scenario is a name or inline YAML, never a path; CPU work runs off the event loop, so /healthz
answers while the worst allowed requests are worked on; every hostile body, the framework's own
errors and a client hanging up get chatocr's error shape or a logged disconnect, never a 500 or a
traceback; jobs end `failed` with their error, never `running` forever."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatocr.extraction.request import MAX_KEYS
from tests.parcel_scenario import parcel_yaml
from tests.serve.conftest import ANSWER, KEYS, RECEIPT_TEXT, TOKEN, Server, auth, base_env, httpx

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PRIVATE = "PRIVATE-EXAMPLE-4711"  # the text of a scenario file on the server's disk


def _no_bug_in(log: str) -> None:
    assert "Traceback" not in log and "a bug in chatocr" not in log and "internal error" not in log, log[-3000:]
    assert " 500 " not in log, log[-3000:]


def _typed(response: Any, status: int | tuple[int, ...], kind: str | None = None) -> dict[str, Any]:
    """`response` is `status` with chatocr's error shape: a type, a message and a hint."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"type", "message", "hint"} and error["message"] and error["hint"], error
    assert kind is None or error["type"] == kind, error
    assert "Traceback" not in response.text
    return error


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose HOME holds a scenario file a client must never get read, with a job root."""
    folder = tmp_path_factory.mktemp("hostile-server")
    env = base_env(folder)
    private = Path(env["HOME"]) / "secret" / "private.yaml"
    private.parent.mkdir(parents=True)
    private.write_text(parcel_yaml("private", PRIVATE), encoding="utf-8")
    (folder / "scans" / "batch").mkdir(parents=True)
    args = ["--llm", "scripted", "--ocr", "text", "--data-dir", str(folder / "data")]
    server = Server([*args, "--job-folder", str(folder / "scans")], env, folder / "server.log")
    server.home = Path(env["HOME"])  # type: ignore[attr-defined]
    server.scans = folder / "scans"  # type: ignore[attr-defined]
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _post(server: Server, route: str, **kwargs: Any) -> Any:
    return httpx.post(f"{server.url}{route}", headers=auth(), timeout=60, **kwargs)


def _each_route(server: Server, scenario: dict[str, str]) -> dict[str, Any]:
    """The same scenario member sent to every route that takes one, JSON and multipart."""
    upload = {"file": ("r.txt", RECEIPT_TEXT.encode(), "text/plain")}
    (server.scans / "batch" / "r.txt").write_text(RECEIPT_TEXT, encoding="utf-8")  # type: ignore[attr-defined]
    folder = str(server.scans / "batch")  # type: ignore[attr-defined]
    return {
        "extract json": _post(server, "/v1/extract", json={"text": RECEIPT_TEXT, **scenario}),
        "extract form": _post(server, "/v1/extract", files=upload, data=scenario),
        "chat json": _post(server, "/v1/chat", json={"text": RECEIPT_TEXT, "question": "total?", **scenario}),
        "chat form": _post(server, "/v1/chat", files=upload, data={"question": "total?", **scenario}),
        "jobs form": _post(server, "/v1/jobs", files=upload, data=scenario),
        "jobs folder": _post(server, "/v1/jobs", json={"folder": folder, **scenario}),
    }


def test_a_scenario_path_is_never_read_over_http(hostile: Server) -> None:
    home: Path = hostile.home  # type: ignore[attr-defined]
    existing = [str(home / "secret" / "private.yaml"), "~/secret/private.yaml", "../home/secret/private.yaml"]
    missing = [str(home / "secret" / "nothing.yaml"), "~/secret/nothing.yaml", "../home/secret/nothing.yaml"]
    for present, absent in zip(existing, missing, strict=True):
        found, not_found = _each_route(hostile, {"scenario": present}), _each_route(hostile, {"scenario": absent})
        for route, response in found.items():
            error = _typed(response, 400, "ScenarioError")
            assert PRIVATE not in response.text and "scenario_yaml" in error["hint"], (route, error)
            # An existing and a missing file get the same answer: nothing tells which files exist.
            other = not_found[route].json()["error"]
            assert error["message"].replace(present, "PATH") == other["message"].replace(absent, "PATH"), route
            assert error["hint"] == other["hint"], route
    names = [s["name"] for s in httpx.get(f"{hostile.url}/v1/scenarios", headers=auth()).json()["scenarios"]]
    assert "private" not in names
    _typed(httpx.get(f"{hostile.url}/v1/scenarios/private", headers=auth()), 404, "ScenarioError")
    _no_bug_in(hostile.log())


def _calls_text(record: dict[str, Any]) -> str:
    return json.dumps(record.get("calls"), ensure_ascii=False)


def _example_id(name: str) -> str:
    from chatocr.scenarios.loader import load_scenario_text

    return load_scenario_text(parcel_yaml(name)).example_id(0)


def test_an_inline_scenario_is_used_for_its_request_alone(hostile: Server) -> None:
    own = parcel_yaml("parcel_label")
    answers = _each_route(hostile, {"scenario_yaml": own})
    for route, response in answers.items():
        assert response.status_code in (200, 202), (route, response.text[:300])
    for route in ("extract json", "extract form"):
        record = answers[route].json()
        assert record["scenario"] == "parcel_label" and record["examples"] == [_example_id("parcel_label")], route
        assert "ZEBRA EXAMPLE SENDER" in _calls_text(record)
    job = answers["jobs form"].json()["id"]
    deadline = time.monotonic() + 60
    while (status := httpx.get(f"{hostile.url}/v1/jobs/{job}", headers=auth()).json())["state"] != "done":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["results"][0]["examples"] == [_example_id("parcel_label")]  # the job ran it too
    listed = [s["name"] for s in httpx.get(f"{hostile.url}/v1/scenarios", headers=auth()).json()["scenarios"]]
    assert "parcel_label" not in listed  # never joins the server's library
    _typed(_post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, "scenario": "parcel_label"}), 400, "ScenarioError")
    # Under the name of a library scenario: its own examples; the library's stays the library's.
    named = parcel_yaml("retail_receipt")
    inline = _post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, "scenario_yaml": named}).json()
    assert inline["examples"] == [_example_id("retail_receipt")] and "ZEBRA" in _calls_text(inline)
    library = _post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, "scenario": "retail_receipt"}).json()
    assert library["examples"] and _example_id("retail_receipt") not in library["examples"]
    assert "ZEBRA" not in _calls_text(library)
    _no_bug_in(hostile.log())


def test_inline_yaml_is_bounded_and_parsed_as_scenario_files_are(hostile: Server) -> None:
    def sent(**members: Any) -> Any:
        return _post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, **members})

    _typed(sent(scenario_yaml="name: x\n" + "# padding\n" * 30000), 413, "ScenarioError")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}]\n"
        for n in range(12)
    )
    assert "expands to more than" in _typed(sent(scenario_yaml=bomb), 400, "ScenarioError")["message"]
    twice = parcel_yaml("x").replace("title: Parcel label", "title: A\ntitle: B")
    assert "duplicate key 'title'" in _typed(sent(scenario_yaml=twice), 400, "ScenarioError")["message"]
    typo = parcel_yaml("x").replace("description: the sender", "descripton: the sender")
    assert "scenario_yaml:" in _typed(sent(scenario_yaml=typo), 400, "ScenarioError")["message"]
    both = _typed(sent(scenario="generic", scenario_yaml=parcel_yaml("x")), 400, "RequestError")
    assert "not both" in both["message"]
    _no_bug_in(hostile.log())


def _worst_allowed_requests() -> list[tuple[str, dict[str, Any]]]:
    """Requests that cost the server the most CPU before they are refused or answered, each within
    the service's limits (body 20 MB, a schema of MAX_KEYS properties, inline YAML 256 KB)."""
    schema = {"type": "object", "properties": {f"f{n}": {"type": "string"} for n in range(MAX_KEYS)}}
    nested = {
        f"o{k}": {"type": "object", "properties": {f"i{n}": {"type": "string"} for n in range(99)}} for k in range(5)
    }
    yaml_lines = parcel_yaml("big") + "".join(f"# {'x' * 60}\n" for _ in range(3800))
    return [
        (f"{MAX_KEYS} properties", {"json": {"text": RECEIPT_TEXT, "schema": schema}}),
        ("5 objects of 99", {"json": {"text": RECEIPT_TEXT, "schema": {"type": "object", "properties": nested}}}),
        ("2 M keys, 19 MB", {"content": json.dumps({"text": "x", "keys": ["k"] * 2_000_000}).encode()}),
        ("19 MB of OCR text", {"content": json.dumps({"text": "TOTAL 9.00\n" * 1_700_000}).encode()}),
        ("nested 1,000,000 deep", {"content": b"[" * 1_000_000 + b"]" * 1_000_000}),
        ("inline YAML at its limit", {"json": {"text": RECEIPT_TEXT, "scenario_yaml": yaml_lines}}),
    ]


def test_healthz_answers_while_the_worst_allowed_requests_are_worked_on(hostile: Server) -> None:
    """No timed assertion (benchmarks/bench_serve_hostile.py measures the latency): each worst
    request gets its answer, and /healthz answers, again and again, all the while."""
    requests = _worst_allowed_requests()
    headers = {**auth(), "content-type": "application/json"}
    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        futures = {
            pool.submit(httpx.post, f"{hostile.url}/v1/extract", headers=headers, timeout=120, **kwargs): name
            for name, kwargs in requests
        }
        polls = []
        while not all(f.done() for f in futures):
            polls.append(httpx.get(f"{hostile.url}/healthz", timeout=30))
            time.sleep(0.02)
        answers = {futures[f]: f.result() for f in futures}
    assert polls and all(p.status_code == 200 and p.json() == {"status": "ok"} for p in polls), polls
    for name, response in answers.items():
        assert response.status_code in (200, 400, 413, 422), (name, response.status_code, response.text[:300])
        if response.status_code != 200:
            _typed(response, response.status_code)
    assert answers["2 M keys, 19 MB"].json()["error"]["message"].startswith("2000000 keys")
    _no_bug_in(hostile.log())


BASE = {"/v1/extract": {"text": "x"}, "/v1/chat": {"text": "x", "question": "q"}, "/v1/jobs": {"folder": "/x"}}
LISTED = {"/v1/extract": "keys", "/v1/chat": "history", "/v1/jobs": "keys"}  # a member that takes a list


def _hostile_bodies(route: str) -> list[tuple[str, bytes, str]]:
    """(what, body, what the error says) for one route: each body is that route's own members
    but for the one thing wrong with it."""
    base = BASE[route]
    first = next(iter(base))
    members = json.dumps(base).encode()
    return [
        ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("a 5,000-digit number", members[:-1] + b', "keys": ' + b"9" * 5000 + b"}", "5000 characters"),
        ("a member given twice", b'{"' + first.encode() + b'": "a", ' + members[1:], "given twice"),
        ("not JSON", b"{", "not valid JSON"),
        ("not UTF-8", b'{"' + first.encode() + b'": "\xff"}', "not readable JSON"),
        ("the first member a number", json.dumps({**base, first: 5}).encode(), "Input should be a valid string"),
        ("a list member a number", json.dumps({**base, LISTED[route]: 5}).encode(), "Invalid request"),
        ("a list", b"[1, 2]", "Input should be a valid dictionary"),
        ("a huge unknown member", b'{"' + b"k" * 100_000 + b'": 1}', "Unknown option"),
    ]


def test_large_bodies_are_decoded_apart_and_answered_as_small_ones_are(hostile: Server) -> None:
    """A body of 1 MB or more is decoded in the service's decoding process (serve/decoding.py):
    the same answer for a good one, the same typed 400 for a bad one, on every route."""
    headers = {**auth(), "content-type": "application/json"}
    padding = b" " * 1_200_000  # whitespace between JSON's tokens: the same value, a large body
    good = json.dumps({"text": RECEIPT_TEXT, "keys": KEYS}).encode()[:-1] + padding + b"}"
    response = httpx.post(f"{hostile.url}/v1/extract", content=good, headers=headers, timeout=60)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["values"] == ANSWER
    for route, base in BASE.items():
        first = next(iter(base))
        twice = b'{"' + first.encode() + b'": "' + b"a" * 1_200_000 + b'", ' + json.dumps(base).encode()[1:]
        for body, said in [(twice, "given twice"), (b"[" * 600_000 + b"]" * 600_000, "nested too deeply")]:
            response = httpx.post(f"{hostile.url}{route}", content=body, headers=headers, timeout=60)
            assert said in _typed(response, 400)["message"], (route, said)
    _no_bug_in(hostile.log())


@pytest.mark.parametrize("route", list(BASE))
def test_hostile_bodies_are_typed_400s_on_every_route(hostile: Server, route: str) -> None:
    headers = {**auth(), "content-type": "application/json"}
    for name, body, said in _hostile_bodies(route):
        response = httpx.post(f"{hostile.url}{route}", content=body, headers=headers, timeout=60)
        error = _typed(response, 400)
        assert said in error["message"], (route, name, error)
        assert len(response.content) < 5000, (route, name)  # a client's input is not echoed back whole
    _no_bug_in(hostile.log())


def test_keys_that_cannot_be_asked_are_refused_with_what_to_do(hostile: Server) -> None:
    nul = _typed(_post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, "keys": ["com\x00pany"]}), 400)
    assert nul["type"] == "ConfigError" and "control character" in nul["message"]
    many = _typed(
        _post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, "keys": [f"k{n}" for n in range(10_000)]}), 400
    )
    assert f"at most {MAX_KEYS}" in many["message"] and "fewer keys" in many["hint"]
    five_hundred = _post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, "keys": [f"k{n}" for n in range(500)]})
    assert "fewer keys" in _typed(five_hundred, 422)["hint"]  # the planner's words, not "split the document"
    uploads = hostile.scans.parent / "data" / "uploads"  # type: ignore[attr-defined]
    before = set(uploads.iterdir())
    job = _post(hostile, "/v1/jobs", files={"file": ("r.txt", RECEIPT_TEXT.encode())}, data={"keys": "a,b\x00"})
    _typed(job, 400, "ConfigError")
    assert set(uploads.iterdir()) == before  # a refused job leaves no upload behind
    _no_bug_in(hostile.log())


def _multipart(*parts: tuple[bytes, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart body from (Content-Disposition parameters, content) pairs, byte for byte."""
    body = b"".join(
        b"--XB\r\nContent-Disposition: form-data; " + head + b"\r\n\r\n" + data + b"\r\n" for head, data in parts
    )
    return body + b"--XB--\r\n", {**auth(), "content-type": "multipart/form-data; boundary=XB"}


def test_the_frameworks_own_errors_answer_chatocrs_shape(hostile: Server) -> None:
    url = hostile.url
    _typed(httpx.get(f"{url}/no/such/route", headers=auth()), 404, "NotFound")
    assert "POST" in _typed(httpx.get(f"{url}/v1/extract", headers=auth()), 405, "MethodNotAllowed")["hint"]
    _typed(httpx.post(f"{url}/healthz"), 405, "MethodNotAllowed")
    _typed(httpx.delete(f"{url}/v1/jobs/{'0' * 32}", headers=auth()), 405, "MethodNotAllowed")
    declared = {**auth(), "content-type": "application/json", "content-length": str(30 * 1024 * 1024)}
    with socket.create_connection(("127.0.0.1", hostile.port)) as raw:  # a declared size: refused before reading
        head = "".join(f"{k}: {v}\r\n" for k, v in declared.items())
        raw.sendall(f"POST /v1/extract HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413") and '"RequestTooLarge"' in answer and '"hint"' in answer
    upload = ("file", ("r.txt", RECEIPT_TEXT.encode(), "text/plain"))
    two = _typed(_post(hostile, "/v1/extract", files=[upload, upload]), 400, "RequestError")
    assert "/v1/jobs" in two["hint"]
    fields = _typed(_post(hostile, "/v1/extract", files=[upload], data={f"f{n}": "x" for n in range(10_000)}), 400)
    assert "Too many fields" in fields["message"] and "keys" in fields["hint"]
    body, headers = _multipart(
        (b'name="file"; filename="r.txt"', RECEIPT_TEXT.encode()), (b'name="keys"', b"a"), (b'name="keys"', b"b")
    )
    assert "given twice" in _typed(httpx.post(f"{url}/v1/extract", content=body, headers=headers), 400)["message"]
    body, headers = _multipart((b'name="file"', b"not a file"))
    _typed(httpx.post(f"{url}/v1/extract", content=body, headers=headers), 400, "RequestError")
    body, headers = _multipart((b'name="document"; filename="r.txt"', b"x"))
    _typed(httpx.post(f"{url}/v1/extract", content=body, headers=headers), 400, "UnknownOptionError")
    broken = {**auth(), "content-type": "multipart/form-data"}  # no boundary
    _typed(httpx.post(f"{url}/v1/chat", content=b"--x\r\n", headers=broken), 400, "RequestError")
    _typed(
        httpx.post(
            f"{url}/v1/jobs",
            content=b"--XB\r\ngarbage",
            headers={**broken, "content-type": "multipart/form-data; boundary=XB"},
        ),
        400,
    )
    _no_bug_in(hostile.log())


@pytest.mark.parametrize(
    "name", [b"../../etc/passwd.txt", b"a\\b.txt", b"r\x01.txt", b"r\x1b[31m.txt", b"x" * 300 + b".txt", b".."]
)
def test_a_file_name_that_is_not_a_name_is_refused(hostile: Server, name: bytes) -> None:
    for route, extra in (("/v1/extract", []), ("/v1/chat", [(b'name="question"', b"q")]), ("/v1/jobs", [])):
        body, headers = _multipart((b'name="file"; filename="' + name + b'"', RECEIPT_TEXT.encode()), *extra)
        error = _typed(httpx.post(f"{hostile.url}{route}", content=body, headers=headers), 400, "RequestError")
        assert "not a file's name" in error["message"] and "no folders" in error["hint"]
    shown = name.decode("latin-1")
    _typed(_post(hostile, "/v1/extract", json={"text": RECEIPT_TEXT, "filename": shown}), 400, "RequestError")
    _no_bug_in(hostile.log())


def test_a_client_hanging_up_mid_upload_is_logged_as_a_disconnect(hostile: Server) -> None:
    sent = 0
    for route, kind in (
        ("/v1/extract", "application/json"),
        ("/v1/extract", "multipart/form-data; boundary=XB"),
        ("/v1/jobs", "multipart/form-data; boundary=XB"),
        ("/v1/chat", "application/json"),
    ):
        with socket.create_connection(("127.0.0.1", hostile.port)) as raw:
            raw.sendall(
                f"POST {route} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Content-Type: {kind}\r\nContent-Length: 1000000\r\n\r\n".encode()
            )
            raw.sendall(b'--XB\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n' + b"A" * 20000)
            time.sleep(0.3)
        sent += 1
    deadline = time.monotonic() + 30
    while hostile.log().count("client hung up before sending its whole request") < sent:
        assert time.monotonic() < deadline, hostile.log()[-3000:]
        time.sleep(0.1)
    lines = [line for line in hostile.log().splitlines() if "client hung up" in line]
    assert all(" INFO " in line for line in lines), lines
    assert httpx.get(f"{hostile.url}/healthz").status_code == 200
    _no_bug_in(hostile.log())


def test_job_pages_and_ids_out_of_range_are_typed(hostile: Server) -> None:
    job = _post(hostile, "/v1/jobs", files={"file": ("r.txt", RECEIPT_TEXT.encode())}, data={"keys": ",".join(KEYS)})
    url = f"{hostile.url}/v1/jobs/{job.json()['id']}"
    for query in (
        "offset=18446744073709551616",
        "offset=9223372036854775808",
        "offset=-1",
        "offset=x",
        "offset=1e3",
        "limit=0",
        "limit=1001",
        "limit=99999999999999999999999",
        "limit=%00",
        "offset=%C2%B2",
    ):
        error = _typed(httpx.get(f"{url}?{query}", headers=auth()), 400, "RequestError")
        assert "is not a number from" in error["message"] and "offset=0&limit=100" in error["hint"], query
    assert httpx.get(f"{url}?offset=0&limit=1000", headers=auth()).status_code == 200
    for job_id in ("%00", "x" * 5000, "0" * 32 + "%00", "%2E%2E" + "0" * 30):
        _typed(httpx.get(f"{hostile.url}/v1/jobs/{job_id}", headers=auth()), 404, "JobNotFound")
    _typed(httpx.get(f"{hostile.url}/v1/jobs/../{'0' * 32}", headers=auth()), 404, "NotFound")  # another route
    folder = _post(hostile, "/v1/jobs", json={"folder": str(hostile.scans) + "/a\x00b"})  # type: ignore[attr-defined]
    assert "control characters" in _typed(folder, 400, "RequestError")["message"]
    long = _post(hostile, "/v1/jobs", json={"folder": str(hostile.scans) + "/" + "a" * 5000})  # type: ignore[attr-defined]
    _typed(long, 403, "FolderNotAllowed")
    _no_bug_in(hostile.log())


def _wait_state(server: Server, job: str, deadline_s: float = 60) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while True:
        status: dict[str, Any] = httpx.get(f"{server.url}/v1/jobs/{job}", headers=auth()).json()
        if status["state"] in ("done", "failed") or time.monotonic() > end:
            return status
        time.sleep(0.2)


def test_a_job_whose_documents_all_fail_is_failed_with_its_error(hostile: Server) -> None:
    files = [("file", ("empty.txt", b"", "text/plain")), ("file", ("blank.txt", b" \n ", "text/plain"))]
    job = _post(hostile, "/v1/jobs", files=files).json()["id"]
    status = _wait_state(hostile, job)
    assert status["state"] == "failed" and (status["done"], status["failed"]) == (0, 2)
    assert status["error"]["type"] == "InputError" and "All 2 document(s) failed" in status["error"]["message"]
    assert status["error"]["hint"] and [r["error"]["type"] for r in status["results"]] == ["InputError"] * 2


def test_a_pipe_in_a_job_folder_fails_that_document_and_the_job_goes_on(hostile: Server) -> None:
    batch = hostile.scans / "fifo"  # type: ignore[attr-defined]
    batch.mkdir()
    (batch / "a.txt").write_text(RECEIPT_TEXT, encoding="utf-8")
    os.mkfifo(batch / "b.txt")  # a document's name on a pipe nobody writes to: never waited on
    job = _post(hostile, "/v1/jobs", json={"folder": str(batch), "keys": KEYS}).json()["id"]
    status = _wait_state(hostile, job)
    assert status["state"] == "done" and (status["done"], status["failed"]) == (1, 1), status
    failed = next(r for r in status["results"] if r["error"])
    assert "not a regular file" in failed["error"]["message"]
    assert [r["values"] for r in status["results"] if not r["error"]] == [ANSWER]


def test_a_job_that_cannot_run_or_never_finishes_ends_failed(start_server: Any, tmp_path: Path) -> None:
    """Jobs a store holds from before: one naming a scenario that left the library, one started
    MAX_ATTEMPTS times by servers that died, and one in a store made before jobs could fail."""
    from chatocr.serve.jobs import MAX_ATTEMPTS, JobStore
    from chatocr.serve.settings import token_id

    data = tmp_path / "jobs"
    data.mkdir()
    with sqlite3.connect(data / "jobs.sqlite3") as db:  # the store as an earlier chatocr made it
        db.executescript(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL,"
            " finished REAL, options TEXT NOT NULL, worker TEXT, lease REAL);"
            "CREATE TABLE documents (job TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,"
            " location TEXT NOT NULL, uploaded INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
            " result TEXT, PRIMARY KEY (job, idx));"
        )
    store = JobStore(data)
    owner = token_id(TOKEN)
    upload = store.save_upload(RECEIPT_TEXT.encode())
    gone = store.create(owner, {"keys": KEYS, "scenario": "left_the_library"}, [("r.txt", upload, True)])
    abandoned = store.create(owner, {"keys": KEYS, "scenario": None}, [("r.txt", store.save_upload(b"x"), True)])
    store._db.execute(
        "UPDATE jobs SET state = 'running', worker = 'nowhere:1', attempts = ? WHERE id = ?", (MAX_ATTEMPTS, abandoned)
    )
    fine = store.create(
        owner, {"keys": KEYS, "scenario": None}, [("r.txt", store.save_upload(RECEIPT_TEXT.encode()), True)]
    )
    store.close()
    server = start_server(data_dir=data)
    refused = _wait_state(server, gone)
    assert refused["state"] == "failed" and refused["error"]["type"] == "ScenarioError", refused
    assert "left_the_library" in refused["error"]["message"] and (refused["failed"], refused["pending"]) == (1, 0)
    given_up = _wait_state(server, abandoned)
    assert given_up["state"] == "failed" and given_up["error"]["type"] == "JobAbandoned", given_up
    assert f"started {MAX_ATTEMPTS} times" in given_up["error"]["message"]
    ran = _wait_state(server, fine)
    assert ran["state"] == "done" and ran["results"][0]["values"] == ANSWER and ran["error"] is None
    assert not list((data / "uploads").iterdir())  # every job's uploads go once it is over
    _no_bug_in(server.log())
