"""One request, resolved once (issue 31): what a call asks is decided by one constructor before any
OCR or model call, the pipeline decides none of it again, the sync and async twins take the same
typed options, and every mistake reads the same from Python, the command line, a config file and
the service."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatocr import ChatOCR
from chatocr.config import load_config
from chatocr.errors import ChatOCRError, ConfigError, ScenarioError, SchemaError, UnknownOptionError
from chatocr.extraction import prepared as prepared_module
from chatocr.extraction.request import ExtractionRequest
from chatocr.extraction.result import Extraction
from chatocr.llm import RetryPolicy, ScriptedChatModel
from chatocr.scenarios import load_scenarios
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import FieldSpec, FieldType

RECEIPT = "ACME TRADING SDN BHD\nDATE: 01/02/2024\nTOTAL RM 9.90\nCASH RM 10.00\n"
GOOD = '{"company": "ACME TRADING SDN BHD", "total": "9.90"}'
CHATOCR = Path(sys.executable).with_name("chatocr")


def make(answers: list[str] | None = None, **overrides: Any) -> tuple[ChatOCR, ScriptedChatModel]:
    model = ScriptedChatModel(answers or [GOOD] * 8, retry_policy=RetryPolicy(max_attempts=1))
    return ChatOCR(llm=model, ocr="text", ocr_cache=False, **overrides), model


def test_the_request_holds_what_the_call_asks_resolved() -> None:
    ocr, _ = make(concurrency=3, min_confidence=0.4)
    request = ocr.request("company,total:amount=the final total", "retail_receipt", classify=False)
    assert isinstance(request, ExtractionRequest)
    assert request.scenario is not None and request.scenario.name == "retail_receipt"
    assert request.keys is not None and [getattr(k, "name", k) for k in request.keys] == ["company", "total"]
    total = request.keys[1]
    assert isinstance(total, FieldSpec) and total.type is FieldType.amount and total.description == "the final total"
    assert request.field_names == ["company", "total"]
    assert request.classify is False and request.concurrency == 3 and request.typed.min_confidence == 0.4
    assert request.policy == ocr.pipeline.policy  # the configured plan policy, order resolved for the backend
    auto = ocr.request(None, "auto")
    assert auto.scenario is None and auto.field_names is None and auto.classify is True
    with pytest.raises(AttributeError):
        request.concurrency = 1  # type: ignore[misc]  # frozen


def test_a_scenario_file_is_read_once_for_a_whole_batch(tmp_path: Path) -> None:
    """The scenario is resolved by the request, never again per document (it was four times)."""

    class Counting(ScenarioLibrary):
        resolved = 0

        def resolve(self, spec: Any) -> Any:
            Counting.resolved += 1
            return super().resolve(spec)

    library = load_scenarios()
    counting = Counting()
    for scenario in library:
        counting.add(scenario)
    path = tmp_path / "mine.yaml"
    path.write_text(library.get("retail_receipt").model_copy(update={"name": "mine"}).to_yaml(), encoding="utf-8")
    model = ScriptedChatModel([GOOD] * 3, retry_policy=RetryPolicy(max_attempts=1))
    ocr = ChatOCR(llm=model, ocr="text", ocr_cache=False, scenarios=counting)
    results = list(ocr.extract_many([RECEIPT.encode()] * 3, ["company", "total"], str(path), concurrency=2))
    assert [r.ok for r in results] == [True] * 3
    assert {r.scenario for r in results} == {"mine"}
    assert Counting.resolved == 1


def test_the_documents_language_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = prepared_module.language_of

    def counting(text: str) -> str:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(prepared_module, "language_of", counting)
    ocr, _ = make()
    result = ocr.extract(RECEIPT.encode(), ["company", "total"])  # routed: the router and the task ask
    assert result.ok and len(calls) == 1


def test_sync_and_async_twins_take_the_same_typed_options() -> None:
    pairs = [("extract", "aextract"), ("extract_many", "aextract_many"), ("extract_pages", "aextract_pages")]
    for sync, twin in pairs:
        a, b = inspect.signature(getattr(ChatOCR, sync)), inspect.signature(getattr(ChatOCR, twin))
        assert a.parameters == b.parameters, sync
        assert "options" in a.parameters and a.parameters["options"].kind is inspect.Parameter.VAR_KEYWORD


@pytest.mark.parametrize(
    ("call", "wrong", "right"),
    [
        ("extract", "min_confidance", "min_confidence"),
        ("extract", "shcema", "schema"),
        ("extract", "raise_error", "raise_errors"),
        ("extract_many", "concurency", "concurrency"),
        ("extract_pages", "pagse", "pages"),
        ("request", "per_pages", "per_page"),
    ],
)
def test_a_misspelled_option_names_the_nearest_before_any_work(call: str, wrong: str, right: str) -> None:
    ocr, model = make()
    method = getattr(ocr, call)
    args = () if call == "request" else (["missing.png"] if call == "extract_many" else "missing.png",)
    with pytest.raises(UnknownOptionError) as caught:
        result = method(*args, **{wrong: 1})
        if call == "extract_many":
            list(result)
    assert caught.value.message == f"Unknown option {wrong!r}: did you mean {right!r}?"
    assert isinstance(caught.value, TypeError)  # as Python's own error for a bad keyword
    assert model.calls == []


def test_the_async_twin_refuses_a_misspelled_option_alike() -> None:
    ocr, _ = make()

    async def run() -> None:
        await ocr.aextract(RECEIPT.encode(), ["total"], min_confidance=0.5)  # type: ignore[call-arg]

    with pytest.raises(UnknownOptionError, match="did you mean 'min_confidence'"):
        asyncio.run(run())


def test_a_request_and_its_options_together_are_refused() -> None:
    ocr, _ = make()
    request = ocr.request(["total"])
    with pytest.raises(ConfigError, match="either request= or the keys"):
        ocr.extract(RECEIPT.encode(), ["company"], request=request)
    assert ocr.extract(RECEIPT.encode(), request=request).fields.keys() == {"total"}


def test_a_failure_carries_its_partial_result_as_a_declared_attribute() -> None:
    broken = ChatOCR(llm=ScriptedChatModel([RuntimeError("boom")]), ocr="text", ocr_cache=False)
    with pytest.raises(ChatOCRError) as caught:
        broken.extract(RECEIPT.encode(), ["total"])
    partial = caught.value.result
    assert isinstance(partial, Extraction) and partial.error is not None and len(partial.calls) == 1
    assert partial.error["type"] == "RuntimeError" and "bug in chatocr" in partial.error["hint"]
    assert caught.value.message == "RuntimeError: boom"
    failed = Extraction.failed("x.png", OSError("first line\nsecond line"), hint="look at the worker")
    assert failed.error == {"type": "OSError", "message": "first line", "hint": "look at the worker"}


# -- the same words on every path -------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    document = tmp_path / "receipt.txt"
    document.write_text(RECEIPT, encoding="utf-8")
    env = {"CHATOCR_SCRIPTED_ANSWERS": json.dumps({"answers": [GOOD]}), "HOME": str(tmp_path), "PATH": "/usr/bin"}
    command = [str(CHATOCR), "extract", str(document), "--llm", "scripted", "--ocr", "text", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


BAD_REQUESTS: list[tuple[str, dict[str, Any], list[str], type[ChatOCRError]]] = [
    ("unknown key type", {"keys": "total:money"}, ["--keys", "total:money"], ConfigError),
    ("missing scenario file", {"scenario": "nowhere/mine.yaml"}, ["--scenario", "nowhere/mine.yaml"], ScenarioError),
    ("concurrency 0", {"concurrency": 0}, ["--concurrency", "0"], ConfigError),
    ("min_confidence 2", {"min_confidence": 2.0}, ["--min-confidence", "2"], ConfigError),
]


@pytest.mark.parametrize(("what", "options", "flags", "kind"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_a_bad_request_reads_the_same_from_python_and_the_command_line(
    tmp_path: Path, what: str, options: dict[str, Any], flags: list[str], kind: type[ChatOCRError]
) -> None:
    ocr, model = make()
    keys = options.pop("keys", ["total"])
    scenario = options.pop("scenario", None)
    with pytest.raises(kind) as caught:
        list(ocr.extract_many([RECEIPT.encode()], keys, scenario, **options))
    assert model.calls == []
    done = _cli(tmp_path, *flags)
    assert done.returncode in (1, 2), done.stderr
    assert f"error: {caught.value.message}\n  hint: {caught.value.hint}" in done.stderr, done.stderr


def test_a_schema_that_cannot_be_mapped_reads_the_same_everywhere(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"nothing": {"type": "null"}}}
    ocr, _ = make()
    with pytest.raises(SchemaError) as caught:
        ocr.extract(RECEIPT.encode(), schema=schema)
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    done = _cli(tmp_path, "--schema", str(path))
    assert done.returncode == 1 and f"error: {caught.value.message}" in done.stderr, done.stderr


def test_a_misspelled_setting_in_a_config_file_names_the_nearest(tmp_path: Path) -> None:
    config = tmp_path / "chatocr.toml"
    config.write_text("concurency = 2\n", encoding="utf-8")
    with pytest.raises(UnknownOptionError) as caught:
        load_config(path=config, use_files=False, use_env=False)
    assert caught.value.message == f"Unknown option 'concurency': did you mean 'concurrency'? (in {config})"
    config.write_text("concurrency = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as zero:
        load_config(path=config, use_files=False, use_env=False)
    ocr, _ = make()
    with pytest.raises(ConfigError) as same:
        ocr.request(None, None, concurrency=0)
    assert zero.value.message == f"{same.value.message} (in {config})" and zero.value.hint == same.value.hint


def test_a_misspelled_flag_is_said_as_a_misspelled_option(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--concurency", "2")
    assert done.returncode == 2
    assert "Unknown option '--concurency': did you mean '--concurrency'?" in done.stderr
