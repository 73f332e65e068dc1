"""Labelled document sets in the shared layout, and how their labels map to a scenario.

    <set>/images/<id>.<ext>    the document image (optional when ocr/ has the text)
    <set>/labels/<id>.json     ground truth: a flat {"field": "value"} object
    <set>/ocr/<id>.json        optional: the document's text lines, [{"text", "box"}, ...]

Documents are the label files, in sorted order. A label key maps to a scenario field by an
explicit mapping, else by the field's name or one of its aliases; keys that map to nothing are
reported and left out. Which scenario: the one given, else a known profile for the set's name
(SROIE -> retail_receipt, train tickets -> train_ticket), else the scenario whose fields cover
the most label keys.

A profile also names each field's value normaliser where the labels have quirks (see metrics.py):
SROIE totals are numbers without currency (`amount`), ticket prices carry "￥...元" (`amount`),
ticket names are a masked ID number glued to the name (`masked_id_name`). Fields without a
profile entry use `amount` when the scenario types them as amounts, else `text`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatocr.errors import DataFileError, InputError, ScenarioError
from chatocr.fileio import read_json
from chatocr.ocr.registry import IMAGE_SUFFIXES
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import FieldType, Scenario

__all__ = ["PROFILES", "Dataset", "DatasetProfile", "Document", "label_answer", "load_dataset"]

_CJK = re.compile(r"[\u4e00-\u9fff]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_MASKED_ID = re.compile(r"[0-9A-Za-z]*\*{2,}[0-9A-Za-z]*")


@dataclass(frozen=True)
class DatasetProfile:
    """What is known about a public set: its scenario, label-key mapping and value normalisers."""

    prefix: str  # matches a set directory whose name starts with this
    scenario: str
    field_map: Mapping[str, str] = field(default_factory=dict)
    normalizers: Mapping[str, str] = field(default_factory=dict)  # scenario field -> normaliser kind
    note: str = ""


PROFILES: tuple[DatasetProfile, ...] = (
    DatasetProfile(
        "sroie",
        "retail_receipt",
        normalizers={"total": "amount"},
        note="SROIE 2019 task 3 labels: totals without currency",
    ),
    DatasetProfile(
        "cn_train_ticket",
        "train_ticket",
        normalizers={"ticket_price": "amount", "name": "masked_id_name"},
        note="ticket prices labelled with '￥...元'; names labelled with the masked ID number glued on",
    ),
)


@dataclass(frozen=True)
class Document:
    id: str
    labels: dict[str, Any]  # scenario field -> labelled value (mapped keys only)
    image: Path | None
    ocr: Path | None
    raw_labels: dict[str, Any]


@dataclass
class Dataset:
    name: str
    root: Path
    scenario: str
    documents: list[Document]
    fields: list[str]  # scenario fields evaluated, in label order
    field_map: dict[str, str]  # label key -> scenario field
    normalizers: dict[str, str]  # scenario field -> normaliser kind
    unmapped: list[str] = field(default_factory=list)  # label keys with no scenario field
    profile_note: str = ""

    def subset(self, limit: int | None) -> Dataset:
        if limit is None or limit >= len(self.documents):
            return self
        return Dataset(
            self.name,
            self.root,
            self.scenario,
            self.documents[:limit],
            self.fields,
            self.field_map,
            self.normalizers,
            self.unmapped,
            self.profile_note,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": str(self.root),
            "scenario": self.scenario,
            "documents": len(self.documents),
            "fields": self.fields,
            "field_map": self.field_map,
            "normalizers": self.normalizers,
            "unmapped_label_keys": self.unmapped,
            "note": self.profile_note,
        }


_LABEL_HINT = 'Fix the label file: UTF-8 JSON holding one object of field -> value, e.g. {"total": "9.00"}.'


def _read_labels(path: Path) -> dict[str, Any]:
    try:  # bounded: a label nested 100,000 deep or a 5,000-digit number is a typed error (chatocr.fileio)
        data = read_json(path)
    except DataFileError as exc:
        raise DataFileError(f"{exc.message} (a label file)", hint=_LABEL_HINT) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a label file must hold a flat JSON object of field -> value.", hint=_LABEL_HINT)
    return data


def profile_for(root: Path) -> DatasetProfile | None:
    name = root.name.casefold()
    for profile in PROFILES:
        if name.startswith(profile.prefix):
            return profile
    return None


def _map_key(key: str, scenario: Scenario, explicit: Mapping[str, str]) -> str | None:
    if key in explicit:
        target = explicit[key]
        return target if scenario.field(target) is not None else None
    spec = scenario.field(key)
    return spec.name if spec is not None else None


def choose_scenario(
    keys: list[str], library: ScenarioLibrary, explicit: Mapping[str, str], language: str | None = None
) -> str:
    """The scenario whose fields (names and aliases) cover the most label keys; on a tie, one in
    the labels' language (English receipts' company/date/total fit cn_receipt as well as
    retail_receipt)."""
    best: tuple[int, bool, str] | None = None
    for scenario in library:
        covered = sum(_map_key(k, scenario, explicit) is not None for k in keys)
        rank = (covered, scenario.language == language)
        if covered and (best is None or rank > best[:2]):
            best = (*rank, scenario.name)
    if best is None:
        raise ScenarioError(
            f"No scenario has fields matching the label keys {keys}.",
            hint="Name one with --scenario and map keys with --map LABEL_KEY=FIELD.",
        )
    return best[2]


def _language_of(labels: Iterable[Mapping[str, Any]]) -> str:
    """zh when the labelled values hold Chinese characters, else en."""
    text = json.dumps(list(labels), ensure_ascii=False, default=str)
    return "zh" if _CJK.search(text) else "en"


def load_dataset(
    root: str | Path,
    library: ScenarioLibrary,
    *,
    scenario: str | None = None,
    field_map: Mapping[str, str] | None = None,
    normalizers: Mapping[str, str] | None = None,
) -> Dataset:
    """Read a set directory. `field_map` (label key -> scenario field) and `normalizers`
    (scenario field -> kind) extend and override the set's known profile."""
    root = Path(root).expanduser()
    labels_dir = root / "labels"
    if not labels_dir.is_dir():
        raise InputError(
            f"{root} is not a labelled set: it has no labels/ directory.",
            hint="Expected <set>/images/<id>.<ext>, <set>/labels/<id>.json and optionally <set>/ocr/<id>.json.",
        )
    label_files = sorted(labels_dir.glob("*.json"))
    if not label_files:
        raise InputError(f"{labels_dir} holds no .json label files.")
    profile = profile_for(root)
    explicit = {**(profile.field_map if profile else {}), **(field_map or {})}
    raw = {path.stem: _read_labels(path) for path in label_files}
    keys = list(dict.fromkeys(k for labels in raw.values() for k in labels))
    if scenario:  # a name, or a scenario YAML file (which then joins the library)
        scenario = library.resolve(scenario).name
    name = scenario or (profile.scenario if profile and profile.scenario in library else None)
    name = name or choose_scenario(keys, library, explicit, _language_of(raw.values()))
    chosen = library.get(name)
    mapping: dict[str, str] = {}
    unmapped: list[str] = []
    for key in keys:
        target = _map_key(key, chosen, explicit)
        if target is None:
            unmapped.append(key)
        else:
            mapping[key] = target
    if not mapping:
        raise ScenarioError(
            f"None of the label keys {keys} of {root} maps to a field of scenario {name!r}.",
            hint="Map them with --map LABEL_KEY=FIELD.",
        )
    fields = list(dict.fromkeys(mapping.values()))
    kinds: dict[str, str] = {}
    for target in fields:
        spec = chosen.field(target)
        kinds[target] = "amount" if spec is not None and spec.type is FieldType.amount else "text"
    if profile is not None and profile.scenario == name:
        kinds.update({k: v for k, v in profile.normalizers.items() if k in kinds})
    kinds.update({k: v for k, v in (normalizers or {}).items() if k in kinds})

    images = {p.stem: p for p in sorted((root / "images").glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}
    ocr_dir = root / "ocr"
    documents = []
    for doc_id, labels in raw.items():
        ocr = ocr_dir / f"{doc_id}.json"
        image = images.get(doc_id)
        if image is None and not ocr.is_file():
            raise InputError(f"{root}: document {doc_id!r} has a label but neither an image nor an ocr/ file.")
        mapped = {mapping[k]: v for k, v in labels.items() if k in mapping}
        documents.append(Document(doc_id, mapped, image, ocr if ocr.is_file() else None, labels))
    return Dataset(
        root.name,
        root,
        name,
        documents,
        fields,
        mapping,
        kinds,
        unmapped,
        profile.note if profile is not None and profile.scenario == name else "",
    )


def label_answer(value: Any, kind: str) -> Any:
    """A labelled value as chatocr's prompts ask for it (what an example, a memory example or a
    training answer holds): by the set's normaliser kind, an `amount` label "￥41.0元" becomes "41.0"
    (the number as printed), a `masked_id_name` label "1101011990****1234张三" becomes "张三"."""
    if value is None:
        return None
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if kind == "amount":
        numbers = _NUMBER.findall(text)
        return numbers[0] if len(numbers) == 1 else text
    if kind == "masked_id_name":
        return _MASKED_ID.sub("", text).strip() or None
    return text
