"""How long each idle endpoint has been idle: the daily ``Invocations`` sums before the policy's
window, read for the idle endpoints only (see :mod:`sagesaver.core.rules.idle_since`).

It informs people and never changes a decision: if the sums cannot be read, the decision keeps
the window as its ``idle_hours`` and says the rest is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.metrics import last_traffic_days
from sagesaver.aws.session import Aws
from sagesaver.core.model import Decision, Kind
from sagesaver.core.rules.idle_since import idle_since, lookback_start

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
    aws: Aws, region: str, decisions: Sequence[Decision], now: datetime, workers: int = 8
) -> list[Decision]:
    """``decisions`` with the idle endpoints' time since their last traffic (their daily sums
    read in up to ``workers`` calls at once)."""
    chosen = {d.resource.name: d for d in decisions if _looked_back(d)}
    if not chosen:
        return list(decisions)
    variants = {name: [v.name for v in d.resource.variants] for name, d in chosen.items()}
    try:
        days = last_traffic_days(aws, region, variants, lookback_start(now), now, workers)
    except AWS_ERRORS:
        days = {}
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
