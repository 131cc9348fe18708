"""An endpoint's instances, or its inference components' copies, taken to 0 and put back: the
cheaper parks of :mod:`sagesaver.pipelines.parking_scale`.

What AWS allows (cited where each decision depends on it):

- An asynchronous endpoint may run 0 instances: "with Asynchronous Inference you can also
  scale down your asynchronous endpoints instances to zero. Requests that are received when
  there are zero instances are queued"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html). Any other
  variant's scalable target needs ``MinCapacity`` of at least 1
  (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-policy.html).
- ``UpdateEndpointWeightsAndCapacities`` takes ``DesiredInstanceCount`` from 0
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DesiredWeightAndCapacity.html)
  and puts the endpoint in ``Updating``, then ``InService``
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpointWeightsAndCapacities.html).
- An endpoint's instances go to 0 only when it hosts inference components and its variant's
  ``ManagedInstanceScaling`` has ``MinInstanceCount`` 0; each component then registers with
  ``MinCapacity`` 0 on ``sagemaker:inference-component:DesiredCopyCount``
  (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html);
  a component's ``CopyCount`` may be 0
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentRuntimeConfig.html).
- Scale-out by policies and schedules is suspended while parked (``SuspendedState``,
  https://docs.aws.amazon.com/autoscaling/application/APIReference/API_SuspendedState.html), so
  nothing bills until the unpark: a request queued at night waits for the morning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws.session import Aws

VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
COPIES_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
# While parked: nothing scales out (a policy or a schedule would bill again before the unpark).
PARKED_SUSPENSION = {
    "DynamicScalingInSuspended": False,
    "DynamicScalingOutSuspended": True,
    "ScheduledScalingSuspended": True,
}
_IDS_PER_CALL = 50  # DescribeScalableTargets' ResourceIds


def variant_resource(endpoint: str, variant: str) -> str:
    """A variant's Application Auto Scaling resource id."""
    return f"endpoint/{endpoint}/variant/{variant}"


def component_resource(component: str) -> str:
    """An inference component's Application Auto Scaling resource id."""
    return f"inference-component/{component}"


@dataclass(frozen=True)
class Bounds:
    """A scalable target: its resource, dimension, capacities and suspended state."""

    resource_id: str
    dimension: str
    min_capacity: int
    max_capacity: int
    suspended: dict[str, bool] = field(default_factory=dict)

    def as_document(self) -> dict[str, Any]:
        """As the ledger keeps it."""
        return {
            "resource_id": self.resource_id,
            "dimension": self.dimension,
            "min": self.min_capacity,
            "max": self.max_capacity,
            "suspended": dict(self.suspended),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Bounds:
        """From what the ledger kept."""
        return cls(
            str(document["resource_id"]),
            str(document["dimension"]),
            int(document["min"]),
            int(document["max"]),
            {str(k): bool(v) for k, v in (document.get("suspended") or {}).items()},
        )


def targets(
    aws: Aws, region: str, resource_ids: Iterable[str], dimension: str
) -> dict[str, Bounds]:
    """The scalable targets of ``resource_ids`` on ``dimension`` (those registered), by id."""
    ids = sorted(set(resource_ids))
    client = aws.client("application-autoscaling", region)
    found: dict[str, Bounds] = {}
    for start in range(0, len(ids), _IDS_PER_CALL):
        kwargs: dict[str, Any] = {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": ids[start : start + _IDS_PER_CALL],
            "ScalableDimension": dimension,
        }
        while True:
            page = client.describe_scalable_targets(**kwargs)
            for target in page.get("ScalableTargets", []):
                if target.get("ScalableDimension") != dimension:
                    continue
                found[target["ResourceId"]] = Bounds(
                    target["ResourceId"],
                    dimension,
                    int(target["MinCapacity"]),
                    int(target["MaxCapacity"]),
                    # all three, false unless said: put back whole (an omitted one is
                    # left as it is by RegisterScalableTarget)
                    {k: False for k in PARKED_SUSPENSION}
                    | {k: bool(v) for k, v in (target.get("SuspendedState") or {}).items()},
                )
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    return found


def register(aws: Aws, region: str, bounds: Bounds) -> None:
    """``RegisterScalableTarget`` with ``bounds`` (an existing target is updated in place:
    its policies stay)."""
    kwargs: dict[str, Any] = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": bounds.resource_id,
        "ScalableDimension": bounds.dimension,
        "MinCapacity": bounds.min_capacity,
        "MaxCapacity": bounds.max_capacity,
    }
    if bounds.suspended:
        kwargs["SuspendedState"] = dict(bounds.suspended)
    aws.client("application-autoscaling", region).register_scalable_target(**kwargs)


def parked_bounds(bounds: Bounds) -> Bounds:
    """``bounds`` while parked: minimum 0, maximum kept, scale-out suspended."""
    return Bounds(
        bounds.resource_id,
        bounds.dimension,
        0,
        max(bounds.max_capacity, 1),
        {**bounds.suspended, **PARKED_SUSPENSION},
    )


def set_instances(aws: Aws, region: str, endpoint: str, counts: Mapping[str, int]) -> None:
    """``UpdateEndpointWeightsAndCapacities``: each variant's desired instance count."""
    aws.sagemaker(region).update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": variant, "DesiredInstanceCount": count}
            for variant, count in sorted(counts.items())
        ],
    )


def set_copies(aws: Aws, region: str, component: str, copies: int) -> None:
    """``UpdateInferenceComponentRuntimeConfig``: the component's copy count."""
    aws.sagemaker(region).update_inference_component_runtime_config(
        InferenceComponentName=component, DesiredRuntimeConfig={"CopyCount": copies}
    )


@dataclass(frozen=True)
class EndpointNow:
    """An endpoint as DescribeEndpoint answers now: its state, creation, configuration and
    each instance variant's desired and current counts."""

    status: str
    created: datetime
    config: str
    desired: dict[str, int]
    current: dict[str, int]
    arn: str = ""


def endpoint_now(aws: Aws, region: str, name: str) -> EndpointNow:
    """``DescribeEndpoint`` (raises when it is not there)."""
    described = aws.sagemaker(region).describe_endpoint(EndpointName=name)
    desired: dict[str, int] = {}
    current: dict[str, int] = {}
    for variant in described.get("ProductionVariants", []):
        if "CurrentServerlessConfig" in variant:
            continue
        name_ = str(variant["VariantName"])
        now = variant.get("CurrentInstanceCount")
        desired[name_] = int(variant.get("DesiredInstanceCount", now) or 0)
        current[name_] = int(now or 0)
    return EndpointNow(
        str(described["EndpointStatus"]),
        described["CreationTime"],
        str(described.get("EndpointConfigName", "")),
        desired,
        current,
        str(described.get("EndpointArn", "")),
    )


def endpoint_tags(aws: Aws, region: str, arn: str) -> dict[str, str]:
    """``ListTags`` of the endpoint ``arn`` (every page)."""
    found: dict[str, str] = {}
    for page in aws.sagemaker(region).get_paginator("list_tags").paginate(ResourceArn=arn):
        found.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    return found


def configuration(aws: Aws, region: str, name: str) -> dict[str, Any]:
    """``DescribeEndpointConfig``."""
    described = aws.sagemaker(region).describe_endpoint_config(EndpointConfigName=name)
    return dict(described)


@dataclass(frozen=True)
class ComponentNow:
    """An inference component now: its state, host, desired and current copies."""

    status: str
    endpoint: str
    desired: int
    current: int


def component_now(aws: Aws, region: str, name: str) -> ComponentNow:
    """``DescribeInferenceComponent`` (raises when it is not there)."""
    described = aws.sagemaker(region).describe_inference_component(InferenceComponentName=name)
    runtime = described.get("RuntimeConfig") or {}
    current = int(runtime.get("CurrentCopyCount", 0) or 0)
    return ComponentNow(
        str(described.get("InferenceComponentStatus", "Unknown")),
        str(described.get("EndpointName", "")),
        int(runtime.get("DesiredCopyCount", current) or 0),
        current,
    )
