"""`--out results.xlsx`: the CSV's rows in an Excel workbook, plus a sheet of line items.

Sheet "results": one row per document (per page with --per-page), the CSV's columns (chatocr.runs.records)
with, when the keys were not known before the run, one value and status column per field found.
Sheet "line items" (when a field's value is a list of objects, e.g. an invoice's items): one row
per item with its document, page, field and item number, then the items' own keys.

Every cell from a document or a model is written as a string cell, so a value such as
`=HYPERLINK(...)` stays text and never becomes a formula. openpyxl is imported only here (extra `xlsx`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chatocr.errors import MissingDependencyError
from chatocr.extraction.result import Extraction
from chatocr.fileio import atomic_writer
from chatocr.runs.records import DocKey, csv_columns, csv_row
from chatocr.secrets import redact

__all__ = ["line_items", "write_xlsx"]

ITEM_HEAD = ["path", "page", "field", "item"]


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
    import json

    return json.dumps(value, ensure_ascii=False)


def _append_text_row(sheet: Any, values: Sequence[Any]) -> None:
    from openpyxl.cell.cell import Cell

    cells = []
    for value in values:
        cell = Cell(sheet, value=None)
        if isinstance(value, int) and not isinstance(value, bool):  # our page and item numbers
            cell.value = value
        else:
            cell.value = redact(_text(value))  # known secrets masked, as in every file chatocr writes
            cell.data_type = "s"  # never a formula, whatever the text starts with
        cells.append(cell)
    sheet.append(cells)


def write_xlsx(
    path: Path, rows: Sequence[tuple[DocKey, Extraction]], keys: Sequence[str] | None, per_page: bool = False
) -> Path:
    """Write the workbook atomically (temp file + rename: a planted symlink is replaced, not followed)."""
    try:
        from openpyxl import Workbook
    except ImportError:
        raise MissingDependencyError("Excel output (--out .xlsx)", "xlsx", package="openpyxl") from None
    if not keys:  # unknown before the run: every field seen, in the order first seen
        seen: dict[str, None] = {}
        for _, result in rows:
            seen.update(dict.fromkeys(result.fields))
        keys = list(seen) or None
    columns = csv_columns(keys, per_page)
    book = Workbook()
    sheet = book.active
    sheet.title = "results"
    _append_text_row(sheet, columns)
    items: list[tuple[DocKey, Extraction, str, int, dict[str, Any]]] = []
    for key, result in rows:
        _append_text_row(sheet, csv_row(columns, key, result))
        items.extend((key, result, *entry) for entry in line_items(result))
    sheet.freeze_panes = "A2"
    if items:
        item_keys = list(dict.fromkeys(k for *_, entry in items for k in entry))
        item_sheet = book.create_sheet("line items")
        _append_text_row(item_sheet, [*ITEM_HEAD, *item_keys])
        for key, result, name, number, entry in items:
            page = "" if result.page is None else result.page
            _append_text_row(item_sheet, [key[0], page, name, number, *(entry.get(k) for k in item_keys)])
        item_sheet.freeze_panes = "A2"
    atomic_writer(path, book.save)  # chatocr.fileio: a fresh temp file, fsync, rename
    return path
