"""The simulator's indexed CloudWatch answers (benchmarks) equal moto's own answers."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from benchmarks.fast_moto.simulator import FastSimulator

NAMESPACE = "AWS/SageMaker"


def _seed(sim: FastSimulator, now: datetime) -> None:
    """Several metrics, names, namespaces, units and dimension sets; one datapoint per metric
    for ``Invocations`` (where moto's ListMetrics is right), many for ``ModelLatency``."""
    draw = random.Random(7)
    data: list[tuple[str, dict[str, Any]]] = []
    for i in range(60):
        endpoint = f"ep-{i:02d}"
        for variant in ("AllTraffic", "b") if i % 3 == 0 else ("AllTraffic",):
            dims = [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": variant},
            ]
            if i % 5 != 4:
                data.append(
                    (
                        NAMESPACE,
                        {
                            "MetricName": "Invocations",
                            "Dimensions": list(reversed(dims)) if i % 2 else dims,
                            "Timestamp": now - timedelta(minutes=draw.randint(1, 3000)),
                            "Value": float(draw.choice([0, 0, 1, 5, 40])),
                            "Unit": "None",
                        },
                    )
                )
            for _ in range(draw.randint(0, 6)):
                data.append(
                    (
                        NAMESPACE,
                        {
                            "MetricName": "ModelLatency",
                            "Dimensions": dims,
                            "Timestamp": now - timedelta(minutes=draw.randint(1, 3000)),
                            "Value": float(draw.randint(1, 900)),
                            "Unit": draw.choice(["Microseconds", "None"]),
                        },
                    )
                )
        # The same dimensions in another namespace, and a metric by endpoint only.
        data.append(
            (
                "Other/Space",
                {
                    "MetricName": "Invocations",
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                    "Timestamp": now - timedelta(minutes=draw.randint(1, 600)),
                    "Value": 3.0,
                },
            )
        )
    cloudwatch = sim.client("cloudwatch", "us-east-1")
    for namespace in {n for n, _ in data}:
        points = [d for n, d in data if n == namespace]
        for offset in range(0, len(points), 500):
            cloudwatch.put_metric_data(
                Namespace=namespace, MetricData=points[offset : offset + 500]
            )


def _query(qid: str, name: str, dims: list[tuple[str, str]], period: int, **extra: Any) -> Any:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
            },
            "Period": period,
            "Stat": extra.pop("stat", "Sum"),
            **extra,
        },
    }


def _answers(sim: FastSimulator, now: datetime) -> dict[str, Any]:
    cloudwatch = sim.client("cloudwatch", "us-east-1")
    answers: dict[str, Any] = {}
    queries = [
        _query(f"q{i}", metric, dims, period, **extra)
        for i, (metric, dims, period, extra) in enumerate(
            [
                ("Invocations", [("EndpointName", f"ep-{n:02d}"), ("VariantName", v)], p, {})
                for n in range(0, 60, 1)
                for v in ("AllTraffic", "b")
                for p in (86400, 3600)
            ]
            + [
                (
                    "ModelLatency",
                    [("VariantName", "AllTraffic"), ("EndpointName", "ep-03")],
                    300,
                    {"stat": "Maximum"},
                ),
                (
                    "ModelLatency",
                    [("EndpointName", "ep-06"), ("VariantName", "b")],
                    600,
                    {"Unit": "Microseconds"},
                ),
                ("Invocations", [], 86400, {}),
                ("Invocations", [("EndpointName", "ep-07")], 3600, {}),
            ]
        )
    ]
    for scan_by in ("TimestampDescending", "TimestampAscending"):
        for start_hours in (24, 48, 24 * 20 + 0.3):  # and a window of periods mostly empty
            for offset in range(0, len(queries), 100):
                answer = cloudwatch.get_metric_data(
                    MetricDataQueries=queries[offset : offset + 100],
                    StartTime=now - timedelta(hours=start_hours),
                    EndTime=now,
                    ScanBy=scan_by,
                )
                answers[f"gmd {scan_by} {start_hours} {offset}"] = answer["MetricDataResults"]
    for dims in (
        [("EndpointName", "ep-03"), ("VariantName", "b")],
        [("EndpointName", "ep-03")],
        [("VariantName", "AllTraffic")],
        [],
    ):
        for metric in ("Invocations", "ModelLatency"):
            answer = cloudwatch.get_metric_statistics(
                Namespace=NAMESPACE,
                MetricName=metric,
                Dimensions=[{"Name": k, "Value": v} for k, v in dims],
                StartTime=now - timedelta(hours=30),
                EndTime=now,
                Period=3600,
                Statistics=["Sum", "SampleCount", "Maximum"],
            )
            answers[f"gms {metric} {dims}"] = sorted(
                answer["Datapoints"], key=lambda p: p["Timestamp"]
            )
    pages = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=NAMESPACE, MetricName="Invocations"
    )
    answers["list_metrics"] = [m for page in pages for m in page["Metrics"]]
    return answers


def test_indexed_answers_equal_moto_answers(sim: FastSimulator, now: datetime) -> None:
    _seed(sim, now)
    moto = _answers(sim, now)
    sim.speedups.indexed_metrics = True
    indexed = _answers(sim, now)
    assert indexed.keys() == moto.keys()
    for key, expected in moto.items():
        assert indexed[key] == expected, key
    # The comparison is not empty: sums, several periods and listed metrics came back.
    assert any(r["Values"] for r in moto["gmd TimestampDescending 48 0"])
    assert len(moto["list_metrics"]) > 50
    assert any(moto[k] for k in moto if k.startswith("gms"))


def test_the_index_follows_new_datapoints(sim: FastSimulator, now: datetime) -> None:
    sim.speedups.indexed_metrics = True
    cloudwatch = sim.client("cloudwatch", "us-east-1")
    dims = [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "v"}]
    query = [_query("q", "Invocations", [("EndpointName", "e"), ("VariantName", "v")], 86400)]

    def total() -> float:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=query, StartTime=now - timedelta(hours=24), EndTime=now
        )
        return float(sum(answer["MetricDataResults"][0]["Values"]))

    assert total() == 0
    point = {"MetricName": "Invocations", "Dimensions": dims, "Value": 4.0}
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE, MetricData=[{**point, "Timestamp": now - timedelta(hours=1)}]
    )
    assert total() == 4
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE, MetricData=[{**point, "Timestamp": now - timedelta(hours=2)}]
    )
    assert total() == 8
    sim.reset()  # a new backend: the index starts again
    sim.speedups.indexed_metrics = True
    assert total() == 0
