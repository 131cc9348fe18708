"""Right-sizing busy endpoints from /aws/sagemaker/Endpoints utilisation, on the simulator."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.demo.simulator import Fleet, IncompleteMetrics, Simulator, VariantSpec
from sagesaver.pipelines.scan import scan
from sagesaver.render.scan import to_document
from tests.prices import example_pricer

EAST = "us-east-1"
OLD = timedelta(days=20)
NS = "/aws/sagemaker/Endpoints"


def busy(fleet: Fleet, now: datetime, name: str, variant: str = "AllTraffic") -> None:
    fleet.invocations(EAST, name, variant, [(now - timedelta(hours=1), 50.0)])


def utilisation(
    fleet: Fleet,
    now: datetime,
    name: str,
    cpu: list[float],
    memory: list[float],
    variant: str = "AllTraffic",
) -> None:
    dims = {"EndpointName": name, "VariantName": variant}
    days = [now - timedelta(days=d, hours=1) for d in range(len(cpu))]
    fleet.metric(EAST, "CPUUtilization", dims, list(zip(days, cpu, strict=True)), NS)
    fleet.metric(EAST, "MemoryUtilization", dims, list(zip(days, memory, strict=True)), NS)


def endpoint_decisions(policy: Policy, now: datetime) -> dict[str, object]:
    result = scan(Aws(), [EAST], policy, now, example_pricer())
    assert result.errors == []
    return {d.resource.name: d for d in result.decisions if d.resource.kind.value == "endpoint"}


def test_busy_endpoint_with_low_peaks_gets_a_smaller_type(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(
        EAST, "oversized", [VariantSpec("AllTraffic", "ml.m5.4xlarge", 2)], changed=now - OLD
    )
    busy(fleet, now, "oversized")
    # 16 vCPUs: CPU is the sum over cores; the peak of 14 days is 90% = 0.9 of a core
    utilisation(fleet, now, "oversized", [40, 90, 30], [4, 6, 5])
    fleet.endpoint(
        EAST, "right-sized", [VariantSpec("AllTraffic", "ml.m5.xlarge", 1)], changed=now - OLD
    )
    busy(fleet, now, "right-sized")
    utilisation(fleet, now, "right-sized", [150, 290], [40, 55])
    fleet.endpoint(EAST, "busy-no-data", changed=now - OLD)
    busy(fleet, now, "busy-no-data")
    # a peak older than the 14-day window does not count
    fleet.endpoint(
        EAST, "old-peak", [VariantSpec("AllTraffic", "ml.m5.xlarge", 1)], changed=now - OLD
    )
    busy(fleet, now, "old-peak")
    utilisation(fleet, now, "old-peak", [10, 10], [10, 10])
    fleet.metric(
        EAST,
        "CPUUtilization",
        {"EndpointName": "old-peak", "VariantName": "AllTraffic"},
        [(now - timedelta(days=16), 390.0)],
        NS,
    )

    sim.middleware.counts.clear()
    got = endpoint_decisions(Policy(), now)
    oversized = got["oversized"]
    assert oversized.rule == "active" and oversized.action.value == "keep"
    (advice,) = oversized.recommendations
    assert (advice.kind, advice.to) == ("rightsize", "ml.m5.large")
    assert advice.hourly_saving_usd == pytest.approx(2 * (0.922 - 0.115))
    assert "14-day peaks on ml.m5.4xlarge" in advice.evidence
    assert oversized.resource.instance_type == "ml.m5.4xlarge"
    assert oversized.hourly_cost_usd == pytest.approx(2 * 0.922)
    assert got["right-sized"].recommendations == ()
    assert got["busy-no-data"].recommendations == ()
    assert got["busy-no-data"].resource.instance_type is None  # not described
    (old,) = got["old-peak"].recommendations
    assert old.to == "ml.m5.large"

    counts = sim.middleware.counts
    # one listing; 4 metrics x 3 variants with data in one call; describes only where it helps
    assert counts["GetMetricData"] == 2  # Invocations, then utilisation
    # Search (issue 19) brought every endpoint's configuration name and instance counts, so
    # only the configurations are read: oversized and old-peak; right-sized's memory is high.
    assert "DescribeEndpoint" not in counts
    assert counts["DescribeEndpointConfig"] == 2

    document = to_document(scan(Aws(), [EAST], Policy(), now, example_pricer()))
    (item,) = [r for r in document["resources"] if r["name"] == "oversized"]
    assert item["recommendations"] == [
        {
            "kind": "rightsize",
            "to": "ml.m5.large",
            "hourly_saving": pytest.approx(1.614),
            "currency": "USD",
            "hourly_saving_usd": pytest.approx(1.614),
            "evidence": advice.evidence,
        }
    ]


def test_rightsizing_reads_are_batched_500_queries_a_call(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    for i in range(130):
        name = f"ep-{i:03d}"
        fleet.endpoint(EAST, name, changed=now - OLD)
        busy(fleet, now, name)
        utilisation(fleet, now, name, [150], [80])  # high memory: no describe
    sim.middleware.counts.clear()
    got = endpoint_decisions(Policy(), now)
    assert all(d.recommendations == () for d in got.values())
    counts = sim.middleware.counts
    assert counts["GetMetricData"] == 1 + math.ceil(130 * 4 / 500)
    assert "DescribeEndpoint" not in counts


def test_rightsizing_can_be_switched_off_and_tuned(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(
        EAST, "oversized", [VariantSpec("AllTraffic", "ml.m5.xlarge", 1)], changed=now - OLD
    )
    busy(fleet, now, "oversized")
    utilisation(fleet, now, "oversized", [100], [20])  # on ml.m5.large: CPU 50%, memory 40%
    assert endpoint_decisions(Policy(), now)["oversized"].recommendations != ()
    stricter = parse_policy("endpoints: {rightsize: {target_peak_percent: 45}}")
    assert endpoint_decisions(stricter, now)["oversized"].recommendations == ()
    sim.middleware.counts.clear()
    off = parse_policy("endpoints: {rightsize: {enabled: false}}")
    assert endpoint_decisions(off, now)["oversized"].recommendations == ()
    assert sim.middleware.counts["ListMetrics"] == 1  # only the Invocations listing


def test_unreadable_utilisation_gives_no_advice(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(
        EAST, "oversized", [VariantSpec("AllTraffic", "ml.m5.xlarge", 1)], changed=now - OLD
    )
    busy(fleet, now, "oversized")
    utilisation(fleet, now, "oversized", [10], [5])
    sim.behaviours.incomplete_metrics = IncompleteMetrics(
        frozenset({"oversized"}), "PartialData", frozenset({"GPUUtilization"})
    )
    sim.middleware.counts.clear()
    (decision,) = [
        d
        for d in scan(Aws(), [EAST], Policy(), now, example_pricer()).decisions
        if d.resource.name == "oversized"
    ]
    assert decision.rule == "active"  # Invocations were read
    assert decision.recommendations == ()  # one utilisation query came back partial: unknown
    assert "DescribeEndpoint" not in sim.middleware.counts
    sim.behaviours.incomplete_metrics = None
    (decision,) = [
        d
        for d in scan(Aws(), [EAST], Policy(), now, example_pricer()).decisions
        if d.resource.name == "oversized"
    ]
    assert [r.to for r in decision.recommendations] == ["ml.m5.large"]


def test_only_endpoints_are_right_sized(sim: Simulator, fleet: Fleet, now: datetime) -> None:
    fleet.endpoint(
        EAST, "same-name", [VariantSpec("AllTraffic", "ml.m5.xlarge", 1)], changed=now - OLD
    )
    busy(fleet, now, "same-name")
    utilisation(fleet, now, "same-name", [100], [20])
    fleet.inference_component(EAST, "same-name", "same-name", 1, now - OLD)
    fleet.metric(
        EAST,
        "Invocations",
        {"InferenceComponentName": "same-name"},
        [(now - timedelta(hours=1), 3.0)],
    )
    result = scan(Aws(), [EAST], Policy(), now, example_pricer())
    assert result.errors == []
    by_kind = {d.resource.kind.value: d for d in result.decisions if d.resource.name == "same-name"}
    assert [r.to for r in by_kind["endpoint"].recommendations] == ["ml.m5.large"]
    component = by_kind["inference-component"]
    assert component.rule == "active" and component.recommendations == ()
    assert component.resource.variants == () and component.resource.parent == "same-name"
