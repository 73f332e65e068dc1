"""Training-set formats, each as its tool documents it, with the inverse and a key check.

A conversation is a list of {"role", "content"} messages: an optional system message, then
user/assistant turns strictly alternating, ending with the assistant's answer (chatocr's planner
always lays them out so). Every format here carries exactly those texts:

- `xtuner`: XTuner's conversation JSON (docs/en/user_guides/dataset_format.md, XTuner v0.1.x, read at
  commit 6331bf3; the `system` key of a turn as xtuner/dataset/map_fns/template_map_fn.py reads it), the layout
  MM-ChatOcr trained InternLM2-chat-7B on:
  `{"conversation": [{"system": ..., "input": ..., "output": ...}, {"input": ..., "output": ...}]}`.
  Loaded with `load_dataset("json", data_files=...)` and `dataset_map_fn=None`.
- `llamafactory`: LLaMA-Factory's sharegpt format (data/README.md, read at commit
  015ff25):
  `{"conversations": [{"from": "human"|"gpt", "value": ...}], "system": ...}`, human turns in
  odd positions, gpt in even ones; registered in dataset_info.json with `"formatting": "sharegpt"`.
- `alpaca`: LLaMA-Factory's alpaca format (same README): `{"instruction": the last user turn,
  "input": "", "output": the answer, "system": ..., "history": [[user, assistant], ...]}`.
- `openai`: the OpenAI fine-tuning chat format (platform.openai.com/docs/guides/fine-tuning,
  supervised, chat models; `FineTuneChatRequestInput` in the OpenAI API spec 2.3), one
  `{"messages": [{"role", "content"}, ...]}` per line, which is also the format of Baidu Qianfan
  ModelBuilder's Role(user+assistant) SFT data (cloud.baidu.com/doc/qianfan/s/Zmh4su9vy).

Every assistant turn is trained on in every format (the example turns' answers are chatocr's own
correct answers; with the default `--examples 0` there is only the document's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chatocr.errors import ConfigError

__all__ = ["ALIASES", "FORMATS", "check_record", "dataset_info_entry", "file_name", "from_record", "to_record"]

Conversation = list[dict[str, str]]

FORMATS = ("xtuner", "llamafactory", "alpaca", "openai")
ALIASES = {
    "sharegpt": "llamafactory",
    "llamafactory-sharegpt": "llamafactory",
    "llamafactory-alpaca": "alpaca",
    "qianfan": "openai",
}


def resolve_format(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise ConfigError(
            f"Unknown training-set format {name!r}.",
            hint=f"Use one of {', '.join(FORMATS)} (aliases: {', '.join(ALIASES)}).",
        )
    return key


def file_name(fmt: str, split: str) -> str:
    """`xtuner_train.json`, `sharegpt_val.json`, `alpaca_train.json`, `openai_train.jsonl`."""
    stem = {"llamafactory": "sharegpt"}.get(fmt, fmt)
    return f"{stem}_{split}.{'jsonl' if fmt == 'openai' else 'json'}"


def _split(conversation: Conversation) -> tuple[str | None, list[tuple[str, str]]]:
    """(system, [(user, assistant), ...]); raises ValueError for any other layout."""
    system = None
    rest = list(conversation)
    if rest and rest[0]["role"] == "system":
        system = rest.pop(0)["content"]
    if not rest or len(rest) % 2:
        raise ValueError("a training conversation needs user/assistant pairs ending with the answer")
    pairs = []
    for user, assistant in zip(rest[0::2], rest[1::2], strict=True):
        if user["role"] != "user" or assistant["role"] != "assistant":
            raise ValueError(f"roles must alternate user/assistant, got {user['role']}/{assistant['role']}")
        pairs.append((user["content"], assistant["content"]))
    return system, pairs


def to_record(fmt: str, conversation: Conversation) -> dict[str, Any]:
    """One training record of `fmt` from a conversation ending with the assistant's answer."""
    system, pairs = _split(conversation)
    if fmt == "xtuner":
        turns: list[dict[str, str]] = [{"input": u, "output": a} for u, a in pairs]
        if system is not None:
            turns[0] = {"system": system, **turns[0]}
        return {"conversation": turns}
    if fmt == "llamafactory":
        messages = [m for u, a in pairs for m in ({"from": "human", "value": u}, {"from": "gpt", "value": a})]
        return {"conversations": messages, **({"system": system} if system is not None else {})}
    if fmt == "alpaca":
        *history, (instruction, output) = pairs
        record: dict[str, Any] = {"instruction": instruction, "input": "", "output": output}
        if system is not None:
            record["system"] = system
        record["history"] = [[u, a] for u, a in history]
        return record
    if fmt == "openai":
        return {"messages": [{"role": m["role"], "content": m["content"]} for m in conversation]}
    raise ConfigError(f"Unknown training-set format {fmt!r}.")


def from_record(fmt: str, record: dict[str, Any]) -> Conversation:
    """The conversation a record carries (the inverse of `to_record`)."""
    out: Conversation = []
    if fmt == "xtuner":
        for turn in record["conversation"]:
            if turn.get("system"):
                out.append({"role": "system", "content": turn["system"]})
            out += [{"role": "user", "content": turn["input"]}, {"role": "assistant", "content": turn["output"]}]
        return out
    if fmt == "llamafactory":
        if record.get("system") is not None:
            out.append({"role": "system", "content": record["system"]})
        roles = {"human": "user", "gpt": "assistant"}
        return out + [{"role": roles[m["from"]], "content": m["value"]} for m in record["conversations"]]
    if fmt == "alpaca":
        if record.get("system") is not None:
            out.append({"role": "system", "content": record["system"]})
        for user, assistant in record.get("history") or []:
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        instruction = record["instruction"] + (f"\n{record['input']}" if record.get("input") else "")
        return [*out, {"role": "user", "content": instruction}, {"role": "assistant", "content": record["output"]}]
    if fmt == "openai":
        return [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
    raise ConfigError(f"Unknown training-set format {fmt!r}.")


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def check_record(fmt: str, record: Any) -> list[str]:
    """What `record` lacks against its tool's documented keys (empty: it is well-formed)."""
    if not isinstance(record, dict):
        return ["a record must be a JSON object"]
    problems: list[str] = []
    if fmt == "xtuner":
        turns = record.get("conversation")
        if not isinstance(turns, list) or not turns:
            return ["`conversation` must be a non-empty list"]
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict) or not _is_text(turn.get("input")) or not _is_text(turn.get("output")):
                problems.append(f"conversation[{i}] needs string `input` and `output`")
            elif "system" in turn and not _is_text(turn["system"]):
                problems.append(f"conversation[{i}].system must be a string")
    elif fmt == "llamafactory":
        messages = record.get("conversations")
        if not isinstance(messages, list) or not messages:
            return ["`conversations` must be a non-empty list"]
        for i, message in enumerate(messages):
            wanted = ("human", "observation") if i % 2 == 0 else ("gpt", "function_call")
            if not isinstance(message, dict) or message.get("from") not in wanted or not _is_text(message.get("value")):
                problems.append(f"conversations[{i}] needs `from` in {wanted} and a string `value`")
        if "system" in record and not _is_text(record["system"]):
            problems.append("`system` must be a string")
    elif fmt == "alpaca":
        for key in ("instruction", "output"):
            if not _is_text(record.get(key)):
                problems.append(f"`{key}` (required) must be a string")
        for key in ("input", "system"):
            if key in record and not _is_text(record[key]):
                problems.append(f"`{key}` must be a string")
        history = record.get("history", [])
        if not isinstance(history, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(_is_text(x) for x in p) for p in history
        ):
            problems.append("`history` must be a list of [instruction, response] string pairs")
    elif fmt == "openai":
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            return ["`messages` must be a non-empty list"]
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                problems.append(f"messages[{i}].role must be system, user or assistant")
            elif not _is_text(message.get("content")):
                problems.append(f"messages[{i}].content must be a string")
            elif message["role"] == "system" and i:
                problems.append("only the first message may be the system message")
        if messages and isinstance(messages[-1], dict) and messages[-1].get("role") != "assistant":
            problems.append("the last message must be the assistant's (the answer trained on)")
    else:
        problems.append(f"unknown format {fmt!r}")
    return problems


def dataset_info_entry(fmt: str, file: str, sha1: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The dataset_info.json entry LLaMA-Factory reads for one of our files."""
    has_system = any("system" in r for r in records)
    if fmt == "llamafactory":
        columns = {"messages": "conversations", **({"system": "system"} if has_system else {})}
        return {"file_name": file, "file_sha1": sha1, "formatting": "sharegpt", "columns": columns}
    if fmt == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}
        if has_system:
            columns["system"] = "system"
        return {"file_name": file, "file_sha1": sha1, "formatting": "alpaca", "columns": columns}
    raise ConfigError(f"{fmt} has no dataset_info.json entry (only llamafactory and alpaca do).")
