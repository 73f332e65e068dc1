"""The command line's conventions, through the installed `chatocr` script: one name per option,
short flags, --version, did-you-mean, where the pictures went, a cache hit's own time, scenario
names never cut, labels that do not hide the text around them."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

import chatocr
from chatocr.cli.main import build_parser
from chatocr.viewer.drawing import PALETTE, place_label
from tests.cli.conftest import CHATOCR, RECEIPT_ANSWER, receipts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"
# The short flags, one meaning each, on every command that has the long option (docs/cli.md).
SHORT = {
    "-s": "--scenario",
    "-k": "--keys",
    "-l": "--llm",
    "-o": "--out",
    "-f": "--format",
    "-q": "--quiet",
    "-c": "--config",
    "-j": "--concurrency",
    "-v": "--verbose",
    "-h": "--help",
}
LONG_ONLY: set[str] = set()  # every command follows the convention


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHATOCR), *args], capture_output=True, text=True, env=env or dict(os.environ), cwd=cwd, timeout=120
    )


def _commands(parser: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{path} {name}".strip())
    return found


def test_every_short_flag_means_one_option_everywhere() -> None:
    seen: dict[str, set[str]] = {}
    for command, parser in _commands(build_parser()):
        for action in parser._actions:
            shorts = [o for o in action.option_strings if not o.startswith("--")]
            longs = [o for o in action.option_strings if o.startswith("--")]
            for short in shorts:
                seen.setdefault(short, set()).update(longs[:1] or ["(none)"])
            for long in longs:
                expected = next((s for s, name in SHORT.items() if name == long), None)
                top = command.split(" ")[0]
                if expected and top not in LONG_ONLY and long != "--version" and action.help != argparse.SUPPRESS:
                    assert expected in shorts, f"`chatocr {command}` has {long} without {expected}"
    assert {short: longs for short, longs in seen.items() if len(longs) > 1} == {}
    assert seen["-V"] == {"--version"}
    assert all(seen[s] == {long} for s, long in SHORT.items() if s in seen)


def test_version() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"chatocr {chatocr.__version__}"
    assert run("-V").stdout == done.stdout


def test_mistyped_subcommands_and_options_get_a_suggestion_and_exit_2() -> None:
    done = run("extrct", "receipt.jpg")
    assert done.returncode == 2
    assert "Did you mean 'extract'?" in done.stderr
    done = run("scenarios", "lst")
    assert done.returncode == 2 and "Did you mean 'list'?" in done.stderr
    done = run("extract", "x.txt", "--scenaro", "retail_receipt")
    # Said as a misspelled option is said anywhere (a Python keyword, a config key, a service member).
    assert done.returncode == 2 and "Unknown option '--scenaro': did you mean '--scenario'?" in done.stderr
    assert "did you mean" not in run("extract", "x.txt", "--zzzzzz").stderr.lower()  # nothing close: no guess


def test_short_flags_work_through_the_entry_point(home: Path) -> None:
    (doc,) = receipts(home / "in", 1)
    done = run(
        "extract",
        str(doc),
        "-l",
        "scripted",
        "--ocr",
        "text",
        "-s",
        "retail_receipt",
        "-k",
        "company,total",
        "-f",
        "json",
        "-o",
        "out.json",
        "-q",
        cwd=home,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # -q: no summary
    assert json.loads((home / "out.json").read_text(encoding="utf-8"))["values"] == RECEIPT_ANSWER
    done = run(
        "extract", str(doc), "-l", "scripted", "--ocr", "text", "-s", "retail_receipt", "-o", "o.jsonl", cwd=home
    )
    assert "1 done, 0 failed" in done.stderr  # without -q the summary is there


def test_ocr_takes_ocr_like_every_command_and_engine_still_works(home: Path) -> None:
    (doc,) = receipts(home / "in", 1)
    new = run("ocr", str(doc), "--ocr", "text", "-f", "json")
    old = run("ocr", str(doc), "--engine", "text", "--json")
    assert new.returncode == old.returncode == 0, new.stderr + old.stderr
    assert json.loads(new.stdout)["engine"] == json.loads(old.stdout)["engine"] == "text"
    helptext = run("ocr", "--help").stdout
    assert "--ocr ENGINE" in helptext and "--engine" not in helptext  # the old name is a hidden alias


def test_a_cache_hit_reports_its_own_time_not_the_original_ocrs(home: Path) -> None:
    doc = home / "unique.txt"
    doc.write_text(f"A DOCUMENT OF ITS OWN {home}\nTOTAL 9.00\n", encoding="utf-8")  # not in the cache yet
    cache = Path(os.environ["CHATOCR_CACHE_DIR"]) / "ocr"
    before = set(cache.glob("*/*.json"))
    first = run("ocr", str(doc), "--ocr", "text")
    assert first.returncode == 0 and "cached" not in first.stdout
    (entry,) = set(cache.glob("*/*.json")) - before
    data = json.loads(entry.read_text(encoding="utf-8"))
    data["seconds"] = 98.76  # as if the original OCR had been slow
    entry.write_text(json.dumps(data), encoding="utf-8")
    hit = run("ocr", str(doc), "--ocr", "text")
    summary = hit.stderr.strip().splitlines()[-1]  # status on stderr: stdout is the document alone
    match = re.search(r"cached, (\d+\.\d\d)s \(the OCR itself took 98\.76s\)", summary)
    assert match, summary
    assert float(match.group(1)) < 98.76
    assert run("ocr", str(doc), "--ocr", "text", "-q").stdout.strip().splitlines()[-1] == "TOTAL 9.00"


def test_scenarios_list_never_cuts_a_name(home: Path) -> None:
    plain = run("scenarios", "list", "--plain")
    names = [line.split("\t")[0] for line in plain.stdout.splitlines()]
    assert "business_license" in names and "retail_receipt" in names
    for columns in ("80", "60", "40"):
        table = run("scenarios", "list", env={**os.environ, "COLUMNS": columns}).stdout
        words = set(re.findall(r"[\w]+", table))
        assert set(names) <= words, (columns, table)


def test_draw_says_where_the_pictures_went(home: Path) -> None:
    docs = receipts(home / "in", 2)
    done = run(
        "extract",
        *map(str, docs),
        "-l",
        "scripted",
        "--ocr",
        "text",
        "-s",
        "retail_receipt",
        "-k",
        "company,total",
        "--draw",
        "pics",
        "-o",
        "r.jsonl",
        cwd=home,
    )
    assert done.returncode == 0, done.stderr
    assert f"2 picture(s) in {(home / 'pics').resolve()}" in done.stderr
    assert len(list((home / "pics").glob("*.png"))) == 2


def _interior(box: list[float], inset: int = 3) -> tuple[int, int, int, int]:
    xs, ys = box[0::2], box[1::2]
    return round(min(xs)) + inset, round(min(ys)) + inset, round(max(xs)) - inset, round(max(ys)) - inset


def test_field_labels_do_not_cover_the_neighbouring_text(home: Path) -> None:
    """A real SROIE receipt's OCR (pre-OCR'd JSON: drawn on a blank page): no label colour may fall
    inside any OCR line's box, the lines next to the fields included."""
    source = FIXTURES / "ocr" / "X00016469612.json"
    answer = {"company": "BOOK TA .K(TAMAN DAYA) SDN BND", "date": "25/12/2018", "total": "9.00"}
    env = {**os.environ, "CHATOCR_SCRIPTED_ANSWERS": json.dumps([answer])}
    done = run(
        "extract",
        str(source),
        "-l",
        "scripted",
        "--ocr",
        "text",
        "-s",
        "retail_receipt",
        "-k",
        "company,date,total",
        "--draw",
        "pics",
        env=env,
        cwd=home,
    )
    assert done.returncode == 0, done.stderr
    (png,) = (home / "pics").glob("*.png")
    colours = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in PALETTE[:3]}
    lines = json.loads(source.read_text(encoding="utf-8"))
    with Image.open(png) as picture:
        pixels = np.asarray(picture.convert("RGB"))
    coloured = np.zeros(pixels.shape[:2], dtype=bool)
    for colour in colours:
        coloured |= (pixels == np.array(colour, dtype=pixels.dtype)).all(axis=2)
    assert coloured.sum() > 500  # the labels and boxes were drawn at all
    for line in lines:
        x0, y0, x1, y1 = _interior(line["box"])
        if x1 > x0 and y1 > y0:
            assert not coloured[y0:y1, x0:x1].any(), f"a label covers {line['text']!r}"


def test_place_label_prefers_above_and_avoids_what_is_there() -> None:
    canvas = (0.0, 0.0, 500.0, 500.0)
    box = (100.0, 100.0, 200.0, 120.0)
    assert place_label((50, 16), box, [], canvas) == (100.0, 82.0, 150.0, 98.0)  # free: just above
    above = (90.0, 70.0, 300.0, 98.0)
    below = place_label((50, 16), box, [above], canvas)
    assert below == (100.0, 122.0, 150.0, 138.0)
    right = place_label((50, 16), box, [above, (90.0, 121.0, 300.0, 150.0)], canvas)
    assert right[0] >= 204.0 - 0.01  # above and below are taken: beside it


def test_a_command_imports_only_its_own_module() -> None:
    """`chatocr extract` must not pay for the REPL's, export's or the server's imports before it can
    show anything; a mistyped command still gets every name to suggest from."""
    code = (
        "import sys\n"
        "from chatocr.cli.main import build_parser, _command_in\n"
        "parser = build_parser(_command_in(['extract', 'a.jpg', '-k', 'total']))\n"
        "print(sorted(m for m in sys.modules if m.startswith('chatocr.cli.') and m.endswith(('_cmd', 'repl'))))\n"
    )
    python = Path(CHATOCR).with_name("python")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "['chatocr.cli.extract_cmd']"
    version = code.replace("['extract', 'a.jpg', '-k', 'total']", "['--version']")
    out = subprocess.run([str(python), "-c", version], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"
    shown = run("--version")
    assert shown.returncode == 0 and shown.stdout.startswith("chatocr ")
    mistyped = run("extrct")
    assert mistyped.returncode == 2
    assert "Did you mean 'extract'?" in mistyped.stderr and "'serve'" in mistyped.stderr
    options = run("extract", "--keyz", "total", "x.jpg")
    assert options.returncode == 2 and "did you mean '--keys'?" in options.stderr
