"""Return the page's own text for a grounded value, not the model's rewrite of it.

A small model sees the right lines and still paraphrases them: "北京南" where the page prints
"北京南站", "2019-06-21" where it prints "21/06/2019", an address without the comma the page has.
Grounding already found where the value sits (chatocr.extraction.grounding.Match); snapping takes
the text at that place instead of the answer:

    span   the matched characters, widened to whole tokens for text fields by at most a third
           of their length ("北京南" inside "北京南站" -> "北京南站"; never a number or date:
           "9.00" inside "9.000" stays "9.00"; nor digits onto digits:
           "16:41:36" inside "2025-11-0316:41:36", two numbers glued by the OCR, stays as it is)
    line   the whole OCR line(s), where what is left of them is only punctuation (a trailing
           comma; "SDN BHD" on the line "SDN BHD." -> the full stop is the page's)
and nothing (the model's answer stays) where there is nothing trustworthy to snap to.

A fuzzy match is snapped only when answer and page differ in punctuation and spaces alone (a
dropped comma): where letters or digits differ, the model may have corrected the OCR ("SDN BND"
read, "SDN BHD" printed), and the page's text would bring the misreading back.

Then the field's `trim` patterns (FieldSpec.trim): OCR lines at the start or end of the matched
text that are never part of the value (a registration number printed above an address, the
telephone line below it) are cut from the value, whether it is the page's text or the model's
answer, and from its evidence; never the value's last line, and only where the value begins (or
ends) with that line's letters and digits. So is a trailing piece of the value's last line that a
pattern matches as a whole (a registration number the OCR read on the name's own line: "ACME SDN
BHD (123456-X)" -> "ACME SDN BHD") or a leading piece of its first line (the mark before an
invoice's capitalised total, read "⑧": "⑧玖佰圆整" -> "玖佰圆整"); a line cut goes with the
brackets around it ("(884512-W)" above an address); nothing is cut from a value that is nothing
but such pieces (a telephone line alone stays whole, and invalid). And, for any text field, a row of
nothing but one Latin letter or digit at the start or end of a value of several lines (a stray mark
or a logo's fragment the OCR boxed: "J" above "TANJONG BOOKS SDN BHD") is cut.

A date field's `trim` patterns cut a piece after the date, glued on by the OCR or after a space
(a receipt's time: "22-04-2617:52" -> "22-04-26", "14 Mar 2018 18:40" -> "14 Mar 2018"), so long
as what is left means the same date; a train ticket's date, which runs to its time, has none.

Last, the field's `complete` patterns (FieldSpec.complete): what the page prints right after the
value, the rest of its row or, when the value ends its row, the next row, is appended when it is
such a piece and nothing more but a piece `trim` cuts ("SUBANG PHARMACY SDN" + "BHD" on the same
row; "KEDAI MAJU" + "5/B (519537-X)" -> "KEDAI MAJU S/B"); a piece at the value's own end that is
one only with the OCR's digit-for-letter misreadings undone is mended ("KEDAI MAJU 5/B" -> "KEDAI
MAJU S/B"). A value that already ends with such a piece is not completed again.

The model's answer is kept beside the page's text (FieldResult.answer) so nothing is lost, and
snapping refuses any text that does not hold most of the answer's characters (a document of noise
never turns an answer into an unrelated line): SNAP_MIN_CONTAINED of the answer's characters must
occur in the page's text, and the two must be SNAP_MIN_SIMILARITY alike (rapidfuzz's normalised
Indel similarity). Both thresholds were chosen on synthetic cases written for the tests
(tests/pipeline/test_snapping.py), not on the evaluation sets.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from rapidfuzz import fuzz

from chatocr.extraction.grounding import Match, TextIndex
from chatocr.extraction.result import Evidence, FieldResult
from chatocr.extraction.validation import check_value, date_readings, normalize_amount
from chatocr.ocr.layout import Span
from chatocr.scenarios.model import FieldSpec, FieldType

__all__ = [
    "SNAP_MIN_CONTAINED",
    "SNAP_MIN_SIMILARITY",
    "Snap",
    "page_text_for",
    "snap_result",
    "snap_value",
]

SNAP_MIN_CONTAINED = 0.8  # share of the answer's characters the page's text must hold
SNAP_MIN_SIMILARITY = 75.0  # rapidfuzz ratio (0-100) between answer and page text, both folded
# Characters that may be left over on a line and still count as "the whole line is the value".
_TRAILING = set(".,;:，。；、")
# Kinds whose value is typed: the page's span is taken as matched, never widened (a number
# widened to its neighbour token would be another number).
_TYPED = {"date", "amount", "number"}
# The OCR lines of characters [start, end) of the layout text, as evidence (the pipeline's).
EvidenceFor = Callable[[int, int], list[Evidence]]


@dataclass(frozen=True)
class Snap:
    text: str  # the page's own text for the value
    start: int  # its character range in the layout text
    end: int
    how: str  # span | line (trim and complete are set on the result, after)


def _fold(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _alnum(text: str) -> str:
    """Only the letters and digits, folded: what is left when punctuation and spaces are ignored."""
    return "".join(ch for ch in _fold(text) if ch.isalnum())


def _contained(answer: str, page: str) -> float:
    """Share of the answer's characters (folded, as a multiset) that occur in the page's text."""
    wanted = Counter(_fold(answer))
    if not wanted:
        return 0.0
    return sum((wanted & Counter(_fold(page))).values()) / sum(wanted.values())


def _widen_to_tokens(text: str, start: int, end: int, floor: int, ceiling: int) -> tuple[int, int]:
    """[start, end) grown to whole tokens (runs of letters and digits), within [floor, ceiling), by
    at most a third of its length: "北京南" -> "北京南站", never a label glued before the value
    ("购买方名称北京某某公司"). Chinese has no spaces between words, so only an English word cut
    at its start is grown backwards. Digits are never grown onto digits: the OCR glues numbers
    whose gap it missed ("2025-11-03 16:41:36" read as "2025-11-0316:41:36"), and the time
    "16:41:36" grown to "0316:41:36" would be another number."""
    room = max(1, -(-(end - start) // 3))
    new_start, new_end = start, end
    if not (start > floor and text[start - 1].isdigit() and text[start].isdigit()):
        while new_start > floor and text[new_start - 1].isascii() and text[new_start - 1].isalnum():
            new_start -= 1
    if not (end < ceiling and text[end - 1].isdigit() and text[end].isdigit()):
        while new_end < ceiling and text[new_end].isalnum():
            new_end += 1
    if (start - new_start) + (new_end - end) > room:
        return start, end
    return new_start, new_end


def page_text_for(index: TextIndex, match: Match, kind: str = "text") -> Snap:
    """The page's text at a match: its span, widened for text fields as the module says."""
    text = index.text
    start, end = match.start, match.end
    how = "span"
    if kind in _TYPED:
        return Snap(text[start:end], start, end, how)
    spans = index.layout.spans_between(start, end)
    if not spans:
        return Snap(text[start:end], start, end, how)
    first, last = spans[0], spans[-1]
    start, end = _widen_to_tokens(text, max(start, first.start), min(end, last.end), first.start, last.end)
    # What is left of the first and last line: nothing but punctuation -> the whole line.
    head, tail = text[first.start : start], text[end : last.end]
    if head.strip() == "" or set(head.strip()) <= _TRAILING:
        if head:
            how = "line"
        start = first.start
    if tail.strip() == "" or set(tail.strip()) <= _TRAILING:
        if tail:
            how = "line"
        end = last.end
    if start == first.start and end == last.end:
        how = "line"
    return Snap(_joined(index, start, end), start, end, how)


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in "WF"


def _joined(index: TextIndex, start: int, end: int) -> str:
    """The OCR lines' text within [start, end) as one line: the layout's gaps between lines (a new
    row, or the spaces that place a cell on its row) become one space, or nothing between two
    Chinese characters ("汉" and "口站" read as two boxes on one row are "汉口站")."""
    out = ""
    for span in index.layout.spans_between(start, end):
        piece = index.text[max(start, span.start) : min(end, span.end)].strip()
        if not piece:
            continue
        if out:
            out += "" if _wide(out[-1]) and _wide(piece[0]) else " "
        out += piece
    return out or index.text[start:end].strip()


def snap_value(answer: str, index: TextIndex, match: Match, kind: str = "text") -> Snap | None:
    """The page's own text for a grounded answer, or None to keep the answer: when the page's text
    is the answer already, or does not hold most of its characters."""
    snap = page_text_for(index, match, kind)
    if not snap.text or snap.text == answer.strip():
        return None
    if kind in _TYPED:
        # A date or number grounded by value means the same date or number. A number is snapped
        # only to a form of the same precision: `9.00` never becomes the page's `9.000` (a quantity).
        if kind != "date" and normalize_amount(snap.text) != normalize_amount(answer):
            return None
        return snap if match.kind in ("date", "numeric", "exact", "normalized") else None
    if match.kind == "fuzzy" and _alnum(answer) != _alnum(snap.text):
        # The answer differs from the page in letters or digits, not only in punctuation and
        # spaces: the model may have corrected an OCR misreading ("SDN BND" on the page, "SDN BHD"
        # in the answer). The page's text would bring the misreading back: keep the answer.
        return None
    if _contained(answer, snap.text) < SNAP_MIN_CONTAINED:
        return None
    if fuzz.ratio(_fold(answer), _fold(snap.text)) < SNAP_MIN_SIMILARITY:
        return None
    return snap


def _strip_piece(value: str, piece: str, *, from_end: bool) -> str | None:
    """`value` without `piece` at its start (or end) and the punctuation and spaces next to it,
    compared by letters and digits only; None when the value does not begin (end) with it."""
    wanted = _alnum(piece)
    text = value[::-1] if from_end else value
    target = wanted[::-1] if from_end else wanted
    seen = ""
    cut = 0
    while cut < len(text) and len(seen) < len(target):
        seen += _alnum(text[cut])
        cut += 1
    if not target or seen != target:
        return None
    # The piece's own punctuation at its inner edge goes with it: ")" of "(884512-W)" above an address.
    rim = ""
    for ch in piece if from_end else piece[::-1]:
        if _alnum(ch):
            break
        rim += ch
    while cut < len(text) and (text[cut].isspace() or text[cut] in _TRAILING or text[cut] in "-|/" or text[cut] in rim):
        cut += 1
    rest = text[cut:]
    return (rest[::-1] if from_end else rest) or None


def _stray_mark(text: str, span: Span) -> bool:
    """A row of nothing but one Latin letter or digit: a stray mark or a logo's fragment, not a part
    of a value of several lines. Not one boxed apart on a row with more ("UNIT 5  A", "SUSHI  Q"),
    nor one Chinese character (it can be a word: "宁" of a station boxed apart)."""
    row_start = text.rfind("\n", 0, span.start) + 1
    row_end = text.find("\n", span.end)
    row = text[row_start : len(text) if row_end < 0 else row_end].strip()
    return len(row) == 1 and row.isascii() and row.isalnum()


def trim_value(field: FieldSpec, value: str, index: TextIndex, start: int, end: int) -> tuple[str, set[str]] | None:
    """`value` (grounded on characters [start, end) of the page) without its edge lines that the
    field's `trim` patterns rule out, or that are stray marks, with the ids of the lines cut; None
    when none is.

    The two lines before and after the match are looked at too: a fuzzy match may have left out
    a line the answer still carries ("884512-W, 12, JALAN ..." matched from "12, JALAN")."""
    layout = index.layout
    inside = layout.spans_between(start, end)
    if not inside:
        return None
    first, last = layout.spans.index(inside[0]), layout.spans.index(inside[-1])
    pieces = [(s, index.text[s.start : s.end].strip(), True) for s in layout.spans[max(0, first - 2) : first]]
    pieces += [(s, index.text[max(start, s.start) : min(end, s.end)].strip(), False) for s in inside]
    pieces += [(s, index.text[s.start : s.end].strip(), True) for s in layout.spans[last + 1 : last + 3]]
    cut: set[str] = set()
    trimmed = value
    front, back = 0, len(pieces)  # pieces[front:back] are what the value still holds
    inside_left = len(inside)
    for from_end in (False, True):
        order = range(back - 1, front - 1, -1) if from_end else range(front, back)
        for i in order:
            span, piece, outside = pieces[i]
            if not outside and inside_left == 1:
                break  # never the value's last line
            # A stray mark only inside the match: one letter outside it would cut the value's own first letter.
            cuttable = field.trims(piece) or (not outside and _stray_mark(index.text, span))
            stripped = _strip_piece(trimmed, piece, from_end=from_end) if cuttable else None
            if stripped is None:
                if outside:
                    continue  # a neighbour the answer does not carry
                break
            trimmed = stripped
            cut.add(span.line_id)
            inside_left -= 0 if outside else 1
            if from_end:
                back = i
            else:
                front = i + 1
    return (trimmed, cut) if cut else None


def trim_piece(field: FieldSpec, value: str, *, from_end: bool) -> str | None:
    """`value` without the longest piece of its own line, at its end (`from_end`) or its start,
    that the field's `trim` patterns rule out; None when there is none; never all of it. A trailing
    piece starts after a space or at a bracket (a registration number the OCR read on the name's
    line: "ACME SDN BHD (123456-X)"); a leading one ends at a space or where Chinese meets other
    characters (the mark an invoice prints before its capitalised total, read "⊗", "ⓧ" or "⑧":
    "⑧玖佰壹拾圆整")."""
    for at in range(1, len(value)) if from_end else range(len(value) - 1, 0, -1):
        before, after = value[at - 1], value[at]
        if from_end:
            edge, kept = value[at:], value[:at].rstrip(" ,;:-|/")
            boundary = before.isspace() or after == "("
        else:
            edge, kept = value[:at], value[at:].lstrip(" ,;:-|/")
            boundary = before.isspace() or after.isspace() or _wide(before) != _wide(after)
        if boundary and _alnum(kept) and field.trims(edge):
            return kept
    return None


def _after(text: str, end: int) -> tuple[int, int]:
    """Where what the page prints right after character `end` sits: the rest of its row, or the
    next row when the row ends there (an empty range when there is nothing), spaces stripped."""

    def stripped(a: int, b: int) -> tuple[int, int]:
        piece = text[a:b]
        a += len(piece) - len(piece.lstrip())
        return a, max(a, b - (len(piece) - len(piece.rstrip())))

    row_end = text.find("\n", end)
    row_end = len(text) if row_end < 0 else row_end
    rest = stripped(end, row_end)
    if rest[0] < rest[1] or row_end >= len(text):
        return rest
    next_end = text.find("\n", row_end + 1)
    return stripped(row_end + 1, len(text) if next_end < 0 else next_end)


def _completion(field: FieldSpec, value: str, index: TextIndex, end: int) -> tuple[str, tuple[int, int] | None] | None:
    """`value` (its page text ending at character `end`) mended or completed by the field's
    `complete` patterns, as the module says, with where an appended piece sits on the page (None
    when the value was mended: it gained no text from the page); None when neither applies."""
    words = value.split()
    if not field.complete or not words:
        return None
    # The value's last 3, 2, 1 words: a misread piece there is mended (never the whole value); a
    # piece read as printed means the value is complete already.
    ends_with_piece = False
    for k in range(min(3, len(words)), 0, -1):
        tail = " ".join(words[-k:])
        read = field.completion(tail)
        if read is None:
            continue
        if read != tail and k < len(words):
            return " ".join([*words[:-k], read]), None
        ends_with_piece = True
        if read == tail:
            break
    if ends_with_piece:
        return None
    start, stop = _after(index.text, end)
    rest = index.text[start:stop]
    head = trim_piece(field, rest, from_end=True) or rest  # a prefix of the rest: what a `trim` pattern leaves
    piece = field.completion(head) if head else None
    if piece is None:
        return None
    glue = "" if _wide(words[-1][-1]) and _wide(piece[0]) else " "
    return " ".join(words) + glue + piece, (start, start + len(head))


def _completed(
    field: FieldSpec, result: FieldResult, index: TextIndex, end: int, evidence_for: EvidenceFor | None
) -> FieldResult:
    done = _completion(field, result.value, index, end) if isinstance(result.value, str) else None
    if done is None:
        return result
    value, at = done
    checked = check_value(field, value)
    if checked.problem or checked.missing:
        return result
    evidence = list(result.evidence)
    if at is not None and evidence_for is not None:  # the appended piece's lines are evidence too
        seen = {e.line_id for e in evidence}
        evidence += [e for e in evidence_for(*at) if e.line_id not in seen]
    answer = result.answer if result.answer is not None else result.value
    return replace(
        result, value=value, normalized=checked.normalized, answer=answer, snap="complete", evidence=evidence
    )


def _finished(
    field: FieldSpec, result: FieldResult, index: TextIndex, start: int, end: int, evidence_for: EvidenceFor | None
) -> FieldResult:
    """The result trimmed, then completed (`start`, `end`: where its text sits on the page)."""
    return _completed(field, _trimmed(field, result, index, start, end), index, end, evidence_for)


def _trimmed(field: FieldSpec, result: FieldResult, index: TextIndex, start: int, end: int) -> FieldResult:
    if field.ruled_out(result.value):
        return result  # nothing but pieces the value never is (a phone line): invalid, not to be cut to a fragment
    if field.type is FieldType.date:
        return _date_trimmed(field, result) if field.trim else result
    # Only text has edge lines to cut (a date's `trim` is the piece after it, above), and a stray mark is a text's.
    cut = trim_value(field, result.value, index, start, end) if field.type is FieldType.text else None
    value, lines = cut if cut is not None else (result.value, set())
    tail = trim_piece(field, value, from_end=True) if field.trim else None
    value = tail if tail is not None else value
    head = trim_piece(field, value, from_end=False) if field.trim else None
    if cut is None and tail is None and head is None:
        return result
    value = head if head is not None else value
    checked = check_value(field, value)
    if checked.problem or checked.missing:
        return result
    evidence = [e for e in result.evidence if e.line_id not in lines] or result.evidence
    answer = result.answer if result.answer is not None else result.value
    return replace(result, value=value, normalized=checked.normalized, answer=answer, snap="trim", evidence=evidence)


def _date_trimmed(field: FieldSpec, result: FieldResult) -> FieldResult:
    """A date's value without a `trim` piece after the date (glued on or not), when what is left
    means the same date."""
    value = str(result.value).strip()
    # Every place the piece could start, earliest first: "12-02-20259:36 AM" is 2025 and 9:36, not 202 and 59:36.
    for at in range(1, len(value)):
        date_part = value[:at].rstrip()
        if field.trims(value[at:].strip()) and result.normalized in date_readings(date_part):
            answer = result.answer if result.answer is not None else result.value
            return replace(result, value=date_part, answer=answer, snap="trim")
    return result


def snap_result(
    field: FieldSpec,
    result: FieldResult,
    index: TextIndex,
    hints: Sequence[str] = (),
    evidence_for: EvidenceFor | None = None,
) -> FieldResult:
    """A grounded text, date or amount field's result with the page's own text as its value and
    the model's answer kept in `answer`; unchanged when there is nothing better to return.

    The evidence stays (the page's text lies within the lines the answer was grounded on), less the
    lines trimmed; a piece appended by `complete` adds its lines when `evidence_for` (the OCR
    lines of a character range, as Evidence) is given."""
    if result.status != "grounded" or field.type in (FieldType.enum, FieldType.list, FieldType.object):
        return result
    if not isinstance(result.value, str):
        return result
    kind = field.type.value
    match = index.find(result.value, kind, hints)
    if match is None:
        return result
    snap = snap_value(result.value, index, match, kind)
    if snap is None:
        return _finished(field, result, index, match.start, match.end, evidence_for)
    checked = check_value(field, snap.text)
    if checked.problem or checked.missing:
        return _finished(field, result, index, match.start, match.end, evidence_for)
    normalized = checked.normalized
    if kind == "date" and result.normalized in date_readings(snap.text):
        # The page's `9/11/26` read as the model read it (11 September on an American receipt),
        # not as the day-first default would.
        normalized = result.normalized
    if kind in _TYPED and normalized != result.normalized:
        return result  # the page's text must mean the same date or number
    snapped = replace(result, value=snap.text, normalized=normalized, answer=result.value, snap=snap.how)
    return _finished(field, snapped, index, snap.start, snap.end, evidence_for)
