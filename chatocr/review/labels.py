"""Reviewed documents as a labelled set in the shared layout, for `chatocr eval DIR`,
`chatocr scenarios test --data DIR` and `chatocr export sft DIR`:

    DIR/images/<id>.<ext>   the page image: a copy of the file (never a link: the set must not
                            change when the original does), or the page as PNG for one result per
                            page of a PDF
    DIR/labels/<id>.json    the reviewed values, a flat {field: value} (null: not in the document)
    DIR/ocr/<id>.json       the OCR lines with their boxes (chatocr's OCR JSON, which `--ocr text` reads)

Only documents whose every field has a current review are written; the others are listed with
the reason. Every file is written atomically; a link planted at DIR or its folders is refused.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from chatocr.errors import InputError, UsageError
from chatocr.fileio import atomic_write
from chatocr.ocr.images import load_input
from chatocr.review.documents import ReviewDocument, safe_image
from chatocr.review.session import ReviewSession
from chatocr.secrets import redact

__all__ = ["LabelExport", "export_labels", "label_id"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class LabelExport:
    folder: Path
    written: list[str] = field(default_factory=list)  # the ids
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (document, why)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (id, what is missing from it)


def label_id(doc: ReviewDocument) -> str:
    """A file-name-safe id: the input's name, a piece of its hash, its page."""
    path, sha256, page = doc.key
    stem = _UNSAFE.sub("_", Path(path).stem).strip("._") or "document"
    return f"{stem[:80]}-{(sha256 or 'nohash')[:10]}" + (f"-p{page}" if page is not None else "")


def _folders(out: Path) -> None:
    for folder in (out, out / "images", out / "labels", out / "ocr"):
        if folder.is_symlink():
            raise UsageError(
                f"{folder} is a symbolic link; chatocr does not write through links.",
                hint="Give another folder for the labelled set.",
            )
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{folder} exists and is not a folder.", hint="Give another folder for the labelled set.")
        folder.mkdir(parents=True, exist_ok=True)


def export_labels(session: ReviewSession, out: Path) -> LabelExport:
    """Write every fully reviewed document of the session to `out` (see the module docstring)."""
    _folders(out)
    report = LabelExport(out)
    state = session.state()
    used: set[str] = set()
    for doc in session.documents:
        values = session.complete_values(doc, state)
        if values is None:
            done = sum(state.current(doc.key, name) is not None for name in doc.result.fields)
            report.skipped.append((doc.name, f"{done} of {len(doc.result.fields)} fields reviewed"))
            continue
        if not doc.result.fields:
            report.skipped.append((doc.name, "no fields (the extraction failed)"))
            continue
        doc_id = label_id(doc)
        if doc_id in used:
            report.skipped.append((doc.name, f"its id {doc_id} is taken by another document"))
            continue
        document, _ = doc.ocr(session.engine_for, session.run_ocr)
        image = _image(doc, out, doc_id)
        if image is None and document is None:
            report.skipped.append((doc.name, "neither its image nor its OCR lines are available"))
            continue
        used.add(doc_id)
        labels = json.dumps(values, ensure_ascii=False, indent=1) + "\n"
        atomic_write(out / "labels" / f"{doc_id}.json", redact(labels))  # known secrets masked, as in results
        if document is not None:
            atomic_write(
                out / "ocr" / f"{doc_id}.json", redact(json.dumps(document.to_dict(), ensure_ascii=False) + "\n")
            )
        else:
            report.notes.append((doc_id, "no OCR lines (only the image): evaluate it with an OCR engine"))
        if image is None:
            report.notes.append((doc_id, "no image (only the OCR lines): evaluate it with --ocr text"))
        report.written.append(doc_id)
    return report


def _image(doc: ReviewDocument, out: Path, doc_id: str) -> Path | None:
    """The document's page image copied into images/ (None when there is none to copy)."""
    path, note = safe_image(doc)
    if path is None or note is not None:  # missing, a link elsewhere, or changed since extraction
        return None
    try:
        if doc.key[2] is None:
            target = out / "images" / f"{doc_id}{path.suffix.lower()}"
            atomic_write(target, path.read_bytes())
        else:  # one page of a PDF or TIFF: that page alone
            target = out / "images" / f"{doc_id}.png"
            page = load_input(path).pages[doc.key[2] - 1]
            buffer = io.BytesIO()
            page.save(buffer, format="PNG")
            atomic_write(target, buffer.getvalue())
    except (OSError, InputError, IndexError):
        return None
    return target
