"""What-if backtest of the endpoint policy. Pure: no AWS, no clock.

:func:`replay` runs the endpoint policy hour by hour over a recorded history of hourly
``Invocations`` sums (all variants together) and tells what it would have done: which endpoints
it would have flagged, deleted or spared, when, what that would have saved, and how often it
would have deleted an endpoint that was called again later (a *mistake*).

Hour ``i`` of a history covers ``[start + i h, start + (i + 1) h)``. The policy is evaluated
at the end of every hour, as if SageSaver ran hourly:

* an endpoint exists from the first hour that ends after its creation;
* it is *idle* when its age (from creation) is at least ``min_age`` and the invocations of the
  last ``idle_hours`` (rounded up to whole hours) are at most ``max_invocations`` (0 by
  default), the rule of :mod:`sagesaver.core.rules.endpoints`. Hours before its creation do not
  count. While the look-back still reaches before the window for an endpoint created before
  it, the history cannot tell, so it is not idle (warm-up);
* endpoints out of the policy's selection, protected, scaled to 0 instances or whose instances
  are unknown are never flagged, as in :mod:`sagesaver.core.rules.endpoints`;
* when first idle it is *flagged*. With ``action: delete`` it is deleted at the first hour end
  at least ``grace_hours`` later if it stayed idle; traffic before that *spares* it and clears
  the flag. At most ``max_actions_per_run`` deletions per hour, the most expensive first; the
  others are deferred to a later hour. With ``action: notify`` it is only flagged;
* a deleted endpoint saves its hourly cost and instances for every remaining hour of the window;
  every invocation after it counts in ``invocations_after_delete``, and it is a mistake from
  the first hour at whose end the invocations since its deletion, over the look-back, exceed
  ``max_invocations`` (it would have been busy again; with 0, any invocation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sagesaver.core.formats import iso
from sagesaver.core.model import ScanError
from sagesaver.core.partitions import currency_of
from sagesaver.core.policy import EndpointPolicy

HOUR = timedelta(hours=1)
_EPSILON = 1e-9


@dataclass
class EndpointTimeline:
    """What the policy would have done with one endpoint during the window."""

    name: str
    region: str
    created: datetime
    hourly_cost: float | None
    instances: int | None
    skipped: str | None = None  # why the policy never considers it (scope, protect tag...)
    flagged_at: list[datetime] = field(default_factory=list)
    spared_at: list[datetime] = field(default_factory=list)
    deleted_at: datetime | None = None
    deferred_hours: int = 0  # hours a due deletion waited for max_actions_per_run
    mistake_at: datetime | None = None  # start of the first hour with calls after deletion
    invocations_after_delete: float = 0.0
    hours_saved: int = 0

    @property
    def instance_hours_saved(self) -> float:
        """Instance-hours the deletion would have saved."""
        return float((self.instances or 0) * self.hours_saved)

    @property
    def currency(self) -> str:
        """The currency of :attr:`hourly_cost` and :attr:`saved`: its region's partition's."""
        return currency_of(self.region)

    @property
    def saved(self) -> float | None:
        """What the deletion would have saved, in :attr:`currency`; None when the price is
        unknown (0 when nothing was left of the window to save)."""
        if not self.hours_saved:
            return 0.0
        if self.hourly_cost is None:
            return None
        return round(self.hourly_cost * self.hours_saved, 6)

    @property
    def usd_saved(self) -> float | None:
        """:attr:`saved` when it is in USD; None in any other currency."""
        return self.saved if self.currency == "USD" else None

    def to_document(self) -> dict[str, Any]:
        """A JSON-ready dict: money in ``currency`` (``saved``); the ``*_usd`` keys are the
        same amounts in USD only, else null."""
        saved = None if self.saved is None else round(self.saved, 2)
        usd = self.currency == "USD"
        return {
            "name": self.name,
            "region": self.region,
            "created": iso(self.created),
            "hourly_cost": self.hourly_cost,
            "currency": self.currency,
            "hourly_cost_usd": self.hourly_cost if usd else None,
            "instances": self.instances,
            "skipped": self.skipped,
            "flagged_at": [iso(t) for t in self.flagged_at],
            "spared_at": [iso(t) for t in self.spared_at],
            "deleted_at": iso(self.deleted_at) if self.deleted_at else None,
            "deferred_hours": self.deferred_hours,
            "mistake_at": iso(self.mistake_at) if self.mistake_at else None,
            "invocations_after_delete": self.invocations_after_delete,
            "hours_saved": self.hours_saved,
            "instance_hours_saved": self.instance_hours_saved,
            "saved": saved,
            "usd_saved": saved if usd else None,
        }


@dataclass(frozen=True)
class BacktestTotals:
    """The sums over every endpoint of a backtest."""

    endpoints: int
    flagged: int  # endpoints flagged at least once
    notifications: int  # times an endpoint was flagged (announced)
    deleted: int
    spared: int  # endpoints spared at least once
    spare_events: int
    mistakes: int  # deleted endpoints that were called again later
    instance_hours_saved: float
    # Over the deleted endpoints whose price is known, in ``currency``; None when none of
    # them has a known price (unknown, never 0); 0 when nothing would have been deleted.
    saved: float | None
    currency: str
    saved_unknown_count: int  # deleted endpoints whose price is unknown

    @property
    def usd_saved(self) -> float | None:
        """:attr:`saved` when it is in USD; None in any other currency."""
        return self.saved if self.currency == "USD" else None

    @property
    def usd_saved_unknown_count(self) -> int:
        """:attr:`saved_unknown_count` (its former name)."""
        return self.saved_unknown_count

    def to_document(self) -> dict[str, Any]:
        """A JSON-ready dict: ``saved`` in ``currency``; ``usd_saved`` the same in USD only,
        else null (kept for compatibility, as ``usd_saved_unknown_count``)."""
        saved = None if self.saved is None else round(self.saved, 2)
        return {
            "endpoints": self.endpoints,
            "flagged": self.flagged,
            "notifications": self.notifications,
            "deleted": self.deleted,
            "spared": self.spared,
            "spare_events": self.spare_events,
            "mistakes": self.mistakes,
            "instance_hours_saved": self.instance_hours_saved,
            "saved": saved,
            "currency": self.currency,
            "saved_unknown_count": self.saved_unknown_count,
            "usd_saved": saved if self.currency == "USD" else None,
            "usd_saved_unknown_count": self.saved_unknown_count,
        }


@dataclass
class BacktestResult:
    """The outcome of replaying one policy over one window."""

    start: datetime
    hours: int
    policy: EndpointPolicy
    timelines: list[EndpointTimeline] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        """The end of the window (exclusive)."""
        return self.start + self.hours * HOUR

    @property
    def currency(self) -> str:
        """The currency of its amounts: its regions' partition's (USD with no endpoint)."""
        found = {t.currency for t in self.timelines}
        return found.pop() if len(found) == 1 else "USD"

    @property
    def totals(self) -> BacktestTotals:
        """The sums over every endpoint."""
        deleted = [t for t in self.timelines if t.deleted_at is not None]
        known = [t.saved for t in deleted if t.saved is not None]
        unknown = len(deleted) - len(known)
        return BacktestTotals(
            endpoints=len(self.timelines),
            flagged=sum(1 for t in self.timelines if t.flagged_at),
            notifications=sum(len(t.flagged_at) for t in self.timelines),
            deleted=len(deleted),
            spared=sum(1 for t in self.timelines if t.spared_at),
            spare_events=sum(len(t.spared_at) for t in self.timelines),
            mistakes=sum(1 for t in deleted if t.mistake_at is not None),
            instance_hours_saved=sum(t.instance_hours_saved for t in deleted),
            saved=round(sum(known), 6) if known or not unknown else None,
            currency=self.currency,
            saved_unknown_count=unknown,
        )

    def merge(self, other: BacktestResult) -> None:
        """Add another region's replay of the same window and policy."""
        if other.start != self.start or other.hours != self.hours:
            raise ValueError("cannot merge backtests of different windows")
        currencies = {t.currency for t in (*self.timelines, *other.timelines)}
        if len(currencies) > 1:  # one partition's regions: amounts never added across
            raise ValueError(f"cannot merge backtests in {' and '.join(sorted(currencies))}")
        self.timelines.extend(other.timelines)
        self.errors.extend(other.errors)

    def to_document(self) -> dict[str, Any]:
        """A JSON-ready dict: window, policy, totals, endpoints and errors."""
        return {
            "window": {"start": iso(self.start), "end": iso(self.end), "hours": self.hours},
            "policy": self.policy.model_dump(mode="json"),
            "totals": self.totals.to_document(),
            "endpoints": [
                t.to_document() for t in sorted(self.timelines, key=lambda t: (t.region, t.name))
            ],
            "errors": [
                {
                    "region": e.region,
                    "operation": e.operation,
                    "resource": e.resource,
                    "code": e.code,
                    "message": e.message,
                    "account": e.account,
                }
                for e in self.errors
            ],
        }


def compare(a: BacktestResult, b: BacktestResult) -> dict[str, Any]:
    """Side-by-side totals of two backtests (``difference`` is b - a) and the endpoints only
    one of them would have deleted, or deleted by mistake."""
    totals_a, totals_b = a.totals.to_document(), b.totals.to_document()
    totals = {
        key: {
            "a": totals_a[key],
            "b": totals_b[key],
            "difference": _difference(totals_a, totals_b, key),
        }
        for key in totals_a
    }

    def deleted(result: BacktestResult, mistakes: bool = False) -> set[str]:
        return {
            f"{t.region}/{t.name}" if t.region else t.name
            for t in result.timelines
            if t.deleted_at is not None and (not mistakes or t.mistake_at is not None)
        }

    return {
        "totals": totals,
        "deleted_only_by_a": sorted(deleted(a) - deleted(b)),
        "deleted_only_by_b": sorted(deleted(b) - deleted(a)),
        "mistakes_only_by_a": sorted(deleted(a, True) - deleted(b, True)),
        "mistakes_only_by_b": sorted(deleted(b, True) - deleted(a, True)),
    }


def _difference(a: Mapping[str, Any], b: Mapping[str, Any], key: str) -> float | int | None:
    """``b - a``; None when either is not a number (an unknown amount, the currency)."""
    if not all(isinstance(x[key], (int, float)) and not isinstance(x[key], bool) for x in (a, b)):
        return None
    difference = b[key] - a[key]
    return round(difference, 2) if isinstance(difference, float) else int(difference)


def _whole_hours(hours: float) -> int:
    """Hours rounded up to whole hours (a wider look-back can only find more activity)."""
    return max(0, math.ceil(hours - _EPSILON))


@dataclass
class _State:
    timeline: EndpointTimeline
    series: list[float]
    first_hour: int  # the first hour that ends after creation
    created_offset: float  # hours from the window start to creation (negative: before)
    prefix: list[float]  # prefix[i] = sum of series[first_hour:i] (0 before first_hour)
    flagged_hour: int | None = None
    deleted_hour: int | None = None


def _prefix_sums(series: list[float], first_hour: int) -> list[float]:
    prefix = [0.0]
    for index, value in enumerate(series):
        prefix.append(prefix[-1] + (max(0.0, value) if index >= first_hour else 0.0))
    return prefix


def _skip_reason(
    name: str, tags: Mapping[str, str], instances: int | None, policy: EndpointPolicy
) -> str | None:
    in_scope, reason = policy.selects(name, dict(tags))
    if not in_scope:
        return f"not selected: {reason}"
    if policy.is_protected(dict(tags)):
        return f"protected by tag {policy.protect_tag}"
    if instances is None:
        return "its instances could not be read"
    if instances == 0:
        return "scaled to 0 instances, so it costs nothing"
    return None


def replay(
    history: Mapping[str, list[float]],
    created: Mapping[str, datetime],
    hourly_cost: Mapping[str, float | None],
    tags: Mapping[str, Mapping[str, str]],
    policy: EndpointPolicy,
    start: datetime,
    instances: Mapping[str, int] | None = None,
    region: str = "",
    hours: int | None = None,
) -> BacktestResult:
    """Replay ``policy`` hour by hour over ``history`` (hourly invocation sums, oldest first,
    every series of the same length ``hours``) starting at ``start``.

    ``created`` defaults to before the window, ``hourly_cost`` to unknown, ``tags`` to none;
    ``instances`` (None: one per endpoint) missing a name means its instances are unknown, and
    such an endpoint is never flagged.
    """
    lengths = {len(series) for series in history.values()}
    if hours is None:
        hours = lengths.pop() if lengths else 0
        lengths.add(hours)
    if lengths - {hours}:
        raise ValueError(f"every history must have {hours} hourly values")
    result = BacktestResult(start=start, hours=hours, policy=policy)
    lookback = max(1, _whole_hours(policy.idle_hours))
    grace = _whole_hours(policy.grace_hours)
    states: list[_State] = []
    for name in sorted(history):
        born = created.get(name, start - timedelta(days=3650))
        offset = (born - start).total_seconds() / 3600.0
        first_hour = max(0, math.floor(offset))
        count = 1 if instances is None else instances.get(name)
        timeline = EndpointTimeline(
            name=name,
            region=region,
            created=born,
            hourly_cost=hourly_cost.get(name),
            instances=count,
            skipped=_skip_reason(name, tags.get(name, {}), count, policy),
        )
        result.timelines.append(timeline)
        series = list(history[name])
        states.append(
            _State(timeline, series, first_hour, offset, _prefix_sums(series, first_hour))
        )

    for hour in range(hours):
        moment = start + (hour + 1) * HOUR  # the end of the hour: when the policy runs
        due: list[_State] = []
        for state in states:
            timeline = state.timeline
            if state.deleted_hour is not None:
                calls = state.series[hour]
                if calls > 0:
                    timeline.invocations_after_delete += calls
                since = max(state.deleted_hour + 1, hour + 1 - lookback)
                busy = state.prefix[hour + 1] - state.prefix[since] > policy.max_invocations
                if calls > 0 and busy and timeline.mistake_at is None:
                    timeline.mistake_at = start + hour * HOUR
                continue
            if timeline.skipped is not None or hour < state.first_hour:
                continue
            idle = _is_idle(state, hour, lookback, policy.min_age, policy.max_invocations)
            if state.flagged_hour is not None:
                if not idle:
                    if policy.action == "delete":
                        timeline.spared_at.append(moment)
                    state.flagged_hour = None
                elif policy.action == "delete" and hour >= state.flagged_hour + grace:
                    due.append(state)
                continue
            if idle:
                state.flagged_hour = hour
                timeline.flagged_at.append(moment)
                if policy.action == "delete" and grace == 0:
                    due.append(state)
        due.sort(key=lambda s: (-(s.timeline.hourly_cost or 0.0), s.timeline.name))
        for index, state in enumerate(due):
            if index < policy.max_actions_per_run:
                state.deleted_hour = hour
                state.timeline.deleted_at = moment
                state.timeline.hours_saved = hours - hour - 1
            else:
                state.timeline.deferred_hours += 1
    return result


def _is_idle(
    state: _State, hour: int, lookback: int, min_age: float, max_invocations: float
) -> bool:
    """Whether the endpoint is idle at the end of ``hour``: at most ``max_invocations`` over
    the look-back."""
    age = hour + 1 - state.created_offset
    if age + _EPSILON < min_age:
        return False
    if state.created_offset < 0 and hour + 1 < lookback:
        return False  # the look-back reaches before the window: unknown
    since = max(0, hour + 1 - lookback)
    return state.prefix[hour + 1] - state.prefix[since] <= max_invocations


def merge_all(
    parts: Iterable[BacktestResult], start: datetime, hours: int, policy: EndpointPolicy
) -> BacktestResult:
    """One result of several regions' replays of the same window."""
    total = BacktestResult(start=start, hours=hours, policy=policy)
    for part in parts:
        total.merge(part)
    return total
