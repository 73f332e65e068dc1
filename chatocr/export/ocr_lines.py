"""`export_ocr_lines`: line crops and their text for fine-tuning PP-OCR's text recognizer.

Which lines: those a person confirmed (`confirmed_lines` in a reviewed results line, with the
text the person read), and those that ground a confirmed value (a label, a reviewed value, or a
result whose fields are all grounded): the OCR line(s) where chatocr's grounding finds the value
exactly or after normalisation (NFKC, case, spacing). Those lines' text is the OCR's own, which
the confirmed value vouches for; a value found only as a number, date or fuzzy match is not,
so its line is left out. With `redact`, lines showing a redacted field's value are left out:
pixels cannot be faked consistently.

Each crop is cut from the page by its 4-point box with a perspective transform (the box's corners
clockwise from the text's top-left go to an upright rectangle), so a rotated or skewed line comes
out level, as PaddleOCR's own `get_rotate_crop_image` does; a crop at least 1.5 times taller
than wide is turned 90 degrees (vertical text). Output, in PaddleOCR's recognition format
(docs: PaddleOCR "Text Recognition" training, `SimpleDataSet` with `label_file_list`):

    DIR/images/<document>_<line>.png
    DIR/rec_gt.txt          images/<document>_<line>.png<TAB>text      (every line)
    DIR/rec_gt_train.txt    the training documents' lines
    DIR/rec_gt_val.txt      the validation documents' lines (split by document with the seed)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatocr.api import ChatOCR
from chatocr.config import load_config
from chatocr.errors import ChatOCRError, InputError, MissingDependencyError
from chatocr.export.files import write_files
from chatocr.export.options import OCRLinesOptions
from chatocr.export.redact import leaves
from chatocr.export.sft import validation_documents
from chatocr.export.sources import ReviewedDocument, Skipped, read_sources
from chatocr.extraction.grounding import TextIndex
from chatocr.llm.scripted import ScriptedChatModel
from chatocr.ocr.images import load_input
from chatocr.ocr.types import Box

__all__ = ["LineCrop", "OCRLinesSummary", "deskew_crop", "export_ocr_lines", "select_lines"]

_TRUSTED_MATCHES = ("exact", "normalized")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - OpenCV comes with the rapid and paddle extras
        raise MissingDependencyError("Cutting OCR line crops", "rapid", package="opencv-python-headless") from exc
    return cv2


def deskew_crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The line inside `box` (4 corners clockwise from the text's top-left) as an upright image."""
    cv2 = _cv2()
    points = np.array(box, dtype=np.float32)
    width = round(float(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3]))))
    height = round(float(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2]))))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(points, target)
    crop = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    if height >= 1.5 * width:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


@dataclass(frozen=True)
class LineCrop:
    document: str
    line_id: str
    text: str
    why: str  # "confirmed" or "grounds <field>"


def select_lines(doc: ReviewedDocument, kinds: Mapping[str, str], redact: Sequence[str] = ()) -> list[LineCrop]:
    """The lines of `doc` to export (see the module docstring), in reading order."""
    layout = doc.document.layout()
    index = TextIndex(layout)
    by_id = {line.id: line for line in doc.document.lines}
    redacted_values = [v for name in redact for v in leaves(doc.answer.get(name))]
    hidden: set[str] = set()
    for name in redact:
        for value in leaves(doc.answer.get(name)):
            match = index.find(value, kinds.get(name, "text"))
            if match is not None:
                hidden.update(layout.line_ids(match.start, match.end))
    for line in doc.document.lines:
        if any(value in line.text for value in redacted_values):
            hidden.add(line.id)
    chosen: dict[str, LineCrop] = {}
    for line_id, text in doc.confirmed_lines.items():
        if line_id in by_id and line_id not in hidden and text.strip():
            chosen[line_id] = LineCrop(doc.id, line_id, text.strip(), "confirmed")
    for name in doc.keys:
        if name in redact:
            continue
        for value in leaves(doc.answer.get(name)):
            match = index.find(value, kinds.get(name, "text"))
            if match is None or match.kind not in _TRUSTED_MATCHES or match.score < 1.0:
                continue
            for line_id in layout.line_ids(match.start, match.end):
                if line_id in by_id and line_id not in hidden and line_id not in chosen:
                    chosen[line_id] = LineCrop(doc.id, line_id, by_id[line_id].text, f"grounds {name}")
    order = {line.id: n for n, line in enumerate(doc.document.lines)}
    return sorted(chosen.values(), key=lambda c: order[c.line_id])


@dataclass
class OCRLinesSummary:
    out: str
    documents: int  # reviewed documents read
    documents_with_lines: int
    lines: int
    train: int
    val: int
    duplicates: int
    by_reason: dict[str, int]
    seed: int
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _safe_name(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[-60:] or "doc"
    return f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _clean(text: str) -> str:
    """One physical line without tabs: rec_gt.txt is `path<TAB>text` per line."""
    return " ".join(text.replace("\t", " ").split())


@dataclass
class _Crops:
    """The crops cut so far: images by name, rec_gt rows by document, counts."""

    images: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, list[str]] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0

    def add(self, doc: ReviewedDocument, crop: LineCrop, data: bytes) -> None:
        text = _clean(crop.text)
        digest = hashlib.sha256(data + text.encode()).hexdigest()
        if digest in self.seen:
            self.duplicates += 1
            return
        self.seen.add(digest)
        name = f"images/{_safe_name(doc.id)}_{crop.line_id}.png"
        self.images[name] = data
        self.rows.setdefault(doc.id, []).append(f"{name}\t{text}\n")
        reason = crop.why.split(" ")[0]
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


def _kinds(chat: ChatOCR, doc: ReviewedDocument) -> dict[str, str]:
    scenario = chat.library.get(doc.scenario) if doc.scenario and doc.scenario in chat.library else None
    kinds = {}
    for key in doc.keys:
        spec = scenario.field(key) if scenario is not None else None
        kinds[key] = spec.type.value if spec is not None else "text"
    return kinds


def _cut(doc: ReviewedDocument, image: Path, lines: list[LineCrop], crops: _Crops) -> str | None:
    """Cut `lines` out of the page images of `image` into `crops`; why not, when it cannot be read."""
    cv2 = _cv2()
    try:
        pages = load_input(image).pages
    except ChatOCRError as exc:
        return f"cannot read the image: {exc.message}"
    arrays: dict[int, np.ndarray] = {}
    for crop in lines:
        page = int(crop.line_id.split("-")[0].lstrip("p") or 0) if crop.line_id.startswith("p") else 0
        if page >= len(pages):
            continue
        if page not in arrays:
            arrays[page] = np.asarray(pages[page].convert("RGB"))[:, :, ::-1]  # BGR, as OpenCV writes
        ok, encoded = cv2.imencode(".png", deskew_crop(arrays[page], doc.document.line(crop.line_id).box))
        if ok:
            crops.add(doc, crop, encoded.tobytes())
    return None


def export_ocr_lines(
    sources: Sequence[str | Path],
    out: str | Path,
    options: OCRLinesOptions | None = None,
    *,
    chat: ChatOCR | None = None,
) -> OCRLinesSummary:
    """Write line crops and rec_gt files for the confirmed lines of `sources` to `out`.

    `options` (chatocr.export.options.OCRLinesOptions) says what to write; `chat` the ChatOCR to
    read OCR with (default: one for `options.backend`, with no model loaded). An export with no
    line to write is an InputError saying why, and nothing is written."""
    options = options or OCRLinesOptions()
    _cv2()  # before any work: the crops need OpenCV
    if chat is None:  # no LLM is used: a scripted stand-in, so no model is loaded and no key needed
        backend = options.backend
        chat = ChatOCR(ScriptedChatModel(), backend.ocr, config=load_config({"ocr": backend.ocr}, path=backend.config))
    documents, skipped = read_sources(sources, chat, options.review)
    crops = _Crops()
    for doc in documents:
        if doc.image is None or not doc.document.has_boxes:
            skipped.append(Skipped(doc.id, "no image with OCR boxes to cut lines from"))
            continue
        lines = select_lines(doc, _kinds(chat, doc), options.redact)
        why = _cut(doc, doc.image, lines, crops) if lines else None
        if why:
            skipped.append(Skipped(doc.id, why))
    if not crops.rows:
        shown = "; ".join(f"{s.document}: {s.reason}" for s in skipped[:3])
        raise InputError(
            f"No OCR line to export from {len(documents)} reviewed document(s)"
            + (f" ({shown})" if shown else "")
            + ".",
            hint="Lines are those a person confirmed or that ground a reviewed value; give reviewed results or a "
            "labelled set with images.",
        )
    val = validation_documents(crops.rows, options.split.val_ratio, options.split.seed)
    ordered = sorted(crops.rows)
    train_rows = [row for d in ordered if d not in val for row in crops.rows[d]]
    val_rows = [row for d in ordered if d in val for row in crops.rows[d]]
    out_dir = Path(out).expanduser()
    summary = OCRLinesSummary(
        out=str(out_dir),
        documents=len(documents),
        documents_with_lines=len(crops.rows),
        lines=len(train_rows) + len(val_rows),
        train=len(train_rows),
        val=len(val_rows),
        duplicates=crops.duplicates,
        by_reason=crops.reasons,
        seed=options.split.seed,
        skipped=[{"document": s.document, "reason": s.reason} for s in skipped],
    )
    texts: dict[str, str | bytes] = {
        "rec_gt.txt": "".join(row for d in ordered for row in crops.rows[d]),
        "rec_gt_train.txt": "".join(train_rows),
        "rec_gt_val.txt": "".join(val_rows),
        "summary.json": json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n",
    }
    write_files(out_dir, {**crops.images, **texts}, overwrite=options.overwrite)
    return summary
