"""A price file: prices chosen by the user, for hosts that cannot reach the Price List.

Three forms are read, told apart by their content:

* SageSaver's compact file, written by ``sagesaver prices fetch`` (:func:`compact_document`):
  ``{"format": "sagesaver-prices", "format_version": 1, "partition", "publication_date",
  "retrieved", "sources": [{"url", "publicationDate", "version", "regions"}], "regions":
  {region: {"currency", "publication_date", "hosting": {type: {"amount", "currency"}},
  "notebook": {...}}}}``;
* an AWS bulk offer file of AmazonSageMaker as downloaded, JSON (``index.json``);
* the same as CSV (``index.csv``) (:mod:`sagesaver.core.offers` parses both).

Each price from it is quoted with ``price_source`` ``file``, the file's name and the
publication date of the offer it came from. Pure: the bytes are given; reading them (a path,
``s3://``) is :mod:`sagesaver.aws.price_files`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso
from sagesaver.core.offers import table_from_offer, table_from_offer_csv
from sagesaver.core.pricing import Component, Quote

FORMAT = "sagesaver-prices"
FORMAT_VERSION = 1
COMPONENT_NAMES: tuple[Component, ...] = ("hosting", "notebook")
# region -> component -> instance type -> (amount, currency)
Prices = Mapping[str, Mapping[str, Mapping[str, tuple[float, str]]]]


@dataclass(frozen=True)
class PriceFile:
    """The prices of one price file, where it was read (``name``), what it is (``kind``), and
    the publication date of each region's figures (``dates``)."""

    name: str
    kind: str
    prices: Prices
    dates: Mapping[str, str]

    def price(self, region: str, component: Component, instance: str) -> tuple[float, str] | None:
        """The hourly price and its currency, or None when the file has none."""
        return self.prices.get(region, {}).get(component, {}).get(instance)

    def published(self, region: str) -> str | None:
        """When the offer ``region``'s figures came from was published (ISO 8601)."""
        return self.dates.get(region)

    def quote(self, region: str, component: Component, instance: str) -> Quote | None:
        """The file's quote (``file``, with its name and publication date), or None."""
        found = self.price(region, component, instance)
        if found is None:
            return None
        date = self.published(region)
        when = f" (published {date[:10]})" if date else ""
        return Quote(found[0], found[1], "file", f"from {self.name}{when}", date)

    def why_missing(self, region: str, component: Component, instance: str) -> str:
        """Why the file gives no price for this (one line)."""
        if region not in self.prices:
            return f"{self.name} has no price for {region}"
        return f"{self.name} has no {component} price for {instance} in {region}"


def parse_price_file(data: bytes, name: str) -> PriceFile:
    """The prices in ``data``, read from ``name``. Raises :class:`InputError` naming the file
    and what is wrong with it."""
    try:
        return _parse(data, name)
    except ValueError as exc:
        raise InputError(f"{name}: {exc}") from None


def _parse(data: bytes, name: str) -> PriceFile:
    if not data.strip():
        raise ValueError("the price file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text: not a price file (JSON or CSV)") from None
    start = text.lstrip()[:1]
    if start == '"' or text.lstrip().startswith("FormatVersion"):
        regions, _, meta = table_from_offer_csv(text)
        found = _from_table(name, "AWS offer file (CSV)", regions, meta.get("publicationDate"))
    elif start in ("{", "["):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if isinstance(document, dict) and document.get("format") == FORMAT:
            found = _from_compact(name, document)
        elif isinstance(document, dict) and "offerCode" in document:
            regions, _ = table_from_offer(document)
            date = document.get("publicationDate")
            found = _from_table(name, "AWS offer file (JSON)", regions, date)
        else:
            raise ValueError(_NEITHER)
    else:
        raise ValueError(_NEITHER)
    if not any(
        any(by_type) for by_region in found.prices.values() for by_type in by_region.values()
    ):
        raise ValueError(f"no prices in this {found.kind} (no Hosting or Notebook hourly rate)")
    return found


_NEITHER = (
    "neither a SageSaver price file nor an AWS offer file (`sagesaver prices fetch` writes "
    "the one; the other is AmazonSageMaker's index.json or index.csv as downloaded)"
)


def _from_table(name: str, kind: str, regions: Mapping[str, Any], published: object) -> PriceFile:
    """A price file from an offer's table (:func:`~sagesaver.core.offers.table_from_offer`)."""
    prices: dict[str, dict[str, dict[str, tuple[float, str]]]] = {
        region: {
            component: {t: (float(a), str(entry["currency"])) for t, a in entry[component].items()}
            for component in COMPONENT_NAMES
        }
        for region, entry in regions.items()
    }
    date = str(published) if published else None
    return PriceFile(name, kind, prices, {r: date for r in prices if date})


def _from_compact(name: str, document: Mapping[str, Any]) -> PriceFile:
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"format_version {version}: this SageSaver reads version {FORMAT_VERSION} "
            "(fetch the file again with this version's `sagesaver prices fetch`)"
        )
    regions = document.get("regions")
    if not isinstance(regions, dict):
        raise ValueError("regions: not a mapping of region -> component -> instance type")
    top = document.get("publication_date")
    prices: dict[str, dict[str, dict[str, tuple[float, str]]]] = {}
    dates: dict[str, str] = {}
    for region, entry in regions.items():
        if not isinstance(entry, dict):
            raise ValueError(f"regions.{region}: not a mapping of component -> instance type")
        prices[region] = {}
        for component in COMPONENT_NAMES:
            prices[region][component] = {
                instance: _amount(f"{region} {component} {instance}", item)
                for instance, item in (entry.get(component) or {}).items()
            }
        date = entry.get("publication_date") or top
        if date:
            dates[region] = str(date)
    return PriceFile(name, "SageSaver price file", prices, dates)


def _amount(where: str, item: object) -> tuple[float, str]:
    """One compact entry ``{"amount": 1.23, "currency": "CNY"}``, checked."""
    if isinstance(item, dict):
        amount, currency = item.get("amount"), item.get("currency")
        if (
            isinstance(amount, (int, float))
            and not isinstance(amount, bool)
            and amount >= 0
            and isinstance(currency, str)
            and currency
        ):
            return float(amount), currency
    raise ValueError(f"{where}: not {{amount: a number, currency: a code}} ({item!r})")


def compact_document(
    partition: str, files: Sequence[tuple[str, Mapping[str, Any]]], retrieved: datetime
) -> dict[str, Any]:
    """SageSaver's compact price file from the offer files read (URL, document), in order.

    Its ``publication_date`` is its oldest offer's (no figure in it is older); each region
    keeps its own offer's. Raises ``ValueError`` when a document is not SageMaker's offer
    file."""
    regions: dict[str, Any] = {}
    sources: list[dict[str, Any]] = []
    left_out: list[str] = []
    for url, offer in files:
        found, dropped = table_from_offer(offer)
        published = offer.get("publicationDate")
        left_out += dropped
        sources.append(
            {
                "url": url,
                "publicationDate": published,
                "version": offer.get("version"),
                "regions": sorted(found),
            }
        )
        for region, entry in found.items():
            currency = entry["currency"]
            regions[region] = {
                "currency": currency,
                "publication_date": published,
                **{
                    component: {
                        t: {"amount": a, "currency": currency}
                        for t, a in sorted(entry[component].items())
                    }
                    for component in COMPONENT_NAMES
                },
            }
    dates = sorted(str(s["publicationDate"]) for s in sources if s["publicationDate"])
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "partition": partition,
        "publication_date": dates[0] if dates else None,
        "retrieved": iso(retrieved),
        "unit": "per instance-hour, on demand",
        "sources": sources,
        "left_out": left_out,
        "regions": dict(sorted(regions.items())),
    }
