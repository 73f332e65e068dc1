from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatocr.errors import InputError, ScenarioError
from chatocr.evaluation.datasets import load_dataset
from chatocr.scenarios import load_scenarios

from .conftest import SROIE


def test_sroie_fixture_uses_its_profile(tmp_path: Path) -> None:
    library = load_scenarios()
    # The profile is chosen by the set's directory name.
    root = tmp_path / "sroie_sample"
    root.symlink_to(SROIE, target_is_directory=True)
    data = load_dataset(root, library)
    assert data.scenario == "retail_receipt"
    assert data.fields == ["company", "date", "address", "total"]
    assert data.normalizers == {"company": "text", "date": "text", "address": "text", "total": "amount"}
    assert len(data.documents) == 3 and data.documents[0].image is not None and data.documents[0].ocr is not None
    assert data.subset(1).documents == data.documents[:1]


def test_unknown_set_matches_scenario_by_fields() -> None:
    data = load_dataset(SROIE, load_scenarios())  # directory "sroie": profile prefix matches too
    assert data.scenario == "retail_receipt"


def test_a_set_of_no_known_name_gets_the_scenario_in_its_labels_language(tmp_path: Path) -> None:
    """company/date/address/total fit cn_receipt as well as retail_receipt: the labels' script decides."""
    english = tmp_path / "my_receipts"
    english.symlink_to(SROIE, target_is_directory=True)
    assert load_dataset(english, load_scenarios()).scenario == "retail_receipt"
    chinese = tmp_path / "shop_slips"
    (chinese / "labels").mkdir(parents=True)
    (chinese / "ocr").mkdir()
    label = {"company": "永辉超市", "date": "2023-05-01", "address": "福州市鼓楼区", "total": "12.50"}
    (chinese / "labels" / "a.json").write_text(json.dumps(label, ensure_ascii=False), encoding="utf-8")
    (chinese / "ocr" / "a.json").write_text(json.dumps([{"text": "永辉超市"}], ensure_ascii=False), encoding="utf-8")
    assert load_dataset(chinese, load_scenarios()).scenario == "cn_receipt"


def test_ticket_profile(ticket_set: Path) -> None:
    data = load_dataset(ticket_set, load_scenarios())
    assert data.scenario == "train_ticket"
    assert data.normalizers["ticket_price"] == "amount" and data.normalizers["name"] == "masked_id_name"
    assert data.documents[0].image is None and data.documents[0].ocr is not None


def test_mapping_aliases_and_unmapped(tmp_path: Path) -> None:
    root = tmp_path / "myset"
    (root / "labels").mkdir(parents=True)
    (root / "ocr").mkdir()
    (root / "labels" / "a.json").write_text(json.dumps({"store": "S", "amount_due": "1.00", "colour": "red"}))
    (root / "ocr" / "a.json").write_text(json.dumps([{"text": "S"}]))
    data = load_dataset(root, load_scenarios(), scenario="retail_receipt", field_map={"amount_due": "total"})
    assert data.field_map == {"store": "company", "amount_due": "total"}
    assert data.unmapped == ["colour"]
    assert data.documents[0].labels == {"company": "S", "total": "1.00"}


def test_bad_sets(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no labels/"):
        load_dataset(tmp_path, load_scenarios())
    (tmp_path / "labels").mkdir()
    with pytest.raises(InputError, match=r"no \.json label files"):
        load_dataset(tmp_path, load_scenarios())
    (tmp_path / "labels" / "x.json").write_text(json.dumps({"zzz_unknown": "1"}))
    with pytest.raises(ScenarioError):
        load_dataset(tmp_path, load_scenarios())
    (tmp_path / "labels" / "x.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="flat JSON object"):
        load_dataset(tmp_path, load_scenarios())
