"""chatocr: OCR + an LLM with token-budgeted few-shot dialogue, returning grounded JSON.

from chatocr import ChatOCR
result = ChatOCR().extract("receipt.jpg", keys=["company", "date", "total"])
"""

from chatocr.api import ChatOCR, ChatSession
from chatocr.config import ChatOCRConfig, load_config
from chatocr.errors import ChatOCRError
from chatocr.extraction.result import CallRecord, Evidence, Extraction, FieldResult, Route

__version__ = "0.1.0"

__all__ = [
    "CallRecord",
    "ChatOCR",
    "ChatOCRConfig",
    "ChatOCRError",
    "ChatSession",
    "Evidence",
    "Extraction",
    "FieldResult",
    "Route",
    "__version__",
    "load_config",
]
