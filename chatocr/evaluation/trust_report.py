"""The `trust` section of an evaluation report (evaluation/calibrating.py) as Markdown and as rich
tables: today's confidence beside the calibrated one (held out), per set and over all sets; the
reliability table; coverage at 99 % precision per field; each check's precision; the re-asks."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_trust", "trust_markdown", "trust_tables"]


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _bin(entry: dict[str, Any]) -> list[str]:
    return [str(entry["count"]), _num(entry["confidence"]), _num(entry["accuracy"])]


def trust_tables(section: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table of the section."""
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    header = ["set", "confidence", "fields", "accuracy %", "ECE", "coverage at 99 % %", "threshold", "errors accepted"]
    rows = []
    for group, both in section["sets"].items():
        for kind in ("today", "calibrated"):
            entry = both[kind]
            rows.append(
                [
                    group,
                    kind + (" (held out)" if kind == "calibrated" else ""),
                    str(entry["fields"]),
                    _pct(entry["accuracy"]),
                    _num(entry["ece"]),
                    _pct(entry["coverage_at_99"]),
                    _num(entry["threshold_at_99"], 4),
                    str(entry["errors_accepted_at_99"]),
                ]
            )
    tables.append(("Confidence: today's (grounding) and calibrated (cross-validated by document)", header, rows))
    last = next(reversed(section["sets"].values()), None)
    if last is not None:
        bins = [
            "confidence bin",
            "today: fields",
            "today: conf.",
            "today: right",
            "cal.: fields",
            "cal.: conf.",
            "cal.: right",
        ]
        pairs = zip(last["today"]["reliability"], last["calibrated"]["reliability"], strict=True)
        rows = [[t["bin"], *_bin(t), *_bin(c)] for t, c in pairs]
        tables.append((f"Reliability ({next(reversed(section['sets']))})", bins, rows))
    rows = []
    for group, both in section["sets"].items():
        if group == "ALL":
            continue
        for name, entry in both["calibrated"]["per_field"].items():
            today = both["today"]["per_field"][name]
            rows.append(
                [group, name, str(entry["fields"]), _pct(entry["accuracy"]), _pct(today["coverage_at_99"]),
                 _pct(entry["coverage_at_99"]), _num(today["ece"]), _num(entry["ece"])]
            )  # fmt: skip
    head = ["set", "field", "n", "accuracy %", "today: cov. 99 %", "calibrated: cov. 99 %", "today: ECE", "cal.: ECE"]
    tables.append(("Per field", head, rows))
    rows = [
        [name, str(r["ran"]), str(r["skipped"]), str(r["passed"]), str(r["passed_wrong"]), str(r["failed"]),
         str(r["failed_wrong"]), _pct(r["precision"])]
        for name, r in section["checks"].items()
    ]  # fmt: skip
    head = [
        "check",
        "ran",
        "skipped",
        "passed",
        "passed, a field wrong",
        "failed",
        "failed, a field wrong",
        "precision %",
    ]
    tables.append(("Document checks on the final values", head, rows))
    asked = section["rechecks"]
    tables.append(
        (
            "Re-asks after failed checks (the named fields' answers, before and after)",
            ["documents re-asked", "won (wrong -> right)", "lost (right -> wrong)", "right kept", "wrong kept"],
            [[str(asked[k]) for k in ("documents", "won", "lost", "right_kept", "wrong_kept")]],
        )
    )
    look = section.get("second_look")
    if look:
        keys = ("documents_looked", "fields_looked", "agreed", "agreed_right", "disagreed", "disagreed_right",
                "tokens_per_document", "seconds_per_document", "coverage_at_99_without", "coverage_at_99_with",
                "ece_without", "ece_with")  # fmt: skip
        tables.append(
            ("The second look (held out, with and without its signal)", list(keys), [[str(look[k]) for k in keys]])
        )
    return tables


def trust_markdown(section: dict[str, Any]) -> str:
    parts = ["## Trust: calibrated confidence, checks and the review queue", ""]
    for title, header, rows in trust_tables(section):
        parts += [f"#### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        parts += ["| " + " | ".join(row) + " |" for row in rows]
        parts.append("")
    for name, why in section.get("unfitted", {}).items():
        parts.append(f"- {name}: no calibration: {why}")
    if section.get("reliability_png"):
        parts.append(f"Reliability diagram: `{section['reliability_png']}`")
    return "\n".join(parts) + "\n"


def print_trust(section: dict[str, Any], console: Console) -> None:
    for title, header, rows in trust_tables(section):
        table = Table(*header, title=title, title_justify="left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for name, why in section.get("unfitted", {}).items():
        console.print(f"{name}: no calibration: {why}", markup=False, highlight=False)
