"""The PP-ChatOCR-style baseline: what PaddleX PP-ChatOCRv3-doc does with a short document.

One stateless user message holding PP-ChatOCRv3's default key-extraction prompt (its
KIE_CommonText task description + output format, no rules and no few-shot demo, assembled as
`text_kie_prompt_v1` does: "...结合上面的例子，下面正式开始：OCR文字：```{text}```关键词列表：[{keys}]。"),
temperature 0.001, no JSON constraint, no dialogue history, no validation, no re-ask. The reply
is read with PP-ChatOCR's own ad-hoc repair (`fix_llm_result_format`: strip fences, the word
"json" and square brackets, json.loads, else a regex over "key": "value" pairs), and its failure
markers ("未知", "None", "", ...) count as no value.

Kept faithful on purpose; two deliberate differences, both in the baseline's favour or neutral:
the document text is chatocr's layout rendering of the same cached OCR (PP-ChatOCR joins its
layout blocks), and the prompt's language follows the scenario (prompts/en is a translation of
the Chinese default; `baseline-zh` always uses the Chinese original).

The template lives in prompts/<language>/ppchatocr_baseline.j2 (user prompt directories
override it, like every template) and is rendered in the same kind of sandbox with strict
undefined; the document is passed as data.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from chatocr.conversation.templates import PROMPT_PATH_ENV
from chatocr.errors import TemplateError
from chatocr.llm.base import ChatModel, ChatReply, ChatSettings
from chatocr.messages import Message
from chatocr.resources import builtin_prompts_dir, user_dirs

__all__ = [
    "BASELINE_TEMPLATE",
    "FAILED_VALUES",
    "BaselineOutcome",
    "baseline_prompt",
    "parse_ppchatocr_reply",
    "run_baseline",
]

BASELINE_TEMPLATE = "ppchatocr_baseline"
# PP-ChatOCRv3's `failed_results`: answers it treats as "not found".
FAILED_VALUES = ("大模型调用失败", "未知", "未找到关键信息", "None", "")
BASELINE_TEMPERATURE = 0.001


@cache
def _environment(directories: tuple[Path, ...]) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(d) for d in directories]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def baseline_prompt(text: str, keys: Sequence[str], language: str, prompt_dirs: Iterable[str | Path] = ()) -> str:
    """The one user message of the baseline."""
    directories = [Path(d).expanduser() for d in prompt_dirs]
    directories += user_dirs(PROMPT_PATH_ENV)
    directories.append(builtin_prompts_dir())
    filename = f"{language}/{BASELINE_TEMPLATE}.j2"
    try:
        template = _environment(tuple(directories)).get_template(filename)
        # PP-ChatOCR formats its Python key list into "[{key_list}]", i.e. "[['a', 'b']]".
        return template.render(text=text, key_list=str(list(keys))).strip()
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"Prompt template {filename} is missing.", hint="Restore prompts/.") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{filename}: {exc}") from exc


def parse_ppchatocr_reply(reply: str) -> dict[str, Any]:
    """PP-ChatOCRv3's `fix_llm_result_format`, ported as is (quirks included)."""
    if not reply:
        return {}
    text = reply
    if "json" in text or "```" in text:
        text = text.replace("```", "").replace("json", "").replace("/n", "")
        text = text.replace("[", "").replace("]", "")
    try:
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError("not an object")
        final: dict[str, Any] = {}
        for key, value in loaded.items():
            if isinstance(value, list):
                if value:
                    final[key] = value[0]
            else:
                final[key] = value
        return final
    except ValueError:
        results = text.replace("\n", "").replace("    ", "").replace("{", "").replace("}", "")
        if not results.endswith('"'):
            results += '"'
        matches = re.findall(r'"(.*?)": "([^"]*)"', results)
        return dict(matches)


class BaselineOutcome:
    """Values (None where PP-ChatOCR would report a failure marker), the call and its reply."""

    def __init__(
        self, values: dict[str, Any], prompt: str, reply: ChatReply | None, error: str | None, seconds: float
    ) -> None:
        self.values = values
        self.prompt = prompt
        self.reply = reply
        self.error = error
        self.seconds = seconds


async def run_baseline(
    model: ChatModel,
    text: str,
    keys: Sequence[str],
    language: str,
    *,
    max_output_tokens: int = 768,
    timeout: float = 300.0,
    prompt_dirs: Iterable[str | Path] = (),
) -> BaselineOutcome:
    started = time.perf_counter()
    prompt = baseline_prompt(text, keys, language, prompt_dirs)
    settings = ChatSettings(temperature=BASELINE_TEMPERATURE, max_output_tokens=max_output_tokens, timeout=timeout)
    try:
        reply = await model.chat([Message("user", prompt, kind="ppchatocr")], settings)
    except Exception as exc:  # PP-ChatOCR answers "大模型调用失败" here; we record the error
        return BaselineOutcome(
            dict.fromkeys(keys), prompt, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started
        )
    parsed = parse_ppchatocr_reply(reply.text)
    values: dict[str, Any] = {}
    for key in keys:
        value = parsed.get(key)
        values[key] = None if value is None or str(value) in FAILED_VALUES else value
    return BaselineOutcome(values, prompt, reply, None, time.perf_counter() - started)
