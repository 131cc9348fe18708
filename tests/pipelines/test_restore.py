"""Restore brings back what was deleted, field for field, and never changes anything else."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sagesaver.demo.simulator import ACCOUNT_ID, IMAGE, ROLE_ARN, Fleet, Simulator
from tests.conftest import Cli
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
    assert "variant blue: weight 0.9, 3 instance(s) as it ran" in steps
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
    from sagesaver.aws.endpoints import backup, restore
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
    restore(aws, document, apply=True)
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
