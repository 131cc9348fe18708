"""How long an idle endpoint has really been idle.

The policy judges an endpoint over its look-back window (``idle_hours``); a person wants to know
since when nobody called it. The pipeline looks further back in daily ``Invocations`` sums, up to
what CloudWatch keeps of them (455 days: data points of a period of an hour or more, per
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Metric),
and this module turns what it found into the decision's ``idle_hours``, ``last_activity_at`` and
reason. Pure: no AWS, no clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sagesaver.core.formats import fmt_idle, hours_between
from sagesaver.core.model import Decision

RETENTION_DAYS = 455
DAY = timedelta(days=1)


def lookback_start(now: datetime) -> datetime:
    """The start of the daily sums: midnight UTC of the oldest day CloudWatch still keeps."""
    start = now - timedelta(days=RETENTION_DAYS - 1)
    return start.replace(hour=0, minute=0, second=0, microsecond=0)


def idle_since(decision: Decision, last_traffic_day: datetime | None, now: datetime) -> Decision:
    """``decision`` with the time since its last traffic: the end of ``last_traffic_day`` (the
    start of the last daily bucket with any), never later than the start of the policy's
    window, which had none; with no traffic in the days kept, since its creation (or the
    oldest day kept, if it is older)."""
    window_start = now - timedelta(hours=decision.idle_hours or 0.0)
    if last_traffic_day is not None:
        since = min(last_traffic_day + DAY, window_start)
        words = f"last invoked on {last_traffic_day:%Y-%m-%d}"
        last: datetime | None = since
    else:
        oldest = lookback_start(now)
        created = decision.resource.created
        since = max(created, oldest)
        words = (
            f"never invoked since its creation on {created:%Y-%m-%d}"
            if created >= oldest
            else f"not invoked in the {RETENTION_DAYS} days CloudWatch keeps"
        )
        last = None
    hours = round(max(hours_between(since, now), decision.idle_hours or 0.0), 2)
    return replace(
        decision,
        idle_hours=hours,
        last_activity_at=last,
        reason=f"{decision.reason}; {words} ({fmt_idle(hours)})",
    )
