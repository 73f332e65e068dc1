from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chatocr.evaluation.baseline import baseline_prompt, parse_ppchatocr_reply, run_baseline
from chatocr.llm.base import ChatSettings
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.messages import Message


def test_prompt_is_ppchatocr_v3_default() -> None:
    prompt = baseline_prompt("甲站 G1 乙站\n{{ 7*7 }}", ["ticket_num", "name"], "zh")
    assert prompt.startswith("你现在的任务是从OCR文字识别的结果中提取关键词列表中每一项对应的关键信息。")
    assert '则将value赋值为"未知"' in prompt
    assert "结合上面的例子，下面正式开始：OCR文字：```甲站 G1 乙站\n{{ 7*7 }}```" in prompt  # data, not a template
    assert prompt.endswith("关键词列表：[['ticket_num', 'name']]。")
    english = baseline_prompt("TOTAL 9.00", ["total"], "en")
    assert "OCR text: ```TOTAL 9.00```" in english and english.endswith("[['total']].")


def test_parser_matches_ppchatocr_quirks() -> None:
    assert parse_ppchatocr_reply('```json\n{"total": "9.00", "date": "未知"}\n```') == {"total": "9.00", "date": "未知"}
    assert parse_ppchatocr_reply('{"a": ["x", "y"], "b": []}') == {"a": "x"}  # lists: the first item
    # Broken JSON: the regex fallback over "key": "value" pairs.
    assert parse_ppchatocr_reply('Sure! {"a": "1", "b": "2",, }') == {"a": "1", "b": "2"}
    assert parse_ppchatocr_reply("") == {}
    assert parse_ppchatocr_reply("no idea") == {}


def test_run_baseline_one_stateless_message() -> None:
    seen: list[Sequence[Message]] = []

    def answer(messages: Sequence[Message], settings: ChatSettings) -> str:
        seen.append(messages)
        assert settings.json_mode is None and settings.temperature == 0.001
        return '{"company": "SHOP", "total": "未知"}'

    outcome = asyncio.run(run_baseline(ScriptedChatModel(answer), "SHOP\nTOTAL 9.00", ["company", "total"], "en"))
    assert outcome.values == {"company": "SHOP", "total": None}
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].role == "user"
    assert outcome.error is None and outcome.reply is not None


def test_run_baseline_failure_is_recorded() -> None:
    outcome = asyncio.run(run_baseline(ScriptedChatModel([RuntimeError("boom")]), "x", ["a"], "zh"))
    assert outcome.values == {"a": None} and outcome.error is not None and "boom" in outcome.error
