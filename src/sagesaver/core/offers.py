"""Reading AWS Price List offer files and GetProducts answers for SageMaker instance prices.

Two shapes carry the same facts:

* a **bulk offer file** (``/offers/v1.0/{aws|cn}/AmazonSageMaker/current/index.json``): a
  ``products`` map (SKU -> ``{"sku", "productFamily", "attributes"}``) and a ``terms`` map
  (``OnDemand`` -> SKU -> offer term code -> ``{"priceDimensions": {rate code ->
  {"unit", "pricePerUnit": {CURRENCY: "0.1150000000"}, ...}}}``), with ``publicationDate``
  and ``version`` at the top;
* a **GetProducts** answer: ``PriceList`` is a list of JSON *strings*, each one product with
  its own ``terms`` (``{"product": {...}, "terms": {"OnDemand": {...}}, "serviceCode"...}``).

A SageMaker instance product names ``regionCode``, ``instanceName`` (``ml.m5.large``) and
``component``: ``Hosting`` (real-time inference) and ``Notebook`` (notebook instances) are the
two SageSaver prices. A price is the on-demand, per-hour (unit ``Hrs``) rate, above zero, in the
currency the file quotes (USD in ``aws``, CNY in ``aws-cn``).

Pure: parsing only; fetching the files is ``scripts/generate_prices.py``'s job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sagesaver.core.pricing import Component

COMPONENTS: dict[str, Component] = {"Hosting": "hosting", "Notebook": "notebook"}


def hourly_rate(terms: Mapping[str, Any]) -> tuple[float, str] | None:
    """The positive hourly on-demand rate and its currency in one product's ``OnDemand``
    terms (term code -> term), or None."""
    for term in terms.values():
        for dimension in (term.get("priceDimensions") or {}).values():
            if not str(dimension.get("unit", "")).lower().startswith("hr"):
                continue
            for currency, value in sorted((dimension.get("pricePerUnit") or {}).items()):
                try:
                    amount = float(value)
                except (TypeError, ValueError):
                    continue
                if amount > 0:
                    return amount, str(currency)
    return None


def instance_key(attributes: Mapping[str, Any]) -> tuple[str, Component, str] | None:
    """(region code, component, instance type) of a SageMaker instance product, or None when
    the product is not a hosting or notebook instance."""
    component = COMPONENTS.get(str(attributes.get("component", "")))
    region = attributes.get("regionCode")
    instance = str(attributes.get("instanceName", ""))
    if component is None or not region or not instance.startswith("ml."):
        return None
    return str(region), component, instance


def parse_get_products(price_list: Iterable[str]) -> tuple[float, str] | None:
    """The hourly on-demand rate and currency in a GetProducts ``PriceList``, or None."""
    for item in price_list:
        product: dict[str, Any] = json.loads(item)
        found = hourly_rate(product.get("terms", {}).get("OnDemand", {}))
        if found is not None:
            return found
    return None


def table_from_offer(offer: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The prices of one bulk offer file, and what was left out and why.

    Prices: ``{region: {"currency": C, "hosting": {type: price}, "notebook": {...}}}``. An
    instance type with several different on-demand hourly rates in one region is left out
    (which one a running instance is billed at cannot be told from the file). Raises
    ``ValueError`` when it is not a SageMaker offer file or quotes two currencies in a region.
    """
    if offer.get("offerCode") != "AmazonSageMaker" or not isinstance(offer.get("products"), dict):
        raise ValueError("not the AmazonSageMaker offer file (offerCode, products)")
    on_demand: Mapping[str, Any] = (offer.get("terms") or {}).get("OnDemand") or {}
    rates: dict[tuple[str, Component, str], set[float]] = {}
    currencies: dict[str, str] = {}
    for sku, product in offer["products"].items():
        key = instance_key(product.get("attributes") or {})
        if key is None:
            continue
        rate = hourly_rate(on_demand.get(sku) or {})
        if rate is None:
            continue
        amount, currency = rate
        region = key[0]
        if currencies.setdefault(region, currency) != currency:
            raise ValueError(f"{region}: prices in {currencies[region]} and {currency}")
        rates.setdefault(key, set()).add(amount)
    regions: dict[str, dict[str, Any]] = {}
    left_out: list[str] = []
    for (region, component, instance), found in sorted(rates.items()):
        entry = regions.setdefault(
            region, {"currency": currencies[region], "hosting": {}, "notebook": {}}
        )
        if len(found) > 1:
            listed = ", ".join(f"{a:g}" for a in sorted(found))
            left_out.append(f"{region} {component} {instance}: {len(found)} rates ({listed})")
            continue
        entry[component][instance] = found.pop()
    return regions, left_out
