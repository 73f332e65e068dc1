"""One document's record in a results file: the JSON Lines record (`record_for`, the same JSON
`chatocr extract --format json` prints and the service answers), a CSV row, and how a finished
document is known (`DocKey`: its absolute path and the SHA-256 of its content)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from chatocr.extraction.result import Extraction
from chatocr.secrets import redact

__all__ = [
    "DocKey",
    "DoneKey",
    "LogFormat",
    "csv_columns",
    "csv_row",
    "csv_text",
    "done_key",
    "format_line",
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


def read_results(path: Path) -> list[tuple[DocKey, Extraction]]:
    """Every complete record of a JSON Lines results file, as Extraction objects."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        meta = data.pop("input")
        out.append(((meta["path"], meta["sha256"]), Extraction.from_dict(data)))
    return out


def csv_columns(keys: Sequence[str] | None, per_page: bool = False) -> list[str]:
    """Fixed CSV columns: per key its value and status when the keys are known before the run,
    else one `values` column holding JSON; per page, its page number and the input's page count."""
    head = ["path", "sha256", *(["page", "pages"] if per_page else []), "ok", "scenario"]
    body = [c for k in keys for c in (k, f"{k}.status")] if keys else ["values"]
    return [*head, *body, "error"]


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
    row = {
        "path": key[0],
        "sha256": key[1],
        "ok": "true" if result.ok else "false",
        "page": "" if result.page is None else str(result.page),
        "pages": str(result.ocr.get("document_pages") or ""),
        "scenario": result.scenario or "",
        "values": _flat(result.values),
        "error": _flat(result.error["message"]) if result.error else "",
    }
    for name, item in result.fields.items():
        row[name] = _flat(item.value)
        row[f"{name}.status"] = item.status
    return [row.get(column, "") for column in columns]


def _flat(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return " ".join(text.split())  # one physical line per row: newlines become spaces
