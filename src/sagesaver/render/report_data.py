"""The figures of the report: what is idle and what it costs, by group and at the top, what
the ledger saved per day, the headline numbers and the recommendations.

Pure, like the report: amounts are in the report's currency (:data:`_CURRENCY`, set while a
report is rendered); amounts in any other currency are left out of its sums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sagesaver.core.formats import HOURS_PER_30_DAYS, money
from sagesaver.core.model import Decision, Recommendation, ScanResult
from sagesaver.core.partitions import currency_of
from sagesaver.core.records import Entry
from sagesaver.core.savings import OffInterval, off_intervals, saved_by_currency
from sagesaver.render.scan import left_alone_text, summary, wasting_text

TOP_N = 10
NONE_LABEL = "(none)"
# The savings-over-time chart shows at most this many days (the latest ones); the cumulative
# figure still counts everything saved before them.
MAX_DAYS = 90


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a label, the sum of its known amounts (None: none is known, never
    0) and how many of its amounts are unknown (in the report's currency)."""

    label: str
    value: float | None
    unknown: int = 0


@dataclass(frozen=True)
class Day:
    """One day of the ledger: applied actions, saved that day (in the report's currency),
    and saved up to its end; None when what was off by then has no known price (never 0), and
    ``unknown`` counts the resources off by then whose price is unknown."""

    day: date
    actions: int
    saved: float | None
    cumulative: float | None
    unknown: int = 0


# The currency of the report being rendered: a scan covers one partition, so one currency
# (USD, or CNY in China); amounts in any other currency are left out of its sums.
_CURRENCY: ContextVar[str] = ContextVar("report_currency", default="USD")


def _usd(value: float | None, places: int = 2) -> str:
    """An amount in the report's currency (``$`` or ``¥``); ``unknown`` for None."""
    return money(value, _CURRENCY.get(), places, unknown="unknown")


def with_unknown(value: float | None, unknown: int, unit: str = "") -> str:
    """A known sum and how many amounts it lacks: ``$1.20/h + 2 unknown``; ``unknown`` when
    nothing is known."""
    if value is None:
        return "unknown"
    return f"{_usd(value)}{unit}" + (f" + {unknown} unknown" if unknown else "")


def known_sum(values: Sequence[float | None]) -> float | None:
    """The sum of the known ``values``: None when there are some and none is known."""
    known = [v for v in values if v is not None]
    return None if values and not known else sum(known)


def _code() -> str:
    return _CURRENCY.get()


def report_currency(scan: ScanResult, entries: Sequence[Entry] = ()) -> str:
    """The currency of a report: its scan's (one partition), else its entries', else USD."""
    found = {d.cost_currency for d in scan.decisions}
    found |= {currency_of(r) for r in scan.regions}
    if not found:
        found = {e.currency for e in entries}
    return sorted(found)[0] if len(found) == 1 else "USD"


def _in_currency(decision: Decision) -> float | None:
    return decision.hourly_cost if decision.cost_currency == _CURRENCY.get() else None


def _applied(entry: Entry) -> bool:
    return entry.carried_out


def _idle(scan: ScanResult) -> list[Decision]:
    return [d for d in scan.decisions if d.idle]


def _owner(decision: Decision, owner_tag: str) -> str:
    return decision.resource.tags.get(owner_tag) or NONE_LABEL


def idle_cost_by(scan: ScanResult, group: str, owner_tag: str = "owner") -> list[Bar]:
    """Current idle cost per hour (the report's currency) by ``kind``, ``region`` or
    ``owner``, largest first."""
    amounts: dict[str, list[float | None]] = {}
    for decision in _idle(scan):
        if group == "kind":
            label = decision.resource.kind.value
        elif group == "region":
            label = decision.resource.region
        else:
            label = _owner(decision, owner_tag)
        amounts.setdefault(label, []).append(_in_currency(decision))
    bars = []
    for label, values in amounts.items():
        total = known_sum(values)
        unknown = sum(1 for v in values if v is None)
        bars.append(Bar(label, None if total is None else round(total, 4), unknown))
    return sorted(bars, key=lambda b: (b.value is None, -(b.value or 0.0), b.label))


def top_idle(scan: ScanResult, n: int = TOP_N) -> list[Decision]:
    """The ``n`` most expensive idle resources (unknown prices last)."""

    def key(d: Decision) -> tuple[Any, ...]:
        r = d.resource
        cost = _in_currency(d)
        return (cost is None, -(cost or 0.0), r.account, r.region, r.kind.value, r.name)

    return sorted(_idle(scan), key=key)[:n]


def _saved_until(intervals: Sequence[OffInterval], moment: datetime) -> float:
    total = 0.0
    for interval in intervals:
        cost = interval.entry.hourly_cost
        if cost is None or interval.currency != _CURRENCY.get() or interval.start >= moment:
            continue
        end = min(interval.end, moment)
        total += (end - interval.start).total_seconds() / 3600 * cost
    return total


def savings_by_day(
    entries: Sequence[Entry], now: datetime, seen: Mapping[str, datetime] | None = None
) -> list[Day]:
    """Per UTC day, from the first applied action to ``now``: actions applied, money saved
    (the known amounts; None while everything off has an unknown price).

    At most the last :data:`MAX_DAYS` days; ``cumulative`` of the last day is the total
    saved so far.
    """
    applied = [e for e in entries if _applied(e) and e.at <= now]
    if not applied:
        return []
    intervals = off_intervals(entries, now, seen=seen)
    counts: dict[date, int] = {}
    for entry in applied:
        day = entry.at.astimezone(timezone.utc).date()
        counts[day] = counts.get(day, 0) + 1
    first = min(counts)
    last = now.astimezone(timezone.utc).date()
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    days: list[Day] = []
    day = first
    previous = _saved_until(intervals, datetime.combine(first, time(), timezone.utc))
    currency = _CURRENCY.get()
    ours = [i for i in intervals if i.currency == currency]
    while day <= last:
        end = min(datetime.combine(day + timedelta(days=1), time(), timezone.utc), now)
        started = [i for i in ours if i.start < end]
        unknown = sum(1 for i in started if i.entry.hourly_cost is None)
        known = len(started) > unknown
        cumulative = _saved_until(intervals, end)
        saved = round(cumulative - previous, 2)
        if known or not unknown:
            days.append(Day(day, counts.get(day, 0), saved, round(cumulative, 2), unknown))
        else:  # everything off so far has an unknown price: unknown, never 0
            days.append(Day(day, counts.get(day, 0), None, None, unknown))
        previous = cumulative
        day += timedelta(days=1)
    return days


@dataclass(frozen=True)
class ParkedHours:
    """One endpoint a schedule parks: how often and how long it was parked, and what that
    saved in its own currency (None: its price is not known, never 0)."""

    name: str
    region: str
    schedule: str
    parks: int
    hours: float
    saved: float | None
    currency: str


def parked_hours(
    entries: Sequence[Entry], now: datetime, seen: Mapping[str, datetime] | None = None
) -> list[ParkedHours]:
    """The endpoints schedules parked (confirmed parks only), most hours first: each park's
    interval runs to its unpark, or to ``now`` while it is still parked."""
    groups: dict[tuple[str, str, str, str], list[OffInterval]] = {}
    for interval in off_intervals(entries, now, seen=seen):
        entry = interval.entry
        if entry.action == "park":
            key = (entry.account, entry.region, entry.resource, entry.rule)
            groups.setdefault(key, []).append(interval)
    rows = []
    for (_, region, name, rule), intervals in groups.items():
        known = [i.saved for i in intervals if i.saved is not None]
        rows.append(
            ParkedHours(
                name=name,
                region=region,
                schedule=rule.removeprefix("schedule:"),
                parks=len(intervals),
                hours=round(sum(i.hours for i in intervals), 2),
                saved=round(sum(known), 2) if len(known) == len(intervals) else None,
                currency=intervals[0].currency,
            )
        )
    return sorted(rows, key=lambda r: (-r.hours, r.region, r.name))


def headline(
    scan: ScanResult,
    entries: Sequence[Entry],
    now: datetime,
    seen: Mapping[str, datetime] | None = None,
) -> dict[str, Any]:
    """The headline numbers: idle cost now, idle count, and what the ledger says was saved,
    in the report's currency (``saved_by_currency`` lists every currency the ledger has)."""
    totals = summary(scan.decisions, scan.errors, scan.regions)
    intervals = off_intervals(entries, now, seen=seen)
    currency = _CURRENCY.get()
    idle = [_in_currency(d) for d in _idle(scan)]
    idle_hourly = known_sum(idle)
    saved_by = saved_by_currency(intervals)
    ours = [i.saved for i in intervals if i.currency == currency]
    saved = known_sum(ours)
    return {
        "currency": currency,
        # The known amounts in the report's currency: None when none is known (never 0).
        "idle_hourly_cost": None if idle_hourly is None else round(idle_hourly, 4),
        "idle_30_day_cost": None
        if idle_hourly is None
        else round(idle_hourly * HOURS_PER_30_DAYS, 2),
        "idle": totals["idle"],
        "resources": totals["resources"],
        # Idle resources whose amount in the report's currency is unknown.
        "idle_with_unknown_cost": sum(1 for v in idle if v is None),
        # What SageSaver would act on, and the idle resources it leaves alone (as the scan).
        "wasting": totals["wasting"]["resources"],
        "wasting_hourly_cost": totals["wasting"]["hourly"].get(currency),
        "wasting_with_unknown_cost": totals["wasting"]["unknown_price"],
        "wasting_text": wasting_text(totals),
        "left_alone": sum(totals["idle_left_alone"][k] for k in ("protected", "zero_cost", "kept")),
        "left_alone_text": left_alone_text(totals),
        "saved": None if saved is None else round(saved, 2),
        "saved_by_currency": saved_by,
        "saved_hours": round(sum(i.hours for i in intervals), 2),
        "saved_with_unknown_cost": sum(1 for i in intervals if i.saved is None),
        "actions_applied": sum(1 for e in entries if _applied(e)),
        "errors": totals["errors"],
        "price_sources": totals["price_sources"],
        "bundled_prices": totals["bundled_prices"],
    }


def recommendations(scan: ScanResult) -> list[tuple[Decision, Recommendation]]:
    """Every recommendation of the scan, the largest hourly saving first (unknown last)."""
    found = [(d, r) for d in scan.decisions for r in d.recommendations]
    found.sort(
        key=lambda pair: (
            pair[1].hourly_saving_usd is None,
            -(pair[1].hourly_saving_usd or 0.0),
            pair[0].resource.region,
            pair[0].resource.name,
        )
    )
    return found
