"""Route a document to a scenario, or straight to extraction. Never an error for the unfamiliar.

PP-ChatOCR v1 asked the LLM to pick a scene from a list; a document outside the list crashed the
program and a misclassified one got the wrong examples. Here:

1. A named scenario goes straight to extraction.
2. Otherwise a cheap local pre-score compares the OCR text with each scenario (its most similar
   example and its description). A clear winner is taken without an LLM call. A Chinese scenario
   is no candidate for a text with (almost) no Chinese characters: a German receipt is never a
   购物小票, however its words score.
3. When the pre-score is not confident and classification is on, the LLM classifier chooses among
   the best candidates or answers "none"; an answer it is not confident about counts as "none".
4. "none", low confidence or classification off: extraction with the user's keys and examples
   chosen by similarity across all scenarios (the `generic` scenario's fields when no keys).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chatocr.conversation.planner import ConversationPlanner
from chatocr.extraction.parsing import parse_reply
from chatocr.extraction.result import CallRecord, Route
from chatocr.llm.base import ChatModel, ChatSettings
from chatocr.messages import Message
from chatocr.scenarios.loader import ScenarioLibrary
from chatocr.scenarios.model import Scenario
from chatocr.similarity import SimilarityIndex, words

__all__ = ["FALLBACK_SCENARIO", "Router", "RoutingPolicy", "language_of"]

FALLBACK_SCENARIO = "generic"


@dataclass(frozen=True)
class RoutingPolicy:
    """Thresholds of the pre-score (cosine similarities in [0, 1]) and of the classifier.

    The defaults were set on the built-in scenarios' own examples (leave-one-out), not on the
    evaluation data: see docs/pipeline.md.
    """

    min_score: float = 0.10  # the best scenario must be at least this similar ...
    min_margin: float = 0.05  # ... and ahead of the second by this much
    classifier_candidates: int = 4
    min_classifier_confidence: float = 0.5


# A Chinese scenario needs a document written in Chinese: more than the odd stray character the
# OCR makes of a logo or a symbol.
_MIN_CHINESE_CHARACTERS = 3


def _chinese_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def language_of(text: str) -> str:
    """The prompts' language for a document without a scenario: "zh" when CJK dominates its letters."""
    cjk = _chinese_count(text)
    letters = sum(1 for ch in text if ch.isalpha())
    return "zh" if letters and cjk / letters > 0.2 else "en"


class Router:
    def __init__(self, library: ScenarioLibrary, policy: RoutingPolicy | None = None) -> None:
        self.library = library
        self.policy = policy or RoutingPolicy()
        self._routable = [s for s in library if s.name != FALLBACK_SCENARIO]
        # Word-level (see similarity.words): routing is about what a document is, not its layout.
        self._descriptions = SimilarityIndex([f"{s.title}\n{s.description}" for s in self._routable], words)
        self._owners = [s.name for s in self._routable for _ in s.examples]
        self._examples = SimilarityIndex([e.text for s in self._routable for e in s.examples], words)

    def prescore(self, text: str) -> list[tuple[str, float]]:
        """(scenario, score) best first: 0.7 x the most similar example + 0.3 x the description."""
        by_example: dict[str, float] = {}
        for owner, score in zip(self._owners, self._examples.scores(text), strict=True):
            by_example[owner] = max(by_example.get(owner, 0.0), score)
        by_description = self._descriptions.scores(text)
        in_chinese = _chinese_count(text) >= _MIN_CHINESE_CHARACTERS
        scored = [
            (s.name, round(0.7 * by_example.get(s.name, 0.0) + 0.3 * d, 4))
            for s, d in zip(self._routable, by_description, strict=True)
            if in_chinese or s.language != "zh"
        ]
        return sorted(scored, key=lambda pair: (-pair[1], pair[0]))

    def fallback_scenario(self) -> Scenario | None:
        return self.library.get(FALLBACK_SCENARIO) if FALLBACK_SCENARIO in self.library else None

    async def route(
        self,
        text: str,
        model: ChatModel | None,
        *,
        classify: bool,
        planner: ConversationPlanner | None = None,
        settings: ChatSettings | None = None,
    ) -> tuple[Route, Scenario | None, list[CallRecord]]:
        """classify: ask the LLM classifier when the pre-score is not confident; planner: the
        configured prompts and the backend's budget the classifier's message must fit; settings:
        the configured request settings (the answer's schema and length are set here). Without a
        planner the classifier is not asked (as with classify off)."""
        policy = self.policy
        ranked = self.prescore(text)
        calls: list[CallRecord] = []
        if not ranked:
            return Route("fallback", None, None, [], "no scenarios to route to"), None, calls
        best, best_score = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if best_score >= policy.min_score and best_score - second >= policy.min_margin:
            reason = f"pre-score {best_score:.2f}, ahead of the next by {best_score - second:.2f}"
            return Route("prescore", best, best_score, ranked, reason), self.library.get(best), calls
        if not classify or model is None or planner is None:
            reason = f"pre-score not confident ({best_score:.2f}, margin {best_score - second:.2f}); classifier off"
            return Route("fallback", None, best_score, ranked, reason), None, calls
        candidates = [self.library.get(name) for name, _ in ranked[: policy.classifier_candidates]]
        choice, confidence, call = await self._classify(text, candidates, model, planner, settings or ChatSettings())
        calls.append(call)
        if choice is not None and confidence >= policy.min_classifier_confidence:
            reason = f"classifier chose {choice} (confidence {confidence:.2f})"
            return Route("classifier", choice, confidence, ranked, reason), self.library.get(choice), calls
        said = "none of these" if choice is None else f"{choice} with low confidence {confidence:.2f}"
        return Route("fallback", None, confidence, ranked, f"classifier said {said}"), None, calls

    async def _classify(
        self,
        text: str,
        candidates: list[Scenario],
        model: ChatModel,
        planner: ConversationPlanner,
        settings: ChatSettings,
    ) -> tuple[str | None, float, CallRecord]:
        names = [s.name for s in candidates]
        scenarios = [{"name": s.name, "title": s.title, "description": s.description} for s in candidates]
        messages = _classifier_messages(planner, scenarios, text)
        schema = {
            "type": "object",
            "properties": {"scenario": {"type": "string", "enum": [*names, "none"]}, "confidence": {"type": "number"}},
            "required": ["scenario", "confidence"],
        }
        record = CallRecord.start("classify", model, messages)
        try:
            reply = await model.chat(messages, replace(settings, json_mode=schema, max_output_tokens=64))
        except Exception as exc:  # a failed classification falls back; it must not lose the document
            record.error = f"{type(exc).__name__}: {exc}"
            return None, 0.0, record
        record.finish(reply)
        parsed = parse_reply(reply.text)
        if parsed.data is None:
            return None, 0.0, record
        answer = str(parsed.data.get("scenario", "")).strip()
        try:
            confidence = float(parsed.data.get("confidence", 0.0))
        except (TypeError, ValueError):
            confidence = 0.0
        if answer not in names:
            return None, confidence, record
        return answer, min(max(confidence, 0.0), 1.0), record


def _classifier_messages(planner: ConversationPlanner, scenarios: list[dict[str, str]], text: str) -> list[Message]:
    """The classifier's one message. It needs the gist, not the whole document: the start of the
    text, at most 2000 characters, shortened until the message fits the backend's budget."""
    budget = min(2000, len(text))
    while True:
        clipped = text if budget >= len(text) else text[:budget] + "\n..."
        prompt = planner.prompts.render("classifier", scenarios=scenarios, text=clipped)
        messages = [Message("user", prompt, kind="classifier")]
        if budget <= 200 or planner.fits(messages):
            return messages
        budget = budget * 2 // 3
