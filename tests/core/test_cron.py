"""The pure schedule logic: cron dialects, periods, and daylight saving."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagesaver.core.cron import (
    Boundary,
    Schedule,
    ScheduleError,
    Transition,
    make_period,
    parse_cron,
    parse_weekdays,
    to_instant,
)

UTC = timezone.utc
BERLIN, NEW_YORK, SYDNEY = (
    ZoneInfo(z) for z in ("Europe/Berlin", "America/New_York", "Australia/Sydney")
)
START, STOP = Transition.START, Transition.STOP
UTC_ZONE = ZoneInfo("UTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def crons(start: str, stop: str, tz: ZoneInfo = UTC_ZONE) -> Schedule:
    return Schedule("s", tz, start=parse_cron(start), stop=parse_cron(stop))


def periods(weekdays: str, begin: str, end: str, tz: ZoneInfo) -> Schedule:
    return Schedule("p", tz, periods=(make_period(weekdays, begin, end),))


# --- cron dialects ------------------------------------------------------------------------


def test_seed_example_boundaries_in_utc() -> None:
    seed = crons("cron(0 7 ? * MON-FRI *)", "cron(0 21 ? * MON-FRI *)")
    # Monday 2026-11-30 .. Sunday 2026-12-06
    found = seed.boundaries(utc(2026, 11, 29, 23, 0), utc(2026, 12, 6, 23, 0))
    assert [b.at.weekday() for b in found if b.transition is START] == [0, 1, 2, 3, 4]
    assert {b.at.hour for b in found if b.transition is START} == {7}
    assert {b.at.hour for b in found if b.transition is STOP} == {21}
    assert len(found) == 10


def test_classic_and_eventbridge_syntax_agree() -> None:
    eventbridge = crons("cron(30 6 ? * 2-6 *)", "cron(0 18 ? * MON-FRI *)")
    classic = crons("30 6 * * 1-5", "0 18 * * mon-fri")
    window = (utc(2026, 1, 1), utc(2026, 3, 1))
    assert eventbridge.boundaries(*window) == classic.boundaries(*window)


def test_eventbridge_special_fields() -> None:
    last_friday = parse_cron("cron(0 9 ? * 6L *)")
    first_monday = parse_cron("cron(0 9 ? * 2#1 *)")
    only_2027 = parse_cron("cron(0 9 1 * ? 2027)")
    sched = Schedule("x", ZoneInfo("UTC"), start=last_friday, stop=first_monday)
    found = sched.boundaries(utc(2026, 1, 1), utc(2026, 2, 1))
    assert found == [Boundary(utc(2026, 1, 5, 9), STOP), Boundary(utc(2026, 1, 30, 9), START)]
    yearly = Schedule("y", ZoneInfo("UTC"), start=only_2027)
    assert yearly.boundaries(utc(2026, 1, 1), utc(2026, 12, 31)) == []
    assert len(yearly.boundaries(utc(2026, 12, 31), utc(2028, 1, 1))) == 12


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cron(0 7 * * MON-FRI *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("cron(0 7 ? * MON-FRI)", "needs 6 fields"),
        ("cron(61 7 ? * MON *)", "not a valid cron expression"),
        ("cron(0 7 ? * 8 *)", "out of range 1-7"),
        ("cron(0 7 ? * FUN *)", "unknown day of week"),
        ("cron(0 7 ? * MON 26)", "year field"),
        ("0 7 * *", "5 classic fields"),
        ("0 25 * * *", "not a valid cron expression"),
        ("every day at 7", "5 classic fields"),
    ],
)
def test_invalid_crons(text: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem):
        parse_cron(text)


# --- periods ------------------------------------------------------------------------------


def test_weekday_specs() -> None:
    assert parse_weekdays("mon-fri") == frozenset(range(5))
    assert parse_weekdays("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_weekdays("mon,wed,Friday") == frozenset({0, 2, 4})
    assert parse_weekdays("daily") == frozenset(range(7))
    for bad in ("funday", "mon-", "mon-tue-wed", ""):
        with pytest.raises(ScheduleError):
            parse_weekdays(bad)


@pytest.mark.parametrize(
    ("begin", "end"), [("07:00", "07:00"), ("24:30", "08:00"), ("7h", "8h"), ("12:60", "13:00")]
)
def test_invalid_periods(begin: str, end: str) -> None:
    with pytest.raises(ScheduleError):
        make_period("mon-fri", begin, end)


def test_overnight_period_runs_into_the_next_day() -> None:
    night = periods("fri", "22:00", "06:00", ZoneInfo("UTC"))
    assert night.desired(utc(2026, 12, 4, 23, 0)) is START  # Friday night
    assert night.desired(utc(2026, 12, 5, 5, 59)) is START  # Saturday early
    assert night.desired(utc(2026, 12, 5, 6, 0)) is STOP
    assert night.desired(utc(2026, 12, 3, 23, 0)) is STOP  # Thursday night


def test_period_until_midnight() -> None:
    evening = periods("mon", "18:00", "24:00", ZoneInfo("UTC"))
    assert evening.desired(utc(2026, 11, 30, 23, 59)) is START
    assert evening.desired(utc(2026, 12, 1, 0, 0)) is STOP


def test_month_end_and_year_end() -> None:
    office = periods("mon-fri", "07:00", "21:00", ZoneInfo("UTC"))
    found = office.boundaries(utc(2026, 12, 31, 0, 0), utc(2027, 1, 4, 8, 0))
    assert [(b.at.day, b.transition) for b in found] == [
        (31, START),
        (31, STOP),
        (1, START),
        (1, STOP),
        (4, START),
    ]


# --- daylight saving -----------------------------------------------------------------------


def test_spring_forward_gap_takes_effect_at_the_first_instant_after() -> None:
    # Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    assert to_instant(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1, 0)
    daily = crons("30 2 * * *", "0 23 * * *", BERLIN)
    starts = [
        b.at for b in daily.boundaries(utc(2026, 3, 27), utc(2026, 3, 31)) if b.transition is START
    ]
    assert starts == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 30, 0, 30),
    ]


def test_fall_back_repeated_time_acts_once_at_first_occurrence() -> None:
    # America/New_York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 occurs twice.
    daily = crons("30 1 * * *", "0 23 * * *", NEW_YORK)
    starts = [
        b.at for b in daily.boundaries(utc(2026, 10, 31), utc(2026, 11, 3)) if b.transition is START
    ]
    assert starts == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_quarter_hourly_cron_in_the_gap_does_not_fire_twice() -> None:
    every_15 = crons("*/15 2 * * *", "0 12 * * *", BERLIN)
    starts = [
        b.at
        for b in every_15.boundaries(utc(2026, 3, 29, 0), utc(2026, 3, 29, 3))
        if b.transition is START
    ]
    assert starts == [utc(2026, 3, 29, 1, 0)]


def test_sydney_offsets_across_its_dst_changes() -> None:
    office = periods("mon-fri", "09:00", "17:00", SYDNEY)
    # Before 2026-04-05 Sydney is UTC+11, after it UTC+10.
    assert office.next_transitions(utc(2026, 4, 1, 12, 0))[START] == utc(2026, 4, 1, 22, 0)
    assert office.next_transitions(utc(2026, 4, 6, 12, 0))[START] == utc(2026, 4, 6, 23, 0)


def test_next_transitions_for_crons() -> None:
    seed = crons("cron(0 7 ? * MON-FRI *)", "cron(0 21 ? * MON-FRI *)")
    nxt = seed.next_transitions(utc(2026, 12, 4, 22, 0))  # Friday night
    assert nxt == {START: utc(2026, 12, 7, 7, 0), STOP: utc(2026, 12, 7, 21, 0)}


def test_desired_state_for_crons() -> None:
    seed = crons("cron(0 7 ? * MON-FRI *)", "cron(0 21 ? * MON-FRI *)")
    assert seed.desired(utc(2026, 11, 30, 12, 0)) is START
    assert seed.desired(utc(2026, 12, 5, 12, 0)) is STOP  # Saturday
    assert crons("0 7 * * *", "0 7 1 1 *").desired(utc(2026, 6, 1, 6, 0)) is START


# --- properties ----------------------------------------------------------------------------

zones = st.sampled_from([BERLIN, NEW_YORK, SYDNEY])
# Instants around the DST changes of 2026 in all three zones, and ordinary days.
moments = st.datetimes(
    min_value=datetime(2026, 3, 20), max_value=datetime(2026, 11, 10), timezones=st.just(UTC)
)
# Clock times outside 01:00-03:59 keep clear of every DST gap or repeat in these zones.
clock = st.integers(min_value=4 * 60, max_value=23 * 60 + 59).map(lambda m: time(m // 60, m % 60))
weekday_sets = st.sampled_from(["mon-fri", "sat-sun", "daily", "mon,wed,fri", "fri-mon"])


def oracle(weekdays: frozenset[int], begin: time, end: time, local: datetime) -> bool:
    """Whether a period wants the instance running at a local wall-clock time."""
    today, now = local.weekday(), local.time()
    if begin < end:
        return today in weekdays and begin <= now < end
    yesterday = (today - 1) % 7
    return (today in weekdays and now >= begin) or (yesterday in weekdays and now < end)


@settings(max_examples=300, deadline=None)
@given(tz=zones, moment=moments, begin=clock, end=clock, days=weekday_sets)
def test_property_period_desired_state_matches_local_wall_clock(
    tz: ZoneInfo, moment: datetime, begin: time, end: time, days: str
) -> None:
    if begin == end:
        return
    schedule = periods(days, begin.strftime("%H:%M"), end.strftime("%H:%M"), tz)
    wanted = oracle(parse_weekdays(days), begin, end, moment.astimezone(tz))
    assert (schedule.desired(moment) is START) == wanted


@settings(max_examples=200, deadline=None)
@given(
    tz=zones,
    moment=moments,
    split=st.integers(min_value=1, max_value=72 * 60),
    hour=st.integers(0, 23),
)
def test_property_boundaries_split_cleanly(
    tz: ZoneInfo, moment: datetime, split: int, hour: int
) -> None:
    """Two consecutive runs see the boundaries one longer run sees: none lost, none twice."""
    schedule = crons(f"*/20 {hour} * * *", f"45 {hour} * * *", tz)
    middle = moment + timedelta(minutes=split)
    end = middle + timedelta(hours=30)
    assert schedule.boundaries(moment, middle) + schedule.boundaries(
        middle, end
    ) == schedule.boundaries(moment, end)


@settings(max_examples=200, deadline=None)
@given(tz=zones, hour=st.integers(0, 23), minute=st.integers(0, 59), day=st.integers(0, 300))
def test_property_a_daily_cron_fires_exactly_once_every_local_day(
    tz: ZoneInfo, hour: int, minute: int, day: int
) -> None:
    schedule = crons(f"{minute} {hour} * * *", "0 0 1 1 *", tz)
    local_day = datetime(2026, 1, 1) + timedelta(days=day)
    after = to_instant(local_day, tz) - timedelta(seconds=1)
    until = to_instant(local_day + timedelta(days=1), tz) - timedelta(seconds=1)
    starts = [b for b in schedule.boundaries(after, until) if b.transition is START]
    assert len(starts) == 1
    assert starts[0].at.astimezone(tz).date() == local_day.date()


def test_classic_numeric_days_export_to_eventbridge_numbering() -> None:
    from sagesaver.core.cron import cron_to_eventbridge

    assert cron_to_eventbridge(parse_cron("0 7 * * 1-5")) == "cron(0 7 ? * 2-6 *)"
    assert cron_to_eventbridge(parse_cron("0 7 1 * *")) == "cron(0 7 1 * ? *)"
    assert cron_to_eventbridge(parse_cron("cron(0 9 ? * 6L 2027)")) == "cron(0 9 ? * 6L 2027)"
    assert cron_to_eventbridge(parse_cron("cron(0 9 ? * 2#1 *)")) == "cron(0 9 ? * 2#1 *)"
    with pytest.raises(ScheduleError, match="both day-of-month and day-of-week"):
        cron_to_eventbridge(parse_cron("0 7 1 * 1"))
