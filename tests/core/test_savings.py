from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from sagesaver.core.savings import off_intervals, totals_by
from sagesaver.ledger import Entry, Outcome

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def entry(
    hours: float,
    name: str,
    action: str,
    cost: float | None = 1.0,
    outcome: str = "done",
    team: str = "ml",
    kind: str = "notebook",
) -> Entry:
    return Entry(
        at=T0 + timedelta(hours=hours),
        account="1",
        region="us-east-1",
        kind=kind,
        resource=name,
        action=action,
        rule="r",
        reason="x",
        hourly_cost=cost,
        dry_run=False,
        outcome=outcome,
        tags={"team": team},
    )


def test_off_until_seen_running_again_or_now() -> None:
    entries = [
        entry(0, "nb", "stop"),
        entry(10, "nb", "start"),
        entry(20, "nb", "stop"),
        entry(5, "ep", "delete", cost=2.0, outcome="deleted", kind="endpoint", team="web"),
        entry(8, "ep", "restore", cost=None, outcome="restored", kind="endpoint", team="web"),
        entry(1, "failed", "stop", outcome="failed: denied"),
        entry(2, "announced", "delete:announce", outcome="delete scheduled for x"),
    ]
    now = T0 + timedelta(hours=30)
    intervals = off_intervals(entries, now)
    assert sorted((i.entry.resource, i.hours) for i in intervals) == [
        ("ep", 3.0),
        ("nb", 10.0),
        ("nb", 10.0),
    ]
    by_team = totals_by(intervals, "tag:team")
    assert by_team["ml"].hours == 20.0 and by_team["ml"].saved == {"USD": 20.0}
    assert by_team["web"].saved == {"USD": 6.0}
    assert set(totals_by(intervals, "kind")) == {"endpoint", "notebook"}


def test_since_clips_and_unknown_prices_are_counted() -> None:
    entries = [entry(0, "nb", "stop", cost=None)]
    now = T0 + timedelta(hours=10)
    [interval] = off_intervals(entries, now, since=T0 + timedelta(hours=4))
    assert interval.hours == pytest.approx(6.0) and interval.saved is None
    assert totals_by([interval], "region")["us-east-1"].unknown == 1


def test_a_released_warm_pool_saves_only_until_it_would_have_ended_by_itself() -> None:
    released = replace(
        entry(1, "tune-7", "release", cost=2.0, outcome="released: ...", kind="training-job"),
        off_until=T0 + timedelta(hours=1, minutes=30),
    )
    [interval] = off_intervals([released], now=T0 + timedelta(hours=10))
    assert (interval.start, interval.end) == (T0 + timedelta(hours=1), released.off_until)
    assert (interval.hours, interval.saved) == (0.5, 1.0)
    # Before its keep-alive end, the interval is clipped to now.
    [early] = off_intervals([released], now=T0 + timedelta(hours=1, minutes=6))
    assert early.hours == pytest.approx(0.1)
    # A dry run or a skipped release saves nothing.
    skipped = replace(
        released, outcome="skipped: its warm pool is now InUse", status=Outcome.SKIPPED
    )
    assert off_intervals([skipped, replace(released, dry_run=True)], T0 + timedelta(hours=9)) == []
    assert totals_by([interval], "kind")["training-job"].saved == {"USD": 1.0}


def test_an_open_interval_ends_where_a_run_last_saw_its_kind_whole() -> None:
    """What happened after the last complete scan (someone created the endpoint again, or
    started the instance by hand) is not known yet: the hours are counted up to that scan."""
    entries = [
        entry(0, "ep", "delete", cost=2.0, kind="endpoint"),
        entry(1, "nb", "stop"),
        entry(5, "nb", "start"),
        entry(6, "nb2", "stop"),
    ]
    now = T0 + timedelta(hours=30)
    seen = {"endpoint": T0 + timedelta(hours=10)}
    hours = {i.entry.resource: i.hours for i in off_intervals(entries, now, seen=seen)}
    assert hours == {"ep": 10.0, "nb": 4.0, "nb2": 24.0}  # notebooks never seen: up to now
    before = {"endpoint": T0 - timedelta(hours=1)}  # seen before the deletion: nothing counted
    assert "ep" not in {i.entry.resource for i in off_intervals(entries, now, seen=before)}
