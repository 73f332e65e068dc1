from __future__ import annotations

import pytest

from chatocr.config import ChatOCRConfig
from chatocr.errors import ConfigError
from chatocr.evaluation.strategies import GROUPS, STRATEGIES, resolve_strategies


def test_default_group_is_default_plus_baseline() -> None:
    assert [s.name for s in resolve_strategies(None)] == ["default", "baseline"]


def test_groups_expand_without_repeats() -> None:
    names = [s.name for s in resolve_strategies(["compare", "default", "baseline-zh"])]
    assert names[: len(GROUPS["compare"])] == list(GROUPS["compare"])
    assert names[-1] == "baseline-zh" and names.count("default") == 1


def test_ad_hoc_spec() -> None:
    (s,) = resolve_strategies(["packing=pairs,examples=1,restate=2,selection=fixed,route=classifier,order=stable"])
    assert s.order == "stable" and "order" in s.settings()
    assert "order" not in resolve_strategies(["default"])[0].settings()
    assert (s.packing, s.max_examples, s.restate_every, s.selection, s.route) == ("pairs", 1, 2, "fixed", "classifier")
    (all_examples,) = resolve_strategies(["examples=all,restate=off"])
    assert all_examples.max_examples is None and all_examples.restate_every is None


@pytest.mark.parametrize("bad", ["nope", "packing=huge", "examples=x", "restate=0", "colour=red", "route=maybe"])
def test_bad_strategies_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        resolve_strategies([bad])


def test_resolved_fills_config_defaults() -> None:
    config = ChatOCRConfig(packing="pairs", max_examples=2, restate_every=3)
    default = STRATEGIES["default"].resolved(config)
    assert (default.packing, default.max_examples, default.restate_every) == ("pairs", 2, 3)
    zero = STRATEGIES["examples-0"].resolved(config)
    assert zero.max_examples == 0 and zero.packing == "pairs"
    assert STRATEGIES["restate-off"].resolved(config).restate_every is None
    assert "packing" not in STRATEGIES["baseline"].settings()
    policy = default.plan_policy()
    assert (policy.packing, policy.max_examples, policy.restate_every) == ("pairs", 2, 3)
    with pytest.raises(ValueError, match="not resolved"):
        STRATEGIES["default"].plan_policy()
