"""Working days: a country's public holidays and official make-up workdays, and a company's own.

A schedule's ``calendar`` (an ISO 3166 country code, with an optional subdivision: ``CN``,
``DE-BY``) names a calendar of the ``holidays`` library: its public holidays are days off, and
the weekend days it declares working (China's 调休: Saturday 14 February 2026 is a workday) are
workdays. ``skip_dates`` and ``work_dates`` add a company's own. Pure: no clock, no I/O but the
library's bundled data.

Some countries publish their holidays year by year (China's State Council, late in the year
before). For such a calendar (the library records make-up workdays for it), a year it has no
data for yet is left to the schedule's weekday rule, and :func:`gap_note` says so: a
rule-computed guess would skip starts on days that may turn out to be workdays.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from functools import lru_cache
from typing import Any

# The weekend of a schedule without a calendar (the calendar's own otherwise).
WEEKEND = frozenset({5, 6})
LANGUAGE = "en_US"  # holiday names in the language of SageSaver's other messages


class CalendarError(ValueError):
    """An unknown country or subdivision (the message names it)."""


class DayKind(str, Enum):
    """What a date is to a schedule with a calendar or its own dates."""

    ORDINARY = "ordinary"  # the schedule's weekday rule
    HOLIDAY = "holiday"  # a public holiday of the calendar: no start
    DAY_OFF = "day off"  # in skip_dates: no start
    MAKEUP = "make-up workday"  # a weekend day the calendar declares working
    WORKDAY = "workday"  # in work_dates


@dataclass(frozen=True)
class Day:
    """One date, its kind, and what it is called (a holiday's name, the calendar's code)."""

    on: date
    kind: DayKind
    name: str = ""
    calendar: str = ""

    @property
    def working(self) -> bool:
        """Whether the schedule may start instances on it (every day but a day off)."""
        return self.kind not in (DayKind.HOLIDAY, DayKind.DAY_OFF)

    @property
    def declared_working(self) -> bool:
        """A make-up workday or a company workday: it runs as a working day."""
        return self.kind in (DayKind.MAKEUP, DayKind.WORKDAY)

    @property
    def label(self) -> str:
        """``CN public holiday: National Day``, ``CN make-up workday``, ``day off
        (skip_dates)``, ``workday (work_dates)``; empty for an ordinary day."""
        return {
            DayKind.ORDINARY: "",
            DayKind.HOLIDAY: f"{self.calendar} public holiday: {self.name}",
            DayKind.DAY_OFF: "day off (skip_dates)",
            DayKind.MAKEUP: f"{self.calendar} make-up workday",
            DayKind.WORKDAY: "workday (work_dates)",
        }[self.kind]

    def __str__(self) -> str:
        """``Thu 2026-10-01 (CN public holiday: National Day)``."""
        text = f"{self.on:%a %Y-%m-%d}"
        return f"{text} ({self.label})" if self.label else text


def parse_calendar(text: str) -> str:
    """The calendar code ``text`` names, as the library spells it (``cn`` -> ``CN``, ``de-by``
    -> ``DE-BY``); raises :class:`CalendarError` when the library has no such calendar."""
    import holidays

    country, _, subdivision = text.strip().partition("-")
    supported: dict[str, list[str]] = holidays.list_supported_countries()
    code = country.upper()
    if code not in supported:
        raise CalendarError(
            f"calendar {text!r}: no holiday calendar for country {code} (use an ISO 3166 "
            "country code, like CN, or with a subdivision, like DE-BY)"
        )
    if not subdivision:
        return code
    known = {s.upper(): s for s in supported[code]}
    if subdivision.upper() not in known:
        listed = ", ".join(supported[code]) or "none"
        raise CalendarError(
            f"calendar {text!r}: {code} has no subdivision {subdivision} (known: {listed})"
        )
    return f"{code}-{known[subdivision.upper()]}"


class HolidayCalendar:
    """One country's (or subdivision's) public holidays and make-up workdays, a year at a
    time, read once (safe to share between threads)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self._lock = threading.Lock()
        self._years: dict[int, tuple[Mapping[date, str], frozenset[date]]] = {}
        sample = self._library([])
        self.weekend = frozenset(getattr(sample, "weekend", WEEKEND))
        self.published_through = _published_through(sample)

    def _library(self, years: Iterable[int]) -> Any:
        import holidays

        country, _, subdivision = self.code.partition("-")
        probe = holidays.country_holidays(country, years=[])
        language = LANGUAGE if LANGUAGE in getattr(probe, "supported_languages", ()) else None
        return holidays.country_holidays(
            country, subdiv=subdivision or None, years=list(years), language=language
        )

    def covers(self, year: int) -> bool:
        """Whether the library has this calendar's data for ``year``."""
        return self.published_through is None or year <= self.published_through

    def year(self, year: int) -> tuple[Mapping[date, str], frozenset[date]]:
        """The public holidays (date -> name) and the make-up workdays of ``year``."""
        with self._lock:
            if year not in self._years:
                # a make-up day may be announced with the next year's holidays
                found = self._library(range(year - 1, year + 2))
                days_off = {d: str(n) for d, n in found.items() if d.year == year}
                workdays = frozenset(
                    d for d in getattr(found, "weekend_workdays", ()) if d.year == year
                )
                self._years[year] = (days_off, workdays)
            return self._years[year]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HolidayCalendar) and other.code == self.code

    def __hash__(self) -> int:
        return hash(self.code)

    def __repr__(self) -> str:
        return f"HolidayCalendar({self.code!r})"


def _published_through(sample: Any) -> int | None:
    """The last year a year-by-year calendar has data for; None for one made of rules."""
    if not getattr(sample, "has_substituted_holidays", False):
        return None
    years = [y for y in getattr(sample, "special_public_holidays", {}) if isinstance(y, int)]
    return max(years) if years else None


@lru_cache(maxsize=64)
def holiday_calendar(code: str) -> HolidayCalendar:
    """The calendar ``code`` names (one object per code, its years read once)."""
    return HolidayCalendar(parse_calendar(code))


@dataclass(frozen=True)
class WorkDays:
    """A schedule's days: its calendar's, and its own ``skip_dates`` and ``work_dates``."""

    calendar: HolidayCalendar | None = None
    skip: frozenset[date] = field(default_factory=frozenset)
    work: frozenset[date] = field(default_factory=frozenset)

    @property
    def weekend(self) -> frozenset[int]:
        """The calendar's weekend days (0 = Monday), else Saturday and Sunday."""
        return self.calendar.weekend if self.calendar is not None else WEEKEND

    @property
    def adds_days(self) -> bool:
        """Whether a day outside the weekday rule may become a working day."""
        return self.calendar is not None or bool(self.work)

    @property
    def source(self) -> str:
        """What decides the working days: ``calendar CN``, or ``work_dates``."""
        return f"calendar {self.calendar.code}" if self.calendar is not None else "work_dates"

    def day(self, on: date) -> Day:
        """What ``on`` is: the company's dates first, then the calendar's (for a year it has
        data for), else an ordinary day."""
        code = self.calendar.code if self.calendar is not None else ""
        if on in self.skip:
            return Day(on, DayKind.DAY_OFF, calendar=code)
        if on in self.work:
            return Day(on, DayKind.WORKDAY, calendar=code)
        if self.calendar is None or not self.calendar.covers(on.year):
            return Day(on, DayKind.ORDINARY, calendar=code)
        days_off, workdays = self.calendar.year(on.year)
        if on in workdays:
            return Day(on, DayKind.MAKEUP, calendar=code)
        if on in days_off:
            return Day(on, DayKind.HOLIDAY, days_off[on], code)
        return Day(on, DayKind.ORDINARY, calendar=code)

    def gaps(self, first: int, last: int) -> list[int]:
        """The years of ``first`` to ``last`` the calendar has no data for."""
        if self.calendar is None:
            return []
        return [y for y in range(first, last + 1) if not self.calendar.covers(y)]


def gap_note(schedule: str, calendar: str, year: int) -> str:
    """What a command says, once, when it plans a year the calendar has no data for."""
    return (
        f"schedule {schedule}: calendar {calendar} has no data for {year} yet (a country that "
        "moves working days publishes them late in the year before; a newer release of the "
        f"holidays package brings them): in {year} the schedule follows its weekday rule, "
        "without public holidays or make-up workdays (skip_dates and work_dates still apply)"
    )
