"""AWS behaviours moto lacks that SageSaver's decisions depend on, added at the wire.

Each behaviour reads the request in its AWS protocol and either answers it itself, or asks
moto's own server (as a client would, with the request's credentials) and rewrites moto's
answer. Nothing here imports moto: a moto release may change its internals without changing
these answers, and nothing of moto is patched (the benchmarks' speed-ups that do patch it live
in ``benchmarks/fast_moto``).

Always on:
- inference components (``ListInferenceComponents``, ``DescribeInferenceComponent``: moto has
  none), kept in :data:`INFERENCE_COMPONENTS` by (account, region) and name;
- training jobs' warm pools (:data:`WARM_POOLS`): ``WarmPoolStatus`` added to
  ``DescribeTrainingJob`` and ``ListTrainingJobs`` (and ``WarmPoolStatusEquals`` honoured),
  and ``UpdateTrainingJob``, which moto lacks: ``KeepAlivePeriodInSeconds`` 0 terminates an
  ``Available`` pool; updating a pool that is no longer ``Available`` or ``InUse``
  (``Terminated``, ``Reused``) is refused with a ``ValidationException``;
- ``AddTags`` replacing the value of a key the resource already has (moto appends a second
  tag with the same key);
- ``DescribeRegions`` answering with the caller's partition's regions only (moto lists every
  partition's);
- ``Search`` for endpoints answering in pages (``search.py``);
- the Price List stand-in (``price_list.py``), unless told otherwise;
- SageMaker Studio's user profiles, spaces and apps, ``UpdateDomain`` and the tags of
  profiles, spaces and apps (``studio.py``);
- Lambda's ``Invoke`` of the functions registered with Python handlers (``functions.py``).

- what parking takes to 0 (``scaling.py``): refusals of 0 instances where AWS has none,
  inference components' copies and their scalable targets.

Switched on by a test: ``GetMetricData`` answers that are not ``Complete``
(:class:`IncompleteMetrics`), and a tagging API answering with lower-case SageMaker ARNs.
"""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sagesaver.demo import map_tolerance, metric_data
from sagesaver.demo.functions import Functions, invoked_function, is_invoke
from sagesaver.demo.metric_data import IncompleteMetrics
from sagesaver.demo.price_list import PriceList
from sagesaver.demo.scaling import SCALING
from sagesaver.demo.scaling import handlers as scaling_handlers
from sagesaver.demo.search import EndpointSearch, SearchRefused, records_of, simple_endpoint_search
from sagesaver.demo.studio import HANDLERS as STUDIO_HANDLERS
from sagesaver.demo.studio import STUDIO, domain_tags, is_studio_arn, studio_tags
from sagesaver.demo.wire import (
    JSON_1_1,
    Answer,
    Environ,
    StartResponse,
    WsgiApp,
    call,
    error_answer,
    json_answer,
    read_body,
    region_of,
    request_for,
    service_of,
)

# By (account, region) and name: what ListInferenceComponents and DescribeInferenceComponent
# answer from.
INFERENCE_COMPONENTS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
# By (account, region, job name): each job's warm pool status (``Status`` and what AWS gives
# with it) and, once UpdateTrainingJob set it, the pool's keep-alive period.
WARM_POOLS: dict[tuple[str, str, str], dict[str, Any]] = {}
KEEP_ALIVE = "KeepAlivePeriodInSeconds"
_LIVE_POOLS = ("Available", "InUse")
_PAGE = 100
_PAGED_TOKEN = "sagesaver-simulator-next-page"
_ACCOUNT_IN_XML = re.compile(rb"<Account>(\d{12})</Account>")
_KEY_IN_SCOPE = re.compile(r"Credential=([^/]+)/")
_ITEM = re.compile(rb"<item>(.*?)</item>", re.S)
_REGION_NAME = re.compile(rb"<regionName>([^<]*)</regionName>")

Handler = Callable[["Request"], Answer]


@dataclass
class Request:
    """One request to a behaviour: its operation and environ, and moto's server to ask."""

    operation: str
    environ: Environ
    moto: WsgiApp
    behaviours: AwsBehaviours

    @property
    def region(self) -> str:
        """The region the request was signed for."""
        return region_of(self.environ)

    def params(self) -> dict[str, Any]:
        """The JSON body's parameters."""
        parsed: dict[str, Any] = json.loads(read_body(self.environ) or b"{}")
        return parsed

    def forward(self) -> Answer:
        """moto's answer to the request as it is."""
        read_body(self.environ)  # whatever read it before, moto reads it from the start
        return call(self.moto, self.environ)

    def sagemaker(self, operation: str, params: dict[str, Any]) -> Answer:
        """moto's answer to another SageMaker call with this request's credentials."""
        body = json.dumps(params).encode()
        made = request_for(self.environ, "sagemaker", body, JSON_1_1, f"SageMaker.{operation}")
        return call(self.moto, made)

    @property
    def account(self) -> str:
        """The account of the request's credentials, as moto's STS knows it (remembered per
        access key)."""
        key_match = _KEY_IN_SCOPE.search(str(self.environ.get("HTTP_AUTHORIZATION", "")))
        key = key_match.group(1) if key_match else ""
        return self.behaviours.account_of(key, self._ask_account)

    def _ask_account(self) -> str:
        body = urlencode({"Action": "GetCallerIdentity", "Version": "2011-06-15"}).encode()
        made = request_for(self.environ, "sts", body, "application/x-www-form-urlencoded")
        found = _ACCOUNT_IN_XML.search(call(self.moto, made).body)
        if found is None:
            raise RuntimeError("the simulator's STS did not say the caller's account")
        return found.group(1).decode()


@dataclass
class AwsBehaviours:
    """AWS behaviours moto lacks. Off by default, but for those always on (module docstring)."""

    incomplete_metrics: IncompleteMetrics | None = None
    # The tagging API answering with SageMaker ARNs in lower case, as AWS has done.
    lowercase_tagging_arns: bool = False
    price_list: PriceList = field(default_factory=PriceList)
    # Search for endpoints paged here (the benchmarks' simulator pages it inside moto).
    page_endpoint_search: bool = True
    endpoint_search: EndpointSearch = field(default_factory=EndpointSearch)
    # Lambda functions served by Python callables (Invoke answered here: ``functions.py``).
    functions: Functions = field(default_factory=Functions)
    # Executions run by moto's interpreter (``Simulator.execute_state_machines``): Distributed
    # Maps' definitions rewritten for their failure threshold (``map_tolerance.py``), and
    # each rewritten state machine's definition as given, by ARN.
    executions: bool = False
    definitions: dict[str, str] = field(default_factory=dict)
    _accounts: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def account_of(self, access_key: str, ask: Callable[[], str]) -> str:
        """The account of ``access_key`` (``ask`` moto's STS the first time)."""
        with self._lock:
            found = self._accounts.get(access_key)
        if found is None:
            found = ask()
            with self._lock:
                self._accounts[access_key] = found
        return found

    def reset(self) -> None:
        """Everything off and forgotten, as after moto's reset."""
        self.incomplete_metrics = None
        self.lowercase_tagging_arns = False
        self.price_list.mode = "answer"
        self.endpoint_search.clear()
        self.functions.reset()
        self.executions = False
        self.definitions.clear()
        with self._lock:
            self._accounts.clear()
        INFERENCE_COMPONENTS.clear()
        SCALING.clear()
        WARM_POOLS.clear()
        STUDIO.clear()

    def answer(
        self, operation: str, environ: Environ, start_response: StartResponse, moto: WsgiApp
    ) -> Iterable[bytes]:
        """The answer to one request: a behaviour's, or moto's own."""
        if operation == "GetProducts":
            fault = self.price_list.refusal(region_of(environ))
            if fault is None:
                return self.price_list.answer(environ, start_response)
            return error_answer(environ, fault.code, fault.message, fault.status).send(
                start_response
            )
        if service_of(environ) == "lambda" and is_invoke(environ):
            invoked = invoked_function(environ)
            if invoked is not None and invoked.name == map_tolerance.FUNCTION:
                tolerance = map_tolerance.answer(environ, read_body(environ), moto)
                return tolerance.send(start_response)
            request = Request(operation, environ, moto, self)
            served = self.functions.answer(environ, request.region, request.account)
            if served is not None:
                return served.send(start_response)
        handler = _HANDLERS.get((service_of(environ), operation))
        if handler is None:
            return moto(environ, start_response)
        return handler(Request(operation, environ, moto, self)).send(start_response)


BEHAVIOURS = AwsBehaviours()


def _validation(request: Request, message: str) -> Answer:
    return error_answer(request.environ, "ValidationException", message)


def _list_inference_components(request: Request) -> Answer:
    params = request.params()
    found = list(INFERENCE_COMPONENTS.get((request.account, request.region), {}).values())
    endpoint, status = params.get("EndpointNameEquals"), params.get("StatusEquals")
    found = [
        c
        for c in found
        if (endpoint is None or c["EndpointName"] == endpoint)
        and (status is None or c["InferenceComponentStatus"] == status)
    ]
    found.sort(key=lambda c: c["InferenceComponentName"])
    start = int(params.get("NextToken") or 0)
    size = int(params.get("MaxResults") or _PAGE)
    page = found[start : start + size]
    summaries = [{k: v for k, v in c.items() if k != "RuntimeConfig"} for c in page]
    answer: dict[str, Any] = {"InferenceComponents": summaries}
    if start + size < len(found):
        answer["NextToken"] = str(start + size)
    return json_answer(answer)


def _describe_inference_component(request: Request) -> Answer:
    name = request.params().get("InferenceComponentName")
    found = INFERENCE_COMPONENTS.get((request.account, request.region), {}).get(str(name))
    if found is None:
        return _validation(request, f"Could not find inference component '{name}'.")
    return json_answer(found)


def _with_warm_pool(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    key = (request.account, request.region, str(item.get("TrainingJobName", "")))
    pool = WARM_POOLS.get(key)
    if pool is None:
        return item
    item = {**item, "WarmPoolStatus": {k: v for k, v in pool.items() if k != KEEP_ALIVE}}
    if KEEP_ALIVE in pool and isinstance(item.get("ResourceConfig"), dict):
        item["ResourceConfig"] = {**item["ResourceConfig"], KEEP_ALIVE: pool[KEEP_ALIVE]}
    return item


def _describe_training_job(request: Request) -> Answer:
    answer = request.forward()
    if answer.status != 200:
        return answer
    described = _with_warm_pool(request, json.loads(answer.body))
    return answer.with_body(json.dumps(described).encode())


def _list_training_jobs(request: Request) -> Answer:
    wanted = request.params().get("WarmPoolStatusEquals")
    answer = request.forward()
    if answer.status != 200:
        return answer
    listing = json.loads(answer.body)
    summaries = [_with_warm_pool(request, s) for s in listing.get("TrainingJobSummaries", [])]
    if wanted is not None:
        summaries = [
            s for s in summaries if (s.get("WarmPoolStatus") or {}).get("Status") == wanted
        ]
    listing["TrainingJobSummaries"] = summaries
    return answer.with_body(json.dumps(listing).encode())


def _update_training_job(request: Request) -> Answer:
    params = request.params()
    name = str(params.get("TrainingJobName"))
    described = request.sagemaker("DescribeTrainingJob", {"TrainingJobName": name})
    if described.status != 200:
        return _validation(request, f"Requested resource not found: training job {name}")
    keep = (params.get("ResourceConfig") or {}).get(KEEP_ALIVE)
    if keep is not None:
        pool = WARM_POOLS.get((request.account, request.region, name))
        if pool is None or pool["Status"] not in _LIVE_POOLS:
            status = "none" if pool is None else pool["Status"]
            return _validation(
                request,
                f"The warm pool of training job {name} is {status}: its keep-alive period "
                "cannot be updated",
            )
        pool[KEEP_ALIVE] = int(keep)
        if int(keep) == 0 and pool["Status"] == "Available":
            pool["Status"] = "Terminated"
    return json_answer({"TrainingJobArn": json.loads(described.body)["TrainingJobArn"]})


def _add_tags_replacing(request: Request) -> Answer:
    params = request.params()
    if is_studio_arn(str(params.get("ResourceArn", ""))):
        return studio_tags(request)
    keys = [t["Key"] for t in params.get("Tags") or [] if "Key" in t]
    if keys and params.get("ResourceArn"):
        request.sagemaker("DeleteTags", {"ResourceArn": params["ResourceArn"], "TagKeys": keys})
    return request.forward()


def _search(request: Request) -> Answer:
    params = request.params()
    if not request.behaviours.page_endpoint_search or not simple_endpoint_search(params):
        return request.forward()

    def records() -> list[dict[str, Any]]:
        everything = request.sagemaker("Search", {"Resource": "Endpoint"})
        if everything.status != 200:
            raise SearchRefused(everything.body.decode("utf-8", "replace"))
        return records_of(everything.body)

    try:
        return json_answer(request.behaviours.endpoint_search.page(params, records))
    except SearchRefused as refused:
        return _validation(request, str(refused))


def _lowercase_arns(request: Request) -> Answer:
    answer = request.forward()
    if not request.behaviours.lowercase_tagging_arns or answer.status != 200:
        return answer
    listing = json.loads(answer.body)
    listing["ResourceTagMappingList"] = [
        {**m, "ResourceARN": str(m["ResourceARN"]).lower()}
        for m in listing.get("ResourceTagMappingList", [])
    ]
    return answer.with_body(json.dumps(listing).encode())


def _regions_of_own_partition(request: Request) -> Answer:
    from sagesaver.core.partitions import partition_of

    answer = request.forward()
    if answer.status != 200:
        return answer
    own = partition_of(request.region or "us-east-1")

    def kept(item: re.Match[bytes]) -> bytes:
        name = _REGION_NAME.search(item.group(1))
        if name is None or partition_of(name.group(1).decode()) == own:
            return item.group(0)
        return b""

    return answer.with_body(_ITEM.sub(kept, answer.body))


def _degraded_metric_data(request: Request) -> Answer:
    rule = request.behaviours.incomplete_metrics
    if rule is None:
        return request.forward()
    protocol = metric_data.protocol_of(request.environ)
    if protocol is None:  # the query protocol (XML): not rewritten
        return request.forward()
    params = protocol.read(read_body(request.environ))
    answer = request.forward()
    if answer.status != 200:
        return answer
    degraded = metric_data.degrade(protocol.read(answer.body), params, rule, _PAGED_TOKEN)
    return answer.with_body(protocol.write(degraded))


def _definition_for_moto(request: Request) -> Answer:
    """CreateStateMachine and UpdateStateMachine, the definition rewritten for moto's
    interpreter when the simulator executes state machines (``map_tolerance.py``)."""
    from sagesaver.core.partitions import partition_of

    params = request.params()
    given = params.get("definition")
    if not request.behaviours.executions or not isinstance(given, str):
        return request.forward()
    changed = map_tolerance.rewritten(given, partition_of(request.region or "us-east-1"))
    if changed == given:
        return request.forward()
    body = json.dumps({**params, "definition": changed}).encode()
    request.environ["wsgi.input"] = io.BytesIO(body)
    request.environ["CONTENT_LENGTH"] = str(len(body))
    answer = call(request.moto, request.environ)
    if answer.status == 200:
        arn = params.get("stateMachineArn") or json.loads(answer.body).get("stateMachineArn")
        with request.behaviours._lock:
            request.behaviours.definitions[str(arn)] = given
    return answer


def _execution_named(request: Request) -> Answer:
    """StartExecution without a ``name``: AWS names the execution with a fresh UUID (moto
    names every such execution "None", so a second one is refused as a duplicate)
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html)."""
    params = request.params()
    if params.get("name"):
        return request.forward()
    body = json.dumps({**params, "name": str(uuid.uuid4())}).encode()
    request.environ["wsgi.input"] = io.BytesIO(body)
    request.environ["CONTENT_LENGTH"] = str(len(body))
    return call(request.moto, request.environ)


def _definition_as_given(request: Request) -> Answer:
    """DescribeStateMachine with the definition as it was given, not as rewritten."""
    arn = str(request.params().get("stateMachineArn", ""))
    answer = request.forward()
    given = request.behaviours.definitions.get(arn)
    if given is None or answer.status != 200:
        return answer
    described = json.loads(answer.body)
    described["definition"] = given
    return answer.with_body(json.dumps(described).encode())


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("sagemaker", "ListInferenceComponents"): _list_inference_components,
    ("sagemaker", "DescribeInferenceComponent"): _describe_inference_component,
    ("sagemaker", "DescribeTrainingJob"): _describe_training_job,
    ("sagemaker", "ListTrainingJobs"): _list_training_jobs,
    ("sagemaker", "UpdateTrainingJob"): _update_training_job,
    ("sagemaker", "AddTags"): _add_tags_replacing,
    ("sagemaker", "Search"): _search,
    ("tagging", "GetResources"): _lowercase_arns,
    ("ec2", "DescribeRegions"): _regions_of_own_partition,
    ("monitoring", "GetMetricData"): _degraded_metric_data,
    ("states", "CreateStateMachine"): _definition_for_moto,
    ("states", "UpdateStateMachine"): _definition_for_moto,
    ("states", "DescribeStateMachine"): _definition_as_given,
    ("states", "StartExecution"): _execution_named,
}


def _tags_of_studio_or_moto(request: Request) -> Answer:
    resource_arn = str(request.params().get("ResourceArn", ""))
    if is_studio_arn(resource_arn):
        return studio_tags(request)
    if request.operation == "ListTags" and ":domain/" in resource_arn:
        return domain_tags(request)
    return request.forward()


_HANDLERS.update({("sagemaker", op): handler for op, handler in STUDIO_HANDLERS.items()})
_HANDLERS[("sagemaker", "ListTags")] = _tags_of_studio_or_moto
_HANDLERS[("sagemaker", "DeleteTags")] = _tags_of_studio_or_moto
_HANDLERS.update(scaling_handlers(INFERENCE_COMPONENTS))
