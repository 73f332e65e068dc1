"""`chatocr serve --review RESULTS --memory DIR`: the review pages behind the service's tokens (a
real uvicorn subprocess, httpx), a reviewed document joining the memory, and the next extraction
of a similar document taking it as an example."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import ANSWER, CHATOCR, KEYS, TOKEN, auth, base_env, httpx

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

COOKIE_NAME = "chatocr_review"
SHOP = "SHOP ABC SDN BHD\nNO 12 JALAN MAJU\n47300 PETALING JAYA\n"


def _results(tmp_path: Path) -> Path:
    """Two receipts of one shop extracted by `chatocr extract` (scripted, text OCR) into results.jsonl."""
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(2):
        (folder / f"r{n}.txt").write_text(f"{SHOP}RECEIPT NO {n}\nTOTAL 9.00\n", encoding="utf-8")
    results = tmp_path / "results.jsonl"
    env = base_env(tmp_path, answers=[ANSWER] * 4)
    command = [str(CHATOCR), "extract", str(folder), "-k", ",".join(KEYS), "-s", "retail_receipt"]
    command += ["--llm", "scripted", "--ocr", "text", "--no-memory", "--out", str(results), "-q"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return results


def _page_token(html: str) -> str:
    match = re.search(r'<meta name="review-token" content="([^"]+)">', html)
    assert match is not None
    return match.group(1)


def test_review_pages_behind_the_tokens_and_what_they_teach(start_server: Any, tmp_path: Path) -> None:
    results = _results(tmp_path)
    memory = tmp_path / "memory"
    server = start_server("--review", str(results), "--memory", str(memory))
    base = f"{server.url}/review"
    with httpx.Client(timeout=30) as anonymous:
        page = anonymous.get(f"{base}/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/review/login"
        assert anonymous.get(f"{base}/api/documents").status_code == 401
        assert anonymous.get(f"{base}/login").status_code == 200
        wrong = anonymous.post(f"{base}/login", data={"token": "not-the-token-0123456789"}, follow_redirects=False)
        assert wrong.status_code == 401 and COOKIE_NAME not in wrong.headers.get("set-cookie", "")
    with httpx.Client(timeout=30, cookies={COOKIE_NAME: "99999999999.t-0000000000.00"}) as forged:
        assert forged.get(f"{base}/api/documents").status_code == 401
    with httpx.Client(timeout=30) as anonymous:
        # A program with the bearer token reads the API directly.
        listed = anonymous.get(f"{base}/api/documents", headers=auth())
        assert listed.status_code == 200 and len(listed.json()["documents"]) == 2

    with httpx.Client(timeout=30) as browser:
        signed = browser.post(f"{base}/login", data={"token": TOKEN}, follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/review/"
        cookie = signed.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "Path=/review" in cookie
        assert TOKEN not in cookie
        html = browser.get(f"{base}/").text
        token = _page_token(html)
        view = browser.get(f"{base}/api/documents/0").json()
        assert {f["name"] for f in view["fields"]} == set(KEYS)
        actions = {"actions": [{"field": name, "action": "accept"} for name in KEYS]}
        # A correction without the page's own token is refused (another site's page cannot send one).
        assert browser.post(f"{base}/api/documents/0/events", json=actions).status_code == 403
        saved = browser.post(f"{base}/api/documents/0/events", json=actions, headers={"X-Review-Token": token})
        assert saved.status_code == 200, saved.text
        assert "remembered in the memory of retail_receipt" in (saved.json().get("memory") or "")
    assert (memory / "retail_receipt" / "examples.sqlite3").is_file()
    assert len(results.with_name("results.review.jsonl").read_text(encoding="utf-8").splitlines()) == len(KEYS)

    # The next extraction of a receipt of the same shop takes the reviewed one as an example.
    text = f"{SHOP}RECEIPT NO 7\nTOTAL 9.00\n"
    body = {"text": text, "keys": KEYS, "scenario": "retail_receipt"}
    extracted = httpx.post(f"{server.url}/v1/extract", json=body, headers=auth(), timeout=30).json()
    used = [e for e in extracted["examples"] if e.startswith("memory:retail_receipt/")]
    assert used and extracted["memory"]["used"] == used


def test_without_tokens_the_pages_answer_the_loopback_host_only(start_server: Any, tmp_path: Path) -> None:
    results = _results(tmp_path)
    env = base_env(tmp_path, tokens=None)
    server = start_server("--review", str(results), "--no-memory", env=env)
    documents = httpx.get(f"{server.url}/review/api/documents", timeout=30)
    assert documents.status_code == 200
    rebound = httpx.get(f"{server.url}/review/api/documents", headers={"Host": "attacker.example"}, timeout=30)
    assert rebound.status_code == 403
    assert json.loads(rebound.text)["error"]["type"] == "Forbidden"


def test_a_missing_results_file_stops_the_server_before_it_listens(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    done = subprocess.run(
        [str(CHATOCR), "serve", "--llm", "scripted", "--ocr", "text", "--review", str(tmp_path / "none.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode != 0 and "No such results file" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_sign_in_cookie_is_checked_against_its_token_and_its_expiry() -> None:
    from chatocr.serve.review_pages import LIFETIME_S, _cookie, _cookie_caller
    from chatocr.serve.settings import TokenSet, token_id

    tokens = TokenSet([TOKEN, "another-token-0123456789"])
    caller = token_id(TOKEN)
    now = 1_800_000_000.0
    cookie = _cookie(tokens, caller, now)
    assert TOKEN not in cookie
    assert _cookie_caller(tokens, cookie, now + 60) == caller
    assert _cookie_caller(tokens, cookie, now + LIFETIME_S + 1) is None  # expired
    expires, who, mac = cookie.split(".")
    assert _cookie_caller(tokens, f"{int(expires) + 3600}.{who}.{mac}", now) is None  # expiry moved: MAC fails
    tampered = mac[:-1] + ("1" if mac.endswith("0") else "0")
    assert _cookie_caller(tokens, f"{expires}.{who}.{tampered}", now) is None
    assert _cookie_caller(tokens, f"{expires}.{token_id('another-token-0123456789')}.{mac}", now) is None
    assert _cookie_caller(TokenSet(["another-token-0123456789"]), cookie, now) is None  # its token was removed
    assert _cookie_caller(tokens, "", now) is None and _cookie_caller(tokens, "a.b.c", now) is None
