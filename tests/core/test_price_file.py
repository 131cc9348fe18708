"""Issue 28: prices from a file, for hosts without internet. A price file is SageSaver's
compact file (``sagesaver prices fetch``) or an AWS offer file as downloaded (JSON or CSV);
its prices win over the Price List (the user chose them) and say where they came from and
when the file was published."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.offers import table_from_offer, table_from_offer_csv
from sagesaver.core.price_file import (
    FORMAT,
    FORMAT_VERSION,
    compact_document,
    parse_price_file,
)
from sagesaver.core.pricing import Pricer, PriceTable, Quote, combine
from tests.offer_files import offer_csv, rate, regional_offer

BEIJING, NINGXIA = "cn-north-1", "cn-northwest-1"
PUBLISHED = "2026-10-15T00:00:00Z"
FETCHED = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def beijing() -> dict[str, Any]:
    """Beijing's CNY offer file, figures doubled (so they are not the stand-in's)."""
    return regional_offer("aws-cn", BEIJING, scale=2.0, published=PUBLISHED)


def test_the_csv_offer_gives_the_same_prices_as_the_json_one(beijing: dict[str, Any]) -> None:
    from_json, _ = table_from_offer(beijing)
    from_csv, left_out, meta = table_from_offer_csv(offer_csv(beijing))
    assert from_csv == from_json
    assert left_out == []
    assert from_csv[BEIJING]["currency"] == "CNY"
    assert meta["publicationDate"] == PUBLISHED
    assert meta["offerCode"] == "AmazonSageMaker"


def test_csv_headers_are_matched_whatever_their_spelling(beijing: dict[str, Any]) -> None:
    """AWS spells some CSV columns out (``Region Code``) and leaves others in camelCase."""
    text = offer_csv(beijing)
    head, rest = text.split("\n", 6)[:6], text.split("\n", 6)[6]
    head[5] = (
        head[5]
        .replace('"Instance Name"', '"instanceName"')
        .replace('"Region Code"', '"regionCode"')
    )
    regions, _, _ = table_from_offer_csv("\n".join(head) + "\n" + rest)
    assert regions == table_from_offer(beijing)[0]


@pytest.mark.parametrize("form", ["json", "csv"])
def test_an_aws_offer_file_as_downloaded_is_a_price_file(
    beijing: dict[str, Any], form: str
) -> None:
    data = json.dumps(beijing) if form == "json" else offer_csv(beijing)
    prices = parse_price_file(data.encode(), f"cn-north-1.{form}")
    expected = rate(beijing, BEIJING, "hosting", "ml.g4dn.xlarge")
    assert prices.price(BEIJING, "hosting", "ml.g4dn.xlarge") == (pytest.approx(expected), "CNY")
    assert prices.price(BEIJING, "notebook", "ml.t3.medium") is not None
    assert prices.price(NINGXIA, "hosting", "ml.m5.large") is None  # not in this file
    assert prices.published(BEIJING) == PUBLISHED
    assert prices.name == f"cn-north-1.{form}"


def test_the_compact_file_keeps_each_price_with_its_currency_and_the_files_read(
    beijing: dict[str, Any],
) -> None:
    ningxia = regional_offer("aws-cn", NINGXIA, published="2026-10-01T00:00:00Z")
    urls = ["https://h/offers/cn-north-1/index.json", "https://h/offers/cn-northwest-1/index.json"]
    document = compact_document("aws-cn", list(zip(urls, [beijing, ningxia], strict=True)), FETCHED)
    assert document["format"] == FORMAT and document["format_version"] == FORMAT_VERSION
    assert document["partition"] == "aws-cn"
    assert document["retrieved"] == "2026-11-20T08:00:00Z"
    # the file's date is its oldest offer's: no figure in it is older than that
    assert document["publication_date"] == "2026-10-01T00:00:00Z"
    assert [s["url"] for s in document["sources"]] == urls
    assert document["sources"][0]["publicationDate"] == PUBLISHED
    entry = document["regions"][BEIJING]["hosting"]["ml.g4dn.xlarge"]
    assert entry == {
        "amount": pytest.approx(rate(beijing, BEIJING, "hosting", "ml.g4dn.xlarge")),
        "currency": "CNY",
    }
    assert document["regions"][BEIJING]["publication_date"] == PUBLISHED
    # and it reads back: each region with its own offer's date
    prices = parse_price_file(json.dumps(document).encode(), "prices-cn.json")
    assert prices.price(BEIJING, "hosting", "ml.g4dn.xlarge") == (entry["amount"], "CNY")
    assert prices.published(NINGXIA) == "2026-10-01T00:00:00Z"
    assert prices.published(BEIJING) == PUBLISHED


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"hello, world\n", "neither a SageSaver price file nor an AWS offer file"),
        (b"[1, 2]", "neither a SageSaver price file nor an AWS offer file"),
        (b'{"regions": ', "not valid JSON"),
        (b'{"offerCode": "AmazonEC2", "products": {}}', "not the AmazonSageMaker offer file"),
        (
            b'{"format": "sagesaver-prices", "format_version": 99, "regions": {}}',
            "format_version 99",
        ),
        (
            b'{"format": "sagesaver-prices", "format_version": 1, "regions": '
            b'{"cn-north-1": {"hosting": {"ml.m5.large": {"amount": "x", "currency": "CNY"}}}}}',
            "cn-north-1 hosting ml.m5.large",
        ),
        (
            b'{"format": "sagesaver-prices", "format_version": 1, "regions": {}}',
            "no prices",
        ),
        (b'"FormatVersion","v1.0"\n"OfferCode","AmazonSageMaker"\n', "no header"),
    ],
)
def test_a_bad_price_file_is_refused_naming_the_file_and_the_problem(
    data: bytes, problem: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_price_file(data, "prices.json")
    assert str(caught.value).startswith("prices.json: ")
    assert problem in str(caught.value)


TABLE = PriceTable({BEIJING: {"currency": "CNY", "hosting": {"ml.m5.large": 0.5}, "notebook": {}}})


def test_a_file_price_wins_over_the_price_list_and_says_when_it_was_published(
    beijing: dict[str, Any],
) -> None:
    asked: list[tuple[str, str, str]] = []

    def live(region: str, component: Any, instance: str) -> tuple[float, str] | None:
        asked.append((region, component, instance))
        return 9.99, "CNY"

    prices = parse_price_file(json.dumps(beijing).encode(), "cn.json")
    pricer = Pricer(TABLE, live=live, file=prices)
    quote = pricer.quote(BEIJING, "hosting", "ml.m5.large")
    assert quote.amount == pytest.approx(rate(beijing, BEIJING, "hosting", "ml.m5.large"))
    assert (quote.currency, quote.source, quote.date) == ("CNY", "file", PUBLISHED)
    assert quote.note == "from cn.json (published 2026-10-15)"
    assert asked == []  # the user chose the file: the Price List is not asked for it
    assert pricer.mode == "file"
    assert pricer.free(BEIJING).source == "file"
    # what the file does not have, the Price List, then the table, still answer
    assert pricer.quote(NINGXIA, "hosting", "ml.m5.large").source == "live"
    assert asked == [(NINGXIA, "hosting", "ml.m5.large")]


def test_a_price_neither_the_file_nor_the_table_has_says_so(beijing: dict[str, Any]) -> None:
    prices = parse_price_file(offer_csv(beijing).encode(), "cn.csv")
    quote = Pricer(TABLE, file=prices, live_note="--offline-prices").quote(
        NINGXIA, "hosting", "ml.m5.large"
    )
    assert (quote.amount, quote.source) == (None, "unknown")
    assert "cn.csv has no price for cn-northwest-1" in (quote.note or "")
    assert "--offline-prices" in (quote.note or "")


def test_a_total_is_labelled_by_its_least_fresh_part() -> None:
    live, table = Quote(1.0, "CNY", "live"), Quote(2.0, "CNY", "bundled")
    in_file = Quote(1.0, "CNY", "file", "from f (published 2026-10-15)", PUBLISHED)
    cached = Quote(1.0, "CNY", "cached", "cached", "2026-09-01T00:00:00Z")
    assert combine([(in_file, 2)], "CNY", "file") == Quote(
        2.0, "CNY", "file", in_file.note, PUBLISHED
    )
    assert combine([(in_file, 1), (live, 1)], "CNY", "file").source == "file"
    assert combine([(cached, 1), (live, 1)], "CNY", "live").source == "cached"
    assert combine([(cached, 1), (in_file, 1)], "CNY", "file").date == "2026-09-01T00:00:00Z"
    assert combine([(cached, 1), (table, 1)], "CNY", "live").source == "bundled"
    assert combine([(live, 1), (table, 1)], "CNY", "live").source == "bundled"
