"""Restore brings back what was deleted, field for field, and never changes anything else."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.formats import iso
from sagesaver.demo.simulator import ACCOUNT_ID, IMAGE, ROLE_ARN, Fault, Fleet, Simulator
from sagesaver.ledger import SqliteLedger
from tests.conftest import Cli, run_at
from tests.pipelines.test_enforce import announced_and_due

EAST = "us-east-1"
NAME = "rich"
RESOURCE_ID = f"endpoint/{NAME}/variant/blue"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
DEPLOYMENT = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}]},
}


def seed_rich_endpoint(sim: Simulator, now: datetime) -> str:
    """An endpoint using most of what the APIs offer, with live values unlike its config."""
    sm = sim.client("sagemaker", EAST)
    sm.create_model(
        ModelName="ranker-model",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": "s3://models/ranker.tar.gz",
            "Environment": {"THREADS": "4", "MODE": "fast"},
        },
        EnableNetworkIsolation=True,
        Tags=[{"Key": "team", "Value": "search"}],
    )
    sm.create_endpoint_config(
        EndpointConfigName=f"{NAME}-config",
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": "ranker-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 0.5,
            },
            {
                "VariantName": "green",
                "ModelName": "ranker-model",
                "InstanceType": "ml.g4dn.xlarge",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 0.5,
            },
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 20,
            "DestinationS3Uri": "s3://capture/rich",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
        KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/abc",
        Tags=[{"Key": "team", "Value": "search"}],
    )
    arn: str = sm.create_endpoint(
        EndpointName=NAME,
        EndpointConfigName=f"{NAME}-config",
        Tags=[{"Key": "team", "Value": "search"}, {"Key": "tier", "Value": "gold"}],
    )["EndpointArn"]
    sm.update_endpoint_weights_and_capacities(
        EndpointName=NAME,
        DesiredWeightsAndCapacities=[
            {"VariantName": "blue", "DesiredWeight": 0.9, "DesiredInstanceCount": 3},
            {"VariantName": "green", "DesiredWeight": 0.1, "DesiredInstanceCount": 1},
        ],
    )
    from moto.sagemaker.models import sagemaker_backends

    endpoint = sagemaker_backends[ACCOUNT_ID][EAST].endpoints[NAME]
    endpoint.endpoint_status = "InService"  # moto leaves it "Updating"
    endpoint.creation_time = endpoint.last_modified_time = (now - timedelta(days=9)).replace(
        tzinfo=None
    )
    scaling = sim.client("application-autoscaling", EAST)
    scaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=RESOURCE_ID,
        ScalableDimension=DIMENSION,
        MinCapacity=1,
        MaxCapacity=6,
    )
    scaling.put_scaling_policy(
        PolicyName="per-instance",
        ServiceNamespace="sagemaker",
        ResourceId=RESOURCE_ID,
        ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": 300,
        },
    )
    scaling.put_scheduled_action(
        ServiceNamespace="sagemaker",
        ScheduledActionName="night",
        ResourceId=RESOURCE_ID,
        ScalableDimension=DIMENSION,
        Schedule="cron(0 22 * * ? *)",
        ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 2},
    )
    return arn


def snapshot(sim: Simulator) -> dict[str, Any]:
    """Everything restore must bring back, as the APIs describe it."""
    sm = sim.client("sagemaker", EAST)
    scaling = sim.client("application-autoscaling", EAST)
    model = sm.describe_model(ModelName="ranker-model")
    config = sm.describe_endpoint_config(EndpointConfigName=f"{NAME}-config")
    endpoint = sm.describe_endpoint(EndpointName=NAME)

    def tags(arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}

    def drop(item: dict[str, Any], *keys: str) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k not in (*keys, "ResponseMetadata")}

    return {
        "model": drop(model, "ModelArn", "CreationTime"),
        "model_tags": tags(model["ModelArn"]),
        "config": drop(config, "EndpointConfigArn", "CreationTime"),
        "config_tags": tags(config["EndpointConfigArn"]),
        "live": sorted(
            (v["VariantName"], v["CurrentWeight"], v["CurrentInstanceCount"])
            for v in endpoint["ProductionVariants"]
        ),
        "endpoint_tags": tags(endpoint["EndpointArn"]),
        "targets": [
            drop(t, "CreationTime", "RoleARN", "ScalableTargetARN")
            for t in scaling.describe_scalable_targets(ServiceNamespace="sagemaker")[
                "ScalableTargets"
            ]
        ],
        "policies": [
            drop(p, "CreationTime", "PolicyARN", "Alarms")
            for p in scaling.describe_scaling_policies(ServiceNamespace="sagemaker")[
                "ScalingPolicies"
            ]
        ],
        "scheduled": [
            drop(a, "CreationTime", "ScheduledActionARN")
            for a in scaling.describe_scheduled_actions(ServiceNamespace="sagemaker")[
                "ScheduledActions"
            ]
        ],
    }


def wipe(sim: Simulator) -> None:
    """What a later clean-up leaves: no configuration, no model, no auto scaling."""
    sm = sim.client("sagemaker", EAST)
    sm.delete_endpoint_config(EndpointConfigName=f"{NAME}-config")
    sm.delete_model(ModelName="ranker-model")
    scaling = sim.client("application-autoscaling", EAST)
    scaling.delete_scheduled_action(
        ServiceNamespace="sagemaker",
        ScheduledActionName="night",
        ResourceId=RESOURCE_ID,
        ScalableDimension=DIMENSION,
    )
    scaling.deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=RESOURCE_ID, ScalableDimension=DIMENSION
    )


@pytest.fixture
def deleted(cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path) -> Any:
    """The rich endpoint, backed up and deleted by a real run; returns (before, ledger)."""
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"endpoints: {{action: delete, grace_hours: 24}}\nnotify: {{sns_topic_arn: '{topic}'}}\n"
    )
    ledger = str(tmp_path / "ledger.sqlite")
    arn = seed_rich_endpoint(sim, now)
    before = snapshot(sim)
    announced_and_due(sim, ledger, arn)
    code, doc = cli.json("run", "--region", EAST, "--policy", str(policy), "--ledger", ledger,
                         "--apply")  # fmt: skip
    assert code == 0, doc["errors"]
    assert doc["enforcement"][0]["outcome"].startswith("deleted")
    return before, ledger


def test_a_round_trip_restores_every_field(cli: Cli, sim: Simulator, deleted: Any) -> None:
    before, ledger = deleted
    wipe(sim)
    code, dry = cli.json("restore", NAME, "--ledger", ledger)
    assert code == 0 and dry["dry_run"]
    steps = "\n".join(dry["steps"])
    assert f"image {IMAGE}; role {ROLE_ARN}" in steps  # a reviewer sees what would run
    assert "blue: ml.m5.large x 1, weight 0.5, model ranker-model" in steps
    assert "variant blue: weight 0.9, 3 instances as it ran" in steps
    assert "scheduled action night: would create" in steps

    code, done = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0, done["errors"]
    after = snapshot(sim)
    for part in before:
        assert after[part] == before[part], part
    assert after["live"] == [("blue", 0.9, 3), ("green", 0.1, 1)]


def test_the_deployment_configuration_is_kept(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    """moto keeps no DeploymentConfig: the backup reads it from DescribeEndpoint's answer and
    the restore must send it back in CreateEndpoint (seen on the wire)."""
    from sagesaver.aws.endpoints import backup
    from sagesaver.aws.restore import create_endpoint
    from sagesaver.aws.session import Aws
    from sagesaver.core.model import Kind, Resource

    arn = seed_rich_endpoint(sim, now)
    aws = Aws()
    described = dict(aws.sagemaker(EAST).describe_endpoint(EndpointName=NAME))
    described["LastDeploymentConfig"] = DEPLOYMENT
    resource = Resource(Kind.ENDPOINT, NAME, arn, EAST, ACCOUNT_ID, "InService", now, now)
    document = json.loads(json.dumps(backup(aws, resource, described), default=str))
    assert document["endpoint"]["DeploymentConfig"] == DEPLOYMENT
    sim.client("sagemaker", EAST).delete_endpoint(EndpointName=NAME)
    bodies: list[bytes] = []

    def capture(operation: str, region: str, environ: Any) -> None:
        if operation == "CreateEndpoint":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            bodies.append(body)

    sim.middleware.fault = capture  # type: ignore[assignment]
    create_endpoint(aws, document)
    [body] = bodies
    assert json.loads(body)["DeploymentConfig"] == DEPLOYMENT


@pytest.mark.parametrize("taken", ["new endpoint", "deleting", "other model", "other config"])
def test_restore_refuses_to_touch_what_it_did_not_create(
    cli: Cli, sim: Simulator, fleet: Fleet, deleted: Any, taken: str
) -> None:
    _, ledger = deleted
    sm = sim.client("sagemaker", EAST)
    if taken in ("new endpoint", "deleting"):
        fleet.endpoint(EAST, NAME)  # someone made a new one with the name
        if taken == "deleting":
            from moto.sagemaker.models import sagemaker_backends

            sagemaker_backends[ACCOUNT_ID][EAST].endpoints[NAME].endpoint_status = "Deleting"
    elif taken == "other model":
        wipe(sim)
        sm.create_model(
            ModelName="ranker-model",
            ExecutionRoleArn=ROLE_ARN,
            PrimaryContainer={"Image": f"{IMAGE}-other"},
        )
    else:
        wipe(sim)
        sm.create_endpoint_config(
            EndpointConfigName=f"{NAME}-config",
            ProductionVariants=[
                {
                    "VariantName": "blue",
                    "ModelName": fleet._model(EAST, "another-model"),
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
    sim.middleware.counts.clear()
    for extra in ((), ("--apply",)):  # the dry run refuses the same way
        result = cli("restore", NAME, "--ledger", ledger, *extra)
        assert result.exit_code == 1, result.stdout
        assert "restore never changes a resource it did not create" in result.stderr
    writes = {op for op in sim.middleware.counts if not op.startswith(("Describe", "List"))}
    assert writes == set()


# --- a restore records each step, and a second one resumes where it stopped ----------------


class Killed(BaseException):
    """The process dies here."""


def backend() -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[ACCOUNT_ID][EAST]


def writes(sim: Simulator) -> dict[str, int]:
    """The calls that change something, of those counted since the last clear."""
    return {
        op: n for op, n in sim.middleware.counts.items() if not op.startswith(("Describe", "List"))
    }


def restore_entries(ledger: str) -> list[Any]:
    return [e for e in SqliteLedger(Path(ledger)).entries() if e.action.startswith("restore")]


def refuse(operation: str) -> Any:
    """A fault rule: ``operation`` is denied (not retried), every other call is answered."""

    def rule(op: str, region: str, environ: Any) -> Fault | None:
        if op == operation:
            return Fault(400, "AccessDeniedException", f"{op} is not allowed")
        return None

    return rule


def test_a_restore_that_fails_after_create_endpoint_is_recorded_and_resumed(
    cli: Cli, sim: Simulator, deleted: Any, now: datetime
) -> None:
    before, ledger = deleted
    wipe(sim)
    sim.middleware.fault = refuse("RegisterScalableTarget")
    first = cli("restore", NAME, "--ledger", ledger, "--apply")
    assert first.exit_code == 1 and "RegisterScalableTarget is not allowed" in first.stderr
    assert f"endpoint {NAME}: created" in first.stdout
    assert "Still to do (run the same restore again to finish):" in first.stdout
    assert f"scaling target {RESOURCE_ID}: would create" in first.stdout
    assert NAME in backend().endpoints  # it bills again...
    [created] = [e for e in restore_entries(ledger) if e.action == "restore"]
    # ...so the ledger says so, and what remains
    assert created.outcome.startswith("restored") and created.backup_ref
    assert f"scaling target {RESOURCE_ID}" in created.outcome
    assert "scheduled action night" in created.outcome
    # savings stop counting the endpoint as off from the restore on
    with run_at(iso(now + timedelta(hours=3))):
        code, saved = cli.json("savings", "--ledger", ledger)
    assert code == 0
    [interval] = [r for r in saved["resources"] if r["name"] == NAME]
    assert interval["to"] == iso(created.at) and interval["hours"] < 1

    # The dry run of the partial restore says what remains, and only that.
    sim.middleware.fault = None
    code, dry = cli.json("restore", NAME, "--ledger", ledger)
    assert code == 0, dry["errors"]
    planned = "\n".join(dry["steps"])
    assert f"endpoint {NAME}: would create" not in planned
    assert f"scaling target {RESOURCE_ID}: would create" in planned
    assert "scaling policy per-instance: would create" in planned
    assert "variant blue: weight 0.9, 3 instances as it ran (would be" not in planned  # done
    assert len(dry["remaining"]) == 3

    # The second restore resumes: scaling only, nothing created twice.
    sim.middleware.counts.clear()
    code, second = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0, second["errors"]
    assert writes(sim) == {
        "RegisterScalableTarget": 1,
        "PutScalingPolicy": 1,
        "PutScheduledAction": 1,
    }
    after = snapshot(sim)
    for part in before:
        assert after[part] == before[part], part
    assert second["remaining"] == []

    # The third has nothing left to do, says so, and changes nothing.
    sim.middleware.counts.clear()
    code, third = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0, third["errors"]
    assert "nothing left to do" in "\n".join(third["steps"])
    assert writes(sim) == {}
    assert len([e for e in restore_entries(ledger) if e.action == "restore"]) == 1


def kill_on(operation: str, after: bool) -> Any:
    """A replacement of botocore's one call to AWS: the process dies as ``operation`` is
    sent (``after``: once its answer came back)."""
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def call(self: Any, name: str, params: Any) -> Any:
        if name != operation:
            return real(self, name, params)
        if after:
            real(self, name, params)
        raise Killed

    return call


def kill_in_wait(self: Any, **kwargs: Any) -> Any:
    raise Killed


# Where the first restore dies: (patched object, attribute, replacement).
RESTORE_KILLS: dict[str, tuple[str, str, Any]] = {
    "1 as CreateEndpoint is sent": ("botocore.client.BaseClient", "_make_api_call",
                                    kill_on("CreateEndpoint", after=False)),
    "2 waiting for InService": ("botocore.waiter.Waiter", "wait", kill_in_wait),
    "3 as the live weights are sent": (
        "botocore.client.BaseClient", "_make_api_call",
        kill_on("UpdateEndpointWeightsAndCapacities", after=False),
    ),
    "4 right after a scaling policy is put": (
        "botocore.client.BaseClient", "_make_api_call", kill_on("PutScalingPolicy", after=True),
    ),
}  # fmt: skip


@pytest.mark.parametrize("point", sorted(RESTORE_KILLS))
def test_a_killed_restore_is_finished_by_the_next_one(
    cli: Cli,
    sim: Simulator,
    deleted: Any,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    from sagesaver.cli import app
    from sagesaver.pipelines import restore as restoring

    before, ledger = deleted
    wipe(sim)
    owner, attribute, replacement = RESTORE_KILLS[point]
    with monkeypatch.context() as patch:
        patch.setattr(f"{owner}.{attribute}", replacement)
        patch.setattr(restoring, "_release", lambda *args: None, raising=False)  # dead: no clean-up
        with pytest.raises(Killed):
            cli.runner.invoke(
                app, ["restore", NAME, "--ledger", ledger, "--apply"], catch_exceptions=False
            )
    entries = [e for e in restore_entries(ledger) if e.action == "restore"]
    if NAME in backend().endpoints:  # it bills again: recorded
        assert len(entries) == 1 and entries[0].outcome.startswith("restored")
    else:  # died before CreateEndpoint: nothing recorded that did not happen
        assert entries == []

    # At once, the killed run still holds the restore: another one waits, changing nothing.
    sim.middleware.counts.clear()
    code, early = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 1 and "under way" in early["errors"][0]["message"]
    assert writes(sim) == {}

    with run_at(iso(now + timedelta(hours=2))):
        code, resumed = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0, resumed["errors"]
    after = snapshot(sim)
    for part in before:
        assert after[part] == before[part], part
    assert len([e for e in restore_entries(ledger) if e.action == "restore"]) == 1
    assert backend().endpoints[NAME].endpoint_config_name == f"{NAME}-config"

    sim.middleware.counts.clear()
    with run_at(iso(now + timedelta(hours=3))):
        code, again = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0 and "nothing left to do" in "\n".join(again["steps"])
    assert writes(sim) == {}


def test_an_endpoint_of_the_name_the_restore_did_not_create_is_still_refused(
    cli: Cli, sim: Simulator, deleted: Any, now: datetime
) -> None:
    """The backup's restore created an endpoint and stopped; someone deleted that one and made
    their own with the name: it is not the one the ledger recorded."""
    _, ledger = deleted
    wipe(sim)
    sim.middleware.fault = refuse("RegisterScalableTarget")
    code, _ = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 1 and NAME in backend().endpoints
    sim.middleware.fault = None
    sm = sim.client("sagemaker", EAST)
    sm.delete_endpoint(EndpointName=NAME)
    sm.create_endpoint(EndpointName=NAME, EndpointConfigName=f"{NAME}-config")
    later = (now + timedelta(hours=1)).astimezone(timezone.utc).replace(tzinfo=None)
    backend().endpoints[NAME].creation_time = later  # never the time the ledger recorded
    sim.middleware.counts.clear()
    for extra in ((), ("--apply",)):
        result = cli("restore", NAME, "--ledger", ledger, *extra)
        assert result.exit_code == 1, result.stdout
        assert f"an endpoint named {NAME} exists" in result.stderr
        assert "restore never changes a resource it did not create" in result.stderr
    assert writes(sim) == {}


def test_of_two_restores_of_one_backup_at_once_only_one_acts(
    cli: Cli, sim: Simulator, deleted: Any, now: datetime
) -> None:
    from sagesaver.aws.session import Aws
    from sagesaver.pipelines.restore import restore_backup

    _, ledger = deleted
    wipe(sim)
    [backup] = SqliteLedger(Path(ledger)).backups(NAME)
    others: list[Any] = []

    def second_restore(operation: str, region: str, environ: Any) -> Fault | None:
        if operation == "CreateEndpoint" and not others:  # the first is creating it now
            others.append(None)
            others.append(restore_backup(Aws(), SqliteLedger(Path(ledger)), backup, True, now))
        return None

    sim.middleware.counts.clear()
    sim.middleware.fault = second_restore  # type: ignore[assignment]
    code, first = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0, first["errors"]
    other = others[-1]
    assert other.errors and "under way" in other.errors[0].message
    assert sim.middleware.counts["CreateEndpoint"] == 1
    assert sim.middleware.counts["CreateModel"] == 1
    assert len([e for e in restore_entries(ledger) if e.action == "restore"]) == 1


def test_a_failed_create_endpoint_records_nothing_and_the_next_restore_starts_cleanly(
    cli: Cli, sim: Simulator, deleted: Any
) -> None:
    before, ledger = deleted
    wipe(sim)
    sim.middleware.fault = refuse("CreateEndpoint")
    code, first = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 1 and "CreateEndpoint is not allowed" in first["errors"][0]["message"]
    assert NAME not in backend().endpoints
    assert restore_entries(ledger) == []
    sim.middleware.fault = None
    code, second = cli.json("restore", NAME, "--ledger", ledger, "--apply")
    assert code == 0, second["errors"]
    lines = "\n".join(second["steps"])
    assert "model ranker-model: exists, used as it is" in lines
    assert f"endpoint configuration {NAME}-config: exists, used as it is" in lines
    assert f"endpoint {NAME}: created" in lines
    after = snapshot(sim)
    for part in before:
        assert after[part] == before[part], part


def test_the_backup_tag_names_no_local_path(
    cli: Cli, sim: Simulator, deleted: Any, tmp_path: Path
) -> None:
    """Issue 29: a tag written to AWS carried the ledger's local path (and so a user name)."""
    from sagesaver.aws.endpoints import BACKUP_TAG

    assert deleted  # the endpoint was backed up into tmp_path/ledger.sqlite and deleted
    tagging = sim.client("resourcegroupstaggingapi", EAST)
    mappings = tagging.get_resources(ResourceTypeFilters=["sagemaker:endpoint-config"])
    values = [
        t["Value"]
        for m in mappings["ResourceTagMappingList"]
        for t in m["Tags"]
        if t["Key"] == BACKUP_TAG
    ]
    [value] = values
    assert str(tmp_path) not in value and "/" not in value
    assert value.startswith("SQLite ledger ledger.sqlite (backup ")
    # Restoring with another ledger still says where to look.
    other = tmp_path / "other.sqlite"
    SqliteLedger(other).mark_seen("endpoint", datetime.now(timezone.utc))  # exists, no backup
    result = cli("restore", NAME, "--ledger", str(other))
    assert result.exit_code == 2
    assert "kept its backup in SQLite ledger ledger.sqlite (backup " in result.stderr
