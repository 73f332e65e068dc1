"""docs/typed.md's receipt example, run as written on the scripted backend and the receipt's OCR
text (samples/receipt.jpg is SROIE X00016469612, whose ground-truth OCR is a test fixture)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import types
from pathlib import Path

from chatocr.errors import SchemaError
from chatocr.llm import ScriptedChatModel
from chatocr.typed import typed_schema

REPO = Path(__file__).resolve().parents[2]
OCR = REPO / "tests" / "fixtures" / "sroie" / "ocr" / "X00016469612.json"
ANSWER = {
    "company": "BOOK TA .K(TAMAN DAYA) SDN BND",
    "date": "25/12/2018",
    "total": "9.00",
    "items": [{"description": "KF MODELLING CLAY KIDDY FISH", "quantity": "1", "amount": "9.00"}],
}


def _example() -> str:
    text = (REPO / "docs" / "typed.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)[0]


def test_the_receipt_example_runs_as_documented() -> None:
    code = _example()
    assert "ocr = ChatOCR()" in code and '"samples/receipt.jpg"' in code
    code = code.replace("ChatOCR()", 'ChatOCR(llm=MODEL, ocr="text", ocr_cache=False)')
    code = code.replace('"samples/receipt.jpg"', repr(str(OCR)))
    module = types.ModuleType("typed_example")  # a module, so that pydantic resolves the annotations
    module.MODEL = ScriptedChatModel([json.dumps(ANSWER)])  # type: ignore[attr-defined]
    out = io.StringIO()
    sys.modules[module.__name__] = module
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/typed.md", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    namespace = module.__dict__
    lines = out.getvalue().splitlines()
    assert lines[0] == "9.00 2018-12-25"  # the documented Decimal('9.00') datetime.date(2018, 12, 25), printed
    assert lines[1] == "KF MODELLING CLAY KIDDY FISH"
    assert lines[2].startswith("grounded 1.0 [[")
    assert lines[3] == "[]"
    result = namespace["result"]
    assert type(result.data).__name__ == "Receipt" and result.data.items[0].quantity == 1.0


def test_the_documented_json_schema_error_message() -> None:
    text = (REPO / "docs" / "typed.md").read_text(encoding="utf-8")
    try:
        typed_schema({"type": "object", "properties": {"total": {"type": "money"}}})
    except SchemaError as exc:
        message = exc.message
    assert " ".join(message.split()) in " ".join(text.split())
