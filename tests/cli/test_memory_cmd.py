"""`chatocr memory`: import a labelled set, list, show, export it back as a labelled set that
loads again, remove; a scenario name with path characters is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatocr.cli.main import main
from chatocr.evaluation.datasets import load_dataset
from chatocr.memory import MemoryStore
from chatocr.ocr.text import TextEngine
from chatocr.scenarios import load_scenarios

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sroie"


def test_import_list_show_export_remove(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    memory = tmp_path / "memory"
    assert main(["memory", "import", str(FIXTURES), "-s", "retail_receipt", "--memory", str(memory)]) == 0
    out = capsys.readouterr().out
    assert "imported 3 document(s)" in out and "retail_receipt" in out
    store = MemoryStore("retail_receipt", memory)
    examples = store.examples()
    assert len(examples) == 3 and all(e.origin == "import" and e.lines for e in examples)
    labels = json.loads((FIXTURES / "labels" / "X00016469612.json").read_text(encoding="utf-8"))
    imported = next(e for e in examples if e.source.path.endswith("X00016469612.jpg"))
    assert imported.answer == labels  # the document is known by its image
    assert imported.text == TextEngine().read(FIXTURES / "ocr" / "X00016469612.json").text()

    assert main(["memory", "list", "--memory", str(memory)]) == 0
    assert "retail_receipt" in capsys.readouterr().out
    assert main(["memory", "list", "retail_receipt", "--memory", str(memory), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(e.id for e in examples)
    assert main(["memory", "show", "retail_receipt", imported.id[:8], "--memory", str(memory), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == labels

    exported = tmp_path / "exported"
    assert main(["memory", "export", "retail_receipt", "-o", str(exported), "--memory", str(memory)]) == 0
    assert "3 image(s) still found" in capsys.readouterr().out
    dataset = load_dataset(exported, load_scenarios())
    assert dataset.scenario == "retail_receipt" and len(dataset.documents) == 3
    again = next(d for d in dataset.documents if d.id.startswith("X00016469612"))
    assert again.labels == labels and again.image is not None and again.ocr is not None
    assert TextEngine().read(again.ocr).text() == imported.text

    # Importing again replaces, the exported set imports into another memory as it was.
    assert main(["memory", "import", str(FIXTURES), "-s", "retail_receipt", "--memory", str(memory)]) == 0
    assert "(3 replaced" in capsys.readouterr().out and len(store) == 3
    assert main(["memory", "import", str(exported), "--memory", str(tmp_path / "second")]) == 0
    capsys.readouterr()
    assert sorted(e.text for e in MemoryStore("retail_receipt", tmp_path / "second").examples()) == sorted(
        e.text for e in examples
    )

    assert main(["memory", "remove", "retail_receipt", imported.id[:8], "--memory", str(memory)]) == 0
    assert len(store) == 2 and "removed 1" in capsys.readouterr().out
    assert main(["memory", "remove", "retail_receipt", "nonexistent", "--memory", str(memory)]) == 1
    assert "No example 'nonexistent'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../escape", "a/b", "/etc"])
def test_a_scenario_name_with_path_characters_is_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    memory = tmp_path / "memory"
    memory.mkdir()
    for command in (
        ["list", name],
        ["show", name, "x"],
        ["remove", name, "x"],
        ["export", name, "-o", str(tmp_path / "o")],
    ):
        assert main(["memory", *command, "--memory", str(memory)]) == 1
        assert "cannot name a memory store" in capsys.readouterr().err
    assert list(memory.iterdir()) == [] and not (tmp_path / "o").exists()


def test_an_empty_memory_says_how_it_fills(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memory", "list", "--memory", str(tmp_path / "none")]) == 0
    assert "chatocr review RESULTS" in capsys.readouterr().err
