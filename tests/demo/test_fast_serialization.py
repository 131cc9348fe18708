"""The simulator's faster serialization gives moto's own answers, byte for byte."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec

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


def _answers(sim: Simulator, names: list[str], now: datetime) -> list[tuple[str, bytes]]:
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
    sim: Simulator, fleet: Fleet, now: datetime, indexed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.serialize import AttributePicker

    names = _seed(fleet, now)
    sim.behaviours.indexed_metrics = indexed
    lookups = []
    providers = AttributePicker.get_possible_keys

    def counted(self: Any, context: Any) -> Any:
        lookups.append(1)
        return providers(self, context)

    monkeypatch.setattr(AttributePicker, "get_possible_keys", counted)
    sim.behaviours.fast_serialization = False
    moto_own = _answers(sim, names, now)
    slow = len(lookups)
    lookups.clear()
    sim.behaviours.fast_serialization = True
    faster = _answers(sim, names, now)
    assert [op for op, _ in faster] == [op for op, _ in moto_own]
    assert len(moto_own) > 2 * len(names)
    for (op, ours), (_, theirs) in zip(faster, moto_own, strict=True):
        assert ours == theirs, op
    # the short path was taken: moto's providers were asked for a small share of the members
    assert len(lookups) < slow / 5
