"""OpenAI-compatible services, as data.

The wire format (OpenAI chat completions) is one adapter, `openai_backend.OpenAIChatModel`; a
vendor is only a `Preset`: where it lives, which environment variables hold its key and URL, the
model to use when none is named, what its JSON mode accepts, and its limits. Adding a vendor is
adding a row here (or passing `base_url=` to the `openai` preset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from chatocr.llm.ernie_rules import ernie_limits
from chatocr.messages import Limits, RoleRules

__all__ = ["PRESETS", "Preset", "SchemaStyle"]

# How a service takes a JSON schema:
#   "json_schema": OpenAI's {"type": "json_schema", "json_schema": {"name", "schema"}}
#   "llamacpp":    llama.cpp server's {"type": "json_object", "schema": {...}} (it refuses json_schema)
#   "object":      only {"type": "json_object"}; the schema is dropped (the prompt still describes it)
SchemaStyle = Literal["json_schema", "llamacpp", "object"]


def _window(tokens: int, max_output: int = 1024) -> Callable[[str], Limits]:
    def limits(model: str) -> Limits:
        return Limits(context_window=tokens, reserved_output_tokens=max_output)

    return limits


def _ernie_v2(model: str) -> Limits:
    """ERNIE models behind the OpenAI-format endpoints (Qianfan V2, AI Studio v3): the same input
    limits as V1. A system message is accepted, but we keep ERNIE's alternation so that what the
    planner builds also works on the native API."""
    if not model.lower().startswith("ernie"):
        return Limits(context_window=32768, reserved_output_tokens=1024)
    return replace(ernie_limits(model), roles=RoleRules(system="message", alternate=True, odd_count=True))


@dataclass(frozen=True)
class Preset:
    name: str
    base_url: str
    key_envs: tuple[str, ...]  # tried in order; the first set wins
    base_url_env: str
    default_model: str | None
    limits: Callable[[str], Limits]
    needs_key: bool = True
    schema_style: SchemaStyle = "json_schema"
    # "chars" for ERNIE (limits in characters), else a tiktoken encoding used as the estimate.
    counter: str = "cl100k_base"
    docs: str = ""
    images: bool = True  # whether the service takes image parts (vision models)
    start: str = ""  # for servers the user runs: the command that starts one
    # The service returns `logprobs` on chat completions (OpenAI's `logprobs: true`); where it is
    # not known to, it is not asked (a service that refuses it anyway is asked again without).
    logprobs: bool = False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "openai",
            "https://api.openai.com/v1",
            ("OPENAI_API_KEY",),
            "OPENAI_BASE_URL",
            "gpt-4o-mini",
            _window(128000),
            counter="o200k_base",
            docs="OpenAI, or any compatible URL via base_url=",
            logprobs=True,
        ),
        Preset(
            "qianfan",
            "https://qianfan.baidubce.com/v2",
            ("QIANFAN_API_KEY", "QIANFAN_BEARER_TOKEN"),
            "QIANFAN_V2_BASE_URL",
            "ernie-3.5-8k",
            _ernie_v2,
            schema_style="object",
            counter="chars",
            docs="Baidu Qianfan V2 (bearer API key; optional appid= / QIANFAN_APP_ID)",
        ),
        Preset(
            "aistudio",
            "https://aistudio.baidu.com/llm/lmapi/v3",
            ("AISTUDIO_API_KEY", "AISTUDIO_ACCESS_TOKEN"),
            "AISTUDIO_BASE_URL",
            "ernie-3.5-8k",
            _ernie_v2,
            schema_style="object",
            counter="chars",
            docs="Baidu AI Studio v3 (access token as the API key)",
        ),
        Preset(
            "dashscope",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            ("DASHSCOPE_API_KEY",),
            "DASHSCOPE_BASE_URL",
            "qwen-plus",
            _window(131072),
            schema_style="object",
            docs="Alibaba DashScope compatible mode (Qwen, Qwen-VL)",
            logprobs=True,
        ),
        Preset(
            "deepseek",
            "https://api.deepseek.com/v1",
            ("DEEPSEEK_API_KEY",),
            "DEEPSEEK_BASE_URL",
            "deepseek-chat",
            _window(65536),
            schema_style="object",
            docs="DeepSeek",
            images=False,
            logprobs=True,
        ),
        Preset(
            "moonshot",
            "https://api.moonshot.cn/v1",
            ("MOONSHOT_API_KEY",),
            "MOONSHOT_BASE_URL",
            "moonshot-v1-8k",
            _window(8192),
            schema_style="object",
            docs="Moonshot / Kimi",
        ),
        Preset(
            "ollama",
            "http://localhost:11434/v1",
            ("OLLAMA_API_KEY",),
            "OLLAMA_BASE_URL",
            "qwen2.5:1.5b",
            _window(4096, 512),
            needs_key=False,
            docs="Ollama's OpenAI-compatible endpoint",
            start="ollama serve",
            logprobs=True,
        ),
        Preset(
            "vllm",
            "http://localhost:8000/v1",
            ("VLLM_API_KEY",),
            "VLLM_BASE_URL",
            None,
            _window(8192),
            needs_key=False,
            docs="vLLM (name the served model: vllm:<model>)",
            start="vllm serve MODEL",
            logprobs=True,
        ),
        Preset(
            "llamacpp",
            "http://localhost:8080/v1",
            ("LLAMACPP_API_KEY",),
            "LLAMACPP_BASE_URL",
            "local",
            _window(4096, 512),
            needs_key=False,
            schema_style="llamacpp",
            docs="llama.cpp server or `python -m llama_cpp.server`",
            start="python -m llama_cpp.server --model FILE.gguf",
            logprobs=True,
        ),
    ]
}
