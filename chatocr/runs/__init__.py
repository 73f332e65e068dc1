"""The bookkeeping of a batch run, shared by the CLI, the service and the Ray runner: which
documents (`inputs`), how each finished one is recorded (`records`), and the results file that a
run appends to and the next run resumes from (`log`)."""

from chatocr.runs.inputs import collect_inputs, key_inputs, pages_to_do
from chatocr.runs.log import ResultLog
from chatocr.runs.records import DocKey, DoneKey, csv_columns, format_line, read_results, record_for

__all__ = [
    "DocKey",
    "DoneKey",
    "ResultLog",
    "collect_inputs",
    "csv_columns",
    "format_line",
    "key_inputs",
    "pages_to_do",
    "read_results",
    "record_for",
]
