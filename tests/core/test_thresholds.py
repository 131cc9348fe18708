"""Thresholds (pure): the policy's min_hourly_cost and the commands' --fail-on-cost."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from sagesaver.core.model import Action, Decision
from sagesaver.core.thresholds import (
    BELOW_MIN_COST,
    CostLimit,
    CostLimitError,
    below_min_cost,
    check_cost_limit,
    parse_cost_limit,
)
from tests.factories import resource as make_resource

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def decision(
    cost: float | None,
    action: Action = Action.NOTIFY,
    region: str = "us-east-1",
    currency: str | None = None,
) -> Decision:
    resource = make_resource("ep", NOW, region=region, age=timedelta(days=3))
    return Decision(
        resource=resource,
        action=action,
        rule="idle-endpoint",
        reason="no Invocations on any variant for 24.0 h",
        idle=True,
        idle_hours=24,
        hourly_cost=cost,
        currency=currency,
    )


def test_a_known_cost_below_the_minimum_is_kept_and_says_why() -> None:
    kept = below_min_cost(decision(0.1), 0.5)
    assert (kept.action, kept.rule, kept.idle) == (Action.KEEP, BELOW_MIN_COST, True)
    assert kept.reason == (
        "no Invocations on any variant for 24.0 h; costs 0.1 USD per hour, below "
        "min_hourly_cost 0.5: reported, never acted on"
    )


@pytest.mark.parametrize(
    ("cost", "action", "minimum"),
    [
        (None, Action.DELETE, 0.5),  # unknown is never below: unknown is not zero
        (0.5, Action.DELETE, 0.5),  # not below: equal
        (0.7, Action.NOTIFY, 0.5),
        (0.1, Action.KEEP, 0.5),  # kept already: its own rule stays
        (0.1, Action.DELETE, None),  # no minimum
    ],
)
def test_unknown_equal_above_kept_or_no_minimum_are_unchanged(
    cost: float | None, action: Action, minimum: float | None
) -> None:
    before = decision(cost, action)
    assert below_min_cost(before, minimum) == before


def test_a_warm_pool_release_below_the_minimum_is_kept_too() -> None:
    assert below_min_cost(decision(0.01, Action.RELEASE), 0.5).action is Action.KEEP


def test_the_minimum_is_compared_in_the_resources_own_currency() -> None:
    cny = decision(3.0, region="cn-north-1")
    assert cny.cost_currency == "CNY"
    assert below_min_cost(cny, 0.5) == cny  # 3 CNY is not below 0.5 (CNY)
    assert below_min_cost(cny, 5).action is Action.KEEP


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("5", CostLimit(5.0, None)),
        ("5USD", CostLimit(5.0, "USD")),
        ("5 usd", CostLimit(5.0, "USD")),
        ("30CNY", CostLimit(30.0, "CNY")),
        ("0.25", CostLimit(0.25, None)),
    ],
)
def test_cost_limits_parse(text: str, limit: CostLimit) -> None:
    assert parse_cost_limit(text) == limit


@pytest.mark.parametrize("text", ["", "USD", "-1", "5 dollars", "1e3", "5US", "nan"])
def test_bad_cost_limits_are_refused(text: str) -> None:
    with pytest.raises(CostLimitError, match="--fail-on-cost"):
        parse_cost_limit(text)


def test_the_idle_cost_exceeding_the_limit_fails_equal_does_not() -> None:
    decisions = [decision(3.0), decision(2.5, Action.DELETE), decision(None)]
    over, text = check_cost_limit(decisions, ["us-east-1"], CostLimit(5.0, None))
    assert over
    assert text == (
        "idle cost 5.5 USD per hour exceeds --fail-on-cost 5 USD "
        "(1 more with an unknown price not counted)"
    )
    over, text = check_cost_limit(decisions, ["us-east-1"], CostLimit(5.5, "USD"))
    assert not over and "does not exceed" in text


def test_kept_resources_never_count() -> None:
    decisions = [
        decision(9.0, Action.KEEP),
        replace(decision(9.0), rule=BELOW_MIN_COST, action=Action.KEEP),
    ]
    assert not check_cost_limit(decisions, ["us-east-1"], CostLimit(1.0, None))[0]


def test_no_currency_with_several_in_the_scan_is_an_error() -> None:
    decisions = [decision(1.0), decision(1.0, currency="EUR")]
    with pytest.raises(CostLimitError, match="EUR and USD"):
        check_cost_limit(decisions, ["us-east-1"], CostLimit(1.0, None))
    assert check_cost_limit(decisions, ["us-east-1"], CostLimit(0.5, "EUR"))[0]


def test_a_currency_the_scan_has_no_cost_in_is_an_error_never_converted() -> None:
    with pytest.raises(CostLimitError, match="30 CNY: the scan's costs are in USD"):
        check_cost_limit([decision(100.0)], ["us-east-1"], CostLimit(30.0, "CNY"))


def test_in_china_the_single_currency_is_cny() -> None:
    over, _ = check_cost_limit(
        [decision(40.0, region="cn-north-1")], ["cn-north-1"], CostLimit(30.0, None)
    )
    assert over
