"""One document's record in a results file: the JSON Lines record (`record_for`, the same JSON
`chatocr extract --format json` prints and the service answers), a CSV row, and how a finished
document is known (`DocKey`: its absolute path and the SHA-256 of its content)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from chatocr.errors import DataFileError
from chatocr.extraction.result import Extraction
from chatocr.fileio import read_json, read_json_lines
from chatocr.secrets import redact

__all__ = [
    "FIXED_COLUMNS",
    "DocKey",
    "DoneKey",
    "LogFormat",
    "ReadRecord",
    "RecordsRead",
    "csv_columns",
    "csv_row",
    "csv_text",
    "done_key",
    "format_line",
    "key_columns",
    "read_records",
    "read_results",
    "record_for",
]

LogFormat = Literal["jsonl", "csv"]
DocKey = tuple[str, str]  # (absolute path, sha256 of the content)
# A done document: its DocKey, or (path, sha256, page) for one result per page (`--per-page`).
DoneKey = tuple[str, str] | tuple[str, str, int]


def record_for(key: DocKey, result: Extraction) -> dict[str, Any]:
    """The JSON Lines record: the Extraction's own JSON plus an `input` key naming the document
    (and, for a per-page result, its page and the input's page count)."""
    meta: dict[str, Any] = {"path": key[0], "sha256": key[1]}
    if result.page is not None:
        meta.update(page=result.page, pages=result.ocr.get("document_pages"))
    return {"input": meta, **result.to_dict()}


def done_key(key: DocKey, result: Extraction) -> DoneKey:
    return key if result.page is None else (key[0], key[1], result.page)


@dataclass(frozen=True)
class ReadRecord:
    """One record of a results file, checked (Extraction.from_dict)."""

    where: str  # "line 3" of a JSON Lines file, "record 2" of a JSON list
    key: DocKey | None  # its input's (path, sha256); None when the record names none
    result: Extraction
    data: dict[str, Any]  # the record as read: what a person added (`reviewed`, `values`, `confirmed_lines`)


@dataclass
class RecordsRead:
    records: list[ReadRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why) of each record left out


def _input_key(meta: Any) -> DocKey | None:
    if isinstance(meta, dict) and isinstance(meta.get("path"), str) and isinstance(meta.get("sha256"), str):
        return meta["path"], meta["sha256"]
    return None


def _entries(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, JSON value or its DataFileError) of each record: a .json file holding one record or a
    list of them (`--format json`), else JSON Lines."""
    if path.suffix.lower() == ".json":
        try:
            whole = read_json(path)
        except DataFileError as error:
            if "not valid JSON" not in error.message:  # a .json of JSON Lines is read as lines below
                raise
        else:
            items = whole if isinstance(whole, list) else [whole]
            yield from ((f"record {n}", item) for n, item in enumerate(items, 1))
            return
    yield from ((f"line {n}", value) for n, value in read_json_lines(path))


def read_records(path: Path) -> RecordsRead:
    """Every record of a results file (JSON Lines, or a JSON record or list), each checked; a record
    that is not bounded JSON or not a chatocr result is left out with where it is and why, and the
    others are read. DataFileError when the file cannot be read at all."""
    out = RecordsRead()
    for where, value in _entries(path):
        if isinstance(value, DataFileError):
            out.skipped.append((where, value.message.split(": ", 1)[-1]))
            continue
        if not isinstance(value, dict):
            out.skipped.append((where, f"a JSON {type(value).__name__}, not a chatocr result"))
            continue
        try:
            result = Extraction.from_dict({k: v for k, v in value.items() if k != "input"})
        except DataFileError as error:
            out.skipped.append((where, error.message))
            continue
        out.records.append(ReadRecord(where, _input_key(value.get("input")), result, value))
    return out


def read_results(path: Path) -> list[tuple[DocKey, Extraction]]:
    """Every good record of a JSON Lines results file that names its input, as Extraction objects
    (`read_records` says which lines were left out and why)."""
    return [(r.key, r.result) for r in read_records(path).records if r.key is not None]


# The columns every CSV row and workbook row has whatever the keys: a key of the same name never
# takes their place (its own columns are renamed, see key_columns).
FIXED_COLUMNS = ("path", "sha256", "page", "pages", "ok", "scenario", "values", "error")


def _column_candidates(key: str) -> Iterator[str]:
    """The names a key's value column may take, in order: the key itself, then `KEY (field)`,
    `KEY (field 2)`..."""
    yield key
    yield f"{key} (field)"
    number = 2
    while True:
        yield f"{key} (field {number})"
        number += 1


def key_columns(keys: Sequence[str]) -> dict[str, str]:
    """Key -> the name of its value column (its status column is that name + `.status`): the key
    itself unless that would shadow a fixed column (`path`, `ok`, `sha256`, `error`...) or another
    key's column; then `KEY (field)`. Resume reads the fixed columns, so a key named `ok` never
    turns a finished document into a failed one."""
    taken = set(FIXED_COLUMNS)
    out: dict[str, str] = {}
    for key in dict.fromkeys(keys):
        column = next(c for c in _column_candidates(key) if c not in taken and f"{c}.status" not in taken)
        taken.update((column, f"{column}.status"))
        out[key] = column
    return out


def csv_columns(keys: Sequence[str] | None, per_page: bool = False) -> list[str]:
    """Fixed CSV columns: per key its value and status when the keys are known before the run,
    else one `values` column holding JSON; per page, its page number and the input's page count."""
    head = ["path", "sha256", *(["page", "pages"] if per_page else []), "ok", "scenario"]
    body = [c for column in key_columns(keys).values() for c in (column, f"{column}.status")] if keys else ["values"]
    return [*head, *body, "error"]


def _assigned_columns(names: Sequence[str], columns: Sequence[str]) -> dict[str, str]:
    """Field name -> its value column among `columns` (made by csv_columns from the run's keys, in
    the same order as the result's fields): the first candidate that is a key column not yet given
    to an earlier field."""
    keyed = {c for c in columns if f"{c}.status" in columns and c not in FIXED_COLUMNS}
    used: set[str] = set()
    out: dict[str, str] = {}
    for name in names:
        for candidate in islice(_column_candidates(name), len(columns) + 1):
            if candidate in keyed and candidate not in used:
                out[name] = candidate
                used.add(candidate)
                break
    return out


def format_line(fmt: LogFormat, key: DocKey, result: Extraction, columns: Sequence[str] | None = None) -> str:
    """One document as one line of JSON Lines or CSV (newline included)."""
    if fmt == "csv":
        return redact(csv_text(csv_row(columns or csv_columns(None), key, result)))
    return redact(json.dumps(record_for(key, result), ensure_ascii=False, default=str)) + "\n"


def csv_text(row: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def csv_row(columns: Sequence[str], key: DocKey, result: Extraction) -> list[str]:
    """One document's row under `columns`: the fixed columns first, each field in its own column."""
    row: dict[str, str] = {}
    for name, column in _assigned_columns(list(result.fields), columns).items():
        item = result.fields[name]
        row[column] = _flat(item.value)
        row[f"{column}.status"] = item.status
    row.update(  # the fixed columns last: nothing a document answers can take their place
        {
            "path": key[0],
            "sha256": key[1],
            "ok": "true" if result.ok else "false",
            "page": "" if result.page is None else str(result.page),
            "pages": str(result.ocr.get("document_pages") or ""),
            "scenario": result.scenario or "",
            "values": _flat(result.values),
            "error": _flat(result.error["message"]) if result.error else "",
        }
    )
    return [row.get(column, "") for column in columns]


def _flat(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split())  # one physical line per row: newlines become spaces
