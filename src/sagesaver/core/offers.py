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

The bulk files are published as JSON and as CSV (five metadata lines, ``FormatVersion``,
``Disclaimer``, ``Publication Date``, ``Version`` and ``OfferCode``, then a header and one row
per price dimension: the term's fields, then the product's attributes, some spelled out
(``Region Code``), some in camelCase (``usageType``)); both are read here.

Pure: parsing only; fetching the files is ``scripts/generate_prices.py``'s and
``sagesaver prices fetch``'s (:mod:`sagesaver.aws.price_files`) job.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sagesaver.core.pricing import Component

COMPONENTS: dict[str, Component] = {"Hosting": "hosting", "Notebook": "notebook"}
# Where each partition's bulk offer files are published (no credentials needed), and the path
# of SageMaker's region index there; each region's ``currentVersionUrl`` is relative to it.
BULK_HOSTS = {
    "aws": "https://pricing.us-east-1.amazonaws.com",
    "aws-cn": "https://pricing.cn-north-1.amazonaws.com.cn",
}
BULK_CODES = {"aws": "aws", "aws-cn": "cn"}
REGION_INDEX = "/offers/v1.0/{code}/AmazonSageMaker/current/region_index.json"
# The CSV offer's metadata lines, by their label, as the JSON offer names the same facts.
CSV_METADATA = {
    "FormatVersion": "formatVersion",
    "Disclaimer": "disclaimer",
    "Publication Date": "publicationDate",
    "Version": "version",
    "OfferCode": "offerCode",
}
# An instance's rate is one of these per (region, component, type) and file.
Rate = tuple[tuple[str, Component, str], float, str]


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


def offer_rates(offer: Mapping[str, Any]) -> Iterator[Rate]:
    """The hourly on-demand rates of the instances of one JSON bulk offer file. Raises
    ``ValueError`` when it is not SageMaker's offer file."""
    if offer.get("offerCode") != "AmazonSageMaker" or not isinstance(offer.get("products"), dict):
        raise ValueError("not the AmazonSageMaker offer file (offerCode, products)")
    on_demand: Mapping[str, Any] = (offer.get("terms") or {}).get("OnDemand") or {}
    for sku, product in offer["products"].items():
        key = instance_key(product.get("attributes") or {})
        if key is None:
            continue
        rate = hourly_rate(on_demand.get(sku) or {})
        if rate is not None:
            yield key, rate[0], rate[1]


def table_from_offer(offer: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The prices of one bulk offer file, and what was left out and why.

    Prices: ``{region: {"currency": C, "hosting": {type: price}, "notebook": {...}}}``. An
    instance type with several different on-demand hourly rates in one region is left out
    (which one a running instance is billed at cannot be told from the file). Raises
    ``ValueError`` when it is not a SageMaker offer file or quotes two currencies in a region.
    """
    return tabulate(offer_rates(offer))


def _column(name: str) -> str:
    """A CSV column's name as a JSON attribute's, compared without case and spaces
    (``Region Code`` and ``regionCode`` are one)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def table_from_offer_csv(text: str) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """The prices of one CSV bulk offer file (as :func:`table_from_offer`), and its metadata
    under the JSON file's names (``publicationDate``, ``version``, ``offerCode``...). Raises
    ``ValueError`` when it is not SageMaker's CSV offer file."""
    rows = csv.reader(text.splitlines())
    meta: dict[str, str] = {}
    header: list[str] | None = None
    for row in rows:
        if len(row) == 2 and row[0] in CSV_METADATA:
            meta[CSV_METADATA[row[0]]] = row[1]
            continue
        if {"sku", "termtype", "priceperunit"} <= {_column(c) for c in row}:
            header = [_column(c) for c in row]
        break
    if header is None:
        raise ValueError("no header row (SKU, TermType, PricePerUnit...) after the metadata")
    if meta.get("offerCode", "AmazonSageMaker") != "AmazonSageMaker":
        raise ValueError(f"not the AmazonSageMaker offer file (OfferCode {meta['offerCode']})")

    def rates() -> Iterator[Rate]:
        for row in rows:
            record = dict(zip(header, row, strict=False))
            if record.get("termtype") != "OnDemand":
                continue
            if not record.get("unit", "").lower().startswith("hr"):
                continue
            key = instance_key(
                {
                    "component": record.get("component", ""),
                    "regionCode": record.get("regioncode", ""),
                    "instanceName": record.get("instancename", ""),
                }
            )
            try:
                amount = float(record.get("priceperunit", ""))
            except ValueError:
                continue
            if key is not None and amount > 0 and record.get("currency"):
                yield key, amount, record["currency"]

    regions, left_out = tabulate(rates())
    return regions, left_out, meta


def tabulate(rates: Iterable[Rate]) -> tuple[dict[str, Any], list[str]]:
    """Rates as a table by region (see :func:`table_from_offer`), and what was left out."""
    found: dict[tuple[str, Component, str], set[float]] = {}
    currencies: dict[str, str] = {}
    for key, amount, currency in rates:
        region = key[0]
        if currencies.setdefault(region, currency) != currency:
            raise ValueError(f"{region}: prices in {currencies[region]} and {currency}")
        found.setdefault(key, set()).add(amount)
    regions: dict[str, dict[str, Any]] = {}
    left_out: list[str] = []
    for (region, component, instance), amounts in sorted(found.items()):
        entry = regions.setdefault(
            region, {"currency": currencies[region], "hosting": {}, "notebook": {}}
        )
        if len(amounts) > 1:
            listed = ", ".join(f"{a:g}" for a in sorted(amounts))
            left_out.append(f"{region} {component} {instance}: {len(amounts)} rates ({listed})")
            continue
        entry[component][instance] = amounts.pop()
    return regions, left_out
