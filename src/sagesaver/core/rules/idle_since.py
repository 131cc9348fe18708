"""How long an idle endpoint has really been idle.

The policy judges an endpoint over its look-back window (``idle_hours``); a person wants to know
since when nobody called it. The pipeline looks further back in daily ``Invocations`` sums, up to
what CloudWatch keeps of them (455 days: data points of a period of an hour or more, per
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Metric),
and this module turns what it found into the decision's ``idle_hours``, ``last_activity_at`` and
reason. Pure: no AWS, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sagesaver.core.formats import fmt_idle, hours_between
from sagesaver.core.model import Decision

RETENTION_DAYS = 455
DAY = timedelta(days=1)


def lookback_start(now: datetime) -> datetime:
    """The start of the daily sums: midnight UTC of the oldest day CloudWatch still keeps."""
    start = now - timedelta(days=RETENTION_DAYS - 1)
    return start.replace(hour=0, minute=0, second=0, microsecond=0)


# CloudWatch datapoints can arrive after the time they are for: a remembered reading is
# trusted only when the idle window now reaches this far before the end of that reading.
LATE_DATA = timedelta(hours=1)


def remembered_day(
    entry: Mapping[str, Any] | None,
    created: datetime,
    variants: Sequence[str],
    window_start: datetime,
    now: datetime,
) -> tuple[bool, datetime | None]:
    """The last traffic day a reading of the daily sums remembered from an earlier run gives
    now, as ``(True, day)``; ``(False, None)`` when it cannot be trusted: for an endpoint
    created at another time (deleted and created again) or with other variants, or when the
    window found idle now does not cover everything since that reading (its end, less
    :data:`LATE_DATA`, before ``window_start``). Days with traffic cannot appear between the
    reading and now: that time is inside the idle window. A day that has left what
    CloudWatch keeps is forgotten, as a new reading would not see it."""
    if not entry:
        return False, None
    try:
        read_until = datetime.fromisoformat(str(entry["read_until"]))
        same = entry["created"] == created.isoformat() and list(entry["variants"]) == sorted(
            variants
        )
        day = datetime.fromisoformat(str(entry["day"])) if entry.get("day") else None
    except (KeyError, TypeError, ValueError):
        return False, None
    if not same or read_until > now or read_until - LATE_DATA < window_start:
        return False, None
    if day is not None and day < lookback_start(now):
        day = None
    return True, day


def remembered_entry(
    created: datetime, variants: Sequence[str], day: datetime | None, now: datetime
) -> dict[str, Any]:
    """What :func:`remembered_day` reads back: a reading of the daily sums made at ``now``."""
    return {
        "created": created.isoformat(),
        "variants": sorted(variants),
        "day": day.isoformat() if day is not None else None,
        "read_until": now.isoformat(),
    }


def idle_since(decision: Decision, last_traffic_day: datetime | None, now: datetime) -> Decision:
    """``decision`` with the time since its last traffic: the end of ``last_traffic_day`` (the
    start of the last daily bucket with any), never later than the start of the policy's
    window, which had none; with no traffic in the days kept, since its creation (or the
    oldest day kept, if it is older). CloudWatch keeps metrics by endpoint name: traffic on
    days that ended before the endpoint was created was an earlier endpoint's of that name."""
    window_start = now - timedelta(hours=decision.idle_hours or 0.0)
    if last_traffic_day is not None and last_traffic_day + DAY <= decision.resource.created:
        last_traffic_day = None
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
