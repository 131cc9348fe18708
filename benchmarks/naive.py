"""A naive idle-endpoint scan: the baseline SageSaver is measured against.

It does what a first script would: list every ``InService`` endpoint, then, one endpoint at a
time on a single thread, ``DescribeEndpoint`` to learn its variants and one
``GetMetricStatistics`` per variant. It applies the same idle rule as SageSaver's defaults: an
endpoint at least ``min_age`` old (from the later of its creation and last modification) whose
``Invocations`` summed over all its variants are 0 over the last ``window``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

NAMESPACE = "AWS/SageMaker"
METRIC = "Invocations"
WINDOW = timedelta(hours=24)
MIN_AGE = timedelta(hours=24)
# ListEndpoints' largest page; a smaller one would only add calls to the baseline.
LIST_PAGE_SIZE = 100

CONFIG = Config(retries={"mode": "standard", "max_attempts": 6})


def list_in_service(sagemaker: Any) -> list[dict[str, Any]]:
    """Summaries of every ``InService`` endpoint, all pages of ``ListEndpoints``."""
    paginator = sagemaker.get_paginator("list_endpoints")
    pages = paginator.paginate(
        StatusEquals="InService", PaginationConfig={"PageSize": LIST_PAGE_SIZE}
    )
    return [summary for page in pages for summary in page["Endpoints"]]


def variant_sum(
    cloudwatch: Any, endpoint: str, variant: str, now: datetime, window: timedelta
) -> float:
    """Sum of one variant's ``Invocations`` over [now - window, now), one call."""
    response = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=METRIC,
        Dimensions=[
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": variant},
        ],
        StartTime=now - window,
        EndTime=now,
        Period=int(window.total_seconds()),
        Statistics=["Sum"],
    )
    return float(sum(point.get("Sum", 0.0) for point in response["Datapoints"]))


def idle_endpoints(
    region: str,
    now: datetime,
    window: timedelta = WINDOW,
    min_age: timedelta = MIN_AGE,
    session: boto3.Session | None = None,
) -> set[str]:
    """Names of the idle ``InService`` endpoints of ``region``, found one by one.

    ``session`` defaults to a new boto3 session (the standard credential and endpoint chain).
    """
    session = session or boto3.Session()
    sagemaker = session.client("sagemaker", region_name=region, config=CONFIG)
    cloudwatch = session.client("cloudwatch", region_name=region, config=CONFIG)
    idle: set[str] = set()
    for summary in list_in_service(sagemaker):
        name = summary["EndpointName"]
        described = sagemaker.describe_endpoint(EndpointName=name)
        total = 0.0
        for variant in described.get("ProductionVariants", []):
            total += variant_sum(cloudwatch, name, variant["VariantName"], now, window)
        changed = max(summary["CreationTime"], summary["LastModifiedTime"])
        if now - changed >= min_age and total == 0:
            idle.add(name)
    return idle
