"""Typed extraction on the command line: the shared key syntax (a bad type is a usage error before
anything runs), --schema, --scenario FILE.yaml, `scenarios model` / `from-schema`, the REPL's
/keys, and `eval --schema` on the scripted backend with typed values checked against the labels."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from chatocr.api import ChatOCR
from chatocr.cli.main import main
from chatocr.cli.repl import Repl
from chatocr.cli.scenario_authoring import skeleton_yaml
from chatocr.evaluation.datasets import load_dataset
from chatocr.evaluation.runner import Evaluator
from chatocr.evaluation.strategies import resolve_strategies
from chatocr.evaluation.typed import typed_agreement
from chatocr.llm import ScriptedChatModel
from chatocr.typed.loading import load_schema
from tests.cli.conftest import receipts, script
from tests.evaluation.conftest import SROIE, oracle_model

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "samples" / "typed_models.py"

MODEL_FILE = """
from decimal import Decimal
from pydantic import BaseModel, Field

class Till(BaseModel):
    company: str = Field(description="the shop's name")
    total: Decimal
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "DOC", "--keys", "total:money"],
        ["plan", "DOC", "--scenario", "retail_receipt", "--keys", "company,total:money"],
        ["repl", "--keys", "total:money"],
        ["scenarios", "new", "x", "--from", "DOC", "--keys", "total:money"],
    ],
)
def test_an_unknown_key_type_is_a_usage_error_naming_the_types(
    argv: list[str], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (doc,) = receipts(home / "in", 1)
    try:  # argparse's own check (SystemExit) or the request's, as every caller builds it (returned)
        code = main([str(doc) if a == "DOC" else a for a in argv] + ["--llm", "scripted"] * (argv[0] != "scenarios"))
    except SystemExit as exited:
        code = exited.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown type 'money'" in err and "text, date, amount, number, enum(A|B|...), list" in err


def test_extract_with_typed_keys_and_descriptions(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (doc,) = receipts(home / "in", 1)
    args = ["--llm", "scripted", "--ocr", "text", "--scenario", "retail_receipt", "--format", "json"]
    assert main(["extract", str(doc), "--keys", "company=the shop's name,total:amount", *args]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["values"] == {"company": "SHOP ABC SDN BHD", "total": "9.00"}  # not a key named "total:amount"
    assert "the shop's name" in data["calls"][0]["messages"][0]["content"]


def test_extract_with_a_schema_and_a_scenario_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (doc,) = receipts(home / "in", 1)
    (home / "till_model.py").write_text(MODEL_FILE, encoding="utf-8")
    assert main(["scenarios", "from-schema", "till_model:Till", "--name", "my_till", "--out", "my_till.yaml"]) == 0
    assert main(["scenarios", "validate", "my_till.yaml"]) == 0
    capsys.readouterr()
    common = ["--llm", "scripted", "--ocr", "text", "--scenario", "my_till.yaml"]
    assert main(["extract", str(doc), *common, "--schema", "till_model:Till", "--format", "values"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario"] == "my_till" and data["data"] == {"company": "SHOP ABC SDN BHD", "total": "9.00"}
    assert data["errors"] == [] and data["fields"]["total"]["status"] == "grounded"
    schema_file = home / "till.json"
    schema_file.write_text(json.dumps({"type": "object", "properties": {"total": {"type": "number", "maximum": 5}}}))
    script_answers = [{"total": "9.00"}] * 3
    return_code = _extract_with(doc, script_answers, [*common, "--schema", str(schema_file), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert return_code == 0 and out["data"] is None and out["errors"][0]["path"] == "total"
    assert "maximum" in out["errors"][0]["message"]


def _extract_with(doc: Path, answers: list[dict[str, str]], args: list[str]) -> int:
    mp = pytest.MonkeyPatch()
    try:
        script(mp, answers)
        return main(["extract", str(doc), *args])
    finally:
        mp.undo()


def test_bad_schemas_fail_before_any_document_is_read(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "bad_model.py").write_text("from pydantic import BaseModel\nclass B(BaseModel):\n    blob: bytes\n")
    missing = str(home / "missing.png")
    assert main(["extract", missing, "--llm", "scripted", "--schema", "bad_model:B"]) == 1
    err = capsys.readouterr().err
    assert "B.blob" in err and "Types that work" in err and "missing.png" not in err
    assert main(["extract", missing, "--llm", "scripted", "--schema", "no_such_module:X"]) == 1
    assert "cannot import 'no_such_module'" in capsys.readouterr().err


def test_plan_uses_the_key_syntax_like_extract(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (doc,) = receipts(home / "in", 1)
    keys = "total:amount=the amount after rounding,shop=the shop's name"
    assert main(["plan", str(doc), "--scenario", "retail_receipt", "--keys", keys, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    system = plan["messages"][0]["content"]
    assert "the amount after rounding" in system and "shop" in system and "total:amount" not in system


def test_scenarios_model_prints_importable_source(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios", "model", "retail_receipt"]) == 0
    source = capsys.readouterr().out
    (home / "receipt_types.py").write_text(source, encoding="utf-8")
    schema = load_schema("receipt_types.py:RetailReceipt")  # --schema FILE.py:Class
    assert schema is not None and schema.name == "RetailReceipt"
    assert [f.name for f in schema.fields][:3] == ["company", "address", "date"]


def test_scenarios_new_takes_descriptions_and_enums() -> None:
    text = skeleton_yaml("tiny", "SHOP\nTOTAL 1.00", "shop=the shop,kind:enum(food|retail),total:amount", "x.png")
    assert "description: the shop" in text and "- food" in text and "type: amount" in text


def test_repl_keys_use_the_same_parser(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    repl = Repl(ChatOCR(llm=ScriptedChatModel(['{"total": "9.00"}']), ocr="text", ocr_cache=False), console)
    repl.handle("/keys total:money")
    assert "Unknown type 'money'" in console.export_text() and repl.keys is None
    repl.handle("/keys total:amount=the final total")
    assert repl.keys == ["total:amount=the final total"]
    doc = tmp_path / "r.txt"
    doc.write_text("SHOP ABC\nTOTAL 9.00\n", encoding="utf-8")
    repl.handle(f"/open {doc}")
    repl.handle("/extract")
    assert repl.extractions[-1].fields["total"].normalized == "9.00"


def test_eval_with_the_scenario_given_as_models(tmp_path: Path, ticket_set: Path) -> None:
    chat = ChatOCR(llm=oracle_model(), ocr="text", config={"ocr_cache_dir": str(tmp_path / "ocr-cache")})
    tickets = tmp_path / "cn_train_ticket_typed"
    shutil.copytree(ticket_set, tickets)
    sets = [load_dataset(SROIE, chat.library), load_dataset(tickets, chat.library)]
    # The shipped models, as `eval --schema samples/typed_models.py:SroieReceipt --schema ...:TrainTicket`.
    receipt, ticket_model = (load_schema(f"{MODELS}:{name}") for name in ("SroieReceipt", "TrainTicket"))
    assert receipt is not None and ticket_model is not None
    schemas = {sets[0].name: receipt, sets[1].name: ticket_model}
    strategies = resolve_strategies(["default"])
    plain = Evaluator(chat, ocr_source="text", use_cache=False)
    typed = Evaluator(chat, ocr_source="text", use_cache=False, schemas=schemas)
    calls = chat.model.calls  # type: ignore[attr-defined]
    yaml_report = asyncio.run(plain.run(sets, strategies))
    yaml_calls = list(calls)
    typed_report = asyncio.run(typed.run(sets, strategies))
    typed_calls = calls[len(yaml_calls) :]

    def sent(call: object) -> tuple[object, ...]:
        return tuple(m.content for m in call.messages), call.settings.json_mode  # type: ignore[attr-defined]

    # The shipped models are the YAML scenarios' fields in the labels' order: the same conversation
    # (messages and answer schema), so on a deterministic backend the same answers.
    assert [sent(c) for c in typed_calls] == [sent(c) for c in yaml_calls] and yaml_calls
    for name in (sets[0].name, sets[1].name):  # field accuracy within one field of the YAML path
        right = [r["results"][name]["default"]["overall"] for r in (yaml_report, typed_report)]
        labelled = sum(len(d.labels) for d in (sets[0] if name == sets[0].name else sets[1]).documents)
        assert abs(right[0]["exact"] - right[1]["exact"]) * labelled <= 1, (name, right)
    agreement = typed_agreement(sets, typed.outcomes, schemas)
    ticket = agreement[sets[1].name]["default"]
    assert ticket["validated"] == ticket["documents"] == 2 and ticket["equal"] == ticket["labelled"] == 18
    outcome = next(o for o in typed.outcomes if o.dataset == sets[1].name and o.document == "t1")
    assert outcome.data is not None and outcome.data["ticket_price"] == "55.5" and outcome.data["date"] == "2019-01-02"
    receipts_ = agreement[sets[0].name]["default"]
    assert receipts_["fields"]["total"]["equal"] >= 1 and receipts_["fields"]["date"]["equal"] >= 1


def test_eval_cache_keys_of_untyped_scenarios_are_unchanged_by_the_new_item_keys() -> None:
    from chatocr.evaluation.runner import _scenario_key
    from chatocr.scenarios import load_scenarios

    receipt = load_scenarios().get("retail_receipt")
    items = next(f for f in _scenario_key(receipt)["fields"] if f["name"] == "items")["items"]
    assert items[0] == {"name": "description", "description": "Item name as printed", "type": "text"}
    typed = receipt.model_copy(
        update={
            "fields": tuple(
                f.model_copy(update={"items": tuple(i.model_copy(update={"required": True}) for i in f.items)})
                for f in receipt.fields
            )
        }
    )
    items = next(f for f in _scenario_key(typed)["fields"] if f["name"] == "items")["items"]
    assert items[0]["required"] is True  # a scenario that uses them is keyed by them


def test_eval_keys_give_a_field_a_type_and_description(tmp_path: Path, ticket_set: Path) -> None:
    model = oracle_model()
    chat = ChatOCR(llm=model, ocr="text", config={"ocr_cache_dir": str(tmp_path / "ocr-cache")})
    sets = [load_dataset(ticket_set, chat.library)]
    evaluator = Evaluator(chat, ocr_source="text", use_cache=False, keys=["ticket_price:amount=票价，只填数字"])
    report = asyncio.run(evaluator.run(sets, resolve_strategies(["default"])))
    assert report["results"][sets[0].name]["default"]["overall"]["exact"] == 1.0
    system = model.calls[0].messages[0].content
    assert "ticket_price（amount" in system and "票价，只填数字" in system


def test_eval_keys_for_fields_no_set_evaluates_are_refused(
    ticket_set: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["eval", str(ticket_set), "--llm", "scripted", "--ocr", "text", "--keys", "nonsense:amount"])
    assert code == 1 and "--keys names fields no set evaluates: nonsense" in capsys.readouterr().err


def test_a_labelled_set_takes_a_scenario_file(tmp_path: Path) -> None:
    from chatocr.scenarios import load_scenarios

    receipt = load_scenarios().get("retail_receipt")
    path = tmp_path / "my_receipt.yaml"
    path.write_text(receipt.model_copy(update={"name": "my_receipt"}).to_yaml(), encoding="utf-8")
    library = load_scenarios()
    dataset = load_dataset(SROIE, library, scenario=str(path))  # eval, export and scenarios test read sets so
    assert dataset.scenario == "my_receipt" and "my_receipt" in library
