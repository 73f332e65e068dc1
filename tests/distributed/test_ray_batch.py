"""Ray batch runs on a real local Ray (2 CPUs, started once for this module): actors holding one
ChatOCR each, results identical to the local batch, a killed actor's documents done exactly once,
the CLI's resumable results file, Ray Datasets, and (slow) the real local model on 2 receipts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from chatocr import ChatOCR  # noqa: E402
from chatocr.distributed import ChatOCRSpec, extract_dataset, extract_paths  # noqa: E402
from chatocr.extraction.validation import normalize_amount  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHATOCR = Path(sys.executable).with_name("chatocr")
ANSWER = {"company": "SHOP ABC SDN BHD", "total": "9.00"}
KEYS = ("company", "total")
SCRIPT = json.dumps({"answers": [ANSWER], "latency": 0.2})
SPEC = ChatOCRSpec(llm="scripted", ocr="text", keys=KEYS, overrides={"ocr_cache": False})


def _documents(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"doc{n:02d}.txt"
        path.write_text(f"SHOP ABC SDN BHD\nRECEIPT NO {n}\nTOTAL 9.00\n", encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One local Ray for the module. Its workers inherit the environment of this moment: the
    scripted answers, a private cache, and the assembled local model's folder."""
    saved = dict(os.environ)
    os.environ["CHATOCR_SCRIPTED_ANSWERS"] = SCRIPT
    os.environ["CHATOCR_CACHE_DIR"] = str(tmp_path_factory.mktemp("ray-cache"))
    os.environ.setdefault("CHATOCR_MODEL_DIR", str(Path.home() / ".cache" / "chatocr" / "models"))
    os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def _comparable(result: Any) -> dict[str, Any]:
    data = result.to_dict()
    return {k: data[k] for k in ("source", "values", "fields", "scenario", "examples", "ok", "error", "steps")}


def test_two_actors_over_20_documents_match_the_local_batch(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _documents(tmp_path / "docs", 20)
    on_ray = dict(extract_paths(paths, SPEC, actors=2, run_name="match"))
    assert len(on_ray) == 20 and {key[0] for key in on_ray} == {str(p) for p in paths}
    monkeypatch.setenv("CHATOCR_SCRIPTED_ANSWERS", SCRIPT)
    local = {
        r.source: r
        for r in ChatOCR(llm="scripted", ocr="text", ocr_cache=False).extract_many([str(p) for p in paths], list(KEYS))
    }
    for (path, _), result in on_ray.items():
        assert _comparable(result) == _comparable(local[path])
        assert result.values == ANSWER


def test_a_killed_actor_is_restarted_and_every_document_appears_once(local_ray: None, tmp_path: Path) -> None:
    paths = _documents(tmp_path / "docs", 20)
    seen: list[str] = []
    killed = False
    for key, result in extract_paths(paths, SPEC, actors=2, run_name="kill"):
        seen.append(key[0])
        assert result.ok, result.error
        if len(seen) == 3 and not killed:
            ray.kill(ray.get_actor("chatocr-extractor-kill-0"), no_restart=False)  # Ray restarts it
            killed = True
    assert killed
    assert sorted(seen) == sorted(str(p) for p in paths)  # all 20, none twice


def test_cli_executor_ray_writes_the_resumable_results_file(local_ray: None, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _documents(docs, 6)
    out = tmp_path / "results.jsonl"
    # A fresh HOME (no user config or keys file), with the cluster's auth token from the real one.
    token = Path.home() / ".ray" / "auth_token"
    env = {**os.environ, "CHATOCR_SCRIPTED_ANSWERS": SCRIPT, "HOME": str(tmp_path), "RAY_AUTH_TOKEN_PATH": str(token)}
    address = ray.get_runtime_context().gcs_address  # the module's cluster: no second Ray start
    command = [
        str(CHATOCR),
        "extract",
        str(docs),
        "--executor",
        "ray",
        "--address",
        address,
        "--actors",
        "2",
        "--llm",
        "scripted",
        "--ocr",
        "text",
        "--keys",
        ",".join(KEYS),
        "--out",
        str(out),
    ]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(Path(r["input"]["path"]).name for r in records) == [f"doc{n:02d}.txt" for n in range(6)]
    assert all(r["values"] == ANSWER for r in records)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "6 of 6 document(s) already in" in again.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 6
    (docs / "doc06.txt").write_text("SHOP ABC SDN BHD\nTOTAL 9.00\n", encoding="utf-8")
    unreachable = subprocess.run(
        [*command[:6], "127.0.0.1:1", *command[7:]], env=env, capture_output=True, text=True, timeout=300
    )
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr
    assert "Could not start or reach the Ray cluster at 127.0.0.1:1" in unreachable.stderr


def test_a_dataset_of_paths_gives_a_dataset_of_results(local_ray: None, tmp_path: Path) -> None:
    paths = _documents(tmp_path / "docs", 4)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    dataset = ray.data.from_items([{"path": str(p)} for p in paths])
    rows = extract_dataset(dataset, SPEC, actors=2, actor_cpus=0.5).take_all()
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in paths)
    assert all(r["ok"] and json.loads(r["record"])["values"] == ANSWER for r in rows)


@pytest.mark.slow
def test_the_real_local_model_on_two_receipts(local_ray: None) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("rapidocr")
    images = sorted((REPO / "tests" / "fixtures" / "sroie" / "images").glob("*.jpg"))[:2]
    spec = ChatOCRSpec(llm="local", ocr="rapid", keys=("company", "total"))
    results = dict(extract_paths(images, spec, actors=1, actor_cpus=2, run_name="real"))
    assert len(results) == 2
    for (path, _), result in results.items():
        label = json.loads((REPO / "tests" / "fixtures" / "sroie" / "labels" / f"{Path(path).stem}.json").read_text())
        assert result.ok, result.error
        assert result.fields["total"].status == "grounded"
        # amounts compared normalised, as the evaluation does (the label of one receipt says "$8.20")
        assert normalize_amount(result.values["total"]) == normalize_amount(str(label["total"]))
