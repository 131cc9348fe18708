"""How long each idle endpoint has been idle: the daily ``Invocations`` sums before the policy's
window, read for the idle endpoints only (see :mod:`sagesaver.core.rules.idle_since`).

It informs people and never changes a decision: if the sums cannot be read, the decision keeps
the window as its ``idle_hours`` and says the rest is unknown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sagesaver.aws.endpoint_configs import ConfigMemory
from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.metrics import last_traffic_days
from sagesaver.aws.session import Aws
from sagesaver.core.model import Decision, Kind
from sagesaver.core.rules.idle_since import (
    idle_since,
    lookback_start,
    remembered_day,
    remembered_entry,
)

UNKNOWN_BEFORE = "how long before that is unknown (CloudWatch's daily sums could not be read)"


def _looked_back(decision: Decision) -> bool:
    """Idle real-time endpoints whose variants are known (asynchronous ones publish no
    Invocations: their window is all there is)."""
    resource = decision.resource
    return (
        resource.kind is Kind.ENDPOINT
        and decision.idle
        and not decision.unknown
        and bool(resource.variants)
        and not resource.asynchronous
    )


def with_idle_since(
    aws: Aws,
    region: str,
    decisions: Sequence[Decision],
    now: datetime,
    workers: int = 8,
    memory: ConfigMemory | None = None,
) -> list[Decision]:
    """``decisions`` with the idle endpoints' time since their last traffic (their daily sums
    read in up to ``workers`` calls at once). With a ``memory``, an endpoint still idle since
    the last run's reading is not read again (:func:`remembered_day`): up to 455 daily sums
    per variant, every run, for what cannot have changed."""
    chosen = {d.resource.name: d for d in decisions if _looked_back(d)}
    if not chosen:
        return list(decisions)
    variants = {name: [v.name for v in d.resource.variants] for name, d in chosen.items()}
    key = f"idle-since|{next(iter(chosen.values())).resource.account}|{region}"
    remembered = (memory.scope(key) if memory is not None else {}).get("entries") or {}
    days: dict[str, datetime | None] = {}
    for name, decision in chosen.items():
        window_start = now - timedelta(hours=decision.idle_hours or 0.0)
        known, day = remembered_day(
            remembered.get(name), decision.resource.created, variants[name], window_start, now
        )
        if known:
            days[name] = day
    unread = {name: names for name, names in variants.items() if name not in days}
    if unread:
        with contextlib.suppress(*AWS_ERRORS):  # unread days: "unknown", said below
            days |= last_traffic_days(aws, region, unread, lookback_start(now), now, workers)
    if memory is not None:
        entries = {
            name: remembered_entry(chosen[name].resource.created, variants[name], day, now)
            for name, day in sorted(days.items())
        }
        memory.put(key, {"entries": entries})
    out = []
    for decision in decisions:
        name = decision.resource.name
        if chosen.get(name) is not decision:
            out.append(decision)
        elif name in days:
            out.append(idle_since(decision, days[name], now))
        else:
            out.append(replace(decision, reason=f"{decision.reason}; {UNKNOWN_BEFORE}"))
    return out
