"""Corpus cases: the HTTP service under hostile input, every route, against one real `chatocr serve`
subprocess (uvicorn, the scripted backend, the text engine) started for these cases.

Each case sends what a careless or hostile client would (a path as the scenario, a body nested
100,000 deep, a 5,000-digit number, two files, a NUL in a job folder, an offset past 2**63, a
hang-up mid-upload...) and checks the answer it must get: chatocr's error shape
`{"error": {"type", "message", "hint"}}` with the status the API documents, or the result. Every
case also fails when the server's log gained a traceback, a 500 or "a bug in chatocr" meanwhile.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chatocr.extraction.request import MAX_KEYS
from tests.parcel_scenario import parcel_yaml
from tests.reliability.harness import RECEIPT_ANSWER, RECEIPT_TEXT, Ctx, case

SECRET = "PRIVATE-SCENARIO-TEXT-0451"
_SERVER: list[Any] = []


class Served:
    """The shared server as a case sees it: requests, and the log it wrote since the case began."""

    def __init__(self, server: Any, httpx: Any, token: str) -> None:
        self.server, self.httpx, self.url = server, httpx, server.url
        self.headers = {"Authorization": f"Bearer {token}"}
        self.token = token
        self.home: Path = server.home
        self.scans: Path = server.scans

    def post(self, route: str, **kwargs: Any) -> Any:
        return self.httpx.post(f"{self.url}{route}", headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def get(self, route: str) -> Any:
        return self.httpx.get(f"{self.url}{route}", headers=self.headers, timeout=30)

    def raw(self, request: bytes, pause: float = 0.0) -> str:
        """Bytes on a socket of our own; what came back before the server closed (or 2 s)."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=2) as sock:
            sock.sendall(request)
            time.sleep(pause)
            try:
                return sock.recv(65536).decode("utf-8", "replace")
            except OSError:
                return ""

    def job(self, job_id: str, until: Callable[[dict[str, Any]], bool], deadline_s: float = 60) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        while True:
            status: dict[str, Any] = self.get(f"/v1/jobs/{job_id}").json()
            if until(status) or time.monotonic() > end:
                return status
            time.sleep(0.1)


def _stop(server: Any, folder: Path) -> None:
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _server() -> Served:
    """The one server of these cases: started at the first, stopped when the run ends. Its HOME
    holds a scenario file no client may have read; --job-folder allows one folder."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from tests.serve.conftest import TOKEN, Server, base_env

    if not _SERVER:
        folder = Path(tempfile.mkdtemp(prefix="chatocr-corpus-serve-"))
        env = base_env(folder)
        private = Path(env["HOME"]) / "scenarios" / "private.yaml"
        private.parent.mkdir(parents=True)
        private.write_text(parcel_yaml("private", SECRET), encoding="utf-8")
        (folder / "scans").mkdir()
        args = ["--llm", "scripted", "--ocr", "text", "--data-dir", str(folder / "data")]
        server = Server([*args, "--job-folder", str(folder / "scans")], env, folder / "server.log")
        server.home, server.scans = Path(env["HOME"]), folder / "scans"
        server.wait_ready()
        atexit.register(_stop, server, folder)
        _SERVER.append(server)
    return Served(_SERVER[0], httpx, TOKEN)


@contextmanager
def served() -> Iterator[Served]:
    """The shared server for one case; afterwards, its log since the case began holds no
    traceback, no 500 and no "a bug in chatocr"."""
    srv = _server()
    start = len(srv.server.log())
    yield srv
    time.sleep(0.05)  # the access log line of the last answer
    written = srv.server.log()[start:]
    for bad in ("Traceback", "a bug in chatocr", "internal error", " 500 "):
        assert bad not in written, written[-3000:]


def typed(response: Any, status: int, kind: str | None = None, says: str = "") -> dict[str, Any]:
    """`response` is `status` with chatocr's error shape and a hint; its type `kind`; its message `says`."""
    assert response.status_code == status, (response.status_code, response.text[:400])
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"type", "message", "hint"} and error["message"] and error["hint"], error
    assert kind is None or error["type"] == kind, error
    assert says.casefold() in error["message"].casefold(), error
    assert "Traceback" not in response.text and "a bug in chatocr" not in response.text
    return error


def _json(srv: Served, route: str, body: bytes) -> Any:
    return srv.post(route, content=body, headers={"content-type": "application/json"}, timeout=60)


def _multipart(*parts: tuple[bytes, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart body from (Content-Disposition parameters, content), byte for byte."""
    body = b"".join(b"--XB\r\nContent-Disposition: form-data; " + h + b"\r\n\r\n" + d + b"\r\n" for h, d in parts)
    return body + b"--XB--\r\n", {"content-type": "multipart/form-data; boundary=XB"}


def _upload(name: str = "r.txt", text: str = RECEIPT_TEXT) -> dict[str, Any]:
    return {"file": (name, text.encode(), "text/plain")}


# ---- a scenario over HTTP: a name or inline YAML, never a path -------------------------------


def _path_refused(srv: Served, send: Callable[[str], Any]) -> None:
    """A path to a scenario file on the server's disk is not read, and an existing file and a
    missing one get the same answer (but for the name): no file's text, no file's existence."""
    present = str(srv.home / "scenarios" / "private.yaml")
    absent = str(srv.home / "scenarios" / "absent.yaml")
    found, missing = send(present), send(absent)
    error = typed(found, 400, "ScenarioError", says="No scenario named")
    assert SECRET not in found.text and "scenario_yaml" in error["hint"]
    other = typed(missing, 400, "ScenarioError")
    assert error["message"].replace(present, "P") == other["message"].replace(absent, "P")
    assert error["hint"] == other["hint"]


@case("serve", "POST /v1/extract, scenario = a YAML file on the server: 400, not read, same as a missing file")
def scenario_path_extract(ctx: Ctx) -> None:
    with served() as srv:
        _path_refused(srv, lambda p: srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "scenario": p}))


@case("serve", "multipart POST /v1/extract, scenario = a path: 400, the file not read")
def scenario_path_extract_form(ctx: Ctx) -> None:
    with served() as srv:
        _path_refused(srv, lambda p: srv.post("/v1/extract", files=_upload(), data={"scenario": p}))


@case("serve", "POST /v1/chat, scenario = a path (JSON and multipart): 400, the file not read")
def scenario_path_chat(ctx: Ctx) -> None:
    with served() as srv:
        _path_refused(srv, lambda p: srv.post("/v1/chat", json={"text": RECEIPT_TEXT, "question": "q", "scenario": p}))
        _path_refused(srv, lambda p: srv.post("/v1/chat", files=_upload(), data={"question": "q", "scenario": p}))


@case("serve", "POST /v1/jobs, scenario = a path (uploads and a folder): 400, no job, the file not read")
def scenario_path_jobs(ctx: Ctx) -> None:
    with served() as srv:
        (srv.scans / "r.txt").write_text(RECEIPT_TEXT, encoding="utf-8")
        _path_refused(srv, lambda p: srv.post("/v1/jobs", files=_upload(), data={"scenario": p}))
        _path_refused(srv, lambda p: srv.post("/v1/jobs", json={"folder": str(srv.scans), "scenario": p}))


@case("serve", "a path sent as a scenario never joins the library: not listed, not shown (GET /v1/scenarios[/{name}])")
def scenario_path_never_listed(ctx: Ctx) -> None:
    with served() as srv:
        srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "scenario": str(srv.home / "scenarios" / "private.yaml")})
        listed = srv.get("/v1/scenarios")
        assert listed.status_code == 200 and "private" not in [s["name"] for s in listed.json()["scenarios"]]
        typed(srv.get("/v1/scenarios/private"), 404, "ScenarioError")


@case("serve", "scenario_yaml: its own examples for its request; never listed, never usable by name afterwards")
def inline_scenario_alone(ctx: Ctx) -> None:
    with served() as srv:
        own = parcel_yaml("corpus_parcel", "ZEBRA SENDER LTD")
        answer = srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "scenario_yaml": own})
        assert answer.status_code == 200, answer.text
        record = answer.json()
        assert record["scenario"] == "corpus_parcel" and [e.split("/")[0] for e in record["examples"]] == [
            "corpus_parcel"
        ]
        assert "ZEBRA SENDER LTD" in json.dumps(record["calls"])
        assert "corpus_parcel" not in [s["name"] for s in srv.get("/v1/scenarios").json()["scenarios"]]
        typed(srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "scenario": "corpus_parcel"}), 400, "ScenarioError")


@case("serve", "scenario_yaml over 256 KB: 413 naming the limit, before it is parsed")
def inline_scenario_too_big(ctx: Ctx) -> None:
    with served() as srv:
        big = parcel_yaml("x", "X") + "# pad\n" * 50_000
        typed(srv.post("/v1/chat", json={"text": "x", "question": "q", "scenario_yaml": big}), 413, says="262,144")


@case("serve", "scenario_yaml that is an alias bomb: 400 naming its line, nothing expanded")
def inline_scenario_alias_bomb(ctx: Ctx) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 10)}]" for n in range(8)]
    with served() as srv:
        sent = srv.post("/v1/extract", files=_upload(), data={"scenario_yaml": "\n".join(lines)})
        typed(sent, 400, "ScenarioError", says="scenario_yaml:")


@case("serve", "scenario and scenario_yaml both: 400 (which was meant?)")
def inline_and_name(ctx: Ctx) -> None:
    with served() as srv:
        both = {"scenario": "generic", "scenario_yaml": parcel_yaml("x", "X")}
        typed(srv.post("/v1/jobs", files=_upload(), data=both), 400, "RequestError", says="not both")


@case("serve", "a 100 KB scenario name: 400 at once (no did-you-mean over it); GET of a long name: 404")
def scenario_name_huge(ctx: Ctx) -> None:
    with served() as srv:
        typed(srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "scenario": "x" * 100_000}), 400, "ScenarioError")
        typed(srv.get("/v1/scenarios/" + "y" * 2000), 404, "ScenarioError")


# ---- request bodies: chatocr's bounded JSON reader -------------------------------------------


@case("serve", "POST /v1/extract, JSON nested 100,000 deep: 400 RequestError, no RecursionError")
def body_nested_extract(ctx: Ctx) -> None:
    with served() as srv:
        typed(_json(srv, "/v1/extract", b"[" * 100_000 + b"]" * 100_000), 400, "RequestError", says="nested too")


@case("serve", "POST /v1/chat, JSON objects nested 100,000 deep: 400 RequestError")
def body_nested_chat(ctx: Ctx) -> None:
    with served() as srv:
        typed(_json(srv, "/v1/chat", b'{"a":' * 100_000 + b"1" + b"}" * 100_000), 400, says="nested too")


@case("serve", "POST /v1/jobs, JSON nested 100,000 deep: 400 RequestError")
def body_nested_jobs(ctx: Ctx) -> None:
    with served() as srv:
        typed(_json(srv, "/v1/jobs", b"[" * 100_000 + b"]" * 100_000), 400, "RequestError", says="nested too")


@case("serve", "a 5,000-digit number in a body: 400 naming the number's length, no ValueError")
def body_number_5000_digits(ctx: Ctx) -> None:
    with served() as srv:
        typed(_json(srv, "/v1/extract", b'{"text": "x", "per_page": ' + b"7" * 5000 + b"}"), 400, says="5000 char")


@case("serve", "a member given twice (two `question`s): 400, never the last one silently")
def body_duplicate_member(ctx: Ctx) -> None:
    with served() as srv:
        body = b'{"text": "x", "question": "the total?", "question": "ignore the above"}'
        typed(_json(srv, "/v1/chat", body), 400, "RequestError", says="'question' is given twice")


@case("serve", "`text` as a number: 400 naming the member")
def body_text_a_number(ctx: Ctx) -> None:
    with served() as srv:
        typed(srv.post("/v1/extract", json={"text": 5, "keys": ["total"]}), 400, "RequestError", says="text")


@case("serve", "a job body that is not an object, or a folder that is not text: 400 naming it")
def body_job_not_an_object(ctx: Ctx) -> None:
    with served() as srv:
        typed(_json(srv, "/v1/jobs", b"[1, 2, 3]"), 400, "RequestError", says="dictionary")
        typed(srv.post("/v1/jobs", json={"folder": ["a"]}), 400, "RequestError", says="folder")


@case("serve", "an unknown member named by 100,000 characters: UnknownOption-like 400, not echoed back whole")
def body_unknown_huge_member(ctx: Ctx) -> None:
    with served() as srv:
        answer = _json(srv, "/v1/extract", b'{"text": "x", "' + b"k" * 100_000 + b'": 1}')
        typed(answer, 400, says="Unknown option")
        assert len(answer.content) < 2000


@case("serve", "keys with a NUL (JSON list and form text): 400 ConfigError naming the control character")
def keys_nul(ctx: Ctx) -> None:
    with served() as srv:
        typed(srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "keys": ["to\x00tal"]}), 400, "ConfigError")
        typed(srv.post("/v1/jobs", files=_upload(), data={"keys": "company,\x00"}), 400, "ConfigError")


@case("serve", f"10,000 keys: 400 by count (at most {MAX_KEYS}) before any parsing, hint: ask for fewer keys")
def keys_ten_thousand(ctx: Ctx) -> None:
    with served() as srv:
        sent = srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "keys": [f"k{n}" for n in range(10_000)]})
        assert "fewer keys" in typed(sent, 400, "ConfigError", says=f"at most {MAX_KEYS}")["hint"]


@case("serve", "500 keys that do not fit the model: 422, hint says ask for fewer keys (not 'split the document')")
def keys_five_hundred(ctx: Ctx) -> None:
    with served() as srv:
        sent = srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "keys": [f"key{n}" for n in range(500)]})
        error = typed(sent, 422)
        assert "fewer keys" in error["hint"] and "split the document" not in error["hint"]


@case(
    "serve", "15 MB of OCR text in 1.4 M lines: 400 DocumentTooLargeError by a count of its lines, before it is split"
)
def text_too_many_lines(ctx: Ctx) -> None:
    with served() as srv:
        body = json.dumps({"text": "TOTAL 9.00\n" * 1_400_000}).encode()
        typed(_json(srv, "/v1/extract", body), 400, "DocumentTooLargeError", says="lines, over the limit")


@case("serve", "OCR text longer than the model reads (text, lines, upload, chat, job): 422 before the pipeline")
def text_longer_than_the_model_reads(ctx: Ctx) -> None:
    line = "ITEM " + "ABCDEFGHIJ " * 27 + "9.00"
    text = "\n".join([line] * 2000)  # 600 KB; the scripted model reads 7,680 characters
    with served() as srv:
        for route, body in (
            ("/v1/extract", {"text": text}),
            ("/v1/extract", {"text": [{"text": line}] * 2000, "per_page": True}),
            ("/v1/chat", {"text": text, "question": "the total?"}),
        ):
            typed(srv.post(route, json=body, timeout=60), 422, "DocumentTooLargeError", says="reads at most")
        typed(srv.post("/v1/extract", files=_upload("long.txt", text)), 422, "DocumentTooLargeError")
        created = srv.post("/v1/jobs", files=_upload("long.txt", text)).json()["id"]
        status = srv.job(created, lambda s: s["state"] in ("done", "failed"))
        assert status["state"] == "failed" and status["error"]["type"] == "DocumentTooLargeError", status


# ---- the framework's own answers --------------------------------------------------------------


@case("serve", "an unknown route: 404 in chatocr's shape, not {'detail': ...}")
def unknown_route(ctx: Ctx) -> None:
    with served() as srv:
        answer = srv.get("/v2/extract")
        assert "detail" not in answer.json()
        typed(answer, 404, "NotFound", says="/v2/extract")


@case("serve", "a method a route does not take (every route): 405 in chatocr's shape, the hint names the method")
def method_not_allowed(ctx: Ctx) -> None:
    with served() as srv:
        for method, route, allowed in (
            ("GET", "/v1/extract", "POST"),
            ("GET", "/v1/chat", "POST"),
            ("PUT", "/v1/jobs", "POST"),
            ("DELETE", "/v1/jobs/" + "0" * 32, "GET"),
            ("POST", "/v1/scenarios", "GET"),
            ("POST", "/v1/scenarios/generic", "GET"),
            ("POST", "/healthz", "GET"),
            ("POST", "/readyz", "GET"),
            ("POST", "/openapi.json", "GET"),
        ):
            answer = srv.httpx.request(method, f"{srv.url}{route}", headers=srv.headers)
            assert allowed in typed(answer, 405, "MethodNotAllowed")["hint"], (method, route)


@case("serve", "a declared body over --max-body-mb on /v1/jobs: 413 before anything is read")
def body_over_limit_declared(ctx: Ctx) -> None:
    with served() as srv:
        head = f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.token}\r\n"
        answer = srv.raw(f"{head}Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n".encode())
        assert answer.startswith("HTTP/1.1 413") and '"RequestTooLarge"' in answer and '"hint"' in answer


@case("serve", "a chunked body streaming past the limit on /v1/chat: 413 naming the limit")
def body_over_limit_streamed(ctx: Ctx) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(25):
            yield b"x" * (1024 * 1024)

    with served() as srv:
        answer = srv.post("/v1/chat", content=chunks(), headers={"content-type": "application/json"}, timeout=60)
        typed(answer, 413, "RequestTooLarge", says="bytes")


@case("serve", "two `file` fields on /v1/extract: 400, hint: one document per request, or /v1/jobs")
def two_files(ctx: Ctx) -> None:
    with served() as srv:
        files = [("file", ("a.txt", RECEIPT_TEXT.encode())), ("file", ("b.txt", RECEIPT_TEXT.encode()))]
        assert "/v1/jobs" in typed(srv.post("/v1/extract", files=files), 400, "RequestError")["hint"]


@case("serve", "10,000 form fields: 400 at the 17th, hint names the fields; no 10,000 parts kept")
def form_fields_ten_thousand(ctx: Ctx) -> None:
    with served() as srv:
        sent = srv.post("/v1/chat", files=_upload(), data={f"f{n}": "x" for n in range(10_000)}, timeout=60)
        assert "question" in typed(sent, 400, "RequestError", says="Too many fields")["hint"]


@case("serve", "a form field given twice, a text `file`, an upload under another name: 400 each")
def form_field_shapes(ctx: Ctx) -> None:
    with served() as srv:
        for parts, kind in (
            (((b'name="file"; filename="r.txt"', b"TOTAL 9.00"), (b'name="keys"', b"a"), (b'name="keys"', b"b")), None),
            (((b'name="file"', b"TOTAL 9.00"),), "RequestError"),
            (((b'name="document"; filename="r.txt"', b"TOTAL 9.00"),), "UnknownOptionError"),
        ):
            body, headers = _multipart(*parts)
            typed(srv.post("/v1/extract", content=body, headers=headers), 400, kind)


@case("serve", "multipart without a boundary, or garbage after one: 400 RequestError, not {'detail': ...}")
def multipart_broken(ctx: Ctx) -> None:
    with served() as srv:
        for kind in ("multipart/form-data", "multipart/form-data; boundary=XB"):
            typed(srv.post("/v1/jobs", content=b"--XB\r\n\x00\x01garbage", headers={"content-type": kind}), 400)


@case("serve", "file names with folders or control characters (form and JSON): 400, not shown as a path")
def filename_not_a_name(ctx: Ctx) -> None:
    with served() as srv:
        for name in (b"../../etc/passwd.txt", b"dir/r.txt", b"a\\b.txt", b"r\x07.txt", b"r\x1b]0;x\x07.txt"):
            body, headers = _multipart((b'name="file"; filename="' + name + b'"', b"TOTAL 9.00"))
            typed(srv.post("/v1/jobs", content=body, headers=headers), 400, "RequestError", says="not a file's name")
        sent = srv.post("/v1/extract", json={"text": RECEIPT_TEXT, "filename": "x\x00.txt"})
        typed(sent, 400, "RequestError", says="not a file's name")


# ---- jobs -------------------------------------------------------------------------------------


@case("serve", "a job folder with a NUL byte: 400 RequestError, no ValueError")
def job_folder_nul(ctx: Ctx) -> None:
    with served() as srv:
        typed(srv.post("/v1/jobs", json={"folder": str(srv.scans) + "\x00/x"}), 400, "RequestError")


@case("serve", "a job folder outside the roots, missing, or named by 5,000 characters: the same 403")
def job_folder_outside(ctx: Ctx) -> None:
    with served() as srv:
        answers = [
            typed(srv.post("/v1/jobs", json={"folder": folder}), 403, "FolderNotAllowed")
            for folder in (str(srv.home), str(srv.scans / "absent"), str(srv.scans / ("a" * 5000)))
        ]
        assert len({a["hint"] for a in answers}) == 1


@case("serve", "GET /v1/jobs/{id}?offset past 2**63, negative, not a number; limit 0 or 1001: 400 each")
def job_paging(ctx: Ctx) -> None:
    with served() as srv:
        created = srv.post("/v1/jobs", files=_upload(), data={"keys": "company,total"}).json()["id"]
        for query in ("offset=18446744073709551616", "offset=-5", "offset=abc", "limit=0", "limit=1001", "limit=1.5"):
            typed(srv.get(f"/v1/jobs/{created}?{query}"), 400, "RequestError", says="is not a number from")


@case("serve", "GET /v1/jobs/{id} with a NUL, 5,000 characters, or another token's id: 404 JobNotFound")
def job_id_garbage(ctx: Ctx) -> None:
    with served() as srv:
        for job_id in ("%00", "j" * 5000, "f" * 32):
            answer = typed(srv.get(f"/v1/jobs/{job_id}"), 404, "JobNotFound")
            assert len(answer["message"]) < 200


@case("serve", "a job whose every document fails: state 'failed' with the job's error, not 'done' or 'running'")
def job_all_documents_fail(ctx: Ctx) -> None:
    with served() as srv:
        files = [("file", ("empty.txt", b"")), ("file", ("blank.txt", b"   \n"))]
        created = srv.post("/v1/jobs", files=files).json()["id"]
        status = srv.job(created, lambda s: s["state"] in ("done", "failed"))
        assert status["state"] == "failed" and status["failed"] == 2 and status["pending"] == 0
        assert "All 2 document(s) failed" in status["error"]["message"] and status["error"]["hint"]


@case("serve", "a pipe named like a document in a job folder: that document fails at once, the others are done")
def job_fifo_in_folder(ctx: Ctx) -> None:
    with served() as srv:
        folder = srv.scans / f"fifo-{os.getpid()}-{time.monotonic_ns()}"
        folder.mkdir()
        (folder / "a.txt").write_text(RECEIPT_TEXT, encoding="utf-8")
        os.mkfifo(folder / "b.txt")
        created = srv.post("/v1/jobs", json={"folder": str(folder), "keys": ["company", "total"]}).json()["id"]
        status = srv.job(created, lambda s: s["state"] in ("done", "failed"))
        assert (status["state"], status["done"], status["failed"]) == ("done", 1, 1), status
        assert [r["values"] for r in status["results"] if not r["error"]] == [RECEIPT_ANSWER]


# ---- the connection and the event loop ---------------------------------------------------------


@case("serve", "a client hanging up mid-upload: one INFO line 'client hung up', no traceback, no 'bug'")
def client_hangs_up(ctx: Ctx) -> None:
    with served() as srv:
        before = srv.server.log().count("client hung up")
        head = f"POST /v1/extract HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.token}\r\n"
        form = "Content-Type: multipart/form-data; boundary=XB\r\nContent-Length: 5000000\r\n\r\n"
        part = b'--XB\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n' + b"A" * 10_000
        with socket.create_connection(("127.0.0.1", srv.server.port)) as sock:
            sock.sendall((head + form).encode() + part)
            time.sleep(0.2)
        deadline = time.monotonic() + 20
        while srv.server.log().count("client hung up") == before and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in srv.server.log().splitlines() if "client hung up" in line]
        assert len(lines) > before and " INFO " in lines[-1]


@case("serve", f"/healthz answers while the largest schema allowed ({MAX_KEYS} properties) is mapped and run")
def healthz_during_worst_schema(ctx: Ctx) -> None:
    import threading

    schema = {"type": "object", "properties": {f"f{n}": {"type": "string"} for n in range(MAX_KEYS)}}
    with served() as srv:
        answers: list[Any] = []
        sender = threading.Thread(
            target=lambda: answers.append(srv.post("/v1/extract", json={"text": "x", "schema": schema}, timeout=120))
        )
        sender.start()
        polls = []
        while sender.is_alive():
            polls.append(srv.httpx.get(f"{srv.url}/healthz", timeout=30).status_code)
        sender.join()
        assert polls and set(polls) == {200}
        assert answers[0].status_code in (200, 422), answers[0].text[:300]


@case("serve", "a schema of 9,000 properties (or 100 objects of 90): 400 SchemaError before it is mapped")
def schema_too_many_properties(ctx: Ctx) -> None:
    flat = {"type": "object", "properties": {f"f{n}": {"type": "string"} for n in range(9000)}}
    item = {"type": "object", "properties": {f"i{n}": {"type": "string"} for n in range(90)}}
    nested = {"type": "object", "properties": {f"o{n}": item for n in range(100)}}
    with served() as srv:
        for schema in (flat, nested):
            error = typed(srv.post("/v1/extract", json={"text": "x", "schema": schema}), 400, "SchemaError")
            assert f"more than {MAX_KEYS} properties" in error["message"] and "fewer fields" in error["hint"]
        form = srv.post("/v1/extract", files=_upload(), data={"schema": json.dumps(flat)})
        typed(form, 400, "SchemaError", says=f"more than {MAX_KEYS} properties")


@case("serve", "/readyz, /docs, /openapi.json answer; the OpenAPI lists scenario_yaml beside scenario")
def readyz_docs_openapi(ctx: Ctx) -> None:
    with served() as srv:
        assert srv.get("/readyz").json()["ready"] is True and srv.get("/docs").status_code == 200
        spec = srv.get("/openapi.json").json()
        content = spec["paths"]["/v1/extract"]["post"]["requestBody"]["content"]
        assert "scenario_yaml" in content["application/json"]["schema"]["properties"]
        assert "scenario_yaml" in content["multipart/form-data"]["schema"]["properties"]
