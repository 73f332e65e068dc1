"""Corpus cases (issue 34): every file chatocr writes, and every file of records it reads back.

Writes: a whole-file output (workbook, JSON, values, the HTML report, exports, drawings, evaluation
reports) at a FIFO, a device, a directory or a symlink is refused with a typed error, the thing
there untouched; a workbook chatocr did not write is never replaced; what Excel cannot hold is
said; no key takes a fixed column's place. Secrets are masked in every exported format. Reading:
a results line, label or file nested 100,000 deep, holding a 5,000-digit number or members of the
wrong type is left out with its line (the good records of the same file go on) or is a typed error
naming the file; a record cannot make the report grow without bound, nor show a changed file.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatocr.errors import DataFileError, OutputPathError
from chatocr.fileio import atomic_write
from chatocr.runs.records import read_results
from chatocr.secrets import Secret
from tests.reliability.harness import CLI_ARGS, RECEIPT_ANSWER, RECEIPT_TEXT, Ctx, case, raises

KEY = "sk-outputs-SECRET-9876543210"


def _fifo(ctx: Ctx, name: str) -> Path:
    path = ctx.tmp / name
    os.mkfifo(path)
    return path


def _victim(ctx: Ctx) -> Path:
    return ctx.file("victim.txt", "precious\n")


def _link(ctx: Ctx, name: str) -> Path:
    path = ctx.tmp / name
    path.symlink_to(_victim(ctx))
    return path


def _results(ctx: Ctx, count: int = 2) -> Path:
    """A results file of `count` good documents, written by chatocr."""
    ctx.script([RECEIPT_ANSWER])
    ctx.receipts("in", count)
    out = ctx.tmp / "r.jsonl"
    assert ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", out)[0] == 0
    return out


def _special(kind: str, ctx: Ctx, name: str) -> tuple[Path, Callable[[], bool]]:
    """A FIFO, a directory or a symlink at `name`, and a check that it is still there, unchanged."""
    if kind == "fifo":
        path = _fifo(ctx, name)
        return path, lambda: stat.S_ISFIFO(os.lstat(path).st_mode)
    if kind == "directory":
        path = ctx.tmp / name
        path.mkdir()
        return path, path.is_dir
    path = _link(ctx, name)
    return path, lambda: path.is_symlink() and (ctx.tmp / "victim.txt").read_text() == "precious\n"


# ---- whole-file writes refuse anything that is not a regular file or absent ------------------------

for _fmt, _name in (("xlsx", "o.xlsx"), ("json", "o.json"), ("values", "v.json")):
    for _kind in ("fifo", "directory", "symlink"):

        def _refused(ctx: Ctx, fmt: str = _fmt, name: str = _name, kind: str = _kind) -> None:
            ctx.receipts("in", 1)
            target, intact = _special(kind, ctx, name)
            code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--format", fmt, "--out", target)
            assert code == 2 and str(target) in err and intact(), err
            assert "done" not in err  # refused before any document was read

        _refused.__name__ = f"{_fmt}_out_{_kind}"
        case("output", f"--format {_fmt} --out a {_kind}: a usage error before any work (exit 2), left as it was")(
            _refused
        )


for _fmt in ("xlsx", "json"):

    def _device(ctx: Ctx, fmt: str = _fmt) -> None:
        ctx.receipts("in", 1)
        before = os.lstat("/dev/null")
        code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--format", fmt, "--out", "/dev/null")
        after = os.lstat("/dev/null")
        assert code == 2 and "device" in err and stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino

    _device.__name__ = f"{_fmt}_out_device"
    case("output", f"--format {_fmt} --out /dev/null (a device): exit 2, the device never replaced")(_device)


@case("output", "--format xlsx --out /dev/stdout (a link to the terminal or a pipe): exit 2, never replaced")
def xlsx_out_dev_stdout(ctx: Ctx) -> None:
    ctx.receipts("in", 1)
    before = os.lstat("/dev/stdout")
    code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--format", "xlsx", "--out", "/dev/stdout")
    after = os.lstat("/dev/stdout")
    assert code == 2 and (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode), err


@case("output", "--out a path under a file (afile/o.xlsx): exit 2, 'not a directory'")
def xlsx_under_a_file(ctx: Ctx) -> None:
    ctx.receipts("in", 1)
    ctx.file("afile", "x")
    code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", ctx.tmp / "afile" / "o.xlsx")
    assert code == 2 and "not a directory" in err


@case("output", "--out budget.xlsx, the user's own workbook: refused before any work, byte-for-byte unchanged")
def xlsx_foreign_workbook(ctx: Ctx) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Budget"
    book.active.append(["rent", 900])
    budget = ctx.tmp / "budget.xlsx"
    book.save(budget)
    before = budget.read_bytes()
    ctx.receipts("in", 1)
    code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", budget)
    assert code == 2 and "did not write" in err and budget.read_bytes() == before


@case("output", "--out notes.xlsx that is not a workbook at all (a text file): refused, unchanged")
def xlsx_foreign_text(ctx: Ctx) -> None:
    notes = ctx.file("notes.xlsx", "my notes\n")
    ctx.receipts("in", 1)
    code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", notes)
    assert code == 2 and notes.read_text() == "my notes\n", err


@case("output", "--out r.xlsx written by an earlier run: replaced by this run's workbook (exit 0)")
def xlsx_own_workbook(ctx: Ctx) -> None:
    ctx.script([RECEIPT_ANSWER])
    ctx.receipts("in", 1)
    out = ctx.tmp / "r.xlsx"
    assert ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", out)[0] == 0
    assert ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", out)[0] == 0


@case("output", "--out r.xlsx of an older chatocr (no creator mark, our sheets and columns): still replaced")
def xlsx_old_own_workbook(ctx: Ctx) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "results"
    book.active.append(["path", "sha256", "ok", "scenario", "values", "error"])
    out = ctx.tmp / "old.xlsx"
    book.save(out)
    ctx.script([RECEIPT_ANSWER])
    ctx.receipts("in", 1)
    assert ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", out)[0] == 0


def _sheet_text(path: Path) -> str:
    with zipfile.ZipFile(path) as book:
        return "".join(book.read(name).decode("utf-8", "replace") for name in book.namelist())


@case("output", "values with \\x00 and \\x0b (openpyxl refuses them): the workbook is written, escaped, said")
def xlsx_control_characters(ctx: Ctx) -> None:
    ctx.script([{"company": "NOT\x00ON\x0bTHE PAGE", "total": "9.00"}])  # ungrounded: kept as answered
    ctx.receipts("in", 2)
    out = ctx.tmp / "o.xlsx"
    code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", out)
    assert code == 0 and "control characters" in err, err
    text = _sheet_text(out)
    assert "NOT\\x00ON" in text and text.count("receipt00") == 2  # \\x0b is whitespace: a space by then


@case("output", "a 40,000-character value: cut to Excel's 32,767-character cell with a marker, and said")
def xlsx_long_value(ctx: Ctx) -> None:
    ctx.script([{"company": "SHOP ABC SDN BHD " + "X" * 40_000, "total": "9.00"}])
    ctx.receipts("in", 1)
    out = ctx.tmp / "o.xlsx"
    code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", out)
    from openpyxl import load_workbook

    cells = [c for row in load_workbook(out)["results"].iter_rows(values_only=True) for c in row if isinstance(c, str)]
    long_cell = max(cells, key=len)
    assert code == 0 and "cut" in err and len(long_cell) == 32_767 and "cell limit" in long_cell, err


for _column in ("path", "ok", "sha256", "error", "scenario"):

    def _shadow_csv(ctx: Ctx, column: str = _column) -> None:
        ctx.script([{column: "SHOP ABC SDN BHD", "total": "9.00"}])
        ctx.receipts("in", 2)
        out = ctx.tmp / "r.csv"
        args = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt", "--keys", f"{column},total"]
        assert ctx.cli("extract", ctx.tmp / "in", *args, "--out", out)[0] == 0
        header, *rows = out.read_text().splitlines()
        assert header.split(",")[:2] == ["path", "sha256"] and f"{column} (field)" in header
        assert all(row.split(",")[header.split(",").index("ok")] == "true" for row in rows)
        code, _, err = ctx.cli("extract", ctx.tmp / "in", *args, "--out", out)
        assert code == 0 and "2 skipped (already done)" in err, err  # resume does not redo them

    _shadow_csv.__name__ = f"csv_key_named_{_column}"
    case("output", f"a key named {_column!r} in CSV: its own column, the fixed one intact, resume skips done docs")(
        _shadow_csv
    )


@case("output", "a key named 'path' in the workbook: the fixed path column keeps the document's path")
def xlsx_key_named_path(ctx: Ctx) -> None:
    ctx.script([{"path": "SHOP ABC SDN BHD", "total": "9.00"}])
    ctx.receipts("in", 1)
    out = ctx.tmp / "o.xlsx"
    args = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt", "--keys", "path,total"]
    assert ctx.cli("extract", ctx.tmp / "in", *args, "--out", out)[0] == 0
    from openpyxl import load_workbook

    header, row = list(load_workbook(out)["results"].iter_rows(values_only=True))
    assert header[0] == "path" and str(row[0]).endswith("receipt000.txt") and "path (field)" in header


@case("output", "--html at a FIFO: refused with a typed error before any document is read, the FIFO as it was")
def html_fifo(ctx: Ctx) -> None:
    ctx.script([RECEIPT_ANSWER])
    ctx.receipts("in", 1)
    fifo = _fifo(ctx, "report.html")
    code, _, err = ctx.cli("extract", ctx.tmp / "in", *CLI_ARGS, "--out", ctx.tmp / "r.jsonl", "--html", fifo)
    assert code == 2 and "FIFO" in err and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not (ctx.tmp / "r.jsonl").exists()  # checked before any work, as --out is


@case("output", "--draw with a FIFO at the picture's name: 'could not draw' said, the FIFO intact, the doc done")
def draw_fifo(ctx: Ctx) -> None:
    from chatocr.viewer.drawing import drawing_path

    ctx.script([RECEIPT_ANSWER])
    (doc,) = ctx.receipts("in", 1)
    target = drawing_path(ctx.tmp / "draw", doc)
    target.parent.mkdir()
    os.mkfifo(target)
    code, _, err = ctx.cli("extract", doc, *CLI_ARGS, "--draw", ctx.tmp / "draw")
    assert code == 0 and "could not draw" in err and stat.S_ISFIFO(os.lstat(target).st_mode)


for _kind in ("fifo", "directory", "symlink"):

    def _view_out(ctx: Ctx, kind: str = _kind) -> None:
        results = _results(ctx, 1)
        target, intact = _special(kind, ctx, "report.html")
        code, _, err = ctx.cli("view", results, "-o", target, "--no-ocr")
        assert code == 2 and intact(), err

    _view_out.__name__ = f"view_out_{_kind}"
    case("output", f"`chatocr view -o` a {_kind}: exit 2, left as it was")(_view_out)


@case("output", "`chatocr eval --out` a FIFO: refused with a typed error, the FIFO left as it was")
def eval_out_fifo(ctx: Ctx) -> None:
    ctx.script([RECEIPT_ANSWER])
    ctx.file("set/labels/r1.json", json.dumps(RECEIPT_ANSWER))
    ctx.file("set/ocr/r1.json", json.dumps(RECEIPT_TEXT.splitlines()))
    fifo = _fifo(ctx, "report.json")
    code, _, err = ctx.cli("eval", ctx.tmp / "set", *CLI_ARGS[:4], "--scenario", "retail_receipt", "--out", fifo)
    assert code == 2 and stat.S_ISFIFO(os.lstat(fifo).st_mode), err


@case("output", "atomic_write (the one writer) at a socket: OutputPathError before anything is written")
def writer_socket(ctx: Ctx) -> None:
    import socket

    path = ctx.tmp / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        raises(OutputPathError, lambda: atomic_write(path, "x"), contains="socket")
        assert stat.S_ISSOCK(os.lstat(path).st_mode) and sorted(p.name for p in ctx.tmp.iterdir()) == ["s.sock"]
    finally:
        server.close()


# ---- exports: the same writer, typed errors for nothing to export -----------------------------------


def _labelled(ctx: Ctx, answer: dict[str, Any] | None = None, text: str = RECEIPT_TEXT) -> Path:
    ctx.file("set/labels/r1.json", json.dumps(answer or RECEIPT_ANSWER))
    ctx.file("set/ocr/r1.json", json.dumps(text.splitlines()))
    return ctx.tmp / "set"


EXPORT = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt"]


for _kind in ("fifo", "symlink"):

    def _export_target(ctx: Ctx, kind: str = _kind) -> None:
        out = ctx.tmp / "sft"
        out.mkdir()
        _, intact = _special(kind, ctx, "sft/xtuner_train.json")
        code, _, err = ctx.cli("export", "sft", _labelled(ctx), *EXPORT, "--out", out, "--overwrite")
        assert code == 2 and intact() and not (out / "manifest.jsonl").exists(), err

    _export_target.__name__ = f"export_target_{_kind}"
    case("export", f"export sft with a {_kind} at an output name, even --overwrite: refused, nothing written")(
        _export_target
    )


for _fmt in ("xtuner", "openai", "alpaca", "llamafactory"):

    def _no_key(ctx: Ctx, fmt: str = _fmt) -> None:
        Secret(KEY)
        answer = {"company": f"SHOP ABC SDN BHD {KEY}", "total": "9.00"}
        source = _labelled(ctx, answer, RECEIPT_TEXT.replace("RECEIPT NO 1", f"RECEIPT NO 1 {KEY}"))
        code, _, err = ctx.cli(
            "export", "sft", source, *EXPORT, "--format", fmt, "--out", ctx.tmp / "sft", "--val-ratio", "0"
        )
        written = {p.name: p.read_text(encoding="utf-8") for p in (ctx.tmp / "sft").iterdir()}
        assert code == 0 and any("SHOP ABC SDN BHD" in text for text in written.values()), err
        assert all(KEY not in text for text in written.values()) and KEY not in err

    _no_key.__name__ = f"no_secret_in_export_{_fmt}"
    case("security", f"a key in a reviewed document's text and values: masked in the {_fmt} export and its files")(
        _no_key
    )


@case("security", "a key on an OCR line that grounds a label: masked in export ocr-lines' rec_gt files")
def no_secret_in_ocr_lines(ctx: Ctx) -> None:
    from PIL import Image, ImageDraw

    Secret(KEY)
    (ctx.tmp / "set" / "images").mkdir(parents=True)
    picture = Image.new("RGB", (400, 60), "white")
    ImageDraw.Draw(picture).text((10, 20), "TOTAL 9.00", fill="black")
    picture.save(ctx.tmp / "set" / "images" / "r1.png")
    ctx.file("set/labels/r1.json", json.dumps({"total": "9.00"}))
    ctx.file("set/ocr/r1.json", json.dumps([{"text": f"TOTAL 9.00 {KEY}", "box": [0, 0, 400, 0, 400, 60, 0, 60]}]))
    code, _, err = ctx.cli(
        "export", "ocr-lines", ctx.tmp / "set", *EXPORT[2:], "--out", ctx.tmp / "rec", "--val-ratio", "0"
    )
    written = "".join(p.read_text(encoding="utf-8") for p in (ctx.tmp / "rec").glob("*.*") if p.is_file())
    assert code == 0 and "TOTAL 9.00 ***" in written, err
    assert KEY not in written and KEY not in err


for _name, _args, _said in (
    ("max_tokens_0", ["--max-tokens", "0"], "--max-tokens must be at least 1"),
    ("max_tokens_negative", ["--max-tokens", "-5"], "--max-tokens must be at least 1"),
    ("val_ratio_1", ["--val-ratio", "1"], "--val-ratio"),
    ("examples_negative", ["--examples", "-1"], "--examples"),
    ("min_confidence_2", ["--min-confidence", "2"], "--min-confidence"),
):

    def _usage(ctx: Ctx, args: list[str] = _args, said: str = _said) -> None:
        code, _, err = ctx.cli("export", "sft", _labelled(ctx), *EXPORT, "--out", ctx.tmp / "sft", *args)
        assert code == 2 and said in err and not (ctx.tmp / "sft").exists(), err

    _usage.__name__ = f"export_{_name}"
    case("export", f"export sft {' '.join(_args)}: a usage error (exit 2) before anything is read or written")(_usage)


@case("export", "export sft of an empty results file: exit 1 with 'no reviewed document', nothing written")
def export_empty_source(ctx: Ctx) -> None:
    empty = ctx.file("empty.jsonl", "")
    code, _, err = ctx.cli("export", "sft", empty, *EXPORT, "--out", ctx.tmp / "sft")
    assert code == 1 and "no reviewed document" in err and not (ctx.tmp / "sft").exists()


@case("export", "export sft whose every record is over --max-tokens 5: exit 1 saying so, nothing written")
def export_all_too_long(ctx: Ctx) -> None:
    code, _, err = ctx.cli("export", "sft", _labelled(ctx), *EXPORT, "--out", ctx.tmp / "sft", "--max-tokens", "5")
    assert code == 1 and "longer than --max-tokens 5" in err and not (ctx.tmp / "sft").exists()


@case("export", "export ocr-lines of an empty results file: exit 1 with a typed error, nothing written")
def export_lines_empty(ctx: Ctx) -> None:
    empty = ctx.file("empty.jsonl", "")
    code, _, err = ctx.cli("export", "ocr-lines", empty, "--ocr", "text", "--out", ctx.tmp / "rec")
    assert code == 1 and "No OCR line to export" in err and not (ctx.tmp / "rec").exists()


# ---- records read back: one bad record never loses the others -------------------------------------

BAD_LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "fields_a_list": lambda r: json.dumps({**r, "fields": [1, 2]}),
    "ocr_a_string": lambda r: json.dumps({**r, "ocr": "text"}),
    "nested_100000": lambda r: "[" * 100_000 + "]" * 100_000,
    "number_5000_digits": lambda r: json.dumps(r).replace('"steps": ', '"steps": ' + "1" * 5000 + ', "x": '),
    "evidence_page_999999": lambda r: json.dumps(_evidence(r, page=999_999)),
    "box_infinite": lambda r: json.dumps(_evidence(r, box=[[0, 0], [1e308, 0], [1e308, 1e308], [0, 1e308]])).replace(
        "1e+308", "Infinity"
    ),
    "a_json_string": lambda r: json.dumps("just text"),
    "values_a_number": lambda r: json.dumps({**r, "values": 7}),
}


def _evidence(record: dict[str, Any], **change: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(record))
    evidence = copy["fields"]["total"]["evidence"][0]
    evidence.update(change)
    return copy


def _with_bad_line(ctx: Ctx, bad: str) -> tuple[Path, int]:
    """A results file of two good documents with one bad record between them (its line number)."""
    out = _results(ctx, 2)
    first, second = out.read_text().splitlines()
    record = json.loads(first)
    out.write_text("\n".join([first, BAD_LINES[bad](record), second]) + "\n")
    return out, 2


for _bad in BAD_LINES:

    def _view_bad(ctx: Ctx, bad: str = _bad) -> None:
        results, line = _with_bad_line(ctx, bad)
        report = ctx.tmp / "report.html"
        code, _, err = ctx.cli("view", results, "-o", report, "--no-ocr")
        assert code == 0 and f"line {line}:" in err and "2 document(s)" in err, err
        assert report.stat().st_size < 2_000_000

    _view_bad.__name__ = f"view_{_bad}"
    case("view", f"`chatocr view` of a results file with a record of {_bad.replace('_', ' ')}: left out by line")(
        _view_bad
    )

for _bad in ("fields_a_list", "ocr_a_string", "nested_100000", "evidence_page_999999"):

    def _export_bad(ctx: Ctx, bad: str = _bad) -> None:
        results, line = _with_bad_line(ctx, bad)
        code, _, err = ctx.cli("export", "sft", results, *EXPORT, "--out", ctx.tmp / "sft", "--val-ratio", "0")
        manifest = (ctx.tmp / "sft" / "manifest.jsonl").read_text().splitlines()
        assert code == 0 and len(manifest) == 2 and f"r.jsonl:{line}" in err, err

    _export_bad.__name__ = f"export_{_bad}"
    case("export", f"export sft of a results file with a record of {_bad.replace('_', ' ')}: the others exported")(
        _export_bad
    )


@case("view", "read_results (the Python API) of a file with a bad record: the good records, no exception")
def read_results_bad_line(ctx: Ctx) -> None:
    results, _ = _with_bad_line(ctx, "fields_a_list")
    assert len(read_results(results)) == 2


@case("view", "a results line whose OCR summary claims 999,999 pages (no evidence there): a report of bounded size")
def view_claimed_pages(ctx: Ctx) -> None:
    out = _results(ctx, 1)
    record = json.loads(out.read_text())
    record["ocr"]["pages"] = 999_999
    for item in record["fields"].values():
        item["evidence"] = []
    out.write_text(json.dumps(record) + "\n")
    code, _, err = ctx.cli("view", out, "-o", ctx.tmp / "report.html", "--no-ocr")
    assert code == 0 and (ctx.tmp / "report.html").stat().st_size < 1_000_000, err


@case("view", "a .json results file nested 100,000 deep: exit 1 naming the file, no traceback")
def view_deep_json_file(ctx: Ctx) -> None:
    bad = ctx.file("r.json", "[" * 100_000 + "]" * 100_000)
    code, _, err = ctx.cli("view", bad, "-o", ctx.tmp / "report.html")
    assert code == 1 and "nested too deeply" in err and str(bad) in err


@case("view", "a results file that is not UTF-8: exit 1 naming it, no traceback")
def view_not_utf8(ctx: Ctx) -> None:
    bad = ctx.file("r.jsonl", b'{"source": "\xff\xfe"}\n')
    code, _, err = ctx.cli("view", bad, "-o", ctx.tmp / "report.html")
    assert code == 1 and "UTF-8" in err


@case("view", "a result whose file changed since (OCR cache gone): the new file is not shown under it, and said")
def view_changed_file(ctx: Ctx) -> None:
    ctx.monkeypatch.setenv("CHATOCR_CACHE_DIR", str(ctx.tmp / "cache"))
    out = _results(ctx, 1)
    (doc,) = (ctx.tmp / "in").iterdir()
    doc.write_text("SOMEONE ELSE ENTIRELY\nTOTAL 777.77\n", encoding="utf-8")
    for entry in (ctx.tmp / "cache").rglob("*.json"):
        entry.unlink()
    code, _, err = ctx.cli("view", out, "-o", ctx.tmp / "report.html")
    html = (ctx.tmp / "report.html").read_text(encoding="utf-8")
    assert code == 0 and "changed since this result was made" in html and "SOMEONE ELSE" not in html, err


for _name, _content in (
    ("nested_100000", "[" * 100_000 + "]" * 100_000),
    ("number_5000_digits", '{"total": ' + "9" * 5000 + "}"),
    ("not_utf8", b'{"total": "\xff"}'),
):

    def _label(ctx: Ctx, content: str | bytes = _content) -> None:
        ctx.file("set/labels/r1.json", content)
        ctx.file("set/ocr/r1.json", json.dumps(RECEIPT_TEXT.splitlines()))
        from chatocr.evaluation.datasets import load_dataset
        from chatocr.scenarios.loader import load_scenarios

        error = raises(DataFileError, lambda: load_dataset(ctx.tmp / "set", load_scenarios()), hint_has="label file")
        assert "r1.json" in str(error)
        code, _, err = ctx.cli("eval", ctx.tmp / "set", *CLI_ARGS[:4], "--scenario", "retail_receipt")
        assert code == 1 and "r1.json" in err

    _label.__name__ = f"label_{_name}"
    case("batch", f"a label file {_name.replace('_', ' ')}: a typed error naming it (eval exits 1), no traceback")(
        _label
    )


# ---- command-line contract ------------------------------------------------------------------------


@case("cli", "`chatocr ocr IMAGE > text.txt`: stdout is the document's text alone, the summary on stderr")
def ocr_summary_on_stderr(ctx: Ctx) -> None:
    doc = ctx.file("r.txt", RECEIPT_TEXT)
    code, out, err = ctx.cli("ocr", doc, "--ocr", "text")
    assert code == 0 and out.strip().splitlines() == RECEIPT_TEXT.strip().splitlines() and "lines, 1 page(s)" in err


@case("cli", "`chatocr ocr --format lines`: the table on stdout, the summary on stderr")
def ocr_lines_summary_on_stderr(ctx: Ctx) -> None:
    code, out, err = ctx.cli("ocr", ctx.file("r.txt", RECEIPT_TEXT), "--ocr", "text", "--format", "lines")
    assert code == 0 and "TOTAL 9.00" in out and "page(s)" not in out and "page(s)" in err


@case(
    "cli",
    "500 keys that do not fit the model: the hint says to ask for fewer keys, not to split the document",
)
def five_hundred_keys(ctx: Ctx) -> None:
    keys = ",".join(f"key_number_{n}" for n in range(500))
    code, _, err = ctx.cli(
        "extract", ctx.file("r.txt", RECEIPT_TEXT), "--llm", "scripted", "--ocr", "text", "--keys", keys
    )
    assert code == 1 and "fewer keys" in err and "split the document" not in err, err
