"""Inference components on the simulator (moto has none: the simulator keeps them and answers
ListInferenceComponents and DescribeInferenceComponent, shaped by botocore's model)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sagesaver.aws.session import Aws
from sagesaver.core.model import Decision, ScanError
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.demo.simulator import Fault, Fleet, IncompleteMetrics, Simulator, VariantSpec
from sagesaver.pipelines.scan import scan
from sagesaver.render.scan import to_document
from tests.conftest import Cli

EAST = "us-east-1"
OLD = timedelta(days=10)


def component_calls(fleet: Fleet, name: str, now: datetime, value: float) -> None:
    fleet.metric(
        EAST, "Invocations", {"InferenceComponentName": name}, [(now - timedelta(hours=2), value)]
    )


def decide(
    now: datetime, policy: Policy | None = None
) -> tuple[dict[str, Decision], list[ScanError]]:
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


WEST = "us-west-2"


def deny_listing(code: str, message: str) -> Callable[[str, str, object], Fault | None]:
    """A fault rule: ListInferenceComponents answered with ``code`` every time, everywhere."""

    def rule(operation: str, region: str, _: object) -> Fault | None:
        if operation == "ListInferenceComponents":
            return Fault(400, code, message)
        return None

    return rule


@pytest.mark.parametrize(
    ("code", "message"),
    [
        # An admin policy written before the API existed...
        (
            "AccessDeniedException",
            "User is not authorized to perform: sagemaker:ListInferenceComponents",
        ),
        # ...or a region that does not offer it.
        ("UnknownOperationException", "The operation is not supported in this region"),
    ],
)
def test_a_failed_listing_makes_unknown_only_the_endpoints_that_could_host_components(
    sim: Simulator, fleet: Fleet, now: datetime, code: str, message: str
) -> None:
    fleet.endpoint(EAST, "model-idle", changed=now - OLD)  # ModelName in every variant
    fleet.endpoint(
        EAST,
        "two-models-idle",
        [VariantSpec("a"), VariantSpec("b", "ml.g4dn.xlarge")],
        changed=now - OLD,
    )
    fleet.endpoint(EAST, "host-idle", changed=now - OLD, models=False)  # could host components
    fleet.endpoint(EAST, "host-busy", changed=now - OLD, models=False)
    fleet.invocations(EAST, "host-busy", "AllTraffic", [(now - timedelta(hours=1), 3.0)])
    fleet.endpoint(WEST, "west-host", changed=now - OLD, models=False)
    fleet.endpoint(WEST, "west-model", changed=now - OLD)

    def one_scan() -> tuple[dict[str, Decision], list[ScanError], Counter[str]]:
        sim.middleware.counts.clear()
        result = scan(Aws(), [EAST, WEST], Policy(), now)
        return (
            {d.resource.name: d for d in result.decisions},
            result.errors,
            Counter(sim.middleware.counts),
        )

    read, no_errors, read_counts = one_scan()  # the same fleet, with the listing allowed
    assert no_errors == [] and read["host-idle"].rule == "idle-endpoint"
    sim.middleware.fault = deny_listing(code, message)
    got, errors, counts = one_scan()

    # The failure is said once per region, naming the operation and AWS's answer.
    assert [(e.region, e.operation, e.code, e.message, e.resource) for e in errors] == [
        (EAST, "ListInferenceComponents", code, message, None),
        (WEST, "ListInferenceComponents", code, message, None),
    ]
    # Endpoints that name a model in every variant cannot host components: judged as usual.
    for name in ("model-idle", "two-models-idle", "west-model"):
        assert got[name].rule == "idle-endpoint" and got[name].idle, got[name]
        assert got[name].reason == read[name].reason
        assert got[name].action == read[name].action
    # Only those that could host components are unknown, and say why.
    for name in ("host-idle", "west-host"):
        unknown = got[name]
        assert unknown.rule == "activity-unknown" and not unknown.idle, unknown
        assert unknown.action.value == "keep" and unknown.unknown
        assert "its inference components could not be listed" in unknown.reason
        assert f"ListInferenceComponents: {code}" in unknown.reason
        assert "Invocations could not be read" not in unknown.reason
    assert got["host-busy"].rule == "active"  # its own traffic is enough
    # No call per endpoint: the same requests as when the listing answers.
    assert counts == read_counts
    document = to_document(scan(Aws(), [EAST, WEST], Policy(), now))
    reasons = {r["name"]: r["reason"] for r in document["resources"]}
    assert "inference components could not be listed" in reasons["host-idle"]
    assert [e["operation"] for e in document["errors"]] == ["ListInferenceComponents"] * 2


def test_with_the_listing_denied_a_run_deletes_only_what_hosts_no_components(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"endpoints: {{action: delete, grace_hours: 0}}\nnotify: {{sns_topic_arn: '{topic}'}}\n"
    )
    fleet.endpoint(EAST, "model-idle", changed=now - OLD)
    fleet.endpoint(EAST, "host-idle", changed=now - OLD, models=False)
    sim.middleware.fault = deny_listing("AccessDeniedException", "not authorized")
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", str(policy),
        "--ledger", str(tmp_path / "ledger.sqlite"), "--apply",
    )  # fmt: skip
    assert code == 1  # the denied listing is an error
    deleted = [s["name"] for s in doc["enforcement"] if s["outcome"].startswith("deleted")]
    assert deleted == ["model-idle"]
    left = {e["EndpointName"] for e in sim.client("sagemaker", EAST).list_endpoints()["Endpoints"]}
    assert left == {"host-idle"}


def test_an_undescribed_endpoint_stays_unknown_when_the_listing_fails(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    """Without its configuration nothing says it cannot host components: never idle."""
    fleet.endpoint(EAST, "quiet", changed=now - OLD)
    deny = deny_listing("AccessDeniedException", "not authorized")

    def rule(operation: str, region: str, environ: object) -> Fault | None:
        if operation == "DescribeEndpointConfig":
            return Fault(400, "AccessDeniedException", "no describe either")
        return deny(operation, region, environ)

    sim.middleware.fault = rule
    got, errors = decide(now)
    assert sorted((e.operation, e.resource) for e in errors) == [
        ("DescribeEndpointConfig", "quiet"),
        ("ListInferenceComponents", None),
    ]
    assert got["quiet"].rule == "activity-unknown" and not got["quiet"].idle
    assert "inference components could not be listed" in got["quiet"].reason


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
