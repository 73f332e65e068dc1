"""Memory: the documents people reviewed, kept per scenario as few-shot examples and found again
by the same text and layout similarity that ranks a scenario's own examples.

    from chatocr.memory import DocumentKey, MemoryExample, MemoryStore

    store = MemoryStore("retail_receipt")              # ~/.local/share/chatocr/memory/retail_receipt
    store.add([MemoryExample.from_document("retail_receipt", text, answer, DocumentKey(path, sha256))])
    for match in store.search(document_text, limit=4): # best first; never raises
        match.example.answer, match.score

It sits below `extraction` (which turns matches into the planner's examples:
`chatocr.extraction.examples.remembered_examples`) and above the OCR and conversation parts.
"""

from chatocr.memory.index import ArrayIndex, IndexFileError
from chatocr.memory.records import (
    DocumentKey,
    MemoryExample,
    MemoryMatch,
    check_scenario_name,
    example_id,
    lines_of,
    text_digest,
)
from chatocr.memory.store import DEFAULT_CAP, AddOutcome, MemoryStore, default_root, store_names

__all__ = [
    "DEFAULT_CAP",
    "AddOutcome",
    "ArrayIndex",
    "DocumentKey",
    "IndexFileError",
    "MemoryExample",
    "MemoryMatch",
    "MemoryStore",
    "check_scenario_name",
    "default_root",
    "example_id",
    "lines_of",
    "store_names",
    "text_digest",
]
