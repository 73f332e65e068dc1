"""Reviewed results as training data: conversations for the LLM, line crops for the OCR.

    from chatocr.export import SFTOptions, export_sft, export_ocr_lines
    export_sft(["../shared/data/sroie_train"], "sft/", SFTOptions(formats=("xtuner", "llamafactory", "openai")))
    export_ocr_lines(["results.jsonl"], "rec/")

Parts: sources.py (labelled sets, results files, corrected results), conversation.py (the
conversation chatocr's planner builds for a document), formats.py (XTuner, LLaMA-Factory
sharegpt/alpaca, OpenAI/Qianfan), redact.py (consistent fakes for personal values), sft.py and
ocr_lines.py (the two exports), options.py (what an export is asked to do, one object per thing),
files.py (safe writing). See docs/finetuning.md.
"""

from chatocr.export.ocr_lines import OCRLinesSummary, export_ocr_lines
from chatocr.export.options import Backend, OCRLinesOptions, ReviewOptions, SFTOptions, SplitOptions
from chatocr.export.sft import ExportSummary, export_sft

__all__ = [
    "Backend",
    "ExportSummary",
    "OCRLinesOptions",
    "OCRLinesSummary",
    "ReviewOptions",
    "SFTOptions",
    "SplitOptions",
    "export_ocr_lines",
    "export_sft",
]
