"""Endpoint activity from CloudWatch, in as few calls as CloudWatch allows.

``ListMetrics`` finds every (EndpointName, VariantName) pair of ``AWS/SageMaker``
``Invocations`` (real CloudWatch needs the exact dimension set: a query by ``EndpointName``
alone finds nothing). ``GetMetricData`` then reads the sums, up to 500 queries per call.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sagesaver.aws.session import Aws

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

NAMESPACE = "AWS/SageMaker"
METRIC = "Invocations"
ENDPOINT_DIM = "EndpointName"
VARIANT_DIM = "VariantName"
MAX_QUERIES_PER_CALL = 500

VariantKey = tuple[str, str]


def variant_dimensions(aws: Aws, region: str) -> dict[str, set[str]]:
    """Variant names with ``Invocations`` metrics, by endpoint name (deduplicated).

    Only metrics whose dimensions are exactly EndpointName + VariantName count.
    """
    paginator = aws.cloudwatch(region).get_paginator("list_metrics")
    found: dict[str, set[str]] = defaultdict(set)
    for page in paginator.paginate(Namespace=NAMESPACE, MetricName=METRIC):
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if set(dims) == {ENDPOINT_DIM, VARIANT_DIM}:
                found[dims[ENDPOINT_DIM]].add(dims[VARIANT_DIM])
    return dict(found)


def period_for(start: datetime, end: datetime) -> int:
    """One period covering the whole window, in the granularity CloudWatch accepts for it.

    Periods must be multiples of 60 s; for data older than 15 days, of 300 s; older than
    63 days, of 3600 s. Rounding up only widens the window, which can only find more
    activity, never less.
    """
    seconds = max(60.0, (end - start).total_seconds())
    step = 60
    if seconds > 15 * 86400:
        step = 300
    if seconds > 63 * 86400:
        step = 3600
    return int(math.ceil(seconds / step) * step)


def invocation_sums(
    aws: Aws, region: str, keys: Iterable[VariantKey], start: datetime, end: datetime
) -> dict[VariantKey, float]:
    """Sum of ``Invocations`` over [start, end) for each (endpoint, variant), batched.

    A variant with no datapoint at all sums to 0. Raises on the first failed call.
    """
    ordered = sorted(set(keys))
    period = period_for(start, end)
    client = aws.cloudwatch(region)
    sums: dict[VariantKey, float] = dict.fromkeys(ordered, 0.0)
    for offset in range(0, len(ordered), MAX_QUERIES_PER_CALL):
        batch = ordered[offset : offset + MAX_QUERIES_PER_CALL]
        by_id = {f"q{offset + i}": key for i, key in enumerate(batch)}
        queries: list[MetricDataQueryTypeDef] = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": METRIC,
                        "Dimensions": [
                            {"Name": ENDPOINT_DIM, "Value": endpoint},
                            {"Name": VARIANT_DIM, "Value": variant},
                        ],
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for query_id, (endpoint, variant) in by_id.items()
        ]
        paginator = client.get_paginator("get_metric_data")
        for page in paginator.paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
        ):
            for result in page["MetricDataResults"]:
                key = by_id.get(result["Id"])
                if key is not None:
                    sums[key] += float(sum(result.get("Values", [])))
    return sums
