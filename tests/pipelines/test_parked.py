"""Warm pools, long-running jobs and HyperPod clusters (Stubber: moto has no warm pools and
finishes jobs at once), and the storage of stopped notebook instances (simulator)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.demo.simulator import Fleet
from sagesaver.pipelines.parked import scan_parked
from sagesaver.pipelines.scan import scan
from tests.prices import example_pricer

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
REGION = "us-east-1"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:{}/{}"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Aws()


def training(name: str, created: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": ARN.format("training-job", name),
        "CreationTime": created,
        "TrainingJobStatus": extra.pop("status", "Completed"),
        "SecondaryStatus": "Completed",
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "img"},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
        "ResourceConfig": {
            "InstanceType": extra.pop("itype", "ml.g5.xlarge"),
            "InstanceCount": extra.pop("count", 2),
            "VolumeSizeInGB": 50,
            "KeepAlivePeriodInSeconds": 3600,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        **extra,
    }


def stub_nothing_else(stub: Stubber, long_before: datetime) -> None:
    stub.add_response(
        "list_processing_jobs",
        {"ProcessingJobSummaries": []},
        {"StatusEquals": "InProgress", "CreationTimeBefore": long_before, "MaxResults": 100},
    )


def test_warm_pools_long_jobs_and_clusters_are_reported_with_cost(aws: Aws) -> None:
    limit = NOW - timedelta(hours=72)
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub.add_response(
            "list_training_jobs",
            {
                "TrainingJobSummaries": [
                    {
                        "TrainingJobName": "tune-7",
                        "TrainingJobArn": ARN.format("training-job", "tune-7"),
                        "CreationTime": NOW - timedelta(hours=5),
                        "TrainingJobStatus": "Completed",
                        "WarmPoolStatus": {"Status": "Available"},
                    },
                    {  # a pool already reused: not billing for nothing
                        "TrainingJobName": "tune-6",
                        "TrainingJobArn": ARN.format("training-job", "tune-6"),
                        "CreationTime": NOW - timedelta(hours=9),
                        "TrainingJobStatus": "Completed",
                        "WarmPoolStatus": {"Status": "Reused"},
                    },
                ]
            },
            {"WarmPoolStatusEquals": "Available", "MaxResults": 100},
        )
        stub.add_response(
            "describe_training_job",
            training("tune-7", NOW - timedelta(hours=5), TrainingEndTime=NOW - timedelta(hours=2)),
            {"TrainingJobName": "tune-7"},
        )
        stub.add_response(
            "list_tags",
            {"Tags": [{"Key": "owner", "Value": "ana"}]},
            {"ResourceArn": ARN.format("training-job", "tune-7")},
        )
        stub.add_response(
            "list_training_jobs",
            {
                "TrainingJobSummaries": [
                    {
                        "TrainingJobName": "pretrain-xl",
                        "TrainingJobArn": ARN.format("training-job", "pretrain-xl"),
                        "CreationTime": NOW - timedelta(days=5),
                        "TrainingJobStatus": "InProgress",
                    }
                ]
            },
            {"StatusEquals": "InProgress", "CreationTimeBefore": limit, "MaxResults": 100},
        )
        stub.add_response(
            "describe_training_job",
            training(
                "pretrain-xl",
                NOW - timedelta(days=5),
                status="InProgress",
                itype="ml.p3.16xlarge",
                count=1,
            ),
            {"TrainingJobName": "pretrain-xl"},
        )
        stub.add_response(
            "list_processing_jobs",
            {
                "ProcessingJobSummaries": [
                    {
                        "ProcessingJobName": "etl-stuck",
                        "ProcessingJobArn": ARN.format("processing-job", "etl-stuck"),
                        "CreationTime": NOW - timedelta(days=4),
                        "ProcessingJobStatus": "InProgress",
                    }
                ]
            },
            {"StatusEquals": "InProgress", "CreationTimeBefore": limit, "MaxResults": 100},
        )
        stub.add_response(
            "describe_processing_job",
            {
                "ProcessingJobName": "etl-stuck",
                "ProcessingJobArn": ARN.format("processing-job", "etl-stuck"),
                "ProcessingJobStatus": "InProgress",
                "CreationTime": NOW - timedelta(days=4),
                "AppSpecification": {"ImageUri": "img"},
                "RoleArn": "arn:aws:iam::123456789012:role/r",
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceType": "ml.m5.4xlarge",
                        "InstanceCount": 3,
                        "VolumeSizeInGB": 30,
                    }
                },
            },
            {"ProcessingJobName": "etl-stuck"},
        )
        stub.add_response(
            "list_clusters",
            {
                "ClusterSummaries": [
                    {
                        "ClusterName": "hp-research",
                        "ClusterArn": ARN.format("cluster", "abc"),
                        "ClusterStatus": "InService",
                        "CreationTime": NOW - timedelta(days=30),
                    },
                    {
                        "ClusterName": "hp-going",
                        "ClusterArn": ARN.format("cluster", "def"),
                        "ClusterStatus": "Deleting",
                        "CreationTime": NOW - timedelta(days=30),
                    },
                ]
            },
            {"MaxResults": 100},
        )
        stub.add_response(
            "describe_cluster",
            {
                "ClusterName": "hp-research",
                "ClusterArn": ARN.format("cluster", "abc"),
                "ClusterStatus": "InService",
                "CreationTime": NOW - timedelta(days=30),
                "InstanceGroups": [
                    {"InstanceGroupName": "ctl", "InstanceType": "ml.m5.xlarge", "CurrentCount": 1},
                    {
                        "InstanceGroupName": "gpu",
                        "InstanceType": "ml.g5.12xlarge",
                        "CurrentCount": 2,
                    },
                ],
            },
            {"ClusterName": "hp-research"},
        )
        result = scan_parked(aws, REGION, Policy(), NOW, example_pricer())
        stub.assert_no_pending_responses()
    assert result.errors == []
    got = {d.resource.name: d for d in result.decisions}
    assert sorted(got) == ["etl-stuck", "hp-research", "pretrain-xl", "tune-7"]
    pool = got["tune-7"]
    assert (pool.action.value, pool.rule, pool.idle, pool.idle_hours) == (
        "notify",
        "warm-pool",
        True,
        2.0,
    )
    assert pool.hourly_cost_usd == pytest.approx(2 * 1.408)
    assert "KeepAlivePeriodInSeconds = 0" in pool.reason
    assert [r.kind for r in pool.recommendations] == ["release-warm-pool"]
    long_job = got["pretrain-xl"]
    assert (long_job.action.value, long_job.rule) == ("notify", "long-running")
    assert long_job.resource.kind.value == "training-job"
    assert "running for 120.0 h" in long_job.reason and "never stops a job" in long_job.reason
    assert long_job.hourly_cost_usd == pytest.approx(28.152)
    etl = got["etl-stuck"]
    assert etl.resource.kind.value == "processing-job" and etl.rule == "long-running"
    assert etl.hourly_cost_usd == pytest.approx(3 * 0.922)
    cluster = got["hp-research"]
    assert (cluster.action.value, cluster.rule) == ("keep", "hyperpod")
    assert cluster.resource.instance_count == 3
    table = example_pricer().table
    g5 = table.hourly(REGION, "hosting", "ml.g5.12xlarge")
    assert g5 is not None
    assert cluster.hourly_cost_usd == pytest.approx(0.23 + 2 * g5)
    assert "bill until it is deleted" in cluster.reason


def test_a_failed_listing_is_confined(aws: Aws) -> None:
    policy = parse_policy("jobs: {max_running_hours: 24}")
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub.add_client_error("list_training_jobs", "AccessDeniedException", "no", 400)
        stub.add_response(
            "list_training_jobs",
            {"TrainingJobSummaries": []},
            {"StatusEquals": "InProgress", "CreationTimeBefore": ANY, "MaxResults": 100},
        )
        stub_nothing_else(stub, NOW - timedelta(hours=24))
        stub.add_response("list_clusters", {"ClusterSummaries": []}, {"MaxResults": 100})
        result = scan_parked(aws, REGION, policy, NOW, example_pricer())
        stub.assert_no_pending_responses()
    assert [e.operation for e in result.errors] == ["ListTrainingJobs"]
    assert result.decisions == []


def test_jobs_can_be_switched_off(aws: Aws) -> None:
    with Stubber(aws.sagemaker(REGION)) as stub:  # no call at all
        result = scan_parked(
            aws, REGION, parse_policy("jobs: {enabled: false}"), NOW, example_pricer()
        )
        stub.assert_no_pending_responses()
    assert result.decisions == [] and result.errors == []


def test_the_scan_reports_parked_compute_on_the_simulator(fleet: Fleet, now: datetime) -> None:
    fleet.notebook(
        REGION,
        "old-experiment",
        "ml.p3.2xlarge",
        status="Stopped",
        changed=now - timedelta(days=40),
    )
    result = scan(Aws(), [REGION], Policy(), now)
    assert result.errors == []
    (notebook,) = [d for d in result.decisions if d.resource.name == "old-experiment"]
    assert notebook.rule == "stopped-storage" and notebook.idle and notebook.action.value == "keep"
    assert notebook.idle_hours == pytest.approx(40 * 24, abs=0.1)


def test_the_digest_names_a_warm_pool_with_its_instance_count() -> None:
    from sagesaver.core.digest import digest_lines
    from sagesaver.core.model import Kind, Resource
    from sagesaver.core.rules.parked import decide_warm_pool

    pool = Resource(
        Kind.TRAINING_JOB,
        "tune-7",
        ARN.format("training-job", "tune-7"),
        REGION,
        "123456789012",
        "WarmPoolAvailable",
        NOW - timedelta(hours=5),
        NOW - timedelta(hours=2),
        instance_type="ml.g5.xlarge",
        instance_count=2,
    )
    (line,) = digest_lines([decide_warm_pool(pool, NOW, 2.816)])
    assert "tune-7 (us-east-1): idle for 2.0 h; 2 x ml.g5.xlarge; $2.82/h" in line
