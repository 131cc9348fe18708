"""The simulator's faster serialization gives moto's own answers, byte for byte."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from benchmarks.fast_moto.simulator import FastSimulator
from sagesaver.demo.simulator import Fleet, VariantSpec

EAST = "us-east-1"
TOKEN = re.compile(rb"endpoints-after-\d+-[0-9a-f]{32}")  # the simulator's Search snapshots


def _seed(fleet: Fleet, now: datetime) -> list[str]:
    names = []
    for i in range(23):
        name = f"ep-{i:02d}"
        variants = [VariantSpec("AllTraffic")]
        if i % 3 == 0:
            variants = [VariantSpec("model-a"), VariantSpec("model-b", "ml.g4dn.xlarge", 2)]
        if i % 5 == 0:
            variants = [VariantSpec("serverless", serverless_memory_mb=2048)]
        fleet.endpoint(
            EAST,
            name,
            variants,
            tags={"team": f"t{i % 4}", "owner": "ana"} if i % 2 else None,
            changed=now - timedelta(days=3, minutes=i),
            asynchronous=i == 7,
        )
        for variant in variants:
            fleet.invocations(EAST, name, variant.name, [(now - timedelta(hours=i + 1), float(i))])
        names.append(name)
    return names


def _answers(sim: FastSimulator, names: list[str], now: datetime) -> list[tuple[str, bytes]]:
    """The raw bodies of the scan's kinds of requests, in order."""
    bodies: list[tuple[str, bytes]] = []

    def keep(http_response: Any, model: Any, **_: Any) -> None:
        bodies.append((model.name, TOKEN.sub(b"TOKEN", http_response.content)))

    sagemaker, cloudwatch = sim.client("sagemaker", EAST), sim.client("cloudwatch", EAST)
    calls: list[Callable[[], Any]] = []
    for client in (sagemaker, cloudwatch):
        client.meta.events.register("after-call.*.*", keep)
    try:
        expression = {
            "Filters": [{"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"}]
        }
        for order in ("Ascending", "Descending"):
            pages = sagemaker.get_paginator("search").paginate(
                Resource="Endpoint",
                SearchExpression=expression,
                SortBy="CreationTime",
                SortOrder=order,
                PaginationConfig={"PageSize": 10},
            )
            list(pages)
        for name in names:
            sagemaker.describe_endpoint_config(EndpointConfigName=f"{name}-config")
            sagemaker.describe_endpoint(EndpointName=name)
        calls += [
            lambda: sagemaker.list_endpoint_configs(CreationTimeAfter=now - timedelta(days=9)),
            lambda: sagemaker.list_endpoints(MaxResults=10),
            lambda: sagemaker.list_notebook_instances(),
            lambda: list(
                cloudwatch.get_paginator("list_metrics").paginate(
                    Namespace="AWS/SageMaker", MetricName="Invocations"
                )
            ),
        ]
        for call in calls:
            call()
        queries = [
            {
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocations",
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": name},
                            {"Name": "VariantName", "Value": variant},
                        ],
                    },
                    "Period": 86400,
                    "Stat": "Sum",
                },
            }
            for i, (name, variant) in enumerate(
                (n, v) for n in names for v in ("AllTraffic", "model-a", "model-b", "serverless")
            )
        ]
        cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=now - timedelta(days=2), EndTime=now
        )
    finally:
        for client in (sagemaker, cloudwatch):
            client.meta.events.unregister("after-call.*.*", keep)
    return bodies


@pytest.mark.parametrize("indexed", [False, True])
def test_fast_serialization_answers_as_moto_does(
    sim: FastSimulator, fleet: Fleet, now: datetime, indexed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.serialize import AttributePicker

    names = _seed(fleet, now)
    sim.speedups.indexed_metrics = indexed
    lookups = []
    providers = AttributePicker.get_possible_keys

    def counted(self: Any, context: Any) -> Any:
        lookups.append(1)
        return providers(self, context)

    monkeypatch.setattr(AttributePicker, "get_possible_keys", counted)
    sim.speedups.fast_serialization = False
    moto_own = _answers(sim, names, now)
    slow = len(lookups)
    lookups.clear()
    sim.speedups.fast_serialization = True
    faster = _answers(sim, names, now)
    assert [op for op, _ in faster] == [op for op, _ in moto_own]
    assert len(moto_own) > 2 * len(names)
    for (op, ours), (_, theirs) in zip(faster, moto_own, strict=True):
        assert ours == theirs, op
    # the short path was taken: moto's providers were asked for a small share of the members
    assert len(lookups) < slow / 5


def _members(shape: Any, seen: set[int]) -> list[tuple[Any, str, Any]]:
    """(structure, member key, member shape) of every structure reachable from ``shape``."""
    if id(shape) in seen:
        return []
    seen.add(id(shape))
    found = []
    if shape.type_name == "structure":
        for key, member in shape.members.items():
            member.parent = shape  # as moto's serializer sets it
            found.append((shape, key, member))
            found += _members(member, seen)
    elif shape.type_name == "list":
        found += _members(shape.member, seen)
    return found


@pytest.mark.parametrize(
    ("service", "operations"),
    [
        ("sagemaker", ["Search", "DescribeEndpointConfig", "ListEndpointConfigs"]),
        ("cloudwatch", ["GetMetricData", "ListMetrics"]),
    ],
)
def test_each_member_of_a_dict_is_picked_as_moto_picks_it(
    sim: FastSimulator, service: str, operations: list[str]
) -> None:
    """Every name moto's providers could give a member (the key, its snake_case form, the
    shape's name, in every combination) present in a dict with its own value: the faster
    lookup finds the value moto finds, and applies moto's response transformers alike."""
    from botocore import xform_name
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    model = get_service_model(service)
    protocol = "json" if "json" in model.metadata.get("protocols", []) else model.protocol
    serializer_class = get_serializer_class(service, protocol)
    checked = 0
    for operation in operations:
        operation_model = model.operation_model(operation)
        members = _members(operation_model.output_shape, set())
        assert members
        for structure, key, member in members:
            names = list(
                dict.fromkeys([key, xform_name(key), member.name, xform_name(member.name)])
            )
            for mask in range(1 << len(names)):
                value = {n: f"value of {n}" for i, n in enumerate(names) if mask >> i & 1}
                transformers = {f"{structure.name}.{key}": lambda v: ("transformed", v)}
                for picker_transformers in ({}, transformers):
                    answers = []
                    for fast in (False, True):
                        sim.speedups.fast_serialization = fast
                        serializer = serializer_class(
                            operation_model=operation_model,
                            value_picker=XFormedAttributePicker(
                                response_transformers=picker_transformers
                            ),
                        )
                        serializer.path.append(structure.name)
                        answers.append(serializer.get_value(value, key, member))
                    assert answers[0] == answers[1], (operation, key, sorted(value))
                    checked += 1
    assert checked > 100
