"""The compiled reader of ``GetMetricData`` requests gives moto's own parameters (values, types
and order), and leaves to moto the bodies it does not read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagesaver.demo import request_reader
from sagesaver.demo.simulator import Fleet, Simulator, install_behaviours


def _same(a: Any, b: Any) -> bool:
    """Equal, of the same types all the way down, and with keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _moto_parse(body: bytes) -> Any:
    from moto.core.parse import JSONParser
    from moto.core.utils import get_service_model

    model = get_service_model("cloudwatch").operation_model("GetMetricData")
    parser = JSONParser(model, map_type=dict)
    return parser.parse(
        {
            "method": "POST",
            "values": {},  # type: ignore[typeddict-item]
            "headers": {},  # type: ignore[typeddict-item]
            "body": body,
            "url_path": "/",
            "url_params": {},
        }
    )


def _ours(body: bytes) -> Any:
    from moto.core.utils import get_service_model

    model = get_service_model("cloudwatch").operation_model("GetMetricData")
    return request_reader.read_parameters(model.input_shape, body)


names = st.text(max_size=12)
numbers = st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False))
times = st.one_of(
    st.integers(0, 2**32),
    st.floats(0, 2**32, allow_nan=False),
    st.sampled_from(["2026-11-30T12:00:00Z", "2026-11-30T12:00:00.123456+02:00", "2026-11-30"]),
)
maybe = st.one_of(st.none(), st.just("drop"))  # a null member, or one left out


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    query: dict[str, Any] = {"Id": draw(names)}
    if draw(st.booleans()):
        query["MetricStat"] = {
            "Metric": {
                "Namespace": draw(names),
                "MetricName": draw(names),
                "Dimensions": draw(
                    st.lists(st.fixed_dictionaries({"Name": names, "Value": names}), max_size=3)
                ),
            },
            "Period": draw(st.integers(1, 10**6)),
            "Stat": draw(st.sampled_from(["Sum", "p99", "Average"])),
        }
        if draw(st.booleans()):
            query["MetricStat"]["Unit"] = "Count"
    else:
        query["Expression"] = draw(names)
    for key, values in (
        ("Label", names),
        ("ReturnData", st.booleans()),
        ("Period", st.integers(1, 86400)),
        ("AccountId", names),
        ("Unknown", names),  # not in the shape: neither parser keeps it
    ):
        if draw(st.booleans()):
            query[key] = draw(values)
    if draw(maybe) is None:
        query["Label"] = None
    return query


@settings(max_examples=200, deadline=None)
@given(
    query_list=st.lists(queries(), max_size=6),
    start=times,
    end=times,
    extra=st.fixed_dictionaries(
        {},
        optional={
            "NextToken": names,
            "ScanBy": st.sampled_from(["TimestampAscending", "TimestampDescending"]),
            "MaxDatapoints": st.integers(1, 10**6),
            "LabelOptions": st.fixed_dictionaries({"Timezone": st.just("+0130")}),
        },
    ),
)
def test_get_metric_data_requests_are_read_as_moto_reads_them(
    query_list: list[dict[str, Any]], start: Any, end: Any, extra: dict[str, Any]
) -> None:
    body = json.dumps(
        {"MetricDataQueries": query_list, "StartTime": start, "EndTime": end, **extra}
    ).encode()
    moto, ours = _moto_parse(body), _ours(body)
    assert _same(ours, moto), (ours, moto)
    assert len(moto["MetricDataQueries"]) == len(query_list)


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b"null", b'{"MetricDataQueries": null, "StartTime": 0}', b'{"StartTime": 1.5}'],
)
def test_edge_bodies_are_read_as_moto_reads_them(body: bytes) -> None:
    assert _same(_ours(body), _moto_parse(body))


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"MetricDataQueries": [1]}', b'{"StartTime": []}', b"\xff\xfe{"],
)
def test_bodies_moto_reads_otherwise_are_left_to_moto(body: bytes) -> None:
    """The reader refuses them (the hook then calls moto's parser, whatever it makes of it)."""
    with pytest.raises(Exception):  # noqa: B017 - any refusal sends the body to moto
        _ours(body)


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """(operation, parameters) of each request moto's responses acted on, and how many
    bodies the compiled reader read."""
    from moto.core.responses import BaseResponse

    install_behaviours()
    kept: list[tuple[str, Any]] = []
    call_action = BaseResponse.call_action

    def keep(self: Any) -> Any:
        kept.append((self._get_action(), json.loads(json.dumps(self.params, default=repr))))
        kept.append(("types", _types(self.params)))
        return call_action(self)

    monkeypatch.setattr(BaseResponse, "call_action", keep)
    read = request_reader.read_parameters

    def counted(shape: Any, body: Any) -> Any:
        kept.append(("read", None))
        return read(shape, body)

    monkeypatch.setattr(request_reader, "read_parameters", counted)
    yield kept


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


def test_the_simulator_reads_requests_as_moto_does(
    sim: Simulator, fleet: Fleet, now: datetime, seen: list[tuple[str, Any]]
) -> None:
    fleet.invocations("us-east-1", "ep", "AllTraffic", [(now - timedelta(hours=1), 3.0)])
    cloudwatch = sim.client("cloudwatch", "us-east-1")
    query = {
        "Id": "q0",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/SageMaker",
                "MetricName": "Invocations",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": "ep"},
                    {"Name": "VariantName", "Value": "AllTraffic"},
                ],
            },
            "Period": 3600,
            "Stat": "Sum",
        },
        "Label": "l",
        "ReturnData": True,
    }

    def requests() -> list[Any]:
        answers = [
            cloudwatch.get_metric_data(
                MetricDataQueries=[query, {**query, "Id": "q1", "ReturnData": False}],
                StartTime=now - timedelta(days=1),
                EndTime=now,
                ScanBy="TimestampAscending",
                MaxDatapoints=100,
            ),
            cloudwatch.list_metrics(Namespace="AWS/SageMaker"),
        ]
        return [a.get("MetricDataResults", a.get("Metrics")) for a in answers]

    seen.clear()  # the seeding's requests
    sim.behaviours.fast_serialization = False
    moto_answers = requests()
    moto_seen = list(seen)
    seen.clear()
    sim.behaviours.fast_serialization = True
    assert requests() == moto_answers
    assert [s for s in seen if s[0] != "read"] == moto_seen
    assert [s[0] for s in seen].count("read") == 1  # GetMetricData; ListMetrics: moto's
    assert ("read", None) not in moto_seen
    assert moto_answers[0][0]["Values"] == [3.0]
