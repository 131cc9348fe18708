from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from sagesaver.aws.prices import LivePrices, parse_on_demand_usd
from sagesaver.aws.session import Aws
from sagesaver.core.pricing import Pricer, PriceTable, bundled_table


def test_bundled_table_has_source_date_and_common_types() -> None:
    table = bundled_table()
    assert table.source and table.retrieved
    for region in ("us-east-1", "us-east-2", "us-west-2"):
        assert table.hourly(region, "hosting", "ml.m5.large") is not None
        assert table.hourly(region, "notebook", "ml.t3.medium") is not None
    assert table.hourly("us-east-1", "hosting", "ml.g4dn.xlarge") == pytest.approx(0.736)


def test_unknown_type_or_region_is_none_not_an_error() -> None:
    pricer = Pricer()
    assert pricer.hourly("us-east-1", "hosting", "ml.imaginary.huge") is None
    assert pricer.hourly("xx-nowhere-1", "hosting", "ml.m5.large") is None


def product(usd: str, unit: str = "Hrs") -> str:
    return json.dumps(
        {
            "product": {"attributes": {"instanceName": "ml.m5.large"}},
            "terms": {
                "OnDemand": {
                    "T1": {"priceDimensions": {"D1": {"unit": unit, "pricePerUnit": {"USD": usd}}}}
                }
            },
        }
    )


def test_parse_price_list() -> None:
    assert parse_on_demand_usd([product("0.1340000000")]) == pytest.approx(0.134)
    assert parse_on_demand_usd([product("0.0000000000")]) is None
    assert parse_on_demand_usd([product("5", unit="GB-Mo")]) is None
    assert parse_on_demand_usd([]) is None


def stubbed(aws: Aws) -> Stubber:
    return Stubber(aws.pricing())


def expected_filters(region: str, instance_type: str, component: str) -> dict[str, Any]:
    return {
        "ServiceCode": "AmazonSageMaker",
        "Filters": [
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
            {"Type": "TERM_MATCH", "Field": "component", "Value": component},
        ],
        "MaxResults": 10,
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Aws()


def test_live_prices_override_the_table_and_are_cached(aws: Aws, tmp_path: Path) -> None:
    cache = tmp_path / "prices.json"
    stub = stubbed(aws)
    stub.add_response(
        "get_products",
        {"PriceList": [product("0.2")], "FormatVersion": "aws_v1"},
        expected_filters("eu-west-1", "ml.m5.large", "Hosting"),
    )
    with stub:
        pricer = Pricer(live=LivePrices(aws, cache, now=1000.0))
        assert pricer.hourly("eu-west-1", "hosting", "ml.m5.large") == 0.2
        assert pricer.hourly("eu-west-1", "hosting", "ml.m5.large") == 0.2  # memoised
        stub.assert_no_pending_responses()
    # A new process within the TTL answers from the file without calling AWS.
    with stubbed(aws):
        again = LivePrices(aws, cache, now=2000.0)
        assert again("eu-west-1", "hosting", "ml.m5.large") == 0.2


def test_failed_live_lookup_falls_back_to_the_table(aws: Aws, tmp_path: Path) -> None:
    stub = stubbed(aws)
    stub.add_client_error("get_products", "AccessDeniedException", "no pricing:GetProducts")
    with stub:
        pricer = Pricer(live=LivePrices(aws, tmp_path / "p.json"))
        assert pricer.hourly("us-east-1", "notebook", "ml.t3.medium") == 0.05


def test_custom_table_and_aliases() -> None:
    table = PriceTable({"a-1": {"hosting": {"ml.x": 1.0}}}, aliases={"b-2": "a-1"})
    assert Pricer(table).hourly("b-2", "hosting", "ml.x") == 1.0
