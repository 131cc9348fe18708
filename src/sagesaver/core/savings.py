"""What SageSaver saved: hours each stopped or deleted resource stayed off, times its price.

Pure: computed from ledger entries. An interval starts at an applied ``stop``, ``delete``,
``park`` (an endpoint a schedule deleted at its stop) or ``release`` (of a warm pool) and ends
when the resource was seen running again (a schedule ``start``, an ``unpark``, a ``restore``,
or another one of its name a later run found created after the act:
``recreated``) or at ``now``; and, when the entry says when the
resource would have stopped billing by itself (``off_until``: a warm pool's keep-alive end), at
that moment at the latest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sagesaver.core.records import Entry

# "park": an endpoint a schedule backed up and deleted at its stop, or kept with its instances
# (or its inference components' copies, the instances released) at 0; either way it bills
# nothing until "unpark" brought it back. A host that would keep instances is never parked.
OFF_ACTIONS = frozenset({"stop", "delete", "release", "park"})
# "recreated": a run found one of its name created after SageSaver's act (by a person or a
# pipeline, not by SageSaver's restore): billing again from its creation.
ON_ACTIONS = frozenset({"start", "restore", "recreated", "unpark"})


@dataclass(frozen=True)
class OffInterval:
    """One resource, off from ``start`` to ``end``."""

    entry: Entry
    start: datetime
    end: datetime
    hours: float
    saved: float | None  # in :attr:`currency`

    @property
    def currency(self) -> str:
        """The currency of :attr:`saved` (the entry's)."""
        return self.entry.currency


def _key(entry: Entry) -> tuple[str, str, str, str]:
    return (entry.account, entry.region, entry.kind, entry.resource)


def _applied(entry: Entry) -> bool:
    return entry.carried_out


def off_intervals(
    entries: Sequence[Entry],
    now: datetime,
    since: datetime | None = None,
    seen: Mapping[str, datetime] | None = None,
) -> list[OffInterval]:
    """Every off interval, clipped to [since, now]. ``seen``: when a run last saw all the
    resources of each kind (the ledger's :meth:`~sagesaver.ledger.base.Ledger.seen`); an
    interval still open ends there, since what happened after (someone creating it again, or
    starting it by hand) is not known yet. Money is counted from what was confirmed."""
    ordered = sorted((e for e in entries if _applied(e)), key=lambda e: e.at)
    intervals = []
    for index, entry in enumerate(ordered):
        if entry.action not in OFF_ACTIONS:
            continue
        end = now
        for later in ordered[index + 1 :]:
            # Seen running again; or acted on again, which means it had been running again.
            if _key(later) == _key(entry) and later.action in ON_ACTIONS | OFF_ACTIONS:
                end = later.at
                break
        if end == now and seen is not None and entry.kind in seen:
            end = max(entry.at, min(end, seen[entry.kind]))
        if entry.off_until is not None:
            end = min(end, entry.off_until)
        start = max(entry.at, since) if since is not None else entry.at
        if end <= start:
            continue
        hours = (end - start).total_seconds() / 3600
        saved = None if entry.hourly_cost is None else round(hours * entry.hourly_cost, 6)
        intervals.append(OffInterval(entry, start, end, round(hours, 6), saved))
    return intervals


@dataclass(frozen=True)
class Totals:
    """Hours, and money by currency (never added across currencies), by group; ``unknown``
    counts intervals with no known price."""

    hours: float
    saved: dict[str, float]
    unknown: int


def saved_by_currency(intervals: Iterable[OffInterval]) -> dict[str, float]:
    """What ``intervals`` saved, per currency (rounded to cents)."""
    sums: dict[str, float] = defaultdict(float)
    for interval in intervals:
        if interval.saved is not None:
            sums[interval.currency] += interval.saved
    return {currency: round(value, 2) for currency, value in sorted(sums.items())}


def totals_by(intervals: Sequence[OffInterval], group: str) -> dict[str, Totals]:
    """Totals by ``kind``, ``region``, or ``tag:KEY`` (resources without the tag: ``(none)``)."""
    groups: dict[str, list[OffInterval]] = defaultdict(list)
    for interval in intervals:
        entry = interval.entry
        if group == "kind":
            name = entry.kind
        elif group == "region":
            name = entry.region
        else:
            name = entry.tags.get(group.removeprefix("tag:"), "(none)")
        groups[name].append(interval)
    return {
        name: Totals(
            round(sum(i.hours for i in members), 2),
            saved_by_currency(members),
            sum(1 for i in members if i.saved is None),
        )
        for name, members in sorted(groups.items())
    }
