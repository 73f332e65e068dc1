"""Readable forms of an evaluation report: rich tables for the terminal, Markdown for docs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["markdown_report", "print_report"]


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _times(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _delta(value: Any) -> str:
    return "-" if value is None else f"{value:+.1f}"


SUMMARY_COLUMNS = (
    "strategy",
    "exact %",
    "ANLS",
    "F1 %",
    "grounded %",
    "calls/doc",
    "tokens/doc",
    "s/doc",
    "exact vs base (pts)",
    "tokens vs base",
    "model's answers exact %",
    "swaps",
)


def _summary_rows(per_strategy: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, entry in per_strategy.items():
        overall, usage = entry["overall"], entry["usage"]
        vs = entry.get("vs_baseline", {})
        rows.append(
            [
                name,
                _pct(overall.get("exact")),
                _num(overall.get("anls"), 3),
                _pct(overall.get("f1")),
                _pct(overall.get("grounding_rate")),
                _num(usage.get("calls_per_doc"), 2),
                _num(usage.get("tokens_per_doc")),
                _num(usage.get("seconds_per_doc"), 1),
                _delta(vs.get("exact_delta_points")),
                _times(vs.get("tokens_ratio")),
                # Before snapping put the page's text in place of the model's answer.
                _pct(overall.get("exact_answers")),
                "-" if overall.get("swaps") is None else str(overall["swaps"]),
            ]
        )
    return rows


def _field_rows(report: dict[str, Any], dataset: str) -> tuple[list[str], list[list[str]]]:
    per_strategy = report["results"][dataset]
    names = list(per_strategy)
    fields: list[str] = []
    for entry in per_strategy.values():
        for f in entry.get("fields", {}):
            if f not in fields:
                fields.append(f)
    ocr = report["ocr_recall"].get(dataset, {}).get("fields", {})
    # The gap to the ceiling (OCR recall - exact) per strategy: what is left is the model's loss
    # where it is large, the OCR's where the ceiling itself is low.
    header = ["field", "OCR recall %", *names, *(f"gap {n}" for n in names)]
    rows = []
    for f in fields:
        exact = [per_strategy[n]["fields"].get(f, {}).get("exact") for n in names]
        ceiling = ocr.get(f)
        gaps = ["-" if e is None or ceiling is None else f"{100 * (ceiling - e):+.1f}" for e in exact]
        rows.append([f, _pct(ceiling), *(_pct(e) for e in exact), *gaps])
    return header, rows


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    strategies = {s["name"]: s["label"] for s in report["strategies"]}
    for dataset, per_strategy in report["results"].items():
        ocr = report["ocr_recall"].get(dataset, {}).get("overall")
        docs = max((e["usage"].get("documents", 0) for e in per_strategy.values()), default=0)
        title = f"{dataset}: {docs} documents, OCR recall (ceiling) {_pct(ocr)}%"
        table = Table(*SUMMARY_COLUMNS, title=title, title_justify="left")
        for row in _summary_rows(per_strategy):
            table.add_row(*row)
        console.print(table)
        if dataset != "ALL":
            header, rows = _field_rows(report, dataset)
            fields = Table(*header, title=f"{dataset}: exact match % per field", title_justify="left")
            for row in rows:
                fields.add_row(*row)
            console.print(fields)
    legend = Table("strategy", "what it does", title="strategies", title_justify="left")
    for name, label in strategies.items():
        legend.add_row(name, label)
    console.print(legend)
    console.print(f"normalisation: {report['normalization']}", markup=False)
    if report.get("baseline"):
        console.print(f"baseline: {report['baseline']} (ratios and deltas are against it)", markup=False)


def _md_table(header: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_report(report: dict[str, Any]) -> str:
    """The report's tables in Markdown (summary per set, per-field exact match, strategies)."""
    parts: list[str] = []
    for dataset, per_strategy in report["results"].items():
        ocr = report["ocr_recall"].get(dataset, {}).get("overall")
        docs = max((e["usage"].get("documents", 0) for e in per_strategy.values()), default=0)
        parts.append(f"#### {dataset}: {docs} documents, OCR recall (ceiling) {_pct(ocr)}%\n")
        parts.append(_md_table(SUMMARY_COLUMNS, _summary_rows(per_strategy)) + "\n")
        if dataset != "ALL":
            header, rows = _field_rows(report, dataset)
            parts.append(f"Exact match % per field ({dataset}):\n")
            parts.append(_md_table(header, rows) + "\n")
    parts.append("Strategies:\n")
    parts.append(_md_table(["strategy", "what it does"], [[s["name"], s["label"]] for s in report["strategies"]]))
    return "\n".join(parts) + "\n"
