"""The review app over HTTP, in process (FastAPI's TestClient): the page and its two assets and
nothing else; only the results' own images; corrections that need the page's token, JSON and a
field and lines of the document; the view the page draws; a fully reviewed document joins the
memory; reviewed documents exported as a labelled set that `chatocr eval` and `chatocr export sft`
read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatocr.review import MemorySettings, ReviewSession
from tests.review.conftest import HOSTILE, KEYS, ResultsSet

pytest.importorskip("fastapi", reason="the serve extra")
pytest.importorskip("httpx", reason="the serve extra")
from fastapi.testclient import TestClient

from chatocr.review.app import CSP, create_review_app

TOKEN = "test-token-0123456789"


@pytest.fixture(scope="session")
def engine_for(rapid_key: str) -> Callable[[str], Any]:
    from chatocr.cli.view_cmd import engine_lookup

    return engine_lookup(None, None)


def _client(
    results: ResultsSet, engine_for: Callable[[str], Any], memory: Path | None = None
) -> tuple[TestClient, ReviewSession]:
    session = ReviewSession(
        results.results,
        reviewer="tester",
        engine_for=engine_for,
        memory=MemorySettings(enabled=memory is not None, root=memory),
    )
    client = TestClient(create_review_app(session, token=TOKEN), base_url="http://127.0.0.1")
    return client, session


def _post(client: TestClient, number: int, actions: list[dict[str, Any]], **headers: str) -> Any:
    return client.post(
        f"/api/documents/{number}/events",
        content=json.dumps({"actions": actions}),
        headers={"content-type": "application/json", "x-review-token": TOKEN, **headers},
    )


def test_the_page_and_its_assets_only(results_set: ResultsSet, engine_for: Callable[[str], Any]) -> None:
    client, _ = _client(results_set, engine_for)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert f'content="{TOKEN}"' in page.text and 'src="static/review.js"' in page.text
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # nothing from elsewhere
    for name, kind in (("review.js", "javascript"), ("review.css", "css")):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert "http://" not in asset.text.replace("http://www.w3.org/2000/svg", "") and "https://" not in asset.text
    for path in (
        "/static/review.html",
        "/static/..%2Fapp.py",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/etc/passwd",
        "//etc/passwd",
        "/api/documents/..%2F..%2Fetc%2Fpasswd",
        "/api/documents/-1",
        "/api/documents/99",
        "/api/documents/0x1",
        "/api/documents/0/pages/..%2F..%2Fetc%2Fpasswd/image",
        "/api/documents/0/pages/%2Fetc%2Fpasswd/image",
        "/api/documents/0/pages/0/image/../../../../etc/passwd",
        f"/api/documents/0/pages/0/{results_set.images[0]}",
        "/api/documents/0/pages/7/image",
    ):
        assert client.get(path).status_code == 404, path


def test_only_the_results_own_images_are_served(
    results_set: ResultsSet, engine_for: Callable[[str], Any], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(results_set.images[1].read_bytes())
    moved = results_set.images[0]
    moved.rename(moved.with_name("moved-away.jpg"))
    results_set.images[1].unlink()
    results_set.images[1].symlink_to(outside)  # a link out of its folder
    inside = results_set.images[2]
    kept = inside.with_name("real-copy.jpg")
    inside.rename(kept)
    inside.symlink_to(kept.name)  # a link within its folder: still the results' own image
    client, _ = _client(results_set, engine_for)
    views = [client.get(f"/api/documents/{n}").json() for n in range(3)]
    assert any("is missing (moved or deleted)" in note for note in views[0]["notes"])
    assert any("a link to a file outside its folder" in note for note in views[1]["notes"])
    assert views[0]["pages"][0]["image"] is None and views[1]["pages"][0]["image"] is None
    for number in (0, 1):
        assert client.get(f"/api/documents/{number}/pages/0/image").status_code == 404
    assert len(views[0]["pages"][0]["lines"]) == len(results_set.documents[0].lines)  # still drawn, on a blank page
    served = client.get("/api/documents/2/pages/0/image")
    assert served.status_code == 200 and served.content[:3] == b"\xff\xd8\xff"  # a JPEG
    assert views[2]["notes"] == []


def test_corrections_need_the_token_json_and_the_document_own_fields(
    results_set: ResultsSet, engine_for: Callable[[str], Any]
) -> None:
    client, _ = _client(results_set, engine_for)
    before = results_set.results.read_bytes()
    accept = [{"field": "total", "action": "accept"}]
    assert _post(client, 0, accept, **{"x-review-token": "wrong"}).status_code == 403
    assert _post(client, 0, accept, **{"content-type": "text/plain"}).status_code == 415
    assert _post(client, 0, accept, host="evil.example:80").status_code == 403
    assert client.get("/api/documents", headers={"host": "attacker.test"}).status_code == 403
    bad = _post(client, 0, [{"field": "nope", "action": "accept"}])
    assert bad.status_code == 400 and "no field 'nope'" in bad.json()["error"]["message"]
    foreign = _post(client, 0, [{"field": "total", "action": "fix", "value": "1", "lines": ["p0-l999"]}])
    assert foreign.status_code == 400 and "no OCR line" in foreign.json()["error"]["message"]
    assert _post(client, 0, [{"action": "undo", "event": "never"}]).status_code == 400
    assert results_set.lines() == []  # nothing written for any of those
    assert _post(client, 0, accept).status_code == 200
    assert results_set.results.read_bytes() == before  # the results file is never rewritten


def test_the_view_puts_fields_needing_review_first_and_keeps_text_as_data(
    results_set: ResultsSet, engine_for: Callable[[str], Any]
) -> None:
    client, _session = _client(results_set, engine_for)
    summary = client.get("/api/documents").json()
    assert [d["name"] for d in summary["documents"]] == [p.name for p in results_set.images]
    for number in range(len(results_set.images)):
        fields = client.get(f"/api/documents/{number}").json()["fields"]
        needing = [f["needs_review"] for f in fields]
        assert needing == sorted(needing, reverse=True)
        firsts = [f["confidence"] if f["confidence"] is not None else -1 for f in fields if f["needs_review"]]
        assert firsts == sorted(firsts)
    hostile = client.get(f"/api/documents/{len(results_set.images) - 1}").json()
    assert {f["name"]: f["value"] for f in hostile["fields"]}["company"] == HOSTILE
    assert hostile["pages"][0]["lines"][0]["text"] == HOSTILE


def test_checks_a_result_carries_are_shown_on_their_fields(
    results_set: ResultsSet, engine_for: Callable[[str], Any]
) -> None:
    lines = results_set.results.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["checks"] = [
        {"name": "items_sum", "fields": ["total", "items"], "passed": False, "message": "items add up to 8.00"},
        {"name": "date", "fields": ["date"], "passed": True, "message": ""},
        {"name": "final_amount", "fields": ["total"], "passed": None, "message": "no total line"},  # skipped
    ]
    results_set.results.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n", encoding="utf-8")
    client, _ = _client(results_set, engine_for)
    fields = {f["name"]: f for f in client.get("/api/documents/0").json()["fields"]}
    assert fields["total"]["checks"] == [{"name": "items_sum", "message": "items add up to 8.00", "status": "failed"}]
    assert fields["date"]["checks"] == []


def test_a_fix_by_line_then_the_rest_joins_the_memory(
    results_set: ResultsSet, engine_for: Callable[[str], Any], tmp_path: Path
) -> None:
    from chatocr.memory import MemoryStore

    client, session = _client(results_set, engine_for, memory=tmp_path / "memory")
    document = results_set.documents[0]
    line = next(line for line in document.lines if "9.00" in line.text)
    view = _post(client, 0, [{"field": "total", "action": "fix", "value": "9.00 RM", "lines": [line.id]}]).json()
    total = next(f for f in view["fields"] if f["name"] == "total")
    assert total["review"]["state"] == "fixed" and total["review"]["value"] == "9.00 RM"
    assert total["review"]["lines"][0]["line"] == line.id and len(total["review"]["lines"][0]["points"]) == 8
    event = results_set.lines()[0]
    assert event["lines"][0]["box"] == [list(p) for p in line.to_dict()["box"]] and event["reviewer"] == "tester"
    assert not MemoryStore("retail_receipt", tmp_path / "memory").exists  # not fully reviewed yet
    rest = [{"field": name, "action": "accept"} for name in KEYS if name != "total"]
    view = _post(client, 0, rest).json()
    assert view["reviewed"] == len(KEYS) and view["memory"] == "remembered in the memory of retail_receipt"
    store = MemoryStore("retail_receipt", tmp_path / "memory")
    (example,) = store.examples()
    assert example.answer["total"] == "9.00 RM" and example.reviewer == "tester"
    assert example.source.path == str(results_set.images[0]) and example.text == document.text()
    assert any("remembered" in note for note in session.memory_notes)
    assert store.search(document.text(), limit=1)[0].example.id == example.id


def test_reviewed_documents_export_as_a_labelled_set(
    results_set: ResultsSet, engine_for: Callable[[str], Any], tmp_path: Path
) -> None:
    from chatocr import ChatOCR
    from chatocr.evaluation.datasets import load_dataset
    from chatocr.export.sources import read_sources
    from chatocr.llm.scripted import ScriptedChatModel
    from chatocr.ocr.text import TextEngine
    from chatocr.review.labels import export_labels
    from chatocr.scenarios import load_scenarios

    client, session = _client(results_set, engine_for)
    for number in (0, 1):
        _post(client, number, [{"field": name, "action": "accept"} for name in KEYS])
    _post(client, 0, [{"field": "address", "action": "fix", "value": None}])  # not in the document
    _post(client, 2, [{"field": "total", "action": "accept"}])  # partly reviewed: not exported
    out = tmp_path / "reviewed"
    report = export_labels(session, out)
    assert len(report.written) == 2 and len(report.skipped) == len(results_set.images) - 2
    assert sorted(p.suffix for p in (out / "images").iterdir()) == [".jpg", ".jpg"]
    assert not any(p.is_symlink() for p in (out / "images").iterdir())
    dataset = load_dataset(out, load_scenarios())
    assert dataset.scenario == "retail_receipt" and len(dataset.documents) == 2
    first = next(d for d in dataset.documents if d.id == report.written[0])
    accepted = session.documents[0].result.values
    assert first.labels == {**accepted, "address": None} and first.image is not None and first.ocr is not None
    labels = json.loads((out / "labels" / f"{report.written[0]}.json").read_text(encoding="utf-8"))
    assert labels["address"] is None and set(labels) == set(KEYS)
    read = TextEngine().read(out / "ocr" / f"{report.written[0]}.json")
    assert [line.text for line in read.lines] == [line.text for line in results_set.documents[0].lines]
    chat = ChatOCR(llm=ScriptedChatModel(["{}"]), ocr="text", config={"ocr_cache": False})
    reviewed, skipped = read_sources([out], chat)
    assert skipped == [] and [r.id for r in reviewed] == [f"reviewed/{doc_id}" for doc_id in sorted(report.written)]
    by_id = {r.id: r for r in reviewed}
    assert by_id[f"reviewed/{report.written[0]}"].answer == {**accepted, "address": None}
    assert all(r.document.has_boxes and r.image is not None for r in reviewed)
