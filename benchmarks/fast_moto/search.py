"""``Search`` for endpoints paged inside moto, building only each page's records.

The shipped simulator pages ``Search`` at the wire (``sagesaver.demo.search``) over the records
of a one-page ``Search`` it asks moto for: moto builds every endpoint's record for it, which at
20,000 endpoints costs more than the scan being measured. Here the pages are cut from moto's
endpoint objects and only the page's records are built (moto's own ``gen_response_object``),
as AWS's cost follows the page. ``benchmarks/tests/test_fast_search.py`` checks both give the
same pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sagesaver.demo.search import (
    SEARCH_DEFAULT_PAGE,
    SEARCH_MAX_PAGE,
    SEARCH_RANGES,
    SEARCH_TIME_FORMAT,
    SEARCH_TIMESTAMPS,
    search_time_value,
)


def endpoint_search_page(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``Search`` with ``Resource=Endpoint``, paged and ordered as AWS does: ``MaxResults``
    (1-100, default 10) per page, ``NextToken`` to go on, newest ``LastModifiedTime`` first
    by default (``SortBy`` ``CreationTime`` too). moto returns every match in one page and
    builds every record for it; here
    only the page's records are built (moto's own ``gen_response_object``), so paging through
    a large fleet costs the simulator what it costs AWS. Each page says the ``TotalHits`` of
    the search (exact here: ``Relation`` ``EqualTo``). Filters: ``Equals`` on an endpoint
    attribute (as moto matches them), and the range operators on its timestamps (see
    :func:`_search_filter`)."""
    from moto.sagemaker.exceptions import ValidationError

    size = int(params.get("MaxResults") or SEARCH_DEFAULT_PAGE)
    if not 1 <= size <= SEARCH_MAX_PAGE:
        raise ValidationError(message=f"MaxResults {size}: must be from 1 to {SEARCH_MAX_PAGE}")
    token = str(params.get("NextToken") or "")
    if token and not token.startswith("endpoints-after-"):
        raise ValidationError(message="Invalid pagination token")
    start = int(token.removeprefix("endpoints-after-").split("-", 1)[0] or 0)
    snapshot = token.split("-", 3)[-1] if token else ""
    found = _SEARCH_SNAPSHOTS.get(snapshot) if snapshot else None
    if found is None:  # a first page: the sorted matches are kept for the next pages
        filters = [
            _search_filter(f) for f in (params.get("SearchExpression") or {}).get("Filters") or []
        ]
        found = [
            endpoint
            for endpoint in backend.endpoints.values()
            if all(matches(endpoint) for matches in filters)
        ]
        by_creation = params.get("SortBy") == "CreationTime"
        found.sort(
            key=lambda e: (
                e.creation_time if by_creation else e.last_modified_time,
                e.endpoint_name,
            ),
            reverse=params.get("SortOrder", "Descending") == "Descending",
        )
        snapshot = uuid.uuid4().hex
        _SEARCH_SNAPSHOTS[snapshot] = found
    page: dict[str, Any] = {
        "Results": [{"Endpoint": e.gen_response_object()} for e in found[start : start + size]],
        "TotalHits": {"Value": len(found), "Relation": "EqualTo"},
    }
    if start + size < len(found):
        page["NextToken"] = f"endpoints-after-{start + size}-{snapshot}"
    else:
        _SEARCH_SNAPSHOTS.pop(snapshot, None)
    return page


def _search_filter(spec: dict[str, Any]) -> Callable[[Any], bool]:
    """One ``Search`` filter on an endpoint: ``Equals`` on an attribute (as moto matches it),
    or a range operator on a timestamp property compared at the endpoint's own precision.
    Range operators on other (text) properties and values not in the documented format are
    refused with a ``ValidationException``, as AWS documents them unsupported."""
    from moto.core.utils import camelcase_to_underscores
    from moto.sagemaker.exceptions import ValidationError

    name, value = str(spec["Name"]), spec.get("Value")
    attribute = camelcase_to_underscores(name)
    compare = SEARCH_RANGES.get(str(spec.get("Operator") or "Equals"))
    if compare is None:
        return lambda endpoint: getattr(endpoint, attribute, None) == value
    if name not in SEARCH_TIMESTAMPS:
        raise ValidationError(
            message=f"Operator {spec['Operator']} is not supported for text property {name}"
        )
    if not SEARCH_TIME_FORMAT.fullmatch(str(value)):
        raise ValidationError(
            message=f"Value {value!r} of {name}: must be an ISO 8601 date-time YYYY-mm-ddTHH:MM:SS"
        )
    bound = search_time_value(str(value)).replace(tzinfo=None)  # as moto keeps its times
    return lambda endpoint: compare(getattr(endpoint, attribute), bound)


# Search answers being paged, by token (as AWS pages a snapshot of its index, not the live set).
_SEARCH_SNAPSHOTS: dict[str, list[Any]] = {}


_INSTALLED: list[bool] = []


def install() -> None:
    """Answer simple endpoint searches inside moto (once per process), while the shipped
    simulator's own paging is off (``AwsBehaviours.page_endpoint_search``)."""
    if _INSTALLED:
        return
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    from sagesaver.demo.behaviours import BEHAVIOURS
    from sagesaver.demo.search import simple_endpoint_search

    search = SageMakerResponse.search

    def paged_search(self: Any) -> Any:
        params = self._get_params()
        if BEHAVIOURS.page_endpoint_search or not simple_endpoint_search(params):
            return search(self)  # the shipped simulator pages it (or moto answers it)
        return ActionResult(endpoint_search_page(self.sagemaker_backend, params))

    setattr(SageMakerResponse, "search", paged_search)  # noqa: B010
    _INSTALLED.append(True)
