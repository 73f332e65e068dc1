"""`--out results.xlsx`: the CSV's rows in an Excel workbook, plus a sheet of line items.

Sheet "results": one row per document (per page with --per-page), the CSV's columns (chatocr.runs.records)
with, when the keys were not known before the run, one value and status column per field found.
Sheet "line items" (when a field's value is a list of objects, e.g. an invoice's items): one row
per item with its document, page, field and item number, then the items' own keys.

Every cell from a document or a model is written as a string cell, so a value such as
`=HYPERLINK(...)` stays text and never becomes a formula; known secrets are masked. What Excel
cannot hold is said, never lost silently: control characters a workbook may not contain (`\x00`,
`\x0b`...) are written as the escape `\x0b`, and a value longer than a cell's 32,767 characters is
cut with CUT_MARKER at its end (the whole value is in the JSON Lines output); a warning says how
many cells. No key takes a fixed column's place (`chatocr.runs.records.key_columns`).

The workbook says chatocr wrote it (its `creator` property): `--out budget.xlsx` on a workbook
chatocr did not write is refused before any work (`check_own_workbook`), as `.jsonl`/`.csv` refuse
files with foreign lines. openpyxl is imported only here (extra `xlsx`).
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from chatocr.errors import MissingDependencyError, OutputPathError
from chatocr.extraction.result import Extraction
from chatocr.fileio import atomic_writer
from chatocr.runs.records import DocKey, csv_columns, csv_row
from chatocr.secrets import redact

__all__ = ["CELL_LIMIT", "CREATOR", "CUT_MARKER", "check_own_workbook", "line_items", "write_xlsx"]

ITEM_HEAD = ["path", "page", "field", "item"]
CELL_LIMIT = 32_767  # characters in one Excel cell
CUT_MARKER = " [cut at Excel's cell limit: {length:,} characters in all; see the JSON Lines output]"
CREATOR = "chatocr"  # the workbook's creator property: how a later run knows the file is ours
# What openpyxl (and the workbook format) refuses in a cell: C0 controls except tab, newline, CR.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEETS = {"results", "line items"}


def line_items(result: Extraction) -> list[tuple[str, int, dict[str, Any]]]:
    """(field, item number from 1, item) for each object in a list-of-objects value."""
    out: list[tuple[str, int, dict[str, Any]]] = []
    for name, item in result.fields.items():
        if isinstance(item.value, list) and item.value and all(isinstance(v, dict) for v in item.value):
            out.extend((name, n, entry) for n, entry in enumerate(item.value, 1))
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class _Cells:
    """Turns values into string cells a workbook can hold, and counts what had to change."""

    def __init__(self) -> None:
        self.escaped = 0  # cells whose control characters were written as escapes
        self.cut = 0  # cells cut at the cell limit

    def text(self, value: Any) -> str:
        text = redact(_text(value))  # known secrets masked, as in every file chatocr writes
        if _ILLEGAL.search(text):
            self.escaped += 1
            text = _ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
        if len(text) > CELL_LIMIT:
            self.cut += 1
            marker = CUT_MARKER.format(length=len(text))
            text = text[: CELL_LIMIT - len(marker)] + marker
        return text

    def append_row(self, sheet: Any, values: Sequence[Any]) -> None:
        from openpyxl.cell.cell import Cell

        cells = []
        for value in values:
            cell = Cell(sheet, value=None)
            if isinstance(value, int) and not isinstance(value, bool):  # our page and item numbers
                cell.value = value
            else:
                cell.value = self.text(value)
                cell.data_type = "s"  # never a formula, whatever the text starts with
            cells.append(cell)
        sheet.append(cells)

    def warnings(self, path: Path) -> list[str]:
        said = []
        if self.escaped:
            said.append(
                f"{path}: {self.escaped} cell(s) held control characters a workbook cannot store; "
                "they are written as escapes such as \\x0b"
            )
        if self.cut:
            said.append(
                f"{path}: {self.cut} cell(s) were longer than Excel's {CELL_LIMIT:,} characters and were cut "
                "(marked in the cell); the JSON Lines output (--out results.jsonl) keeps whole values"
            )
        return said


def _ours(path: Path) -> bool:
    """Whether the workbook at `path` was written by chatocr: its creator property says so, or (a
    workbook of an older chatocr) its sheets are ours and its first row is our columns."""
    try:
        with zipfile.ZipFile(path) as book:
            core = (
                book.read("docProps/core.xml").decode("utf-8", "replace")
                if "docProps/core.xml" in book.namelist()
                else ""
            )
        if f"<dc:creator>{CREATOR}</dc:creator>" in core:
            return True
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True)
        try:
            if not set(workbook.sheetnames) <= _SHEETS or "results" not in workbook.sheetnames:
                return False
            header = next(workbook["results"].iter_rows(max_row=1, values_only=True), ())
        finally:
            workbook.close()
    except Exception:  # not a zip, not a workbook, damaged: not ours to replace
        return False
    names = [str(c) for c in header if c is not None]
    return names[:2] == ["path", "sha256"] and {"ok", "scenario"} <= set(names) and names[-1:] == ["error"]


def check_own_workbook(path: Path) -> None:
    """Refuse, before any work, an existing file at `path` that is not a workbook chatocr wrote: a
    user's own workbook (`--out budget.xlsx`) is never replaced."""
    if path.is_file() and not _ours(path):
        raise OutputPathError(
            f"{path} is a file chatocr did not write (not one of its workbooks); it was left unchanged.",
            hint="Give --out a new .xlsx file name, or remove that file if it is not needed.",
        )


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def write_xlsx(
    path: Path,
    rows: Sequence[tuple[DocKey, Extraction]],
    keys: Sequence[str] | None,
    per_page: bool = False,
    warn: Callable[[str], None] = _warn,
) -> Path:
    """Write the workbook atomically (chatocr.fileio: a regular file or a new name, never a link),
    after checking that an existing file there is a workbook chatocr wrote. What Excel cannot hold
    (module docstring) is said through `warn` (default: a line on stderr)."""
    try:
        from openpyxl import Workbook
    except ImportError:
        raise MissingDependencyError("Excel output (--out .xlsx)", "xlsx", package="openpyxl") from None
    check_own_workbook(path)
    if not keys:  # unknown before the run: every field seen, in the order first seen
        seen: dict[str, None] = {}
        for _, result in rows:
            seen.update(dict.fromkeys(result.fields))
        keys = list(seen) or None
    columns = csv_columns(keys, per_page)
    book = Workbook()
    book.properties.creator = CREATOR
    cells = _Cells()
    sheet = book.active
    sheet.title = "results"
    cells.append_row(sheet, columns)
    items: list[tuple[DocKey, Extraction, str, int, dict[str, Any]]] = []
    for key, result in rows:
        cells.append_row(sheet, csv_row(columns, key, result))
        items.extend((key, result, *entry) for entry in line_items(result))
    sheet.freeze_panes = "A2"
    if items:
        _item_sheet(book.create_sheet("line items"), items, cells)
    atomic_writer(path, book.save)  # chatocr.fileio: checked target, a fresh temp file, fsync, rename
    for message in cells.warnings(path):
        warn(message)
    return path


def _item_sheet(sheet: Any, items: list[tuple[DocKey, Extraction, str, int, dict[str, Any]]], cells: _Cells) -> None:
    """One row per line item: its document, page, field and number, then the items' own keys (a key
    named like one of those four gets `KEY (field)`, as in the results sheet)."""
    item_keys = list(dict.fromkeys(k for *_, entry in items for k in entry))
    taken = set(ITEM_HEAD)
    headings = []
    for key in item_keys:
        heading, number = key, 1
        while heading in taken:
            heading = f"{key} (field)" if number == 1 else f"{key} (field {number})"
            number += 1
        taken.add(heading)
        headings.append(heading)
    cells.append_row(sheet, [*ITEM_HEAD, *headings])
    for doc_key, result, name, number, entry in items:
        page = "" if result.page is None else result.page
        cells.append_row(sheet, [doc_key[0], page, name, number, *(entry.get(k) for k in item_keys)])
    sheet.freeze_panes = "A2"
