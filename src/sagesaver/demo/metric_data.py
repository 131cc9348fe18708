"""``GetMetricData`` read and rewritten at the wire, for :class:`IncompleteMetrics`: CloudWatch's
answers that are not ``Complete``, which moto never gives.

botocore speaks RPC v2 CBOR to CloudWatch (JSON and query are its fallbacks); the simulator
reads and writes CBOR with cbor2 and JSON with the standard library, and leaves query-protocol
(XML) requests to moto as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from typing import Any

from sagesaver.demo.wire import Environ


@dataclass
class IncompleteMetrics:
    """``GetMetricData`` answers that are not complete, as CloudWatch gives them under load,
    for the queries about ``endpoints`` (or inference components; moto always answers
    ``Complete``).

    ``mode``: ``InternalError`` or ``Forbidden`` (that StatusCode, no values); ``PartialData``
    (that StatusCode and no next page); ``paged`` (``PartialData`` with a ``NextToken``, the
    rest on the next page, then ``Complete``: a correct reader pages on); ``omit`` (the query
    is left out of the answer); ``messages`` (``Complete`` but with a message on the query).
    """

    endpoints: frozenset[str]
    mode: str = "InternalError"
    metrics: frozenset[str] | None = None  # only the queries of these metrics (None: all)


@dataclass(frozen=True)
class Protocol:
    """How one protocol's bodies are read and written."""

    read: Callable[[bytes], dict[str, Any]]
    write: Callable[[dict[str, Any]], bytes]


def _read_cbor(body: bytes) -> dict[str, Any]:
    import cbor2

    found: dict[str, Any] = cbor2.loads(body) if body else {}
    return found


def _write_cbor(document: dict[str, Any]) -> bytes:
    import cbor2

    return bytes(cbor2.dumps(document, datetime_as_timestamp=True, timezone=timezone.utc))


def _read_json(body: bytes) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(body or b"{}")
    return found


CBOR = Protocol(_read_cbor, _write_cbor)
JSON = Protocol(_read_json, lambda document: json.dumps(document).encode())


def protocol_of(environ: Environ) -> Protocol | None:
    """The protocol of a CloudWatch request (None: the query protocol)."""
    if str(environ.get("HTTP_SMITHY_PROTOCOL", "")).startswith("rpc-v2-cbor"):
        return CBOR
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in str(environ.get("CONTENT_TYPE", "")):
        return JSON
    return None


def _about(query: dict[str, Any]) -> str | None:
    """The endpoint (or inference component) a query is about."""
    dims = (query.get("MetricStat") or {}).get("Metric", {}).get("Dimensions", [])
    names = ("EndpointName", "InferenceComponentName")
    return next((d.get("Value") for d in dims if d.get("Name") in names), None)


def degrade(
    answer: dict[str, Any], params: dict[str, Any], rule: IncompleteMetrics, token: str
) -> dict[str, Any]:
    """moto's ``GetMetricData`` answer rewritten by ``rule`` (``token``: the simulator's own
    ``NextToken`` for the ``paged`` mode's second page)."""
    affected = {
        q.get("Id")
        for q in params.get("MetricDataQueries") or []
        if _about(q) in rule.endpoints
        and (
            rule.metrics is None
            or (q.get("MetricStat") or {}).get("Metric", {}).get("MetricName") in rule.metrics
        )
    }
    answer = dict(answer)
    second_page = params.get("NextToken") == token
    nothing: dict[str, list[Any]] = {"Values": [], "Timestamps": []}
    results = []
    for result in answer.get("MetricDataResults") or []:
        if result.get("Id") not in affected:
            results.append(result if not second_page else {**result, **nothing})
            continue
        if rule.mode == "omit":
            continue
        if rule.mode == "messages":
            message = {"Code": "Warning", "Value": "some data could not be read"}
            results.append({**result, "Messages": [message]})
        elif rule.mode == "paged":
            if second_page:
                results.append(result)
            else:
                results.append({**result, **nothing, "StatusCode": "PartialData"})
                answer["NextToken"] = token
        else:
            results.append({**result, **nothing, "StatusCode": rule.mode})
    answer["MetricDataResults"] = results
    return answer
