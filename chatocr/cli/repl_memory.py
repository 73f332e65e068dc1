"""The REPL's corrections and memory: `/ocr` with numbered lines, `/fix`, `/remember`, `/forget`.

    /ocr                    the reading-order text, each OCR line numbered: #12 TOTAL   #13 9.90
    /fix total 9.90         a value typed
    /fix address #4 #5 #6   OCR lines 4 to 6 (as /ocr numbers them; also #4-6), joined by spaces
    /fix tax -              the document has no such field
    /remember               this document with its accepted answer (the last /extract, the fixes
                            applied) joins its scenario's memory, masked; the next similar
                            document gets it as an example
    /forget                 takes it out again

A fix belongs to the open document (another /open starts afresh) and stays through later
/extracts, whose table shows it as `corrected`. A fix taken from lines keeps them (id, text, box),
so the remembered answer has its boxes, as one made in the review app does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatocr.cli.suggest import did_you_mean
from chatocr.errors import ConfigError, InputError, MemoryStoreError
from chatocr.extraction.remembered import ExampleMemory
from chatocr.extraction.result import Extraction
from chatocr.fileio import file_sha256
from chatocr.memory import DocumentKey, MemoryExample, example_id, lines_of
from chatocr.ocr.layout import LayoutText
from chatocr.ocr.types import OCRDocument

__all__ = ["Corrections", "Fix", "numbered_text"]

_LINE_REF = re.compile(r"^#(\d+)(?:-#?(\d+))?$")
NONE = "-"  # `/fix FIELD -`: the document has no such field


@dataclass(frozen=True)
class Fix:
    value: Any
    lines: tuple[Mapping[str, Any], ...] = ()  # the OCR lines it was taken from


def line_order(document: OCRDocument, layout: LayoutText) -> list[tuple[str, int]]:
    """(line id, page) of every OCR line in the order the reading-order text shows them."""
    pages = {line.id: page.index for page in document.pages for line in page.lines}
    seen: dict[str, None] = {}
    for span in layout.spans:
        seen.setdefault(span.line_id, None)
    return [(line_id, pages.get(line_id, 0)) for line_id in seen]


def numbered_text(document: OCRDocument, layout: LayoutText) -> str:
    """The reading-order text with `#N ` before each OCR line's first character: rows stay
    together, and `/fix FIELD #N` names a line by that number."""
    numbers = {line_id: n for n, (line_id, _) in enumerate(line_order(document, layout), start=1)}
    text, out, at = layout.text, [], 0
    marked: set[str] = set()
    for span in layout.spans:
        if span.line_id in marked:
            continue
        marked.add(span.line_id)
        out.append(text[at : span.start])
        out.append(f"#{numbers[span.line_id]} ")
        at = span.start
    out.append(text[at:])
    return "".join(out)


@dataclass
class Corrections:
    """The fixes of the open document, and what /remember stores."""

    fixes: dict[str, Fix] = field(default_factory=dict)

    def clear(self) -> None:
        self.fixes.clear()

    def fix(self, result: Extraction | None, document: OCRDocument, layout: LayoutText, arg: str) -> tuple[str, Fix]:
        """Parse `/fix FIELD VALUE|#N...|-` against the last extraction of the open document."""
        name, _, rest = arg.strip().partition(" ")
        rest = rest.strip()
        if not name or not rest:
            raise ConfigError(
                "Usage: /fix FIELD VALUE, /fix FIELD #N [#M ...] (OCR lines as /ocr numbers them), or /fix FIELD -"
            )
        if result is None:
            raise InputError("Nothing to fix yet.", hint="Run /extract first; then /fix a field of its table.")
        if name not in result.fields:
            guess = did_you_mean(name, list(result.fields))
            raise ConfigError(
                f"The extraction has no field {name!r}.{guess}", hint=f"Fields: {', '.join(result.fields)}"
            )
        tokens = rest.split()
        if rest == NONE:
            chosen = Fix(None)
        elif all(_LINE_REF.match(token) for token in tokens):
            chosen = self._from_lines(document, layout, tokens)
        else:
            chosen = Fix(rest)
        self.fixes[name] = chosen
        return name, chosen

    @staticmethod
    def _from_lines(document: OCRDocument, layout: LayoutText, tokens: list[str]) -> Fix:
        order = line_order(document, layout)
        picked: list[tuple[str, int]] = []
        for token in tokens:
            match = _LINE_REF.match(token)
            assert match is not None
            first = int(match.group(1))
            last = int(match.group(2) or first)
            for number in range(first, last + 1):
                if not 1 <= number <= len(order):
                    raise ConfigError(
                        f"There is no OCR line #{number}: the document has {len(order)}.",
                        hint="/ocr shows the lines with their numbers.",
                    )
                picked.append(order[number - 1])
        lines = []
        for line_id, page in picked:
            line = document.line(line_id)
            box = [[round(float(x), 2), round(float(y), 2)] for x, y in line.box]
            lines.append({"id": line.id, "text": line.text, "box": box, "confidence": line.confidence, "page": page})
        return Fix(" ".join(str(line["text"]) for line in lines), tuple(lines))

    def answer(self, result: Extraction) -> dict[str, Any]:
        """The accepted answer: the extraction's values with the fixes applied."""
        return {
            name: self.fixes[name].value if name in self.fixes else item.value for name, item in result.fields.items()
        }

    def remember(
        self, memory: ExampleMemory | None, result: Extraction | None, document: OCRDocument, source: Path
    ) -> tuple[str, MemoryExample, str | None]:
        """The open document into its scenario's memory: (scenario, the example, the eviction message)."""
        if result is None:
            raise InputError("Nothing to remember yet.", hint="Run /extract first (and /fix what is wrong).")
        scenario = _scenario(result.scenario)
        example = MemoryExample.from_document(
            scenario, document.text(), self.answer(result), _key(source), lines=lines_of(document), origin="repl"
        )
        outcome = _memory(memory).store(scenario).add([example])
        return scenario, outcome.added[0], outcome.message

    @staticmethod
    def forget(memory: ExampleMemory | None, scenario: str | None, source: Path) -> str:
        """The open document's example out of `scenario`'s memory (the last extraction's, else the
        REPL's /scenario); returns the scenario."""
        store = _memory(memory).store(_scenario(scenario))
        wanted = example_id(_key(source))
        try:
            store.get(wanted)
        except MemoryStoreError:
            raise MemoryStoreError(
                f"This document is not in the memory of {store.scenario}.", hint="/remember adds it."
            ) from None
        store.remove([wanted])
        return store.scenario


def _memory(memory: ExampleMemory | None) -> ExampleMemory:
    if memory is None:
        raise ConfigError(
            "The memory of reviewed documents is off here (--no-memory, or memory = false in the config).",
            hint="Start the REPL without --no-memory, or with --memory DIR.",
        )
    return memory


def _scenario(name: str | None) -> str:
    if name is None:
        raise InputError(
            "No scenario: the memory keeps examples per scenario.",
            hint="Choose one with /scenario NAME, then /extract.",
        )
    return name


def _key(source: Path) -> DocumentKey:
    """The open document as the memory knows documents: its path and content hash."""
    path = source.expanduser().resolve()
    return DocumentKey(str(path), file_sha256(path))
