"""Time-zone-aware start/stop schedules: pure logic, no AWS, no clock (``now`` is passed in).

A schedule is either a list of *periods* (``mon-fri 07:00-21:00`` in an IANA time zone; a period
whose end is before its begin runs overnight) or a pair of cron expressions, EventBridge's six
fields (``cron(0 7 ? * MON-FRI *)``) or the classic five (``0 7 * * 1-5``), evaluated in the
schedule's time zone.

Both produce *boundaries*: instants at which instances should start or stop. Local wall-clock
times are turned into instants with two daylight-saving rules:

- a local time that does not exist (spring forward) takes effect at the first instant after the
  gap;
- a local time that occurs twice (fall back) takes effect once, at its first occurrence.

Cron matching is done by ``croniter`` on naive local times; this module adds the EventBridge
dialect (``?``, days of week 1-7 from Sunday, ``nL``, year field) and the time-zone rules.

A schedule with a ``calendar`` or its own dates (:class:`~sagesaver.core.workdays.WorkDays`)
plans day by day, in its time zone: a day off (a public holiday, a date of ``skip_dates``)
keeps its stops and loses its starts; a declared working day (an official make-up workday, a
date of ``work_dates``) on which the weekday rule starts nothing also runs as the *reference
day*, the first day of its week (Monday on, the calendar's weekend left out) on which the rule
starts: a make-up Saturday under ``mon-fri`` runs as Monday. A calendar never removes a stop.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from sagesaver.core.workdays import Day, WorkDays, gap_note

UTC = timezone.utc
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EB_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# How far back to look for the latest boundary when computing the desired state.
DESIRED_STATE_LOOKBACK = timedelta(days=400)
# With working days, how far a schedule looks for its latest or next boundary, step by step
# (the Spring Festival's nine days off fit in the second step).
CALENDAR_WINDOWS = (timedelta(days=8), timedelta(days=40), timedelta(days=400))


class Transition(str, Enum):
    """What a boundary asks for."""

    START = "start"
    STOP = "stop"


@dataclass(frozen=True, order=True)
class Boundary:
    """A moment at which a schedule wants instances started or stopped."""

    at: datetime  # aware, UTC
    transition: Transition


class ScheduleError(ValueError):
    """An invalid schedule expression, period or time zone (the message names it)."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; raises :class:`ScheduleError` when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from exc


def _gap_end(local: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after the daylight-saving gap that swallows ``local`` (naive)."""
    low = local.replace(tzinfo=tz, fold=1).astimezone(UTC)  # read with the offset after
    high = local.replace(tzinfo=tz, fold=0).astimezone(UTC)  # read with the offset before
    if low > high:
        low, high = high, low
    before = low.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def to_instant(local: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall-clock time, with the DST rules of this module."""
    first = local.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != local:  # in a gap: does not exist
        return _gap_end(local, tz)
    return instant


# --- cron ---------------------------------------------------------------------------------


def _eb_day(token: str) -> str:
    """An EventBridge day-of-week (1-7 from Sunday, or a name) as a classic one (0-6)."""
    if token.isdigit():
        number = int(token)
        if not 1 <= number <= 7:
            raise ScheduleError(f"day of week {token} is out of range 1-7 (1 = Sunday)")
        return str(number - 1)
    if token.upper() in _EB_DAY_NAMES:
        return token.upper()
    raise ScheduleError(f"unknown day of week {token!r}")


def _translate_weekdays(field: str, day: Callable[[str], str], to_classic: bool) -> str:
    """Rewrite each day of a day-of-week field with ``day``: lists, ranges, steps, ``n#k``,
    and "last weekday of the month" (EventBridge ``6L``, croniter ``L5``)."""
    parts = []
    for part in field.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/", 1)
            step = "/" + step
        eventbridge_last = re.fullmatch(r"\w+L", part, flags=re.IGNORECASE) and not part.isalpha()
        if to_classic and eventbridge_last:
            parts.append(f"L{day(part[:-1])}")
        elif not to_classic and part.upper().startswith("L") and part[1:].isdigit():
            parts.append(f"{day(part[1:])}L")
        elif "#" in part:
            first, nth = part.split("#", 1)
            parts.append(f"{day(first)}#{nth}{step}")
        elif "-" in part:
            first, last = part.split("-", 1)
            parts.append(f"{day(first)}-{day(last)}{step}")
        else:
            parts.append(f"{day(part)}{step}")
    return ",".join(parts)


def _eb_weekday_field(field: str) -> str:
    """Translate an EventBridge day-of-week field into croniter's classic syntax."""
    if field in ("?", "*"):
        return "*"
    return _translate_weekdays(field, _eb_day, to_classic=True)


def _years(field: str) -> tuple[int, int] | None:
    """The (first, last) years an EventBridge year field allows, or None for any year."""
    if field in ("*", "?"):
        return None
    match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", field)
    if not match:
        raise ScheduleError(f"year field {field!r}: use *, YYYY or YYYY-YYYY")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if last < first:
        raise ScheduleError(f"year field {field!r}: range runs backwards")
    return first, last


@dataclass(frozen=True)
class Cron:
    """A cron expression in classic croniter syntax, with an optional year range."""

    source: str
    expression: str
    years: tuple[int, int] | None = None

    def matches_year(self, year: int) -> bool:
        """Whether the year field allows ``year``."""
        return self.years is None or self.years[0] <= year <= self.years[1]


def parse_cron(text: str) -> Cron:
    """Parse ``cron(m h dom mon dow year)`` (EventBridge) or ``m h dom mon dow`` (classic)."""
    source = text.strip()
    eventbridge = re.fullmatch(r"cron\((.*)\)", source, flags=re.IGNORECASE)
    years = None
    if eventbridge:
        fields = eventbridge.group(1).split()
        if len(fields) != 6:
            raise ScheduleError(
                f"{source!r}: EventBridge cron needs 6 fields "
                "(minutes hours day-of-month month day-of-week year)"
            )
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(
                f"{source!r}: exactly one of day-of-month and day-of-week must be ?"
            )
        years = _years(year)
        expression = " ".join(
            [minute, hour, "*" if dom == "?" else dom, month, _eb_weekday_field(dow)]
        )
    else:
        fields = source.split()
        if len(fields) != 5:
            raise ScheduleError(
                f"{source!r}: use cron(m h dom mon dow year) or 5 classic fields (m h dom mon dow)"
            )
        expression = " ".join("*" if f == "?" else f for f in fields)
    try:
        iterator = croniter(expression, datetime(2026, 1, 1), max_years_between_matches=8)  # noqa: DTZ001 (local wall-clock time)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"{source!r} is not a valid cron expression: {exc}") from exc
    try:
        iterator.get_next(datetime)
    except CroniterError as exc:  # e.g. 0 0 30 2 *: February has no 30th
        raise ScheduleError(f"{source!r} never fires: no date matches it") from exc
    return Cron(source=source, expression=expression, years=years)


def cron_boundaries(
    cron: Cron, tz: ZoneInfo, transition: Transition, after: datetime, until: datetime
) -> list[Boundary]:
    """Boundaries of ``cron`` in (after, until], both aware."""
    margin = timedelta(days=1)  # covers offsets and DST shifts between local and UTC
    start_local = after.astimezone(tz).replace(tzinfo=None) - margin
    end_local = until.astimezone(tz).replace(tzinfo=None) + margin
    found: set[Boundary] = set()
    iterator = croniter(cron.expression, start_local)
    while True:
        local: datetime = iterator.get_next(datetime)
        if local > end_local:
            break
        if not cron.matches_year(local.year):
            if cron.years is not None and local.year > cron.years[1]:
                break
            continue
        instant = to_instant(local, tz)
        if after < instant <= until:
            found.add(Boundary(instant, transition))
    return sorted(found)


def cron_latest_before(
    cron: Cron, tz: ZoneInfo, transition: Transition, moment: datetime
) -> Boundary | None:
    """The latest boundary of ``cron`` at or before ``moment`` (within the look-back)."""
    floor = moment - DESIRED_STATE_LOOKBACK
    local_moment = moment.astimezone(tz).replace(tzinfo=None) + timedelta(days=1)
    iterator = croniter(cron.expression, local_moment)
    while True:
        local: datetime = iterator.get_prev(datetime)
        instant = to_instant(local, tz)
        if instant < floor:
            return None
        if instant <= moment and cron.matches_year(local.year):
            return Boundary(instant, transition)


def cron_next_after(
    cron: Cron, tz: ZoneInfo, transition: Transition, moment: datetime
) -> Boundary | None:
    """The first boundary of ``cron`` after ``moment`` (within a year)."""
    horizon = moment + timedelta(days=400)
    local_moment = moment.astimezone(tz).replace(tzinfo=None) - timedelta(days=1)
    iterator = croniter(cron.expression, local_moment)
    while True:
        local: datetime = iterator.get_next(datetime)
        instant = to_instant(local, tz)
        if instant > horizon:
            return None
        if instant > moment and cron.matches_year(local.year):
            return Boundary(instant, transition)


# --- periods ------------------------------------------------------------------------------


_DAY_INDEX = {
    **{name: i for i, name in enumerate(WEEKDAYS)},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}


def _day_index(token: str, text: str) -> int:
    index = _DAY_INDEX.get(token.strip().lower())
    if index is None:
        raise ScheduleError(f"weekdays {text!r}: unknown day name {token.strip()!r}")
    return index


def parse_weekdays(text: str) -> frozenset[int]:
    """``mon-fri``, ``mon,wed,fri``, ``fri-mon`` (wraps), ``daily`` or ``*`` -> 0=Mon..6=Sun."""
    spec = text.strip().lower()
    if spec in ("*", "daily", "all"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        ends = part.split("-")
        if len(ends) > 2 or not part.strip():
            raise ScheduleError(f"weekdays {text!r}: use names like mon-fri or mon,wed,fri")
        first, last = _day_index(ends[0], text), _day_index(ends[-1], text)
        day = first
        days.add(day)
        while day != last:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def parse_clock(text: str) -> time:
    """``HH:MM`` (00:00-23:59, or 24:00 for the end of the day as 00:00 of the next)."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match:
        raise ScheduleError(f"time {text!r}: use HH:MM")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if (hours, minutes) == (24, 0):
        return time(0, 0)
    if hours > 23 or minutes > 59:
        raise ScheduleError(f"time {text!r} does not exist (00:00 to 23:59, or 24:00)")
    return time(hours, minutes)


@dataclass(frozen=True)
class Period:
    """Running from ``begin`` to ``end`` (local) on each of ``weekdays`` (the begin's day)."""

    weekdays: frozenset[int]
    begin: time
    end: time
    end_is_midnight: bool = False

    @property
    def overnight(self) -> bool:
        """True when the period ends on the next day."""
        return self.end_is_midnight or self.end <= self.begin


def make_period(weekdays: str, begin: str, end: str) -> Period:
    """Parse one period; raises :class:`ScheduleError`."""
    start_at, end_at = parse_clock(begin), parse_clock(end)
    midnight = end.strip() == "24:00"
    if start_at == end_at and not midnight:
        raise ScheduleError(f"period {begin}-{end} has no length (begin equals end)")
    return Period(parse_weekdays(weekdays), start_at, end_at, end_is_midnight=midnight)


def period_boundaries(
    period: Period, tz: ZoneInfo, after: datetime, until: datetime
) -> list[Boundary]:
    """Start and stop boundaries of ``period`` in (after, until]."""
    first_day = after.astimezone(tz).date() - timedelta(days=2)
    last_day = until.astimezone(tz).date() + timedelta(days=1)
    found = []
    day = first_day
    while day <= last_day:
        if day.weekday() in period.weekdays:
            begin_local = datetime.combine(day, period.begin)
            end_day = day + timedelta(days=1) if period.overnight else day
            end_local = datetime.combine(end_day, period.end)
            for local, transition in (
                (begin_local, Transition.START),
                (end_local, Transition.STOP),
            ):
                instant = to_instant(local, tz)
                if after < instant <= until:
                    found.append(Boundary(instant, transition))
        day += timedelta(days=1)
    return sorted(set(found))


# --- schedules ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A named schedule: periods or start/stop crons, in one time zone; with ``days``, its
    working days (module docstring)."""

    name: str
    tz: ZoneInfo
    periods: tuple[Period, ...] = ()
    start: Cron | None = None
    stop: Cron | None = None
    enforced: bool = False
    days: WorkDays | None = None

    def boundaries(self, after: datetime, until: datetime) -> list[Boundary]:
        """Every boundary in (after, until], in time order."""
        if self.days is not None:
            return self._planned(after, until)[0]
        found: list[Boundary] = []
        for period in self.periods:
            found.extend(period_boundaries(period, self.tz, after, until))
        if self.start is not None:
            found.extend(cron_boundaries(self.start, self.tz, Transition.START, after, until))
        if self.stop is not None:
            found.extend(cron_boundaries(self.stop, self.tz, Transition.STOP, after, until))
        return sorted(set(found))

    def latest_boundary(self, after: datetime, until: datetime) -> Boundary | None:
        """The latest boundary in (after, until]: the one a run acts on ("latest wins")."""
        found = self.boundaries(after, until)
        return found[-1] if found else None

    def desired(self, moment: datetime) -> Transition | None:
        """The state the schedule wants at ``moment``: the transition of the latest boundary
        at or before it, or None when there is none in the look-back."""
        if self.days is not None:
            for window in CALENDAR_WINDOWS:
                latest = self.latest_boundary(moment - window, moment)
                if latest is not None:
                    return latest.transition
            return None
        if self.periods:
            latest = self.latest_boundary(moment - timedelta(days=8), moment)
            if latest is not None:
                return latest.transition
            return None
        candidates = [
            b
            for b in (
                cron_latest_before(self.start, self.tz, Transition.START, moment)
                if self.start
                else None,
                cron_latest_before(self.stop, self.tz, Transition.STOP, moment)
                if self.stop
                else None,
            )
            if b is not None
        ]
        return max(candidates).transition if candidates else None

    def next_transitions(self, moment: datetime) -> dict[Transition, datetime | None]:
        """The next start and the next stop after ``moment``."""
        result: dict[Transition, datetime | None] = {Transition.START: None, Transition.STOP: None}
        if self.periods or self.days is not None:
            windows = CALENDAR_WINDOWS if self.days is not None else (timedelta(days=8),)
            for window in windows:
                for boundary in self.boundaries(moment, moment + window):
                    if result[boundary.transition] is None:
                        result[boundary.transition] = boundary.at
                if all(result.values()):
                    break
            return result
        for cron, transition in ((self.start, Transition.START), (self.stop, Transition.STOP)):
            if cron is not None:
                found = cron_next_after(cron, self.tz, transition, moment)
                result[transition] = found.at if found else None
        return result

    # --- working days ---------------------------------------------------------------------

    def day(self, moment: datetime) -> Day | None:
        """What the local date of ``moment`` is to the schedule (None: it has no days)."""
        if self.days is None:
            return None
        return self.days.day(moment.astimezone(self.tz).date())

    def skipped_starts(self, after: datetime, until: datetime) -> list[Day]:
        """The days off in (after, until] on which the weekday rule would have started."""
        return self._planned(after, until)[1] if self.days is not None else []

    def gap_notes(self, after: datetime, until: datetime) -> list[str]:
        """What to say about the years of (after, until] (local) the calendar has no data for."""
        if self.days is None or self.days.calendar is None:
            return []
        first, last = after.astimezone(self.tz).year, until.astimezone(self.tz).year
        return [
            gap_note(self.name, self.days.calendar.code, year)
            for year in self.days.gaps(first, last)
        ]

    def _cron_fires(self, first: date, last: date) -> dict[date, list[tuple[time, Transition]]]:
        """The crons' own local times on each date of [first, last]."""
        fires: dict[date, list[tuple[time, Transition]]] = defaultdict(list)
        for cron, transition in ((self.start, Transition.START), (self.stop, Transition.STOP)):
            if cron is None:
                continue
            iterator = croniter(cron.expression, datetime.combine(first, time()) - _SECOND)
            while True:
                local: datetime = iterator.get_next(datetime)
                if local.date() > last:
                    break
                if cron.matches_year(local.year):
                    fires[local.date()].append((local.time(), transition))
        return fires

    def _rule(
        self, rule_day: date, on: date, fires: dict[date, list[tuple[time, Transition]]]
    ) -> list[tuple[datetime, Transition]]:
        """The local boundaries the weekday rule of ``rule_day`` puts on the day ``on``."""
        found = []
        for period in self.periods:
            if rule_day.weekday() in period.weekdays:
                end_day = on + timedelta(days=1) if period.overnight else on
                found.append((datetime.combine(on, period.begin), Transition.START))
                found.append((datetime.combine(end_day, period.end), Transition.STOP))
        found.extend((datetime.combine(on, at), t) for at, t in fires.get(rule_day, ()))
        return found

    def _starts(self, rule_day: date, fires: dict[date, list[tuple[time, Transition]]]) -> bool:
        return any(t is Transition.START for _, t in self._rule(rule_day, rule_day, fires))

    def _reference(
        self, on: date, weekend: frozenset[int], fires: dict[date, list[tuple[time, Transition]]]
    ) -> date | None:
        """The first day of the week of ``on`` (not a weekend day) the weekday rule starts on."""
        monday = on - timedelta(days=on.weekday())
        for offset in range(7):
            candidate = monday + timedelta(days=offset)
            if candidate.weekday() not in weekend and self._starts(candidate, fires):
                return candidate
        return None

    def _planned(self, after: datetime, until: datetime) -> tuple[list[Boundary], list[Day]]:
        """The boundaries in (after, until] day by day with the working days, and the days
        off whose starts were left out."""
        days = self.days
        if days is None:
            raise ValueError("a schedule without working days plans by its weekday rule")
        first = after.astimezone(self.tz).date() - timedelta(days=2)
        last = until.astimezone(self.tz).date() + timedelta(days=1)
        fires = self._cron_fires(first - timedelta(days=7), last + timedelta(days=7))
        found: set[Boundary] = set()
        skipped: list[Day] = []
        on = first
        while on <= last:
            day = days.day(on)
            local = self._rule(on, on, fires)
            if day.declared_working and not self._starts(on, fires):
                reference = self._reference(on, days.weekend, fires)
                if reference is not None:
                    local += self._rule(reference, on, fires)
            for wall, transition in local:
                instant = to_instant(wall, self.tz)
                if not after < instant <= until:
                    continue
                if transition is Transition.START and not day.working:
                    if day not in skipped:
                        skipped.append(day)
                    continue
                found.add(Boundary(instant, transition))
            on += timedelta(days=1)
        return sorted(found), skipped


_SECOND = timedelta(seconds=1)


# --- EventBridge export ----------------------------------------------------------------------

_CLASSIC_TO_EB_DAY = {str(i): str(i + 1) for i in range(7)}


def _eb_day_field(field: str) -> str:
    """A classic (croniter) day-of-week field in EventBridge numbering (1-7 from Sunday)."""
    return _translate_weekdays(
        field, lambda token: _CLASSIC_TO_EB_DAY.get(token, token.upper()), to_classic=False
    )


def cron_to_eventbridge(cron: Cron) -> str:
    """``cron(...)`` in EventBridge syntax for a parsed cron expression."""
    minute, hour, dom, month, dow = cron.expression.split()
    if dom != "*" and dow != "*":
        raise ScheduleError(
            f"{cron.source!r}: EventBridge cannot restrict both day-of-month and day-of-week"
        )
    year = (
        "*"
        if cron.years is None
        else (
            str(cron.years[0])
            if cron.years[0] == cron.years[1]
            else f"{cron.years[0]}-{cron.years[1]}"
        )
    )
    if dow == "*":
        return f"cron({minute} {hour} {dom} {month} ? {year})"
    return f"cron({minute} {hour} ? {month} {_eb_day_field(dow)} {year})"


def _every_day(expression: str) -> str:
    """An EventBridge cron expression at the same times on every day of every month."""
    minute, hour, *_, year = expression.removeprefix("cron(").removesuffix(")").split()
    return f"cron({minute} {hour} ? * * {year})"


def to_eventbridge_expressions(schedule: Schedule) -> list[tuple[Transition, str]]:
    """Start and stop cron expressions (EventBridge syntax, in the schedule's time zone). A
    schedule whose calendar or ``work_dates`` may make any day a working day has its
    expressions on every day: Scheduler cannot tell holidays, the tick's planning does."""
    expressions = _weekday_expressions(schedule)
    if schedule.days is None or not schedule.days.adds_days:
        return expressions
    every_day: list[tuple[Transition, str]] = []
    for transition, expression in expressions:
        entry = (transition, _every_day(expression))
        if entry not in every_day:
            every_day.append(entry)
    return every_day


def _weekday_expressions(schedule: Schedule) -> list[tuple[Transition, str]]:
    expressions: list[tuple[Transition, str]] = []
    eb_days = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
    for period in schedule.periods:
        begin_days = ",".join(eb_days[d] for d in sorted(period.weekdays))
        end_days = (
            ",".join(eb_days[(d + 1) % 7] for d in sorted(period.weekdays))
            if period.overnight
            else begin_days
        )
        expressions.append(
            (
                Transition.START,
                f"cron({period.begin.minute} {period.begin.hour} ? * {begin_days} *)",
            )
        )
        expressions.append(
            (Transition.STOP, f"cron({period.end.minute} {period.end.hour} ? * {end_days} *)")
        )
    if schedule.start is not None:
        expressions.append((Transition.START, cron_to_eventbridge(schedule.start)))
    if schedule.stop is not None:
        expressions.append((Transition.STOP, cron_to_eventbridge(schedule.stop)))
    return expressions
