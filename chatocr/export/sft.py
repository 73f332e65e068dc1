"""`export_sft`: reviewed documents -> a supervised fine-tuning set for the LLM.

    summary = export_sft(["../shared/data/sroie_train"], "out/", formats=["xtuner", "openai"])

For each reviewed document (chatocr/export/sources.py) the conversation chatocr's planner builds
for it and the target backend (chatocr/export/conversation.py) plus the answer, then:

1. `--redact FIELD,...`: the values of those fields replaced by consistent fakes (redact.py);
2. deduplication by content hash (the conversation with its answer): a document given twice, or
   two identical documents, make one record;
3. records over `max_tokens` (default: the backend's context window) dropped, with a count;
   tokens are counted with the target model's tokenizer, plus the chat template's per-message
   overhead the backend declares;
4. a train/validation split by document (its OCR text), shuffled with `seed` (the same seed, the
   same split);
5. one file per format and split (formats.py), LLaMA-Factory's dataset_info.json when a
   LLaMA-Factory format is written, manifest.jsonl (which document each record is) and
   summary.json (documents, fields, tokens per record, what was dropped and why).

Known secrets (an API key a reviewed document's text or values holds) are masked in the
conversations before anything is counted or written, and every file goes through chatocr.fileio's
one writer. No record to write (an empty source, every document left out, every record over
`max_tokens`) is an InputError saying why, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chatocr.api import ChatOCR
from chatocr.errors import InputError, PlanningError, UsageError
from chatocr.export.backend import export_chat
from chatocr.export.conversation import plan_conversation
from chatocr.export.files import write_files
from chatocr.export.formats import check_record, dataset_info_entry, file_name, resolve_format, to_record
from chatocr.export.options import SFTOptions
from chatocr.export.redact import Redactor
from chatocr.export.sources import ReviewedDocument, Skipped, read_sources
from chatocr.secrets import redact

__all__ = [
    "ExportSummary",
    "Record",
    "build_records",
    "export_sft",
    "split_by_document",
    "token_stats",
    "validation_documents",
]


@dataclass
class Record:
    document: str
    source: str
    scenario: str | None
    conversation: list[dict[str, str]]  # the planned messages and the assistant's answer, last
    tokens: int
    values: int  # non-null answer values
    fields: int
    sha256: str  # of the conversation with its answer: identical records are dropped
    content: str = ""  # sha256 of the document's OCR text: the unit of the train/val split
    split: str = "train"


@dataclass
class ExportSummary:
    out: str
    formats: list[str]
    counter: str
    documents: int  # reviewed documents read
    records: int  # written (train + val)
    train: int
    val: int
    fields: int  # answer keys over the written records
    values: int  # non-null answer values over the written records
    duplicates: int
    over_length: int
    max_tokens: int | None
    examples: int
    seed: int
    redacted_fields: list[str]
    tokens: dict[str, Any]
    tokens_by_scenario: dict[str, dict[str, Any]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def token_stats(counts: Sequence[int]) -> dict[str, Any]:
    """min / median / p90 / max / mean of per-record token counts."""
    if not counts:
        return {"records": 0}
    ordered = sorted(counts)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "records": len(ordered),
        "min": ordered[0],
        "median": int(statistics.median(ordered)),
        "p90": p90,
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 1),
    }


def _digest(conversation: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(conversation, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _kinds(chat: ChatOCR, doc: ReviewedDocument) -> dict[str, str]:
    scenario = chat.library.get(doc.scenario) if doc.scenario and doc.scenario in chat.library else None
    out = {}
    for key in doc.keys:
        spec = scenario.field(key) if scenario is not None else None
        out[key] = spec.type.value if spec is not None else "text"
    return out


def build_records(
    chat: ChatOCR,
    documents: Sequence[ReviewedDocument],
    *,
    examples: int = 0,
    redactor: Redactor | None = None,
) -> tuple[list[Record], list[Skipped]]:
    """One record per document (none for a document the planner cannot fit: skipped, with why)."""
    counter = chat.model.counter
    overhead = chat.model.limits.message_overhead_tokens
    records: list[Record] = []
    skipped: list[Skipped] = []
    if redactor:
        for doc in documents:
            redactor.register(redactor.sensitive(doc.answer))
    for doc in documents:
        layout = doc.document.layout()
        answer: Mapping[str, Any] = doc.answer
        text = layout.text
        if redactor:
            text = redactor.text(layout, answer, _kinds(chat, doc))
            answer = redactor.answer(answer)
        if not text.strip():
            skipped.append(Skipped(doc.id, "OCR found no text"))
            continue
        try:
            planned = plan_conversation(chat, doc.scenario, doc.keys, text, answer, examples=examples)
        except PlanningError as exc:
            skipped.append(Skipped(doc.id, f"cannot be planned: {exc.message}"))
            continue
        # A key a document or a label carries is masked in what is trained on, so the counts,
        # the checksums and the files agree (every file is masked again when written).
        conversation = [{**m, "content": redact(m["content"])} for m in planned.with_answer]
        tokens = sum(counter.count(m["content"]) + overhead for m in conversation)
        values = sum(answer.get(k) is not None for k in planned.task.keys)
        records.append(
            Record(
                doc.id,
                doc.source,
                doc.scenario,
                conversation,
                tokens,
                values,
                len(planned.task.keys),
                _digest(conversation),
                hashlib.sha256(layout.text.encode("utf-8")).hexdigest(),
            )
        )
    return records, skipped


def validation_documents(documents: Iterable[str], val_ratio: float, seed: int) -> set[str]:
    """The documents held out for validation: a seeded shuffle of the sorted ids, the first
    `val_ratio` of them (at least one, and never all, when there are two or more)."""
    if not 0 <= val_ratio < 1:
        raise UsageError(f"val_ratio must be in [0, 1), got {val_ratio}.")
    ids = sorted(set(documents))
    random.Random(seed).shuffle(ids)
    n_val = round(len(ids) * val_ratio)
    if val_ratio > 0 and len(ids) >= 2:
        n_val = min(max(1, n_val), len(ids) - 1)
    return set(ids[:n_val])


def split_by_document(records: list[Record], val_ratio: float, seed: int) -> None:
    """Assign `split` in place, by document (see validation_documents). A document is its OCR
    text: the same page given twice (a labelled set and a corrected results file, with different
    answers) goes to one side only, never to both."""
    val = validation_documents((r.content or r.document for r in records), val_ratio, seed)
    for record in records:
        record.split = "val" if (record.content or record.document) in val else "train"


def _json_text(fmt: str, records: list[dict[str, Any]]) -> str:
    if fmt == "openai":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return json.dumps(records, ensure_ascii=False, indent=1) + "\n"


def _unique(records: list[Record]) -> list[Record]:
    """The records without duplicates (the same conversation and answer), in order."""
    seen: set[str] = set()
    unique: list[Record] = []
    for record in records:
        if record.sha256 not in seen:
            seen.add(record.sha256)
            unique.append(record)
    return unique


def _format_files(fmts: Sequence[str], splits: Mapping[str, list[Record]]) -> dict[str, str]:
    """The training files of every format and split, and LLaMA-Factory's dataset_info.json."""
    texts: dict[str, str] = {}
    info: dict[str, Any] = {}
    for fmt in fmts:
        for split, members in splits.items():
            if not members:
                continue
            rendered = [to_record(fmt, r.conversation) for r in members]
            for r, item in zip(members, rendered, strict=True):
                problems = check_record(fmt, item)
                if problems:  # a bug of ours, never the user's: stop before writing anything
                    raise PlanningError(f"{r.document}: the {fmt} record is malformed: {'; '.join(problems)}")
            name = file_name(fmt, split)
            texts[name] = _json_text(fmt, rendered)
            if fmt in ("llamafactory", "alpaca"):
                stem = name.rsplit(".", 1)[0]
                sha1 = hashlib.sha1(texts[name].encode("utf-8")).hexdigest()  # the checksum LLaMA-Factory documents
                info[f"chatocr_{stem}"] = dataset_info_entry(fmt, name, sha1, rendered)
    if info:
        texts["dataset_info.json"] = json.dumps(info, ensure_ascii=False, indent=2) + "\n"
    return texts


def _manifest(kept: list[Record]) -> str:
    rows = [
        {
            "document": r.document,
            "source": r.source,
            "split": r.split,
            "scenario": r.scenario,
            "tokens": r.tokens,
            "sha256": r.sha256,
        }
        for r in kept
    ]
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _nothing_to_write(documents: int, unique: int, limit: int | None, skipped: list[Skipped]) -> InputError:
    """Why an export has no record at all: said as an error, before anything is written."""
    if not documents and not skipped:
        return InputError(
            "The sources hold no reviewed document: nothing to export.",
            hint="Give a labelled set (with labels/) or a results file of `chatocr extract --out` holding documents.",
        )
    if unique:
        return InputError(
            f"All {unique} record(s) are longer than --max-tokens {limit}: nothing to export.",
            hint="Raise --max-tokens (summary.json of a run without it shows the lengths).",
        )
    shown = "; ".join(f"{s.document}: {s.reason}" for s in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
    return InputError(
        f"None of the {documents + len(skipped)} document(s) can be exported ({shown}).",
        hint='Review results (`"reviewed": true`), lower --min-confidence, or check the documents named.',
    )


def export_sft(
    sources: Sequence[str | Path], out: str | Path, options: SFTOptions | None = None, *, chat: ChatOCR | None = None
) -> ExportSummary:
    """Write a fine-tuning set of `sources` (labelled set directories, results files) to `out`.

    `options` (chatocr.export.options.SFTOptions) says what to write; `chat` the ChatOCR to plan
    with (default: one built for `options.backend`). An export with no record to write is an
    InputError saying why, and nothing is written."""
    options = options or SFTOptions()
    fmts = list(dict.fromkeys(resolve_format(f) for f in options.formats))
    chat = chat or export_chat(options.backend.llm, options.backend.ocr, options.backend.config)
    out_dir = Path(out).expanduser()
    documents, skipped = read_sources(sources, chat, options.review)
    redactor = Redactor(options.redact) if options.redact else None
    records, unplanned = build_records(chat, documents, examples=options.examples, redactor=redactor)
    skipped += unplanned
    unique = _unique(records)
    limit = options.max_tokens if options.max_tokens is not None else chat.model.limits.context_window
    kept = [r for r in unique if limit is None or r.tokens <= limit]
    if not kept:
        raise _nothing_to_write(len(documents), len(unique), limit, skipped)
    split_by_document(kept, options.split.val_ratio, options.split.seed)
    kept.sort(key=lambda r: (r.split, r.document))
    splits = {name: [r for r in kept if r.split == name] for name in ("train", "val")}
    texts = _format_files(fmts, splits)
    texts["manifest.jsonl"] = _manifest(kept)
    by_scenario: dict[str, list[int]] = {}
    for r in kept:
        by_scenario.setdefault(r.scenario or "(none)", []).append(r.tokens)
    summary = ExportSummary(
        out=str(out_dir),
        formats=fmts,
        counter=chat.model.counter.name,
        documents=len(documents),
        records=len(kept),
        train=len(splits["train"]),
        val=len(splits["val"]),
        fields=sum(r.fields for r in kept),
        values=sum(r.values for r in kept),
        duplicates=len(records) - len(unique),
        over_length=len(unique) - len(kept),
        max_tokens=limit,
        examples=options.examples,
        seed=options.split.seed,
        redacted_fields=list(redactor.fields) if redactor else [],
        tokens=token_stats([r.tokens for r in kept]),
        tokens_by_scenario={name: token_stats(counts) for name, counts in sorted(by_scenario.items())},
        skipped=[{"document": s.document, "reason": s.reason} for s in skipped],
        files=sorted([*texts, "summary.json"]),
    )
    texts["summary.json"] = json.dumps(summary.to_dict(), ensure_ascii=False, indent=2) + "\n"
    write_files(out_dir, texts, overwrite=options.overwrite)
    return summary
