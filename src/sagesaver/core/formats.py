"""The one copy of the time and duration formats every layer uses. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

HOURS_PER_30_DAYS = 24 * 30


def hours_between(earlier: datetime, later: datetime) -> float:
    """Hours from ``earlier`` to ``later`` (negative if ``earlier`` is in the future)."""
    return (later - earlier).total_seconds() / 3600.0


def fmt_hours(hours: float) -> str:
    """``26.0 h`` for a reason text."""
    return f"{hours:.1f} h"


def fmt_idle(hours: float) -> str:
    """``idle for 40 days`` from two days on, ``idle for 26.0 h`` below: what people read."""
    if hours >= 48:
        return f"idle for {hours / 24:.0f} days"
    return f"idle for {hours:.1f} h"


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


CURRENCY_SYMBOLS = {"USD": "$", "CNY": "¥"}


def money(
    amount: float | None,
    currency: str,
    places: int = 2,
    unknown: str = "?",
    ascii_only: bool = False,
) -> str:
    """``$1,234.50`` / ``¥1,234.50`` (other currencies by code: ``EUR 1,234.50``; with
    ``ascii_only``, a symbol outside ASCII is replaced by the code: ``CNY 1,234.50``)."""
    if amount is None:
        return unknown
    symbol = CURRENCY_SYMBOLS.get(currency)
    if ascii_only and symbol is not None and not symbol.isascii():
        symbol = None
    number = f"{amount:,.{places}f}"
    return f"{symbol}{number}" if symbol else f"{currency} {number}"


def money_by_currency(
    amounts: Mapping[str, float],
    places: int = 2,
    unit: str = "",
    ascii_only: bool = False,
    empty: str = "unknown",
) -> str:
    """Amounts of several currencies, never added up: ``$1.20/h + ¥3.40/h``; ``empty`` (unknown)
    when there is none: a total with no known amount is never shown as ``$0.00``."""
    if not amounts:
        return empty
    return " + ".join(
        money(v, c, places, ascii_only=ascii_only) + unit for c, v in sorted(amounts.items())
    )


def reasons_text(reasons: Mapping[str, int]) -> str:
    """Why amounts are unknown, with how many each reason covers: ``3 x no price known``."""
    return "; ".join(f"{n} x {reason}" for reason, n in reasons.items())
