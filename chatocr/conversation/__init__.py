"""The conversation manager: prompts, and planning messages within a backend's limits."""

from chatocr.conversation.planner import ConversationPlanner, Plan, PlanExample, PlanPolicy, TaskSpec
from chatocr.conversation.report import DroppedExample, IncludedExample, MessageSize, PlanReport
from chatocr.conversation.templates import TEMPLATE_NAMES, PromptSet, load_prompts

__all__ = [
    "TEMPLATE_NAMES",
    "ConversationPlanner",
    "DroppedExample",
    "IncludedExample",
    "MessageSize",
    "Plan",
    "PlanExample",
    "PlanPolicy",
    "PlanReport",
    "PromptSet",
    "TaskSpec",
    "load_prompts",
]
