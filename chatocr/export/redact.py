"""Replace personal values (names, ID and ticket numbers) by consistent fakes before export.

For the fields named, every value is replaced wherever it occurs: in the answer, and in the OCR
text the conversation carries (each exact occurrence, plus where chatocr's grounding finds it in
another form, e.g. with a full-width colon). The same real value gets the same fake in the text
and the answer and across every document of one export, so a fine-tuned model still learns to
copy the value from the text to the answer.

A fake keeps the shape of the value (digits stay digits, ASCII letters keep their case, Chinese
characters become other Chinese characters, punctuation and "****" stay), so formats survive.
It is derived from the value with a random key made for each export and never written anywhere:
the fakes cannot be reversed by enumerating names against a known key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from chatocr.extraction.grounding import TextIndex
from chatocr.ocr.layout import LayoutText

__all__ = ["Redactor", "leaves"]

# Common characters of Chinese names: fakes look like names, not like noise.
_CJK_POOL = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰文辉鹏飞"  # noqa: E501
_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def leaves(value: Any) -> Iterator[str]:
    """The non-empty strings inside an answer value (list items and their fields included)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from leaves(item)
    elif value is not None and str(value).strip():
        yield str(value).strip()


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


class Redactor:
    """Consistent fakes for the values of `fields`, for one export run."""

    def __init__(self, fields: Iterable[str], *, key: bytes | None = None) -> None:
        self.fields = tuple(dict.fromkeys(f.strip() for f in fields if f.strip()))
        self._key = key if key is not None else secrets.token_bytes(32)
        self._fakes: dict[str, str] = {}
        self._taken: set[str] = set()
        self._reals: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.fields)

    def register(self, values: Iterable[str]) -> None:
        """Real values of the whole export, known before any fake is made: no fake may contain
        one of them (a fake name that is another passenger's real name would leak it)."""
        self._reals.update(v for v in values if v)

    def fake(self, value: str) -> str:
        """The fake standing for `value` (the same every time in this run)."""
        hit = self._fakes.get(value)
        if hit is not None:
            return hit
        for attempt in range(100):
            stream = hmac.new(self._key, f"{attempt}\0{value}".encode(), hashlib.sha256).digest()
            stream += hashlib.sha256(stream).digest() * (1 + len(value) // 32)
            out = []
            for index, ch in enumerate(value):
                byte = stream[index]
                if ch.isascii() and ch.isdigit():
                    out.append(_DIGITS[byte % 10])
                elif ch.isascii() and ch.isupper():
                    out.append(_UPPER[byte % 26])
                elif ch.isascii() and ch.islower():
                    out.append(_LOWER[byte % 26])
                elif _is_cjk(ch):
                    out.append(_CJK_POOL[byte % len(_CJK_POOL)])
                else:
                    out.append(ch)
            fake = "".join(out)
            # Never the value itself (nor containing it), and never another value's fake.
            clash = value in fake or fake in self._taken or any(real in fake for real in self._reals)
            if not clash:
                self._fakes[value] = fake
                self._taken.add(fake)
                return fake
        raise ValueError(f"cannot make a fake for a value of {len(value)} characters")

    def sensitive(self, answer: Mapping[str, Any]) -> list[str]:
        """The real values to replace in one document (longest first, so a value containing
        another is replaced whole)."""
        values = {v for name in self.fields for v in leaves(answer.get(name)) if any(c.isalnum() for c in v)}
        return sorted(values, key=lambda v: (-len(v), v))

    def answer(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        return {k: (self._replace_value(v) if k in self.fields else v) for k, v in answer.items()}

    def _replace_value(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: self._replace_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._replace_value(v) for v in value]
        if isinstance(value, str) and value.strip() and any(c.isalnum() for c in value):
            stripped = value.strip()
            return value.replace(stripped, self.fake(stripped))
        return value

    def text(self, layout: LayoutText, answer: Mapping[str, Any], kinds: Mapping[str, str] | None = None) -> str:
        """The layout text with every sensitive value of `answer` replaced by its fake."""
        text = layout.text
        kinds = kinds or {}
        spans: list[tuple[int, int, str]] = []
        index = TextIndex(layout)
        for name in self.fields:
            for value in leaves(answer.get(name)):
                if not any(c.isalnum() for c in value):
                    continue
                # Where grounding sees it in another form (normalised, a date, fuzzy).
                match = index.find(value, kinds.get(name, "text"))
                if match is not None and text[match.start : match.end] != value:
                    spans.append((match.start, match.end, self.fake(value)))
        limit = len(text) + 1
        for start, end, fake in sorted(spans, key=lambda s: s[0], reverse=True):
            if end > limit:  # overlaps a span already replaced
                continue
            text = text[:start] + fake + text[end:]
            limit = start
        return self.replace_all(text, self.sensitive(answer))

    def replace_all(self, text: str, values: Sequence[str]) -> str:
        for value in values:
            text = text.replace(value, self.fake(value))
        return text
