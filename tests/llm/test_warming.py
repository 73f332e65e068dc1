"""`chatocr warm`: every example set of a scenario computed before the first document (fast: which
sets, refusals, backends without state, the command; slow: the real model, across processes)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from chatocr import ChatOCR
from chatocr.cli.main import main
from chatocr.errors import ConfigError
from chatocr.extraction.pipeline import PreparedDocument
from chatocr.extraction.warming import example_sets
from chatocr.llm.local import stable_prefix
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.messages import Message

CHATOCR = Path(sys.executable).with_name("chatocr")


def test_the_sets_are_every_combination_of_max_examples_in_id_order() -> None:
    chat = ChatOCR(llm="scripted", ocr="text", order="stable", max_examples=2)
    scenario = chat.scenario("retail_receipt")
    task, sets = example_sets(chat.pipeline, scenario, "company,total")
    ids = sorted(example.id for example in task.examples)
    assert len(ids) >= 3  # otherwise this test shows nothing
    assert [[e.id for e in chosen] for chosen in sets] == [list(pair) for pair in itertools.combinations(ids, 2)]
    assert [f.name for f in task.spec.fields] == ["company", "total"]  # warmed for the keys asked
    # More room than examples: one set of all of them.
    everything = ChatOCR(llm="scripted", ocr="text", order="stable", max_examples="all")
    all_fields, one = example_sets(everything.pipeline, scenario, None)
    assert [[e.id for e in chosen] for chosen in one] == [sorted(e.id for e in all_fields.examples)]


class KeepsPrefixes(ScriptedChatModel):
    """The scripted backend with a prefix state: records what it is asked to keep."""

    supports_prefix_cache = True

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[list[Message]] = []

    async def keep_prefix(self, messages: Sequence[Message]) -> str:
        self.kept.append(list(messages))
        return "built"


def _kept_text(messages: Sequence[Message]) -> list[str]:
    """What the local backend keeps of a conversation: the stable messages and the task's opening."""
    count = len(stable_prefix(messages))
    return [m.content for m in messages[:count]] + [messages[count].content[: messages[count].stable_head]]


def test_each_set_is_the_prefix_a_document_given_those_examples_gets(tmp_path: Path) -> None:
    model = KeepsPrefixes()
    chat = ChatOCR(llm=model, ocr="text", max_examples=2)  # order auto: stable for a prefix-keeping backend
    keys = "company,date,address,total"
    warmed = chat.warm("retail_receipt", keys)
    assert len(warmed) == len(model.kept) >= 3 and {w.source for w in warmed} == {"built"}
    kept = {w.examples: _kept_text(messages) for w, messages in zip(warmed, model.kept, strict=True)}
    receipt = tmp_path / "receipt.txt"
    receipt.write_text("KEDAI RUNCIT MAJU\nNO 3 JALAN BESAR\n01/02/2023\nTOTAL RM 12.00\n", encoding="utf-8")
    pipeline = chat.pipeline
    document = PreparedDocument.of(chat._run(chat.read(receipt)), "receipt")
    scenario = chat.scenario("retail_receipt")
    plan = pipeline.plan(document, pipeline.build_task(document.text, scenario, pipeline.request(keys, scenario)))
    ids = tuple(example.id for example in plan.report.included)
    assert kept[ids] == _kept_text(plan.messages)  # the document's prefix is one that was warmed
    assert "KEDAI RUNCIT" not in "".join(kept[ids])  # and holds nothing of the document


def test_warming_needs_the_stable_order() -> None:
    chat = ChatOCR(llm=KeepsPrefixes(), ocr="text", order="relevance")
    with pytest.raises(ConfigError, match="fixed order"):
        chat.warm("retail_receipt")
    with pytest.raises(ConfigError, match="scenario name"):
        ChatOCR(llm="scripted", ocr="text").warm("auto")


def test_a_backend_without_prefix_state_warms_nothing_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = ChatOCR(llm="scripted", ocr="text", order="stable")
    warmed = chat.warm("retail_receipt", "company,total")
    assert [w.source for w in warmed] == ["none"]  # one look, not one per set
    assert main(["warm", "retail_receipt", "--llm", "scripted", "--ocr", "text"]) == 0
    assert "no prefix state is kept" in capsys.readouterr().err


def test_an_unknown_scenario_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CHATOCR), "warm", "retail_reciept", "--llm", "scripted", "--ocr", "text"],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode != 0
    assert "retail_receipt" in done.stderr and "Traceback" not in done.stderr


# ---- the real model ------------------------------------------------------------------------------

SCENARIO = textwrap.dedent(
    """
    name: tiny_till
    title: Till slip
    language: en
    description: A till slip with a total.
    instructions: |-
      - total is the amount after the word TOTAL, without the currency.
    fields:
      - name: total
        description: The final total
        type: amount
        required: true
    examples:
    """
)


def _example(n: int) -> str:
    items = "".join(f"      ITEM {n}-{i} NASI GORENG {i}.{n}0\n" for i in range(12))
    text = f"      KEDAI {n} SDN BHD\n{items}      TOTAL RM {n}1.{n}0\n"
    return f'  - id: slip-{n}\n    text: |-\n{text}    answer:\n      total: "{n}1.{n}0"\n'


def _run(args: list[str], cache: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHATOCR_CACHE_DIR": str(cache), "CHATOCR_OCR_CACHE": "0"}
    return subprocess.run(
        [str(CHATOCR), *args, "-c", str(config)], capture_output=True, text=True, env=env, timeout=1800, check=True
    )


@pytest.mark.slow
def test_warmed_sets_serve_a_new_process_and_change_no_answer(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    scenario = tmp_path / "tiny_till.yaml"
    scenario.write_text(SCENARIO + "".join(_example(n) for n in (1, 2, 3)), encoding="utf-8")
    config = tmp_path / "chatocr.toml"
    settings = 'llm = "local"\nmax_examples = 2\n[llm_options]\nthreads = 2\n'
    config.write_text(settings, encoding="utf-8")
    cache = tmp_path / "cache"
    warm = _run(["warm", str(scenario)], cache, config)
    lines = warm.stdout.strip().splitlines()
    assert len(lines) == 4, warm.stdout  # three pairs of three examples, then the summary
    assert lines[0].endswith(")") and ": built (" in lines[0]
    assert all(": extended (" in line for line in lines[1:3])  # each starts from the shared part
    assert lines[-1].startswith("warmed 3 example set(s)")
    assert len(list((cache / "llama-state").glob("*.kv"))) == 3
    again = _run(["warm", str(scenario)], cache, config)
    assert again.stdout.count(": disk (") == 3  # already kept: a lookup each

    slip = tmp_path / "slip.txt"
    slip.write_text("KEDAI MAJU\nITEM TEH O 2.00\nITEM ROTI 3.50\nTOTAL RM 5.50\nCASH 10.00\n", encoding="utf-8")
    ask = ["extract", str(slip), "--scenario", str(scenario), "--ocr", "text", "-f", "json", "--timings"]
    warmed = _run(ask, cache, config)
    assert "examples' prefix" in warmed.stderr and "(disk)" in warmed.stderr, warmed.stderr
    cold_config = tmp_path / "cold.toml"
    cold_config.write_text(settings + "prefix_cache = false\n", encoding="utf-8")
    cold = _run(ask, tmp_path / "cold-cache", cold_config)
    assert "(none)" in cold.stderr, cold.stderr
    assert json.loads(warmed.stdout)["values"] == json.loads(cold.stdout)["values"]


@pytest.mark.slow
def test_warming_that_keeps_nothing_on_disk_says_so_and_fails(tmp_path: Path) -> None:
    """An unwritable prefix-state directory: the sets are built (this process could use them),
    the summary still counts them, and the command says they are not kept and exits 1."""
    pytest.importorskip("llama_cpp")
    scenario = tmp_path / "tiny_till.yaml"
    scenario.write_text(SCENARIO + "".join(_example(n) for n in (1, 2)), encoding="utf-8")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be", encoding="utf-8")
    config = tmp_path / "chatocr.toml"
    settings = 'llm = "local"\nmax_examples = 2\n[llm_options]\nthreads = 2\n'
    config.write_text(settings + f'prefix_cache_dir = "{blocker / "llama-state"}"\n', encoding="utf-8")
    env = {**os.environ, "CHATOCR_CACHE_DIR": str(tmp_path / "cache"), "CHATOCR_OCR_CACHE": "0"}
    done = subprocess.run(
        [str(CHATOCR), "warm", str(scenario), "-c", str(config)], capture_output=True, text=True, env=env, timeout=1800
    )
    assert done.returncode == 1, done.stderr
    assert "warmed 1 example set(s)" in done.stdout and ": built, memory only (" in done.stdout
    assert "cannot write" in done.stderr and "not kept on disk" in done.stderr and "Traceback" not in done.stderr
    assert blocker.read_text(encoding="utf-8").startswith("a file")
