"""Live on-demand prices from the AWS Price List API, cached on disk.

The Price List API answers from us-east-1 for every region. Products of ``AmazonSageMaker``
carry the attributes ``regionCode``, ``instanceName`` (``ml.m5.large``) and ``component``
(``Hosting``, ``Notebook``...). A failed lookup returns None, so the bundled table answers.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.session import Aws
from sagesaver.core.pricing import Component

SERVICE_CODE = "AmazonSageMaker"
COMPONENTS: dict[Component, str] = {"hosting": "Hosting", "notebook": "Notebook"}
CACHE_TTL_S = 7 * 24 * 3600


def parse_on_demand_usd(price_list: list[str]) -> float | None:
    """The hourly USD on-demand price in a GetProducts ``PriceList``, or None."""
    for item in price_list:
        product: dict[str, Any] = json.loads(item)
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                unit = str(dimension.get("unit", "")).lower()
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd is not None and unit.startswith("hr") and float(usd) > 0:
                    return float(usd)
    return None


class LivePrices:
    """A :data:`~sagesaver.core.pricing.LiveLookup` on the Price List API and a JSON cache."""

    def __init__(self, aws: Aws, cache_file: Path | None, now: float | None = None) -> None:
        self.aws = aws
        self.cache_file = cache_file
        self._now = time.time() if now is None else now
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        if self.cache_file is None or not self.cache_file.exists():
            return {}
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._cache, sort_keys=True), encoding="utf-8")
            tmp.replace(self.cache_file)
        except OSError:
            pass  # a cache that cannot be written only costs a lookup next time

    def __call__(self, region: str, component: Component, instance_type: str) -> float | None:
        key = f"{region}/{component}/{instance_type}"
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and self._now - float(hit.get("at", 0)) < CACHE_TTL_S:
            value = hit.get("usd")
            return None if value is None else float(value)
        try:
            response = self.aws.pricing().get_products(
                ServiceCode=SERVICE_CODE,
                Filters=[
                    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
                    {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
                    {"Type": "TERM_MATCH", "Field": "component", "Value": COMPONENTS[component]},
                ],
                MaxResults=10,
            )
        except AWS_ERRORS:
            return None
        price = parse_on_demand_usd(response.get("PriceList", []))
        with self._lock:
            self._cache[key] = {"usd": price, "at": self._now}
            self._save()
        return price
