"""The local model's settings as one validated value (issue 31: one settings object, not 17 parameters).

    LocalChatModel(options=LocalModelOptions(n_ctx=2048, speculative=0))
    get_chat_model("local", n_ctx=2048, speculative=0)      # the same, as keyword options
    [llm_options] n_ctx = 2048                               # the same, from the config's table

An unknown option is a ConfigError naming the nearest valid one (`temprature` -> did you mean
`temperature`? is not a local option; `n_tread` -> `n_threads`), never a silently ignored keyword.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chatocr.errors import ConfigError, UnknownOptionError
from chatocr.llm.base import ChatSettings, RetryPolicy
from chatocr.messages import Limits
from chatocr.tokens import TokenCounter

__all__ = ["LocalModelOptions", "local_options"]


class LocalModelOptions(BaseModel):
    """Everything that configures the in-process model; each field says why its default is what it is."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    model_path: Path | None = Field(None, description="a .gguf file (else $CHATOCR_LOCAL_MODEL, else the shipped one)")
    n_ctx: int = Field(4096, ge=64, description="context window of one document, in tokens")
    n_threads: int | None = Field(None, ge=1, description="fixed llama.cpp threads (same as `threads`)")
    threads: int | None = Field(None, ge=1, description="fixed llama.cpp threads; unset: the idle cores per call")
    n_batch: int = Field(512, ge=8, description="tokens per llama.cpp decode call while reading a prompt")
    max_output_tokens: int = Field(512, ge=1, description="default answer budget (and the planner's reserve)")
    prefix_cache: bool = Field(True, description="keep the examples' KV state in memory and on disk")
    prefix_cache_mb: int = Field(1024, description="disk cap of kept prefix states (0: memory only)")
    prefix_cache_dir: Path | None = Field(None, description="where prefix states go (default: chatocr's cache)")
    # Draft tokens per step, looked up in the prompt (greedy calls only); 0: off. Three won end to
    # end on 2 cores, idle and beside a busy process (docs/benchmarks.md, bench_speed round 6).
    speculative: int = Field(3, ge=0, description="prompt-lookup drafts per step for a document decoded alone")
    # Flash attention: 2.5% faster prompt evaluation here but slower drafted steps (1.10x a receipt
    # with the default drafts; docs/benchmarks.md, round 6): off.
    flash_attn: bool = Field(False, description="llama.cpp flash attention")
    greedy: bool = Field(True, description="near-zero temperature through chatocr's greedy loop")
    # Documents decoded together in one llama.cpp context (chatocr/llm/batch.py says why 4).
    batch_width: int = Field(4, ge=1, le=16, description="documents decoded together (1: one at a time)")
    # Drafts per sequence while two or more documents are in flight: a drafted token then costs as
    # much as another document's token and half of them are refused (chatocr/llm/batch.py).
    batch_drafts: int = Field(0, ge=0, description="prompt-lookup drafts per step when several documents decode")
    # Prompt tokens of a newly arrived document evaluated per step while others are generating,
    # so their tokens ride along (64-token batches evaluate as fast as 512-token ones here).
    prefill_chunk: int = Field(64, ge=8, description="prompt tokens per step while other documents generate")
    # Read the weights into memory instead of mapping the file: llama.cpp repacks most of them for
    # its AVX2/AVX-512 kernels into a copy of its own, and a mapped file stays resident beside that
    # copy after the repacking read it (RSS 2.23 GB mapped against 1.64 GB read, loaded with the
    # 4-document context; the load as fast; docs/benchmarks.md, "Memory").
    use_mmap: bool = Field(False, description="map the model file (else read it: less memory with repacked weights)")
    limits: Limits | None = Field(None, description="the planner's limits (default: from n_ctx)")
    counter: Any = Field(None, description="a TokenCounter (default: the model's own tokenizer)")
    retry_policy: RetryPolicy | None = None
    default_settings: ChatSettings | None = None

    @field_validator("counter")
    @classmethod
    def _a_counter(cls, value: object) -> object:
        if value is not None and not isinstance(value, TokenCounter):
            raise ValueError("counter must have a name and a count(text) method")
        return value

    @field_validator("model_path", "prefix_cache_dir", mode="before")
    @classmethod
    def _a_path(cls, value: object) -> object:
        return Path(value).expanduser() if isinstance(value, str | os.PathLike) else value

    @property
    def fixed_threads(self) -> int | None:
        """`threads` or `n_threads`; None: each call uses the cores idle at that moment (llm/cpu.py)."""
        return self.threads or self.n_threads


def local_options(options: LocalModelOptions | None, given: dict[str, Any]) -> LocalModelOptions:
    """`options` updated with keyword options, validated; a misspelled or ill-typed option is a
    ConfigError that names the option and the nearest valid one."""
    fields = sorted(LocalModelOptions.model_fields)
    unknown = [name for name in given if name not in fields]
    if unknown:  # said as a misspelled option is said anywhere else
        raise UnknownOptionError.of(
            unknown[0],
            fields,
            hint=f"The LocalChatModel backend's options: {', '.join(fields)}. Sampling settings "
            "(temperature, timeout) are config keys, not llm_options.",
        )
    base = {name: getattr(options, name) for name in fields} if options is not None else {}
    try:
        return LocalModelOptions(**{**base, **given})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"Invalid local model option: {problems}.", hint="See docs/llm.md, the local model") from None
