"""Price List offer files for tests, in the real bulk formats: one region's JSON offer file (as
``currentVersionUrl`` names it) cut from the simulator's example offers, with its figures
scaled so that they differ from what the Price List stand-in answers, and the same file as
the CSV offer AWS also publishes (five metadata lines, the header, one row per price
dimension). EXAMPLE figures, not AWS prices."""

from __future__ import annotations

import copy
import csv
import io
import json
from importlib import resources
from typing import Any

from sagesaver.core.offers import table_from_offer

# The CSV offer's columns: the terms' fields, then the products' attributes under their CSV
# names (as AWS writes them: some spelled out, some left in camelCase).
CSV_HEADER = [
    "SKU",
    "OfferTermCode",
    "RateCode",
    "TermType",
    "PriceDescription",
    "EffectiveDate",
    "StartingRange",
    "EndingRange",
    "Unit",
    "PricePerUnit",
    "Currency",
    "Product Family",
    "serviceCode",
    "Location",
    "Location Type",
    "Instance Name",
    "Component",
    "usageType",
    "operation",
    "Region Code",
    "serviceName",
]
ATTRIBUTES = {
    "Location": "location",
    "Location Type": "locationType",
    "Instance Name": "instanceName",
    "Component": "component",
    "usageType": "usagetype",
    "operation": "operation",
    "Region Code": "regionCode",
    "serviceName": "servicename",
}


def example_offer(partition: str) -> dict[str, Any]:
    """The simulator's example offer file of ``partition`` (every region in one file)."""
    text = resources.files("sagesaver.demo").joinpath(f"offers/{partition}.json")
    document: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return document


def regional_offer(
    partition: str, region: str, scale: float = 1.0, published: str = "2026-10-15T00:00:00Z"
) -> dict[str, Any]:
    """``region``'s offer file, each rate x ``scale``, published at ``published``."""
    offer = example_offer(partition)
    skus = {s for s, p in offer["products"].items() if p["attributes"]["regionCode"] == region}
    terms = copy.deepcopy({s: t for s, t in offer["terms"]["OnDemand"].items() if s in skus})
    for term in (t for by_code in terms.values() for t in by_code.values()):
        for dimension in term["priceDimensions"].values():
            dimension["pricePerUnit"] = {
                c: f"{float(v) * scale:.10f}" for c, v in dimension["pricePerUnit"].items()
            }
    return {
        **{k: v for k, v in offer.items() if k not in ("products", "terms")},
        "publicationDate": published,
        "version": published[:10].replace("-", "") + "000000",
        "products": {s: p for s, p in offer["products"].items() if s in skus},
        "terms": {"OnDemand": terms},
    }


def offer_csv(offer: dict[str, Any]) -> str:
    """``offer`` as the CSV offer file AWS publishes beside the JSON one."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["FormatVersion", offer["formatVersion"]])
    writer.writerow(["Disclaimer", offer["disclaimer"]])
    writer.writerow(["Publication Date", offer["publicationDate"]])
    writer.writerow(["Version", offer["version"]])
    writer.writerow(["OfferCode", offer["offerCode"]])
    writer.writerow(CSV_HEADER)
    for sku, product in sorted(offer["products"].items()):
        attributes = product["attributes"]
        for term in offer["terms"]["OnDemand"].get(sku, {}).values():
            for rate_code, dimension in term["priceDimensions"].items():
                [(currency, amount)] = dimension["pricePerUnit"].items()
                row = {
                    "SKU": sku,
                    "OfferTermCode": term["offerTermCode"],
                    "RateCode": rate_code,
                    "TermType": "OnDemand",
                    "PriceDescription": dimension["description"],
                    "EffectiveDate": term["effectiveDate"][:10],
                    "StartingRange": dimension["beginRange"],
                    "EndingRange": dimension["endRange"],
                    "Unit": dimension["unit"],
                    "PricePerUnit": amount,
                    "Currency": currency,
                    "Product Family": product["productFamily"],
                    "serviceCode": offer["offerCode"],
                    **{column: attributes.get(key, "") for column, key in ATTRIBUTES.items()},
                }
                writer.writerow([row[column] for column in CSV_HEADER])
    return out.getvalue()


def rate(offer: dict[str, Any], region: str, component: str, instance: str) -> float:
    """The hourly rate the offer file gives (the expectation is read, not typed in)."""
    regions, _ = table_from_offer(offer)
    return float(regions[region][component][instance])
