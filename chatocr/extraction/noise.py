"""Does a page's OCR text hold any words? A photo of a wall, a floor or a blank sheet in bad light
makes the OCR read a few strings of symbols and stray letters (`=~v/xwz`, `##-q~q-x`, `-1-1-1`).
Asked for a receipt's fields, a small model copies some of them anyway (a company `v/xwz`, a tax
`AZ /X#11`), and grounding finds each on the page, so nothing downstream could tell them from
values. Such a page is told by its text instead, before any model is asked: (almost) nothing on
it is a word.

A word, in any script: two or more CJK characters (or kana, hangul) in a row; two or more letters
of the Latin alphabet with a vowel among them, not one letter repeated (`AZ`, `Tel`, `No`; runs
of consonants like `xwz`, `qvll` and a repeated `II` are what noise reads as); three or more
letters of another alphabet (Cyrillic, Greek, Arabic, Thai...); a number of two or more digits
(`11`, `9.00`, `03-5612`).
A page is noise when words make up less than a third of its characters (spaces aside) and there
are fewer than five of them: a cropped `TOTAL 9.00` is all words, a printed page has dozens.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["PageWords", "page_words"]

# Below both of these a page's text is noise (see above): chosen on invented noise and on short
# crops of real documents (tests/pipeline/test_noise.py), not on the evaluation sets.
_MIN_WORDS = 5
_MIN_WORD_SHARE = 1 / 3

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|\d+(?:[.,:/-]\d+)*|[^\W\d_{_CJK}]+")
_VOWELS = frozenset("aeiouy")


def _is_word(token: str) -> bool:
    if token[0].isdigit():
        return sum(c.isdigit() for c in token) >= 2
    if re.match(rf"[{_CJK}]", token):
        return len(token) >= 2
    if len(token) < 2:
        return False
    bases = [unicodedata.normalize("NFKD", c)[0].lower() for c in token]
    if all("a" <= b <= "z" for b in bases):  # a Latin-script word has a vowel, and is no `II`
        return any(b in _VOWELS for b in bases) and len(set(bases)) > 1
    return len(token) >= 3


@dataclass(frozen=True)
class PageWords:
    """How much of a page's text reads as words (see the module's docstring)."""

    words: int
    word_chars: int
    chars: int  # every character but spaces

    @property
    def noise(self) -> bool:
        return self.chars > 0 and self.words < _MIN_WORDS and self.word_chars < self.chars * _MIN_WORD_SHARE


def page_words(text: str) -> PageWords:
    words = [t for t in _TOKEN.findall(text) if _is_word(t)]
    chars = sum(not c.isspace() for c in text)
    return PageWords(len(words), sum(len(w) for w in words), chars)
