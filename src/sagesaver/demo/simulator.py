"""An embedded AWS simulator: moto's server on 127.0.0.1, plus seeding helpers.

Used by ``sagesaver demo``, the end-to-end tests and the benchmarks. The server runs in this
process, so helpers can also adjust moto's in-memory state where the API cannot: make an
endpoint look older than it is, or scale a variant to 0 instances.

A WSGI middleware counts requests per operation and can add a fixed latency to each, as a
real AWS round trip does, or answer with faults.

moto accepts what AWS refuses and answers more kindly than AWS does; :class:`AwsBehaviours`
adds the AWS behaviours SageSaver's decisions depend on: ``GetMetricData`` answers that are not
``Complete``, and a tagging API that answers with lower-case ARNs (both switched on by a test),
``AddTags`` replacing the value of an existing key, ``Search`` for endpoints answering in
pages, and training jobs' warm pools with ``UpdateTrainingJob`` (all always).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import random
import re
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qs

import boto3

ACCOUNT_ID = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sagesaver-demo"
IMAGE = f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/demo-model:1"


def role_in(region: str) -> str:
    """The demo's execution role, as an ARN of ``region``'s partition."""
    from sagesaver.core.partitions import partition_of, role_arn

    return role_arn(partition_of(region), ACCOUNT_ID, "sagesaver-demo")


def image_in(region: str) -> str:
    """The demo model's image in ``region``'s ECR (``amazonaws.com.cn`` in China)."""
    from sagesaver.core.partitions import endpoint_host

    return f"{ACCOUNT_ID}.dkr.{endpoint_host('ecr', region)}/demo-model:1"


Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_OPERATION_IN_PATH = re.compile(r"/operation/([A-Za-z0-9]+)$")


def operation_of(environ: Environ) -> str:
    """The AWS operation a request asks for (JSON target, RPC v2 path or query Action).

    Reads and restores the body for query-protocol requests.
    """
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if target:
        return str(target).rsplit(".", 1)[-1]
    match = _OPERATION_IN_PATH.search(str(environ.get("PATH_INFO", "")))
    if match:
        return str(match.group(1))
    query: dict[str, list[str]] = parse_qs(str(environ.get("QUERY_STRING", "")))
    if "Action" in query:
        return query["Action"][0]
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form: dict[str, list[str]] = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"


_REGION_IN_AUTH = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def region_of(environ: Environ) -> str:
    """The region a request was signed for (from its SigV4 credential scope)."""
    match = _REGION_IN_AUTH.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return match.group(1) if match else ""


@dataclass(frozen=True)
class Fault:
    """An error response to send instead of the real answer, after ``delay_s`` seconds."""

    status: int
    code: str
    message: str
    delay_s: float = 0.0


FaultRule = Callable[[str, str, Environ], "Fault | None"]


@dataclass
class Served:
    """What the simulator spent on the requests of one operation (``Middleware.served``).

    ``service_s``: wall time inside moto and the AWS behaviours, from the middleware's call to
    the last byte of the answer's body, the added latency aside; ``service_cpu_s``: the CPU
    time of the serving thread in that span (wall minus CPU is mostly waiting for the GIL
    other threads of this process hold). ``latency_s``: the latency added on purpose.
    ``request_s`` / ``request_cpu_s``: the whole request in the HTTP server (reading and
    parsing it, the middleware, writing the answer, closing the connection), so the HTTP
    front costs ``request - service - latency``.
    """

    requests: int = 0
    service_s: float = 0.0
    service_cpu_s: float = 0.0
    latency_s: float = 0.0
    request_s: float = 0.0
    request_cpu_s: float = 0.0

    def add(self, other: Served) -> None:
        """Add ``other``'s figures to these."""
        self.requests += other.requests
        self.service_s += other.service_s
        self.service_cpu_s += other.service_cpu_s
        self.latency_s += other.latency_s
        self.request_s += other.request_s
        self.request_cpu_s += other.request_cpu_s


OPERATION_KEY = "sagesaver.operation"


class Middleware:
    """Counts requests per operation and times how long the simulator takes to serve them
    (``served``); optionally adds latency or answers with a fault.

    ``fault`` is called with (operation, region, environ) and may return a :class:`Fault`.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.latency_s = 0.0
        self.fault: FaultRule | None = None
        self.counts: Counter[str] = Counter()
        self.faults_sent: Counter[str] = Counter()
        self.served: dict[str, Served] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget the counts and times of the requests served so far."""
        with self._lock:
            self.counts.clear()
            self.served.clear()

    def settle(self, timeout_s: float = 2.0) -> bool:
        """Wait (up to ``timeout_s``) until every request counted has been noted whole: a
        client has its answer a moment before the server's request thread is done with it.
        True when none is missing."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                noted = sum(f.requests for f in self.served.values())
                counted = sum(self.counts.values())
            if noted >= counted:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    def note(self, operation: str, figures: Served) -> None:
        """Add ``figures`` to what ``operation``'s requests cost."""
        with self._lock:
            self.served.setdefault(operation, Served()).add(figures)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        wall, cpu = time.perf_counter(), time.thread_time()
        operation = operation_of(environ)
        environ[OPERATION_KEY] = operation
        with self._lock:
            self.counts[operation] += 1
        slept = 0.0
        if self.latency_s:
            before = time.perf_counter()
            time.sleep(self.latency_s)
            slept = time.perf_counter() - before
        answer: Iterable[bytes] = ()
        try:
            answer = self._answer(operation, environ, start_response)
            body = list(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
            self.note(
                operation,
                Served(
                    service_s=time.perf_counter() - wall - slept,
                    service_cpu_s=time.thread_time() - cpu,
                    latency_s=slept,
                ),
            )
        return body

    def _answer(
        self, operation: str, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        fault = self.fault(operation, region_of(environ), environ) if self.fault else None
        if fault is None and operation == "GetProducts":
            fault = BEHAVIOURS.price_list.refusal(region_of(environ))
            if fault is None:
                return BEHAVIOURS.price_list.answer(environ, start_response)
        if fault is None:
            return self.app(environ, start_response)
        with self._lock:
            self.faults_sent[operation] += 1
        if fault.delay_s:
            time.sleep(fault.delay_s)
        content_type, body = error_body(environ, fault)
        start_response(
            f"{fault.status} Fault",
            [
                ("Content-Type", content_type),
                ("x-amzn-ErrorType", fault.code),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


def _cbor_text(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) < 24:
        return bytes([0x60 + len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    return bytes([0x79]) + len(data).to_bytes(2, "big") + data


def error_body(environ: Environ, fault: Fault) -> tuple[str, bytes]:
    """The error response in the protocol the request used (JSON, CBOR or XML)."""
    if str(environ.get("HTTP_SMITHY_PROTOCOL", "")).startswith("rpc-v2-cbor"):
        fields = {"__type": fault.code, "message": fault.message}
        body = bytes([0xA0 + len(fields)]) + b"".join(
            _cbor_text(k) + _cbor_text(v) for k, v in fields.items()
        )
        return "application/cbor", body
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in str(environ.get("CONTENT_TYPE", "")):
        return "application/x-amz-json-1.1", json.dumps(
            {"__type": fault.code, "message": fault.message}
        ).encode()
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
        "<RequestId>fault</RequestId></ErrorResponse>"
    )
    if "ec2" in str(environ.get("HTTP_AUTHORIZATION", "")):
        xml = (
            f"<Response><Errors><Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            "</Error></Errors><RequestID>fault</RequestID></Response>"
        )
    return "text/xml", xml.encode()


class TransientFaults:
    """Fails a share of requests with transient errors, deterministically by seed.

    Whether a request fails depends only on the seed, its operation and body, and how many
    times that same request was seen before, so the outcome does not depend on thread timing.
    Kinds: throttling (HTTP 400 ``ThrottlingException``), HTTP 429, 500, 503, and time-outs
    (the answer comes after ``timeout_s``, which should exceed the client's read timeout).
    """

    KINDS = ("throttle", "429", "500", "503", "timeout")

    def __init__(
        self,
        rate: float,
        seed: int = 0,
        kinds: tuple[str, ...] = KINDS,
        operations: frozenset[str] | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self.rate = rate
        self.seed = seed
        self.kinds = kinds
        self.operations = operations
        self.timeout_s = timeout_s
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def __call__(self, operation: str, region: str, environ: Environ) -> Fault | None:
        if self.operations is not None and operation not in self.operations:
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        digest = hashlib.sha256(
            f"{operation}|{region}|{environ.get('QUERY_STRING', '')}|".encode() + body
        ).hexdigest()
        with self._lock:
            attempt = self._seen[digest]
            self._seen[digest] += 1
        draw = random.Random(f"{self.seed}|{digest}|{attempt}")
        if draw.random() >= self.rate:
            return None
        kind = draw.choice(self.kinds)
        with self._lock:
            self.injected[kind] += 1
        if kind == "throttle":
            return Fault(400, "ThrottlingException", "Rate exceeded")
        if kind == "429":
            return Fault(429, "TooManyRequestsException", "Too many requests")
        if kind == "timeout":
            return Fault(503, "ServiceUnavailable", "late answer", delay_s=self.timeout_s)
        return Fault(
            int(kind), "InternalFailure" if kind == "500" else "ServiceUnavailable", "try again"
        )


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


class PriceList:
    """A stand-in for the AWS Price List API (moto has none), answering ``GetProducts`` in
    its real format from small offer files in the real bulk format (``demo/offers``: EXAMPLE
    figures, not AWS prices): ``aws`` from ``us-east-1`` in USD, ``aws-cn`` from
    ``cn-northwest-1`` in CNY, as AWS serves them; any other region has no endpoint.

    ``mode``: ``answer`` (the default), ``denied`` (AccessDeniedException, as for a role
    without ``pricing:GetProducts``) or ``unreachable`` (as from a network without internet).
    """

    ENDPOINTS: ClassVar[dict[str, str]] = {"us-east-1": "aws", "cn-northwest-1": "aws-cn"}

    def __init__(self) -> None:
        self.mode = "answer"
        self._offers: dict[str, dict[str, Any]] = {}

    def offer(self, partition: str) -> dict[str, Any]:
        """The offer file the stand-in answers from for ``partition``."""
        if partition not in self._offers:
            from importlib import resources

            text = resources.files("sagesaver.demo").joinpath(f"offers/{partition}.json")
            self._offers[partition] = json.loads(text.read_text(encoding="utf-8"))
        return self._offers[partition]

    def refusal(self, region: str) -> Fault | None:
        """The error to answer with instead of products, if any."""
        if self.mode == "denied":
            return Fault(400, "AccessDeniedException", "not authorized: pricing:GetProducts")
        if self.mode == "unreachable" or region not in self.ENDPOINTS:
            # What botocore meets without a route: a connection that never answers in time.
            return Fault(503, "ServiceUnavailable", f"no Price List endpoint in {region!r}")
        return None

    def products(self, region: str, filters: list[dict[str, str]]) -> list[str]:
        """The ``PriceList`` of a GetProducts call (each product a JSON string)."""
        offer = self.offer(self.ENDPOINTS[region])
        wanted = {f["Field"]: f["Value"] for f in filters if f.get("Type") == "TERM_MATCH"}
        found = []
        for sku, product in sorted(offer["products"].items()):
            attributes = product.get("attributes", {})
            if all(attributes.get(k) == v for k, v in wanted.items()):
                item = {
                    "product": product,
                    "serviceCode": offer["offerCode"],
                    "terms": {"OnDemand": offer["terms"]["OnDemand"].get(sku, {})},
                    "version": offer["version"],
                    "publicationDate": offer["publicationDate"],
                }
                found.append(json.dumps(item, sort_keys=True))
        return found

    def answer(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """A GetProducts answer (JSON 1.1) for the request in ``environ``."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        body = json.dumps(
            {
                "FormatVersion": "aws_v1",
                "PriceList": self.products(region_of(environ), request.get("Filters", [])),
            }
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
        )
        return [body]


@dataclass
class AwsBehaviours:
    """AWS behaviours moto lacks that SageSaver's decisions depend on. Off by default, but
    for the Price List stand-in, which answers unless told otherwise."""

    incomplete_metrics: IncompleteMetrics | None = None
    # The tagging API answering with SageMaker ARNs in lower case, as AWS has done.
    lowercase_tagging_arns: bool = False
    price_list: PriceList = field(default_factory=PriceList)
    # CloudWatch reads answered from an index (benchmarks; see demo/indexed_cloudwatch.py).
    indexed_metrics: bool = False
    # moto's answers serialized without most of its per-member lookups, the biggest ones by
    # a writer compiled from their shape, and GetMetricData requests read by a reader compiled
    # from theirs (benchmarks; the same bytes and parameters: see demo/fast_serialization.py,
    # demo/answer_writer.py and demo/request_reader.py).
    fast_serialization: bool = False


BEHAVIOURS = AwsBehaviours()
# moto has no inference components: the simulator keeps them here, by (account, region) and
# name, and answers ListInferenceComponents and DescribeInferenceComponent from them.
INFERENCE_COMPONENTS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
_PAGE = 100


def _list_inference_components(self: Any) -> Any:
    from moto.core.responses import ActionResult

    found = list(INFERENCE_COMPONENTS.get((self.current_account, self.region), {}).values())
    endpoint = self._get_param("EndpointNameEquals")
    status = self._get_param("StatusEquals")
    found = [
        c
        for c in found
        if (endpoint is None or c["EndpointName"] == endpoint)
        and (status is None or c["InferenceComponentStatus"] == status)
    ]
    found.sort(key=lambda c: c["InferenceComponentName"])
    start = int(self._get_param("NextToken") or 0)
    size = int(self._get_param("MaxResults") or _PAGE)
    page = found[start : start + size]
    summaries = [{k: v for k, v in c.items() if k != "RuntimeConfig"} for c in page]
    answer: dict[str, Any] = {"InferenceComponents": summaries}
    if start + size < len(found):
        answer["NextToken"] = str(start + size)
    return ActionResult(answer)


def _describe_inference_component(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    name = self._get_param("InferenceComponentName")
    found = INFERENCE_COMPONENTS.get((self.current_account, self.region), {}).get(name)
    if found is None:
        raise ValidationError(message=f"Could not find inference component '{name}'.")
    return ActionResult(dict(found))


# moto keeps training jobs but no warm pools and no UpdateTrainingJob: the simulator keeps
# each job's warm pool status here, by (account, region, job name), adds ``WarmPoolStatus`` to
# DescribeTrainingJob and ListTrainingJobs (and honours ``WarmPoolStatusEquals``), and answers
# UpdateTrainingJob: ``KeepAlivePeriodInSeconds`` 0 terminates an ``Available`` pool. Updating
# the keep-alive of a pool that is no longer ``Available`` or ``InUse`` (``Terminated``,
# ``Reused``) is refused with a ValidationException: such a pool cannot be kept alive again.
WARM_POOLS: dict[tuple[str, str, str], dict[str, Any]] = {}
_LIVE_POOLS = ("Available", "InUse")


def _with_warm_pool(self: Any, item: dict[str, Any]) -> dict[str, Any]:
    pool = WARM_POOLS.get((self.current_account, self.region, item.get("TrainingJobName", "")))
    return {**item, "WarmPoolStatus": dict(pool)} if pool is not None else item


def _describe_training_job(describe: Callable[..., Any]) -> Callable[..., Any]:
    def describe_training_job(self: Any) -> Any:
        from moto.core.responses import ActionResult

        return ActionResult(_with_warm_pool(self, dict(describe(self).result)))

    return describe_training_job


def _list_training_jobs(listing: Callable[..., Any]) -> Callable[..., Any]:
    def list_training_jobs(self: Any) -> Any:
        from moto.core.responses import ActionResult

        answer = dict(listing(self).result)
        wanted = self._get_param("WarmPoolStatusEquals")
        summaries = [_with_warm_pool(self, s) for s in answer["TrainingJobSummaries"]]
        if wanted is not None:
            summaries = [
                s for s in summaries if (s.get("WarmPoolStatus") or {}).get("Status") == wanted
            ]
        answer["TrainingJobSummaries"] = summaries
        return ActionResult(answer)

    return list_training_jobs


def _update_training_job(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError

    name = self._get_param("TrainingJobName")
    job = self.sagemaker_backend.training_jobs.get(name)
    if job is None:
        raise ValidationError(message=f"Requested resource not found: training job {name}")
    keep = (self._get_param("ResourceConfig") or {}).get("KeepAlivePeriodInSeconds")
    if keep is not None:
        pool = WARM_POOLS.get((self.current_account, self.region, name))
        if pool is None or pool["Status"] not in _LIVE_POOLS:
            status = "none" if pool is None else pool["Status"]
            raise ValidationError(
                message=f"The warm pool of training job {name} is {status}: its keep-alive "
                "period cannot be updated"
            )
        job.resource_config = {**job.resource_config, "KeepAlivePeriodInSeconds": int(keep)}
        if int(keep) == 0 and pool["Status"] == "Available":
            pool["Status"] = "Terminated"
    return ActionResult({"TrainingJobArn": job.arn})


_PAGED_TOKEN = "sagesaver-simulator-next-page"


def _endpoint_of_query(query: dict[str, Any]) -> str | None:
    """The endpoint (or inference component) a query is about."""
    dims = query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
    names = ("EndpointName", "InferenceComponentName")
    return next((d["Value"] for d in dims if d.get("Name") in names), None)


def _degrade_metric_data(response: Any, params: dict[str, Any]) -> Any:
    """Rewrite moto's ``GetMetricData`` answer by :attr:`AwsBehaviours.incomplete_metrics`."""
    from moto.core.responses import ActionResult

    rule = BEHAVIOURS.incomplete_metrics
    if rule is None:
        return response
    affected = {
        q["Id"]
        for q in params.get("MetricDataQueries", [])
        if _endpoint_of_query(q) in rule.endpoints
        and (
            rule.metrics is None
            or q.get("MetricStat", {}).get("Metric", {}).get("MetricName") in rule.metrics
        )
    }
    answer = dict(response.result)  # moto's own keys: id, values, timestamps, status_code
    results = []
    second_page = params.get("NextToken") == _PAGED_TOKEN
    nothing: dict[str, list[Any]] = {"values": [], "timestamps": []}
    for result in answer["MetricDataResults"]:
        if result["id"] not in affected:
            results.append(result if not second_page else {**result, **nothing})
            continue
        if rule.mode == "omit":
            continue
        if rule.mode == "messages":
            message = {"code": "Warning", "value": "some data could not be read"}
            results.append({**result, "messages": [message]})
        elif rule.mode == "paged":
            if second_page:
                results.append(result)
            else:
                results.append({**result, **nothing, "status_code": "PartialData"})
                answer["NextToken"] = _PAGED_TOKEN
        else:
            results.append({**result, **nothing, "status_code": rule.mode})
    answer["MetricDataResults"] = results
    return ActionResult(answer)


def _lowercase_arns(response: Any) -> Any:
    from moto.core.responses import ActionResult

    if not BEHAVIOURS.lowercase_tagging_arns:
        return response
    answer = dict(response.result)
    answer["ResourceTagMappingList"] = [
        {**m, "ResourceARN": m["ResourceARN"].lower()} for m in answer["ResourceTagMappingList"]
    ]
    return ActionResult(answer)


def _regions_of_own_partition(describe: Callable[..., Any]) -> Callable[..., Any]:
    """``DescribeRegions`` as AWS answers it: the regions of the caller's partition only
    (moto lists every partition's regions wherever it is asked)."""
    from sagesaver.core.partitions import partition_of

    def describe_regions(self: Any, region_names: list[str] | None = None) -> Any:
        own = partition_of(self.region_name)
        return [r for r in describe(self, region_names) if partition_of(r.name) == own]

    return describe_regions


def _add_tags_replacing(self: Any, arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
    resource = self._get_resource_from_arn(arn)
    keys = {t["Key"] for t in tags}
    resource.tags = [t for t in resource.tags if t["Key"] not in keys] + list(tags)
    return list(resource.tags)


SEARCH_DEFAULT_PAGE = 10
SEARCH_MAX_PAGE = 100


def _endpoint_search_page(backend: Any, params: dict[str, Any]) -> dict[str, Any]:
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


def search_time_value(value: str) -> datetime:
    """A range filter's ``Value`` as the (naive UTC) time moto keeps: the documented
    ``YYYY-mm-ddTHH:MM:SS`` only (a suffix, a space or fractions are refused, so SageSaver
    sends what AWS documents)."""
    return datetime.strptime(value + "+0000", "%Y-%m-%dT%H:%M:%S%z").replace(tzinfo=None)


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
    bound = search_time_value(str(value))
    return lambda endpoint: compare(getattr(endpoint, attribute), bound)


# Search answers being paged, by token (as AWS pages a snapshot of its index, not the live set).
_SEARCH_SNAPSHOTS: dict[str, list[Any]] = {}


def _simple_endpoint_search(params: dict[str, Any]) -> bool:
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


_BEHAVIOURS_INSTALLED = False


def install_behaviours() -> None:
    """Wrap moto's responses once, in this process, so :data:`BEHAVIOURS` can act on them."""
    global _BEHAVIOURS_INSTALLED
    if _BEHAVIOURS_INSTALLED:
        return
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend
    from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    from sagesaver.demo import (
        answer_writer,
        fast_serialization,
        indexed_cloudwatch,
        request_reader,
    )

    _remember_method_names()
    indexed_cloudwatch.install()
    fast_serialization.install()
    answer_writer.install()
    request_reader.install()
    metric_data = CloudWatchResponse.get_metric_data
    get_resources = ResourceGroupsTaggingAPIResponse.get_resources

    def degraded_metric_data(self: Any) -> Any:
        return _degrade_metric_data(metric_data(self), self._get_params())

    def lowercase_resources(self: Any) -> Any:
        return _lowercase_arns(get_resources(self))

    setattr(SageMakerResponse, "list_inference_components", _list_inference_components)  # noqa: B010
    # Always on: warm pools of training jobs, and UpdateTrainingJob (see WARM_POOLS).
    describe_job, list_jobs = (
        SageMakerResponse.describe_training_job,
        SageMakerResponse.list_training_jobs,
    )
    setattr(SageMakerResponse, "describe_training_job", _describe_training_job(describe_job))  # noqa: B010
    setattr(SageMakerResponse, "list_training_jobs", _list_training_jobs(list_jobs))  # noqa: B010
    setattr(SageMakerResponse, "update_training_job", _update_training_job)  # noqa: B010
    setattr(SageMakerResponse, "describe_inference_component", _describe_inference_component)  # noqa: B010
    search = SageMakerResponse.search

    def paged_search(self: Any) -> Any:
        from moto.core.responses import ActionResult

        params = self._get_params()
        if not _simple_endpoint_search(params):
            return search(self)
        return ActionResult(_endpoint_search_page(self.sagemaker_backend, params))

    setattr(CloudWatchResponse, "get_metric_data", degraded_metric_data)  # noqa: B010
    # Always on: AddTags replaces the value of a key the resource already has, as AWS does
    # (moto appends a second tag with the same key).
    setattr(SageMakerModelBackend, "add_tags", _add_tags_replacing)  # noqa: B010
    setattr(ResourceGroupsTaggingAPIResponse, "get_resources", lowercase_resources)  # noqa: B010
    # Always on: DescribeRegions answers with the caller's partition's regions only.
    regions = RegionsAndZonesBackend.describe_regions
    setattr(  # noqa: B010
        RegionsAndZonesBackend, "describe_regions", _regions_of_own_partition(regions)
    )
    # Always on: Search for endpoints pages its answer, as AWS does.
    setattr(SageMakerResponse, "search", paged_search)  # noqa: B010
    _BEHAVIOURS_INSTALLED = True


def _remember_method_names() -> None:
    """moto finds the method of an action by listing every function of the response class
    (``inspect.getmembers``, through the whole class hierarchy) for every request: 7 % of
    the simulator's CPU per ``DescribeEndpointConfig`` (py-spy, GIL holder). The list only changes
    when a class of the hierarchy gains or loses an attribute, so it is remembered per class
    and recomputed when the size of any of their ``__dict__`` changes (as when
    :func:`install_behaviours` adds an operation)."""
    from moto.core import responses, utils

    original = utils.method_names_from_class
    remembered: dict[type, tuple[tuple[int, ...], list[str]]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        if not isinstance(clazz, type):
            return original(clazz)
        sizes = tuple(len(vars(k)) for k in clazz.__mro__)
        found = remembered.get(clazz)
        if found is None or found[0] != sizes:
            found = (sizes, original(clazz))
            remembered[clazz] = found
        return list(found[1])

    setattr(responses, "method_names_from_class", method_names_from_class)  # noqa: B010


def _remembering_dispatcher(create_app: Callable[[Any], Any]) -> WsgiApp:
    """moto's dispatcher of requests to its service apps, remembering which backend serves a
    host. moto finds it anew for every request, under one lock for the whole server: it lists
    its own package directory (``os.listdir`` and one ``stat`` per service, about 200) and
    tries its URL patterns, so concurrent requests wait for one another there. Both only
    depend on the host name and on the installed moto, so the first answer for a host is the
    answer for every later request to it."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class RememberingDispatcher(DomainDispatcherApplication):
        def __init__(self, create: Callable[[Any], Any]) -> None:
            super().__init__(create)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:  # moto calls this under its own lock
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    dispatcher: WsgiApp = RememberingDispatcher(create_app)
    return dispatcher


def _request_handler(middleware: Middleware) -> Any:
    """moto's request handler, keeping connections open and timing each request.

    werkzeug's development server closes the connection after every answer (it cannot tell
    the end of a request body from the next request), so every call paid a TCP connection,
    and the server a new thread, on top of what it asked for: measured with 3,000
    ``DescribeEndpointConfig`` calls on 16 threads, 1.9-2.1 ms of the simulator's CPU per call
    against 1.2-1.3 ms kept open, and 1.6-1.7 against 1.3-1.5 ms of the client's. AWS keeps
    connections open, and so does boto3. Here a request whose body has a ``Content-Length``
    is read whole before the application sees it, and its answer is sent with its own
    length, so the connection can carry the next request; anything else (a chunked body,
    ``Expect``, ``HEAD``) goes through werkzeug's own handling, which closes it."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.exceptions import InternalServerError

    werkzeug_log = logging.getLogger("werkzeug")

    class TimedRequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave in one write anyway

        def handle_one_request(self) -> None:
            self.environ = {}  # the request's, once werkzeug or run_wsgi has made it
            self._started: tuple[float, float] | None = None
            super().handle_one_request()
            operation = self.environ.get(OPERATION_KEY)
            if operation is not None and self._started is not None:
                wall, cpu = self._started
                middleware.note(
                    str(operation),
                    Served(
                        requests=1,
                        request_s=time.perf_counter() - wall,
                        request_cpu_s=time.thread_time() - cpu,
                    ),
                )

        def parse_request(self) -> bool:
            # the request line has arrived: from here on the request is being served (the
            # wait for it on an open connection is not)
            self._started = time.perf_counter(), time.thread_time()
            return bool(super().parse_request())

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # werkzeug formats each request's line (its path decoded, a date) before its
            # logger drops it: 16 % of the simulator's CPU per DescribeEndpointConfig.
            if werkzeug_log.isEnabledFor(logging.INFO):
                super().log_request(code, size)

        def run_wsgi(self) -> None:
            length = self.headers.get("Content-Length")
            if (
                self.command == "HEAD"
                or self.headers.get("Transfer-Encoding")
                or self.headers.get("Expect")
                or (length is not None and not length.isdigit())
            ):
                self.close_connection = True
                super().run_wsgi()
                return
            self.environ = environ = self.make_environ()
            size = int(length or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(size) if size else b"")
            answered: list[Any] = []
            chunks: list[bytes] = []

            def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                answered[:] = [status, headers]
                return chunks.append

            try:
                answer = self.server.app(environ, start_response)
                try:
                    chunks.extend(answer)
                finally:
                    close = getattr(answer, "close", None)
                    if close is not None:
                        close()
            except Exception:  # as werkzeug does: a 500, the error logged, then closed
                werkzeug_log.exception("Error on request")
                self.close_connection = True
                chunks.clear()
                chunks.extend(InternalServerError()(environ, start_response))
            body = b"".join(chunks)
            status, headers = answered
            code, _, reason = str(status).partition(" ")
            try:
                self.send_response(int(code), reason)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self._headers_buffer.append(b"\r\n" + body)
                self.flush_headers()
            except OSError:  # the client gave up (a read time-out) and closed its end
                self.close_connection = True

    return TimedRequestHandler


class Simulator:
    """moto's server on a free loopback port, in a background thread."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        install_behaviours()
        self.behaviours = BEHAVIOURS
        self.middleware = Middleware(_remembering_dispatcher(create_backend_app))

        self._server = make_server(
            "127.0.0.1",
            0,
            self.middleware,
            threaded=True,
            request_handler=_request_handler(self.middleware),
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = threading.Lock()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget every resource (moto's reset API) and the request counts."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.middleware.clear()
        self.middleware.faults_sent.clear()
        self.middleware.fault = None
        self.middleware.latency_s = 0.0
        self.behaviours.incomplete_metrics = None
        self.behaviours.lowercase_tagging_arns = False
        self.behaviours.price_list.mode = "answer"
        INFERENCE_COMPONENTS.clear()
        WARM_POOLS.clear()
        self.behaviours.indexed_metrics = False
        self.behaviours.fast_serialization = False

    def env(self, region: str = "us-east-1") -> dict[str, str]:
        """Environment variables that point the boto3 chain at this simulator."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": region,
        }

    @contextmanager
    def environment(self, region: str = "us-east-1") -> Iterator[None]:
        """Set :meth:`env` in ``os.environ`` for the duration of the block."""
        saved = {k: os.environ.get(k) for k in [*self.env(region), "AWS_PROFILE"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(self.env(region))
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def client(self, service: str, region: str, account: str = ACCOUNT_ID) -> Any:
        """A plain boto3 client against the simulator, for seeding (cached); in another
        ``account`` through an assumed role, as moto keeps one state per account."""
        key = (service, region, account)
        with self._clients_lock:
            if key not in self._clients:
                credentials: dict[str, str] = {
                    "aws_access_key_id": "testing",
                    "aws_secret_access_key": "testing",
                }
                if account != ACCOUNT_ID:
                    sts = boto3.client(
                        "sts",
                        region_name=region,
                        endpoint_url=self.url,
                        aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                    )
                    assumed = sts.assume_role(
                        RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="seed"
                    )["Credentials"]
                    credentials = {
                        "aws_access_key_id": assumed["AccessKeyId"],
                        "aws_secret_access_key": assumed["SecretAccessKey"],
                        "aws_session_token": assumed["SessionToken"],
                    }
                self._clients[key] = boto3.client(  # type: ignore[call-overload]
                    service, region_name=region, endpoint_url=self.url, **credentials
                )
            return self._clients[key]


@dataclass(frozen=True)
class VariantSpec:
    """A production variant to create: name, instance type and instance count; or, with
    ``serverless_memory_mb``, a serverless variant (with ``provisioned_concurrency``)."""

    name: str
    instance_type: str = "ml.m5.large"
    count: int = 1
    serverless_memory_mb: int | None = None
    provisioned_concurrency: int = 0

    def production_variant(self, model: str) -> dict[str, Any]:
        """The ``ProductionVariants`` item of CreateEndpointConfig for this variant."""
        variant: dict[str, Any] = {"VariantName": self.name, "ModelName": model}
        if self.serverless_memory_mb is None:
            variant["InstanceType"] = self.instance_type
            variant["InitialInstanceCount"] = max(1, self.count)
            return variant
        serverless: dict[str, Any] = {
            "MemorySizeInMB": self.serverless_memory_mb,
            "MaxConcurrency": max(1, self.provisioned_concurrency),
        }
        if self.provisioned_concurrency:
            serverless["ProvisionedConcurrency"] = self.provisioned_concurrency
        variant["ServerlessConfig"] = serverless
        return variant


def _sagemaker_backend(region: str, account: str = ACCOUNT_ID) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


class Fleet:
    """Seeds SageMaker resources, metrics and topics into a :class:`Simulator`."""

    def __init__(self, sim: Simulator, account: str = ACCOUNT_ID) -> None:
        self.sim = sim
        self.account = account
        self._models: set[tuple[str, str]] = set()

    def _model(self, region: str, name: str = "demo-model") -> str:
        if (region, name) not in self._models:
            self.sim.client("sagemaker", region, self.account).create_model(
                ModelName=name,
                ExecutionRoleArn=role_in(region),
                PrimaryContainer={"Image": image_in(region)},
            )
            self._models.add((region, name))
        return name

    def endpoint(
        self,
        region: str,
        name: str,
        variants: Iterable[VariantSpec] = (VariantSpec("AllTraffic"),),
        tags: dict[str, str] | None = None,
        changed: datetime | None = None,
        asynchronous: bool = False,
    ) -> str:
        """Create an InService endpoint (own configuration); return its ARN.

        ``changed`` backdates its creation and last modification, and its configuration's
        creation. A variant with count 0
        is created with one instance, then scaled to 0 in the simulator's state.
        ``asynchronous`` gives the configuration an ``AsyncInferenceConfig``.
        """
        specs = list(variants)
        model = self._model(region)
        sagemaker = self.sim.client("sagemaker", region, self.account)
        extra: dict[str, Any] = {}
        if asynchronous:
            extra["AsyncInferenceConfig"] = {
                "OutputConfig": {"S3OutputPath": f"s3://{name}-results/out/"}
            }
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[v.production_variant(model) for v in specs],
            **extra,
        )
        arn: str = sagemaker.create_endpoint(
            EndpointName=name,
            EndpointConfigName=f"{name}-config",
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )["EndpointArn"]
        backend = _sagemaker_backend(region, self.account)
        endpoint = backend.endpoints[name]
        if changed is not None:
            endpoint.creation_time = endpoint.last_modified_time = _naive_utc(changed)
            backend.endpoint_configs[f"{name}-config"].creation_time = _naive_utc(changed)
        counts = {v.name: v.count for v in specs}
        for variant in endpoint.production_variants:
            if counts.get(variant["VariantName"]) == 0:
                variant["CurrentInstanceCount"] = 0
                variant["DesiredInstanceCount"] = 0
        return arn

    def invocations(
        self, region: str, endpoint: str, variant: str, points: Iterable[tuple[datetime, float]]
    ) -> None:
        """Publish ``Invocations`` datapoints (time, value) for one variant."""
        data = [
            {
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": variant},
                ],
                "Timestamp": moment,
                "Value": value,
                "Unit": "None",
            }
            for moment, value in points
        ]
        cloudwatch = self.sim.client("cloudwatch", region, self.account)
        for offset in range(0, len(data), 1000):
            cloudwatch.put_metric_data(
                Namespace="AWS/SageMaker", MetricData=data[offset : offset + 1000]
            )

    def inference_component(
        self,
        region: str,
        endpoint: str,
        name: str,
        copies: int = 1,
        changed: datetime | None = None,
        status: str = "InService",
    ) -> str:
        """Add an inference component on ``endpoint`` (kept by the simulator); its ARN."""
        arn = f"arn:aws:sagemaker:{region}:{self.account}:inference-component/{name}"
        moment = _naive_utc(changed or datetime.now(timezone.utc))
        INFERENCE_COMPONENTS.setdefault((self.account, region), {})[name] = {
            "InferenceComponentName": name,
            "InferenceComponentArn": arn,
            "EndpointName": endpoint,
            "EndpointArn": f"arn:aws:sagemaker:{region}:{self.account}:endpoint/{endpoint}",
            "VariantName": "AllTraffic",
            "InferenceComponentStatus": status,
            "CreationTime": moment,
            "LastModifiedTime": moment,
            "RuntimeConfig": {"DesiredCopyCount": copies, "CurrentCopyCount": copies},
        }
        return arn

    def metric(
        self,
        region: str,
        metric: str,
        dimensions: dict[str, str],
        points: Iterable[tuple[datetime, float]],
        namespace: str = "AWS/SageMaker",
    ) -> None:
        """Publish datapoints (time, value) of any metric with the given dimensions."""
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": moment,
                "Value": value,
                "Unit": "None",
            }
            for moment, value in points
        ]
        cloudwatch = self.sim.client("cloudwatch", region, self.account)
        for offset in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[offset : offset + 1000])

    def notebook(
        self,
        region: str,
        name: str,
        instance_type: str = "ml.t3.medium",
        status: str = "InService",
        lifecycle_config: str | None = None,
        tags: dict[str, str] | None = None,
        changed: datetime | None = None,
    ) -> str:
        """Create a notebook instance (and its lifecycle configuration); return its ARN."""
        sagemaker = self.sim.client("sagemaker", region, self.account)
        extra: dict[str, Any] = {}
        if lifecycle_config is not None:
            with contextlib.suppress(sagemaker.exceptions.ClientError):  # already created
                sagemaker.create_notebook_instance_lifecycle_config(
                    NotebookInstanceLifecycleConfigName=lifecycle_config,
                    OnStart=[{"Content": "IyEvYmluL2Jhc2gK"}],
                )
            extra["LifecycleConfigName"] = lifecycle_config
        arn: str = sagemaker.create_notebook_instance(
            NotebookInstanceName=name,
            InstanceType=instance_type,
            RoleArn=role_in(region),
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            **extra,
        )["NotebookInstanceArn"]
        if status == "Stopped":
            sagemaker.stop_notebook_instance(NotebookInstanceName=name)
        if changed is not None:
            instance = _sagemaker_backend(region, self.account).notebook_instances[name]
            instance.creation_time = instance.last_modified_time = _naive_utc(changed)
        return arn

    def training_job(
        self,
        region: str,
        name: str,
        ended: datetime,
        instance_type: str = "ml.m5.large",
        count: int = 1,
        warm_pool: str | None = "Available",
        keep_alive_s: int = 3600,
        tags: dict[str, str] | None = None,
    ) -> str:
        """A completed training job that ended at ``ended`` (started an hour before), with a
        warm pool in state ``warm_pool`` (None: none) kept ``keep_alive_s``; return its ARN."""
        sagemaker = self.sim.client("sagemaker", region, self.account)
        config: dict[str, Any] = {
            "InstanceType": instance_type,
            "InstanceCount": count,
            "VolumeSizeInGB": 30,
        }
        if warm_pool is not None:
            config["KeepAlivePeriodInSeconds"] = keep_alive_s
        arn: str = sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": image_in(region), "TrainingInputMode": "File"},
            RoleArn=role_in(region),
            OutputDataConfig={"S3OutputPath": f"s3://{name}-output/"},
            ResourceConfig=config,
            StoppingCondition={"MaxRuntimeInSeconds": 86400},
            Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        )["TrainingJobArn"]
        job = _sagemaker_backend(region, self.account).training_jobs[name]
        job.creation_time = job.training_start_time = _naive_utc(ended - timedelta(hours=1))
        job.training_end_time = job.last_modified_time = _naive_utc(ended)
        if warm_pool is not None:
            WARM_POOLS[(self.account, region, name)] = {"Status": warm_pool}
        return arn

    def warm_pool(self, region: str, name: str) -> str | None:
        """The status of a training job's warm pool in the simulator (None: it has none)."""
        pool = WARM_POOLS.get((self.account, region, name))
        return None if pool is None else str(pool["Status"])

    def set_warm_pool(self, region: str, name: str, status: str) -> None:
        """Change a warm pool's status, as SageMaker does when a job reuses it."""
        WARM_POOLS[(self.account, region, name)] = {"Status": status}

    def topic(self, region: str, name: str) -> str:
        """Create an SNS topic; return its ARN."""
        arn: str = self.sim.client("sns", region, self.account).create_topic(Name=name)["TopicArn"]
        return arn

    def published(self, topic_arn: str) -> list[dict[str, Any]]:
        """Messages published to a topic, as the simulator recorded them."""
        from moto.sns.models import sns_backends

        region = topic_arn.split(":")[3]
        topic = sns_backends[ACCOUNT_ID][region].topics[topic_arn]
        return [
            {
                "MessageId": message_id,
                "Message": message,
                "Subject": subject,
                "MessageAttributes": {
                    name: value.get("Value", value.get("StringValue"))
                    for name, value in (attributes or {}).items()
                },
            }
            for message_id, message, subject, attributes, *_ in topic.sent_notifications
        ]


def hours_ago(now: datetime, hours: float) -> datetime:
    """``now`` minus ``hours``."""
    return now - timedelta(hours=hours)
