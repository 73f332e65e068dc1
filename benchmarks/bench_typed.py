"""What does typed extraction add per document? Schema conversion and instance building for a
20-field model with a 10-item list (19 scalar fields of every kind, plus `items: list[Item]`).

Per document, a typed extract call converts the schema once (`typed_schema`), and builds the
instance from the found values twice (the loop's review after an answer, and the result): this
script times those, and the whole typed overhead of one document (conversion + review + result,
with min_confidence marking), for a pydantic model and for its JSON Schema (which adds the
jsonschema library's checks). Target: <= 1 ms per document. The ratio column compares with
pydantic's own `model_validate` of the same values in the same process (the floor: what any
typed output costs).

    python benchmarks/bench_typed.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from chatocr.extraction.result import Evidence, Extraction, FieldResult
from chatocr.extraction.typed_request import finish_typed, make_review, typed_values
from chatocr.typed import build_instance, typed_schema

TARGET_MS = 1.0


class Item(BaseModel):
    description: str = Field(description="Item name as printed")
    quantity: float | None = Field(None, description="Quantity when printed")
    amount: Decimal = Field(description="Line total")


class Invoice(BaseModel):
    """20 fields: 19 scalars and a list of line items."""

    seller: str
    seller_tax_id: str
    seller_address: str | None = None
    buyer: str
    buyer_tax_id: str | None = None
    buyer_address: str | None = None
    invoice_number: str
    invoice_code: str | None = None
    issue_date: dt.date
    due_date: dt.date | None = None
    currency: Literal["MYR", "CNY", "USD"] = "MYR"
    payment_method: Literal["cash", "card", "transfer"] | None = None
    subtotal: Decimal
    tax: Decimal | None = None
    discount: Decimal | None = None
    rounding: Decimal | None = None
    total: Decimal
    pages: int | None = None
    note: str | None = None
    items: list[Item] = Field([], description="Line items")


VALUES: dict[str, Any] = {
    "seller": "ACME TRADING SDN BHD",
    "seller_tax_id": "001234567890",
    "seller_address": "12 JALAN BESAR",
    "buyer": "JOHN DOE ENTERPRISE",
    "buyer_tax_id": None,
    "buyer_address": "3 LORONG KECIL",
    "invoice_number": "INV-2018-0042",
    "invoice_code": "044002100111",
    "issue_date": "2018-12-25",
    "due_date": "2019-01-25",
    "currency": "MYR",
    "payment_method": "cash",
    "subtotal": "95.17",
    "tax": "5.71",
    "discount": "0.00",
    "rounding": "0.02",
    "total": "100.90",
    "pages": "1",
    "note": None,
    "items": [{"description": f"ITEM NUMBER {i}", "quantity": "2", "amount": f"{i}.50"} for i in range(10)],
}


def field_results(schema: Any) -> dict[str, FieldResult]:
    """The loop's field results for VALUES: every value grounded on one OCR line, items leaf by leaf."""
    evidence = [Evidence("p0-l1", "x", [[0, 0], [1, 0], [1, 1], [0, 1]], 0.93, 0)]
    out = {}
    for field in schema.fields:
        value = VALUES[field.name]
        result = FieldResult(
            field.name,
            value,
            value,
            status="grounded" if value is not None else "missing",
            confidence=0.93 if value is not None else None,
            evidence=list(evidence),
        )
        if field.name == "items":
            result.parts = {
                f"items[{i}].{k}": FieldResult(
                    f"items[{i}].{k}", v, v, status="grounded", confidence=0.93, evidence=list(evidence)
                )
                for i, item in enumerate(value)
                for k, v in item.items()
            }
        out[field.name] = result
    return out


def _first_time(source: Any) -> float:
    """A conversion without the cache: what the first document of a new model pays, once."""
    from chatocr.typed import json_schema, schema

    started = time.perf_counter()
    schema._from_model(source) if isinstance(source, type) else json_schema.from_json_schema(source)
    return (time.perf_counter() - started) * 1000


def median_ms(function: Callable[[], object], repeat: int) -> float:
    for _ in range(20):  # warm-up: pydantic builds its validators on first use
        function()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    rows: dict[str, float] = {}
    json_schema = Invoice.model_json_schema()
    for label, source in (("model", Invoice), ("json_schema", json_schema)):
        schema = typed_schema(source)
        assert len(schema.fields) == 20
        fields = field_results(schema)
        values = typed_values(fields)
        instance, problems = build_instance(schema, values)
        assert instance is not None and not problems, problems

        def per_document(source: Any = source) -> None:
            typed = typed_schema(source)
            typed.checked.clear()  # a new document's values: its first JSON Schema check is not remembered
            current = field_results(typed)
            make_review(typed, 0.5)(current)  # after the answer
            finish_typed(Extraction(source="bench", fields=current), typed, 0.5)

        def setup_only(source: Any = source) -> None:
            field_results(typed_schema(source))

        rows[f"{label}: schema conversion, first time"] = _first_time(source)
        rows[f"{label}: schema conversion"] = median_ms(lambda source=source: typed_schema(source), args.repeat)

        def build(s: Any = schema, v: Any = values) -> None:
            s.checked.clear()  # new values every time, as for a new document
            build_instance(s, v)

        rows[f"{label}: instance building"] = median_ms(build, args.repeat)
        # The whole per-document cost, less the cost of making this benchmark's field results.
        rows[f"{label}: per document (conversion + review + result)"] = (
            max(0.0, median_ms(per_document, args.repeat) - median_ms(setup_only, args.repeat))
            + rows[f"{label}: schema conversion"]
        )
    floor = median_ms(lambda: Invoice.model_validate({**VALUES}), args.repeat)
    print(f"{'measure (20 fields, 10 items)':58} {'median ms':>10} {'x pydantic':>11} {'target':>8}")
    for name, value in rows.items():
        ok = "once" if "first time" in name else ("MET" if value <= TARGET_MS else "NOT MET")
        print(f"{name:58} {value:10.3f} {value / floor:11.1f} {ok:>8}")
    print(f"{'pydantic model_validate of the same values (floor)':58} {floor:10.3f} {1.0:11.1f}")
    results = [
        {
            "name": f"{name} (ms/document)",
            "value": round(value, 3),
            "unit": "ms",
            "target": f"<= {TARGET_MS:g}",
            "met": value <= TARGET_MS,
        }
        for name, value in rows.items()
        if "per document" in name
    ]
    print("BENCH-JSON " + json.dumps({"benchmark": "typed", "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
