"""Serverless and asynchronous endpoints, end to end through the scan on the simulator."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sagesaver.aws import endpoints as aws_endpoints
from sagesaver.aws.endpoint_configs import ConfigMemory, FileConfigStore
from sagesaver.aws.session import Aws
from sagesaver.core.model import Decision
from sagesaver.core.policy import Policy
from sagesaver.demo.simulator import Fault, Fleet, IncompleteMetrics, Simulator, VariantSpec
from sagesaver.pipelines.scan import scan
from sagesaver.render.scan import to_document
from tests.prices import example_pricer

EAST = "us-east-1"
OLD = timedelta(days=10)


def decisions(now: datetime) -> dict[str, object]:
    result = scan(Aws(), [EAST], Policy(), now, example_pricer())
    assert result.errors == []
    return {d.resource.name: d for d in result.decisions if d.resource.kind.value == "endpoint"}


def test_serverless_endpoints(fleet: Fleet, now: datetime) -> None:
    fleet.endpoint(
        EAST, "sls-on-demand", [VariantSpec("v", serverless_memory_mb=2048)], changed=now - OLD
    )
    fleet.endpoint(
        EAST,
        "sls-provisioned",
        [VariantSpec("v", serverless_memory_mb=4096, provisioned_concurrency=2)],
        changed=now - OLD,
    )
    fleet.endpoint(
        EAST, "sls-busy", [VariantSpec("v", serverless_memory_mb=1024)], changed=now - OLD
    )
    fleet.invocations(EAST, "sls-busy", "v", [(now - timedelta(hours=2), 9.0)])

    got = decisions(now)
    on_demand = got["sls-on-demand"]
    assert (on_demand.action.value, on_demand.rule, on_demand.hourly_cost_usd) == (
        "keep",
        "serverless",
        0,
    )
    assert "costs nothing while idle" in on_demand.reason
    provisioned = got["sls-provisioned"]
    assert provisioned.action.value == "notify" and provisioned.rule == "idle-endpoint"
    (variant,) = provisioned.resource.variants
    assert (variant.serverless, variant.provisioned_concurrency, variant.memory_mb) == (
        True,
        2,
        4096,
    )
    assert provisioned.hourly_cost_usd is None  # no GB-hour price in the bundled table
    assert got["sls-busy"].rule == "active"


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("InvocationsProcessed", 3.0),
        ("ApproximateBacklogSize", 2.0),
        ("HasBacklogWithoutCapacity", 1.0),
    ],
)
def test_traffic_on_any_asynchronous_metric_is_activity(
    fleet: Fleet, now: datetime, metric: str, value: float
) -> None:
    fleet.endpoint(EAST, "async-busy", asynchronous=True, changed=now - OLD)
    fleet.endpoint(EAST, "async-idle", asynchronous=True, changed=now - OLD)
    fleet.metric(EAST, metric, {"EndpointName": "async-busy"}, [(now - timedelta(hours=3), value)])
    for name in ("async-busy", "async-idle"):  # published zeros are no traffic
        fleet.metric(
            EAST, "InvocationsProcessed", {"EndpointName": name}, [(now - timedelta(hours=5), 0.0)]
        )

    got = decisions(now)
    busy, idle = got["async-busy"], got["async-idle"]
    assert busy.rule == "active" and not busy.idle
    assert "asynchronous requests processed or queued" in busy.reason
    assert idle.action.value == "notify" and idle.resource.asynchronous
    assert "scale to zero" in idle.reason
    assert [r.kind for r in idle.recommendations] == ["scale-to-zero"]
    assert idle.hourly_cost_usd == pytest.approx(0.115)


def test_asynchronous_metrics_are_read_in_one_batch(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    for i in range(5):
        fleet.endpoint(EAST, f"async-{i}", asynchronous=True, changed=now - OLD)
    for i in range(5):
        fleet.endpoint(EAST, f"plain-{i}", changed=now - OLD)
        fleet.invocations(EAST, f"plain-{i}", "AllTraffic", [(now - timedelta(hours=1), 0.0)])
    sim.middleware.counts.clear()
    got = decisions(now)
    assert sum(1 for d in got.values() if d.idle) == 10
    # one for Invocations, one for the asynchronous metrics of all five, one for how long
    # the plain ones have been idle (daily sums)
    assert sim.middleware.counts["GetMetricData"] == 3


@pytest.mark.parametrize("mode", ["InternalError", "PartialData", "omit", "messages"])
def test_unreadable_asynchronous_metrics_are_unknown_never_idle(
    sim: Simulator, fleet: Fleet, now: datetime, mode: str
) -> None:
    fleet.endpoint(EAST, "async-unread", asynchronous=True, changed=now - OLD)
    fleet.endpoint(EAST, "async-idle", asynchronous=True, changed=now - OLD)
    sim.behaviours.incomplete_metrics = IncompleteMetrics(frozenset({"async-unread"}), mode)
    result = scan(Aws(), [EAST], Policy(), now, example_pricer())
    got = {d.resource.name: d for d in result.decisions}
    assert got["async-unread"].rule == "activity-unknown" and not got["async-unread"].idle
    assert got["async-idle"].idle
    assert [(e.resource, e.code) for e in result.errors] == [("async-unread", "IncompleteData")]


def test_the_guards_read_sees_asynchronous_traffic_come_back(fleet: Fleet, now: datetime) -> None:
    fleet.endpoint(EAST, "async-back", asynchronous=True, changed=now - OLD)
    (decision,) = [
        d
        for d in scan(Aws(), [EAST], Policy(), now, example_pricer()).decisions
        if d.resource.name == "async-back"
    ]
    assert decision.idle and decision.resource.asynchronous
    since = now - timedelta(hours=24)
    observed, _ = aws_endpoints.read_for_guard(Aws(), decision.resource, since, now)
    assert observed.invocations == 0 and observed.status == "InService"
    fleet.metric(
        EAST,
        "ApproximateBacklogSize",
        {"EndpointName": "async-back"},
        [(now - timedelta(minutes=5), 4.0)],
    )
    observed, described = aws_endpoints.read_for_guard(Aws(), decision.resource, since, now)
    assert observed.invocations > 0  # queued asynchronous requests are traffic
    assert described["EndpointName"] == "async-back"


def test_json_carries_the_new_kinds_and_recommendations(fleet: Fleet, now: datetime) -> None:
    fleet.endpoint(EAST, "async-idle", asynchronous=True, changed=now - OLD)
    fleet.endpoint(
        EAST,
        "sls-pc",
        [VariantSpec("v", serverless_memory_mb=2048, provisioned_concurrency=1)],
        changed=now - OLD,
    )
    document = to_document(scan(Aws(), [EAST], Policy(), now, example_pricer()))
    by_name = {r["name"]: r for r in document["resources"]}
    assert by_name["async-idle"]["asynchronous"] is True
    assert by_name["async-idle"]["recommendations"] == [
        {
            "kind": "scale-to-zero",
            "to": None,
            "hourly_saving": pytest.approx(0.115),
            "currency": "USD",
            "hourly_saving_usd": pytest.approx(0.115),
            "evidence": by_name["async-idle"]["recommendations"][0]["evidence"],
        }
    ]
    assert (
        "ApproximateBacklogSizePerInstance"
        in by_name["async-idle"]["recommendations"][0]["evidence"]
    )
    assert by_name["sls-pc"]["variants"] == [
        {
            "name": "v",
            "instance_type": None,
            "instance_count": 0,
            "serverless": True,
            "provisioned_concurrency": 1,
            "memory_mb": 2048,
        }
    ]
    assert "recommendations" not in by_name["sls-pc"]


def test_backtest_sees_asynchronous_and_component_traffic(fleet: Fleet, now: datetime) -> None:
    from sagesaver.aws.history import align_hour
    from sagesaver.core.policy import parse_policy
    from sagesaver.pipelines.backtest import read_history, run_backtest

    days = 2
    start = align_hour(now) - timedelta(days=days)
    age = now - timedelta(days=40)
    fleet.endpoint(EAST, "async-busy", asynchronous=True, changed=age)
    fleet.metric(
        EAST,
        "ApproximateBacklogSize",
        {"EndpointName": "async-busy"},
        [(start + timedelta(hours=30, minutes=5), 7.0)],
    )
    fleet.endpoint(EAST, "async-idle", asynchronous=True, changed=age)
    fleet.endpoint(EAST, "host", changed=age)
    fleet.inference_component(EAST, "host", "model-x", 1, age)
    fleet.metric(
        EAST,
        "Invocations",
        {"InferenceComponentName": "model-x"},
        [(start + timedelta(hours=40, minutes=1), 2.0)],
    )
    history = read_history(Aws(), [EAST], now, days)
    assert history.errors == []
    (region,) = history.regions
    assert region.history["async-busy"][30] == 7.0
    assert region.history["host"][40] == 2.0
    assert sum(region.history["async-idle"]) == 0
    policy = parse_policy("endpoints: {idle_hours: 24, action: delete, grace_hours: 20}")
    result = run_backtest(Aws(), [EAST], policy, now, days)
    by_name = {t.name: t for t in result.timelines}
    # flagged after their first idle day; then the traffic Invocations does not show spares
    # them: the backlog at hour 30, the component's call at hour 40
    assert by_name["async-busy"].flagged_at[0] == start + timedelta(hours=24)
    assert by_name["async-busy"].spared_at == [start + timedelta(hours=31)]
    assert by_name["host"].spared_at == [start + timedelta(hours=41)]
    assert by_name["async-busy"].deleted_at is None and by_name["host"].deleted_at is None
    assert by_name["async-idle"].deleted_at == start + timedelta(hours=44)


@pytest.mark.parametrize("search", [True, False])
def test_remembered_configurations_keep_serverless_and_asynchronous_facts(
    sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path, search: bool
) -> None:
    """The configuration cache (issue 19) carries what the describer reads (issue 17): a
    repeat scan served from it, through Search or its fallback, judges alike."""
    fleet.endpoint(
        EAST,
        "sls-provisioned",
        [VariantSpec("v", serverless_memory_mb=4096, provisioned_concurrency=2)],
        changed=now - OLD,
    )
    fleet.endpoint(EAST, "async-idle", asynchronous=True, changed=now - OLD)
    fleet.metric(
        EAST, "InvocationsProcessed", {"EndpointName": "async-idle"}, [(now - OLD / 2, 0.0)]
    )
    if not search:
        sim.middleware.fault = deny_search

    def remembered_scan() -> dict[str, Decision]:
        memory = ConfigMemory(FileConfigStore(tmp_path / "configs.json.gz"))
        result = scan(Aws(), [EAST], Policy(), now, example_pricer(), configs=memory)
        memory.save()
        assert result.errors == []
        return {d.resource.name: d for d in result.decisions}

    first = remembered_scan()
    sim.middleware.counts.clear()
    again = remembered_scan()
    assert "DescribeEndpointConfig" not in sim.middleware.counts
    assert ("DescribeEndpoint" in sim.middleware.counts) is not search
    assert again == first
    (variant,) = again["sls-provisioned"].resource.variants
    assert (variant.serverless, variant.provisioned_concurrency, variant.memory_mb) == (
        True,
        2,
        4096,
    )
    idle = again["async-idle"]
    assert idle.resource.asynchronous and idle.idle
    assert "scale to zero" in idle.reason


def deny_search(operation: str, region: str, _: object) -> Fault | None:
    if operation == "Search":
        return Fault(400, "AccessDeniedException", "not authorized to Search")
    return None


def deny_search_and_tags(operation: str, region: str, _: object) -> Fault | None:
    if operation in ("Search", "GetResources"):
        return Fault(400, "AccessDeniedException", f"not authorized to {operation}")
    return None


@pytest.mark.parametrize("why", ["out of selection", "tags unreadable"])
def test_asynchronous_endpoint_left_alone_is_judged_by_its_own_metrics(
    sim: Simulator, fleet: Fleet, now: datetime, why: str
) -> None:
    """An asynchronous endpoint publishes no Invocations: one the policy leaves alone (out of
    its selection, or with unknown tags) is still judged by its asynchronous traffic, never
    shown idle because Invocations are missing."""
    fleet.endpoint(EAST, "async-busy", asynchronous=True, changed=now - OLD)
    fleet.endpoint(EAST, "async-quiet", asynchronous=True, changed=now - OLD)
    fleet.metric(
        EAST, "InvocationsProcessed", {"EndpointName": "async-busy"}, [(now - OLD / 10, 4.0)]
    )
    if why == "out of selection":
        policy = Policy.model_validate({"endpoints": {"include": ["other-*"]}})
    else:
        policy = Policy()
        sim.middleware.fault = deny_search_and_tags
    result = scan(Aws(), [EAST], policy, now, example_pricer())
    got = {d.resource.name: d for d in result.decisions}
    busy, quiet = got["async-busy"], got["async-quiet"]
    assert busy.resource.asynchronous and not busy.idle and busy.action.value == "keep"
    assert "asynchronous requests processed or queued" in busy.reason
    assert quiet.resource.asynchronous and quiet.idle and quiet.action.value == "keep"
    assert quiet.hourly_cost_usd == pytest.approx(0.115)  # described: its cost is known
    if why == "tags unreadable":
        assert {(e.operation, e.code) for e in result.errors} == {
            ("GetResources", "AccessDeniedException")
        }
        assert quiet.rule == "tags-unknown"
        assert quiet.reason.startswith("no asynchronous request processed or queued")
    else:
        assert quiet.rule == "scope" and "not selected" in quiet.reason
