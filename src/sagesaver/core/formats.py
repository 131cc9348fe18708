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


def number(value: float) -> str:
    """A count or an amount as people write it: ``3`` when whole (never ``3.0``), else one
    decimal (``2.5``), with thousands separated (``1,200``)."""
    rounded = round(value, 1)
    if rounded == int(rounded):
        return f"{int(rounded):,}"
    return f"{rounded:,.1f}"


def plural(count: float, noun: str, many: str | None = None) -> str:
    """``1 endpoint``, ``3 endpoints``, ``0 endpoints``, ``2 scaling policies``, ``2.5
    resource-hours``: a count and its noun, the noun plural unless the count reads ``1``;
    ``many`` is the plural when it is not the regular one (see :func:`plural_of`)."""
    shown = number(count)
    return f"{shown} {noun if shown == '1' else many or plural_of(noun)}"


def plural_of(noun: str) -> str:
    """The regular English plural of ``noun`` (its last word): ``endpoints``, ``policies``,
    ``boxes``, ``days``."""
    if noun.endswith("y") and noun[-2:-1] not in ("", *"aeiou"):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"


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
