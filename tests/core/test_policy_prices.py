"""Issue 28: the policy may name a price file (``prices: FILE`` or ``s3://BUCKET/KEY``)."""

from __future__ import annotations

import pytest

from sagesaver.core.errors import PolicyError
from sagesaver.core.policy import parse_policy


@pytest.mark.parametrize(
    "value", ["prices-cn.json", "/opt/sagesaver/offer.csv", "s3://my-prices-cn/sagesaver/cn.json"]
)
def test_the_policy_names_a_price_file(value: str) -> None:
    assert parse_policy(f"prices: {value}\n").prices == value


def test_no_price_file_by_default() -> None:
    assert parse_policy("").prices is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("prices: ''\n", "<policy>:1: prices: String should have at least 1 character"),
        ("prices: 12\n", "<policy>:1: prices: Input should be a valid string"),
        ("prices: s3://bucket\n", "use a file path or s3://BUCKET/KEY"),
        ("prices: s3://Bad_Bucket/key.json\n", "use a file path or s3://BUCKET/KEY"),
        ("prices: https://example.com/p.json\n", "use a file path or s3://BUCKET/KEY"),
    ],
)
def test_a_bad_price_file_setting_names_its_key(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert fragment in str(caught.value)
