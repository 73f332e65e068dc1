"""Reviewed documents, from the three places they come from, as one record type.

1. A labelled set in the shared layout (`<set>/labels/<id>.json`, `images/`, optional `ocr/`):
   the labels are the truth. Label quirks are turned into the answer chatocr asks for, by the
   set's profile (chatocr/evaluation/datasets.py): an `amount` label "￥41.0元" becomes "41.0"
   (the number as printed), a `masked_id_name` label "1101011990****1234张三" becomes "张三".
2. A results file (`chatocr extract --out results.jsonl`): only documents whose every field is
   grounded in the OCR text (a field the document lacks may be null unless it is required),
   and, with `min_confidence`, whose grounded values all have at least that confidence.
3. The same file corrected by a person: a line with `"reviewed": true` is taken as the truth
   whatever its statuses. Its `values` object holds the answer: edit a value there, delete a key
   (or set it to null) for a field the document does not have. `"confirmed_lines": {"p0-l3":
   "text as printed"}` names OCR lines the person read (and corrected): they go to the OCR
   line export with that text.

The OCR of a results-file document is read again through the (cached) OCR engine, so the text is
the one the extraction saw; a document whose file changed or that another engine read is skipped,
with the reason, never guessed. One unreadable document never stops the others.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatocr.api import ChatOCR
from chatocr.errors import ChatOCRError, InputError
from chatocr.evaluation.datasets import label_answer, load_dataset
from chatocr.export.options import ReviewOptions
from chatocr.extraction.result import Extraction, FieldResult
from chatocr.fileio import file_sha256
from chatocr.ocr.registry import IMAGE_SUFFIXES
from chatocr.ocr.types import OCRDocument
from chatocr.runs.records import read_records

__all__ = ["ReviewedDocument", "Skipped", "label_answer", "read_sources"]


@dataclass
class ReviewedDocument:
    """One document whose answer a person (or the labels) vouch for."""

    id: str  # unique in the export: "<set>/<doc id>" or the input path
    source: str  # the labelled set or results file it came from
    document: OCRDocument
    scenario: str | None
    keys: list[str]
    answer: dict[str, Any]  # key -> value, None when the document does not have it
    image: Path | None = None  # the page image(s) the OCR boxes refer to
    confirmed_lines: dict[str, str] = field(default_factory=dict)  # line id -> text a person read


@dataclass(frozen=True)
class Skipped:
    document: str
    reason: str


def _read(chat: ChatOCR, source: Path) -> OCRDocument:
    return chat.engine.read(source)


def _labelled_set(
    root: Path, chat: ChatOCR, scenario: str | None, field_map: Mapping[str, str] | None
) -> Iterator[ReviewedDocument | Skipped]:
    dataset = load_dataset(root, chat.library, scenario=scenario, field_map=field_map)
    text_ocr = chat.engine.name == "text"
    for doc in dataset.documents:
        name = f"{dataset.name}/{doc.id}"
        source = doc.ocr if text_ocr else doc.image
        if source is None:
            yield Skipped(name, "no ocr/ file" if text_ocr else "no image")
            continue
        try:
            document = _read(chat, source)
        except ChatOCRError as exc:
            yield Skipped(name, f"OCR failed: {exc.message}")
            continue
        answer = {f: label_answer(doc.labels.get(f), dataset.normalizers.get(f, "text")) for f in dataset.fields}
        yield ReviewedDocument(name, str(root), document, dataset.scenario, list(dataset.fields), answer, doc.image)


def _grounded_enough(fields: Mapping[str, FieldResult], min_confidence: float | None) -> str | None:
    """Why a machine result is not trusted for training, or None when it is."""
    for name, item in fields.items():
        if item.status == "grounded":
            if min_confidence is not None and (item.confidence is None or item.confidence < min_confidence):
                return f"{name}: confidence {item.confidence} below {min_confidence}"
        elif item.status == "missing" and not item.required:
            continue
        else:
            return f"{name} is {item.status}"
    return None


def _answer(data: dict[str, Any], result: Extraction, min_confidence: float | None) -> dict[str, Any] | str:
    """The answer a results record vouches for, or why it vouches for none."""
    if data.get("reviewed") is True:
        values = data.get("values")
        if not isinstance(values, dict):
            return "reviewed, but its `values` is not an object of field -> value"
        return {key: values.get(key) for key in result.fields}
    why = _grounded_enough(result.fields, min_confidence)
    if why is not None:
        return f"not reviewed and {why}"
    return {k: (f.value if f.status == "grounded" else None) for k, f in result.fields.items()}


def _results_file(path: Path, chat: ChatOCR, min_confidence: float | None) -> Iterator[ReviewedDocument | Skipped]:
    """Reviewed documents of a results file; every record left out is named by its line and why
    (not JSON, nested too deeply, members of the wrong type: `chatocr.runs.records.read_records`)."""
    read = read_records(path)
    for where, why in read.skipped:
        yield Skipped(f"{path}:{where.removeprefix('line ')}", f"not a chatocr results line: {why}")
    for record in read.records:
        where = f"{path}:{record.where.removeprefix('line ')}"
        if record.key is None:
            yield Skipped(where, "not a chatocr results line (JSON with input.path and fields)")
            continue
        image, result = Path(record.key[0]), record.result
        if result.error:
            yield Skipped(str(image), "the extraction failed")
            continue
        answer = _answer(record.data, result, min_confidence)
        if isinstance(answer, str):
            yield Skipped(str(image), answer)
            continue
        engine = result.ocr.get("engine")
        if engine and engine != chat.engine.name:
            yield Skipped(str(image), f"OCR'd with {engine!r}: export with --ocr {engine}")
            continue
        try:
            if file_sha256(image) != record.key[1]:
                yield Skipped(str(image), "the file changed since it was extracted")
                continue
            document = _read(chat, image)
        except (OSError, ChatOCRError) as exc:
            yield Skipped(str(image), f"cannot read it again: {getattr(exc, 'message', exc)}")
            continue
        confirmed = record.data.get("confirmed_lines") or {}
        if not isinstance(confirmed, dict):
            yield Skipped(where, "confirmed_lines must be an object of line id -> text")
            continue
        yield ReviewedDocument(
            str(image),
            str(path),
            document,
            result.scenario,
            list(result.fields),
            answer,
            image if document.has_boxes and image.suffix.lower() in IMAGE_SUFFIXES else None,
            {str(k): str(v) for k, v in confirmed.items()},
        )


def read_sources(
    sources: Sequence[str | Path], chat: ChatOCR, review: ReviewOptions | None = None
) -> tuple[list[ReviewedDocument], list[Skipped]]:
    """Every reviewed document of `sources` (labelled set directories and results files), and
    the documents left out with the reason."""
    review = review or ReviewOptions()
    documents: list[ReviewedDocument] = []
    skipped: list[Skipped] = []
    for item in sources:
        path = Path(item).expanduser()
        if path.is_dir():
            produced: Iterator[ReviewedDocument | Skipped] = _labelled_set(
                path, chat, review.scenario, review.field_map
            )
        elif path.is_file():
            produced = _results_file(path, chat, review.min_confidence)
        else:
            raise InputError(
                f"No such labelled set or results file: {path}",
                hint="Give a set directory (with labels/) or a results .jsonl written by `chatocr extract --out`.",
            )
        for entry in produced:
            (documents if isinstance(entry, ReviewedDocument) else skipped).append(entry)  # type: ignore[arg-type]
    return documents, skipped
