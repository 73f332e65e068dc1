"""Extraction: routing, example selection, the checked extraction loop, grounding, results."""

from chatocr.extraction.examples import ExampleBank, resolve_fields
from chatocr.extraction.extractor import ExtractionBudget, json_schema_for
from chatocr.extraction.grounding import Match, TextIndex
from chatocr.extraction.parsing import ParsedReply, parse_reply
from chatocr.extraction.pipeline import ExtractionPipeline, ExtractionTask, PreparedDocument
from chatocr.extraction.result import CallRecord, Evidence, Extraction, FieldResult, Route
from chatocr.extraction.routing import Router, RoutingPolicy
from chatocr.extraction.validation import check_value, normalize_amount, normalize_date
from chatocr.similarity import SimilarityIndex

__all__ = [
    "CallRecord",
    "Evidence",
    "ExampleBank",
    "Extraction",
    "ExtractionBudget",
    "ExtractionPipeline",
    "ExtractionTask",
    "FieldResult",
    "Match",
    "ParsedReply",
    "PreparedDocument",
    "Route",
    "Router",
    "RoutingPolicy",
    "SimilarityIndex",
    "TextIndex",
    "check_value",
    "json_schema_for",
    "normalize_amount",
    "normalize_date",
    "parse_reply",
    "resolve_fields",
]
