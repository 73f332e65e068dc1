"""The fixed CSV/Excel columns are never shadowed by a key of the same name (issue 34), and files
whose keys shadow nothing keep exactly the columns they had (so they still resume)."""

from __future__ import annotations

from chatocr.extraction.result import Extraction, FieldResult
from chatocr.runs.records import FIXED_COLUMNS, csv_columns, csv_row, key_columns


def test_columns_of_ordinary_keys_are_unchanged() -> None:
    assert csv_columns(["company", "total"]) == [
        "path", "sha256", "ok", "scenario", "company", "company.status", "total", "total.status", "error",
    ]  # fmt: skip
    assert csv_columns(None, per_page=True) == ["path", "sha256", "page", "pages", "ok", "scenario", "values", "error"]


def test_every_fixed_name_and_status_clash_gets_its_own_column() -> None:
    keys = [*FIXED_COLUMNS, "a", "a.status", "path (field)"]
    mapping = key_columns(keys)
    columns = csv_columns(keys)
    assert len(columns) == len(set(columns))  # no column twice
    assert all(mapping[name] == f"{name} (field)" for name in FIXED_COLUMNS)
    assert mapping["a"] == "a" and mapping["a.status"] == "a.status (field)"
    assert mapping["path (field)"] == "path (field) (field)"


def test_a_row_keeps_the_documents_own_path_and_outcome_whatever_the_keys_answer() -> None:
    fields = {
        name: FieldResult(name, f"answer for {name}", status="grounded") for name in ("path", "ok", "error", "total")
    }
    result = Extraction(source="/in/r.txt", fields=fields)
    columns = csv_columns(list(fields))
    row = dict(zip(columns, csv_row(columns, ("/in/r.txt", "ab" * 32), result), strict=True))
    assert row["path"] == "/in/r.txt" and row["sha256"] == "ab" * 32 and row["ok"] == "true" and row["error"] == ""
    assert row["path (field)"] == "answer for path" and row["ok (field).status"] == "grounded"
    assert row["total"] == "answer for total"


def test_a_result_with_fewer_fields_than_the_columns_fills_its_own() -> None:
    columns = csv_columns(["ok", "total"])
    result = Extraction(source="/in/r.txt", fields={"ok": FieldResult("ok", "yes", status="grounded")})
    row = dict(zip(columns, csv_row(columns, ("/in/r.txt", "0" * 64), result), strict=True))
    assert row["ok"] == "true" and row["ok (field)"] == "yes" and row["total"] == ""
