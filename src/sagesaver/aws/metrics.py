"""Endpoint activity from CloudWatch, in as few calls as CloudWatch allows.

``ListMetrics`` finds every (EndpointName, VariantName) pair of ``AWS/SageMaker``
``Invocations`` (real CloudWatch needs the exact dimension set: a query by ``EndpointName``
alone finds nothing). ``GetMetricData`` then reads the sums, up to 500 queries per call.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sagesaver.aws.session import Aws

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.literals import ScanByType
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


@dataclass
class MetricSeries:
    """What ``GetMetricData`` returned for one query, over all pages."""

    timestamps: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    answered: bool = False
    status: str | None = None  # the StatusCode of the query's last answer
    messages: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str | None:
        """Why this series cannot be trusted, or None when it came back whole.

        A query is read only when its last answer says ``Complete`` and carries no message:
        ``PartialData`` without a next page, ``InternalError``, ``Forbidden``, a query left out
        of the answer, or a message from CloudWatch all mean "unknown", never "no traffic".
        """
        if not self.answered:
            return "left out of the GetMetricData answer"
        if self.status != "Complete":
            return f"GetMetricData answered StatusCode {self.status}"
        if self.messages:
            return "GetMetricData answered: " + "; ".join(self.messages)
        return None


def _message_text(messages: Iterable[Any]) -> list[str]:
    return [f"{m.get('Code', '?')}: {m.get('Value', '')}".strip() for m in messages]


ValuesSink = Callable[[str, Sequence[datetime], Sequence[float]], None]


def read_metric_data(
    aws: Aws,
    region: str,
    queries: Sequence[MetricDataQueryTypeDef],
    start: datetime,
    end: datetime,
    scan_by: ScanByType = "TimestampDescending",
    sink: ValuesSink | None = None,
) -> dict[str, MetricSeries]:
    """Every query's series by query id, through all pages (``PartialData`` goes on with the
    next token). Raises on a failed call. Check each series' :attr:`MetricSeries.problem`.

    With a ``sink``, each page's values go to ``sink(query_id, timestamps, values)`` as the
    page arrives and are not kept (a page holds up to 100,800 datapoints; a long history has
    many): the series then carry only their status."""
    series = {q["Id"]: MetricSeries() for q in queries}
    page_messages: list[str] = []
    paginator = aws.cloudwatch(region).get_paginator("get_metric_data")
    for page in paginator.paginate(
        MetricDataQueries=list(queries), StartTime=start, EndTime=end, ScanBy=scan_by
    ):
        page_messages += _message_text(page.get("Messages", []))
        for result in page["MetricDataResults"]:
            query_id = result.get("Id", "")
            found = series.get(query_id)
            if found is None:
                continue
            if sink is None:
                found.timestamps += result.get("Timestamps", [])
                found.values += [float(v) for v in result.get("Values", [])]
            else:
                sink(query_id, result.get("Timestamps", []), result.get("Values", []))
            found.answered = True
            found.status = result.get("StatusCode")
            found.messages += _message_text(result.get("Messages", []))
        del page  # the next page replaces it: one page in memory at a time
    if page_messages:  # a message about the whole answer concerns every query in it
        for found in series.values():
            found.messages += page_messages
    return series


class UnreadableMetrics(Exception):
    """Some queries that decide a resource did not come back complete."""

    def __init__(self, problems: Mapping[VariantKey, str]) -> None:
        self.problems = dict(problems)
        first = next(iter(self.problems.values()), "")
        super().__init__(f"Invocations could not be read completely: {first}")


@dataclass
class InvocationSums:
    """Sum of ``Invocations`` per (endpoint, variant) that was read completely, and why the
    others could not be (an unreadable variant has no sum: it is unknown, never zero)."""

    sums: dict[VariantKey, float] = field(default_factory=dict)
    problems: dict[VariantKey, str] = field(default_factory=dict)

    def total(self, keys: Iterable[VariantKey]) -> float:
        """Sum over ``keys``; raises :class:`UnreadableMetrics` if any of them is unknown."""
        keys = list(keys)
        unknown = {k: self.problems[k] for k in keys if k in self.problems}
        if unknown:
            raise UnreadableMetrics(unknown)
        return sum(self.sums.get(k, 0.0) for k in keys)


def invocation_sums(
    aws: Aws, region: str, keys: Iterable[VariantKey], start: datetime, end: datetime
) -> InvocationSums:
    """Sum of ``Invocations`` over [start, end) for each (endpoint, variant), batched.

    A variant with no datapoint at all, answered ``Complete``, sums to 0. A variant whose
    answer is not complete is in ``problems``. Raises on the first failed call.
    """
    ordered = sorted(set(keys))
    period = period_for(start, end)
    result = InvocationSums()
    for offset in range(0, len(ordered), MAX_QUERIES_PER_CALL):
        batch = ordered[offset : offset + MAX_QUERIES_PER_CALL]
        by_id = {f"q{offset + i}": key for i, key in enumerate(batch)}
        queries = [invocations_query(query_id, *key, period) for query_id, key in by_id.items()]
        for query_id, series in read_metric_data(aws, region, queries, start, end).items():
            key = by_id[query_id]
            problem = series.problem
            if problem is None:
                result.sums[key] = float(sum(series.values))
            else:
                result.problems[key] = problem
    return result


def metric_query(
    query_id: str, namespace: str, metric: str, stat: str, dims: dict[str, str], period: int
) -> MetricDataQueryTypeDef:
    """One ``GetMetricData`` query: ``stat`` of ``metric`` with exactly ``dims``."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def invocations_query(
    query_id: str, endpoint: str, variant: str, period: int
) -> MetricDataQueryTypeDef:
    """The query for the ``Invocations`` sum of one variant, per ``period`` seconds."""
    dims = {ENDPOINT_DIM: endpoint, VARIANT_DIM: variant}
    return metric_query(query_id, NAMESPACE, METRIC, "Sum", dims, period)


DAY_SECONDS = 86400


def last_traffic_days(
    aws: Aws,
    region: str,
    variants: Mapping[str, Sequence[str]],
    start: datetime,
    end: datetime,
    workers: int = 8,
) -> dict[str, datetime | None]:
    """For each endpoint, the start of the last day from ``start`` to ``end`` whose daily
    ``Invocations`` sum on any of its ``variants`` is above 0 (None: no traffic then); an
    endpoint any of whose series did not come back whole is left out. One ``GetMetricData``
    call per 500 variants, every page, up to ``workers`` calls at once (an endpoint's variants
    may land in two calls: it is judged on both). Raises on a failed call."""
    queries: list[MetricDataQueryTypeDef] = []
    owner: dict[str, str] = {}
    for endpoint, names in variants.items():
        for name in names:
            query_id = f"d{len(queries)}"
            queries.append(invocations_query(query_id, endpoint, name, DAY_SECONDS))
            owner[query_id] = endpoint
    batches = [
        queries[first : first + MAX_QUERIES_PER_CALL]
        for first in range(0, len(queries), MAX_QUERIES_PER_CALL)
    ]
    found: dict[str, datetime | None] = dict.fromkeys(variants)
    incomplete: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(batches)))) as pool:
        reads = [pool.submit(read_metric_data, aws, region, batch, start, end) for batch in batches]
        for read in reads:
            for query_id, series in read.result().items():
                endpoint = owner[query_id]
                if series.problem is not None:
                    incomplete.add(endpoint)
                    continue
                for moment, value in zip(series.timestamps, series.values, strict=True):
                    latest = found[endpoint]
                    if value > 0 and (latest is None or moment > latest):
                        found[endpoint] = moment
    return {e: day for e, day in found.items() if e not in incomplete}
