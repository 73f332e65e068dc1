"""Snapping: a grounded value is returned as the page's own text, the model's answer kept beside.

The cases are written for these tests (synthetic receipts and tickets); they are also what the
thresholds in chatocr/extraction/snapping.py were chosen on.
"""

from __future__ import annotations

import pytest

from chatocr.extraction.extractor import evidence_at
from chatocr.extraction.grounding import TextIndex
from chatocr.extraction.result import Evidence, FieldResult
from chatocr.extraction.snapping import page_text_for, snap_result, snap_value
from chatocr.ocr.types import OCRDocument, OCRLine, Page
from chatocr.scenarios import FieldSpec, load_scenarios
from chatocr.scenarios.model import FieldType


def document(*rows: str | tuple[str, ...]) -> OCRDocument:
    """One OCR line per cell; cells of a row side by side, rows 40 px apart."""
    lines = []
    for r, row in enumerate(rows):
        cells = (row,) if isinstance(row, str) else row
        x = 10.0
        for cell in cells:
            width = 12.0 * len(cell)
            y = 10.0 + 40 * r
            box = ((x, y), (x + width, y), (x + width, y + 24), (x, y + 24))
            lines.append(OCRLine(f"p0-l{len(lines)}", cell, box, 0.95))
            x += width + 120
    return OCRDocument((Page(0, 1000, 40 * len(rows) + 40, tuple(lines)),), "test", "test", "test.png", 0.0)


def index_of(*rows: str | tuple[str, ...]) -> TextIndex:
    return TextIndex(document(*rows).layout())


def snapped(index: TextIndex, value: str, kind: str = "text") -> str | None:
    match = index.find(value, kind)
    assert match is not None, f"{value!r} should be grounded"
    snap = snap_value(value, index, match, kind)
    return None if snap is None else snap.text


RECEIPT = index_of(
    "BOOK CORNER (TAMAN DAYA)",
    "SDN BHD.",
    "NO. 5, JALAN BESAR 3,",
    "81100 JOHOR BAHRU, JOHOR",
    ("DATE:", "21/06/2019"),
    ("TOTAL", "RM 25,000.00"),
)
TICKET = index_of(("北京南站", "G123", "上海虹桥站"), "2019年06月21日 08:00开")


@pytest.mark.parametrize(
    ("index", "answer", "kind", "page"),
    [
        (TICKET, "北京南", "text", "北京南站"),  # the station without 站
        (TICKET, "上海虹桥", "text", "上海虹桥站"),
        (RECEIPT, "21-06-2019", "date", "21/06/2019"),  # the model's form of the page's date
        (RECEIPT, "2019-06-21", "date", "21/06/2019"),
        (RECEIPT, "25000.00", "amount", "25,000.00"),
        (RECEIPT, "book corner (taman daya)", "text", "BOOK CORNER (TAMAN DAYA)"),  # normalized match
        (RECEIPT, "SDN BHD", "text", "SDN BHD."),  # what is left of the line is only punctuation
        # A comma dropped (fuzzy match over three lines): the page's address, commas and all.
        (
            RECEIPT,
            "NO. 5 JALAN BESAR 3 81100 JOHOR BAHRU JOHOR",
            "text",
            "NO. 5, JALAN BESAR 3, 81100 JOHOR BAHRU, JOHOR",
        ),
    ],
)
def test_answers_snap_to_the_pages_own_text(index: TextIndex, answer: str, kind: str, page: str) -> None:
    assert snapped(index, answer, kind) == page


def test_lines_on_one_row_or_several_are_joined_as_text_is_written() -> None:
    # "汉" and "口站" read as two boxes on one row: the layout puts spaces between them.
    split = index_of(("汉", "口站"), "LOT 7,", "JALAN MERDEKA")
    match = split.find("汉口站")
    assert match is not None and page_text_for(split, match).text == "汉口站"  # no space inside
    assert snapped(split, "汉口站") is None  # so the answer is the page's text already
    assert snapped(split, "lot 7, jalan merdeka") == "LOT 7, JALAN MERDEKA"


@pytest.mark.parametrize(
    ("index", "answer", "kind"),
    [
        (RECEIPT, "BOOK CORNER (TAMAN DAYA)", "text"),  # already the page's text
        (RECEIPT, "21/06/2019", "date"),
        (TICKET, "G123", "text"),
    ],
)
def test_an_answer_that_is_the_pages_text_is_kept(index: TextIndex, answer: str, kind: str) -> None:
    assert snapped(index, answer, kind) is None


def test_snapping_never_takes_a_line_without_most_of_the_answers_characters() -> None:
    # "北京" is a whole token's small part here: the token holds many other characters.
    index = index_of("购买方名称北京某某科技有限公司", "G1234北京")
    assert snapped(index, "北京某某科技有限公司") is None  # the label glued on would be added
    assert snapped(index, "北京") is None  # "G1234北京" is mostly something else


def test_an_ocr_misreading_the_model_corrected_is_not_brought_back() -> None:
    index = index_of("BOOK TA .K(TAMAN DAYA) SDN BND", "NO.55, JALAN PERDANA")
    assert snapped(index, "BOOK TA .K(TAMAN DAYA) SDN BHD") is None  # fuzzy, letters differ
    assert snapped(index, "NO.53 JALAN PERDANA") is None  # a digit differs
    assert snapped(index, "NO.55 JALAN PERDANA") == "NO.55, JALAN PERDANA"  # only the comma differs


def test_a_number_inside_a_longer_number_is_not_widened() -> None:
    index = index_of(("TOTAL", "9.000"))
    match = index.find("9.00", "amount")
    assert match is not None
    snap = snap_value("9.00", index, match, "amount")
    assert snap is None or snap.text != "9.000"


def test_digits_glued_by_the_ocr_are_not_grown_onto_a_text_value() -> None:
    # A receipt's "2025-11-03 16:41:36" read without its gap: the time is a text field, and the
    # date's last digits glued before it are another number, as are digits glued after a code.
    index = index_of("2025-11-0316:41:36", "UNIT 12A", "单号：P88251073650")
    assert snapped(index, "16:41:36") is None
    assert snapped(index, "P8825107365") is None
    # A letter after the digits still completes the token, as before.
    assert snapped(index, "UNIT 12") == "UNIT 12A"


def test_noise_document_keeps_the_answer_and_the_result_records_both() -> None:
    noise = index_of("~~ ,. :; ||", "#%&* ^^ '' \"\"", "lIl1 oO0 ..")
    field = FieldSpec(name="company")
    answer = FieldResult("company", "ACME SDN BHD", "ACME SDN BHD", status="ungrounded")
    assert snap_result(field, answer, noise) is answer  # ungrounded: nothing to snap to
    grounded = FieldResult("company", "lIl1", "lIl1", status="grounded", match="exact", match_score=1.0)
    assert snap_result(field, grounded, noise) is grounded  # already the page's text


def test_snap_result_keeps_the_models_answer_and_renormalises() -> None:
    field = FieldSpec(name="date", type=FieldType.date)
    result = FieldResult("date", "2019-06-21", "2019-06-21", status="grounded", match="date", match_score=1.0)
    out = snap_result(field, result, RECEIPT)
    assert (out.value, out.answer, out.normalized, out.snap) == ("21/06/2019", "2019-06-21", "2019-06-21", "span")
    station = FieldSpec(name="starting_station")
    result = FieldResult("starting_station", "北京南", "北京南", status="grounded", match="exact", match_score=0.9)
    out = snap_result(station, result, TICKET)
    assert (out.value, out.answer, out.normalized) == ("北京南站", "北京南", "北京南站")


def test_a_month_first_date_snaps_to_the_page_and_keeps_the_models_reading() -> None:
    # An American receipt prints 11 September 2026 as `9/11/26`, here with the time glued on by
    # the OCR; the model answers it as 2026-09-11, which is one of the page's two readings.
    index = index_of("COPPER KETTLE BAKERY", "9/11/2611:43   Trans #97984", ("TOTAL", "$37.66"))
    field = FieldSpec(name="date", type=FieldType.date)
    result = FieldResult("date", "2026-09-11", "2026-09-11", status="grounded", match="date", match_score=1.0)
    out = snap_result(field, result, index)
    assert (out.value, out.answer, out.normalized) == ("9/11/26", "2026-09-11", "2026-09-11")
    # Day first, as the default reads it, snaps to the same text.
    result = FieldResult("date", "2026-11-09", "2026-11-09", status="grounded", match="date", match_score=1.0)
    assert (snap_result(field, result, index).value, snap_result(field, result, index).normalized) == (
        "9/11/26",
        "2026-11-09",
    )
    # A date the page's text cannot mean is not grounded there.
    assert index.find("2026-10-09", "date") is None
    # A month by name between hyphens (Singapore, the UK) is found and returned as printed.
    index = index_of("RED LANTERN NOODLE HOUSE", ("Date: 13-Jan-2026", "Time: 12:30"))
    result = FieldResult("date", "2026-01-13", "2026-01-13", status="grounded", match="date", match_score=1.0)
    out = snap_result(field, result, index)
    assert (out.value, out.normalized) == ("13-Jan-2026", "2026-01-13")


def test_a_receipts_date_value_ends_with_its_date() -> None:
    # The model copies the OCR's glued date and time, or a date with its time: a receipt's date
    # field trims the time (its own field), a train ticket's date runs to its time.
    field = next(f for f in load_scenarios().get("retail_receipt").fields if f.name == "date")
    index = index_of("22-04-2617:52        Trans #7731", "12-02-20259:36 AM", ("Date: 14 Mar 2018 18:40", "TOTAL 9.00"))
    for answer, iso, expected in [
        ("22-04-2617:52", "2026-04-22", "22-04-26"),
        ("12-02-20259:36 AM", "2025-02-12", "12-02-2025"),
        ("14 Mar 2018 18:40", "2018-03-14", "14 Mar 2018"),
    ]:
        result = FieldResult("date", answer, iso, status="grounded", match="exact", match_score=1.0)
        out = snap_result(field, result, index)
        assert (out.value, out.normalized, out.answer, out.snap) == (expected, iso, answer, "trim")
    # Nothing to cut: no time, or a suffix that is not one.
    for answer, iso in [("14 Mar 2018", "2018-03-14"), ("2019年05月12日08:35开", "2019-05-12")]:
        result = FieldResult("date", answer, iso, status="grounded", match="exact", match_score=1.0)
        assert snap_result(field, result, index_of(answer)).value == answer
    ticket = next(f for f in load_scenarios().get("train_ticket").fields if f.name == "date")
    result = FieldResult("date", "2019年05月12日08:35", "2019-05-12", status="grounded", match="exact", match_score=1.0)
    assert snap_result(ticket, result, index_of("2019年05月12日08:35")).value == "2019年05月12日08:35"
    assert snap_result(FieldSpec(name="date", type=FieldType.date), result, index_of("2019年05月12日08:35")) is result


def test_enum_and_list_fields_are_not_snapped() -> None:
    grade = FieldSpec(name="grade", type=FieldType.enum, choices=("二等座", "一等座"))
    result = FieldResult("grade", "二等座", "二等座", status="grounded", match="exact", match_score=0.9)
    assert snap_result(grade, result, index_of("二等座位")) is result


# A receipt of my own: a registration number printed above the address, phone and tax lines below.
SHOP = index_of(
    "PERNIAGAAN MAJU JAYA SDN BHD",
    "884512-W",
    "12, JALAN KENANGA 4,",
    "43000 KAJANG, SELANGOR",
    "TEL: 03-8736 1122",
    "GST ID: 000123456789",
)
ADDRESS = FieldSpec(
    name="address",
    trim=(r"\(?\d{5,8}\s*-?\s*[a-z]\)?", r"(tel|fax|phone)\b.*", r"(gst|sst|co\.?\s*reg)\b.*"),
)


def grounded(index: TextIndex, name: str, value: str) -> FieldResult:
    match = index.find(value, "text")
    assert match is not None, f"{value!r} should be grounded"
    lines = index.layout.line_ids(match.start, match.end)
    evidence = [Evidence(i, "", [[0.0, 0.0]] * 4, 0.9, 0) for i in lines]
    return FieldResult(name, value, value, status="grounded", match=match.kind, match_score=1.0, evidence=evidence)


@pytest.mark.parametrize(
    "answer",
    [
        "884512-W 12, JALAN KENANGA 4, 43000 KAJANG, SELANGOR",  # the page's text, lines joined
        "884512-W, 12, JALAN KENANGA 4, 43000 KAJANG, SELANGOR TEL: 03-8736 1122",
        "12, JALAN KENANGA 4, 43000 KAJANG, SELANGOR TEL: 03-8736 1122 GST ID: 000123456789",
        "884512-W 12 JALAN KENANGA 4 43000 KAJANG SELANGOR",  # commas dropped: snapped, then trimmed
    ],
)
def test_edge_lines_the_field_trims_are_cut_from_the_value_and_its_evidence(answer: str) -> None:
    out = snap_result(ADDRESS, grounded(SHOP, "address", answer), SHOP)
    assert out.value == "12, JALAN KENANGA 4, 43000 KAJANG, SELANGOR"
    assert (out.answer, out.snap, out.normalized) == (answer, "trim", out.value)
    assert [e.line_id for e in out.evidence] == ["p0-l2", "p0-l3"]


def test_trimming_keeps_what_the_model_corrected_and_lines_inside_the_value() -> None:
    page = index_of("884512-W", "12, JALAN KENANGA 4,", "43000 KAJANG,S SELANGOR")
    # The model dropped the OCR's stray "S": the answer stays the model's, only the number is cut.
    out = snap_result(ADDRESS, grounded(page, "address", "884512-W 12, JALAN KENANGA 4, 43000 KAJANG, SELANGOR"), page)
    assert out.value == "12, JALAN KENANGA 4, 43000 KAJANG, SELANGOR"
    # A line the patterns match inside the value, or the value's only line, stays.
    inside = index_of("LOT 5, TEL: 12 BLOCK", "12, JALAN KENANGA 4")
    result = grounded(inside, "address", "12, JALAN KENANGA 4")
    assert snap_result(ADDRESS, result, inside) is result
    alone = grounded(SHOP, "address", "884512-W")
    assert snap_result(ADDRESS, alone, SHOP) is alone
    # A number printed in brackets goes with its brackets, before the value or after it.
    bracketed = index_of("(884512-W)", "12, JALAN KENANGA 4,", "43000 KAJANG", "(797887-W)")
    for answer in ("(884512-W) 12, JALAN KENANGA 4, 43000 KAJANG", "12, JALAN KENANGA 4, 43000 KAJANG (797887-W)"):
        out = snap_result(ADDRESS, grounded(bracketed, "address", answer), bracketed)
        assert out.value == "12, JALAN KENANGA 4, 43000 KAJANG"
    # No `trim` patterns: nothing is cut.
    plain = grounded(SHOP, "address", "884512-W 12, JALAN KENANGA 4, 43000 KAJANG, SELANGOR")
    assert snap_result(FieldSpec(name="address"), plain, SHOP).value == plain.value


def test_trim_patterns_are_checked_like_never() -> None:
    with pytest.raises(ValueError, match="`trim` pattern"):
        FieldSpec(name="address", trim=("(",))
    with pytest.raises(ValueError, match="text and date fields only"):
        FieldSpec(name="total", type=FieldType.amount, trim=("tel.*",))


@pytest.mark.parametrize(
    ("scenario", "line", "trimmed"),
    [
        ("retail_receipt", "(201801027431)", True),
        ("retail_receipt", "884512-W", True),
        ("retail_receipt", "Co Reg No:797887-W GST No:001507647488", True),
        ("retail_receipt", "GST ID: 000123456789", True),
        ("retail_receipt", "TEL: 03-8736 1122", True),
        ("retail_receipt", "Fax 03 8736 1123", True),
        ("retail_receipt", "www.majujaya.com.my", True),
        # address lines stay: a postcode alone, a lot number, a street that starts like a label
        ("retail_receipt", "47500", False),
        ("retail_receipt", "LOT 12, JALAN SS 15/4D,", False),
        ("retail_receipt", "TAMAN TELUK PULAI", False),
        ("retail_receipt", "Registry Road 5", False),
        ("retail_receipt", "Tel Aviv Road 5", False),
        # a whole answer that merely begins with such a line is not one (it is cut, not ruled out)
        ("retail_receipt", "TEL: 03-8736 1122 12, JALAN KENANGA 4", False),
        ("retail_receipt", "Co Reg No:797887-W GST No:001507647488 No. 89&91, Jalan Utama", False),
        ("retail_receipt", "TEL: 03-8736 1122 FAX: 03-8736 1123", True),
        ("cn_receipt", "电话：021-5566 7788", True),
        ("cn_receipt", "纳税人识别号：91310000MA1FL0XX0X", True),
        ("cn_receipt", "上海市浦东新区张杨路500号", False),
        ("cn_receipt", "200120", False),
        ("cn_receipt", "电话：021-5566 7788 上海市浦东新区张杨路500号", False),
    ],
)
def test_the_built_in_receipts_trim_identifiers_and_contacts_never_address_lines(
    scenario: str, line: str, trimmed: bool
) -> None:
    address = next(f for f in load_scenarios().get(scenario).fields if f.name == "address")
    assert address.trims(line) is trimmed


@pytest.mark.parametrize(
    ("field", "line", "value"),
    [
        # a registration number or a contact the OCR read on the value's own line is cut ...
        ("company", "ACME TRADING SDN BHD (123456-X)", "ACME TRADING SDN BHD"),
        ("company", "KEDAI MAJU S/B(587969-U)", "KEDAI MAJU S/B"),
        ("company", "SRI MEWAH BAKERIES (KL) SDN BHD (139386 X)", "SRI MEWAH BAKERIES (KL) SDN BHD"),
        ("address", "12, JALAN KENANGA 4, 43000 KAJANG TEL: 03-8736 1122", "12, JALAN KENANGA 4, 43000 KAJANG"),
        # ... never a bracket that is part of the name, a street that starts like a label, the whole value
        ("company", "SRI MEWAH BAKERIES (KL) SDN BHD", "SRI MEWAH BAKERIES (KL) SDN BHD"),
        ("address", "5 Tel Aviv Road 43000 KAJANG", "5 Tel Aviv Road 43000 KAJANG"),
        ("company", "(123456-X)", "(123456-X)"),
        # nor a piece of a line that is nothing but such pieces: invalid as it is, not cut to a fragment
        ("address", "GST Reg: 001658445824", "GST Reg: 001658445824"),
        ("address", "TEL:03-3271 9872 FAX:03-3271 9481", "TEL:03-3271 9872 FAX:03-3271 9481"),
        # a bracketed number on its own line under the name goes with both brackets
        ("company", "SWC ENTERPRISE SDN BHD\n(1125830-V)", "SWC ENTERPRISE SDN BHD"),
    ],
)
def test_a_trailing_piece_of_the_values_own_line_the_field_trims_is_cut(field: str, line: str, value: str) -> None:
    spec = next(f for f in load_scenarios().get("retail_receipt").fields if f.name == field)
    rows = line.split("\n")
    page = index_of("TAX INVOICE", *rows, "TOTAL 9.00")
    answer = " ".join(rows)
    out = snap_result(spec, grounded(page, field, answer), page)
    assert out.value == value
    if value != answer:
        assert (out.answer, out.snap) == (answer, "trim") and [e.line_id for e in out.evidence] == ["p0-l1"]


@pytest.mark.parametrize(
    ("line", "value"),
    [
        # the mark before an invoice's capitalised total, as printed or as the OCR misreads it, or its label
        ("⑧玖佰壹拾壹圆陆角", "玖佰壹拾壹圆陆角"),
        ("②陆佰壹拾圆贰角", "陆佰壹拾圆贰角"),
        ("⊗ 叁仟圆整", "叁仟圆整"),
        ("X贰佰零伍圆整", "贰佰零伍圆整"),
        ("价税合计（大写）ⓧ陆拾圆整", "陆拾圆整"),
        # never a numeral, nor the whole value
        ("捌佰圆整", "捌佰圆整"),
        ("⊗", "⊗"),
    ],
)
def test_a_leading_piece_of_the_values_own_line_the_field_trims_is_cut(line: str, value: str) -> None:
    spec = load_scenarios().get("vat_invoice").field("total_amount_in_words")
    assert spec is not None
    page = index_of("价税合计（大写）", line, "（小写）¥911.60")
    out = snap_result(spec, grounded(page, spec.name, line), page)
    assert out.value == value
    if value != line:
        assert (out.answer, out.snap) == (line, "trim") and [e.line_id for e in out.evidence] == ["p0-l1"]
    # A field without the pattern keeps the mark.
    plain = FieldSpec(name=spec.name)
    assert snap_result(plain, grounded(page, spec.name, line), page).value == line


def test_a_stray_one_letter_line_at_a_values_edge_is_cut_whatever_the_patterns() -> None:
    page = index_of("J", "TANJONG BOOKS (PJ) SDN BHD", "12, JALAN KENANGA 4", "Q")
    plain = FieldSpec(name="company")  # no `trim` patterns
    out = snap_result(plain, grounded(page, "company", "J TANJONG BOOKS (PJ) SDN BHD"), page)
    assert (out.value, out.snap) == ("TANJONG BOOKS (PJ) SDN BHD", "trim")
    assert [e.line_id for e in out.evidence] == ["p0-l1"]
    address = snap_result(plain, grounded(page, "address", "12, JALAN KENANGA 4 Q"), page)
    assert address.value == "12, JALAN KENANGA 4"
    # Not a letter of a longer line or boxed apart on a row with more, not one outside the answer,
    # not a value's only line, not Chinese.
    kept = index_of("J", "JALAN KENANGA 4", "SUSHI Q", ("UNIT 5", "A"))
    for value in ("JALAN KENANGA 4", "SUSHI Q", "J", "UNIT 5 A"):
        result = grounded(kept, "company", value)
        assert snap_result(plain, result, kept) is result
    station = index_of("宁", "波站")
    result = grounded(station, "starting_station", "宁 波站")
    assert snap_result(plain, result, station).value in ("宁 波站", "宁波站")  # the 宁 stays


COMPANY = FieldSpec(
    name="company",
    complete=(r"(\([a-z]\)\s*)?(sdn\.?\s*bhd\.?|s/b|bhd\.?|ltd\.?)",),
    trim=(r"\(\d{4,8}-?[a-z]\)",),
)


@pytest.mark.parametrize(
    ("rows", "answer", "value", "lines"),
    [
        # the legal form boxed apart on the name's row, or printed as the next line: its line is evidence too
        (
            (("SUBANG PHARMACY SDN", "BHD"), "B-8, JALAN SS15/4D"),
            "SUBANG PHARMACY SDN",
            "SUBANG PHARMACY SDN BHD",
            ["p0-l0", "p0-l1"],
        ),
        (
            ("POPULAR BOOK CO.", "(M) SDN BHD", "(113825-W)"),
            "POPULAR BOOK CO.",
            "POPULAR BOOK CO. (M) SDN BHD",
            ["p0-l0", "p0-l1"],
        ),
        # after it a registration number the field trims (not evidence); read through the OCR's 5-for-S
        (("KEDAI MAJU 5/B (587969-U)", "LOT 5, JALAN ANGSA"), "KEDAI MAJU", "KEDAI MAJU S/B", ["p0-l0"]),
        ((("KEDAI MAJU", "5/B", "(587969-U)"), "LOT 5"), "KEDAI MAJU", "KEDAI MAJU S/B", ["p0-l0", "p0-l1"]),
        # a misread legal form at the value's own end is mended
        (("KEDAI MAJU 5/B (587969-U)", "LOT 5, JALAN ANGSA"), "KEDAI MAJU 5/B", "KEDAI MAJU S/B", ["p0-l0"]),
        (("ACME TRADING 5DN 8HD",), "ACME TRADING 5DN 8HD", "ACME TRADING SDN BHD", ["p0-l0"]),
    ],
)
def test_a_piece_the_field_completes_is_appended_or_mended(
    rows: tuple[str | tuple[str, ...], ...], answer: str, value: str, lines: list[str]
) -> None:
    ocr = document(*rows)
    page = TextIndex(ocr.layout())
    out = snap_result(COMPANY, grounded(page, "company", answer), page)
    assert (out.value, out.answer, out.snap) == (value, answer, "complete")
    with_lines = snap_result(
        COMPANY, grounded(page, "company", answer), page, (), lambda a, b: evidence_at(ocr, page, a, b)
    )
    assert with_lines.value == value and [e.line_id for e in with_lines.evidence] == lines
    # the appended line's evidence is the OCR's (the helper's own evidence has no text)
    assert [e.text for e in with_lines.evidence[1:]] == [ocr.line(i).text for i in lines[1:]]


@pytest.mark.parametrize(
    ("rows", "answer"),
    [
        (("ACME TRADING SDN BHD", "BHD"), "ACME TRADING SDN BHD"),  # complete already
        (("ACME TRADING", "SDN BHD TEL 03-1234"), "ACME TRADING"),  # the next row holds more than the piece
        ((("ACME TRADING", "LTD", "INV 12"),), "ACME TRADING"),  # so does the rest of the row
        (("ACME TRADING", "CO. NO. 373665-A"), "ACME TRADING"),  # "CO." is no legal form alone
        (("ACME TRADING", "BOOKS", "SDN BHD"), "ACME TRADING"),  # only the very next row
        (("ACME 8 TRADING", "12 JALAN 5"), "ACME 8 TRADING"),  # a number is no misreading
        (("SDN BHD",), "SDN BHD"),  # never the whole value mended or doubled
    ],
)
def test_nothing_is_completed_that_is_not_the_piece_right_after_the_value(
    rows: tuple[str | tuple[str, ...], ...], answer: str
) -> None:
    page = index_of(*rows)
    result = grounded(page, "company", answer)
    assert snap_result(COMPANY, result, page) is result


def test_complete_patterns_are_checked_and_the_built_in_receipts_complete_a_legal_form() -> None:
    with pytest.raises(ValueError, match="`complete` pattern"):
        FieldSpec(name="company", complete=("(",))
    with pytest.raises(ValueError, match="text fields only"):
        FieldSpec(name="total", type=FieldType.amount, complete=("ltd",))
    company = next(f for f in load_scenarios().get("retail_receipt").fields if f.name == "company")
    assert [company.completion(p) for p in ("SDN BHD", "(M) SDN BHD", "5/B", "PTE LTD", "CO. NO.", "SDN")] == [
        "SDN BHD",
        "(M) SDN BHD",
        "S/B",
        "PTE LTD",
        None,
        None,
    ]
    shop = next(f for f in load_scenarios().get("cn_receipt").fields if f.name == "company")
    page = index_of("上海某某贸易", "有限公司", "上海市浦东新区张杨路500号")
    out = snap_result(shop, grounded(page, "company", "上海某某贸易"), page)
    assert out.value == "上海某某贸易有限公司"
