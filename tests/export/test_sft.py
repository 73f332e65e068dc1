"""`export_sft`: every format as its tool documents it, the conversation extract sends, the split,
deduplication, the length limit, and results files (machine-checked and corrected by hand)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chatocr.api import ChatOCR
from chatocr.errors import InputError, OutputPathError, UsageError
from chatocr.evaluation.datasets import load_dataset as load_labelled_set
from chatocr.evaluation.runner import Evaluator
from chatocr.evaluation.strategies import resolve_strategies
from chatocr.export import ReviewOptions, SFTOptions, SplitOptions, export_sft
from chatocr.export.formats import FORMATS, check_record, file_name, from_record
from chatocr.fileio import file_sha256
from chatocr.llm.base import ChatSettings
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.messages import Limits, Message, RoleRules
from chatocr.runs.records import record_for
from tests.export.conftest import SROIE, TICKETS, write_ticket_set

ALL_FORMATS = list(FORMATS)


def _records(out: Path, fmt: str, split: str = "train") -> list[dict[str, Any]]:
    path = out / file_name(fmt, split)
    if fmt == "openai":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


# Keys each tool's documentation requires of a record (and of its messages).
DOCUMENTED = {
    "xtuner": ("conversation", ("input", "output")),
    "llamafactory": ("conversations", ("from", "value")),
    "alpaca": ("instruction", ()),
    "openai": ("messages", ("role", "content")),
}


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_each_format_loads_with_datasets_and_has_the_documented_keys(
    fmt: str, sroie_set: Path, ticket_set: Path, chat: ChatOCR, tmp_path: Path
) -> None:
    assert os.environ["HF_DATASETS_OFFLINE"] == "1" and os.environ["HF_HUB_OFFLINE"] == "1"
    from datasets import load_dataset

    out = tmp_path / "out"
    summary = export_sft(
        [sroie_set, ticket_set], out, SFTOptions(formats=[fmt], split=SplitOptions(val_ratio=0.34, seed=1)), chat=chat
    )
    assert summary.records == 6 and summary.train + summary.val == 6 and summary.val >= 1
    for split in ("train", "val"):
        path = out / file_name(fmt, split)
        loaded = load_dataset("json", data_files={split: str(path)}, cache_dir=str(tmp_path / "hf"))[split]
        raw = _records(out, fmt, split)
        assert loaded.num_rows == len(raw) == getattr(summary, split)
        column, message_keys = DOCUMENTED[fmt]
        assert column in loaded.column_names
        for row, record in zip(loaded, raw, strict=True):
            assert check_record(fmt, record) == []
            if message_keys:
                for item in row[column]:
                    assert all(isinstance(item[k], str) for k in message_keys)
            else:
                assert isinstance(row["instruction"], str) and isinstance(row["output"], str)
                assert row["history"] == record["history"]
    if fmt in ("llamafactory", "alpaca"):
        info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
        assert len(info) == 2
        for entry in info.values():
            data = (out / entry["file_name"]).read_bytes()
            assert entry["file_sha1"] == hashlib.sha1(data).hexdigest()
            assert entry["formatting"] == ("sharegpt" if fmt == "llamafactory" else "alpaca")
            first = json.loads(data)[0]
            assert all(column in first for column in entry["columns"].values())
    else:
        assert not (out / "dataset_info.json").exists()


def _recording_model() -> ScriptedChatModel:
    def responder(messages: Sequence[Message], settings: ChatSettings) -> str:
        schema = settings.json_mode if isinstance(settings.json_mode, dict) else {}
        return json.dumps(dict.fromkeys(schema.get("properties", {})))

    return ScriptedChatModel(responder)


def test_exported_conversations_are_what_eval_tuned_sends(sroie_set: Path, ticket_set: Path, tmp_path: Path) -> None:
    """The round trip: each record, read back from every format, is the very message list that
    `chatocr eval --strategy tuned` (the real extraction loop) sends for that document."""
    model = _recording_model()
    chat = ChatOCR(model, "text")
    out = tmp_path / "out"
    export_sft(
        [sroie_set, ticket_set], out, SFTOptions(formats=ALL_FORMATS, split=SplitOptions(val_ratio=0)), chat=chat
    )
    evaluator = Evaluator(chat, ocr_source="text", use_cache=False)
    datasets = [load_labelled_set(p, chat.library) for p in (sroie_set, ticket_set)]
    asyncio.run(evaluator.run(datasets, resolve_strategies(["tuned"])))
    sent = [
        [{"role": m.role, "content": m.content} for m in call.messages]
        for call in model.calls
        if call.messages[-1].kind == "task"
    ]
    assert len(sent) == 6
    for fmt in ALL_FORMATS:
        exported = [from_record(fmt, record) for record in _records(out, fmt)]
        assert len(exported) == 6
        for conversation in exported:
            assert conversation[-1]["role"] == "assistant"
            assert conversation[:-1] in sent, fmt
    assert all(len(messages) == 2 for messages in sent)  # system + task: zero examples


def test_the_answer_is_the_label_as_chatocr_asks_for_it(ticket_set: Path, chat: ChatOCR, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_sft([ticket_set], out, SFTOptions(formats=["openai"], split=SplitOptions(val_ratio=0)), chat=chat)
    answers = {}
    for record, meta in zip(_records(out, "openai"), _manifest(out), strict=True):
        answers[meta["document"]] = json.loads(record["messages"][-1]["content"])
    t1 = answers["cn_train_ticket_tiny/t1"]
    # The scenario asks for the price without "￥...元" and the name without the masked ID number.
    assert t1["ticket_price"] == "55.5" and t1["name"] == "张三"
    assert list(t1) == [
        "ticket_num",
        "starting_station",
        "destination_station",
        "train_num",
        "date",
        "seat_number",
        "ticket_grade",
        "ticket_price",
        "name",
    ]
    assert t1["date"] == "2019年01月02日08:09开"


def test_examples_go_in_as_complete_turns(sroie_set: Path, chat: ChatOCR, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = export_sft(
        [sroie_set],
        out,
        SFTOptions(formats=["alpaca", "xtuner"], examples=2, split=SplitOptions(val_ratio=0)),
        chat=chat,
    )
    assert summary.examples == 2
    for record in _records(out, "alpaca"):
        assert record["history"], "the example turns are the history"
    for record in _records(out, "xtuner"):
        assert len(record["conversation"]) >= 2 and "system" in record["conversation"][0]


def test_duplicates_split_and_length_limit(ticket_set: Path, chat: ChatOCR, tmp_path: Path) -> None:
    many = {
        f"d{i:02d}": (lines, labels) for i, (lines, labels) in enumerate([*TICKETS.values()] * 4)
    }  # 12 documents, 3 distinct contents
    root = write_ticket_set(tmp_path / "cn_train_ticket_many", many)
    out = tmp_path / "a"
    summary = export_sft([root, ticket_set], out, chat=chat)
    assert summary.documents == 15 and summary.records == 3 and summary.duplicates == 12

    # Distinct documents (the number differs), split by document with a seed.
    distinct = {
        f"d{i:02d}": ([f"Q{i:06d}", *lines[1:]], {**labels, "ticket_num": f"Q{i:06d}"})
        for i, (lines, labels) in enumerate([*TICKETS.values()] * 4)
    }
    root2 = write_ticket_set(tmp_path / "cn_train_ticket_distinct", distinct)
    first = export_sft([root2], tmp_path / "b", SFTOptions(split=SplitOptions(val_ratio=0.25, seed=7)), chat=chat)
    export_sft([root2], tmp_path / "c", SFTOptions(split=SplitOptions(val_ratio=0.25, seed=7)), chat=chat)
    export_sft([root2], tmp_path / "d", SFTOptions(split=SplitOptions(val_ratio=0.25, seed=8)), chat=chat)
    assert first.records == 12 and first.val == 3 and first.train == 9
    splits = [{m["document"]: m["split"] for m in _manifest(tmp_path / x)} for x in "bcd"]
    assert splits[0] == splits[1]
    assert splits[0] != splits[2]
    assert first.tokens["records"] == 12 and first.tokens["min"] <= first.tokens["median"] <= first.tokens["max"]

    # Records longer than the limit are dropped and counted.
    tokens = sorted(m["tokens"] for m in _manifest(tmp_path / "b"))
    limit = tokens[5]
    cut = export_sft([root2], tmp_path / "e", SFTOptions(max_tokens=limit), chat=chat)
    assert cut.over_length == sum(t > limit for t in tokens) and cut.records == 12 - cut.over_length
    assert all(m["tokens"] <= limit for m in _manifest(tmp_path / "e"))


def _results_file(tmp_path: Path, answers: dict[str, dict[str, Any]]) -> Path:
    """A results.jsonl written by the real extraction loop over the SROIE fixtures' OCR files,
    with a scripted model answering `answers` (keyed by the OCR file's stem)."""

    def responder(messages: Sequence[Message], settings: ChatSettings) -> str:
        text = messages[-1].content
        for stem, answer in answers.items():
            first = json.loads((SROIE / "ocr" / f"{stem}.json").read_text(encoding="utf-8"))[0]["text"]
            if first in text:
                return json.dumps(answer)
        raise AssertionError("unknown document")

    chat = ChatOCR(ScriptedChatModel(responder), "text", max_steps=1)
    lines = []
    for stem in answers:
        path = SROIE / "ocr" / f"{stem}.json"
        result = chat.extract(path, keys=["company", "date", "total"], scenario="retail_receipt")
        lines.append(json.dumps(record_for((str(path), file_sha256(path)), result), ensure_ascii=False))
    out = tmp_path / "results.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def test_a_results_file_keeps_only_grounded_documents_and_a_corrected_one(chat: ChatOCR, tmp_path: Path) -> None:
    results = _results_file(
        tmp_path,
        {
            "X00016469612": {"company": "BOOK TA .K(TAMAN DAYA) SDN BND", "date": "25/12/2018", "total": "9.00"},
            "X51005433541": {"company": "UNIHAKKA INTERNATIONAL SDN BHD", "date": "01/01/1999", "total": None},
        },
    )
    out = tmp_path / "auto"
    summary = export_sft([results], out, SFTOptions(formats=["openai"], split=SplitOptions(val_ratio=0)), chat=chat)
    assert summary.records == 1
    assert [s["reason"] for s in summary.skipped] == ["not reviewed and date is ungrounded"]
    answer = json.loads(_records(out, "openai")[0]["messages"][-1]["content"])
    assert answer == {"company": "BOOK TA .K(TAMAN DAYA) SDN BND", "date": "25/12/2018", "total": "9.00"}

    # A bar no value reaches: nothing is kept, which is an error saying why, and nothing is written.
    doubted = tmp_path / "doubted.jsonl"
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        row["fields"]["total"]["confidence"] = 0.5
    doubted.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(InputError, match="None of the 2 document"):
        export_sft([doubted], tmp_path / "strict", SFTOptions(review=ReviewOptions(min_confidence=0.9)), chat=chat)
    assert not (tmp_path / "strict").exists()
    with pytest.raises(UsageError, match="between 0 and 1"):
        ReviewOptions(min_confidence=1.01)

    # A person corrects the second line by hand: fixes values, marks it reviewed.
    lines = results.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[1])
    record["values"] = {"company": "UNIHAKKA INTERNATIONAL SDN BHD", "date": "14 MAR 2018", "total": "8.20"}
    record["reviewed"] = True
    lines[1] = json.dumps(record, ensure_ascii=False)
    corrected = tmp_path / "corrected.jsonl"
    corrected.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fixed = export_sft(
        [corrected], tmp_path / "fixed", SFTOptions(formats=["openai"], split=SplitOptions(val_ratio=0)), chat=chat
    )
    assert fixed.records == 2 and fixed.skipped == []
    answers = [json.loads(r["messages"][-1]["content"]) for r in _records(tmp_path / "fixed", "openai")]
    assert {"company": "UNIHAKKA INTERNATIONAL SDN BHD", "date": "14 MAR 2018", "total": "8.20"} in answers


def test_a_changed_or_broken_results_line_is_skipped_not_fatal(chat: ChatOCR, tmp_path: Path) -> None:
    results = _results_file(
        tmp_path,
        {
            "X00016469612": {"company": "BOOK TA .K(TAMAN DAYA) SDN BND", "date": "25/12/2018", "total": "9.00"},
        },
    )
    good = results.read_text(encoding="utf-8")
    moved = json.loads(good)
    moved["input"]["sha256"] = "0" * 64
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(good + "{not json\n" + json.dumps(moved) + "\n", encoding="utf-8")
    summary = export_sft([mixed], tmp_path / "out", SFTOptions(split=SplitOptions(val_ratio=0)), chat=chat)
    assert summary.records == 1
    reasons = sorted(s["reason"] for s in summary.skipped)
    assert reasons == [
        "not a chatocr results line: not valid JSON (Expecting property name enclosed in double quotes at line 1, "
        "column 2).",
        "the file changed since it was extracted",
    ]


def test_no_write_through_a_planted_symlink_and_no_silent_overwrite(
    sroie_set: Path, chat: ChatOCR, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (out / "xtuner_train.json").symlink_to(victim)
    with pytest.raises(OutputPathError, match="symbolic link"):
        export_sft([sroie_set], out, chat=chat)
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (out / "manifest.jsonl").exists()  # refused before anything was written

    (out / "xtuner_train.json").unlink()
    export_sft([sroie_set], out, chat=chat)
    with pytest.raises(InputError, match="--overwrite"):
        export_sft([sroie_set], out, chat=chat)
    export_sft([sroie_set], out, SFTOptions(overwrite=True), chat=chat)
    linked_out = tmp_path / "linked"
    linked_out.symlink_to(out, target_is_directory=True)
    with pytest.raises(OutputPathError, match="symbolic link"):
        export_sft([sroie_set], linked_out, SFTOptions(overwrite=True), chat=chat)


def test_a_missing_source_is_a_typed_error(chat: ChatOCR, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such labelled set or results file"):
        export_sft([tmp_path / "nowhere"], tmp_path / "out", chat=chat)


@pytest.mark.slow
def test_tokens_are_counted_with_the_local_models_own_tokenizer(sroie_set: Path, tmp_path: Path) -> None:
    from chatocr.export.backend import export_chat

    chat = export_chat("local", "text")
    assert chat.model.counter.name.startswith("llama:qwen2.5-coder-1.5b")
    out = tmp_path / "out"
    summary = export_sft([sroie_set], out, SFTOptions(formats=["openai"], split=SplitOptions(val_ratio=0)), chat=chat)
    assert summary.counter == chat.model.counter.name
    for record, meta in zip(_records(out, "openai"), _manifest(out), strict=True):
        messages = record["messages"]
        expected = sum(chat.model.counter.count(m["content"]) + 6 for m in messages)
        chars = sum(len(m["content"]) for m in messages)
        assert meta["tokens"] == expected and meta["tokens"] < chars  # tokens, not characters


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param(Limits(context_window=8192, roles=RoleRules(system="none")), id="no-system-role"),
        pytest.param(
            Limits(max_message_chars=1800, max_input_chars=6000, context_window=8192), id="document-split-in-parts"
        ),
    ],
)
def test_backends_that_reshape_the_conversation_export_it_as_planned(
    limits: Limits, sroie_set: Path, tmp_path: Path
) -> None:
    """A model without a system role (the system text joins the first user turn) and a per-message
    limit that splits the document into acknowledged parts: every format still carries exactly the
    planned messages."""
    # A long receipt: the SROIE fixture with 60 item lines more.
    root = tmp_path / "sroie_long"
    for part in ("labels", "ocr"):
        (root / part).mkdir(parents=True)
    stem = "X00016469612"
    lines = json.loads((sroie_set / "ocr" / f"{stem}.json").read_text(encoding="utf-8"))
    items = [
        {"text": f"ITEM {n:02d} NOTEBOOK A5  1  2.00", "box": [50, 600 + 20 * n, 400, 615 + 20 * n]} for n in range(60)
    ]
    (root / "ocr" / f"{stem}.json").write_text(json.dumps(lines[:-3] + items + lines[-3:]), encoding="utf-8")
    (root / "labels" / f"{stem}.json").write_bytes((sroie_set / "labels" / f"{stem}.json").read_bytes())
    model = _recording_model()
    model.limits = limits
    chat = ChatOCR(model, "text")
    out = tmp_path / "out"
    summary = export_sft(
        [sroie_set, root], out, SFTOptions(formats=ALL_FORMATS, split=SplitOptions(val_ratio=0)), chat=chat
    )
    assert summary.records == 4
    evaluator = Evaluator(chat, ocr_source="text", use_cache=False)
    sets = [load_labelled_set(p, chat.library, scenario="retail_receipt") for p in (sroie_set, root)]
    asyncio.run(evaluator.run(sets, resolve_strategies(["tuned"])))
    sent = [
        [{"role": m.role, "content": m.content} for m in call.messages]
        for call in model.calls
        if call.messages[-1].kind.endswith("task")  # "system+task" when the system text joins it
    ]
    longest = 0
    for fmt in ALL_FORMATS:
        for record in _records(out, fmt):
            assert check_record(fmt, record) == []
            conversation = from_record(fmt, record)
            assert conversation[:-1] in sent
            longest = max(longest, len(conversation))
            if limits.roles.system == "none":
                assert all(m["role"] != "system" for m in conversation)
    if limits.roles.system != "none":
        assert longest > 3  # system, part 1, its acknowledgement, ..., the task with the last part, the answer


def test_one_page_with_two_answers_stays_on_one_side_of_the_split(
    ticket_set: Path, chat: ChatOCR, tmp_path: Path
) -> None:
    """The same OCR under another set name, with a corrected label: both records are kept (their
    answers differ) but never one in train and the other in validation."""
    copy = tmp_path / "cn_train_ticket_corrected"
    for part in ("labels", "ocr"):
        (copy / part).mkdir(parents=True)
        for path in (ticket_set / part).glob("*.json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            if part == "labels":
                data["train_num"] += "X"  # a (pretend) correction: every answer differs
            (copy / part / path.name).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    for seed in range(6):
        out = tmp_path / f"out{seed}"
        summary = export_sft(
            [ticket_set, copy], out, SFTOptions(split=SplitOptions(val_ratio=0.34, seed=seed)), chat=chat
        )
        assert summary.records == 6 and summary.duplicates == 0 and summary.val in (2, 4)
        sides: dict[str, set[str]] = {}
        for meta in _manifest(out):
            sides.setdefault(meta["document"].split("/")[1], set()).add(meta["split"])
        assert all(len(s) == 1 for s in sides.values()), sides
