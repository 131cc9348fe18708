"""Safe enforcement against a moto server: grace tags, deletion with a backup, restore,
sparing, the blast-radius limit, fresh re-checks, idempotence and concurrent runs."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.core.grace import (
    SCHEDULED_TAG,
    Stage,
    announcement_key,
    parse_tag,
    plan_enforcement,
)
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, Simulator, VariantSpec
from sagesaver.ledger import SqliteLedger
from tests.conftest import Cli

EAST = "us-east-1"
OLD = timedelta(days=5)
PAST = "delete@2020-01-01T00:00:00Z"


def backend(region: str = EAST) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT_ID][region]


def tags_of(sim: Simulator, arn: str) -> dict[str, str]:
    found = sim.client("sagemaker", EAST).list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"]: t["Value"] for t in found}


@pytest.fixture
def setup(fleet: Fleet, tmp_path: Path) -> dict[str, Any]:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints:\n  action: delete\n  grace_hours: 24\n  max_actions_per_run: 2\n"
        f"notify:\n  sns_topic_arn: {topic}\n"
    )
    return {"topic": topic, "policy": str(policy), "ledger": str(tmp_path / "ledger.sqlite")}


def announced_and_due(sim: Simulator, ledger: str, arn: str, grace_hours: float = 24) -> None:
    """Put the endpoint where a run leaves it when its announced deadline has passed: the
    scheduled-action tag, and the announcement recorded in the ledger after its digest (a
    minute after the endpoint's last change, the deadline ``grace_hours`` later)."""
    from sagesaver.core.grace import announcement_key, tag_value
    from sagesaver.core.model import Kind, Resource
    from sagesaver.ledger import open_ledger

    sagemaker = sim.client("sagemaker", EAST)
    described = sagemaker.describe_endpoint(EndpointName=arn.split("/")[-1])
    created, modified = described["CreationTime"], described["LastModifiedTime"]
    at = modified + timedelta(minutes=1)
    deadline = at + timedelta(hours=grace_hours)
    sagemaker.add_tags(
        ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": tag_value("delete", deadline)}]
    )
    resource = Resource(Kind.ENDPOINT, "-", arn, EAST, ACCOUNT_ID, "InService", created, created)
    open_ledger(ledger).record_announcement(announcement_key(resource), deadline, at, ["message-1"])


def run(cli: Cli, setup: dict[str, Any], *extra: str) -> tuple[int, dict[str, Any]]:
    return cli.json(
        "run", "--region", EAST, "--policy", setup["policy"], "--ledger", setup["ledger"], *extra
    )


def test_first_run_announces_with_a_deadline_and_a_second_run_changes_nothing(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    arn = fleet.endpoint(EAST, "idle-one", tags={"team": "ml"}, changed=now - OLD)
    SqliteLedger(Path(setup["ledger"]))  # the team's ledger, new
    code, doc = run(cli, setup)  # dry run first: nothing changes
    assert code == 0 and doc["enforcement"][0]["outcome"].startswith("would schedule delete")
    assert SCHEDULED_TAG not in tags_of(sim, arn)

    code, doc = run(cli, setup, "--apply")
    assert code == 0
    step = doc["enforcement"][0]
    assert (step["name"], step["stage"], step["applied"]) == ("idle-one", "announce", True)
    action, deadline = parse_tag(tags_of(sim, arn)[SCHEDULED_TAG]) or ("", now)
    assert action == "delete"
    assert timedelta(hours=23, minutes=59) < deadline - now < timedelta(hours=24, minutes=1)
    message = fleet.published(setup["topic"])[0]["Message"]
    assert "idle-one" in message and "delete scheduled for" in message

    sim.middleware.counts.clear()
    code, doc = run(cli, setup, "--apply")
    assert code == 0 and doc["enforcement"][0]["stage"] == "wait"
    writes = [
        op for op in sim.middleware.counts if op in ("AddTags", "DeleteTags", "DeleteEndpoint")
    ]
    assert writes == []
    assert "idle-one" in backend().endpoints


def test_after_the_deadline_it_is_backed_up_deleted_and_restorable(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any], tmp_path: Path
) -> None:
    arn = fleet.endpoint(
        EAST,
        "old-demo",
        [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)],
        tags={"team": "ml"},
        changed=now - OLD,
    )
    scaling = sim.client("application-autoscaling", EAST)
    resource_id = "endpoint/old-demo/variant/AllTraffic"
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
    )
    scaling.put_scaling_policy(
        PolicyName="invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 100.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
        },
    )
    sm = sim.client("sagemaker", EAST)
    announced_and_due(sim, setup["ledger"], arn)

    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    step = doc["enforcement"][0]
    assert (step["stage"], step["outcome"], step["applied"]) == ("act", "deleted", True)
    assert "old-demo" not in backend().endpoints
    assert "old-demo-config" in backend().endpoint_configs  # delete_config is off
    assert "deleted" in fleet.published(setup["topic"])[0]["Message"]

    listed = cli.json("backups", "--ledger", setup["ledger"])[1]["backups"]
    assert [(b["name"], b["id"]) for b in listed] == [("old-demo", step["backup_id"])]
    assert listed[0]["scaling_policies"] == 1

    # Simulate a later clean-up of what was left, then restore everything.
    sm.delete_endpoint_config(EndpointConfigName="old-demo-config")
    sm.delete_model(ModelName="demo-model")
    scaling.deregister_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    )
    code, dry = cli.json("restore", "old-demo", "--ledger", setup["ledger"])
    assert code == 0 and dry["dry_run"] and "endpoint old-demo: would create" in dry["steps"]
    assert "old-demo" not in backend().endpoints
    code, done = cli.json("restore", "old-demo", "--ledger", setup["ledger"], "--apply")
    assert code == 0, done["errors"]
    assert "endpoint old-demo: created" in done["steps"]
    restored = sm.describe_endpoint(EndpointName="old-demo")
    config = sm.describe_endpoint_config(EndpointConfigName=restored["EndpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g4dn.xlarge"
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert config["ProductionVariants"][0]["ModelName"] == "demo-model"
    assert sm.describe_model(ModelName="demo-model")["ExecutionRoleArn"].endswith("sagesaver-demo")
    assert tags_of(sim, restored["EndpointArn"]) == {"team": "ml"}  # no scheduled-action tag
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MaxCapacity"]) for t in targets] == [(resource_id, 4)]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [p["PolicyName"] for p in policies] == ["invocations"]

    # The endpoint exists now, the one this restore created: a second restore has nothing
    # left to do, says so, and changes nothing.
    sim.middleware.counts.clear()
    code, again = cli.json("restore", "old-demo", "--ledger", setup["ledger"], "--apply")
    assert code == 0, again["errors"]
    assert "nothing left to do" in again["steps"][-1] and again["remaining"] == []
    writes = {op for op in sim.middleware.counts if not op.startswith(("Describe", "List"))}
    assert writes == set()


def test_a_resource_that_became_active_is_spared(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    arn = fleet.endpoint(EAST, "back-in-use", changed=now - OLD)
    sim.client("sagemaker", EAST).add_tags(
        ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": PAST}]
    )
    fleet.invocations(EAST, "back-in-use", "AllTraffic", [(now - timedelta(hours=1), 12)])
    code, doc = run(cli, setup, "--apply")
    assert code == 0
    step = doc["enforcement"][0]
    assert step["stage"] == "spare" and "12 invocations" in step["outcome"]
    assert SCHEDULED_TAG not in tags_of(sim, arn)
    assert "back-in-use" in backend().endpoints


def test_protecting_a_scheduled_endpoint_spares_it(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    arn = fleet.endpoint(EAST, "keep-me", tags={"sagesaver:protect": "true"}, changed=now - OLD)
    sim.client("sagemaker", EAST).add_tags(
        ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": PAST}]
    )
    _, doc = run(cli, setup, "--apply")
    assert doc["enforcement"][0]["stage"] == "spare"
    assert "keep-me" in backend().endpoints and SCHEDULED_TAG not in tags_of(sim, arn)


def test_blast_radius_most_expensive_first_and_a_repeated_run_is_a_no_op(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    types = {
        "cheap": "ml.t2.medium",
        "mid": "ml.m5.xlarge",
        "dear": "ml.p3.2xlarge",
        "gpu": "ml.g4dn.xlarge",
    }
    for name, instance_type in types.items():
        arn = fleet.endpoint(
            EAST, name, [VariantSpec("AllTraffic", instance_type)], changed=now - OLD
        )
        announced_and_due(sim, setup["ledger"], arn)
    code, doc = run(cli, setup, "--apply")
    assert code == 0
    stages = {s["name"]: s["stage"] for s in doc["enforcement"]}
    assert stages == {"dear": "act", "gpu": "act", "mid": "defer", "cheap": "defer"}
    assert set(backend().endpoints) == {"mid", "cheap"}
    code, doc = run(cli, setup, "--apply")
    assert {s["name"]: s["stage"] for s in doc["enforcement"]} == {"mid": "act", "cheap": "act"}
    assert backend().endpoints == {}
    sim.middleware.counts.clear()
    code, doc = run(cli, setup, "--apply")
    assert code == 0 and doc["enforcement"] == []
    assert not {"DeleteEndpoint", "AddTags", "DeleteTags"} & set(sim.middleware.counts)


def test_a_change_between_scan_and_action_skips_the_deletion(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    arn = fleet.endpoint(EAST, "changing", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    seen = []

    def modify_after_scan(operation: str, region: str, _: object) -> None:
        if operation == "DescribeEndpoint":
            seen.append(operation)
            # The scan reads endpoints through Search: the first describe is the fresh one,
            # just before acting.
            if len(seen) == 1:
                backend().endpoints["changing"].last_modified_time = datetime.now(
                    timezone.utc
                ).replace(tzinfo=None)
        return None

    sim.middleware.fault = modify_after_scan  # type: ignore[assignment]
    _, doc = run(cli, setup, "--apply")
    outcome = doc["enforcement"][0]["outcome"]
    assert outcome.startswith("skipped: changed at") and "after it was announced" in outcome
    assert "changing" in backend().endpoints
    assert "DeleteEndpoint" not in sim.middleware.counts
    # a change is a sign of work: the announcement is cancelled, a new one must go out first
    assert SCHEDULED_TAG not in tags_of(sim, arn)


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_two_concurrent_runs_never_act_twice(
    sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any], store: str
) -> None:
    from sagesaver.aws.session import Aws
    from sagesaver.core.policy import load_policy
    from sagesaver.ledger import open_ledger
    from sagesaver.pipelines.enforce import enforce
    from sagesaver.pipelines.scan import scan

    location = setup["ledger"]
    if store == "dynamodb":
        from sagesaver.ledger.dynamodb import create_table

        create_table(Aws(), EAST, "ledger")
        location = "dynamodb://us-east-1/ledger"
    arn = fleet.endpoint(EAST, "contested", changed=now - OLD)
    announced_and_due(sim, location, arn)
    policy = load_policy(Path(setup["policy"]))
    scans = [scan(Aws(), [EAST], policy, now) for _ in range(2)]  # both saw it due
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker(index: int) -> None:
        barrier.wait()
        ledger = open_ledger(location)
        for step in enforce(Aws(), scans[index], policy, now, True, ledger).steps:
            outcomes.append(step.outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deletes = sim.middleware.counts["DeleteEndpoint"] - sim.middleware.faults_sent["DeleteEndpoint"]
    assert deletes == 1
    assert outcomes.count("deleted") == 1
    assert len(open_ledger(location).backups("contested")) == 1


def test_savings_from_the_ledger(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    arn = fleet.endpoint(
        EAST,
        "saver",
        [VariantSpec("AllTraffic", "ml.m5.xlarge", 2)],
        tags={"team": "ml"},
        changed=now - OLD,
    )
    announced_and_due(sim, setup["ledger"], arn)
    with time_machine.travel(now, tick=False):
        assert run(cli, setup, "--apply")[0] == 0
        code, doc = cli.json("savings", "--ledger", setup["ledger"])
    assert code == 0 and doc["resources"] == []  # no run has seen it gone for any time yet
    with time_machine.travel(now + timedelta(hours=5), tick=False):
        assert run(cli, setup, "--apply")[0] == 0  # sees it still gone
    with time_machine.travel(now + timedelta(hours=9), tick=False):
        code, doc = cli.json("savings", "--ledger", setup["ledger"])
    assert code == 0
    [item] = doc["resources"]
    assert item["name"] == "saver" and item["action"] == "delete"
    assert item["hours"] == 5.0  # up to the last run that saw it gone, not to now
    assert item["saved_usd"] == pytest.approx(item["hours"] * 0.46, abs=1e-5)
    assert set(doc["by"]["tag:team"]) == {"ml"}
    assert set(doc["by"]["kind"]) == {"endpoint"}


def test_plan_unit_grace_zero_acts_at_once_and_a_bad_tag_is_replaced() -> None:
    from sagesaver.core.model import Action, Decision, Kind, Resource

    def decision(
        name: str, tags: dict[str, str], action: Action = Action.DELETE, cost: float = 1.0
    ) -> Decision:
        resource = Resource(
            Kind.ENDPOINT,
            name,
            f"arn:aws:sagemaker:us-east-1:1:endpoint/{name}",
            EAST,
            "1",
            "InService",
            datetime(2026, 1, 1, tzinfo=timezone.utc),
            datetime(2026, 1, 1, tzinfo=timezone.utc),
            tags,
        )
        return Decision(resource, action, "idle-endpoint", "idle", True, 30.0, cost)

    moment = datetime(2026, 11, 29, tzinfo=timezone.utc)
    now_plan = plan_enforcement([decision("a", {})], 0, 10, moment)
    assert [s.stage for s in now_plan.steps] == [Stage.ACT]
    garbage = plan_enforcement([decision("b", {SCHEDULED_TAG: "soon"})], 24, 10, moment)
    assert garbage.steps[0].stage is Stage.ANNOUNCE and "unreadable tag" in garbage.steps[0].reason
    due = decision("c", {SCHEDULED_TAG: PAST})
    proof = {announcement_key(due.resource): parse_tag(PAST)[1]}  # type: ignore[index]
    none_allowed = plan_enforcement([due], 24, 0, moment, proof)
    assert none_allowed.steps[0].stage is Stage.DEFER
    kept = plan_enforcement([decision("d", {}, Action.KEEP)], 24, 10, moment)
    assert kept.steps == []


def test_thresholds_delete_at_most_max_invocations_and_never_act_below_min_cost(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any], tmp_path: Path
) -> None:
    policy = Path(setup["policy"])
    policy.write_text(
        "min_hourly_cost: 0.5\n"
        + policy.read_text().replace("endpoints:\n", "endpoints:\n  max_invocations: 3\n")
    )
    gpu = [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 1)]
    calls = [(now - timedelta(hours=h), 1.0) for h in (2, 3, 4)]
    for name, extra in (("at-most", []), ("one-more", [(now - timedelta(hours=5), 1.0)])):
        arn = fleet.endpoint(EAST, name, gpu, changed=now - OLD)
        fleet.invocations(EAST, name, "AllTraffic", calls + extra)
        announced_and_due(sim, setup["ledger"], arn)
    cheap = [VariantSpec("AllTraffic", "ml.m5.large", 1)]
    cheap_arn = fleet.endpoint(EAST, "cheap", cheap, changed=now - OLD)  # idle, not announced

    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    steps = {s["name"]: (s["stage"], s["outcome"]) for s in doc["enforcement"]}
    assert steps["at-most"] == ("act", "deleted")
    assert steps["one-more"][0] == "spare"  # its deadline withdrawn, never deleted
    assert "cheap" not in steps
    assert set(backend().endpoints) == {"one-more", "cheap"}
    got = {r["name"]: r for r in doc["resources"]}
    assert got["at-most"]["reason"].startswith("3 invocations in the last")
    assert "(at most 3 counts as idle)" in got["at-most"]["reason"]
    assert (got["one-more"]["rule"], got["one-more"]["idle"]) == ("active", False)
    assert (got["cheap"]["decision"], got["cheap"]["rule"]) == ("keep", "below-min-cost")
    messages = fleet.published(setup["topic"])
    assert messages and "at-most" in messages[0]["Message"]
    assert not any("cheap" in m["Message"] for m in messages)
    assert SCHEDULED_TAG not in tags_of(sim, cheap_arn)
