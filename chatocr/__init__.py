"""chatocr: OCR + an LLM with token-budgeted few-shot dialogue, returning grounded JSON."""

from chatocr.errors import ChatOCRError

__version__ = "0.1.0"

__all__ = ["ChatOCRError", "__version__"]
