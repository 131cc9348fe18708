"""Small helpers shared by the decision rules."""

from __future__ import annotations

from datetime import datetime

HOURS_PER_30_DAYS = 24 * 30


def hours_between(earlier: datetime, later: datetime) -> float:
    """Hours from ``earlier`` to ``later`` (negative if ``earlier`` is in the future)."""
    return (later - earlier).total_seconds() / 3600.0


def fmt_hours(hours: float) -> str:
    """``26.0 h`` for a reason text."""
    return f"{hours:.1f} h"
