"""The what-if backtest: synthetic histories whose right answer is known by construction, and
one run against the simulator."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagesaver.aws.history import align_hour, hourly_history
from sagesaver.aws.prices import LivePrices
from sagesaver.aws.session import Aws
from sagesaver.core.backtest import BacktestResult, compare, replay
from sagesaver.core.policy import EndpointPolicy, Policy
from sagesaver.core.pricing import Pricer
from sagesaver.demo.simulator import Fault, Fleet, Simulator, VariantSpec
from sagesaver.pipelines.backtest import read_history, replay_history, run_backtest

START = datetime(2026, 10, 1, tzinfo=timezone.utc)
WINDOW = 30 * 24  # 720 hours
OLD = START - timedelta(days=40)
H = timedelta(hours=1)


def at(hours: float) -> datetime:
    return START + hours * H


def quiet() -> list[float]:
    return [0.0] * WINDOW


def calls_at(*hours: int, value: float = 5.0) -> list[float]:
    series = quiet()
    for hour in hours:
        series[hour] = value
    return series


def run(
    history: dict[str, list[float]],
    policy: EndpointPolicy,
    cost: dict[str, float | None] | None = None,
    created: dict[str, datetime] | None = None,
    tags: dict[str, dict[str, str]] | None = None,
    instances: dict[str, int] | None = None,
) -> BacktestResult:
    return replay(
        history,
        created or dict.fromkeys(history, OLD),
        cost if cost is not None else dict.fromkeys(history, 1.0),
        tags or {},
        policy,
        START,
        instances=instances,
    )


def delete(**kwargs: Any) -> EndpointPolicy:
    return EndpointPolicy(action="delete", **kwargs)


def test_always_idle_endpoint_is_flagged_after_idle_hours_and_deleted_after_grace() -> None:
    result = run(
        {"ep": quiet()},
        delete(idle_hours=24, grace_hours=24),
        cost={"ep": 0.5},
        instances={"ep": 2},
    )
    (timeline,) = result.timelines
    assert timeline.flagged_at == [at(24)]
    assert timeline.deleted_at == at(48)
    assert timeline.spared_at == [] and timeline.mistake_at is None
    assert timeline.hours_saved == WINDOW - 48
    totals = result.totals
    assert (totals.flagged, totals.deleted, totals.mistakes) == (1, 1, 0)
    assert totals.usd_saved == pytest.approx((WINDOW - 48) * 0.5)
    assert totals.instance_hours_saved == (WINDOW - 48) * 2
    assert totals.usd_saved_unknown_count == 0


def test_traffic_every_ten_hours_is_never_flagged() -> None:
    result = run({"ep": calls_at(*range(0, WINDOW, 10))}, delete(idle_hours=24, grace_hours=0))
    assert result.timelines[0].flagged_at == []
    assert result.totals.flagged == result.totals.deleted == 0
    assert result.totals.usd_saved == 0


def test_weekly_job_is_deleted_and_the_next_weekly_call_is_a_mistake() -> None:
    weekly = calls_at(0, 168, 336, 504, 672, value=5)
    result = run({"job": weekly}, delete(idle_hours=24, grace_hours=0), cost={"job": 2.0})
    (timeline,) = result.timelines
    # hours 1..24 are quiet: idle at the end of hour 24, deleted at once (no grace)
    assert timeline.flagged_at == [at(25)] and timeline.deleted_at == at(25)
    assert timeline.mistake_at == at(168)
    assert timeline.invocations_after_delete == 20
    assert result.totals.mistakes == 1
    assert result.totals.usd_saved == pytest.approx((WINDOW - 25) * 2.0)


def test_a_trickle_at_most_max_invocations_counts_as_idle_as_in_the_scan() -> None:
    # A health check: 2 calls every 12 hours, so 4 or 5 in any 24 hours.
    trickle = calls_at(*range(0, WINDOW, 12), value=2)
    strict = run({"ep": trickle}, delete(idle_hours=24, grace_hours=0))
    assert strict.timelines[0].flagged_at == []  # the default: any call is traffic
    lenient = run({"ep": trickle}, delete(idle_hours=24, grace_hours=0, max_invocations=4))
    (timeline,) = lenient.timelines
    assert timeline.flagged_at == [at(24)] and timeline.deleted_at == at(24)
    # The trickle goes on after the deletion: counted, but never more than the threshold
    # over a look-back, so it is not a mistake.
    assert timeline.invocations_after_delete == 2 * len(range(24, WINDOW, 12))
    assert timeline.mistake_at is None
    assert lenient.totals.mistakes == 0


def test_traffic_above_max_invocations_after_a_deletion_is_a_mistake() -> None:
    series = calls_at(100, 101, value=3)  # 6 calls within a day, after a quiet start
    result = run({"ep": series}, delete(idle_hours=24, grace_hours=0, max_invocations=4))
    (timeline,) = result.timelines
    assert timeline.deleted_at == at(24)
    assert timeline.invocations_after_delete == 6
    assert timeline.mistake_at == at(101)  # the hour the look-back first exceeds 4


def test_endpoint_called_again_during_grace_is_spared_then_flagged_again() -> None:
    result = run({"ep": calls_at(0, 40)}, delete(idle_hours=24, grace_hours=24))
    (timeline,) = result.timelines
    assert timeline.flagged_at == [at(25), at(65)]  # quiet 1..24, then quiet 41..64
    assert timeline.spared_at == [at(41)]  # the call in hour 40, before the deadline at(49)
    assert timeline.deleted_at == at(89)
    assert timeline.mistake_at is None
    assert (result.totals.spared, result.totals.spare_events, result.totals.notifications) == (
        1,
        1,
        2,
    )


def test_spared_endpoint_that_keeps_being_used_is_never_deleted() -> None:
    series = calls_at(0, 40, *range(60, WINDOW, 20))
    result = run({"ep": series}, delete(idle_hours=24, grace_hours=24))
    (timeline,) = result.timelines
    assert timeline.spared_at == [at(41)] and timeline.deleted_at is None
    assert result.totals.usd_saved == 0


def test_protected_excluded_and_unselected_endpoints_are_never_flagged() -> None:
    names = ["guarded", "keep-me", "other-team", "plain"]
    result = run(
        {name: quiet() for name in names},
        delete(idle_hours=24, grace_hours=0, exclude=["keep-*"], tags={"team": "ml"}),
        tags={
            "guarded": {"team": "ml", "sagesaver:protect": "true"},
            "keep-me": {"team": "ml"},
            "other-team": {"team": "web"},
            "plain": {"team": "ml"},
        },
    )
    by_name = {t.name: t for t in result.timelines}
    for name in ["guarded", "keep-me", "other-team"]:
        assert by_name[name].flagged_at == [] and by_name[name].deleted_at is None
        assert by_name[name].skipped
    assert "protected" in (by_name["guarded"].skipped or "")
    assert "exclude" in (by_name["keep-me"].skipped or "")
    assert by_name["plain"].deleted_at == at(24) and by_name["plain"].skipped is None
    assert result.totals.deleted == 1


def test_zero_instances_and_unknown_instances_are_never_flagged() -> None:
    result = run(
        {"scaled": quiet(), "unknown": quiet()},
        delete(idle_hours=24, grace_hours=0),
        instances={"scaled": 0},
    )
    assert result.totals.flagged == 0
    assert all(t.skipped for t in result.timelines)


def test_young_endpoint_respects_min_age_and_ignores_calls_before_its_creation() -> None:
    born = at(100.5)
    history = {"young": calls_at(50), "young-default": calls_at(50)}
    created = {"young": born, "young-default": born}
    strict = run(history, delete(idle_hours=24, min_age_hours=48, grace_hours=0), created=created)
    # hour 50's calls belong to an older endpoint of the same name; age 48 h at 148.5
    assert strict.timelines[0].flagged_at == [at(149)]
    default = run(history, delete(idle_hours=24, grace_hours=0), created=created)
    assert default.timelines[1].deleted_at == at(125)  # min_age = idle_hours = 24: at 124.5


def test_endpoint_created_before_the_window_waits_for_a_full_look_back() -> None:
    result = run({"ep": quiet()}, delete(idle_hours=24, min_age_hours=0, grace_hours=0))
    assert result.timelines[0].flagged_at == [at(24)]  # not at(1): hours before START unknown


def test_max_actions_per_run_defers_the_cheaper_deletions() -> None:
    costs: dict[str, float | None] = {"cheap": 1.0, "mid": 2.0, "pricey": 3.0}
    result = run(
        {name: quiet() for name in costs},
        delete(idle_hours=24, grace_hours=0, max_actions_per_run=1),
        cost=costs,
    )
    by_name = {t.name: t for t in result.timelines}
    assert by_name["pricey"].deleted_at == at(24) and by_name["pricey"].deferred_hours == 0
    assert by_name["mid"].deleted_at == at(25) and by_name["mid"].deferred_hours == 1
    assert by_name["cheap"].deleted_at == at(26) and by_name["cheap"].deferred_hours == 2
    expected = 3.0 * (WINDOW - 24) + 2.0 * (WINDOW - 25) + 1.0 * (WINDOW - 26)
    assert result.totals.usd_saved == pytest.approx(expected)


def test_max_actions_zero_never_deletes() -> None:
    result = run({"ep": quiet()}, delete(idle_hours=24, grace_hours=0, max_actions_per_run=0))
    assert result.totals.flagged == 1 and result.totals.deleted == 0
    assert result.timelines[0].deferred_hours == WINDOW - 23


def test_notify_action_flags_but_saves_nothing() -> None:
    result = run({"ep": calls_at(0, 40)}, EndpointPolicy(action="notify", idle_hours=24))
    (timeline,) = result.timelines
    assert timeline.flagged_at == [at(25), at(65)]
    assert timeline.spared_at == [] and timeline.deleted_at is None
    assert result.totals.notifications == 2
    assert result.totals.usd_saved == 0 and result.totals.deleted == 0


def test_unknown_price_is_counted_not_summed() -> None:
    result = run(
        {"known": quiet(), "unpriced": quiet()},
        delete(idle_hours=24, grace_hours=0),
        cost={"known": 1.0, "unpriced": None},
    )
    assert result.totals.deleted == 2
    assert result.totals.usd_saved == pytest.approx(WINDOW - 24)
    assert result.totals.usd_saved_unknown_count == 1


def test_compare_daily_and_weekly_idle_hours() -> None:
    history = {"weekly-job": calls_at(0, 168, 336, 504, 672), "abandoned": quiet()}
    daily = run(history, delete(idle_hours=24, grace_hours=0))
    weekly = run(history, delete(idle_hours=168, grace_hours=0))
    assert {t.name: t.deleted_at for t in weekly.timelines} == {
        "abandoned": at(168),
        "weekly-job": None,  # at most 167 quiet hours between its calls
    }
    diff = compare(daily, weekly)
    totals = diff["totals"]
    assert totals["mistakes"] == {"a": 1, "b": 0, "difference": -1}
    assert totals["usd_saved"]["a"] == pytest.approx((WINDOW - 24) + (WINDOW - 25))
    assert totals["usd_saved"]["b"] == pytest.approx(WINDOW - 168)
    assert totals["usd_saved"]["difference"] < 0
    assert diff["deleted_only_by_a"] == ["weekly-job"] and diff["deleted_only_by_b"] == []
    assert diff["mistakes_only_by_a"] == ["weekly-job"]
    json.dumps(diff)


def test_document_is_json_ready() -> None:
    result = run({"job": calls_at(0, 168)}, delete(idle_hours=24, grace_hours=0))
    document = json.loads(json.dumps(result.to_document()))
    assert document["window"] == {
        "start": "2026-10-01T00:00:00Z",
        "end": "2026-10-31T00:00:00Z",
        "hours": WINDOW,
    }
    assert document["totals"]["mistakes"] == 1
    (endpoint,) = document["endpoints"]
    assert endpoint["deleted_at"] == "2026-10-02T01:00:00Z"
    assert endpoint["mistake_at"] == "2026-10-08T00:00:00Z"
    assert document["policy"]["idle_hours"] == 24


def test_histories_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="720"):
        run({"a": quiet(), "b": [0.0] * 10}, delete())


@settings(max_examples=60, deadline=None)
@given(
    series=st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.0, 3.0]), min_size=48, max_size=48).flatmap(
        lambda first: st.lists(
            st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.0, 3.0]), min_size=48, max_size=48),
            min_size=0,
            max_size=3,
        ).map(lambda rest: [first, *rest])
    ),
    cost=st.floats(min_value=0.0, max_value=50.0),
    idle_hours=st.floats(min_value=0.5, max_value=30.0),
    grace_hours=st.floats(min_value=0.0, max_value=30.0),
    min_age=st.one_of(st.none(), st.floats(min_value=0.0, max_value=40.0)),
    max_actions=st.integers(min_value=0, max_value=3),
    born=st.floats(min_value=-100.0, max_value=60.0),
)
def test_savings_never_exceed_the_window_and_notify_saves_nothing(
    series: list[list[float]],
    cost: float,
    idle_hours: float,
    grace_hours: float,
    min_age: float | None,
    max_actions: int,
    born: float,
) -> None:
    history = {f"ep{i}": values for i, values in enumerate(series)}
    hours = len(series[0])
    common: dict[str, Any] = {
        "idle_hours": idle_hours,
        "grace_hours": grace_hours,
        "min_age_hours": min_age,
        "max_actions_per_run": max_actions,
    }
    created = dict.fromkeys(history, at(born))
    costs: dict[str, float | None] = dict.fromkeys(history, cost)
    deleting = run(history, EndpointPolicy(action="delete", **common), costs, created)
    for timeline in deleting.timelines:
        assert (timeline.usd_saved or 0.0) <= hours * cost + 1e-6
        assert 0 <= timeline.hours_saved < hours
        if timeline.deleted_at is not None:
            assert timeline.flagged_at and timeline.deleted_at >= timeline.flagged_at[-1]
            assert timeline.deleted_at > at(born)
    assert deleting.totals.usd_saved <= len(history) * hours * cost + 1e-6
    assert deleting.totals.deleted <= max_actions * hours
    notifying = run(history, EndpointPolicy(action="notify", **common), costs, created)
    assert notifying.totals.usd_saved == 0
    assert notifying.totals.deleted == 0 and notifying.totals.mistakes == 0
    assert notifying.totals.notifications >= deleting.totals.deleted


def test_backtest_against_the_simulator(fleet: Fleet, now: datetime) -> None:
    region = "us-east-1"
    days = 2
    start = align_hour(now) - timedelta(days=days)
    fleet.endpoint(
        region,
        "busy",
        variants=[VariantSpec("A"), VariantSpec("B", count=2)],
        changed=now - timedelta(days=40),
    )
    fleet.endpoint(region, "idle", changed=now - timedelta(days=40))
    fleet.invocations(
        region,
        "busy",
        "B",
        [
            (start + 10 * H + timedelta(minutes=5), 3.0),
            (start + 30 * H + timedelta(minutes=10), 2.0),
            (start + 30 * H + timedelta(minutes=50), 4.0),
        ],
    )
    aws = Aws()
    live = Pricer(live=LivePrices(aws, None))  # the simulator's Price List answers
    fleet_history = read_history(aws, [region], now, days, live)
    assert fleet_history.errors == []
    (found,) = fleet_history.regions
    expected = [0.0] * (days * 24)
    expected[10], expected[30] = 3.0, 6.0
    assert found.history == {"busy": expected, "idle": [0.0] * (days * 24)}
    assert found.instances == {"busy": 3, "idle": 1}
    assert found.hourly_cost["idle"]
    assert found.hourly_cost["busy"] == pytest.approx(3 * found.hourly_cost["idle"])

    policy = Policy(endpoints=delete(idle_hours=24, grace_hours=0))
    result = run_backtest(aws, [region], policy, now, days, live)
    by_name = {t.name: t for t in result.timelines}
    assert by_name["busy"].flagged_at == []
    assert by_name["idle"].flagged_at == [start + 24 * H]
    assert by_name["idle"].deleted_at == start + 24 * H
    assert result.totals.deleted == 1 and result.totals.mistakes == 0
    assert replay_history(fleet_history, policy.endpoints).totals == result.totals
    # the lower-level reader agrees, for the endpoints it is given
    endpoints = [e for e in found.endpoints if e.name == "busy"]
    assert hourly_history(aws, region, endpoints, days, now) == ({"busy": expected}, {})


def test_a_failing_region_or_endpoint_does_not_stop_the_others(
    fleet: Fleet, sim: Simulator, now: datetime
) -> None:
    for region in ["us-east-1", "us-west-2"]:
        fleet.endpoint(region, "idle", changed=now - timedelta(days=40))
    fleet.endpoint("us-east-1", "hidden", changed=now - timedelta(days=40))

    def fault(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation == "GetMetricData" and region == "us-west-2":
            return Fault(400, "AccessDenied", "no metrics")
        if operation != "DescribeEndpoint":
            return None
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        return Fault(400, "ValidationException", "cannot describe") if b"hidden" in body else None

    sim.middleware.fault = fault
    result = run_backtest(Aws(), ["us-east-1", "us-west-2"], delete(grace_hours=0), now, 2)
    assert sorted((e.region, e.operation, e.resource) for e in result.errors) == [
        ("us-east-1", "DescribeEndpoint", "hidden"),
        ("us-west-2", "GetMetricData", None),
    ]
    by_name = {(t.region, t.name): t for t in result.timelines}
    assert set(by_name) == {("us-east-1", "idle"), ("us-east-1", "hidden")}
    assert by_name["us-east-1", "idle"].deleted_at is not None
    assert by_name["us-east-1", "hidden"].skipped == "its instances could not be read"
    assert result.to_document()["errors"][0]["code"]


class _FakePaginator:
    def __init__(self, pages: Any) -> None:
        self.pages = pages

    def paginate(self, **kwargs: Any) -> Any:
        return self.pages(**kwargs)


class _FakeCloudWatch:
    """ListMetrics lists ``ep0..ep600`` (one variant each); GetMetricData answers every query
    with a datapoint at hour 3 on a first page and at hour 5 (twice) on a second page."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def get_paginator(self, name: str) -> _FakePaginator:
        if name == "list_metrics":
            metrics = [
                {
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": f"ep{i}"},
                        {"Name": "VariantName", "Value": "AllTraffic"},
                    ]
                }
                for i in range(601)
            ]
            return _FakePaginator(lambda **_: [{"Metrics": metrics}])
        return _FakePaginator(self._metric_data)

    def _metric_data(self, **kwargs: Any) -> list[dict[str, Any]]:
        queries = kwargs["MetricDataQueries"]
        self.batches.append(len(queries))
        start = kwargs["StartTime"]
        first = [
            {
                "Id": q["Id"],
                "Timestamps": [start + 3 * H],
                "Values": [1.0],
                "StatusCode": "PartialData",
            }
            for q in queries
        ]
        second = [
            {
                "Id": q["Id"],
                "Timestamps": [start + 5 * H, start + 5 * H],
                "Values": [2.0, 0.5],
                "StatusCode": "Complete",
            }
            for q in queries
        ]
        return [{"MetricDataResults": first}, {"MetricDataResults": second}]


def test_hourly_history_batches_500_queries_and_reads_every_page() -> None:
    from sagesaver.core.model import Kind, Resource

    cloudwatch = _FakeCloudWatch()
    aws: Any = type("FakeAws", (), {"cloudwatch": lambda self, region: cloudwatch})()
    endpoints = [
        Resource(Kind.ENDPOINT, f"ep{i}", f"arn:{i}", "us-east-1", "1", "InService", OLD, OLD)
        for i in range(601)
    ]
    history, problems = hourly_history(
        aws, "us-east-1", endpoints, 1, START + timedelta(days=1, minutes=7)
    )
    assert problems == {}
    assert cloudwatch.batches == [500, 101]
    expected = [0.0] * 24
    expected[3], expected[5] = 1.0, 2.5
    assert len(history) == 601 and all(series == expected for series in history.values())


def test_metric_pages_go_to_the_sink_one_at_a_time() -> None:
    from sagesaver.aws import metrics

    received: list[tuple[str, list[float]]] = []
    seen_before_page: list[int] = []

    def pages(**kwargs: Any) -> Any:
        start = kwargs["StartTime"]
        for page in range(3):
            seen_before_page.append(len(received))  # what was consumed before this page
            yield {
                "MetricDataResults": [
                    {
                        "Id": "q0",
                        "Timestamps": [start + page * H],
                        "Values": [float(page + 1)],
                        "StatusCode": "PartialData" if page < 2 else "Complete",
                    }
                ]
            }

    client = type("C", (), {"get_paginator": lambda self, name: _FakePaginator(pages)})()
    aws: Any = type("FakeAws", (), {"cloudwatch": lambda self, region: client})()
    query = metrics.invocations_query("q0", "ep", "AllTraffic", 3600)
    series = metrics.read_metric_data(
        aws,
        "us-east-1",
        [query],
        START,
        START + 3 * H,
        sink=lambda qid, moments, values: received.append((qid, list(values))),
    )
    assert received == [("q0", [1.0]), ("q0", [2.0]), ("q0", [3.0])]
    assert seen_before_page == [0, 1, 2]  # each page was consumed before the next was read
    assert series["q0"].problem is None and series["q0"].values == []  # nothing kept


def test_aws_answers_parse_timestamps_to_utc() -> None:
    from datetime import timezone

    from sagesaver.aws.session import utc_timestamp

    expected = datetime(2026, 11, 30, 7, 5, 1, 500000, tzinfo=timezone.utc)
    assert utc_timestamp(expected.timestamp()) == expected
    assert utc_timestamp("2026-11-30T07:05:01.5Z") == expected
    assert utc_timestamp("2026-11-30T08:05:01.500+01:00") == expected
    assert utc_timestamp("Mon, 30 Nov 2026 07:05:01 GMT") == expected.replace(microsecond=0)
    assert all(
        utc_timestamp(v).utcoffset() == timedelta(0)
        for v in (1.0, "2026-11-30T07:05:01", "2026-11-30T08:05:01+01:00")
    )
