"""Training jobs (warm pools, long runs), processing jobs, HyperPod clusters, and the storage
of stopped notebook instances: listed with the filters that keep the calls few, described only
for what is reported.

- ``ListTrainingJobs`` with ``WarmPoolStatusEquals=Available`` (each summary's
  ``WarmPoolStatus`` is checked too), then ``DescribeTrainingJob`` for ``ResourceConfig``;
- ``ListTrainingJobs`` / ``ListProcessingJobs`` with ``StatusEquals=InProgress`` and
  ``CreationTimeBefore`` (only the jobs old enough to matter), then their describe;
- ``ListClusters`` and ``DescribeCluster`` (``InstanceGroups``: type and current count);
- ``DescribeNotebookInstance`` (``VolumeSizeInGB``) for stopped notebook instances.
"""

from __future__ import annotations

from datetime import datetime
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


def warm_pools(aws: Aws, region: str) -> list[Resource]:
    """Finished training jobs whose warm pool is ``Available`` (retained, billed); ``modified``
    is when training ended."""
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
        found.append(
            _resource(
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
        )
    return found


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
