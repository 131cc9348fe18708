"""Hourly on-demand prices of ``ml.*`` instance types.

A bundled table (``data/prices.json``, with its source and date) answers offline; a live
lookup through the AWS Price List API (:mod:`sagesaver.aws.prices`) can override it. An
unknown type or region gives ``None`` and a note, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

Component = Literal["hosting", "notebook"]
LiveLookup = Callable[[str, Component, str], "float | None"]


@dataclass(frozen=True)
class PriceTable:
    """Prices by region, then component, then instance type."""

    prices: Mapping[str, Mapping[str, Mapping[str, float]]]
    aliases: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    retrieved: str = ""

    def hourly(self, region: str, component: Component, instance_type: str) -> float | None:
        """USD per instance-hour, or None when the table does not know it."""
        table = self.prices.get(self.aliases.get(region, region), {})
        return table.get(component, {}).get(instance_type)


@cache
def bundled_table() -> PriceTable:
    """The price table shipped with the package."""
    raw: dict[str, Any] = json.loads(
        resources.files("sagesaver").joinpath("data/prices.json").read_text(encoding="utf-8")
    )
    return PriceTable(
        prices=raw["regions"],
        aliases=raw.get("same_as", {}),
        source=raw["source"],
        retrieved=raw["retrieved"],
    )


class Pricer:
    """Looks prices up in the bundled table, or first through a live lookup when given one.

    Thread-safe for reads; the live results are memoised per (region, component, type).
    """

    def __init__(self, table: PriceTable | None = None, live: LiveLookup | None = None) -> None:
        self.table = table or bundled_table()
        self.live = live
        self._memo: dict[tuple[str, Component, str], float | None] = {}

    def hourly(self, region: str, component: Component, instance_type: str) -> float | None:
        """USD per instance-hour of ``instance_type`` in ``region``, or None when unknown."""
        key = (region, component, instance_type)
        if key in self._memo:
            return self._memo[key]
        price: float | None = None
        if self.live is not None:
            price = self.live(region, component, instance_type)
        if price is None:
            price = self.table.hourly(region, component, instance_type)
        self._memo[key] = price
        return price
