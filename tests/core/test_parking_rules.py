"""The pure rules of parking endpoints: which are parked (from the ledger's entries), which a
run parks and brings back, the park's last-moment guard, and the savings of parked hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sagesaver.core.guard import Observed, Verdict
from sagesaver.core.policy import parse_policy
from sagesaver.core.records import Entry, Outcome
from sagesaver.core.rules.parking import (
    ParkPlan,
    comes_back,
    guard_park,
    last_park_backup,
    parked,
    plan_parks,
    plan_unparks,
    protected,
    targeting,
    wants_stopped,
)
from sagesaver.core.savings import off_intervals
from tests.factories import ACCOUNT, resource

SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = parse_policy(
    """
schedules:
  office:
    timezone: Asia/Shanghai
    calendar: CN
    periods: [{weekdays: mon-fri, begin: "07:00", end: "21:00"}]
    name_contains: dev-
    resources: [notebooks, endpoints]
  lab:
    periods: [{begin: "08:00", end: "18:00"}]
    name_contains: lab-
"""
)
REGION = "cn-north-1"


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(timezone.utc)


def entry(
    action: str, at: datetime, status: Outcome = Outcome.DONE, name: str = "dev-a", **more: object
) -> Entry:
    fields: dict[str, object] = {
        "at": at,
        "account": ACCOUNT,
        "region": REGION,
        "kind": "endpoint",
        "resource": name,
        "action": action,
        "rule": "schedule:office",
        "reason": "test",
        "hourly_cost": 2.0,
        "dry_run": False,
        "outcome": "test",
        "status": status,
        "backup_ref": f"{name}-{action}-{at:%H%M}",
    }
    fields.update(more)
    return Entry(**fields)  # type: ignore[arg-type]


TUESDAY_STOP = local(2026, 3, 10, 21)


def test_the_defaults_keep_the_meaning_of_existing_policies() -> None:
    lab = POLICY.schedules["lab"]
    assert lab.resources == ["notebooks"] and not lab.targets("endpoints")
    assert (lab.quiet_minutes, lab.lead_minutes) == (30, 20)
    assert list(targeting(POLICY, "endpoints").schedules) == ["office"]
    assert list(targeting(POLICY, "notebooks").schedules) == ["office", "lab"]


@pytest.mark.parametrize(("key", "value"), [("quiet_minutes", 1441), ("lead_minutes", -1)])
def test_minutes_out_of_range_are_refused(key: str, value: int) -> None:
    from sagesaver.core.errors import PolicyError

    text = f"schedules:\n  a:\n    periods: [{{begin: '07:00', end: '21:00'}}]\n    {key}: {value}"
    with pytest.raises(PolicyError, match=f"schedules.a.{key}"):
        parse_policy(text)


def test_parked_is_the_newest_confirmed_act() -> None:
    park = entry("park", TUESDAY_STOP)
    assert set(parked([park])) == {(ACCOUNT, REGION, "dev-a")}
    assert parked([park, entry("unpark", TUESDAY_STOP + timedelta(hours=9))]) == {}
    # a restore alone (an unpark cut short after CreateEndpoint) leaves it to be resumed
    restored = entry("restore", TUESDAY_STOP + timedelta(hours=2))
    assert set(parked([park, restored])) == {(ACCOUNT, REGION, "dev-a")}
    # a failed unpark leaves it parked; an unconfirmed park is not parked at all
    failed = entry("unpark", TUESDAY_STOP + timedelta(hours=9), Outcome.FAILED)
    assert set(parked([park, failed])) == {(ACCOUNT, REGION, "dev-a")}
    assert parked([entry("park", TUESDAY_STOP, Outcome.UNCONFIRMED)]) == {}
    # the last cycle's backup: the newest carried-out park
    later = entry("park", TUESDAY_STOP + timedelta(days=1))
    assert last_park_backup([park, later], ACCOUNT, REGION, "dev-a") == later.backup_ref


def test_a_run_at_the_stop_parks_the_targeted_unprotected_endpoints() -> None:
    now = TUESDAY_STOP
    plan = ParkPlan()
    stopping = wants_stopped(POLICY, ["office"], now, lambda name: None, plan)
    assert stopping == {"office": now}
    fleet = [
        resource("dev-a", now, region=REGION),
        resource("dev-kept", now, region=REGION, tags={"sagesaver:protect": "yes"}),
        resource("dev-off", now, region=REGION, tags={"sagesaver:protect": "off"}),
        resource("lab-x", now, region=REGION),  # its schedule parks no endpoints
        resource("prod", now, region=REGION),
    ]
    plan_parks(fleet, POLICY, stopping, {}, None, plan)
    assert [p.resource.name for p in plan.parks] == ["dev-a", "dev-off"]
    assert [(s.name, "protected" in s.reason) for s in plan.skipped] == [("dev-kept", True)]
    # the run after it: the stop is behind its watermark, nothing more is parked
    later = ParkPlan()
    assert (
        wants_stopped(POLICY, ["office"], now + timedelta(minutes=10), lambda n: now, later) == {}
    )
    assert "parks nothing" in later.quiet["office"]


def test_unpark_comes_lead_minutes_before_a_working_days_start() -> None:
    park = entry("park", TUESDAY_STOP)
    schedule = POLICY.schedules["office"].build("office")
    assert comes_back(schedule, 20, TUESDAY_STOP) == local(2026, 3, 11, 6, 40)
    for moment, due in [
        (local(2026, 3, 11, 6, 30), False),
        (local(2026, 3, 11, 6, 40), True),
        (local(2026, 3, 11, 9, 0), True),  # a missed morning is caught up
    ]:
        plan = ParkPlan()
        plan_unparks(
            [parked([park])[(ACCOUNT, REGION, "dev-a")]], POLICY, REGION, moment, None, plan
        )
        assert bool(plan.unparks) is due, moment
    # parked on the eve of Golden Week: it stays parked until the next working day
    eve = entry("park", local(2026, 9, 30, 21))
    assert comes_back(schedule, 20, local(2026, 9, 30, 21)) == local(2026, 10, 8, 6, 40)
    plan = ParkPlan()
    plan_unparks(
        list(parked([eve]).values()), POLICY, REGION, local(2026, 10, 1, 6, 45), None, plan
    )
    assert plan.unparks == []


def test_an_endpoint_parked_by_a_schedule_gone_from_the_policy_is_reported() -> None:
    park = entry("park", TUESDAY_STOP, rule="schedule:retired")
    plan = ParkPlan()
    plan_unparks(list(parked([park]).values()), POLICY, REGION, local(2026, 3, 11, 7), None, plan)
    assert plan.unparks == [] and "sagesaver restore dev-a" in plan.skipped[0].reason


def observed(now: datetime, invocations: float = 0, status: str = "InService") -> Observed:
    created = now - timedelta(days=1)
    return Observed(status, created, created, {}, invocations, now)


@pytest.mark.parametrize(
    ("facts", "verdict", "words"),
    [
        ({}, Verdict.ACT, "no invocations in the last 30 minutes"),
        ({"invocations": 2}, Verdict.KEEP, "2 invocations in the last 30 minutes"),
        ({"status": "Updating"}, Verdict.KEEP, "state is now Updating"),
        ({"protected": True}, Verdict.KEEP, "protected"),
        ({"config_now": "v2"}, Verdict.KEEP, "changed since its last unpark"),
        ({"created": timedelta(hours=1)}, Verdict.KEEP, "another endpoint has its name"),
    ],
)
def test_the_last_moment_guard_of_a_park(
    facts: dict[str, object], verdict: Verdict, words: str
) -> None:
    now = TUESDAY_STOP
    seen = observed(now, float(facts.get("invocations", 0)), str(facts.get("status", "InService")))
    expected = seen.created + facts["created"] if "created" in facts else seen.created  # type: ignore[operator]
    guarded = guard_park(
        expected,
        seen,
        bool(facts.get("protected", False)),
        30,
        str(facts.get("config_now", "v1")),
        "v1",
    )
    assert guarded.verdict is verdict and words in guarded.reason


def test_both_protect_tags_protect() -> None:
    policy = POLICY.model_copy(update={"schedule_protect_tag": "team:keep"})
    assert protected(policy, {"team:keep": "1"}) and protected(policy, {"sagesaver:protect": "y"})
    assert not protected(policy, {"team:keep": "false"})


def test_savings_count_parked_hours_from_confirmed_records_only() -> None:
    park = entry("park", TUESDAY_STOP)
    back = entry("unpark", local(2026, 3, 11, 6, 40))
    (interval,) = off_intervals([park, back], local(2026, 3, 12, 0))
    assert interval.hours == pytest.approx(9 + 40 / 60)
    assert interval.saved == pytest.approx((9 + 40 / 60) * 2.0)
    # still parked: counted to now; a park never confirmed: nothing
    (open_,) = off_intervals([park], TUESDAY_STOP + timedelta(hours=3))
    assert open_.hours == pytest.approx(3)
    assert (
        off_intervals([entry("park", TUESDAY_STOP, Outcome.UNCONFIRMED)], local(2026, 3, 12, 0))
        == []
    )


def test_a_schedule_that_parks_also_ticks_often_enough_to_unpark_early() -> None:
    """The deployed stack's ticks: a boundary tick at the start would bring endpoints back
    late, so a schedule that parks also runs every interval_minutes, at most lead_minutes."""
    from sagesaver.core.rules.schedules import tick_invocations

    def rates(text: str) -> dict[str, str]:
        return {
            tick.schedule: tick.expression
            for tick in tick_invocations(parse_policy(text))
            if tick.expression.startswith("rate(")
        }

    base = 'timezone: Asia/Shanghai\n    periods: [{begin: "07:00", end: "21:00"}]\n'
    assert rates(f"schedules:\n  lab:\n    {base}") == {}  # notebooks only: boundaries
    parks = f"schedules:\n  office:\n    {base}    resources: [endpoints]\n"
    assert rates(parks) == {"office": "rate(10 minutes)"}
    assert rates(parks + "    lead_minutes: 4\n") == {"office": "rate(4 minutes)"}
    assert rates(parks + "    lead_minutes: 0\n    interval_minutes: 15\n") == {
        "office": "rate(15 minutes)"
    }
