"""The one copy of the time and duration formats every layer uses. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

HOURS_PER_30_DAYS = 24 * 30


def hours_between(earlier: datetime, later: datetime) -> float:
    """Hours from ``earlier`` to ``later`` (negative if ``earlier`` is in the future)."""
    return (later - earlier).total_seconds() / 3600.0


def fmt_hours(hours: float) -> str:
    """``26.0 h`` for a reason text."""
    return f"{hours:.1f} h"


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (second precision): what people and JSON documents read."""
    utc = moment.astimezone(timezone.utc).replace(microsecond=0)
    return utc.isoformat().replace("+00:00", "Z")


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC, as precise as ``moment`` (``+00:00``): what the ledger stores."""
    return moment.astimezone(timezone.utc).isoformat()


def stamp(moment: datetime) -> str:
    """A UTC time that sorts as text (always with microseconds): for comparisons in a store."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def minute(moment: datetime | None) -> str:
    """``2026-11-30 10:00 UTC`` for a sentence (``-`` when there is no moment)."""
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
