"""Hourly on-demand prices of ``ml.*`` instance types, in the currency they are quoted in.

A price is a :class:`Quote`: an amount (or None), its currency (USD in ``aws`` and
``aws-us-gov``, CNY in ``aws-cn``) and where it came from (``price_source``):

``file``
    a price file the user chose (``--prices``, ``SAGESAVER_PRICES``, the policy's ``prices``:
    :mod:`sagesaver.core.price_file`); it wins over the Price List, and its quotes carry the
    file's publication date;
``live``
    the partition's own AWS Price List API answered (:mod:`sagesaver.aws.prices`, cached);
``cached``
    the Price List could not be reached, and the cache still held its last good answer (older
    than the cache's 7 days): the quote carries the day it was read, and past
    :data:`STALE_AFTER_DAYS` its note says it may be stale;
``bundled``
    the table shipped with the package (``data/prices.json``), which
    ``scripts/generate_prices.py`` generates from the public bulk offer files, and which says
    where and when each partition's figures were read;
``unknown``
    neither knows it; the quote says why (``note``).

Pure: the live lookup is passed in.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal, Protocol

from sagesaver.core.formats import iso
from sagesaver.core.partitions import currency_of, partition_of

__all__ = [
    "STALE_AFTER_DAYS",
    "Component",
    "FilePrices",
    "LiveLookup",
    "PriceSource",
    "PriceTable",
    "Pricer",
    "Quote",
    "bundled_table",
    "cached_quote",
    "combine",
    "currency_of",
    "table_from_document",
]

Component = Literal["hosting", "notebook"]
PriceSource = Literal["file", "live", "cached", "bundled", "unknown"]
# A live lookup: (region, component, instance type) -> (amount, currency), or a Quote when
# the answer is not the Price List's own (a cached one), or None.
LiveLookup = Callable[[str, Component, str], "tuple[float, str] | Quote | None"]
# A cached Price List answer older than this may no longer be the price.
STALE_AFTER_DAYS = 30
# The sources of a total's parts, least fresh first: a total is labelled by its least fresh.
FRESHNESS: tuple[PriceSource, ...] = ("bundled", "cached", "file", "live")


@dataclass(frozen=True)
class Quote:
    """An hourly price, its currency and where it came from (``note``: why it is unknown, or
    which file or cache answered; ``date``: when that file was published or that answer read,
    ISO 8601)."""

    amount: float | None
    currency: str
    source: PriceSource
    note: str | None = None
    date: str | None = None


class FilePrices(Protocol):
    """Prices the user chose (:class:`~sagesaver.core.price_file.PriceFile`)."""

    def quote(self, region: str, component: Component, instance: str) -> Quote | None:
        """The file's quote, or None when it has no price for this."""

    def why_missing(self, region: str, component: Component, instance: str) -> str:
        """Why the file gives no price for this (one line)."""


def cached_quote(amount: float, currency: str, read_at: datetime, now: datetime) -> Quote:
    """A Price List answer read at ``read_at``, kept in the cache, given at ``now`` because the
    Price List could not be reached: its note says how old it is, and past
    :data:`STALE_AFTER_DAYS` that it may be stale."""
    days = int((now - read_at).total_seconds() // 86400)
    age = f"{days} day{'' if days == 1 else 's'} old"
    if days > STALE_AFTER_DAYS:
        age += ": it may be stale"
    note = f"the Price List's answer of {read_at:%Y-%m-%d}, kept in the cache ({age})"
    return Quote(amount, currency, "cached", note, iso(read_at))


@dataclass(frozen=True)
class PriceTable:
    """Prices by region, then component, then instance type; each region in its currency.

    ``missing`` says, per partition or region, why the table has no figures for it.
    """

    prices: Mapping[str, Mapping[str, Any]]
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    retrieved: str = ""
    missing: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def hourly(self, region: str, component: Component, instance_type: str) -> float | None:
        """The price per instance-hour, or None when the table does not know it."""
        table = self.prices.get(self.aliases.get(region, region), {})
        value = table.get(component, {}).get(instance_type)
        return None if value is None else float(value)

    def currency(self, region: str) -> str:
        """The currency of ``region``'s figures (its partition's when the table has none)."""
        table = self.prices.get(self.aliases.get(region, region), {})
        return str(table.get("currency") or currency_of(region))

    def why_missing(self, region: str, component: Component, instance_type: str) -> str:
        """Why the table has no price for this (one line)."""
        reason = self.missing.get(region) or self.missing.get(partition_of(region))
        if reason:
            return f"not in the bundled table: {reason}"
        if self.aliases.get(region, region) not in self.prices:
            return f"not in the bundled table: no figures for {region}"
        return f"not in the bundled table: no {component} price for {instance_type} in {region}"


def table_from_document(raw: Mapping[str, Any]) -> PriceTable:
    """A :class:`PriceTable` from the JSON document ``scripts/generate_prices.py`` writes."""
    return PriceTable(
        prices=raw.get("regions", {}),
        aliases=raw.get("same_as", {}),
        source=str(raw.get("source", "")),
        retrieved=str(raw.get("retrieved", "")),
        missing=raw.get("missing", {}),
        sources=raw.get("partitions", {}),
    )


@cache
def bundled_table() -> PriceTable:
    """The price table shipped with the package."""
    raw: dict[str, Any] = json.loads(
        resources.files("sagesaver").joinpath("data/prices.json").read_text(encoding="utf-8")
    )
    return table_from_document(raw)


class Pricer:
    """Quotes prices: the price file first when there is one (the user chose it), then the
    live lookup when there is one, then the bundled table.

    Thread-safe; the quotes are memoised per (region, component, type).
    """

    def __init__(
        self,
        table: PriceTable | None = None,
        live: LiveLookup | None = None,
        live_note: str | None = None,
        file: FilePrices | None = None,
    ) -> None:
        self.table = table or bundled_table()
        self.live = live
        self.file = file
        # Why there is no live lookup (e.g. --offline-prices), reported with unknown prices.
        self.live_note = live_note
        self._memo: dict[tuple[str, Component, str], Quote] = {}
        self._lock = threading.Lock()

    def quote(self, region: str, component: Component, instance_type: str) -> Quote:
        """The price per instance-hour of ``instance_type`` in ``region``."""
        key = (region, component, instance_type)
        with self._lock:
            known = self._memo.get(key)
        if known is not None:
            return known
        found = self.file.quote(region, component, instance_type) if self.file else None
        if found is None and self.live is not None:
            answer = self.live(region, component, instance_type)
            if isinstance(answer, Quote):
                found = answer
            elif answer is not None:
                found = Quote(answer[0], answer[1], "live")
        if found is None:
            amount = self.table.hourly(region, component, instance_type)
            if amount is not None:
                found = Quote(amount, self.table.currency(region), "bundled")
        if found is None:
            notes = [self.table.why_missing(region, component, instance_type)]
            if self.live is not None:
                notes.insert(0, "the Price List API did not answer")
            elif self.live_note:
                notes.insert(0, self.live_note)
            if self.file is not None:
                notes.insert(0, self.file.why_missing(region, component, instance_type))
            found = Quote(None, currency_of(region), "unknown", "; ".join(notes))
        with self._lock:
            self._memo[key] = found
        return found

    @property
    def mode(self) -> PriceSource:
        """Where this pricer's prices come from first: ``file``, ``live`` or ``bundled``."""
        if self.file is not None:
            return "file"
        return "live" if self.live is not None else "bundled"

    def free(self, region: str) -> Quote:
        """A known zero (a stopped instance, no instances): nothing is billed."""
        return Quote(0.0, currency_of(region), self.mode)

    def hourly(self, region: str, component: Component, instance_type: str) -> float | None:
        """The amount of :meth:`quote` (in the region's currency), or None when unknown."""
        return self.quote(region, component, instance_type).amount


def combine(quotes: list[tuple[Quote, int]], currency: str, empty: PriceSource) -> Quote:
    """The total of ``count`` x quote for each pair: unknown when any part is, else the
    sum, labelled by its least fresh part (:data:`FRESHNESS`: ``live`` only when every part
    was live), with that part's note and its oldest date. No part at all costs 0 (``empty``
    says where prices would have come from)."""
    if not quotes:
        return Quote(0.0, currency, empty)
    for quote, _ in quotes:
        if quote.amount is None:
            return Quote(None, quote.currency, "unknown", quote.note)
    currencies = {q.currency for q, _ in quotes}
    if len(currencies) > 1:
        return Quote(None, currency, "unknown", f"prices in {', '.join(sorted(currencies))}")
    total = round(sum((q.amount or 0.0) * n for q, n in quotes), 6)
    source = min((q.source for q, _ in quotes), key=_freshness)
    like = [q for q, _ in quotes if q.source == source]
    dates = sorted(q.date for q in like if q.date)
    return Quote(total, currencies.pop(), source, like[0].note, dates[0] if dates else None)


def _freshness(source: PriceSource) -> int:
    return FRESHNESS.index(source) if source in FRESHNESS else 0
