"""Endpoint metrics beyond ``Invocations``: asynchronous traffic and instance utilisation,
batched like the rest.

**Asynchronous endpoints** publish none of the real-time invocation metrics (no
``Invocations``); their traffic shows in metrics of their own, in namespace ``AWS/SageMaker``
with the single dimension ``EndpointName`` (AWS: "Alarms and logs for tracking metrics from
asynchronous endpoints", https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html,
which calls its list exhaustive and names ``Invocations`` among the metrics not published once
an endpoint is asynchronous; checked 2026-12-01):

- ``InvocationsProcessed``: requests the endpoint processed (Sum);
- ``ApproximateBacklogSize``: requests queued, waiting to be processed (Maximum);
- ``HasBacklogWithoutCapacity``: 1 while requests wait and no instance runs (Maximum).

Any value above zero on any of them, over the window, is activity. Each endpoint takes
:data:`ASYNC_METRICS` queries; they are read in ``GetMetricData`` calls of up to 500 queries,
all pages, and a query not answered ``Complete`` makes its endpoint unknown (never idle).

**Utilisation** of endpoint instances is in namespace ``/aws/sagemaker/Endpoints``, dimensions
``EndpointName`` + ``VariantName``: ``CPUUtilization``, ``MemoryUtilization``,
``GPUUtilization``, ``GPUMemoryUtilization`` (AWS: "Amazon SageMaker AI metrics in Amazon
CloudWatch", https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html). One
``ListMetrics`` listing (``CPUUtilization``, which every instance publishes) finds the variants
with data; their ``Maximum`` over the window is read four queries a variant, 500 a call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from sagesaver.aws.metrics import (
    ENDPOINT_DIM,
    MAX_QUERIES_PER_CALL,
    NAMESPACE,
    VARIANT_DIM,
    VariantKey,
    metric_query,
    period_for,
    read_metric_data,
)
from sagesaver.aws.session import Aws

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

# (metric, statistic): each documented traffic metric of an asynchronous endpoint.
ASYNC_METRICS: tuple[tuple[str, str], ...] = (
    ("InvocationsProcessed", "Sum"),
    ("ApproximateBacklogSize", "Maximum"),
    ("HasBacklogWithoutCapacity", "Maximum"),
)


@dataclass
class SignalTotals:
    """Per resource: the traffic read completely (summed over its queries), or why not."""

    totals: dict[str, float] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


Owner = TypeVar("Owner", bound=Hashable)


def read_batched(
    aws: Aws,
    region: str,
    queries: Iterable[tuple[Owner, MetricDataQueryTypeDef]],
    start: datetime,
    end: datetime,
) -> tuple[dict[Owner, list[float]], dict[Owner, str]]:
    """Run (owner, query) pairs in ``GetMetricData`` calls of 500: the values of every query
    by owner, and for each owner with a query not answered whole, the first problem.
    Raises on a failed call."""
    pending = list(queries)
    values: dict[Owner, list[float]] = {}
    problems: dict[Owner, str] = {}
    for offset in range(0, len(pending), MAX_QUERIES_PER_CALL):
        batch = pending[offset : offset + MAX_QUERIES_PER_CALL]
        owners = {query["Id"]: owner for owner, query in batch}
        answered = read_metric_data(aws, region, [q for _, q in batch], start, end)
        for query_id, series in answered.items():
            owner = owners[query_id]
            problem = series.problem
            if problem is not None:
                problems.setdefault(owner, problem)
            values.setdefault(owner, []).extend(series.values)
    return values, problems


def async_traffic(
    aws: Aws, region: str, endpoints: Iterable[str], start: datetime, end: datetime
) -> SignalTotals:
    """The asynchronous traffic of each endpoint over [start, end): the sum of the values of
    its :data:`ASYNC_METRICS` (0 when all came back ``Complete`` and empty)."""
    names = sorted(set(endpoints))
    period = period_for(start, end)
    queries = [
        (
            name,
            metric_query(f"a{i}_{m}", NAMESPACE, metric, stat, {ENDPOINT_DIM: name}, period),
        )
        for i, name in enumerate(names)
        for m, (metric, stat) in enumerate(ASYNC_METRICS)
    ]
    values, problems = read_batched(aws, region, queries, start, end)
    result = SignalTotals(problems=problems)
    for name in names:
        if name not in problems:
            result.totals[name] = float(sum(v for v in values.get(name, []) if v > 0))
    return result


UTILIZATION_NAMESPACE = "/aws/sagemaker/Endpoints"
UTILIZATION_METRICS = (
    "CPUUtilization",
    "MemoryUtilization",
    "GPUUtilization",
    "GPUMemoryUtilization",
)


def utilization_variants(aws: Aws, region: str) -> dict[str, set[str]]:
    """Variants with instance utilisation data, by endpoint (exactly EndpointName +
    VariantName; ``ListMetrics`` lists metrics with data in the last two weeks)."""
    paginator = aws.cloudwatch(region).get_paginator("list_metrics")
    found: dict[str, set[str]] = defaultdict(set)
    for page in paginator.paginate(
        Namespace=UTILIZATION_NAMESPACE, MetricName=UTILIZATION_METRICS[0]
    ):
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if set(dims) == {ENDPOINT_DIM, VARIANT_DIM}:
                found[dims[ENDPOINT_DIM]].add(dims[VARIANT_DIM])
    return dict(found)


@dataclass
class UtilizationPeaks:
    """Per variant: each metric's peak (None: no datapoint), or why it could not be read."""

    peaks: dict[VariantKey, dict[str, float | None]] = field(default_factory=dict)
    problems: dict[VariantKey, str] = field(default_factory=dict)


def utilization_peaks(
    aws: Aws, region: str, keys: Iterable[VariantKey], start: datetime, end: datetime
) -> UtilizationPeaks:
    """The ``Maximum`` of each :data:`UTILIZATION_METRICS` over [start, end), per variant."""
    ordered = sorted(set(keys))
    period = period_for(start, end)
    queries = [
        (
            (key, metric),
            metric_query(
                f"u{i}_{m}",
                UTILIZATION_NAMESPACE,
                metric,
                "Maximum",
                {ENDPOINT_DIM: key[0], VARIANT_DIM: key[1]},
                period,
            ),
        )
        for i, key in enumerate(ordered)
        for m, metric in enumerate(UTILIZATION_METRICS)
    ]
    values, problems = read_batched(aws, region, queries, start, end)
    result = UtilizationPeaks()
    for (key, metric), problem in problems.items():
        result.problems.setdefault(key, f"{metric}: {problem}")
    for key in ordered:
        if key in result.problems:
            continue
        result.peaks[key] = {
            metric: max(values[(key, metric)]) if values.get((key, metric)) else None
            for metric in UTILIZATION_METRICS
        }
    return result
