"""Serverless and asynchronous endpoints in the pure endpoint rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sagesaver.core.model import Action, Activity, Variant
from sagesaver.core.pricing import Pricer, PriceTable
from sagesaver.core.rules.endpoints import (
    ASYNC_SIGNAL,
    SERVERLESS_PC_PRICE_KEY,
    decide_endpoint,
    endpoint_hourly_cost,
)
from tests.core.test_rules_endpoints import IDLE, NOW, PRICER, RULES, endpoint

ON_DEMAND = (Variant("AllTraffic", None, 0, serverless=True, memory_mb=2048),)
PROVISIONED = (
    Variant("AllTraffic", None, 0, serverless=True, provisioned_concurrency=3, memory_mb=2048),
)
PC_PRICER = Pricer(PriceTable({"us-east-1": {"hosting": {SERVERLESS_PC_PRICE_KEY: 0.05}}}))


def test_idle_serverless_without_provisioned_concurrency_is_kept_at_cost_zero() -> None:
    resource = endpoint(variants=ON_DEMAND)
    cost = endpoint_hourly_cost(resource, PRICER)
    decision = decide_endpoint(resource, IDLE, RULES, NOW, cost)
    assert cost == 0
    assert decision.action is Action.KEEP and decision.rule == "serverless"
    assert decision.idle and decision.hourly_cost_usd == 0
    assert "serverless without provisioned concurrency" in decision.reason
    assert "costs nothing while idle" in decision.reason


def test_idle_serverless_with_provisioned_concurrency_is_judged_like_any_endpoint() -> None:
    resource = endpoint(variants=PROVISIONED)
    cost = endpoint_hourly_cost(resource, PC_PRICER)
    decision = decide_endpoint(resource, IDLE, RULES, NOW, cost)
    assert cost == pytest.approx(0.05 * 2 * 3)  # GB-hour price x 2 GB x 3 slots
    assert decision.action is Action.NOTIFY and decision.rule == "idle-endpoint"
    assert decision.hourly_cost_usd == pytest.approx(0.3)


def test_provisioned_concurrency_without_a_price_has_unknown_cost_not_zero() -> None:
    resource = endpoint(variants=PROVISIONED)
    assert endpoint_hourly_cost(resource, PRICER) is None
    decision = decide_endpoint(resource, IDLE, RULES, NOW, None)
    assert decision.action is Action.NOTIFY and decision.hourly_cost_usd is None


def test_busy_serverless_is_active() -> None:
    decision = decide_endpoint(endpoint(variants=ON_DEMAND), Activity(5, 24), RULES, NOW)
    assert decision.rule == "active" and not decision.idle


def test_idle_asynchronous_endpoint_is_flagged_with_scale_to_zero() -> None:
    resource = replace(endpoint(), asynchronous=True)
    activity = Activity(0, 24, signal=ASYNC_SIGNAL)
    decision = decide_endpoint(resource, activity, RULES, NOW, 0.1)
    assert decision.action is Action.NOTIFY and decision.idle
    assert "InvocationsProcessed" in decision.reason and "scale to zero" in decision.reason
    (recommendation,) = decision.recommendations
    assert recommendation.kind == "scale-to-zero"
    assert recommendation.hourly_saving_usd == pytest.approx(0.1)
    assert "MinCapacity 0" in recommendation.evidence


def test_asynchronous_traffic_is_activity() -> None:
    resource = replace(endpoint(), asynchronous=True)
    decision = decide_endpoint(resource, Activity(4, 24, signal=ASYNC_SIGNAL), RULES, NOW)
    assert decision.rule == "active" and not decision.idle
    assert "4 asynchronous requests processed or queued" in decision.reason
    assert decision.recommendations == ()


def test_asynchronous_endpoint_already_at_zero_instances_costs_nothing() -> None:
    resource = replace(
        endpoint(variants=(Variant("AllTraffic", "ml.m5.large", 0),)), asynchronous=True
    )
    decision = decide_endpoint(resource, Activity(0, 24, signal=ASYNC_SIGNAL), RULES, NOW, 0.0)
    assert decision.rule == "zero-instances" and decision.action is Action.KEEP
