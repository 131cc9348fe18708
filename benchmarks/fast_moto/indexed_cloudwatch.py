"""CloudWatch reads answered from an index, for benchmarks at fleet scale.

moto answers each ``GetMetricData`` query and each ``GetMetricStatistics`` call by scanning
every stored datapoint, and ``ListMetrics`` by comparing each datapoint with every metric found
so far: its server time grows with the square of the fleet and hides the client's. Real
CloudWatch does not work that way. With :attr:`SpeedUps.indexed_metrics` on, the simulator
keeps an index of the stored datapoints by metric and runs moto's *own* code on the few
datapoints a query can match, and for ``GetMetricData`` on the periods of the window that hold
them (moto walks every period of the window, one by one), so the answers are moto's, in a
time that follows the query.

Differences from moto, on purpose: ``ListMetrics`` lists each metric once, as CloudWatch does
(moto 5.2 repeats a metric with two or more dimensions once per datapoint). Queries this index
does not cover (metric math, a ``ListMetrics`` filtered by dimension) go to moto unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

DimsKey = tuple[tuple[str, str], ...]
_INDEX_ATTRIBUTE = "_sagesaver_metric_index"
_CREATE_LOCK = threading.Lock()


def _dims_key(dimensions: Any) -> DimsKey:
    return tuple(sorted((str(d.name), str(d.value)) for d in dimensions))


class MetricIndex:
    """The datapoints of one CloudWatch backend by metric; follows appends to its lists."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._sources: tuple[int, int] = (0, 0)  # datapoints of each list already indexed
        self.exact: dict[tuple[str, DimsKey], list[Any]] = {}  # (name, dims): GetMetricData
        self.by_name: dict[tuple[str, str], list[Any]] = {}  # (namespace, name)
        self.by_dimension: dict[tuple[str, str, str, str], list[Any]] = {}
        self.metrics: dict[tuple[str, str, DimsKey], Any] = {}  # first datapoint of each

    def refresh(self, backend: Any) -> None:
        """Index the datapoints stored since the last call (moto only appends)."""
        user, aws = backend.metric_data, backend.aws_metric_data
        if (len(user), len(aws)) == self._sources:
            return
        done_user, done_aws = self._sources
        if len(user) < done_user or len(aws) < done_aws:  # lists replaced: start again
            self._clear()
            done_user = done_aws = 0
        for datum in [*user[done_user:], *aws[done_aws:]]:
            dims = _dims_key(datum.dimensions)
            self.exact.setdefault((datum.name, dims), []).append(datum)
            self.by_name.setdefault((datum.namespace, datum.name), []).append(datum)
            for dim_name, dim_value in dims:
                key = (datum.namespace, datum.name, dim_name, dim_value)
                self.by_dimension.setdefault(key, []).append(datum)
            self.metrics.setdefault((datum.namespace, datum.name, dims), datum)
        self._sources = (len(user), len(aws))


def index_of(backend: Any) -> MetricIndex:
    """The backend's index, brought up to date."""
    with _CREATE_LOCK:
        index: MetricIndex | None = getattr(backend, _INDEX_ATTRIBUTE, None)
        if index is None:
            index = MetricIndex()
            setattr(backend, _INDEX_ATTRIBUTE, index)
    with index.lock:
        index.refresh(backend)
    return index


class _Narrowed:
    """The backend, seen through a smaller set of datapoints: moto's own code runs on it."""

    def __init__(self, backend: Any, datapoints: list[Any]) -> None:
        self._backend = backend
        self._datapoints = datapoints

    def get_all_metrics(self) -> list[Any]:
        return self._datapoints

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _candidates_for_query(index: MetricIndex, query: dict[str, Any]) -> list[Any]:
    metric = query["MetricStat"]["Metric"]
    dimensions = metric.get("Dimensions") or []
    if dimensions:  # moto then matches name and exact dimensions (namespace ignored)
        dims = tuple(sorted((str(d["Name"]), str(d["Value"])) for d in dimensions))
        return list(index.exact.get((metric["MetricName"], dims), ()))
    return list(index.by_name.get((metric["Namespace"], metric["MetricName"]), ()))


def _periods_with_data(
    candidates: list[Any], query: dict[str, Any], start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """The part of [start, end) that moto needs to walk for ``query``: from the first to the
    last of its periods that holds a candidate datapoint, on the same period boundaries.

    moto walks every period of the window one by one (a daily sum over 455 days is 456 steps
    per query, each filtering the datapoints); periods without a datapoint add nothing to its
    answer, so the answer over the narrower window is the same. Anything unusual (a window
    moto refuses, a period that is not a positive number) keeps the window as asked."""
    first_second, last_second = start.replace(microsecond=0), end.replace(microsecond=0)
    try:
        period = timedelta(seconds=int(query["MetricStat"]["Period"]))
    except (KeyError, TypeError, ValueError):
        return start, end
    if period <= timedelta(0) or first_second >= last_second:
        return start, end
    inside = [d.timestamp for d in candidates if first_second <= d.timestamp < last_second]
    first = (min(inside) - first_second) // period if inside else 0
    last = (max(inside) - first_second) // period if inside else 0
    return (
        first_second + first * period,
        min(last_second, first_second + (last + 1) * period),
    )


def indexed_get_metric_data(
    original: Callable[..., list[dict[str, Any]]],
) -> Callable[..., list[dict[str, Any]]]:
    """``get_metric_data`` answering each ``MetricStat`` query from its own datapoints."""

    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        from benchmarks.fast_moto.flags import SPEEDUPS

        if not SPEEDUPS.indexed_metrics or any("MetricStat" not in q for q in queries):
            return original(self, queries, start_time, end_time, scan_by)
        index = index_of(self)
        results: list[dict[str, Any]] = []
        for query in queries:
            candidates = _candidates_for_query(index, query)
            narrowed = _Narrowed(self, candidates)
            first, last = _periods_with_data(candidates, query, start_time, end_time)
            results += original(narrowed, [query], first, last, scan_by)
        if not queries:
            return original(self, queries, start_time, end_time, scan_by)
        return results

    return get_metric_data


def indexed_get_metric_statistics(original: Callable[..., Any]) -> Callable[..., Any]:
    """``get_metric_statistics`` run on the datapoints of its first dimension only."""

    def get_metric_statistics(
        self: Any,
        namespace: str,
        metric_name: str,
        start_time: datetime,
        end_time: datetime,
        period: int,
        stats: list[str],
        dimensions: list[dict[str, str]],
        unit: str | None = None,
    ) -> Any:
        from benchmarks.fast_moto.flags import SPEEDUPS

        args = (namespace, metric_name, start_time, end_time, period, stats)
        if not SPEEDUPS.indexed_metrics or any(d.get("Value") is None for d in dimensions):
            return original(self, *args, dimensions=dimensions, unit=unit)
        index = index_of(self)
        if dimensions:  # moto matches the query's dimensions as a subset: any one narrows
            first = dimensions[0]
            key = (namespace, metric_name, str(first["Name"]), str(first["Value"]))
            candidates = list(index.by_dimension.get(key, ()))
        else:
            candidates = list(index.by_name.get((namespace, metric_name), ()))
        return original(_Narrowed(self, candidates), *args, dimensions=dimensions, unit=unit)

    return get_metric_statistics


def indexed_get_filtered_metrics(original: Callable[..., Any]) -> Callable[..., Any]:
    """``get_filtered_metrics`` (``ListMetrics``): each metric once, in order of first put."""

    def get_filtered_metrics(
        self: Any, metric_name: str, namespace: str, dimensions: list[dict[str, str]]
    ) -> Any:
        from benchmarks.fast_moto.flags import SPEEDUPS

        if not SPEEDUPS.indexed_metrics or dimensions or not namespace:
            return original(self, metric_name, namespace, dimensions)
        index = index_of(self)
        with index.lock:
            return [
                datum
                for (space, name, _), datum in index.metrics.items()
                if space == namespace and (not metric_name or name == metric_name)
            ]

    return get_filtered_metrics


def install() -> None:
    """Wrap moto's CloudWatch backend methods (once per process)."""
    from moto.cloudwatch.models import CloudWatchBackend

    if getattr(CloudWatchBackend, "_sagesaver_indexed", False):
        return
    for name, wrap in (
        ("get_metric_data", indexed_get_metric_data),
        ("get_metric_statistics", indexed_get_metric_statistics),
        ("get_filtered_metrics", indexed_get_filtered_metrics),
    ):
        setattr(CloudWatchBackend, name, wrap(getattr(CloudWatchBackend, name)))
    setattr(CloudWatchBackend, "_sagesaver_indexed", True)  # noqa: B010
