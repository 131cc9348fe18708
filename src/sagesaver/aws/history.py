"""The recorded past of endpoints, for the backtest: hourly ``Invocations`` and instances.

``hourly_history`` reads, per endpoint, the hourly sums of ``Invocations`` over all its variants
with ``GetMetricData`` (``Period=3600``, ``Stat=Sum``, up to 500 queries per call, every page).
CloudWatch labels each hourly datapoint with the start of its hour, and the window starts on a
whole hour, so a datapoint's timestamp is the start of hour ``(timestamp - start) / 1 h``.

``signal_history`` adds what ``Invocations`` does not show: the traffic of asynchronous endpoints
(their own metrics) and of inference components (on their endpoint's hours).

``read_region`` gathers everything the backtest needs of one region (endpoints, tags,
instances, prices and history), recording failures as :class:`ScanError` instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sagesaver.aws import endpoint_signals, inference_components, inventory, metrics, tags
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.model import Resource, ScanError, Variant
from sagesaver.core.pricing import Pricer
from sagesaver.core.rules.components import may_host_components
from sagesaver.core.rules.endpoints import endpoint_hourly_cost

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import MetricDataQueryTypeDef

HOUR = timedelta(hours=1)
PERIOD_S = 3600
DESCRIBE_WORKERS = 8


def align_hour(moment: datetime) -> datetime:
    """``moment`` in UTC, rounded down to the whole hour."""
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def history_window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The backtest window ``[start, end)``: ``days`` whole days ending at ``now``'s hour."""
    end = align_hour(now)
    return end - timedelta(days=days), end


def _hour_index(timestamp: datetime, start: datetime) -> int:
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=timezone.utc)
    return int((timestamp - start).total_seconds() // PERIOD_S)


def hourly_history(
    aws: Aws, region: str, endpoints: Sequence[Resource], days: int, now: datetime
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Per endpoint name, ``days * 24`` hourly sums of ``Invocations`` over all its variants,
    oldest first, over :func:`history_window`. A missing hour is 0. Raises on a failed call.

    Also returns, per endpoint name, why its history could not be read completely (a query
    that did not come back ``Complete``); such an endpoint's history is unknown, never zero.

    Variants come from ``ListMetrics`` and, since it only lists metrics with data in the last
    two weeks, also from the endpoints' own ``variants`` when they were described.
    """
    start, end = history_window(now, days)
    hours = days * 24
    history = {e.name: [0.0] * hours for e in endpoints}
    problems: dict[str, str] = {}
    if not endpoints or hours <= 0:
        return history, problems
    dims = metrics.variant_dimensions(aws, region)
    keys = sorted(
        {
            (e.name, variant)
            for e in endpoints
            for variant in dims.get(e.name, set()) | {v.name for v in e.variants}
        }
    )
    endpoint_of: dict[str, str] = {}  # query id -> endpoint name, over every batch

    def add(query_id: str, moments: Sequence[datetime], values: Sequence[float]) -> None:
        hourly = history[endpoint_of[query_id]]
        for moment, value in zip(moments, values, strict=False):
            index = _hour_index(moment, start)
            if 0 <= index < hours:
                hourly[index] += float(value)

    for offset in range(0, len(keys), metrics.MAX_QUERIES_PER_CALL):
        batch = keys[offset : offset + metrics.MAX_QUERIES_PER_CALL]
        by_id = {f"q{offset + i}": key for i, key in enumerate(batch)}
        endpoint_of.update((query_id, key[0]) for query_id, key in by_id.items())
        queries = [
            metrics.invocations_query(query_id, *key, PERIOD_S) for query_id, key in by_id.items()
        ]
        # Page by page: each page's values are added to the hourly sums as it arrives.
        answers = metrics.read_metric_data(
            aws, region, queries, start, end, "TimestampAscending", sink=add
        )
        for query_id, series in answers.items():
            if series.problem is not None:
                problems.setdefault(by_id[query_id][0], series.problem)
    for name in problems:
        history.pop(name, None)
    return history, problems


def describe_endpoints(
    aws: Aws,
    region: str,
    endpoints: Sequence[Resource],
    errors: list[ScanError],
    asynchronous: set[str] | None = None,
) -> dict[str, tuple[Variant, ...]]:
    """The variants (instance type and current count) of each endpoint, in parallel; the
    names of the asynchronous ones go to ``asynchronous`` when given.

    A failed describe is added to ``errors`` and its endpoint is absent from the result.
    """
    describer = inventory.EndpointDescriber(aws, region)

    def describe(
        endpoint: Resource,
    ) -> tuple[str, tuple[tuple[Variant, ...], bool] | None, ScanError | None]:
        try:
            return endpoint.name, describer.describe(endpoint.name), None
        except AWS_ERRORS as exc:
            return endpoint.name, None, scan_error(exc, region, "DescribeEndpoint", endpoint.name)

    details: dict[str, tuple[Variant, ...]] = {}
    with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS) as pool:
        for name, described, error in pool.map(describe, endpoints):
            if error is not None:
                errors.append(error)
            elif described is not None:
                details[name] = described[0]
                if described[1] and asynchronous is not None:
                    asynchronous.add(name)
    return details


def signal_history(
    aws: Aws,
    region: str,
    history: dict[str, list[float]],
    asynchronous: Sequence[str],
    components: Sequence[Resource],
    days: int,
    now: datetime,
) -> dict[str, str]:
    """Add to ``history`` (in place) the hourly traffic ``Invocations`` does not show: the
    asynchronous metrics of asynchronous endpoints (aws/endpoint_signals.py) and the
    ``Invocations`` of each inference component, on its endpoint's hours. Returns, per
    endpoint, why a part of it could not be read. Raises on a failed call."""
    start, end = history_window(now, days)
    hours = days * 24
    queries: list[tuple[str, MetricDataQueryTypeDef]] = []
    for i, name in enumerate(sorted(n for n in asynchronous if n in history)):
        for m, (metric, stat) in enumerate(endpoint_signals.ASYNC_METRICS):
            dims = {metrics.ENDPOINT_DIM: name}
            queries.append(
                (
                    name,
                    metrics.metric_query(
                        f"h{i}_{m}", metrics.NAMESPACE, metric, stat, dims, PERIOD_S
                    ),
                )
            )
    for i, component in enumerate(c for c in components if (c.parent or "") in history):
        dims = {"InferenceComponentName": component.name}
        query = metrics.metric_query(
            f"ic{i}", metrics.NAMESPACE, metrics.METRIC, "Sum", dims, PERIOD_S
        )
        queries.append((component.parent or "", query))
    problems: dict[str, str] = {}
    for offset in range(0, len(queries), metrics.MAX_QUERIES_PER_CALL):
        batch = queries[offset : offset + metrics.MAX_QUERIES_PER_CALL]
        owners = {query["Id"]: owner for owner, query in batch}
        answers = metrics.read_metric_data(
            aws, region, [q for _, q in batch], start, end, "TimestampAscending"
        )
        for query_id, series in answers.items():
            owner = owners[query_id]
            if series.problem is not None:
                problems.setdefault(owner, series.problem)
                continue
            for moment, value in zip(series.timestamps, series.values, strict=False):
                index = _hour_index(moment, start)
                if 0 <= index < hours and value > 0:
                    history[owner][index] += value
    return problems


@dataclass
class RegionHistory:
    """What the backtest needs of one region. ``history`` lacks every endpoint when the
    metrics could not be read; ``instances`` lacks the endpoints that could not be described."""

    region: str
    start: datetime
    hours: int
    endpoints: list[Resource] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)
    hourly_cost: dict[str, float | None] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    errors: list[ScanError] = field(default_factory=list)
    tags_known: bool = True

    @property
    def created(self) -> dict[str, datetime]:
        """Creation time of each endpoint."""
        return {e.name: e.created for e in self.endpoints}

    @property
    def tags(self) -> dict[str, dict[str, str]]:
        """Tags of each endpoint."""
        return {e.name: e.tags for e in self.endpoints}


def _leave_out_possible_hosts(found: RegionHistory, failure: ScanError) -> None:
    """After a failed ``ListInferenceComponents``: the error once, then each endpoint that
    could host components (a variant naming no model, or variants unknown) left out, named in
    an error of its own; the endpoints that name a model in every variant stay."""
    found.errors.append(failure)
    hosts = sorted(e.name for e in found.endpoints if may_host_components(e))
    for name in hosts:
        found.errors.append(
            replace(
                failure,
                resource=name,
                message="it could host inference components, which could not be listed: left out",
            )
        )
        found.history.pop(name, None)
    found.endpoints = [e for e in found.endpoints if e.name not in hosts]


def read_region(aws: Aws, region: str, days: int, now: datetime, pricer: Pricer) -> RegionHistory:
    """Every InService endpoint of ``region`` with its tags, instances, hourly cost and
    history. Never raises for AWS errors: they are in ``errors``, and an endpoint whose tags
    are unknown (the protect tag could hide there) is left out, as is its whole region when
    the metrics could not be read."""
    start, _ = history_window(now, days)
    found = RegionHistory(region=region, start=start, hours=days * 24)
    listing = tags.list_with_tags(
        aws, region, inventory.list_in_service_endpoints, tags.ENDPOINT_TYPE, found.errors
    )
    found.tags_known = listing.tags_read
    endpoints = listing.tagged
    if not endpoints or not listing.tags_read:
        return found
    asynchronous: set[str] = set()
    details = describe_endpoints(aws, region, endpoints, found.errors, asynchronous)
    found.endpoints = [
        replace(e, variants=details.get(e.name, ()), asynchronous=e.name in asynchronous)
        for e in endpoints
    ]
    for endpoint in found.endpoints:
        if endpoint.name in details:
            variants = details[endpoint.name]
            found.instances[endpoint.name] = sum(v.instance_count for v in variants)
            found.hourly_cost[endpoint.name] = endpoint_hourly_cost(endpoint, pricer)
        else:
            found.hourly_cost[endpoint.name] = None
    try:
        found.history, problems = hourly_history(aws, region, found.endpoints, days, now)
    except AWS_ERRORS as exc:
        found.errors.append(scan_error(exc, region, "GetMetricData"))
        found.endpoints = []
        return found
    # Asynchronous endpoints and inference components: traffic Invocations does not show.
    try:
        components = inference_components.list_inference_components(aws, region)
    except AWS_ERRORS as exc:
        # Unlisted components hide traffic only on endpoints that could host them.
        components = []
        _leave_out_possible_hosts(found, scan_error(exc, region, "ListInferenceComponents"))
    try:
        more = signal_history(
            aws, region, found.history, sorted(asynchronous), components, days, now
        )
    except AWS_ERRORS as exc:
        found.errors.append(scan_error(exc, region, "GetMetricData"))
        found.endpoints = []
        return found
    for name, problem in more.items():
        problems.setdefault(name, problem)
        found.history.pop(name, None)
    for name, problem in sorted(problems.items()):
        found.errors.append(ScanError(region, "GetMetricData", problem, name, "IncompleteData"))
    found.endpoints = [e for e in found.endpoints if e.name not in problems]
    return found
