"""AWS behaviours moto lacks that SageSaver's decisions depend on, added to moto's own
services by :func:`install_behaviours` (once per process): inference components, training
jobs' warm pools and ``UpdateTrainingJob``, ``GetMetricData`` answers that are not
``Complete`` and a tagging API answering with lower-case ARNs (both switched on by a test),
``AddTags`` replacing a key's value, ``DescribeRegions`` of the caller's partition only, and
``Search`` for endpoints answering in pages. Each is a small, named extension of a moto
service's responses or backend, as the project's DESIGN.md allows for what moto lacks; nothing
here changes how moto reads, routes or writes requests (the benchmarks' speed-ups that do live
in ``benchmarks/fast_moto``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sagesaver.demo.price_list import PriceList
from sagesaver.demo.search import endpoint_search_page, simple_endpoint_search


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


@dataclass
class AwsBehaviours:
    """AWS behaviours moto lacks that SageSaver's decisions depend on. Off by default, but
    for the Price List stand-in, which answers unless told otherwise."""

    incomplete_metrics: IncompleteMetrics | None = None
    # The tagging API answering with SageMaker ARNs in lower case, as AWS has done.
    lowercase_tagging_arns: bool = False
    price_list: PriceList = field(default_factory=PriceList)


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
        if not simple_endpoint_search(params):
            return search(self)
        return ActionResult(endpoint_search_page(self.sagemaker_backend, params))

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
