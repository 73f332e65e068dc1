"""`chatocr eval` and the memory: none unless `--memory DIR` (whatever the config says), that memory
searched leave-one-out (a document never gets its own example, nor one of its very text), and
`--learning-curve`: the same held-out documents scored after the first N joined a fresh memory.
In this process (`chatocr.cli.main.main`), the scripted backend, the set's own OCR text."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from chatocr.cli.main import main
from chatocr.memory import DocumentKey, example_id

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from synthetic_receipts import receipts  # noqa: E402

PREFIX = "memory:retail_receipt/"


def _labelled_set(root: Path, count: int) -> Path:
    """SROIE-shaped receipts of 3 shops as a labelled set with ocr/ files (one line per row)."""
    folder = root / "sroie_like"
    for sub in ("labels", "ocr"):
        (folder / sub).mkdir(parents=True)
    for n, (text, answer) in enumerate(receipts(count, seed=13, shops=3)):
        rows = [row for row in text.splitlines() if row.strip()]
        lines = [
            {"text": row, "box": [0, 20 * i, 400, 20 * i, 400, 20 * i + 16, 0, 20 * i + 16]}
            for i, row in enumerate(rows)
        ]
        (folder / "ocr" / f"r{n:03d}.json").write_text(json.dumps(lines), encoding="utf-8")
        labels = {k: answer[k] for k in ("company", "date", "total")}
        (folder / "labels" / f"r{n:03d}.json").write_text(json.dumps(labels), encoding="utf-8")
    return folder


def _run(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _own_id(folder: Path, doc: str) -> str:
    path = (folder / "ocr" / f"{doc}.json").resolve()
    return example_id(DocumentKey(str(path), hashlib.sha256(path.read_bytes()).hexdigest()))


COMMON = ("--llm", "scripted", "--ocr", "text", "--strategy", "default", "--no-cache", "-q")


def test_eval_uses_a_memory_only_when_given_and_never_a_document_s_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _labelled_set(tmp_path, 9)
    memory = tmp_path / "memory"
    code, _, err = _run("memory", "import", data, "-s", "retail_receipt", "--memory", memory)
    assert code == 0, err
    # The config names the memory too: eval takes no memory from the config.
    monkeypatch.setenv("CHATOCR_MEMORY_DIR", str(memory))
    code, _, err = _run("eval", data, *COMMON, "--out", tmp_path / "none.json")
    assert code == 0, err
    rows = json.loads((tmp_path / "none.json").read_text(encoding="utf-8"))["documents"]
    assert rows and not any(e.startswith(PREFIX) for row in rows for e in row["examples"])

    code, _, err = _run("eval", data, *COMMON, "--memory", memory, "--out", tmp_path / "loo.json")
    assert code == 0, err
    rows = json.loads((tmp_path / "loo.json").read_text(encoding="utf-8"))["documents"]
    used = {row["document"]: [e[len(PREFIX) :] for e in row["examples"] if e.startswith(PREFIX)] for row in rows}
    assert all(used.values())  # each document got examples from the other receipts
    for doc, ids in used.items():
        assert _own_id(data, doc) not in ids  # leave-one-out
    assert "--memory" in json.loads((tmp_path / "loo.json").read_text(encoding="utf-8"))["run"]["command"]


def test_a_duplicate_of_a_document_s_text_is_left_out_too(tmp_path: Path) -> None:
    data = _labelled_set(tmp_path, 4)
    # The memory holds a copy of r000 under another name (another file, the same text).
    copy = tmp_path / "copy"
    for sub in ("labels", "ocr"):
        (copy / sub).mkdir(parents=True)
        (copy / sub / "dup.json").write_bytes((data / sub / "r000.json").read_bytes() + b"\n")
    memory = tmp_path / "memory"
    assert _run("memory", "import", copy, "-s", "retail_receipt", "--memory", memory)[0] == 0
    code, _, err = _run("eval", data, *COMMON, "--memory", memory, "--limit", "1", "--out", tmp_path / "r.json")
    assert code == 0, err
    (row,) = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["documents"]
    assert row["document"] == "r000" and not any(e.startswith(PREFIX) for e in row["examples"])


def test_the_learning_curve_scores_the_same_documents_after_each_size(tmp_path: Path) -> None:
    data = _labelled_set(tmp_path, 8)
    out = tmp_path / "curve.json"
    code, printed, err = _run(
        "eval", data, *COMMON, "--learning-curve", "0,2,4", "--out", out, "--markdown", tmp_path / "c.md"
    )
    assert code == 0, err
    (curve,) = json.loads(out.read_text(encoding="utf-8"))["learning_curves"]
    assert [p["size"] for p in curve["points"]] == [0, 2, 4]
    assert curve["scored"] == ["r004", "r005", "r006", "r007"]
    assert [p["memory"] for p in curve["points"]] == [[], ["r000", "r001"], ["r000", "r001", "r002", "r003"]]
    assert curve["points"][0]["with_memory_examples"] == 0
    assert curve["points"][2]["with_memory_examples"] == 4  # every scored receipt's shop was remembered
    assert set(curve["ocr_ceiling"]["fields"]) == {"company", "date", "total"}
    assert "N=4" in printed and "OCR ceiling" in printed
    assert "| all fields |" in (tmp_path / "c.md").read_text(encoding="utf-8")
    # A memory that leaves nothing to score, or a second strategy, is refused before any work.
    assert _run("eval", data, *COMMON, "--learning-curve", "0,8")[0] == 1
    code, _, err = _run("eval", data, *COMMON, "--strategy", "baseline", "--learning-curve", "0,2")
    assert code == 2 and "one chatocr strategy" in err
    code, _, err = _run("eval", data, *COMMON, "--learning-curve", "0,2", "--memory", tmp_path)
    assert code == 2 and "takes no --memory" in err


def test_the_same_document_under_another_file_is_left_out_too(tmp_path: Path) -> None:
    """Two photos of one ticket: other text (OCR read them apart), identical labels."""
    data = _labelled_set(tmp_path, 5)
    lines = json.loads((data / "ocr" / "r000.json").read_text(encoding="utf-8"))
    lines.append({"text": "PAGE 1/1", "box": [0, 900, 200, 900, 200, 916, 0, 916]})
    (data / "ocr" / "r000b.json").write_text(json.dumps(lines), encoding="utf-8")
    (data / "labels" / "r000b.json").write_bytes((data / "labels" / "r000.json").read_bytes())
    memory = tmp_path / "memory"
    assert _run("memory", "import", data, "-s", "retail_receipt", "--memory", memory)[0] == 0
    code, _, err = _run("eval", data, *COMMON, "--memory", memory, "--out", tmp_path / "r.json")
    assert code == 0, err
    rows = {row["document"]: row for row in json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["documents"]}
    for doc, twin in (("r000", "r000b"), ("r000b", "r000")):
        used = {e[len(PREFIX) :] for e in rows[doc]["examples"] if e.startswith(PREFIX)}
        assert used and _own_id(data, twin) not in used and _own_id(data, doc) not in used
    # Without the twin rule the copy would have been the best match: it is the most similar text.
    from chatocr.memory import MemoryStore

    text = "\n".join(line["text"] for line in lines[:-1])
    assert MemoryStore("retail_receipt", memory).search(text, limit=2)[1].example.id == _own_id(data, "r000b")
