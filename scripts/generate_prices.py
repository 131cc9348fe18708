"""Generate SageSaver's bundled price table (src/sagesaver/data/prices.json) from the public
AWS Price List bulk offer files of SageMaker, for every region of the ``aws`` and ``aws-cn``
partitions.

    python scripts/generate_prices.py                     # fetch both partitions' files
    python scripts/generate_prices.py --offer aws=index.json --offer aws-cn=cn.json
    python scripts/generate_prices.py --offline           # record that nothing was fetched

Run it where there is internet (the bulk files need no AWS credentials). For each partition it
reads the service's region index, then each region's offer file, and keeps the on-demand hourly
rate of every ``Hosting`` and ``Notebook`` instance (:mod:`sagesaver.core.offers`), in the
currency the partition quotes. The table records, per partition, the URL read, the file's
``publicationDate`` and ``version``, and when it was read; a partition that could not be read
is listed under ``missing`` with the reason, and its prices stay out (SageSaver reports them as
unknown, with that reason). Nothing is ever filled in by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sagesaver.core.offers import BULK_CODES as CODES
from sagesaver.core.offers import BULK_HOSTS as BULK
from sagesaver.core.offers import REGION_INDEX, table_from_offer

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "sagesaver" / "data" / "prices.json"


def read_json(location: str, timeout: float = 120.0) -> Any:
    """A JSON document from a URL or a local path."""
    if location.startswith(("https://", "http://")):
        with urllib.request.urlopen(location, timeout=timeout) as response:
            return json.load(response)
    return json.loads(Path(location).read_text(encoding="utf-8"))


def fetch_partition(partition: str) -> list[tuple[str, dict[str, Any]]]:
    """Every regional SageMaker offer file of ``partition``: (URL, document)."""
    base = BULK[partition]
    index = read_json(base + REGION_INDEX.format(code=CODES[partition]))
    files = []
    for entry in sorted(index["regions"].values(), key=lambda e: e["regionCode"]):
        url = base + entry["currentVersionUrl"]
        files.append((url, read_json(url)))
    return files


def build(
    offers: dict[str, list[tuple[str, dict[str, Any]]]], missing: dict[str, str], now: datetime
) -> dict[str, Any]:
    """The table document from the offer files read (by partition) and the reasons others
    were not."""
    regions: dict[str, Any] = {}
    partitions: dict[str, Any] = {}
    left_out: list[str] = []
    for partition, files in sorted(offers.items()):
        read = []
        for url, offer in files:
            found, dropped = table_from_offer(offer)
            regions.update(found)
            left_out += dropped
            read.append(
                {
                    "url": url,
                    "publicationDate": offer.get("publicationDate"),
                    "version": offer.get("version"),
                    "regions": sorted(found),
                }
            )
        partitions[partition] = {"read_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "files": read}
    stamp = now.strftime("%Y-%m-%d")
    return {
        "source": (
            "AWS Price List bulk offer files of AmazonSageMaker (on-demand hourly rates of the "
            "Hosting and Notebook components), read by scripts/generate_prices.py"
        ),
        "retrieved": stamp if partitions else f"nothing retrieved (generated {stamp})",
        "unit": "per instance-hour, in each region's currency",
        "partitions": partitions,
        "missing": dict(sorted(missing.items())),
        "left_out": left_out,
        "regions": dict(sorted(regions.items())),
    }


def main(argv: list[str] | None = None) -> int:
    """Read the offer files, write the table; exit 1 when a partition could not be read."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--offer",
        action="append",
        default=[],
        metavar="PARTITION=FILE",
        help="Use this offer file (path or URL) for the partition instead of fetching.",
    )
    parser.add_argument(
        "--offline", action="store_true", help="Fetch nothing: record every partition missing."
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    now = datetime.now(timezone.utc)
    offers: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    missing: dict[str, str] = {}
    given: dict[str, list[str]] = {}
    for item in args.offer:
        partition, sep, location = item.partition("=")
        if not sep or partition not in BULK:
            parser.error(f"--offer {item!r}: use PARTITION=FILE with PARTITION in {list(BULK)}")
        given.setdefault(partition, []).append(location)
    for partition in BULK:
        try:
            if partition in given:
                offers[partition] = [(loc, read_json(loc)) for loc in given[partition]]
            elif args.offline:
                missing[partition] = (
                    f"the {partition} offer files were not read (generated offline on "
                    f"{now:%Y-%m-%d}); give a price file: sagesaver prices fetch where there "
                    "is internet, then --prices FILE"
                )
            else:
                offers[partition] = fetch_partition(partition)
        except (OSError, ValueError, KeyError) as exc:
            missing[partition] = (
                f"the {partition} offer files could not be read on {now:%Y-%m-%d}: {exc}"
            )
    try:
        document = build(offers, missing, now)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    count = sum(len(r["hosting"]) + len(r["notebook"]) for r in document["regions"].values())
    print(
        f"{args.output}: {count} prices in {len(document['regions'])} regions; "
        f"missing: {', '.join(missing) or 'none'}; left out: {len(document['left_out'])}"
    )
    return 1 if missing and not args.offline else 0


if __name__ == "__main__":
    raise SystemExit(main())
