"""The bundled table's generator, on small offer files in the real bulk format."""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.offers import table_from_offer
from sagesaver.core.pricing import Pricer, table_from_document

OFFERS = Path(__file__).resolve().parents[2] / "src" / "sagesaver" / "demo" / "offers"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_prices.py"


def offer(partition: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((OFFERS / f"{partition}.json").read_text())
    return document


def test_hosting_and_notebook_prices_per_region_in_the_quoted_currency() -> None:
    regions, left_out = table_from_offer(offer("aws-cn"))
    assert left_out == []
    assert sorted(regions) == ["cn-north-1", "cn-northwest-1"]
    beijing = regions["cn-north-1"]
    assert beijing["currency"] == "CNY"
    assert set(beijing) == {"currency", "hosting", "notebook"}
    assert "ml.g4dn.xlarge" in beijing["hosting"] and "ml.t3.medium" in beijing["notebook"]
    # the file's Training and per-GB-month products are not instance-hours SageSaver prices
    raw = offer("aws-cn")
    components = {p["attributes"]["component"] for p in raw["products"].values()}
    assert {"Training", "Storage"} <= components
    skus = [
        sku
        for sku, p in raw["products"].items()
        if p["attributes"]["regionCode"] == "cn-north-1"
        and p["attributes"]["component"] == "Hosting"
        and p["attributes"]["instanceName"] == "ml.m5.large"
    ]
    [term] = raw["terms"]["OnDemand"][skus[0]].values()
    [dimension] = term["priceDimensions"].values()
    assert beijing["hosting"]["ml.m5.large"] == float(dimension["pricePerUnit"]["CNY"])


def test_an_instance_with_two_different_rates_is_left_out_with_the_reason() -> None:
    raw = offer("aws")
    sku, product = next(
        (s, p)
        for s, p in raw["products"].items()
        if p["attributes"]["regionCode"] == "us-east-1"
        and p["attributes"]["component"] == "Hosting"
        and p["attributes"]["instanceName"] == "ml.m5.large"
    )
    twin = copy.deepcopy(product)
    twin["sku"] = "TWIN"
    raw["products"]["TWIN"] = twin
    terms = copy.deepcopy(raw["terms"]["OnDemand"][sku])
    for term in terms.values():
        for dimension in term["priceDimensions"].values():
            dimension["pricePerUnit"]["USD"] = "9.9900000000"
    raw["terms"]["OnDemand"]["TWIN"] = terms
    regions, left_out = table_from_offer(raw)
    assert "ml.m5.large" not in regions["us-east-1"]["hosting"]
    assert left_out == ["us-east-1 hosting ml.m5.large: 2 rates (0.115, 9.99)"]


def test_a_file_that_is_not_the_sagemaker_offer_is_refused() -> None:
    with pytest.raises(ValueError, match="AmazonSageMaker"):
        table_from_offer({"offerCode": "AmazonEC2", "products": {}})


def test_the_script_writes_a_table_with_provenance_that_sagesaver_reads(tmp_path: Path) -> None:
    out = tmp_path / "prices.json"
    main = runpy.run_path(str(SCRIPT))["main"]
    code = main(
        [
            "--offer",
            f"aws={OFFERS / 'aws.json'}",
            "--offer",
            f"aws-cn={OFFERS / 'aws-cn.json'}",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    document = json.loads(out.read_text())
    assert document["missing"] == {}
    files = document["partitions"]["aws-cn"]["files"]
    assert files[0]["publicationDate"] == offer("aws-cn")["publicationDate"]
    assert files[0]["regions"] == ["cn-north-1", "cn-northwest-1"]
    pricer = Pricer(table_from_document(document))
    quote = pricer.quote("cn-northwest-1", "notebook", "ml.t3.medium")
    assert quote.source == "bundled" and quote.currency == "CNY" and quote.amount
    assert pricer.quote("eu-west-1", "hosting", "ml.m5.large").currency == "USD"


def test_offline_the_script_records_why_each_partition_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "prices.json"
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["--offline", "--output", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["regions"] == {}
    assert set(document["missing"]) == {"aws", "aws-cn"}
    assert document["retrieved"].startswith("nothing retrieved")


def _regional_files(root: Path, partition: str, code: str) -> None:
    """The bulk layout AWS serves, built from the fixture: a region index and one offer file
    per region (same products and terms, split by regionCode)."""
    whole = offer(partition)
    base = f"/offers/v1.0/{code}/AmazonSageMaker"
    regions: dict[str, Any] = {}
    codes = sorted({p["attributes"]["regionCode"] for p in whole["products"].values()})
    for region in codes:
        skus = {s for s, p in whole["products"].items() if p["attributes"]["regionCode"] == region}
        part = {
            **whole,
            "products": {s: p for s, p in whole["products"].items() if s in skus},
            "terms": {
                "OnDemand": {s: t for s, t in whole["terms"]["OnDemand"].items() if s in skus}
            },
        }
        url = f"{base}/{whole['version']}/{region}/index.json"
        (root / url.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / url.lstrip("/")).write_text(json.dumps(part))
        regions[region] = {"regionCode": region, "currentVersionUrl": url}
    index = root / f"{base.lstrip('/')}/current/region_index.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps({"formatVersion": "v1.0", "regions": regions}))


@pytest.mark.slow  # a child process
def test_the_script_walks_the_region_index_of_each_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both partitions' bulk layouts, served over HTTP on loopback as AWS serves them."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    _regional_files(tmp_path / "www", "aws", "aws")
    _regional_files(tmp_path / "www", "aws-cn", "cn")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        script = runpy.run_path(str(SCRIPT))
        url = f"http://127.0.0.1:{server.server_address[1]}"
        bulk = script["BULK"]
        monkeypatch.setitem(bulk, "aws", url)
        monkeypatch.setitem(bulk, "aws-cn", url)
        out = tmp_path / "prices.json"
        assert script["main"](["--output", str(out)]) == 0
    finally:
        server.shutdown()
    document = json.loads(out.read_text())
    assert sorted(document["regions"]) == [
        "cn-north-1",
        "cn-northwest-1",
        "eu-west-1",
        "us-east-1",
        "us-west-2",
    ]
    files = document["partitions"]["aws-cn"]["files"]
    assert [f["regions"] for f in files] == [["cn-north-1"], ["cn-northwest-1"]]
    assert all(f["url"].startswith(url + "/offers/v1.0/cn/") for f in files)
    assert document["regions"]["cn-north-1"]["currency"] == "CNY"
