"""`--redact FIELD,...`: consistent fakes, and no original value left in any exported byte."""

from __future__ import annotations

import json
from pathlib import Path

from chatocr.api import ChatOCR
from chatocr.evaluation.datasets import load_dataset
from chatocr.export import Backend, OCRLinesOptions, SFTOptions, SplitOptions, export_ocr_lines, export_sft
from chatocr.export.formats import FORMATS, file_name
from chatocr.export.redact import Redactor
from chatocr.export.sources import label_answer
from tests.conftest import shared_data


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def _originals(root: Path, chat: ChatOCR, fields: list[str]) -> set[str]:
    """Every form of the redacted fields' values: as labelled and as chatocr asks for them."""
    dataset = load_dataset(root, chat.library)
    values: set[str] = set()
    for doc in dataset.documents:
        for name in fields:
            raw = doc.labels.get(name)
            if raw:
                values.add(str(raw))
                answer = label_answer(raw, dataset.normalizers.get(name, "text"))
                if answer:
                    values.add(str(answer))
    return values


def _assert_gone(out: Path, originals: set[str]) -> None:
    blob = _all_bytes(out)
    assert blob, "nothing was exported"
    for value in originals:
        assert value.encode("utf-8") not in blob, value
        escaped = json.dumps(value)[1:-1].encode()  # the \\uXXXX form, in case anything escaped it
        assert escaped not in blob, value


def test_fakes_keep_the_shape_and_are_consistent() -> None:
    redactor = Redactor(["name"], key=b"k" * 32)
    fake = redactor.fake("1101011990****1234张三")
    assert fake != "1101011990****1234张三" and len(fake) == len("1101011990****1234张三")
    assert fake[10:14] == "****" and fake[:10].isdigit() and all("\u4e00" <= c <= "\u9fff" for c in fake[-2:])
    assert redactor.fake("1101011990****1234张三") == fake
    assert Redactor(["name"], key=b"k" * 32).fake("Q012345")[0].isupper()


def test_a_fake_never_contains_another_real_value_of_the_export() -> None:
    """Names are short: a random fake can be another passenger's real name, which would leak it."""
    key = b"k" * 32
    first = Redactor(["name"], key=key).fake("林玺")
    redactor = Redactor(["name"], key=key)
    redactor.register([first, "王芳"])  # pretend the first fake is a real name of the same export
    fake = redactor.fake("林玺")
    assert first not in fake and "王芳" not in fake and fake != "林玺"


def test_synthetic_tickets_same_fake_in_text_and_answer(ticket_set: Path, chat: ChatOCR, tmp_path: Path) -> None:
    out = tmp_path / "out"
    fields = ["name", "ticket_num"]
    summary = export_sft(
        [ticket_set], out, SFTOptions(formats=list(FORMATS), redact=fields, split=SplitOptions(val_ratio=0)), chat=chat
    )
    assert summary.records == 3 and summary.redacted_fields == fields
    _assert_gone(out, _originals(ticket_set, chat, fields) | {"张三", "李四"})
    names = {}
    for record in json.loads((out / file_name("llamafactory", "train")).read_text(encoding="utf-8")):
        answer = json.loads(record["conversations"][-1]["value"])
        document = record["conversations"][-2]["value"]
        assert answer["name"] in document and answer["ticket_num"] in document  # copied from the text
        assert document.count(answer["ticket_num"]) >= 1
        names.setdefault(answer["name"], 0)
        names[answer["name"]] += 1
        assert answer["date"].startswith("201")  # other fields untouched
    assert sorted(names.values()) == [1, 2]  # t1 and t3 share a passenger: one fake for both


def test_redacted_lines_are_not_cut_as_images(ticket_set: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    images = ticket_set / "images"
    images.mkdir()
    for label in (ticket_set / "labels").glob("*.json"):
        page = Image.new("RGB", (420, 220), "white")
        for row in range(7):
            ImageDraw.Draw(page).rectangle([12, 30 * row + 12, 200, 30 * row + 28], fill="black")
        page.save(images / f"{label.stem}.png")
    out = tmp_path / "rec"
    summary = export_ocr_lines(
        [ticket_set],
        out,
        OCRLinesOptions(redact=["name", "ticket_num"], split=SplitOptions(val_ratio=0), backend=Backend(ocr="text")),
    )
    assert summary.lines > 0
    rec = (out / "rec_gt.txt").read_text(encoding="utf-8")
    for value in ("张三", "李四", "Q012345", "R067890", "S024680"):
        assert value not in rec


def test_no_original_value_in_any_exported_byte_of_the_ticket_set(chat: ChatOCR, tmp_path: Path) -> None:
    tickets = shared_data("cn_train_ticket")
    fields = ["name", "ticket_num"]
    out = tmp_path / "sft"  # a temporary directory: the ticket photos' data is never committed
    summary = export_sft(
        [tickets], out, SFTOptions(formats=list(FORMATS), redact=fields, split=SplitOptions(val_ratio=0.2)), chat=chat
    )
    assert summary.records >= 15
    originals = _originals(tickets, chat, fields)
    assert len(originals) >= 40
    _assert_gone(out, originals)
    lines = tmp_path / "rec"
    export_ocr_lines([tickets], lines, OCRLinesOptions(redact=fields), chat=chat)
    _assert_gone(lines, originals)
