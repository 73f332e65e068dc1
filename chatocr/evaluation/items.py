"""Line-item precision, recall and F1 against hand-labelled receipts (data/sroie_items/).

    python -m chatocr.evaluation.items ../shared/data/sroie_train                # local model, sets' OCR text
    python -m chatocr.evaluation.items ../shared/data/sroie_train --ocr rapid --llm ernie:ernie-4.0

An item matches a labelled item of the same receipt when the descriptions are equal after the
evaluation normalisation (NFKC, case folding, whitespace removed) and the amounts are equal as
decimals; each labelled item matches at most one prediction (data/sroie_items/README.md has the
labelling rules). Items are extracted as the typed model `samples/typed_models.py:Receipt` asks
for them (or --schema), grounded row by row; "grounded" counts only items whose description and
amount were both found in the OCR text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatocr.errors import ChatOCRError, InputError
from chatocr.evaluation.metrics import normalize, normalize_amount
from chatocr.fileio import atomic_write, read_json

__all__ = ["ItemScore", "evaluate_items", "load_item_labels", "match_items", "score_items"]

LABELS = Path(__file__).resolve().parents[2] / "data" / "sroie_items"
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "typed_models.py"


@dataclass(frozen=True)
class ItemScore:
    predicted: int
    labelled: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.labelled if self.labelled else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "predicted": self.predicted,
            "labelled": self.labelled,
            "matched": self.matched,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


def _key(item: Mapping[str, Any]) -> tuple[str, str]:
    return normalize(item.get("description")), normalize_amount(item.get("amount"))


def match_items(predicted: Sequence[Mapping[str, Any]], labelled: Sequence[Mapping[str, Any]]) -> int:
    """How many labelled items a prediction matches, one to one."""
    left = [_key(item) for item in labelled]
    matched = 0
    for item in predicted:
        key = _key(item)
        if key[0] and key in left:
            left.remove(key)
            matched += 1
    return matched


def score_items(pairs: Iterable[tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]]) -> ItemScore:
    """Pooled over documents: (predicted items, labelled items) per document."""
    predicted = labelled = matched = 0
    for guess, truth in pairs:
        predicted += len(guess)
        labelled += len(truth)
        matched += match_items(guess, truth)
    return ItemScore(predicted, labelled, matched)


def load_item_labels(directory: Path = LABELS) -> dict[str, list[dict[str, Any]]]:
    return {p.stem: read_json(p)["items"] for p in sorted(directory.glob("*.json"))}  # bounded (chatocr.fileio)


def _items_of(result: Any, grounded_only: bool) -> list[dict[str, Any]]:
    field = result.fields.get("items")
    if field is None or not isinstance(field.value, list):
        return []
    out = []
    for index, item in enumerate(field.value):
        if not isinstance(item, dict):
            continue
        if grounded_only:
            parts = [field.parts.get(f"items[{index}].{key}") for key in ("description", "amount")]
            if not all(p is not None and p.status == "grounded" for p in parts):
                continue
        out.append(item)
    return out


def evaluate_items(
    chat: Any,
    data_dir: Path,
    labels: Mapping[str, list[dict[str, Any]]],
    schema: Any,
    *,
    use_ocr_text: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(scores, per-receipt rows) of extracting `schema` (with an `items` list) from each labelled receipt."""
    sub = "ocr" if use_ocr_text else "images"
    sources = {}
    for doc_id in labels:
        found = sorted((data_dir / sub).glob(f"{doc_id}.*"))
        if not found:
            raise InputError(f"{data_dir / sub} has no {doc_id}.*", hint="Give the SROIE set the labels are for.")
        sources[str(found[0])] = doc_id
    rows: list[dict[str, Any]] = []
    for result in chat.extract_many(list(sources), schema=schema, scenario="retail_receipt", concurrency=1):
        doc_id = sources[result.source]
        rows.append(
            {
                "id": doc_id,
                "error": result.error,
                "items": _items_of(result, False),
                "grounded": _items_of(result, True),
                "labels": labels[doc_id],
                "steps": result.steps,
                "seconds": result.timings.get("total_s"),
            }
        )
        if progress is not None:  # never a silent wait: a local model takes a while per receipt
            row = rows[-1]
            progress(
                f"[{len(rows)}/{len(sources)}] {doc_id}: {match_items(row['items'], row['labels'])}/"
                f"{len(row['labels'])} items matched, {len(row['items'])} predicted, {row['seconds']} s"
            )
    every = score_items((r["items"], r["labels"]) for r in rows)
    grounded = score_items((r["grounded"], r["labels"]) for r in rows)
    scores = {
        "documents": len(rows),
        "failed": sum(r["error"] is not None for r in rows),
        "all": every.to_dict(),
        "grounded": grounded.to_dict(),
    }
    return scores, rows


def main(argv: Sequence[str] | None = None) -> int:
    from chatocr.api import ChatOCR
    from chatocr.typed.loading import load_schema

    parser = argparse.ArgumentParser(
        prog="python -m chatocr.evaluation.items",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data_dir", type=Path, help="the SROIE set (images/, ocr/)")
    parser.add_argument("--labels", type=Path, default=LABELS, help="item labels (default: data/sroie_items)")
    parser.add_argument(
        "--schema",
        default=f"{SAMPLES}:Receipt",
        help="the typed model with an `items` list (default: samples/typed_models.py:Receipt)",
    )
    parser.add_argument("--llm", help="chat backend (default: config, else local)")
    parser.add_argument("--ocr", default="text", help="text (the set's ocr/ files, default) or an OCR engine")
    parser.add_argument("--out", type=Path, help="write per-receipt predictions and the scores as JSON")
    args = parser.parse_args(argv)
    try:
        schema = load_schema(args.schema)
        chat = ChatOCR(llm=args.llm, ocr=args.ocr)
        scores, rows = evaluate_items(
            chat,
            args.data_dir,
            load_item_labels(args.labels),
            schema,
            use_ocr_text=args.ocr == "text",
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except ChatOCRError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = {**scores, "llm": f"{chat.model.provider}:{chat.model.model}", "ocr": args.ocr, "schema": args.schema}
    print(json.dumps(report, indent=2))
    if args.out:  # chatocr.fileio's one writer: a regular file or a new name, secrets masked
        atomic_write(args.out, json.dumps({**report, "rows": rows}, ensure_ascii=False, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
