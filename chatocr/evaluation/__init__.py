"""Evaluation: accuracy, grounding and cost of extraction strategies on labelled document sets,
against a PP-ChatOCR-style baseline (`chatocr eval`)."""

from chatocr.evaluation.datasets import PROFILES, Dataset, DatasetProfile, Document, load_dataset
from chatocr.evaluation.metrics import NORMALIZATION, FieldCounts, anls, get_normalizer, normalize
from chatocr.evaluation.runner import DocOutcome, Evaluator, FixedOrderBank, build_report
from chatocr.evaluation.strategies import GROUPS, STRATEGIES, Strategy, resolve_strategies

__all__ = [
    "GROUPS",
    "NORMALIZATION",
    "PROFILES",
    "STRATEGIES",
    "Dataset",
    "DatasetProfile",
    "DocOutcome",
    "Document",
    "Evaluator",
    "FieldCounts",
    "FixedOrderBank",
    "Strategy",
    "anls",
    "build_report",
    "get_normalizer",
    "load_dataset",
    "normalize",
    "resolve_strategies",
]
