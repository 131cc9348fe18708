"""The compiled writer of the simulator's biggest answers gives moto's own answers, byte for byte
(status, headers and body), and leaves to moto what it does not handle."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fast_moto import answer_writer
from benchmarks.fast_moto.flags import SPEEDUPS
from benchmarks.fast_moto.simulator import FastSimulator, install_speedups
from sagesaver.demo.simulator import Fleet, IncompleteMetrics, VariantSpec

EAST = "us-east-1"
# the simulator's Search snapshots, moto's ListMetrics tokens (uuid4)
TOKEN = re.compile(rb"endpoints-after-\d+-[0-9a-f]{32}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The operations whose answers the compiled writer built (not moto's serializer)."""
    install_speedups()
    built: list[str] = []
    original = answer_writer.written_result

    def counted(serializer: Any, result: Any) -> Any:
        answer = original(serializer, result)
        built.append(serializer.operation_model.name)
        return answer

    monkeypatch.setattr(answer_writer, "written_result", counted)
    yield built


# --- in-process: moto's serializer and the writer on the same result -----------------------


def _serializer(service: str, operation: str) -> Any:
    from moto.core.serialize import JSONSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model

    return JSONSerializer(
        operation_model=get_service_model(service).operation_model(operation),
        value_picker=XFormedAttributePicker(response_transformers={}),
    )


def _both(
    service: str, operation: str, result: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """moto's serialized answer and the writer's, each for a fresh copy of the result."""
    answers = []
    for fast in (False, True):
        monkeypatch.setattr(SPEEDUPS, "fast_serialization", fast)
        answers.append(_serializer(service, operation).serialize(result()))
    return answers[0], answers[1]


# moto keeps naive UTC times
MOMENT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc).replace(tzinfo=None)
naive_times = st.builds(
    lambda seconds, micro: MOMENT - timedelta(seconds=seconds, microseconds=micro),
    st.integers(0, 86400 * 500),
    st.sampled_from([0, 0, 1, 999, 1000, 1500, 999_999]),
)
metric_values = st.one_of(
    st.sampled_from([0.0, 1.5, 1e-7, 10**18, 2**53 + 1, -0.0, 3, 1e300]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**20), 10**20),
)
messages = st.lists(
    st.fixed_dictionaries({"code": st.sampled_from(["Warning", "Error"]), "value": st.text()}),
    max_size=2,
)


@st.composite
def metric_data_results(draw: st.DrawFn) -> dict[str, Any]:
    points = draw(st.integers(0, 4))
    result: dict[str, Any] = {
        "id": draw(st.from_regex(r"q[0-9]{1,4}", fullmatch=True)),
        "label": draw(st.text(max_size=20)),
        "values": [draw(metric_values) for _ in range(points)],
        "timestamps": [draw(naive_times) for _ in range(points)],
        "status_code": draw(st.sampled_from(["Complete", "PartialData", "InternalError"])),
    }
    if draw(st.booleans()):
        result["messages"] = draw(messages)
    if draw(st.booleans()):  # moto's answers lack a label sometimes
        del result["label"]
    return result


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    results=st.lists(metric_data_results(), max_size=8),
    token=st.one_of(st.none(), st.text(min_size=1, max_size=12)),
    top_messages=st.one_of(st.none(), messages),
)
def test_get_metric_data_is_written_as_moto_writes_it(
    results: list[dict[str, Any]],
    token: str | None,
    top_messages: list[dict[str, str]] | None,
    monkeypatch: pytest.MonkeyPatch,
    written: list[str],
) -> None:
    def answer() -> dict[str, Any]:
        built: dict[str, Any] = {"MetricDataResults": [dict(r) for r in results]}
        if token is not None:
            built["NextToken"] = token
        if top_messages is not None:
            built["Messages"] = top_messages
        return built

    written.clear()
    moto, ours = _both("cloudwatch", "GetMetricData", answer, monkeypatch)
    assert ours == moto
    assert written == ["GetMetricData"]


def test_timestamps_and_values_as_moto_writes_them(
    monkeypatch: pytest.MonkeyPatch, written: list[str]
) -> None:
    """The cases named once, so they never depend on what hypothesis draws."""
    aware = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=2)))
    times = [MOMENT, MOMENT.replace(microsecond=1), MOMENT.replace(microsecond=999_999), aware]
    values = [0.0, 1.5, 1e-7, 10**18, 7]

    def answer() -> dict[str, Any]:
        return {
            "MetricDataResults": [
                {"id": "a", "label": "a Sum", "values": values[:4], "timestamps": times},
                {
                    "id": "e",
                    "label": "e",
                    "values": [],
                    "timestamps": [],
                    "status_code": "Complete",
                },
                {"id": "s", "timestamps": ["2026-01-02T03:04:05Z"], "values": [values[4]]},
            ],
            "Messages": [{"code": "c", "value": "v"}],
        }

    moto, ours = _both("cloudwatch", "GetMetricData", answer, monkeypatch)
    assert ours == moto
    assert written == ["GetMetricData"]
    assert '"Values": [0.0, 1.5, 1e-07, 1e+18]' in str(moto["body"])


tags = st.lists(
    st.fixed_dictionaries({"Key": st.text(min_size=1, max_size=8), "Value": st.text(max_size=8)}),
    max_size=3,
)


@st.composite
def endpoint_records(draw: st.DrawFn) -> dict[str, Any]:
    """Endpoint records as moto's ``gen_response_object`` makes them (keys and value types)."""
    created = draw(naive_times)
    variants = []
    for i in range(draw(st.integers(0, 3))):
        variant: dict[str, Any] = {"VariantName": f"v{i}", "CurrentWeight": draw(metric_values)}
        if draw(st.booleans()):
            variant["CurrentServerlessConfig"] = {
                "MemorySizeInMB": draw(st.sampled_from([1024, 2048])),
                "MaxConcurrency": draw(st.integers(1, 20)),
            }
        else:
            variant["CurrentInstanceCount"] = draw(st.integers(0, 4))
            variant["DesiredInstanceCount"] = draw(st.integers(0, 4))
            variant["InstanceType"] = "ml.m5.large"
        if draw(st.booleans()):
            variant["DeployedImages"] = [
                {"SpecifiedImage": "img", "ResolvedImage": "img@sha", "ResolutionTime": created}
            ]
        variants.append(variant)
    record: dict[str, Any] = {
        "EndpointName": draw(st.text(min_size=1, max_size=10)),
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
        "EndpointConfigName": "x-config",
        "ProductionVariants": variants,
        "DataCaptureConfig": draw(st.one_of(st.none(), st.just({}))),
        "EndpointStatus": draw(st.sampled_from(["InService", "Updating"])),
        "FailureReason": None,
        "CreationTime": created,
        "LastModifiedTime": created + timedelta(microseconds=draw(st.integers(0, 10**7))),
        "Tags": draw(tags),
        "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b/out/"}},
    }
    for key in draw(st.lists(st.sampled_from(sorted(record)), max_size=3)):
        record.pop(key, None)
    return record


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(endpoint_records(), max_size=5),
    token=st.one_of(st.none(), st.just("endpoints-after-100-" + "a" * 32)),
)
def test_search_pages_are_written_as_moto_writes_them(
    records: list[dict[str, Any]],
    token: str | None,
    monkeypatch: pytest.MonkeyPatch,
    written: list[str],
) -> None:
    def answer() -> dict[str, Any]:
        page: dict[str, Any] = {"Results": [{"Endpoint": dict(r)} for r in records]}
        if token:
            page["NextToken"] = token
        return page

    written.clear()
    moto, ours = _both("sagemaker", "Search", answer, monkeypatch)
    assert ours == moto
    assert written == ["Search"]


def test_list_metrics_of_moto_objects_is_written_as_moto_writes_it(
    monkeypatch: pytest.MonkeyPatch, written: list[str]
) -> None:
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum

    def answer() -> dict[str, Any]:
        metrics: list[Any] = [
            MetricDatum(
                "AWS/SageMaker",
                "Invocations",
                float(i),
                [{"Name": "EndpointName", "Value": f"e{i}"}, {"Name": "VariantName", "Value": "v"}],
                MOMENT,
                "None",
            )
            for i in range(3)
        ]
        metrics.append(MetricDatum("N", "M", 1.0, [], None))
        metrics.append(
            MetricAggregatedDatum("N", "A", 1, 2, 3, 4, [{"Name": "d", "Value": ""}], MOMENT, None)
        )
        return {"Metrics": metrics, "NextToken": "next"}

    moto, ours = _both("cloudwatch", "ListMetrics", answer, monkeypatch)
    assert ours == moto
    assert written == ["ListMetrics"]
    assert '"Name": "EndpointName"' in str(moto["body"])


# --- what the writer leaves to moto --------------------------------------------------------


def test_what_the_writer_does_not_handle_goes_to_moto(
    monkeypatch: pytest.MonkeyPatch, written: list[str]
) -> None:
    from moto.core.serialize import ResponseSerializer

    walked: list[str] = []
    walk = ResponseSerializer._serialize

    def counted(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        walked.append(shape.name)
        walk(self, serialized, value, shape, key)

    monkeypatch.setattr(ResponseSerializer, "_serialize", counted)
    result = {"id": "q1", "values": [1.0], "timestamps": [MOMENT], "status_code": "Complete"}
    odd = object()

    class Computed:  # a metric whose name is a property: moto's getattr finds it
        namespace = "N"

        @property
        def name(self) -> str:
            return "computed"

    class Aliased:  # moto's ExplicitAlias reads Meta
        class Meta:
            serialization_aliases: ClassVar[dict[str, str]] = {"MetricName": "called"}

        def __init__(self) -> None:
            self.called, self.name, self.dimensions = "aliased", "plain", []

    class Lazy:  # attributes computed on demand
        def __getattr__(self, name: str) -> str:
            return f"lazy {name}"

    cases: list[tuple[str, str, Callable[[], Any]]] = [
        # a mapping that is not a plain dict: moto's get_value indexes it; left to moto
        ("cloudwatch", "GetMetricData", lambda: {"MetricDataResults": [OrderedDict(result)]}),
        ("cloudwatch", "ListMetrics", lambda: {"Metrics": [Computed()]}),
        ("cloudwatch", "ListMetrics", lambda: {"Metrics": [Aliased()]}),
        ("cloudwatch", "ListMetrics", lambda: {"Metrics": [Lazy()]}),
        # an operation outside WRITTEN_OPERATIONS
        ("cloudwatch", "DescribeAlarms", lambda: {"MetricAlarms": [], "NextToken": "t"}),
        # a value moto itself cannot serialize: moto's own error, not the writer's
        ("cloudwatch", "GetMetricData", lambda: {"MetricDataResults": [{"timestamps": [odd]}]}),
    ]
    for service, operation, answer in cases:
        walked.clear()
        written.clear()
        outcomes = []
        for fast in (False, True):
            monkeypatch.setattr(SPEEDUPS, "fast_serialization", fast)
            try:
                outcomes.append(_serializer(service, operation).serialize(answer()))
            except Exception as error:  # the same error both ways
                outcomes.append(repr(error))
        assert outcomes[0] == outcomes[1], operation
        assert written == [], operation
        assert walked, operation  # moto walked the answer (in both runs)
    # response transformers (set by some moto services for the whole process): moto's path
    transformers = {"MetricDataResult.Label": lambda v: "changed"}
    written.clear()
    monkeypatch.setattr(SPEEDUPS, "fast_serialization", True)
    from moto.core.serialize import JSONSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model

    serializer = JSONSerializer(
        operation_model=get_service_model("cloudwatch").operation_model("GetMetricData"),
        value_picker=XFormedAttributePicker(response_transformers=transformers),
    )
    body = serializer.serialize({"MetricDataResults": [dict(result, label="x")]})["body"]
    assert '"Label": "changed"' in str(body)
    assert written == []


# --- over HTTP: the simulator's own answers ------------------------------------------------


def _seed(sim: FastSimulator, fleet: Fleet, now: datetime) -> list[tuple[str, str]]:
    metrics = []
    for i in range(28):
        name = f"ep-{i:02d}"
        variants = [VariantSpec("AllTraffic")]
        if i % 3 == 0:
            variants = [VariantSpec("model-a"), VariantSpec("model-b", "ml.g4dn.xlarge", 2)]
        if i % 5 == 0:
            variants = [VariantSpec("serverless", serverless_memory_mb=2048)]
        if i % 7 == 0:
            variants = [VariantSpec("warm", serverless_memory_mb=1024, provisioned_concurrency=2)]
        fleet.endpoint(
            EAST,
            name,
            variants,
            tags={"team": f"t{i % 4}", "owner": "ana", "e": ""} if i % 2 else None,
            changed=now - timedelta(days=3, minutes=i, microseconds=i * 137),
            asynchronous=i == 7,
        )
        for variant in variants:
            metrics.append((name, variant.name))
            moments = [now - timedelta(hours=i + 1, microseconds=(i % 3) * 2500)]
            if i % 4 == 1:
                moments += [now - timedelta(days=1, hours=i), now - timedelta(days=2, hours=1)]
            values = [0.0, 1.5, 1e-7, float(10**15 + i)]
            fleet.invocations(
                EAST, name, variant.name, [(m, values[(i + k) % 4]) for k, m in enumerate(moments)]
            )
    fleet.training_job(EAST, "job-1", ended=now - timedelta(hours=2), tags={"team": "t1"})
    # more metrics than a ListMetrics page holds (500)
    fleet.metric(EAST, "ModelLatency", {"EndpointName": "ep-00"}, [(now, 1.0)])
    for offset in range(0, 520, 260):
        sim.client("cloudwatch", EAST).put_metric_data(
            Namespace="Other",
            MetricData=[
                {"MetricName": "M", "Dimensions": [{"Name": "N", "Value": str(j)}], "Value": 1.0}
                for j in range(offset, offset + 260)
            ],
        )
    return metrics


def _raw_answers(
    sim: FastSimulator, metrics: list[tuple[str, str]], now: datetime
) -> list[tuple[str, int, dict[str, str], bytes]]:
    """(operation, status, headers, body) of the requests whose answers the writer builds."""
    answers: list[tuple[str, int, dict[str, str], bytes]] = []

    def keep(http_response: Any, model: Any, **_: Any) -> None:
        headers = {  # less what differs at each request whoever writes the answer
            k: v
            for k, v in http_response.headers.items()
            if k.lower() not in ("date", "x-amzn-requestid")
        }
        body = TOKEN.sub(b"TOKEN", http_response.content)
        answers.append((model.name, http_response.status_code, headers, body))

    sagemaker, cloudwatch = sim.client("sagemaker", EAST), sim.client("cloudwatch", EAST)
    for client in (sagemaker, cloudwatch):
        client.meta.events.register("after-call.*.*", keep)
    try:
        for order in ("Ascending", "Descending"):
            list(
                sagemaker.get_paginator("search").paginate(
                    Resource="Endpoint",
                    SortBy="CreationTime",
                    SortOrder=order,
                    PaginationConfig={"PageSize": 11},
                )
            )
        for i in range(28):  # serverless, provisioned, asynchronous, one or two variants
            sagemaker.describe_endpoint_config(EndpointConfigName=f"ep-{i:02d}-config")
        # answered by moto's own search (another resource, a filter on tags)
        sagemaker.search(Resource="TrainingJob")
        sagemaker.search(
            Resource="Endpoint",
            SearchExpression={
                "Filters": [{"Name": "Tags.team", "Operator": "Equals", "Value": "t1"}]
            },
        )
        for namespace in ("AWS/SageMaker", "Other"):
            list(cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace))
        queries = [
            {
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocations",
                        "Dimensions": [
                            {"Name": "EndpointName", "Value": name},
                            {"Name": "VariantName", "Value": variant},
                        ],
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
                **({"Label": "named"} if i % 6 == 0 else {}),
            }
            for i, (name, variant) in enumerate([*metrics, ("ep-99", "nothing")])
            for period in (60, 86400)
        ]
        for scan_by in ("TimestampDescending", "TimestampAscending"):
            cloudwatch.get_metric_data(
                MetricDataQueries=queries,
                StartTime=now - timedelta(days=3),
                EndTime=now,
                ScanBy=scan_by,
            )
        for mode in ("PartialData", "messages", "paged", "omit"):
            sim.behaviours.incomplete_metrics = IncompleteMetrics(
                frozenset({"ep-01", "ep-04"}), mode=mode
            )
            list(
                cloudwatch.get_paginator("get_metric_data").paginate(
                    MetricDataQueries=queries[:30],
                    StartTime=now - timedelta(days=3),
                    EndTime=now,
                )
            )
        sim.behaviours.incomplete_metrics = None
    finally:
        for client in (sagemaker, cloudwatch):
            client.meta.events.unregister("after-call.*.*", keep)
    return answers


@pytest.mark.parametrize("indexed", [False, True])
def test_the_simulator_answers_as_moto_does(
    sim: FastSimulator, fleet: Fleet, now: datetime, indexed: bool, written: list[str]
) -> None:
    metrics = _seed(sim, fleet, now)
    sim.speedups.indexed_metrics = indexed
    sim.speedups.fast_serialization = False
    moto = _raw_answers(sim, metrics, now)
    assert written == []
    sim.speedups.fast_serialization = True
    ours = _raw_answers(sim, metrics, now)
    assert [a[0] for a in ours] == [a[0] for a in moto]
    for mine, theirs in zip(ours, moto, strict=True):
        assert mine == theirs, mine[0]
    # every answer compared was the writer's, and the comparison covers what it should
    assert sorted(written) == sorted(a[0] for a in moto)
    bodies = {op: b"".join(a[3] for a in moto if a[0] == op) for op in ("Search", "ListMetrics")}
    assert bodies["Search"].count(b'"NextToken"') >= 4
    assert b"ServerlessConfig" in bodies["Search"]
    assert b'"Tags": [{"Key"' in bodies["Search"]
    assert b'"TrainingJobName": "job-1"' in bodies["Search"]
    assert b'"NextToken"' in bodies["ListMetrics"]
    configs = b"".join(a[3] for a in moto if a[0] == "DescribeEndpointConfig")
    for seen in (b"AsyncInferenceConfig", b"ProvisionedConcurrency", b'"InstanceType"'):
        assert seen in configs, seen
    metric_data = b"".join(a[3] for a in moto if a[0] == "GetMetricData")
    for seen in (b"PartialData", b'"Messages"', b'"Values": []', b"1e-07", b"1.5", b"0.0"):
        assert seen in metric_data, seen
    # timestamps with milliseconds and without (botocore sends whole seconds to CloudWatch, so
    # its period starts have none: the in-process tests above cover milliseconds there)
    assert re.search(rb'"LastModifiedTime": \d{10}\.\d{3}[,}]', bodies["Search"])
    assert re.search(rb"\d{10}[,\]]", metric_data)
