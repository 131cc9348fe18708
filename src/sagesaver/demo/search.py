"""``Search`` for endpoints as AWS answers it: paged (moto answers in one page), sorted, with
``TotalHits`` and range filters on timestamps, over a snapshot of the matches.

Read at the wire: the simulator asks moto for every endpoint record (``Search`` with no
expression, moto's own records, tags included), then filters, sorts and pages them itself.
``MaxResults`` is 1-100 (default 10), ``NextToken`` goes on, newest ``LastModifiedTime`` first
by default (``SortBy`` ``CreationTime`` too), each page says the ``TotalHits`` of the search
(exact here: ``Relation`` ``EqualTo``). Filters: ``Equals`` on a record's field (as moto
matches them), and the range operators on its timestamps; a range on a text property, or a
value not in the documented format, is refused with a ``ValidationException``, as AWS
documents them unsupported.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

SEARCH_DEFAULT_PAGE = 10
SEARCH_MAX_PAGE = 100
SEARCH_RANGES: dict[str, Callable[[Any, Any], bool]] = {
    "GreaterThan": lambda actual, value: actual > value,
    "GreaterThanOrEqualTo": lambda actual, value: actual >= value,
    "LessThan": lambda actual, value: actual < value,
    "LessThanOrEqualTo": lambda actual, value: actual <= value,
}
SEARCH_TIMESTAMPS = ("CreationTime", "LastModifiedTime")
# "For timestamp properties, Value must be an ISO 8601 date-time string of the following
# format: YYYY-mm-dd'T'HH:MM:SS" (SageMaker API Reference, Filter); read here as UTC.
SEARCH_TIME_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_TOKEN = re.compile(r"endpoints-after-(\d+)-([0-9a-f]{32})")


class SearchRefused(ValueError):
    """A ``Search`` AWS refuses (its message is the ``ValidationException``'s)."""


def simple_endpoint_search(params: dict[str, Any]) -> bool:
    """Whether :class:`EndpointSearch` answers this ``Search`` (else moto's own does)."""
    if params.get("Resource") != "Endpoint":
        return False
    if params.get("SortBy") not in (None, "LastModifiedTime", "CreationTime"):
        return False
    expression = params.get("SearchExpression") or {}
    if set(expression) - {"Filters"}:
        return False
    return all(
        f.get("Operator", "Equals") in ("Equals", *SEARCH_RANGES)
        and not str(f.get("Name", "")).startswith("Tags.")
        for f in expression.get("Filters") or []
    )


def search_time_value(value: str) -> datetime:
    """A range filter's ``Value`` as a UTC time: the documented ``YYYY-mm-ddTHH:MM:SS`` only (a
    suffix, a space or fractions are refused, so SageSaver sends what AWS documents)."""
    return datetime.strptime(value + "+0000", "%Y-%m-%dT%H:%M:%S%z")


def _search_filter(spec: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """One filter on an endpoint record (its timestamps are epoch seconds, as JSON has them)."""
    name, value = str(spec["Name"]), spec.get("Value")
    compare = SEARCH_RANGES.get(str(spec.get("Operator") or "Equals"))
    if compare is None:
        return lambda record: record.get(name) == value
    if name not in SEARCH_TIMESTAMPS:
        raise SearchRefused(
            f"Operator {spec['Operator']} is not supported for text property {name}"
        )
    if not SEARCH_TIME_FORMAT.fullmatch(str(value)):
        raise SearchRefused(
            f"Value {value!r} of {name}: must be an ISO 8601 date-time YYYY-mm-ddTHH:MM:SS"
        )
    bound = search_time_value(str(value)).timestamp()
    return lambda record: compare(float(record[name]), bound)


def _moment(value: Any) -> float:
    return (
        float(value)
        if not isinstance(value, datetime)
        else value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp()
    )


class EndpointSearch:
    """The pages of endpoint searches, each over the snapshot its first page took (as AWS
    pages a snapshot of its index, not the live set)."""

    def __init__(self) -> None:
        self._snapshots: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every search being paged."""
        with self._lock:
            self._snapshots.clear()

    def page(
        self, params: dict[str, Any], records: Callable[[], list[dict[str, Any]]]
    ) -> dict[str, Any]:
        """The page ``params`` asks for; ``records`` gives every endpoint's record (moto's),
        asked on a first page only. :class:`SearchRefused` for what AWS refuses."""
        size = int(params.get("MaxResults") or SEARCH_DEFAULT_PAGE)
        if not 1 <= size <= SEARCH_MAX_PAGE:
            raise SearchRefused(f"MaxResults {size}: must be from 1 to {SEARCH_MAX_PAGE}")
        token = str(params.get("NextToken") or "")
        start, snapshot = 0, ""
        if token:
            matched = _TOKEN.fullmatch(token)
            if matched is None:
                raise SearchRefused("Invalid pagination token")
            start, snapshot = int(matched.group(1)), matched.group(2)
        with self._lock:
            found = self._snapshots.get(snapshot) if snapshot else None
        if found is None:  # a first page (or an expired token): the sorted matches are kept
            filters = [
                _search_filter(f)
                for f in (params.get("SearchExpression") or {}).get("Filters") or []
            ]
            found = [r for r in records() if all(matches(r) for matches in filters)]
            by = "CreationTime" if params.get("SortBy") == "CreationTime" else "LastModifiedTime"
            found.sort(
                key=lambda r: (_moment(r.get(by, 0)), str(r.get("EndpointName", ""))),
                reverse=params.get("SortOrder", "Descending") == "Descending",
            )
            snapshot = uuid.uuid4().hex
            with self._lock:
                self._snapshots[snapshot] = found
        page: dict[str, Any] = {
            "Results": [{"Endpoint": r} for r in found[start : start + size]],
            "TotalHits": {"Value": len(found), "Relation": "EqualTo"},
        }
        if start + size < len(found):
            page["NextToken"] = f"endpoints-after-{start + size}-{snapshot}"
        else:
            with self._lock:
                self._snapshots.pop(snapshot, None)
        return page


def records_of(answer_body: bytes) -> list[dict[str, Any]]:
    """The endpoint records of moto's one-page ``Search`` answer."""
    results = json.loads(answer_body or b"{}").get("Results") or []
    return [r["Endpoint"] for r in results if "Endpoint" in r]
