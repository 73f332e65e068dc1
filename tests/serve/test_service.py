"""The service end to end: a real uvicorn subprocess, httpx clients, chatocr's scripted backend."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.serve.conftest import ANSWER, CHATOCR, KEYS, RECEIPT_TEXT, TOKEN, auth, base_env, httpx

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _extract(server: Any, **body: Any) -> Any:
    return httpx.post(f"{server.url}/v1/extract", json=body, headers=auth(), timeout=30)


def test_json_text_gives_the_extraction_json_of_extract_format_json(server: Any, tmp_path: Path) -> None:
    response = _extract(server, text=RECEIPT_TEXT, keys=KEYS, scenario="retail_receipt")
    assert response.status_code == 200, response.text
    served = response.json()
    assert served["values"] == ANSWER and served["ok"] is True
    assert served["fields"]["total"]["status"] == "grounded" and served["fields"]["total"]["evidence"][0]["box"]
    # The same document through `chatocr extract --format json` gives the same record.
    document = tmp_path / "receipt.txt"
    document.write_text(RECEIPT_TEXT, encoding="utf-8")
    printed = subprocess.run(
        [
            str(CHATOCR),
            "extract",
            str(document),
            "--llm",
            "scripted",
            "--ocr",
            "text",
            "--keys",
            ",".join(KEYS),
            "--scenario",
            "retail_receipt",
            "--format",
            "json",
        ],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    cli = json.loads(printed.stdout)
    assert set(served) == set(cli)
    for key in ("values", "fields", "scenario", "examples", "steps", "ok", "error"):
        assert served[key] == cli[key], key
    assert served["input"]["sha256"] == cli["input"]["sha256"]


def test_multipart_text_file_and_form_fields(server: Any) -> None:
    files = {"file": ("receipt.txt", RECEIPT_TEXT.encode(), "text/plain")}
    response = httpx.post(f"{server.url}/v1/extract", files=files, data={"keys": "company,total"}, headers=auth())
    assert response.status_code == 200, response.text
    assert response.json()["values"] == ANSWER
    assert response.json()["input"]["path"] == "receipt.txt"


def test_ocr_lines_as_json(server: Any) -> None:
    lines = [{"text": "SHOP ABC SDN BHD", "box": [10, 10, 200, 30]}, {"text": "TOTAL 9.00", "box": [10, 40, 120, 60]}]
    response = _extract(server, text=lines, keys=KEYS)
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["company"]["evidence"][0]["box"] == [[10, 10], [200, 10], [200, 30], [10, 30]]


def test_tokens_required_and_refused_and_never_logged(start_server: Any) -> None:
    server = start_server()
    missing = httpx.post(f"{server.url}/v1/extract", json={"text": RECEIPT_TEXT})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert (
        missing.json()["error"]["type"] == "Unauthorized" and "Authorization: Bearer" in missing.json()["error"]["hint"]
    )
    wrong = httpx.post(f"{server.url}/v1/extract", json={"text": RECEIPT_TEXT}, headers=auth("x" * 26))
    assert wrong.status_code == 401
    assert _extract(server, text="SECRET DOCUMENT LINE 4711\nTOTAL 9.00", keys=["total"]).status_code == 200
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # probes need no token
    server.stop()
    log = server.log()
    assert "POST /v1/extract 200" in log and "POST /v1/extract 401" in log
    assert TOKEN not in log and "SECRET DOCUMENT" not in log and "4711" not in log


def test_non_loopback_host_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    env = base_env(tmp_path, tokens=None)
    run = subprocess.run(
        [str(CHATOCR), "serve", "--host", "0.0.0.0", "--port", "0", "--llm", "scripted"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "Refusing to serve on 0.0.0.0 without a bearer token" in run.stderr and "CHATOCR_SERVE_TOKENS" in run.stderr
    env["CHATOCR_SERVE_TOKENS"] = "short"
    run = subprocess.run(
        [str(CHATOCR), "serve", "--port", "0", "--llm", "scripted"], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1 and "shorter than 16 characters" in run.stderr


def test_token_from_the_keys_file(start_server: Any, tmp_path: Path) -> None:
    env = base_env(tmp_path, tokens=None)
    keys = tmp_path / "keys.toml"
    keys.write_text('CHATOCR_SERVE_TOKENS = "from-the-keys-file-0123456789"\n', encoding="utf-8")
    keys.chmod(0o600)
    env["CHATOCR_KEYS_FILE"] = str(keys)
    server = start_server(env=env)
    ok = httpx.post(
        f"{server.url}/v1/extract",
        json={"text": RECEIPT_TEXT, "keys": KEYS},
        headers=auth("from-the-keys-file-0123456789"),
    )
    assert ok.status_code == 200
    assert httpx.post(f"{server.url}/v1/extract", json={"text": RECEIPT_TEXT}).status_code == 401


def test_oversize_body_is_413_naming_the_limit(start_server: Any) -> None:
    server = start_server("--max-body-mb", "0.01")  # 10485 bytes
    big = "TOTAL 9.00\n" * 2000
    declared = _extract(server, text=big)
    assert declared.status_code == 413
    assert (
        declared.json()["error"]["type"] == "RequestTooLarge" and "10485 bytes" in declared.json()["error"]["message"]
    )

    def chunks() -> Any:  # no Content-Length: the limit holds while the body streams
        for _ in range(40):
            yield b"x" * 1000

    streamed = httpx.post(
        f"{server.url}/v1/extract", content=chunks(), headers={**auth(), "content-type": "application/json"}
    )
    assert streamed.status_code == 413 and "10485 bytes" in streamed.json()["error"]["message"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def _tiff(pages: int) -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (60, 40), "white") for _ in range(pages)]
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def test_pixels_and_pages_are_413_naming_the_limit(start_server: Any) -> None:
    pytest.importorskip("rapidocr")
    server = start_server("--ocr", "rapid", "--max-pixels", "10000", "--max-pages", "2")
    pixels = httpx.post(
        f"{server.url}/v1/extract", files={"file": ("big.png", _png(200, 200), "image/png")}, headers=auth(), timeout=60
    )
    assert pixels.status_code == 413, pixels.text
    assert (
        pixels.json()["error"]["type"] == "ImageTooLargeError" and "limit of 10000" in pixels.json()["error"]["message"]
    )
    pages = _extract(server, image_base64=base64.b64encode(_tiff(3)).decode(), filename="scan.tiff")
    assert pages.status_code == 413, pages.text
    assert pages.json()["error"]["type"] == "TooManyPagesError" and "limit of 2" in pages.json()["error"]["message"]


def test_request_errors_are_typed_json_with_a_hint(server: Any) -> None:
    cases = {
        "not json": (
            httpx.post(
                f"{server.url}/v1/extract", content=b"{", headers={**auth(), "content-type": "application/json"}
            ),
            400,
            "RequestError",
        ),
        "no document": (_extract(server, keys=KEYS), 400, "RequestError"),
        "unknown field": (_extract(server, text="x", colour="red"), 400, "UnknownOptionError"),
        "bad base64": (_extract(server, image_base64="%%%"), 400, "RequestError"),
        "unknown scenario": (_extract(server, text=RECEIPT_TEXT, scenario="retail_reciept"), 400, "ScenarioError"),
        "image to the text engine": (
            _extract(server, image_base64=base64.b64encode(_png(20, 20)).decode()),
            415,
            "UnsupportedInputError",
        ),
    }
    for name, (response, status, kind) in cases.items():
        assert response.status_code == status, (name, response.text)
        error = response.json()["error"]
        assert error["type"] == kind and error["message"] and error["hint"], name
        assert "Traceback" not in response.text
    assert "retail_receipt" in cases["unknown scenario"][0].json()["error"]["hint"]  # the suggestion


def test_a_bad_request_reads_as_it_does_from_python_and_no_job_is_accepted(server: Any) -> None:
    """The service builds its request with ChatOCR.request: the same words for the same mistake,
    before any work; a job with a bad key type is refused, not accepted and left running."""
    from chatocr import ChatOCR
    from chatocr.errors import ChatOCRError
    from chatocr.llm import ScriptedChatModel

    local = ChatOCR(llm=ScriptedChatModel(["{}"]), ocr="text", ocr_cache=False)
    for options in ({"keys": "total:money"}, {"schema": {"type": "object", "properties": {"a": {"type": "null"}}}}):
        with pytest.raises(ChatOCRError) as caught:
            local.request(options.get("keys"), None, schema=options.get("schema"))
        served = _extract(server, text=RECEIPT_TEXT, **options)
        assert served.status_code == 400, served.text
        error = served.json()["error"]
        assert (error["type"], error["message"], error["hint"]) == (
            type(caught.value).__name__,
            caught.value.message,
            caught.value.hint,
        )
    misspelled = _extract(server, text=RECEIPT_TEXT, shcema={"type": "object"}).json()["error"]
    assert misspelled["type"] == "UnknownOptionError"
    assert misspelled["message"] == "Unknown option 'shcema': did you mean 'schema'?"
    job = httpx.post(
        f"{server.url}/v1/jobs",
        files=[("file", ("r.txt", RECEIPT_TEXT.encode()))],
        data={"keys": "total:money"},
        headers=auth(),
        timeout=30,
    )
    assert job.status_code == 400 and job.json()["error"]["type"] == "ConfigError", job.text


def test_per_page_gives_one_result_per_page(server: Any) -> None:
    response = _extract(server, text=RECEIPT_TEXT, keys=KEYS, per_page=True)
    assert response.status_code == 200, response.text
    assert [page["values"] for page in response.json()["pages"]] == [ANSWER]
    assert [page["page"] for page in response.json()["pages"]] == [1]
    unreadable = _extract(server, image_base64=base64.b64encode(b"\xff\xd8\xff broken").decode(), per_page=True)
    assert unreadable.status_code == 415 and unreadable.json()["error"]["type"] == "UnsupportedInputError"


def test_schema_request(server: Any) -> None:
    schema = {"type": "object", "properties": {"company": {"type": "string"}, "total": {"type": "string"}}}
    response = _extract(server, text=RECEIPT_TEXT, schema=schema)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["values"]["total"] == "9.00"
    assert body["schema"]["json_schema"]["properties"].keys() >= {"company", "total"}, body["schema"]
    broken = _extract(server, text=RECEIPT_TEXT, schema={"type": "object", "properties": {"total": {"type": 7}}})
    assert broken.status_code in (400, 422), broken.text
    error = broken.json()["error"]
    assert error["type"] == "SchemaError" and error["hint"] and "Traceback" not in broken.text


def test_queue_full_is_429_with_retry_after_and_nothing_is_lost(start_server: Any) -> None:
    server = start_server("--concurrency", "1", "--queue", "1", "--per-token", "1", latency=2.0)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: _extract(server, text=RECEIPT_TEXT, keys=KEYS), range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 2 and statuses.count(429) >= 1, statuses
    for response in responses:
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1 and response.json()["error"]["type"] == "QueueFull"
        else:
            assert response.json()["values"] == ANSWER


def test_timeout_is_504(start_server: Any) -> None:
    server = start_server("--timeout", "1", latency=5.0)
    response = _extract(server, text=RECEIPT_TEXT, keys=KEYS)
    assert response.status_code == 504 and response.json()["error"]["type"] == "RequestTimeout"
    assert "1 s" in response.json()["error"]["message"]


def test_client_disconnect_frees_the_slot_and_the_server_stays_healthy(start_server: Any) -> None:
    # One slot, no queue, a model that takes 60 s: only a freed slot lets the next request in.
    server = start_server("--concurrency", "1", "--queue", "0", latency=60.0)
    body = json.dumps({"text": RECEIPT_TEXT, "keys": KEYS}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(
            b"POST /v1/extract HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(1.0)  # the request is running now
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    # A fast request through the same slot: the scripted model's latency applies to every call, so
    # just check admission: the next request is admitted (504 after its own timeout would also mean
    # admitted; 429 would mean the slot was never given back).
    deadline = time.monotonic() + 10
    status = 429
    while status == 429 and time.monotonic() < deadline:
        try:
            status = httpx.post(
                f"{server.url}/v1/extract", json={"text": RECEIPT_TEXT, "keys": KEYS}, headers=auth(), timeout=1.5
            ).status_code
        except httpx.ReadTimeout:
            status = 0  # admitted and running (the model is slow): the slot was free
        if status == 429:
            time.sleep(0.2)
    assert status != 429
    assert "POST /v1/extract 499" in server.log()  # the abandoned request, cancelled


def test_model_errors_map_to_typed_json(start_server: Any, tmp_path: Path) -> None:
    from tests.fakes.llm_server import FakeLLMServer

    fake = FakeLLMServer()
    try:
        config = tmp_path / "chatocr.toml"
        config.write_text(f'[chatocr]\nllm_options = {{ base_url = "{fake.url}/v1" }}\n', encoding="utf-8")
        env = base_env(tmp_path)
        env["OPENAI_API_KEY"] = "wrong-key"
        server = start_server("--llm", "openai:gpt-4o-mini", "--config", str(config), env=env)
        response = _extract(server, text=RECEIPT_TEXT, keys=KEYS)
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["type"] == "AuthenticationError" and "operator" in error["hint"]
        assert "wrong-key" not in response.text and "Traceback" not in response.text
    finally:
        fake.close()


def test_chat_is_stateless_with_history(start_server: Any, tmp_path: Path) -> None:
    env = base_env(tmp_path, answers=["The total is 9.00."])
    server = start_server(env=env)
    first = httpx.post(
        f"{server.url}/v1/chat", json={"text": RECEIPT_TEXT, "question": "What is the total?"}, headers=auth()
    )
    assert first.status_code == 200, first.text
    assert first.json()["answer"] == "The total is 9.00." and len(first.json()["history"]) == 1
    second = httpx.post(
        f"{server.url}/v1/chat",
        json={"text": RECEIPT_TEXT, "question": "And the shop?", "history": first.json()["history"]},
        headers=auth(),
    )
    assert second.status_code == 200 and second.json()["history"][0] == ["What is the total?", "The total is 9.00."]
    assert len(second.json()["history"]) == 2
    empty = httpx.post(f"{server.url}/v1/chat", json={"text": RECEIPT_TEXT, "question": " "}, headers=auth())
    assert empty.status_code == 422 and empty.json()["error"]["type"] == "InputError"


def test_scenarios_health_ready_and_openapi(server: Any) -> None:
    listed = httpx.get(f"{server.url}/v1/scenarios", headers=auth())
    assert listed.status_code == 200 and "retail_receipt" in [s["name"] for s in listed.json()["scenarios"]]
    shown = httpx.get(f"{server.url}/v1/scenarios/retail_receipt", headers=auth())
    assert shown.status_code == 200 and shown.json()["name"] == "retail_receipt" and shown.json()["fields"]
    missing = httpx.get(f"{server.url}/v1/scenarios/nope", headers=auth())
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "ScenarioError"
    assert httpx.get(f"{server.url}/v1/scenarios").status_code == 401
    assert httpx.get(f"{server.url}/readyz").json() == {"ready": True, "llm": "scripted:scripted", "ocr": "text"}
    spec = httpx.get(f"{server.url}/openapi.json").json()
    body = spec["paths"]["/v1/extract"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
    assert "image_base64" in body["application/json"]["schema"]["properties"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_cors_is_off_unless_configured(server: Any, start_server: Any) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in httpx.options(f"{server.url}/v1/extract", headers=preflight).headers
    opened = start_server("--cors-origin", "https://app.example")
    answer = httpx.options(f"{opened.url}/v1/extract", headers=preflight)
    assert answer.headers.get("access-control-allow-origin") == "https://app.example"


@pytest.mark.slow
def test_a_real_receipt_with_the_local_model(start_server: Any, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("rapidocr")
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "sroie"
    image = fixtures / "images" / "X00016469612.jpg"
    label = json.loads((fixtures / "labels" / "X00016469612.json").read_text(encoding="utf-8"))
    env = base_env(tmp_path)
    env.pop("CHATOCR_SCRIPTED_ANSWERS")
    server = start_server("--llm", "local", "--ocr", "rapid", "--timeout", "600", env=env)
    with image.open("rb") as handle:
        response = httpx.post(
            f"{server.url}/v1/extract",
            files={"file": (image.name, handle, "image/jpeg")},
            data={"keys": "company,date,total", "scenario": "retail_receipt"},
            headers=auth(),
            timeout=600,
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ocr"]["engine"] == "rapid" and result["calls"]
    assert result["fields"]["total"]["status"] == "grounded" and result["values"]["total"] == label["total"]
    assert result["fields"]["total"]["evidence"][0]["box"]
    assert result["values"]["date"] == label["date"]


def test_a_model_that_cannot_load_is_503_not_ready_with_the_reason(start_server: Any) -> None:
    server = start_server("--llm", "no-such-provider", ready=False)
    deadline = time.monotonic() + 120
    ready: Any = None
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{server.url}/readyz", timeout=2)
            if ready.json().get("error"):
                break
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    assert ready is not None and ready.status_code == 503
    assert "no-such-provider" in ready.json()["error"]["message"] and ready.json()["error"]["hint"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # the process is up all the same
    response = _extract(server, text=RECEIPT_TEXT)
    assert response.status_code == 503 and response.json()["error"]["type"] == "NotReady"


def test_an_upstream_rate_limit_is_503_with_its_retry_after(start_server: Any, tmp_path: Path) -> None:
    from tests.fakes.llm_server import FakeLLMServer, Status

    fake = FakeLLMServer()
    try:
        limited = Status(
            429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}}, {"Retry-After": "120"}
        )
        fake.enqueue(*[limited] * 8)
        config = tmp_path / "chatocr.toml"
        config.write_text(f'[chatocr]\nllm_options = {{ base_url = "{fake.url}/v1" }}\n', encoding="utf-8")
        env = base_env(tmp_path)
        env["OPENAI_API_KEY"] = fake.bearer_key
        server = start_server("--llm", "openai:gpt-4o-mini", "--config", str(config), env=env)
        response = _extract(server, text=RECEIPT_TEXT, keys=KEYS, scenario="retail_receipt")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "RateLimitError" and response.headers["retry-after"] == "120"
    finally:
        fake.close()
