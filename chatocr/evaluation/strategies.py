"""Named ways to run extraction, compared by `chatocr eval` on the same cached OCR results.

A strategy varies one thing at a time around chatocr's defaults (chatocr/config.py):

    default        the configured defaults: packing, examples, re-statement; examples ranked by
                   similarity; the scenario given (straight to extraction)
    single/pairs/packed               the conversation manager's packing policy
    examples-0/-1/-3/-all             at most that many few-shot examples (all: as the budget allows)
    fixed-examples                    the scenario's examples in file order, not by similarity
    unfocused                         every scenario rule and whole example texts, not only what
                                      concerns the keys asked (config `focus`)
    unfocused-all                     unfocused with every example that fits: chatocr's defaults
                                      before `focus` and the 2-example limit (2026-11-21)
    classifier                        no scenario given: routed by pre-score / the LLM classifier
    restate-1, restate-2, restate-off re-state the task in every Nth example turn (off: only the final turn)
    stable-order                      the chosen examples laid out in id order (prefix-cache friendly);
                                      every other chatocr strategy uses relevance order (most relevant
                                      nearest the document), whatever the configured `order` is
    tuned          the zero-example conversation `chatocr export sft` trains on, sent to a fine-tuned
                   model: `--tuned-llm local:/path/to/tuned.gguf` (else eval's --llm), so
                   `--strategy default --strategy tuned` compares it with the few-shot default
    baseline       PP-ChatOCR-style: one stateless message with PP-ChatOCRv3's default prompt
    baseline-zh    the same, always with the Chinese original prompt

Accuracy levers (issue 17), each one config setting turned the other way from the default:

    no-snap / snap                    the model's answers as written / the page's own text for them
    field-reask                       a bad required field re-asked alone, as numbered choices
    extractive                        text fields constrained to the page's strings (local grammar)
    layout-examples                   examples ranked by text and layout similarity (weight 0.5)
    positions                         start/destination, buyer/seller put back by the boxes
    accuracy                          every lever above on
    second-look                       a second, cheap look at uncertain fields (docs/trust.md; a
                                      signal of correctness, the values unchanged)

Ad-hoc strategies: "packing=pairs,examples=1,restate=1,selection=fixed,route=classifier,focus=off"
(any subset of the keys; the rest are the defaults; `llm=provider:model` runs it on another backend).

Groups: "standard" = default + baseline; "compare" = the one-factor-at-a-time set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from chatocr.config import ChatOCRConfig
from chatocr.conversation.planner import PlanPolicy
from chatocr.errors import ConfigError

__all__ = ["GROUPS", "STRATEGIES", "Strategy", "resolve_strategies"]

Packing = Literal["single", "pairs", "packed"]


@dataclass(frozen=True)
class Strategy:
    name: str
    kind: Literal["chatocr", "baseline"] = "chatocr"
    packing: Packing | None = None  # None: the configured default
    max_examples: int | Literal["default"] | None = "default"  # None: as many as fit
    restate_every: int | Literal["default"] | None = "default"  # None: only the final turn
    selection: Literal["similarity", "fixed"] = "similarity"
    route: Literal["given", "classifier"] = "given"
    # Layout of the chosen examples: most relevant nearest the document, or a stable (id) order
    # that lets a local model re-use its prompt-prefix cache. Explicit, not the configured "auto".
    order: Literal["relevance", "stable"] = "relevance"
    focus: bool | Literal["default"] = "default"
    language: str | None = None  # baseline: force the prompt language
    llm: str | None = None  # another chat backend for this strategy ("local:/path/tuned.gguf"); None: eval's
    # Config settings this strategy changes (the accuracy levers: snap, field_reask, extractive,
    # example_layout, positions), as sorted (key, value) pairs.
    overrides: tuple[tuple[str, Any], ...] = ()
    description: str = ""

    def resolved(self, config: ChatOCRConfig) -> Strategy:
        """With the configured defaults filled in (what actually runs)."""
        if self.kind == "baseline":
            return self
        return replace(
            self,
            packing=self.packing or config.packing,
            max_examples=config.max_examples if self.max_examples == "default" else self.max_examples,
            restate_every=config.restate_every if self.restate_every == "default" else self.restate_every,
            focus=config.focus if self.focus == "default" else self.focus,
        )

    def plan_policy(self) -> PlanPolicy:
        """The conversation manager's policy of a resolved chatocr strategy."""
        examples, restate = self.max_examples, self.restate_every
        if self.packing is None or examples == "default" or restate == "default" or self.focus == "default":
            raise ValueError(f"strategy {self.name!r} is not resolved: call resolved(config) first")
        return PlanPolicy(self.packing, restate, examples, self.order)

    def settings(self) -> dict[str, Any]:
        """What determines the outcome (the cache key's part), without the name."""
        data = asdict(self)
        data.pop("name")
        data.pop("description")
        if data["llm"] is None:  # keep the cache keys of runs made before strategies had their own model
            data.pop("llm")
        if self.kind == "baseline":
            ignored = ("packing", "max_examples", "restate_every", "selection", "route", "order", "focus", "overrides")
            for key in ignored:
                data.pop(key)
            return data
        # Keep the result-cache keys of runs made before `order` and `focus` existed (they ran in
        # relevance order, unfocused).
        if self.order == "relevance":
            data.pop("order")
        if self.focus is False:
            data.pop("focus")
        if not self.overrides:
            data.pop("overrides")
        else:
            data["overrides"] = [list(pair) for pair in self.overrides]
        return data

    def label(self) -> str:
        if self.kind == "baseline":
            return f"PP-ChatOCRv3 prompt, 1 stateless message{', zh' if self.language == 'zh' else ''}"
        examples = "all" if self.max_examples is None else str(self.max_examples)
        restate = "off" if self.restate_every is None else f"every {self.restate_every}"
        levers = "".join(f", {key}={value}" for key, value in self.overrides)
        on = f", on {self.llm}" if self.llm else ""
        return (
            f"{self.packing}, examples={examples} ({self.selection}, {self.order} order), restate {restate}, "
            f"{'focused' if self.focus is True else 'unfocused'}, "
            f"{'classifier' if self.route == 'classifier' else 'scenario given'}{levers}{on}"
        )


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("default", description="chatocr's configured defaults"),
        Strategy("single", packing="single", description="examples inline in one user message"),
        Strategy("pairs", packing="pairs", description="one user/assistant pair per example"),
        Strategy("packed", packing="packed", description="example turns filled to the per-message limit"),
        Strategy("examples-0", max_examples=0, description="zero-shot"),
        Strategy("examples-1", max_examples=1, description="the most similar example only"),
        Strategy("examples-3", max_examples=3, description="the 3 most similar examples"),
        Strategy("examples-all", max_examples=None, description="every example the budget allows"),
        Strategy("fixed-examples", selection="fixed", description="examples in file order, not by similarity"),
        Strategy("unfocused", focus=False, description="every rule, whole example texts"),
        Strategy(
            "unfocused-all",
            focus=False,
            max_examples=None,
            description="unfocused, every example that fits (the defaults before 2026-11-21)",
        ),
        Strategy("classifier", route="classifier", description="scenario not given: routed"),
        Strategy("restate-1", restate_every=1, description="task reminder in every example turn"),
        Strategy("restate-2", restate_every=2, description="task reminder in every 2nd example turn"),
        Strategy("restate-off", restate_every=None, description="the task only in the final turn"),
        Strategy("stable-order", order="stable", description="examples laid out by id: prompt-prefix cache reuse"),
        Strategy("no-snap", overrides=(("snap", False),), description="the model's answers as written"),
        Strategy("snap", overrides=(("snap", True),), description="grounded values as the page's own text"),
        Strategy("field-reask", overrides=(("field_reask", True),), description="bad fields re-asked as choices"),
        Strategy("extractive", overrides=(("extractive", True),), description="text fields from the page's strings"),
        Strategy("layout-examples", overrides=(("example_layout", 0.5),), description="text + layout ranking"),
        Strategy("positions", overrides=(("positions", True),), description="position pairs decided by the boxes"),
        Strategy(
            "second-look",
            overrides=(("second_look", True),),
            description="a second, cheap look at the fields the model was unsure of (a trust signal)",
        ),
        Strategy(
            "accuracy",
            overrides=(("example_layout", 0.5), ("field_reask", True), ("positions", True), ("snap", True)),
            description="snap, field re-asks, layout ranking and positions together",
        ),
        Strategy("tuned", max_examples=0, description="the exported zero-example conversation, for a fine-tuned model"),
        Strategy("baseline", kind="baseline", description="PP-ChatOCR-style single stateless prompt"),
        Strategy("baseline-zh", kind="baseline", language="zh", description="baseline, Chinese prompt always"),
    )
}

GROUPS: dict[str, tuple[str, ...]] = {
    "standard": ("default", "baseline"),
    "levers": ("default", "no-snap", "field-reask", "extractive", "layout-examples", "positions", "accuracy"),
    "compare": (
        "default",
        "single",
        "pairs",
        "examples-0",
        "examples-1",
        "examples-3",
        "examples-all",
        "unfocused",
        "unfocused-all",
        "fixed-examples",
        "classifier",
        "restate-1",
        "baseline",
    ),
}

# Ad-hoc keys of the accuracy levers -> their config settings.
_LEVERS = {"snap": "snap", "reask": "field_reask", "extractive": "extractive", "positions": "positions"}
_KEYS = {"packing", "examples", "restate", "selection", "route", "order", "focus", "llm", "layout", *_LEVERS}


def _parse_int_or_none(value: str, what: str) -> int | None:
    if value in ("all", "none", "off"):
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{what} must be a number, 'all' or 'off', got {value!r}.") from None
    if number < 0 or (what == "restate" and number < 1):
        raise ConfigError(f"{what} out of range: {number}.")
    return number


def parse_strategy(spec: str) -> Strategy:
    """An ad-hoc strategy from "key=value,..." (keys: packing, examples, restate, order, selection,
    route, focus)."""
    options: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in _KEYS:
            raise ConfigError(
                f"Bad strategy {spec!r}: {part!r}.",
                hint=f"Use a name ({', '.join(STRATEGIES)}), a group ({', '.join(GROUPS)}) "
                f"or key=value pairs with keys {', '.join(sorted(_KEYS))}.",
            )
        if key == "packing":
            if value not in ("single", "pairs", "packed"):
                raise ConfigError(f"packing must be single, pairs or packed, got {value!r}.")
            options["packing"] = value
        elif key == "examples":
            options["max_examples"] = _parse_int_or_none(value, "examples")
        elif key == "restate":
            options["restate_every"] = _parse_int_or_none(value, "restate")
        elif key == "order":
            if value not in ("relevance", "stable"):
                raise ConfigError(f"order must be relevance or stable, got {value!r}.")
            options["order"] = value
        elif key == "focus":
            if value not in ("on", "off"):
                raise ConfigError(f"focus must be on or off, got {value!r}.")
            options["focus"] = value == "on"
        elif key in _LEVERS:
            if value not in ("on", "off"):
                raise ConfigError(f"{key} must be on or off, got {value!r}.")
            overrides[_LEVERS[key]] = value == "on"
        elif key == "layout":
            try:
                weight = float(value)
            except ValueError:
                raise ConfigError(f"layout must be a weight from 0 to 1, got {value!r}.") from None
            if not 0 <= weight <= 1:
                raise ConfigError(f"layout must be a weight from 0 to 1, got {value!r}.")
            overrides["example_layout"] = weight
        elif key == "llm":
            if not value:
                raise ConfigError("llm needs provider[:model], e.g. llm=local:/path/to/tuned.gguf.")
            options["llm"] = value
        elif key == "selection":
            if value not in ("similarity", "fixed"):
                raise ConfigError(f"selection must be similarity or fixed, got {value!r}.")
            options["selection"] = value
        else:
            if value not in ("given", "classifier"):
                raise ConfigError(f"route must be given or classifier, got {value!r}.")
            options["route"] = value
    return Strategy(spec, description="ad hoc", overrides=tuple(sorted(overrides.items())), **options)


def resolve_strategies(names: Iterable[str] | None) -> list[Strategy]:
    """Strategies by name, group or ad-hoc spec, in order, without repeats; default: standard."""
    chosen: list[Strategy] = []
    for name in list(names or []) or ["standard"]:
        expanded = GROUPS.get(name, (name,))
        for item in expanded:
            strategy = STRATEGIES.get(item)
            if strategy is None:
                if "=" not in item:
                    raise ConfigError(
                        f"Unknown strategy {item!r}.",
                        hint=f"Known: {', '.join(STRATEGIES)}; groups: {', '.join(GROUPS)}; "
                        "or key=value pairs such as packing=pairs,examples=1.",
                    )
                strategy = parse_strategy(item)
            if strategy.name not in {s.name for s in chosen}:
                chosen.append(strategy)
    return chosen
