"""Issue 28: the last good live prices stay in the cache with the day they were read, and answer,
labelled ``cached`` with that day, when the Price List cannot be reached; past 30 days the note
says they may be stale. Fixed clocks only."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from sagesaver.aws.prices import FileCache, LivePrices, failure_key
from sagesaver.aws.session import Aws
from sagesaver.core.pricing import STALE_AFTER_DAYS, Pricer, PriceTable, Quote, cached_quote

READ = datetime(2026, 9, 1, 6, 0, tzinfo=timezone.utc)
DAY = 24 * 3600.0


def product(amount: str) -> str:
    return json.dumps(
        {
            "product": {"attributes": {"instanceName": "ml.m5.large", "component": "Hosting"}},
            "terms": {
                "OnDemand": {
                    "T": {
                        "priceDimensions": {"D": {"unit": "Hrs", "pricePerUnit": {"CNY": amount}}}
                    }
                }
            },
        }
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Aws()


def test_a_cached_quote_says_when_it_was_read_and_when_it_may_be_stale() -> None:
    fresh = cached_quote(1.5, "CNY", READ, READ + timedelta(days=10))
    assert (fresh.amount, fresh.currency, fresh.source) == (1.5, "CNY", "cached")
    assert fresh.date == "2026-09-01T06:00:00Z"
    assert fresh.note == "the Price List's answer of 2026-09-01, kept in the cache (10 days old)"
    edge = cached_quote(1.5, "CNY", READ, READ + timedelta(days=STALE_AFTER_DAYS))
    assert "stale" not in (edge.note or "")
    old = cached_quote(1.5, "CNY", READ, READ + timedelta(days=45))
    assert old.note == (
        "the Price List's answer of 2026-09-01, kept in the cache (45 days old: it may be stale)"
    )


def seeded(aws: Aws, cache: Path) -> None:
    """A run on READ that got a live answer: 1.061 CNY, cached on disk."""
    stub = Stubber(aws.pricing("cn-northwest-1"))
    stub.add_response("get_products", {"PriceList": [product("1.0610000000")]})
    with stub:
        live = LivePrices(aws, cache, now=READ.timestamp())
        assert live("cn-north-1", "hosting", "ml.m5.large") == (1.061, "CNY")


def test_an_unreachable_price_list_answers_from_an_expired_cache_entry(
    aws: Aws, tmp_path: Path
) -> None:
    cache = tmp_path / "prices.json"
    seeded(aws, cache)
    stub = Stubber(aws.pricing("cn-northwest-1"))
    stub.add_client_error("get_products", "AccessDeniedException", "denied")
    with stub:
        later = READ.timestamp() + 8 * DAY  # past the 7 days: asked again, and it fails
        pricer = Pricer(PriceTable({}), live=LivePrices(aws, cache, now=later))
        quote = pricer.quote("cn-north-1", "hosting", "ml.m5.large")
        stub.assert_no_pending_responses()
    assert quote == Quote(
        1.061,
        "CNY",
        "cached",
        "the Price List's answer of 2026-09-01, kept in the cache (8 days old)",
        "2026-09-01T06:00:00Z",
    )
    # the answer is still in the cache, with the day it was read: it is not overwritten
    kept = FileCache(cache).get("cn-north-1/hosting/ml.m5.large")
    assert kept is not None and kept["at"] == READ.timestamp() and kept["amount"] == 1.061


def test_a_remembered_failure_answers_from_the_cache_and_a_stale_one_says_so(
    aws: Aws, tmp_path: Path
) -> None:
    cache = tmp_path / "prices.json"
    seeded(aws, cache)
    later = READ.timestamp() + 40 * DAY
    FileCache(cache).put(
        failure_key("aws-cn"), {"failed": "did not answer within 5 s", "host": "h", "at": later}
    )
    with Stubber(aws.pricing("cn-northwest-1")):  # not asked: the failure is remembered
        answer: Any = LivePrices(aws, cache, now=later + 60)("cn-north-1", "hosting", "ml.m5.large")
    assert isinstance(answer, Quote)
    assert (answer.amount, answer.source) == (1.061, "cached")
    assert "40 days old: it may be stale" in (answer.note or "")


def test_an_unlisted_answer_or_an_empty_cache_gives_nothing(aws: Aws, tmp_path: Path) -> None:
    cache = tmp_path / "prices.json"
    FileCache(cache).put(
        "cn-north-1/hosting/ml.m5.large", {"amount": None, "currency": None, "at": 0}
    )
    stub = Stubber(aws.pricing("cn-northwest-1"))
    stub.add_client_error("get_products", "AccessDeniedException", "denied")
    with stub:
        live = LivePrices(aws, cache, now=READ.timestamp())
        assert live("cn-north-1", "hosting", "ml.m5.large") is None
        assert live("cn-north-1", "notebook", "ml.t3.medium") is None  # nothing cached
