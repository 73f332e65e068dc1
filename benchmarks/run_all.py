"""Run every benchmark in benchmarks/ and report each ratio against its target, MET or NOT MET.

    .venv/bin/python benchmarks/run_all.py                 # all bench_*.py, their default settings
    .venv/bin/python benchmarks/run_all.py --only planner --only ocr
    .venv/bin/python benchmarks/run_all.py --quick         # smaller runs (fewer images, calls)

Each bench_*.py runs in its own subprocess, one after the other (they measure time: never in
parallel). A script reports machine-readably by printing, anywhere on stdout, lines of the form

    BENCH-JSON {"benchmark": "planner", "results": [{"name": "ms/document at 1000 examples",
                "value": 1.9, "unit": "ms", "target": "<= 5", "met": true}, ...]}

Scripts that do not (yet) are read from their text: every line that names a target and says
MET / NOT MET (any case) becomes a row. The summary, each script's full output, the command, the
machine (nproc, RAM, CPU model) and the date are written to docs/benchmarks.md, followed by the
detailed write-ups in docs/benchmarks-*.md when they exist.

Exit status: 1 when a script failed to run (or, with --strict, when a target is NOT MET), else 0.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
MARKER = "BENCH-JSON "

# Arguments per script for a full run: the pipeline's real local run on 10 SROIE receipts
# (about 10 minutes on an idle 2-core machine) is part of the record.
FULL_ARGS: dict[str, list[str]] = {
    "bench_pipeline": ["--real", "10"],
}

# Extra arguments per script for --quick (scripts not listed run with their defaults).
QUICK_ARGS: dict[str, list[str]] = {
    "bench_planner": ["--repeat", "10"],
    "bench_ocr": ["--limit", "2", "--engines", "rapid"],
    "bench_backends": ["--calls", "50", "--local-repeats", "1"],
}

_VERDICT = re.compile(r"\b(NOT MET|NOT met|not met|MET|met)\b")


@dataclass
class Row:
    benchmark: str
    name: str
    value: Any
    target: str
    met: bool | None
    unit: str = ""


@dataclass
class Outcome:
    script: str
    command: list[str]
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    rows: list[Row] = field(default_factory=list)
    machine_readable: bool = False


def _machine() -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    try:
        from chatocr.evaluation.machine import machine_info
    finally:
        sys.path.pop(0)
    return machine_info()


def parse_output(benchmark: str, stdout: str) -> tuple[list[Row], bool]:
    """Rows from BENCH-JSON lines, else from the text's MET / NOT MET lines."""
    rows: list[Row] = []
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            try:
                data = json.loads(line[len(MARKER) :])
            except json.JSONDecodeError:
                continue
            name = str(data.get("benchmark") or benchmark)
            for item in data.get("results", []):
                met = item.get("met")
                rows.append(
                    Row(
                        name,
                        str(item.get("name", "")),
                        item.get("value"),
                        str(item.get("target", "")),
                        None if met is None else bool(met),
                        str(item.get("unit", "")),
                    )
                )
    if rows:
        return rows, True
    for line in stdout.splitlines():
        if "target" not in line.lower():
            continue
        verdicts = _VERDICT.findall(line)
        if not verdicts:
            continue
        met = all(not v.lower().startswith("not") for v in verdicts)
        rows.append(Row(benchmark, line.strip(), "", "(in the line)", met))
    return rows, False


def run_script(path: Path, extra: list[str], timeout: float) -> Outcome:
    command = [sys.executable, str(path.relative_to(ROOT)), *extra]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code = -1
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = f"timed out after {timeout:.0f} s"
    name = path.stem
    rows, readable = parse_output(name.removeprefix("bench_"), out)
    return Outcome(name, command, code, time.perf_counter() - started, out, err, rows, readable)


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("MET" if met else "NOT MET")


def _value(row: Row) -> str:
    if row.value in ("", None):
        return ""
    if isinstance(row.value, float):
        return f"{row.value:.4g}{(' ' + row.unit) if row.unit else ''}"
    return f"{row.value}{(' ' + row.unit) if row.unit else ''}"


def summary_table(outcomes: list[Outcome]) -> list[list[str]]:
    table = []
    for outcome in outcomes:
        if outcome.returncode not in (0, 1) and not outcome.rows:
            table.append([outcome.script, "(failed to run)", "", "", f"exit {outcome.returncode}"])
        for row in outcome.rows:
            table.append([row.benchmark, row.name, _value(row), row.target, _verdict(row.met)])
    return table


def demote_headings(text: str, levels: int = 2) -> str:
    """Markdown headings pushed down `levels` levels (a merged write-up nests under its section)."""
    return re.sub(r"^(#{1,6}) ", lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", text, flags=re.MULTILINE)


def write_markdown(path: Path, outcomes: list[Outcome], command: str, machine: dict[str, object]) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `benchmarks/run_all.py`; every number below comes from the command shown. The",
        "benchmarks print ratios against a baseline measured in the same process or command, so they",
        "compare across machines better than the absolute times do.",
        "",
        f"Command (from the repository root): `{command}`",
        "",
        f"Machine: {machine.get('nproc')} CPUs ({machine.get('cpu')}), {machine.get('ram_gb')} GB RAM, "
        f"{machine.get('os')}, Python {machine.get('python')}; load average at start "
        f"{machine.get('load_avg_at_start')} (the machine is shared: compare ratios, not absolutes).",
        "",
        f"Date: {machine.get('date')}",
        "",
        "## Targets",
        "",
        "| benchmark | measure | value | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for row in summary_table(outcomes):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines.append("")
    for outcome in outcomes:
        lines += [
            f"## {outcome.script}",
            "",
            f"`{' '.join(shlex.quote(c) for c in outcome.command)}`: exit {outcome.returncode}, "
            f"{outcome.seconds:.0f} s"
            + ("" if outcome.machine_readable else " (read from its text output: no BENCH-JSON line)"),
            "",
            "```",
            "\n".join(line for line in outcome.stdout.rstrip().splitlines() if not line.startswith(MARKER)),
            "```",
            "",
        ]
        if outcome.returncode not in (0, 1):
            lines += ["stderr (last lines):", "", "```", "\n".join(outcome.stderr.splitlines()[-15:]), "```", ""]
    for detail in sorted((ROOT / "docs").glob("benchmarks-*.md")):
        text = demote_headings(detail.read_text(encoding="utf-8").strip())
        lines += [f"## Detailed write-up: docs/{detail.name}", "", text, ""]
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only bench_NAME.py")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME", help="skip bench_NAME.py")
    parser.add_argument("--quick", action="store_true", help="smaller runs (see QUICK_ARGS)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per script (default 3600)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Markdown report")
    parser.add_argument("--no-write", action="store_true", help="do not write the Markdown report")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is NOT MET")
    args = parser.parse_args(argv)

    scripts = sorted(BENCHMARKS.glob("bench_*.py"))
    wanted = {n.removeprefix("bench_") for n in args.only}
    skipped = {n.removeprefix("bench_") for n in args.skip}
    scripts = [
        s
        for s in scripts
        if (not wanted or s.stem.removeprefix("bench_") in wanted) and s.stem.removeprefix("bench_") not in skipped
    ]
    if not scripts:
        print("no benchmark scripts selected", file=sys.stderr)
        return 2
    machine = _machine()
    outcomes = []
    for script in scripts:
        extra = QUICK_ARGS.get(script.stem, []) if args.quick else FULL_ARGS.get(script.stem, [])
        print(f"== {script.name} {' '.join(extra)}", flush=True)
        outcome = run_script(script, extra, args.timeout)
        printable = [line for line in outcome.stdout.rstrip().splitlines() if not line.startswith(MARKER)]
        print("\n".join(printable), flush=True)
        if outcome.returncode not in (0, 1):
            print(f"!! {script.name} exited {outcome.returncode}: {outcome.stderr.strip()[-800:]}", flush=True)
        outcomes.append(outcome)

    table = summary_table(outcomes)
    widths = [
        max(len(str(r[i])) for r in [["benchmark", "measure", "value", "target", "verdict"], *table]) for i in range(5)
    ]
    print()
    for row in [["benchmark", "measure", "value", "target", "verdict"], *table]:
        print("  ".join(str(c).ljust(min(w, 90)) for c, w in zip(row, widths, strict=True)))
    met = sum(r[4] == "MET" for r in table)
    not_met = sum(r[4] == "NOT MET" for r in table)
    print(f"\n{met} MET, {not_met} NOT MET, {len(outcomes)} scripts")
    if not args.no_write:
        argv_text = " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        command = f".venv/bin/python benchmarks/run_all.py {argv_text}".strip()
        write_markdown(args.out, outcomes, command, machine)
        print(f"written {args.out}")
    failed = any(o.returncode not in (0, 1) for o in outcomes)
    return 1 if failed or (args.strict and not_met) else 0


if __name__ == "__main__":
    sys.exit(main())
