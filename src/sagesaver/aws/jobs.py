"""Training jobs (warm pools, long runs), processing jobs, HyperPod clusters, and the storage
of stopped notebook instances: listed with the filters that keep the calls few, described only
for what is reported.

- ``ListTrainingJobs`` with ``WarmPoolStatusEquals=Available`` (each summary's
  ``WarmPoolStatus`` is checked too), then ``DescribeTrainingJob`` for ``ResourceConfig`` and
  ``ListTags`` (the protect and owner tags);
- releasing a warm pool: ``DescribeTrainingJob`` again (still ``Available``?), then
  ``UpdateTrainingJob`` with ``ResourceConfig.KeepAlivePeriodInSeconds`` 0, which terminates the
  pool (https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools-how-to-use.html,
  "Using the low-level SageMaker APIs"; the request shape and the 0 to 21,600 s range are
  botocore's service model's ``ResourceConfigForUpdate``);
- ``ListTrainingJobs`` / ``ListProcessingJobs`` with ``StatusEquals=InProgress`` and
  ``CreationTimeBefore`` (only the jobs old enough to matter), then their describe;
- ``ListClusters`` and ``DescribeCluster`` (``InstanceGroups``: type and current count);
- ``DescribeNotebookInstance`` (``VolumeSizeInGB``) for stopped notebook instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sagesaver.aws.inventory import account_of
from sagesaver.aws.session import Aws
from sagesaver.core.model import Kind, Resource

PAGE = 100


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(
        **params, PaginationConfig={"PageSize": PAGE}
    ):
        found += page[key]
    return found


def _resource(
    kind: Kind,
    name: str,
    arn: str,
    region: str,
    status: str,
    created: datetime,
    modified: datetime,
    instance_type: str | None,
    count: int,
) -> Resource:
    return Resource(
        kind=kind,
        name=name,
        arn=arn,
        region=region,
        account=account_of(arn),
        status=status,
        created=created,
        modified=modified,
        instance_type=instance_type,
        instance_count=count,
    )


# Tags SageSaver's executor writes on resources it schedules or claims; it never writes them on
# training jobs (a warm pool has no grace tag), so they are not read from one either.
_OWN_TAGS = ("sagesaver:scheduled-action", "sagesaver:claim")


@dataclass(frozen=True)
class WarmPool:
    """A training job whose warm pool is ``Available``: the job (``modified``: when training
    ended; ``tags`` not read yet) and when the pool would end by itself, if known."""

    resource: Resource
    expires: datetime | None


def _expiry(job: Mapping[str, Any], ended: datetime) -> datetime | None:
    keep = (job.get("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds")
    return None if keep is None else ended + timedelta(seconds=int(keep))


def warm_pools(aws: Aws, region: str) -> list[WarmPool]:
    """Finished training jobs whose warm pool is ``Available`` (retained, billed)."""
    client = aws.sagemaker(region)
    found = []
    for summary in _pages(
        client, "list_training_jobs", "TrainingJobSummaries", WarmPoolStatusEquals="Available"
    ):
        if (summary.get("WarmPoolStatus") or {}).get("Status") != "Available":
            continue
        job = client.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        config = job.get("ResourceConfig") or {}
        ended = job.get("TrainingEndTime") or summary.get("TrainingEndTime") or job["CreationTime"]
        resource = _resource(
            Kind.TRAINING_JOB,
            job["TrainingJobName"],
            job["TrainingJobArn"],
            region,
            "WarmPoolAvailable",
            job["CreationTime"],
            ended,
            config.get("InstanceType"),
            int(config.get("InstanceCount") or 0),
        )
        found.append(WarmPool(resource, _expiry(job, ended)))
    return found


def job_tags(aws: Aws, region: str, arn: str) -> dict[str, str]:
    """A training job's tags now (``ListTags``, every page), without SageSaver's own."""
    client = aws.sagemaker(region)
    tags: dict[str, str] = {}
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({t["Key"]: t["Value"] for t in page["Tags"] if t["Key"] not in _OWN_TAGS})
    return tags


@dataclass(frozen=True)
class PoolNow:
    """A warm pool as a fresh ``DescribeTrainingJob`` shows it."""

    status: str | None  # WarmPoolStatus.Status; None when the job has no warm pool
    created: datetime
    expires: datetime | None


def warm_pool_now(aws: Aws, region: str, name: str) -> PoolNow:
    """Re-read a training job's warm pool just before acting on it."""
    job = aws.sagemaker(region).describe_training_job(TrainingJobName=name)
    ended = job.get("TrainingEndTime") or job["CreationTime"]
    status = (job.get("WarmPoolStatus") or {}).get("Status")
    return PoolNow(status, job["CreationTime"], _expiry(job, ended))


def release_warm_pool(aws: Aws, region: str, name: str) -> None:
    """End a training job's warm pool: ``UpdateTrainingJob`` with
    ``ResourceConfig.KeepAlivePeriodInSeconds`` 0. The job and its model are kept."""
    aws.sagemaker(region).update_training_job(
        TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 0}
    )


def running_jobs(aws: Aws, region: str, started_before: datetime) -> list[Resource]:
    """Training and processing jobs ``InProgress`` that were created before ``started_before``."""
    client = aws.sagemaker(region)
    found = []
    for summary in _pages(
        client,
        "list_training_jobs",
        "TrainingJobSummaries",
        StatusEquals="InProgress",
        CreationTimeBefore=started_before,
    ):
        job = client.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        config = job.get("ResourceConfig") or {}
        found.append(
            _resource(
                Kind.TRAINING_JOB,
                job["TrainingJobName"],
                job["TrainingJobArn"],
                region,
                job["TrainingJobStatus"],
                job["CreationTime"],
                job.get("LastModifiedTime") or job["CreationTime"],
                config.get("InstanceType"),
                int(config.get("InstanceCount") or 0),
            )
        )
    for summary in _pages(
        client,
        "list_processing_jobs",
        "ProcessingJobSummaries",
        StatusEquals="InProgress",
        CreationTimeBefore=started_before,
    ):
        processing = client.describe_processing_job(ProcessingJobName=summary["ProcessingJobName"])
        cluster = (processing.get("ProcessingResources") or {}).get("ClusterConfig") or {}
        found.append(
            _resource(
                Kind.PROCESSING_JOB,
                processing["ProcessingJobName"],
                processing["ProcessingJobArn"],
                region,
                processing["ProcessingJobStatus"],
                processing["CreationTime"],
                processing.get("LastModifiedTime") or processing["CreationTime"],
                cluster.get("InstanceType"),
                int(cluster.get("InstanceCount") or 0),
            )
        )
    return found


def hyperpod_clusters(aws: Aws, region: str) -> list[tuple[Resource, list[tuple[str, int]]]]:
    """Every HyperPod cluster not being deleted, with its instance groups (type, count)."""
    client = aws.sagemaker(region)
    found = []
    for summary in _pages(client, "list_clusters", "ClusterSummaries"):
        if summary.get("ClusterStatus") in ("Deleting", "Failed"):
            continue
        cluster = client.describe_cluster(ClusterName=summary["ClusterName"])
        groups: list[tuple[str, int]] = [
            (str(g["InstanceType"]), int(g.get("CurrentCount") or 0))
            for g in cluster.get("InstanceGroups", [])
        ]
        types = sorted({t for t, n in groups if n})
        found.append(
            (
                _resource(
                    Kind.HYPERPOD_CLUSTER,
                    cluster["ClusterName"],
                    cluster["ClusterArn"],
                    region,
                    cluster["ClusterStatus"],
                    cluster["CreationTime"],
                    cluster["CreationTime"],
                    ", ".join(types) or None,
                    sum(n for _, n in groups),
                ),
                groups,
            )
        )
    return found


def notebook_volume_gb(aws: Aws, region: str, name: str) -> int | None:
    """The ML storage volume of a notebook instance, in GB."""
    described = aws.sagemaker(region).describe_notebook_instance(NotebookInstanceName=name)
    size = described.get("VolumeSizeInGB")
    return None if size is None else int(size)
