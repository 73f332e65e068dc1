"""A scenario authored from 5 reviewed documents of a type no shipped scenario covers, against no
scenario at all, on the rest of the documents (issue #33: "a scenario from reviewed documents").

    python benchmarks/authored_scenario.py OUT_DIR [--count 20] [--reviewed 5] [--llm local] [--ocr rapid]

1. `benchmarks/make_parking_set.py OUT_DIR --count 20`: invented car-park tickets (images, labels).
2. `chatocr extract` the first 5 (`--scenario auto`, no memory) into OUT_DIR/reviewed/results.jsonl.
3. Review them as the review app does (chatocr.review.ReviewSession.record, what the page posts):
   every field fixed to its label (accepted where the extraction already had it), into the real
   review file, results.review.jsonl. No memory: the scenario is what is measured.
4. `chatocr scenarios new parking_ticket --from-reviewed OUT_DIR/reviewed/results.review.jsonl`,
   the YAML used as written (its descriptions are the TODOs the command leaves).
5. `chatocr extract` the other 15 twice, no memory: `-s OUT_DIR/parking_ticket.yaml`, and
   `--scenario auto` (the router finds no scenario of this type: the generic fallback, or whatever
   it picks), with the same keys.
6. Exact match per field against the labels (evaluation.metrics' normalisers: text, and amount for
   the fee), with the OCR ceiling (how many labels the OCR text holds at all) beside it.

Every command is printed as it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatocr.evaluation.metrics import get_normalizer, normalize, ocr_contains  # noqa: E402

KEYS = ["car_park", "plate", "entry_time", "exit_time", "duration", "amount", "ticket_number"]
KINDS = {"amount": "amount"}  # the rest compare as text


def run(command: list[str]) -> None:
    print("$ " + " ".join(shlex.quote(c) for c in command), flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(command, check=True, env=env)


def chatocr(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "chatocr", *map(str, args)]


def review(results: Path, labels: dict[str, dict[str, Any]], ocr: str) -> Path:
    """Every field of every document fixed to its label (or accepted), as the review page posts it."""
    from chatocr.cli.view_cmd import engine_lookup
    from chatocr.review import MemorySettings, ReviewSession

    session = ReviewSession(
        results, reviewer="benchmark", engine_for=engine_lookup(None, ocr), memory=MemorySettings(enabled=False)
    )
    for doc in session.documents:
        label = labels[Path(doc.result.source).stem]
        actions = []
        for name, item in doc.result.fields.items():
            if normalize(str(item.value or "")) == normalize(str(label.get(name) or "")):
                actions.append({"field": name, "action": "accept"})
            else:
                actions.append({"field": name, "action": "fix", "value": label.get(name)})
        session.record(doc.number, actions)
    print(f"reviewed {len(session.documents)} document(s) into {session.log.path}", flush=True)
    return session.log.path


def score(results: Path, labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    right = dict.fromkeys(KEYS, 0)
    routes: dict[str, int] = {}
    count = 0
    for line in results.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        label = labels[Path(record["input"]["path"]).stem]
        count += 1
        route = f"{(record.get('route') or {}).get('mode')}:{record.get('scenario')}"
        routes[route] = routes.get(route, 0) + 1
        for name in KEYS:
            norm = get_normalizer(KINDS.get(name, "text"))
            right[name] += norm((record.get("values") or {}).get(name)) == norm(label.get(name))
    return {"documents": count, "right": right, "routes": routes}


def ceiling(images: list[Path], labels: dict[str, dict[str, Any]], ocr: str) -> dict[str, int]:
    """How many labels the OCR text holds (what no extraction can beat), through the OCR cache."""
    from chatocr.cli.view_cmd import engine_lookup

    engine = engine_lookup(None, ocr)(ocr)
    assert engine is not None
    found = dict.fromkeys(KEYS, 0)
    for image in images:
        document = engine.read(image)
        texts = [normalize(document.text(layout=True)), normalize(document.text(layout=False))]
        for name in KEYS:
            found[name] += bool(ocr_contains(texts, labels[image.stem].get(name), KINDS.get(name, "text")))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--reviewed", type=int, default=5)
    parser.add_argument("--seed", type=int, default=33)
    parser.add_argument("--llm", default="local")
    parser.add_argument("--ocr", default="rapid")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    run([sys.executable, str(ROOT / "benchmarks" / "make_parking_set.py"), str(out), "--count", str(args.count)])
    folder = out / "parking_tickets"
    images = sorted((folder / "images").glob("*.jpg"))
    labels = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (folder / "labels").glob("*.json")}
    reviewed, rest = images[: args.reviewed], images[args.reviewed :]
    common = ["--keys", ",".join(KEYS), "--llm", args.llm, "--ocr", args.ocr, "--no-memory", "-q"]
    results = out / "reviewed" / "results.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    run(chatocr("extract", *reviewed, "--scenario", "auto", *common, "--out", results))
    review_file = review(results, labels, args.ocr)
    scenario = out / "parking_ticket.yaml"
    run(chatocr("scenarios", "new", "parking_ticket", "--from-reviewed", review_file, "-o", scenario, "--force"))
    runs = {"authored": ["-s", str(scenario)], "auto": ["--scenario", "auto"]}
    report: dict[str, Any] = {"reviewed": [p.stem for p in reviewed], "scored": [p.stem for p in rest]}
    for name, how in runs.items():
        path = out / f"{name}.jsonl"
        path.unlink(missing_ok=True)
        run(chatocr("extract", *rest, *how, *common, "--out", path))
        report[name] = score(path, labels)
    report["ocr_ceiling"] = ceiling(rest, labels, args.ocr)
    n = len(rest)
    print(f"\nexact match on the {n} documents not reviewed (reviewed: {', '.join(report['reviewed'])})")
    print(f"{'field':15} {'authored':>9} {'auto':>9} {'OCR ceiling':>12}")
    for key in [*KEYS, "all"]:
        cells = []
        for name in ("authored", "auto"):
            right = report[name]["right"]
            value = sum(right.values()) / (n * len(KEYS)) if key == "all" else right[key] / n
            cells.append(f"{100 * value:8.1f}%")
        top = report["ocr_ceiling"]
        value = sum(top.values()) / (n * len(KEYS)) if key == "all" else top[key] / n
        print(f"{key:15} {cells[0]:>9} {cells[1]:>9} {100 * value:11.1f}%")
    print(f"routes with --scenario auto: {report['auto']['routes']}")
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
