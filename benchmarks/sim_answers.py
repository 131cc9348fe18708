"""What the simulator spends answering the scan's big requests (issue 19 follow-up).

``python -m benchmarks.sim_answers [--endpoints 600] [--repeat 20]`` seeds a small fleet in
the embedded simulator (indexed metrics on, as in ``benchmarks.scale``), then sends, ``repeat``
times each, a 500-query ``GetMetricData`` (daily sums over 3 days, ``ScanBy``), a 100-record
``Search`` page and a ``ListMetrics`` page (up to 500 metrics), and prints the simulator's CPU
time per request (the serving thread's, from ``Middleware.served``: request parsing, moto,
serialization) with ``fast_serialization`` off and on, alternating. It also times the
serialization alone (moto's ``ResponseSerializer.serialize`` on the same results, in-process).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from benchmarks.fast_moto.simulator import FastSimulator
from sagesaver.demo.simulator import Fleet, VariantSpec

EAST = "us-east-1"


def _seed(sim: FastSimulator, fleet: Fleet, count: int, now: datetime) -> list[tuple[str, str]]:
    metrics: list[tuple[str, str]] = []
    points = []
    for i in range(count):
        name = f"ep-{i:05d}"
        variants = [VariantSpec("AllTraffic")]
        if i % 4 == 0:
            variants = [VariantSpec("model-a"), VariantSpec("model-b")]
        fleet.endpoint(EAST, name, variants, tags={"team": f"t{i % 7}"}, changed=now)
        for variant in variants:
            metrics.append((name, variant.name))
            if i % 3:
                moment = now - timedelta(hours=1 + i % 40, microseconds=(i % 2) * 1500)
                points.append((name, variant.name, moment, float(i % 9)))
    cloudwatch = sim.client("cloudwatch", EAST)
    data = [
        {
            "MetricName": "Invocations",
            "Dimensions": [
                {"Name": "EndpointName", "Value": e},
                {"Name": "VariantName", "Value": v},
            ],
            "Timestamp": t,
            "Value": x,
            "Unit": "None",
        }
        for e, v, t, x in points
    ]
    for offset in range(0, len(data), 1000):
        cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker", MetricData=data[offset : offset + 1000]
        )
    return metrics


def _requests(
    sim: FastSimulator, metrics: list[tuple[str, str]], now: datetime
) -> dict[str, Callable[[], Any]]:
    sagemaker, cloudwatch = sim.client("sagemaker", EAST), sim.client("cloudwatch", EAST)
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": "Invocations",
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": e},
                        {"Name": "VariantName", "Value": v},
                    ],
                },
                "Period": 86400,
                "Stat": "Sum",
            },
        }
        for i, (e, v) in enumerate(metrics[:500])
    ]
    return {
        "GetMetricData": lambda: cloudwatch.get_metric_data(
            MetricDataQueries=queries,
            StartTime=now - timedelta(days=3),
            EndTime=now,
            ScanBy="TimestampDescending",
        ),
        "Search": lambda: sagemaker.search(
            Resource="Endpoint",
            SearchExpression={
                "Filters": [{"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"}]
            },
            MaxResults=100,
        ),
        "ListMetrics": lambda: cloudwatch.list_metrics(
            Namespace="AWS/SageMaker", MetricName="Invocations"
        ),
    }


def _served_cpu_ms(sim: FastSimulator, operation: str, call: Callable[[], Any]) -> float:
    sim.middleware.clear()
    call()
    sim.middleware.settle()
    return sim.middleware.served[operation].service_cpu_s * 1000


def _serialize_only_ms(sim: FastSimulator, operation: str, call: Callable[[], Any]) -> float:
    """CPU time of moto's serializer alone on the answer of one request (captured)."""
    from moto.core.serialize import ResponseSerializer

    captured: list[tuple[Any, Any]] = []
    serialize = ResponseSerializer.serialize

    def keep(self: Any, result: Any) -> Any:
        if self.operation_model.name == operation:
            captured.append((self, result))
        return serialize(self, result)

    ResponseSerializer.serialize = keep  # type: ignore[method-assign]
    try:
        call()
    finally:
        ResponseSerializer.serialize = serialize  # type: ignore[method-assign]
    serializer, result = captured[-1]
    start = time.thread_time()
    serializer.serialize(result)
    return (time.thread_time() - start) * 1000


def main() -> None:
    """Seed, measure, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    sim = FastSimulator()
    try:
        sim.speedups.indexed_metrics = True
        now = datetime.now(timezone.utc).replace(microsecond=0)
        metrics = _seed(sim, Fleet(sim), args.endpoints, now)
        calls = _requests(sim, metrics, now)
        served: dict[tuple[str, bool], list[float]] = {}
        alone: dict[tuple[str, bool], list[float]] = {}
        for operation, call in calls.items():
            for fast in (False, True):  # warm both paths
                sim.speedups.fast_serialization = fast
                call()
            for _ in range(args.repeat):
                for fast in (False, True):
                    sim.speedups.fast_serialization = fast
                    served.setdefault((operation, fast), []).append(
                        _served_cpu_ms(sim, operation, call)
                    )
                    alone.setdefault((operation, fast), []).append(
                        _serialize_only_ms(sim, operation, call)
                    )
        print(f"{args.endpoints} endpoints, {len(metrics)} variant metrics, x{args.repeat}")
        print("| operation | served CPU ms (moto / fast) | serialize alone ms (moto / fast) |")
        print("|---|--:|--:|")
        for operation in calls:
            cells = []
            for figures in (served, alone):
                slow = statistics.median(figures[(operation, False)])
                fast = statistics.median(figures[(operation, True)])
                cells.append(f"{slow:.1f} / {fast:.1f}")
            print(f"| {operation} | {cells[0]} | {cells[1]} |")
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
