"""Results you can look at: one self-contained HTML file with each document's page image, every OCR
line's box and every extracted field's boxes drawn over it, and a table of the fields.

    from chatocr.viewer import ReportItem, write_report
    write_report("report.html", [ReportItem(result, document, images)])

`chatocr extract ... --html report.html` and `chatocr view results.jsonl -o report.html` use it.
"""

from chatocr.viewer.report import LOW_CONFIDENCE, ReportItem, build_report, document_view, write_report
from chatocr.viewer.sources import gather_items, read_result_file

__all__ = [
    "LOW_CONFIDENCE",
    "ReportItem",
    "build_report",
    "document_view",
    "gather_items",
    "read_result_file",
    "write_report",
]
