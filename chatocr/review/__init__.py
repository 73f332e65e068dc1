"""Review: a person checks and corrects a results file in the browser (`chatocr review RESULTS`).

Corrections go to a review file beside the results (`results.review.jsonl`, append-only: the
results file is never rewritten); a fully reviewed document joins the memory of its scenario
(chatocr.memory) and can be exported as a labelled set (`labels.export_labels`).

    from chatocr.review import ReviewSession, create_review_app
    session = ReviewSession(Path("results.jsonl"), reviewer="ann")
    app = create_review_app(session)          # FastAPI; or review_router(session) to mount it

It sits above `viewer` and `runs` (it shows results as the report does) and below `api`.
"""

from chatocr.review.events import ReviewEvent, ReviewLog, ReviewState, review_path_for
from chatocr.review.session import MemorySettings, ReviewSession

__all__ = [
    "MemorySettings",
    "ReviewEvent",
    "ReviewLog",
    "ReviewSession",
    "ReviewState",
    "create_review_app",
    "review_path_for",
    "review_router",
]


def __getattr__(name: str) -> object:
    """The web app needs FastAPI (the `serve` extra): imported only when asked for."""
    if name in ("create_review_app", "review_router"):
        from chatocr.review import app

        return getattr(app, name)
    raise AttributeError(name)
