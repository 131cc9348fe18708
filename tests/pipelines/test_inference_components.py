"""Inference components on the simulator (moto has none: the simulator keeps them and answers
ListInferenceComponents and DescribeInferenceComponent, shaped by botocore's model)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.demo.simulator import Fault, Fleet, IncompleteMetrics, Simulator
from sagesaver.pipelines.scan import scan
from sagesaver.render.scan import to_document

EAST = "us-east-1"
OLD = timedelta(days=10)


def component_calls(fleet: Fleet, name: str, now: datetime, value: float) -> None:
    fleet.metric(
        EAST, "Invocations", {"InferenceComponentName": name}, [(now - timedelta(hours=2), value)]
    )


def decide(now: datetime, policy: Policy | None = None) -> tuple[dict[str, object], list[object]]:
    result = scan(Aws(), [EAST], policy or Policy(), now)
    return {d.resource.name: d for d in result.decisions}, result.errors


def test_a_host_is_idle_only_when_all_its_components_are(fleet: Fleet, now: datetime) -> None:
    fleet.endpoint(EAST, "llm-host", changed=now - OLD, tags={"owner": "ana"})
    fleet.inference_component(EAST, "llm-host", "llama-chat", 2, now - OLD)
    fleet.inference_component(EAST, "llm-host", "llama-summaries", 3, now - OLD)
    component_calls(fleet, "llama-chat", now, 12.0)
    component_calls(fleet, "llama-summaries", now, 0.0)  # a published zero is idle
    fleet.endpoint(EAST, "quiet-host", changed=now - OLD)
    fleet.inference_component(EAST, "quiet-host", "old-model", 1, now - OLD)
    fleet.inference_component(EAST, "quiet-host", "parked-model", 0, now - OLD)
    fleet.inference_component(EAST, "quiet-host", "new-model", 1, now - timedelta(hours=2))

    got, errors = decide(now)
    assert errors == []
    host = got["llm-host"]
    assert host.rule == "active" and "12 invocations" in host.reason
    chat, summaries = got["llama-chat"], got["llama-summaries"]
    assert chat.rule == "active" and not chat.idle
    assert summaries.action.value == "notify" and summaries.rule == "idle-inference-component"
    assert summaries.resource.kind.value == "inference-component"
    assert summaries.resource.parent == "llm-host" and summaries.resource.instance_count == 3
    assert summaries.resource.tags == {"owner": "ana"}  # its endpoint's tags
    assert "copies to 0" in summaries.reason
    assert [r.kind for r in summaries.recommendations] == ["scale-to-zero"]
    quiet = got["quiet-host"]  # no traffic anywhere, but new-model is too young to judge
    assert quiet.rule == "min-age" and not quiet.idle and "new-model" in quiet.reason
    assert got["old-model"].action.value == "notify"
    assert got["parked-model"].rule == "zero-copies"
    assert got["new-model"].rule == "min-age"
    document = to_document(scan(Aws(), [EAST], Policy(), now))
    kinds = {r["name"]: r["kind"] for r in document["resources"]}
    assert kinds["llama-summaries"] == "inference-component"


def test_a_host_of_idle_components_is_idle_but_never_deleted(fleet: Fleet, now: datetime) -> None:
    fleet.endpoint(EAST, "quiet-host", changed=now - OLD)
    fleet.inference_component(EAST, "quiet-host", "old-model", 1, now - OLD)
    fleet.endpoint(EAST, "plain-idle", changed=now - OLD)
    policy = parse_policy("endpoints: {action: delete}")
    got, errors = decide(now, policy)
    assert errors == []
    host = got["quiet-host"]
    assert host.idle and host.action.value == "notify"
    assert "hosts inference components: reported, never deleted" in host.reason
    assert got["plain-idle"].action.value == "delete"
    assert got["old-model"].action.value == "notify"  # components are never acted on


def test_unreadable_component_metrics_make_its_host_unknown(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "host", changed=now - OLD)
    fleet.inference_component(EAST, "host", "unread", 1, now - OLD)
    sim.behaviours.incomplete_metrics = IncompleteMetrics(frozenset({"unread"}), "PartialData")
    got, errors = decide(now)
    assert got["unread"].rule == "activity-unknown" and not got["unread"].idle
    assert got["host"].rule == "activity-unknown" and not got["host"].idle
    assert [(e.resource, e.code) for e in errors] == [("unread", "IncompleteData")]


def test_a_failed_listing_makes_quiet_endpoints_unknown(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "quiet", changed=now - OLD)
    fleet.endpoint(EAST, "busy", changed=now - OLD)
    fleet.invocations(EAST, "busy", "AllTraffic", [(now - timedelta(hours=1), 3.0)])

    def deny(operation: str, region: str, _: object) -> Fault | None:
        if operation == "ListInferenceComponents":
            return Fault(400, "AccessDeniedException", "not authorized")
        return None

    sim.middleware.fault = deny
    got, errors = decide(now)
    assert [e.operation for e in errors] == ["ListInferenceComponents"]
    assert got["quiet"].rule == "activity-unknown" and not got["quiet"].idle
    assert got["busy"].rule == "active"


def test_components_are_listed_by_page_and_read_in_batches(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "big-host", changed=now - OLD)
    for i in range(130):
        fleet.inference_component(EAST, "big-host", f"model-{i:03d}", 1, now - OLD)
    component_calls(fleet, "model-007", now, 1.0)
    sim.middleware.counts.clear()
    got, errors = decide(now)
    assert errors == []
    counts = sim.middleware.counts
    assert counts["ListInferenceComponents"] == math.ceil(130 / 100)
    assert counts["GetMetricData"] == math.ceil(130 / 500)
    assert counts["DescribeInferenceComponent"] == 129  # the idle candidates only
    assert got["big-host"].rule == "active"
    assert sum(1 for d in got.values() if d.rule == "idle-inference-component") == 129
