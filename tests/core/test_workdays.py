"""Working days: a schedule's ``calendar`` (public holidays and official make-up workdays, from
the holidays library), ``skip_dates`` and ``work_dates``. Pure: fixed dates, no clock.

China's 2026 (国务院办公厅, November 2025): 1 to 7 October and 15 to 23 February are days off;
Saturday 14 February, Saturday 28 February and Saturday 10 October are workdays (调休).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagesaver.core.cron import Transition, to_eventbridge_expressions
from sagesaver.core.errors import PolicyError
from sagesaver.core.policy import ScheduleSpec, parse_policy
from sagesaver.core.rules.schedules import tick_invocations, wanted
from sagesaver.core.workdays import DayKind, holiday_calendar

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")
START, STOP = Transition.START, Transition.STOP
OFFICE = {"weekdays": "mon-fri", "begin": "07:00", "end": "21:00"}
# Far enough ahead that no release of the library has China's make-up workdays for it.
UNPUBLISHED = 2031


def spec(**fields: object) -> ScheduleSpec:
    values: dict[str, object] = {"timezone": "Asia/Shanghai", "periods": [OFFICE]}
    values.update(fields)
    return ScheduleSpec.model_validate(values)


def beijing(day: date, hour: int, minute: int = 0) -> datetime:
    """A Beijing wall-clock time as a UTC instant."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def day_of(spec_: ScheduleSpec, day: date) -> list[tuple[str, str]]:
    """The boundaries of one Beijing day: (local HH:MM, start|stop)."""
    schedule = spec_.build("office")
    found = schedule.boundaries(beijing(day, 0) - timedelta(seconds=1), beijing(day, 23, 59))
    return [(f"{b.at.astimezone(SHANGHAI):%H:%M}", b.transition.value) for b in found]


HOLIDAY_THURSDAY = date(2026, 10, 1)
MAKEUP_SATURDAY_OCT = date(2026, 10, 10)
MAKEUP_SATURDAY_FEB = date(2026, 2, 14)
HOLIDAY_MONDAY = date(2026, 2, 16)
ORDINARY_TUESDAY = date(2026, 3, 10)
ORDINARY_SATURDAY = date(2026, 3, 14)


def test_the_cn_calendar_knows_2026s_holidays_and_make_up_workdays() -> None:
    cn = spec(calendar="CN").build("office")
    assert cn.days is not None
    kinds = {d: cn.days.day(d).kind for d in (HOLIDAY_THURSDAY, MAKEUP_SATURDAY_OCT,
             MAKEUP_SATURDAY_FEB, HOLIDAY_MONDAY, ORDINARY_TUESDAY, ORDINARY_SATURDAY)}  # fmt: skip
    assert kinds == {
        HOLIDAY_THURSDAY: DayKind.HOLIDAY,
        MAKEUP_SATURDAY_OCT: DayKind.MAKEUP,
        MAKEUP_SATURDAY_FEB: DayKind.MAKEUP,
        HOLIDAY_MONDAY: DayKind.HOLIDAY,
        ORDINARY_TUESDAY: DayKind.ORDINARY,
        ORDINARY_SATURDAY: DayKind.ORDINARY,
    }
    assert cn.days.day(HOLIDAY_THURSDAY).label == "CN public holiday: National Day"
    assert cn.days.day(HOLIDAY_MONDAY).label == "CN public holiday: Chinese New Year's Eve"
    assert cn.days.day(MAKEUP_SATURDAY_OCT).label == "CN make-up workday"
    # every weekday of Golden Week and of the Spring Festival: a day off
    golden_week = [HOLIDAY_THURSDAY + timedelta(days=n) for n in range(7)]
    spring = [date(2026, 2, n) for n in range(15, 24)]
    weekdays = [d for d in golden_week + spring if d.weekday() < 5]
    assert len(weekdays) == 5 + 6
    assert all(cn.days.day(d).kind is DayKind.HOLIDAY for d in weekdays)


@pytest.mark.parametrize(
    "policy",
    [
        spec(calendar="CN"),
        spec(
            calendar="CN",
            periods=None,
            start="cron(0 7 ? * MON-FRI *)",
            stop="cron(0 21 ? * MON-FRI *)",
        ),
        spec(calendar="CN", periods=None, start="0 7 * * 1-5", stop="0 21 * * 1-5"),
    ],
    ids=["periods", "eventbridge-cron", "classic-cron"],
)
def test_a_weekday_schedule_starts_on_working_days_only(policy: ScheduleSpec) -> None:
    office_day = [("07:00", "start"), ("21:00", "stop")]
    assert day_of(policy, ORDINARY_TUESDAY) == office_day
    assert day_of(policy, ORDINARY_SATURDAY) == []
    # a public holiday: no start; the stop stays (a no-op when nothing was started)
    assert day_of(policy, HOLIDAY_THURSDAY) == [("21:00", "stop")]
    assert day_of(policy, HOLIDAY_MONDAY) == [("21:00", "stop")]
    # an official make-up Saturday runs as a working day (as the schedule's Monday)
    assert day_of(policy, MAKEUP_SATURDAY_OCT) == office_day
    assert day_of(policy, MAKEUP_SATURDAY_FEB) == office_day


def test_without_a_calendar_nothing_changes() -> None:
    plain = spec()
    assert day_of(plain, HOLIDAY_THURSDAY) == [("07:00", "start"), ("21:00", "stop")]
    assert day_of(plain, MAKEUP_SATURDAY_OCT) == []
    assert plain.build("office").days is None


def test_a_make_up_day_follows_the_first_working_weekday_the_schedule_starts_on() -> None:
    uneven = spec(
        calendar="CN",
        periods=[
            {"weekdays": "tue-thu", "begin": "09:00", "end": "18:00"},
            {"weekdays": "fri", "begin": "09:00", "end": "15:00"},
        ],
    )
    # Tuesday's rule (the first day of the week it starts on), not Friday's
    assert day_of(uneven, MAKEUP_SATURDAY_OCT) == [("09:00", "start"), ("18:00", "stop")]
    # a schedule that already runs on Saturdays keeps its own Saturday rule
    weekends = spec(
        calendar="CN",
        periods=[OFFICE, {"weekdays": "sat", "begin": "10:00", "end": "14:00"}],
    )
    assert day_of(weekends, MAKEUP_SATURDAY_OCT) == [("10:00", "start"), ("14:00", "stop")]


def test_a_daily_period_with_a_calendar_skips_holidays() -> None:
    daily = spec(calendar="CN", periods=[{"weekdays": "daily", "begin": "08:00", "end": "20:00"}])
    assert day_of(daily, HOLIDAY_THURSDAY) == [("20:00", "stop")]
    assert day_of(daily, ORDINARY_SATURDAY) == [("08:00", "start"), ("20:00", "stop")]
    assert day_of(daily, MAKEUP_SATURDAY_OCT) == [("08:00", "start"), ("20:00", "stop")]


def test_an_overnight_period_keeps_its_stop_on_the_day_after_a_holiday() -> None:
    night = spec(calendar="CN", periods=[{"weekdays": "mon-fri", "begin": "22:00", "end": "06:00"}])
    # Wednesday 30 September starts; Thursday 1 October (a holiday) does not
    assert day_of(night, date(2026, 9, 30)) == [("06:00", "stop"), ("22:00", "start")]
    assert day_of(night, HOLIDAY_THURSDAY) == [("06:00", "stop")]
    assert day_of(night, date(2026, 10, 2)) == [("06:00", "stop")]
    # the make-up Saturday starts at 22:00 (Friday's night ends at 06:00), stops on Sunday
    assert day_of(night, MAKEUP_SATURDAY_OCT) == [("06:00", "stop"), ("22:00", "start")]
    assert day_of(night, date(2026, 10, 11)) == [("06:00", "stop")]


def test_skip_dates_and_work_dates_are_the_companys_own_days() -> None:
    own = spec(
        calendar="CN",
        skip_dates=["2026-03-10"],  # a company day off on an ordinary Tuesday
        work_dates=["2026-03-14", "2026-10-01"],  # a Saturday, and a holiday worked anyway
    )
    days = own.build("office").days
    assert days is not None
    assert days.day(ORDINARY_TUESDAY).kind is DayKind.DAY_OFF
    assert days.day(ORDINARY_TUESDAY).label == "day off (skip_dates)"
    assert days.day(ORDINARY_SATURDAY).kind is DayKind.WORKDAY
    assert days.day(HOLIDAY_THURSDAY).kind is DayKind.WORKDAY
    assert day_of(own, ORDINARY_TUESDAY) == [("21:00", "stop")]
    assert day_of(own, ORDINARY_SATURDAY) == [("07:00", "start"), ("21:00", "stop")]
    assert day_of(own, HOLIDAY_THURSDAY) == [("07:00", "start"), ("21:00", "stop")]
    # without a calendar too
    alone = spec(skip_dates=[date(2026, 3, 10)], work_dates=[date(2026, 3, 14)])
    assert day_of(alone, ORDINARY_TUESDAY) == [("21:00", "stop")]
    assert day_of(alone, ORDINARY_SATURDAY) == [("07:00", "start"), ("21:00", "stop")]
    assert day_of(alone, HOLIDAY_THURSDAY) == [("07:00", "start"), ("21:00", "stop")]


def test_a_year_the_calendar_has_no_data_for_follows_the_weekday_rule_and_says_so() -> None:
    cn = spec(calendar="CN", skip_dates=[f"{UNPUBLISHED}-03-04"]).build("office")
    assert cn.days is not None
    national_day = date(UNPUBLISHED, 10, 1)
    assert national_day.weekday() < 5
    assert cn.days.day(national_day).kind is DayKind.ORDINARY  # not known yet: a weekday
    assert cn.days.day(date(UNPUBLISHED, 3, 4)).kind is DayKind.DAY_OFF  # own days still apply
    assert day_of(spec(calendar="CN"), national_day) == [("07:00", "start"), ("21:00", "stop")]
    notes = cn.gap_notes(beijing(date(2026, 12, 30), 8), beijing(date(UNPUBLISHED, 1, 5), 8))
    assert len(notes) == UNPUBLISHED - 2026
    assert f"calendar CN has no data for {UNPUBLISHED}" in notes[-1]
    assert "weekday rule" in notes[-1]
    assert cn.gap_notes(beijing(date(2026, 10, 1), 8), beijing(date(2026, 10, 9), 8)) == []
    assert (
        spec().build("office").gap_notes(beijing(national_day, 8), beijing(national_day, 9)) == []
    )
    assert holiday_calendar("CN").covers(2026) and not holiday_calendar("CN").covers(UNPUBLISHED)
    assert holiday_calendar("DE-BY").covers(UNPUBLISHED)  # rules alone: every year is known


def test_enforced_and_next_transitions_see_the_calendar() -> None:
    cn = spec(calendar="CN", enforced=True).build("office")
    assert cn.desired(beijing(HOLIDAY_THURSDAY, 10)) is STOP
    assert cn.desired(beijing(MAKEUP_SATURDAY_OCT, 10)) is START
    assert cn.desired(beijing(ORDINARY_TUESDAY, 10)) is START
    upcoming = cn.next_transitions(beijing(date(2026, 9, 30), 22))
    assert upcoming[START] == beijing(date(2026, 10, 8), 7)  # after Golden Week
    assert upcoming[STOP] == beijing(HOLIDAY_THURSDAY, 21)
    before_spring = cn.next_transitions(beijing(date(2026, 2, 13), 22))
    assert before_spring[START] == beijing(MAKEUP_SATURDAY_FEB, 7)
    crons = spec(
        calendar="CN", periods=None, start="cron(0 7 ? * MON-FRI *)", stop="0 21 * * 1-5"
    ).build("office")
    assert crons.next_transitions(beijing(date(2026, 9, 30), 22))[START] == beijing(
        date(2026, 10, 8), 7
    )
    assert crons.desired(beijing(MAKEUP_SATURDAY_OCT, 10)) is START
    assert crons.desired(beijing(HOLIDAY_THURSDAY, 10)) is STOP


def test_a_run_says_why_it_does_not_start_on_a_holiday_and_marks_make_up_days() -> None:
    cn = spec(calendar="CN").build("office")
    holiday = wanted(cn, 10, None, beijing(HOLIDAY_THURSDAY, 7, 5))
    assert holiday.transition is None
    assert "no start on Thu 2026-10-01 (CN public holiday: National Day)" in holiday.reason
    makeup = wanted(cn, 10, None, beijing(MAKEUP_SATURDAY_FEB, 7, 5))
    assert makeup.transition is START
    assert makeup.reason == "start at Sat 07:00 CST (23:00 UTC), CN make-up workday"
    unpublished = wanted(cn, 10, None, beijing(date(UNPUBLISHED, 10, 1), 7, 5))
    assert unpublished.transition is START
    assert [f"no data for {UNPUBLISHED}" in n for n in unpublished.notes] == [True]


def test_daylight_saving_with_a_calendar() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    munich = ScheduleSpec.model_validate(
        {
            "timezone": "Europe/Berlin",
            "calendar": "DE-BY",
            "periods": [{"weekdays": "daily", "begin": "02:30", "end": "09:00"}],
        }
    ).build("munich")
    # Sunday 29 March 2026: 02:30 does not exist; the start is at the first instant after
    spring = munich.boundaries(
        datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 12, tzinfo=UTC)
    )
    assert [(b.at, b.transition) for b in spring] == [
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), START),
        (datetime(2026, 3, 29, 7, 0, tzinfo=UTC), STOP),
    ]
    # Easter Monday (6 April) and Corpus Christi (4 June, Bavaria's): no start
    for holiday in (date(2026, 4, 6), date(2026, 6, 4)):
        local = datetime(holiday.year, holiday.month, holiday.day, tzinfo=berlin)
        found = munich.boundaries(
            local.astimezone(UTC), (local + timedelta(days=1)).astimezone(UTC)
        )
        assert [b.transition for b in found] == [STOP], holiday
    hamburg = ScheduleSpec.model_validate(
        {"timezone": "Europe/Berlin", "calendar": "DE-HH", "periods": [OFFICE]}
    ).build("hamburg")
    assert hamburg.days is not None
    assert hamburg.days.day(date(2026, 6, 4)).kind is DayKind.ORDINARY  # not a holiday there


@settings(max_examples=60, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 3),  # noqa: DTZ001
        max_value=datetime(2026, 12, 28),  # noqa: DTZ001
    )
)
def test_property_enforced_state_is_the_working_day_rule(moment: datetime) -> None:
    """Running exactly from 07:00 to 21:00 (Beijing) on China's working days of 2026."""
    at = moment.replace(tzinfo=UTC)
    cn = spec(calendar="CN", enforced=True).build("office")
    assert cn.days is not None
    local = at.astimezone(SHANGHAI)
    day = cn.days.day(local.date())
    working = day.kind in (DayKind.MAKEUP, DayKind.WORKDAY) or (
        day.kind is DayKind.ORDINARY and local.weekday() < 5
    )
    inside = working and 7 <= local.hour < 21
    assert (cn.desired(at) is START) == inside


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"calendar": "XX"}, "calendar 'XX': no holiday calendar for country XX"),
        ({"calendar": "DE-XX"}, "calendar 'DE-XX': DE has no subdivision XX"),
        ({"calendar": "china"}, "calendar 'china'"),
        ({"skip_dates": ["2026-10-01"], "work_dates": ["2026-10-01"]}, "both skip_dates and"),
        ({"skip_dates": ["2026-02-30"]}, "skip_dates"),
    ],
)
def test_bad_calendars_and_dates_are_refused_with_their_key(
    fields: dict[str, object], problem: str
) -> None:
    import yaml

    body = {"timezone": "Asia/Shanghai", "periods": [OFFICE], **fields}
    text = yaml.safe_dump({"schedules": {"office": body}})
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    assert problem in str(caught.value) and "schedules.office" in str(caught.value)


def test_calendar_codes_are_read_as_iso_3166() -> None:
    policy = parse_policy(
        "schedules:\n"
        "  a: {calendar: cn, periods: [{begin: '07:00', end: '21:00'}]}\n"
        "  b: {calendar: de-by, periods: [{begin: '07:00', end: '21:00'}]}\n"
    )
    assert policy.schedules["a"].calendar == "CN"
    assert policy.schedules["b"].calendar == "DE-BY"


def test_the_tick_runs_every_day_for_a_schedule_with_a_calendar() -> None:
    """EventBridge Scheduler cannot tell holidays: the boundaries' ticks run on every day of
    the week, and the tick's own planning leaves out the days that are not working days."""
    with_calendar = spec(calendar="CN").build("office")
    assert to_eventbridge_expressions(with_calendar) == [
        (START, "cron(0 7 ? * * *)"),
        (STOP, "cron(0 21 ? * * *)"),
    ]
    crons = spec(
        calendar="CN", periods=None, start="cron(0 7 ? * MON-FRI *)", stop="0 21 * * 1-5"
    ).build("office")
    assert to_eventbridge_expressions(crons) == [
        (START, "cron(0 7 ? * * *)"),
        (STOP, "cron(0 21 ? * * *)"),
    ]
    worked = spec(work_dates=["2026-03-14"]).build("office")
    assert [e for _, e in to_eventbridge_expressions(worked)] == [
        "cron(0 7 ? * * *)",
        "cron(0 21 ? * * *)",
    ]
    # skip_dates alone only take starts away: the weekday ticks suffice
    skipping = spec(skip_dates=["2026-03-10"]).build("office")
    assert [e for _, e in to_eventbridge_expressions(skipping)] == [
        "cron(0 7 ? * MON,TUE,WED,THU,FRI *)",
        "cron(0 21 ? * MON,TUE,WED,THU,FRI *)",
    ]
    policy = parse_policy(
        "schedules:\n  office:\n    timezone: Asia/Shanghai\n    calendar: CN\n"
        "    periods: [{weekdays: mon-fri, begin: '07:00', end: '21:00'}]\n"
    )
    [start, stop] = tick_invocations(policy)
    assert (start.expression, start.timezone) == ("cron(0 7 ? * * *)", "Asia/Shanghai")
    assert "every day: calendar CN" in start.description
    assert stop.expression == "cron(0 21 ? * * *)"
