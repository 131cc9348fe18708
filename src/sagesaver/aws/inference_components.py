"""Inference components: listed, their copies described, their ``Invocations`` read in batches.

An endpoint can host several models as inference components
(https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-deploy-models.html); each
publishes ``Invocations`` in namespace ``AWS/SageMaker`` with the dimension
``InferenceComponentName`` (AWS: "Amazon SageMaker AI metrics in Amazon CloudWatch",
https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html). The dimension set
is known from the listing, so no ``ListMetrics`` is needed: one query per component, 500 a
``GetMetricData`` call. ``ListInferenceComponents`` pages; ``DescribeInferenceComponent``
(for the current copy count) only for idle candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sagesaver.aws.endpoint_signals import SignalTotals, read_batched
from sagesaver.aws.inventory import PAGE_SIZE, account_of
from sagesaver.aws.metrics import METRIC, NAMESPACE, metric_query, period_for
from sagesaver.aws.session import Aws
from sagesaver.core.model import Kind, Resource

COMPONENT_DIM = "InferenceComponentName"


def list_inference_components(aws: Aws, region: str) -> list[Resource]:
    """Every inference component of the region (any status), all pages; ``parent`` is the
    endpoint that hosts it."""
    paginator = aws.sagemaker(region).get_paginator("list_inference_components")
    found = []
    for page in paginator.paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
        for summary in page["InferenceComponents"]:
            arn = summary["InferenceComponentArn"]
            found.append(
                Resource(
                    kind=Kind.INFERENCE_COMPONENT,
                    name=summary["InferenceComponentName"],
                    arn=arn,
                    region=region,
                    account=account_of(arn),
                    status=summary.get("InferenceComponentStatus", "Unknown"),
                    created=summary["CreationTime"],
                    modified=summary.get("LastModifiedTime", summary["CreationTime"]),
                    parent=summary["EndpointName"],
                )
            )
    return found


def hosted_components(aws: Aws, region: str, endpoint: str) -> list[str]:
    """The names of the inference components ``endpoint`` hosts (any status), all pages."""
    paginator = aws.sagemaker(region).get_paginator("list_inference_components")
    pages = paginator.paginate(
        EndpointNameEquals=endpoint, PaginationConfig={"PageSize": PAGE_SIZE}
    )
    return [s["InferenceComponentName"] for page in pages for s in page["InferenceComponents"]]


def current_copies(aws: Aws, region: str, name: str) -> int:
    """How many copies of the component run now (``RuntimeConfig.CurrentCopyCount``)."""
    described = aws.sagemaker(region).describe_inference_component(InferenceComponentName=name)
    runtime = described.get("RuntimeConfig", {})
    return int(runtime.get("CurrentCopyCount", runtime.get("DesiredCopyCount", 0)) or 0)


def component_invocations(
    aws: Aws, region: str, names: Iterable[str], start: datetime, end: datetime
) -> SignalTotals:
    """The ``Invocations`` sum of each component over [start, end), batched."""
    ordered = sorted(set(names))
    period = period_for(start, end)
    queries = [
        (name, metric_query(f"c{i}", NAMESPACE, METRIC, "Sum", {COMPONENT_DIM: name}, period))
        for i, name in enumerate(ordered)
    ]
    values, problems = read_batched(aws, region, queries, start, end)
    result = SignalTotals(problems=problems)
    for name in ordered:
        if name not in problems:
            result.totals[name] = float(sum(values.get(name, [])))
    return result
