"""Hourly on-demand prices of ``ml.*`` instance types, in the currency they are quoted in.

A price is a :class:`Quote`: an amount (or None), its currency (USD in ``aws`` and
``aws-us-gov``, CNY in ``aws-cn``) and where it came from (``price_source``):

``live``
    the partition's own AWS Price List API answered (:mod:`sagesaver.aws.prices`, cached);
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
from functools import cache
from importlib import resources
from typing import Any, Literal

from sagesaver.core.partitions import currency_of, partition_of

__all__ = [
    "Component",
    "LiveLookup",
    "PriceSource",
    "PriceTable",
    "Pricer",
    "Quote",
    "bundled_table",
    "combine",
    "currency_of",
    "table_from_document",
]

Component = Literal["hosting", "notebook"]
PriceSource = Literal["live", "bundled", "unknown"]
# A live lookup: (region, component, instance type) -> (amount, currency), or None.
LiveLookup = Callable[[str, Component, str], "tuple[float, str] | None"]


@dataclass(frozen=True)
class Quote:
    """An hourly price, its currency and where it came from (``note``: why it is unknown)."""

    amount: float | None
    currency: str
    source: PriceSource
    note: str | None = None


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
    """Quotes prices: the live lookup first when there is one, then the bundled table.

    Thread-safe; the quotes are memoised per (region, component, type).
    """

    def __init__(
        self,
        table: PriceTable | None = None,
        live: LiveLookup | None = None,
        live_note: str | None = None,
    ) -> None:
        self.table = table or bundled_table()
        self.live = live
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
        found: Quote | None = None
        if self.live is not None:
            answer = self.live(region, component, instance_type)
            if answer is not None:
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
            found = Quote(None, currency_of(region), "unknown", "; ".join(notes))
        with self._lock:
            self._memo[key] = found
        return found

    @property
    def mode(self) -> PriceSource:
        """Where this pricer's prices come from first: ``live`` or ``bundled``."""
        return "live" if self.live is not None else "bundled"

    def free(self, region: str) -> Quote:
        """A known zero (a stopped instance, no instances): nothing is billed."""
        return Quote(0.0, currency_of(region), self.mode)

    def hourly(self, region: str, component: Component, instance_type: str) -> float | None:
        """The amount of :meth:`quote` (in the region's currency), or None when unknown."""
        return self.quote(region, component, instance_type).amount


def combine(quotes: list[tuple[Quote, int]], currency: str, empty: PriceSource) -> Quote:
    """The total of ``count`` x quote for each pair: unknown when any part is, else the
    sum; ``live`` only when every part was live. No part at all costs 0 (``empty`` says
    where prices would have come from)."""
    if not quotes:
        return Quote(0.0, currency, empty)
    for quote, _ in quotes:
        if quote.amount is None:
            return Quote(None, quote.currency, "unknown", quote.note)
    currencies = {q.currency for q, _ in quotes}
    if len(currencies) > 1:
        return Quote(None, currency, "unknown", f"prices in {', '.join(sorted(currencies))}")
    total = round(sum((q.amount or 0.0) * n for q, n in quotes), 6)
    sources = {q.source for q, _ in quotes}
    source: PriceSource = "live" if sources == {"live"} else "bundled"
    return Quote(total, currencies.pop(), source)
