"""Real results files for the review tests: receipts extracted by the real pipeline (the scripted
backend answering each receipt's labels) from the SROIE fixtures' OCR, as if RapidOCR had read
their images, written by the real results log; the OCR cache holds their lines under the rapid
engine's key, where `chatocr review` (like `chatocr view`) finds them. One more document's text is
HTML/JS that must show as text."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from chatocr import ChatOCR
from chatocr.fileio import file_sha256
from chatocr.llm.base import ChatSettings
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.messages import Message
from chatocr.ocr.cache import OCRCache
from chatocr.ocr.text import TextEngine
from chatocr.ocr.types import OCRDocument, OCRLine, Page
from chatocr.runs import ResultLog

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"
RECEIPTS = ("X00016469612", "X51005433541", "X51008123580")
KEYS = ["company", "date", "address", "total"]
HOSTILE = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"


@pytest.fixture(scope="session")
def rapid_key() -> str:
    """The rapid engine's cache key part (what `chatocr review` looks the OCR cache up with)."""
    pytest.importorskip("rapidocr", reason="the rapid extra (bash scripts/setup.sh)")
    from chatocr.ocr.registry import get_ocr_engine

    return get_ocr_engine("rapid").config_key()


def receipt_document(name: str, image: Path) -> OCRDocument:
    picture = Image.open(image)
    document = TextEngine().read(FIXTURES / "ocr" / f"{name}.json")
    page = replace(document.pages[0], width=picture.width, height=picture.height)
    return replace(document, pages=(page,), source=str(image), engine="rapid", model="fixture")


def hostile_document(image: Path) -> OCRDocument:
    rows = [HOSTILE, SCRIPT, "TOTAL 5.00", "单价 合计 ¥5.00"]
    lines = tuple(
        OCRLine(
            f"p0-l{n}",
            text,
            ((40.0, 40.0 + 60 * n), (560.0, 40.0 + 60 * n), (560.0, 80.0 + 60 * n), (40.0, 80.0 + 60 * n)),
            0.95,
        )
        for n, text in enumerate(rows)
    )
    return OCRDocument((Page(0, 600, 320, lines),), "rapid", "fixture", str(image), 0.0)


@dataclass
class ResultsSet:
    folder: Path
    results: Path
    images: list[Path]
    documents: list[OCRDocument]

    @property
    def review_file(self) -> Path:
        return self.results.with_name("results.review.jsonl")

    def lines(self) -> list[dict[str, object]]:
        if not self.review_file.exists():
            return []
        return [json.loads(line) for line in self.review_file.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_results(
    folder: Path, rapid_key: str, receipts: Sequence[str] = RECEIPTS, hostile: bool = True, copies: int = 1
) -> ResultsSet:
    """`copies` x the receipts (each a file of its own, so each its own document) and the hostile one."""
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    documents: list[OCRDocument] = []
    answers: dict[str, str] = {}
    for copy in range(copies):
        for name in receipts:
            image = images_dir / (f"{name}.jpg" if copies == 1 else f"{name}-{copy:03d}.jpg")
            data = (FIXTURES / "images" / f"{name}.jpg").read_bytes()
            image.write_bytes(data + (b"" if copies == 1 else copy.to_bytes(4, "big")))  # other bytes, other hash
            document = receipt_document(name, image)
            documents.append(document)
            answers[document.lines[0].text] = (FIXTURES / "labels" / f"{name}.json").read_text(encoding="utf-8")
    if hostile:
        image = images_dir / "hostile.png"
        picture = Image.new("RGB", (600, 320), "white")
        ImageDraw.Draw(picture).rectangle((40, 40, 560, 80), outline="black", width=3)  # not a blank page
        picture.save(image)
        documents.append(hostile_document(image))
        answers[HOSTILE] = json.dumps({"company": HOSTILE, "date": "31/12/2019", "address": SCRIPT, "total": "5.00"})

    def answer(messages: Sequence[Message], settings: ChatSettings) -> str:
        for message in reversed(messages):
            for first_line, reply in answers.items():
                if first_line in message.content:
                    return reply
        raise AssertionError("no known document in the prompt")

    ocr = ChatOCR(llm=ScriptedChatModel(answer), ocr="text", config={"ocr_cache": False, "classify": False})
    cache = OCRCache()
    results = folder / "results.jsonl"
    with ResultLog(results) as log:
        for document in documents:
            sha256 = file_sha256(Path(document.source))
            cache.put(OCRCache.key(sha256, "rapid", rapid_key), replace(document, sha256=sha256))
            log.append((document.source, sha256), ocr.extract(document, KEYS, "retail_receipt"))
    return ResultsSet(folder, results, [Path(d.source) for d in documents], documents)


@pytest.fixture
def results_set(tmp_path: Path, rapid_key: str) -> ResultsSet:
    return make_results(tmp_path / "run", rapid_key)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]


def start_review(results: Path, *args: str, timeout: float = 60.0) -> Server:
    """`chatocr review RESULTS --port 0 ...` as a real process; waits for the URL it prints."""
    command = [sys.executable, "-m", "chatocr", "review", str(results), "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("review of"):
            return Server(line.split(" at ", 1)[1].strip(), process)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"chatocr review did not start: {process.stderr.read() if process.stderr else ''}")


@pytest.fixture
def review_server(results_set: ResultsSet) -> Iterator[tuple[Server, ResultsSet]]:
    server = start_review(results_set.results, "--reviewer", "tester")
    try:
        yield server, results_set
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
