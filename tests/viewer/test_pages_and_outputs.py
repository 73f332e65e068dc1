"""One result per page (API and CLI, every output format, resume per page), Excel output read back
with openpyxl, and `chatocr view` / `--html` through the real entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chatocr import ChatOCR
from chatocr.cli.main import main
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.ocr.types import OCRDocument, OCRLine, Page
from tests.cli.conftest import jsonl, script

ARGS = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt", "--keys", "company,total"]


def _page(index: int, rows: list[str]) -> Page:
    lines = tuple(
        OCRLine(
            f"p{index}-l{n}",
            text,
            ((20.0, 20.0 + 40 * n), (420.0, 20.0 + 40 * n), (420.0, 50.0 + 40 * n), (20.0, 50.0 + 40 * n)),
            0.97,
        )
        for n, text in enumerate(rows)
    )
    return Page(index, 480, 60 + 40 * len(rows), lines)


def two_pages(source: str = "two-pages.json") -> OCRDocument:
    """A 2-page input (as a PDF's OCR is): each page a receipt that RECEIPT_ANSWER grounds in."""
    pages = (
        _page(0, ["SHOP ABC SDN BHD", "INVOICE 1", "TOTAL 9.00"]),
        _page(1, ["SHOP ABC SDN BHD", "INVOICE 2", "CASH 10.00", "TOTAL 9.00"]),
    )
    return OCRDocument(pages, "text", "pre-ocr", source, 0.1, sha256="ab" * 32)


def write_two_pages(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "two-pages.json"
    path.write_text(json.dumps(two_pages(str(path)).to_dict()), encoding="utf-8")
    return path


def report_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="chatocr-data">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))  # type: ignore[no-any-return]


# -- the API --------------------------------------------------------------------------------------


def test_pages_as_documents_keeps_each_page_as_it_is() -> None:
    document = two_pages()
    parts = document.pages_as_documents()
    assert [p.pages for p in parts] == [(document.pages[0],), (document.pages[1],)]
    assert parts[1].lines[0].id == "p1-l0" and parts[1].source == document.source
    assert all(p.sha256 == document.sha256 and p.engine == "text" for p in parts)


def test_extract_pages_gives_one_result_per_page_with_its_page_number() -> None:
    answers = {
        "INVOICE 1": {"company": "SHOP ABC SDN BHD", "total": "9.00"},
        "INVOICE 2": {"company": "SHOP ABC SDN BHD", "total": "10.00"},
    }

    def answer(messages: Any, settings: Any) -> str:
        last = next(m.content for m in reversed(messages) if "INVOICE" in m.content)
        return json.dumps(next(a for marker, a in answers.items() if marker in last))

    ocr = ChatOCR(llm=ScriptedChatModel(answer), ocr="text", config={"ocr_cache": False, "classify": False})
    first, second = ocr.extract_pages(two_pages(), ["company", "total"], "retail_receipt")
    assert (first.page, second.page) == (1, 2)
    assert first.values["total"] == "9.00" and second.values["total"] == "10.00"
    # Evidence keeps naming the page of the whole input: page 2's total is on line p1-l2.
    assert second.fields["total"].evidence[0].line_id == "p1-l2" and second.fields["total"].evidence[0].page == 1
    assert first.fields["total"].evidence[0].page == 0
    assert json.loads(second.to_json())["page"] == 2 and second.ocr["document_pages"] == 2
    assert ocr.extract_pages(two_pages(), ["total"], "retail_receipt", pages=[2])[0].page == 2


def test_extract_pages_of_a_broken_input_is_one_failed_result(tmp_path: Path) -> None:
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"\xff\xd8\xff not text")  # the text engine refuses it: not UTF-8
    ocr = ChatOCR(llm=ScriptedChatModel(["{}"]), ocr="text", config={"ocr_cache": False})
    (failed,) = ocr.extract_pages(str(broken), ["total"], raise_errors=False)
    assert failed.error is not None and failed.page is None and failed.source == str(broken)


# -- the CLI: per page, in every format -----------------------------------------------------------


def test_per_page_jsonl_is_resumed_page_by_page(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = write_two_pages(home / "in")
    out = home / "results.jsonl"
    assert main(["extract", str(doc), *ARGS, "--per-page", "--out", str(out), "--draw", str(home / "pics")]) == 0
    assert sorted(p.name[-7:] for p in (home / "pics").iterdir()) == ["-p1.png", "-p2.png"]  # one per page
    records = jsonl(out)
    assert sorted(r["input"]["page"] for r in records) == [1, 2]
    assert all(r["input"]["pages"] == 2 and r["page"] == r["input"]["page"] for r in records)
    by_page = {r["page"]: r for r in records}
    assert by_page[2]["fields"]["total"]["evidence"][0]["line_id"] == "p1-l3"
    capsys.readouterr()
    # A re-run skips the file: both pages are done.
    assert main(["extract", str(doc), *ARGS, "--per-page", "--out", str(out)]) == 0
    assert "resuming: 1 of 1" in capsys.readouterr().err and len(jsonl(out)) == 2
    # Page 2's line lost (e.g. it failed): only page 2 is done again.
    out.write_text(json.dumps(by_page[1], ensure_ascii=False) + "\n", encoding="utf-8")
    assert main(["extract", str(doc), *ARGS, "--per-page", "--out", str(out)]) == 0
    assert sorted(r["page"] for r in jsonl(out)) == [1, 2]
    # Without --per-page the same file is one document (the default).
    single = home / "single.jsonl"
    assert main(["extract", str(doc), *ARGS, "--out", str(single)]) == 0
    (record,) = jsonl(single)
    assert record["page"] is None and "page" not in record["input"]


def test_per_page_from_the_config_and_in_json_csv_and_table(
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = write_two_pages(home / "in")
    monkeypatch.setenv("CHATOCR_PER_PAGE", "true")
    assert main(["extract", str(doc), *ARGS, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["page"] for d in data] == [1, 2] and [d["input"]["page"] for d in data] == [1, 2]
    assert main(["extract", str(doc), *ARGS, "--format", "values"]) == 0
    assert [d["page"] for d in json.loads(capsys.readouterr().out)] == [1, 2]
    assert main(["extract", str(doc), *ARGS, "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("path,sha256,page,pages,ok,scenario,company,company.status")
    assert sorted(r.split(",")[2] for r in rows[1:]) == ["1", "2"]
    assert main(["extract", str(doc), *ARGS]) == 0
    out = capsys.readouterr().out
    assert "page 1" in out and "page 2" in out and out.count("SHOP ABC SDN BHD") == 2
    openpyxl = pytest.importorskip("openpyxl")
    assert main(["extract", str(doc), *ARGS, "--out", str(home / "pages.xlsx")]) == 0
    rows = list(openpyxl.load_workbook(home / "pages.xlsx")["results"].iter_rows(values_only=True))
    assert rows[0][:4] == ("path", "sha256", "page", "pages") and [r[2:4] for r in rows[1:]] == [("1", "2"), ("2", "2")]


# -- Excel ----------------------------------------------------------------------------------------


def test_xlsx_has_the_csv_columns_line_items_and_no_formulas(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    docs = []
    for n in range(2):
        path = home / "in" / f"invoice{n}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f'=HYPERLINK("x") TRADING\nINVOICE {n}\nPEN 2 3.00\nINK 1 4.50\nTOTAL 7.50\n'
        path.write_text(text, encoding="utf-8")
        docs.append(path)
    answer = {
        "company": '=HYPERLINK("x") TRADING',
        "total": "7.50",
        "items": [{"name": "PEN", "qty": "2", "amount": "3.00"}, {"name": "INK", "qty": "1", "amount": "4.50"}],
    }
    script(monkeypatch, [answer])
    out = home / "results.xlsx"
    args = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt", "--keys", "company,total,items"]
    assert main(["extract", str(home / "in"), *args, "--out", str(out)]) == 0
    book = openpyxl.load_workbook(out)
    rows = list(book["results"].iter_rows(values_only=True))
    assert rows[0] == (
        "path",
        "sha256",
        "ok",
        "scenario",
        "company",
        "company.status",
        "total",
        "total.status",
        "items",
        "items.status",
        "error",
    )
    assert sorted(r[0] for r in rows[1:]) == sorted(str(d.resolve()) for d in docs)
    assert all(r[2] == "true" and r[4] == '=HYPERLINK("x") TRADING' and r[6] == "7.50" for r in rows[1:])
    assert book["results"]["E2"].data_type == "s"  # text, not a formula
    items = list(book["line items"].iter_rows(values_only=True))
    assert items[0] == ("path", "page", "field", "item", "name", "qty", "amount")
    assert len(items) == 5 and {r[4] for r in items[1:]} == {"PEN", "INK"} and items[1][3] in (1, 2)


def test_xlsx_needs_out(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = write_two_pages(home / "in")
    assert main(["extract", str(doc), *ARGS, "--format", "xlsx"]) == 2  # a usage error (issue 18 item 18)
    assert "--out results.xlsx" in capsys.readouterr().err


# -- the HTML report through the CLI --------------------------------------------------------------


def test_view_and_html_write_a_self_contained_report(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = write_two_pages(home / "in")
    out, html = home / "results.jsonl", home / "report.html"
    assert main(["extract", str(doc), *ARGS, "--per-page", "--out", str(out), "--html", str(html)]) == 0
    assert f"wrote {html}: 2 document(s)" in capsys.readouterr().err
    text = html.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text) and "<link" not in text
    data = report_data(text)
    assert [d["page"] for d in data["documents"]] == [1, 2]
    page2 = data["documents"][1]["pages"]
    assert [p["index"] for p in page2] == [1] and page2[0]["lines"][0]["id"] == "p1-l0"
    viewed = home / "viewed.html"
    assert main(["view", str(out), "-o", str(viewed), "--no-ocr"]) == 0
    again = report_data(viewed.read_text(encoding="utf-8"))
    assert [d["fields"][1]["boxes"][0]["line"] for d in again["documents"]] == ["p0-l2", "p1-l3"]
    assert len(again["documents"][1]["pages"][0]["lines"]) == 4  # from the OCR cache the run filled
    # An empty OCR cache and --no-ocr: the fields' boxes only, and a note that says why.
    config = home / "empty-cache.toml"
    config.write_text(f'ocr_cache_dir = "{home / "empty-cache"}"\n', encoding="utf-8")
    assert main(["view", str(out), "-o", str(viewed), "--no-ocr", "--config", str(config)]) == 0
    bare = report_data(viewed.read_text(encoding="utf-8"))["documents"][0]
    assert bare["pages"][0]["lines"] == [] and "OCR lines not shown" in bare["notes"][0]
    assert bare["fields"][1]["boxes"]


def test_view_explains_bad_input(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", str(home / "nope.jsonl"), "-o", str(home / "r.html")]) == 1
    assert "No such results file" in capsys.readouterr().err
    junk = home / "junk.jsonl"
    junk.write_text("not json\n", encoding="utf-8")
    assert main(["view", str(junk), "-o", str(home / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "No chatocr results" in err and "skipped 1 line" in err
    assert not (home / "r.html").exists()


def test_extract_pages_names_the_path_given_even_from_a_cache_hit_of_a_copy(tmp_path: Path) -> None:
    first = write_two_pages(tmp_path / "a")
    copy = tmp_path / "b" / "copy.json"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())  # same content: the OCR cache answers with the first path's OCR
    ocr = ChatOCR(
        llm=ScriptedChatModel(lambda m, s: json.dumps({"total": "9.00"})),
        ocr="text",
        config={"classify": False, "ocr_cache_dir": str(tmp_path / "cache")},
    )
    assert {r.source for r in ocr.extract_pages(str(first), ["total"], "retail_receipt")} == {str(first)}
    assert ocr.engine.read(str(copy)).cached
    assert {r.source for r in ocr.extract_pages(str(copy), ["total"], "retail_receipt")} == {str(copy)}
