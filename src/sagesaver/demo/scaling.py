"""What parking takes to 0, as AWS answers it (moto has too little of it): each rule cites
the AWS page it follows.

- ``UpdateEndpointWeightsAndCapacities`` refuses ``DesiredInstanceCount`` 0 on an endpoint that
  is neither asynchronous nor a host of inference components, and ``RegisterScalableTarget``
  refuses ``MinCapacity`` 0 on such an endpoint's variant;
- the scalable targets of inference components' copies (moto knows no such dimension) are
  kept here (:attr:`ScalingState.targets`), and ``DescribeScalableTargets`` answers from them;
- ``UpdateInferenceComponentRuntimeConfig`` sets a component's copies;
- switched on by a test (:attr:`ScalingState.updating_reads`): an endpoint or component
  answers ``Updating`` for that many reads after an update, then ``InService`` with the counts
  asked (moto changes them at once).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sagesaver.demo.wire import Answer, BehaviourRequest, error_answer, json_answer

COPIES_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
Components = dict[tuple[str, str], dict[str, dict[str, Any]]]


ScalingRequest = BehaviourRequest


@dataclass
class ScalingState:
    """The components' scalable targets by (account, region) and resource id; the reads left
    that answer ``Updating`` by (account, region, name); how many reads an update lasts."""

    targets: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    updating: dict[tuple[str, str, str], int] = field(default_factory=dict)
    updating_reads: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        """Everything forgotten, updates instant again."""
        with self.lock:
            self.targets.clear()
            self.updating.clear()
            self.updating_reads = 0

    def still_updating(self, account: str, region: str, name: str) -> bool:
        """One of the reads after an update that answer ``Updating`` (counted down)."""
        key = (account, region, name)
        with self.lock:
            left = self.updating.pop(key, 0)
            if left > 1:
                self.updating[key] = left - 1
        return left > 0

    def updated(self, account: str, region: str, name: str) -> bool:
        """An update of ``name`` was accepted: True when it now reads ``Updating`` a while."""
        with self.lock:
            if self.updating_reads <= 0:
                return False
            self.updating[(account, region, name)] = self.updating_reads
        return True


SCALING = ScalingState()
Handler = Callable[[ScalingRequest], Answer]


def _validation(request: ScalingRequest, message: str) -> Answer:
    return error_answer(request.environ, "ValidationException", message)


def handlers(components: Components) -> dict[tuple[str, str], Handler]:
    """The behaviours, over the simulator's inference components ``components``."""

    def component(request: ScalingRequest, name: str) -> dict[str, Any] | None:
        return components.get((request.account, request.region), {}).get(name)

    def scales_to_zero(request: ScalingRequest, endpoint: str) -> bool | None:
        """Whether AWS lets ``endpoint``'s instances go to 0: an asynchronous endpoint
        (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html) or a
        host of inference components
        (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-zero-instances.html).
        None: no such endpoint."""
        described = request.sagemaker("DescribeEndpoint", {"EndpointName": endpoint})
        if described.status != 200:
            return None
        config_name = json.loads(described.body).get("EndpointConfigName")
        config = request.sagemaker("DescribeEndpointConfig", {"EndpointConfigName": config_name})
        if config.status == 200 and "AsyncInferenceConfig" in json.loads(config.body):
            return True
        hosted = components.get((request.account, request.region), {}).values()
        return any(c["EndpointName"] == endpoint for c in hosted)

    def update_weights_and_capacities(request: ScalingRequest) -> Answer:
        """``DesiredInstanceCount`` takes 0 (API_DesiredWeightAndCapacity) where the endpoint
        may run none; the endpoint goes ``Updating``, then ``InService``
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpointWeightsAndCapacities.html)."""
        params = request.params()
        name = str(params.get("EndpointName"))
        wanted = params.get("DesiredWeightsAndCapacities") or []
        zero = any(w.get("DesiredInstanceCount") == 0 for w in wanted)
        if zero and scales_to_zero(request, name) is False:
            return _validation(
                request,
                f"Endpoint {name} cannot run 0 instances: only an asynchronous endpoint or an "
                "endpoint hosting inference components scales to zero",
            )
        answer = request.forward()
        if answer.status == 200:
            SCALING.updated(request.account, request.region, name)
        return answer

    def describe_endpoint(request: ScalingRequest) -> Answer:
        name = str(request.params().get("EndpointName"))
        answer = request.forward()
        if answer.status != 200 or not SCALING.still_updating(
            request.account, request.region, name
        ):
            return answer
        described = {**json.loads(answer.body), "EndpointStatus": "Updating"}
        return answer.with_body(json.dumps(described).encode())

    def describe_component(request: ScalingRequest) -> Answer:
        name = str(request.params().get("InferenceComponentName"))
        found = component(request, name)
        if found is None:
            return _validation(request, f"Could not find inference component '{name}'.")
        if SCALING.still_updating(request.account, request.region, name):
            return json_answer({**found, "InferenceComponentStatus": "Updating"})
        runtime = found.setdefault("RuntimeConfig", {})
        if found["InferenceComponentStatus"] == "Updating":  # its update is over
            found["InferenceComponentStatus"] = "InService"
            runtime["CurrentCopyCount"] = runtime.get("DesiredCopyCount", 0)
        return json_answer(found)

    def update_copies(request: ScalingRequest) -> Answer:
        """``CopyCount`` from 0
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceComponentRuntimeConfig.html)."""
        params = request.params()
        name = str(params.get("InferenceComponentName"))
        found = component(request, name)
        if found is None:
            return _validation(request, f"Could not find inference component '{name}'.")
        copies = int((params.get("DesiredRuntimeConfig") or {}).get("CopyCount", -1))
        if copies < 0:
            return _validation(request, "DesiredRuntimeConfig.CopyCount must be 0 or more")
        runtime = found.setdefault("RuntimeConfig", {})
        runtime["DesiredCopyCount"] = copies
        if SCALING.updated(request.account, request.region, name):
            found["InferenceComponentStatus"] = "Updating"
        else:
            runtime["CurrentCopyCount"] = copies
        return json_answer({"InferenceComponentArn": found["InferenceComponentArn"]})

    def register_target(request: ScalingRequest) -> Answer:
        params = request.params()
        dimension, resource = params.get("ScalableDimension"), str(params.get("ResourceId", ""))
        if dimension == COPIES_DIMENSION:
            name = resource.removeprefix("inference-component/")
            if component(request, name) is None:
                return _validation(request, f"Could not find inference component '{name}'.")
            with SCALING.lock:
                kept = SCALING.targets.setdefault((request.account, request.region), {})
                before = kept.get(resource, {})
                kept[resource] = {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": resource,
                    "ScalableDimension": dimension,
                    "MinCapacity": params.get("MinCapacity", before.get("MinCapacity")),
                    "MaxCapacity": params.get("MaxCapacity", before.get("MaxCapacity")),
                    "SuspendedState": params.get(
                        "SuspendedState", before.get("SuspendedState", {})
                    ),
                    "RoleARN": before.get("RoleARN", ""),
                    "CreationTime": before.get("CreationTime", 0),
                }
            arn = (
                f"arn:aws:application-autoscaling:{request.region}:{request.account}:"
                f"scalable-target/{name}"
            )
            return json_answer({"ScalableTargetARN": arn})
        if dimension == VARIANT_DIMENSION and params.get("MinCapacity") == 0:
            # A variant's minimum is at least 1
            # (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-policy.html)
            # but on the endpoints that scale to zero.
            parts = resource.split("/")
            endpoint = parts[1] if len(parts) >= 4 else ""
            if scales_to_zero(request, endpoint) is False:
                return _validation(
                    request, f"MinCapacity 0 is not allowed for {resource}: its minimum is 1"
                )
        return request.forward()

    def describe_targets(request: ScalingRequest) -> Answer:
        params = request.params()
        if params.get("ScalableDimension") != COPIES_DIMENSION:
            return request.forward()
        ids = params.get("ResourceIds")
        with SCALING.lock:
            found = dict(SCALING.targets.get((request.account, request.region), {}))
        chosen = [t for rid, t in sorted(found.items()) if ids is None or rid in ids]
        return json_answer({"ScalableTargets": chosen})

    return {
        ("sagemaker", "UpdateEndpointWeightsAndCapacities"): update_weights_and_capacities,
        ("sagemaker", "DescribeEndpoint"): describe_endpoint,
        ("sagemaker", "DescribeInferenceComponent"): describe_component,
        ("sagemaker", "UpdateInferenceComponentRuntimeConfig"): update_copies,
        ("application-autoscaling", "RegisterScalableTarget"): register_target,
        ("application-autoscaling", "DescribeScalableTargets"): describe_targets,
    }
