"""How long an idle endpoint has been idle: since its last traffic, looked back in daily sums
(up to what CloudWatch keeps), or since its creation; never changes a decision."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.conftest import Cli

EAST = "us-east-1"


def by_name(document: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["name"]: r for r in document["resources"]}  # type: ignore[attr-defined,index]


def test_idle_hours_count_from_the_last_invocation_or_the_creation(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "called-40-days-ago", changed=now - timedelta(days=120))
    fleet.invocations(EAST, "called-40-days-ago", "AllTraffic", [(now - timedelta(days=40), 7.0)])
    fleet.endpoint(EAST, "never-called", changed=now - timedelta(days=100))
    fleet.endpoint(EAST, "busy", changed=now - timedelta(days=100))
    fleet.invocations(EAST, "busy", "AllTraffic", [(now - timedelta(hours=2), 3.0)])
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0, doc["errors"]
    got = by_name(doc)

    called = got["called-40-days-ago"]
    day = (now - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert called["last_activity_at"] == (day + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert 39 * 24 <= called["idle_hours"] <= 40 * 24  # about 960 h, not the 24 h window
    assert f"last invoked on {day:%Y-%m-%d} (idle for " in called["reason"]
    assert called["decision"] == "notify"  # the decision is the window's, as before

    never = got["never-called"]
    assert never["last_activity_at"] is None
    assert never["idle_hours"] == pytest.approx(100 * 24, abs=0.1)
    assert "never invoked since its creation" in never["reason"]
    assert "(idle for 100 days)" in never["reason"]
    assert "last_activity_at" not in got["busy"]  # only idle endpoints are looked back for

    published = cli("run", "--region", EAST)  # the digest a person reads
    assert "called-40-days-ago (us-east-1): idle for 39 days" in published.stdout or (
        "called-40-days-ago (us-east-1): idle for 40 days" in published.stdout
    )


def test_unreadable_daily_sums_leave_the_window_and_say_so(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "idle", changed=now - timedelta(days=30))
    fleet.invocations(EAST, "idle", "AllTraffic", [(now - timedelta(hours=1), 0.0)])
    calls = {"n": 0}

    def second_read_fails(operation: str, region: str, environ: object) -> Fault | None:
        if operation != "GetMetricData":
            return None
        calls["n"] += 1
        return Fault(400, "AccessDenied", "no") if calls["n"] > 1 else None

    sim.middleware.fault = second_read_fails
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0  # informative only: no error, the decision stands
    idle = by_name(doc)["idle"]
    assert idle["idle"] is True and idle["decision"] == "notify"
    assert idle["idle_hours"] == 24.0
    assert "how long before that is unknown" in idle["reason"]


def test_daily_sums_in_several_calls_at_once_find_each_endpoints_last_day(
    sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.aws import metrics
    from sagesaver.aws.session import Aws
    from sagesaver.core.rules.idle_since import lookback_start

    variants: dict[str, list[str]] = {}
    expected: dict[str, datetime | None] = {}
    for i in range(7):
        name = f"ep-{i}"
        variants[name] = ["a", "b"]  # 14 queries: 5 calls of 3, one endpoint split across two
        if i % 3 == 2:
            expected[name] = None  # no traffic in the days kept
            continue
        when = now - timedelta(days=10 + i)
        fleet.metric(EAST, "Invocations", {"EndpointName": name, "VariantName": "b"}, [(when, 2.0)])
        expected[name] = when.replace(hour=0, minute=0, second=0, microsecond=0)
    monkeypatch.setattr(metrics, "MAX_QUERIES_PER_CALL", 3)
    start = lookback_start(now)
    aws = Aws()
    found = metrics.last_traffic_days(aws, EAST, variants, start, now, workers=4)
    assert aws.calls["GetMetricData"] == 5
    assert {name: day and day.replace(tzinfo=None) for name, day in found.items()} == {
        name: day and day.replace(tzinfo=None) for name, day in expected.items()
    }


@pytest.fixture
def daily_reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The endpoints of each reading of daily sums a scan makes."""
    from sagesaver.pipelines import lookback

    reads: list[list[str]] = []
    read = lookback.last_traffic_days

    def counted(aws: object, region: str, variants: dict[str, list[str]], *args: object) -> object:
        reads.append(sorted(variants))
        return read(aws, region, variants, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(lookback, "last_traffic_days", counted)
    return reads


def test_a_later_scan_remembers_the_daily_sums_of_endpoints_still_idle(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, daily_reads: list[list[str]]
) -> None:
    from tests.conftest import run_at

    fleet.endpoint(EAST, "called-40-days-ago", changed=now - timedelta(days=120))
    fleet.invocations(EAST, "called-40-days-ago", "AllTraffic", [(now - timedelta(days=40), 7.0)])
    fleet.endpoint(EAST, "never-called", changed=now - timedelta(days=100))
    code, first = cli.json("scan", "--region", EAST)
    assert code == 0, first["errors"]
    assert daily_reads == [["called-40-days-ago", "never-called"]]
    with run_at((now + timedelta(hours=1)).isoformat()):
        code, later = cli.json("scan", "--region", EAST)
    assert code == 0, later["errors"]
    assert len(daily_reads) == 1  # nothing new to read: both were idle all along
    for name in ("called-40-days-ago", "never-called"):
        before, after = by_name(first)[name], by_name(later)[name]
        assert after["last_activity_at"] == before["last_activity_at"]
        assert after["idle_hours"] == pytest.approx(before["idle_hours"] + 1, abs=0.05)
        assert (
            after["reason"].split("; ")[-1].split(" (")[0]
            == (before["reason"].split("; ")[-1].split(" (")[0])
        )


def test_an_endpoint_created_again_under_its_name_is_read_afresh(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, daily_reads: list[list[str]]
) -> None:
    from sagesaver.demo.simulator import _sagemaker_backend

    fleet.endpoint(EAST, "reborn", changed=now - timedelta(days=120))
    fleet.invocations(EAST, "reborn", "AllTraffic", [(now - timedelta(days=40), 7.0)])
    code, first = cli.json("scan", "--region", EAST)
    assert "last invoked on" in by_name(first)["reborn"]["reason"]

    backend = _sagemaker_backend(EAST)
    del backend.endpoints["reborn"]
    del backend.endpoint_configs["reborn-config"]
    fleet.endpoint(EAST, "reborn", changed=now - timedelta(days=10))
    called = now - timedelta(days=5)  # the new endpoint's own traffic
    fleet.invocations(EAST, "reborn", "AllTraffic", [(called, 1.0)])
    code, later = cli.json("scan", "--region", EAST)
    assert code == 0, later["errors"]
    assert daily_reads == [["reborn"], ["reborn"]]
    assert f"last invoked on {called:%Y-%m-%d}" in by_name(later)["reborn"]["reason"]


def test_a_reading_older_than_the_idle_window_is_not_trusted(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, daily_reads: list[list[str]]
) -> None:
    """Two days later, with a 24 h window: what happened between the two scans is unknown
    to the window, so the daily sums are read again (and find the traffic of that time)."""
    from tests.conftest import run_at

    fleet.endpoint(EAST, "called-in-between", changed=now - timedelta(days=120))
    fleet.invocations(EAST, "called-in-between", "AllTraffic", [(now - timedelta(days=40), 7.0)])
    code, first = cli.json("scan", "--region", EAST)
    assert "last invoked on" in by_name(first)["called-in-between"]["reason"]
    called = now + timedelta(hours=12)
    fleet.invocations(EAST, "called-in-between", "AllTraffic", [(called, 2.0)])
    with run_at((now + timedelta(days=2)).isoformat()):
        code, later = cli.json("scan", "--region", EAST)
    assert code == 0, later["errors"]
    assert daily_reads == [["called-in-between"], ["called-in-between"]]
    assert f"last invoked on {called:%Y-%m-%d}" in by_name(later)["called-in-between"]["reason"]


def test_traffic_of_an_earlier_endpoint_of_the_same_name_is_not_the_new_ones(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    """CloudWatch keeps metrics by name: an endpoint created 10 days ago, whose name was
    called 40 days ago by the endpoint it replaced, has been idle for 10 days, not 40."""
    fleet.endpoint(EAST, "replaced", changed=now - timedelta(days=10))
    fleet.invocations(EAST, "replaced", "AllTraffic", [(now - timedelta(days=40), 7.0)])
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0, doc["errors"]
    replaced = by_name(doc)["replaced"]
    assert replaced["last_activity_at"] is None
    assert "never invoked since its creation" in replaced["reason"]
    assert replaced["idle_hours"] == pytest.approx(10 * 24, abs=0.1)
