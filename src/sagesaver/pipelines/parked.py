"""Long-running and parked compute in one region: warm pools, long training and processing
jobs, HyperPod clusters, and the storage of stopped notebook instances (core/rules/parked.py).

Each read is confined: a failed listing is an error for its region and kind, a failed describe
an error for its resource; the rest of the scan completes. Nothing here changes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sagesaver.aws import jobs
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.model import Decision, Kind, Resource, ScanError, ScanResult
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer
from sagesaver.core.rules.parked import (
    decide_cluster,
    decide_running_job,
    decide_stopped_notebook,
    decide_warm_pool,
    storage_hourly_cost,
)


def _instances_cost(
    pricer: Pricer, region: str, groups: Sequence[tuple[str | None, int]]
) -> float | None:
    """USD per hour of (type, count) groups at the real-time inference price; None if any
    running group's type has no price."""
    total = 0.0
    for instance_type, count in groups:
        if not count:
            continue
        price = pricer.hourly(region, "hosting", instance_type) if instance_type else None
        if price is None:
            return None
        total += price * count
    return round(total, 6)


def _one(resource: Resource, pricer: Pricer) -> float | None:
    return _instances_cost(
        pricer, resource.region, [(resource.instance_type, resource.instance_count or 0)]
    )


def _warm_pool_decision(
    aws: Aws, pool: jobs.WarmPool, policy: Policy, now: datetime, pricer: Pricer, result: ScanResult
) -> Decision:
    """A warm pool judged with its tags; when they cannot be read it is reported, never
    released (unknown is never unprotected)."""
    resource = pool.resource
    cost = _one(resource, pricer)
    try:
        resource = replace(resource, tags=jobs.job_tags(aws, resource.region, resource.arn))
    except AWS_ERRORS as exc:
        error = scan_error(exc, resource.region, "ListTags", resource.name)
        result.errors.append(error)
        decided = decide_warm_pool(resource, now, cost, None, pool.expires)
        return replace(
            decided,
            rule="tags-unknown",
            reason=f"{decided.reason}; its tags could not be read, so it is not released: "
            f"{error.message}",
        )
    return decide_warm_pool(resource, now, cost, policy.jobs.warm_pools, pool.expires)


def scan_parked(aws: Aws, region: str, policy: Policy, now: datetime, pricer: Pricer) -> ScanResult:
    """Warm pools, long-running jobs and HyperPod clusters of one region, with their cost."""
    result = ScanResult(generated_at=now, regions=[region])
    if not policy.jobs.enabled:
        return result
    try:
        pools = jobs.warm_pools(aws, region)
    except AWS_ERRORS as exc:
        pools = []
        result.errors.append(scan_error(exc, region, "ListTrainingJobs"))
    for pool in pools:
        result.decisions.append(_warm_pool_decision(aws, pool, policy, now, pricer, result))
    limit = now - timedelta(hours=policy.jobs.max_running_hours)
    try:
        for job in jobs.running_jobs(aws, region, limit):
            result.decisions.append(decide_running_job(job, policy.jobs, now, _one(job, pricer)))
    except AWS_ERRORS as exc:
        result.errors.append(scan_error(exc, region, "ListTrainingJobs/ListProcessingJobs"))
    try:
        for cluster, groups in jobs.hyperpod_clusters(aws, region):
            cost = _instances_cost(pricer, region, list(groups))
            result.decisions.append(decide_cluster(cluster, cost))
    except AWS_ERRORS as exc:
        result.errors.append(scan_error(exc, region, "ListClusters"))
    return result


def with_notebook_storage(
    aws: Aws,
    region: str,
    decisions: list[Decision],
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    errors: list[ScanError],
) -> list[Decision]:
    """Stopped notebook instances re-judged with the cost of their storage volume (one
    describe each); a failed describe leaves the instance as it was, with an error."""
    known_region = bool(pricer.table.prices.get(pricer.table.aliases.get(region, region)))
    out = []
    for decision in decisions:
        resource = decision.resource
        if resource.kind is not Kind.NOTEBOOK or resource.status != "Stopped":
            out.append(decision)
            continue
        try:
            volume = jobs.notebook_volume_gb(aws, region, resource.name)
        except AWS_ERRORS as exc:
            error = scan_error(exc, region, "DescribeNotebookInstance", resource.name)
            errors.append(error)
            decision = replace(decision, reason=f"{decision.reason}; storage: {error.message}")
            out.append(decision)
            continue
        cost = storage_hourly_cost(volume, known_region)
        out.append(decide_stopped_notebook(decision, volume, policy.notebooks, now, cost))
    return out
