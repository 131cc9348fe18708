"""Counts and their nouns as people write them: no ``resource(s)``, no ``3.0``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.formats import number, plural, plural_of


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0"),
        (0.0, "0"),
        (3, "3"),
        (3.0, "3"),
        (2.5, "2.5"),
        (2.96, "3"),  # rounded to one decimal, then whole
        (0.04, "0"),
        (0.05, "0.1"),
        (1200, "1,200"),
        (1234.56, "1,234.6"),
    ],
)
def test_number_is_whole_without_a_decimal_and_one_decimal_otherwise(
    value: float, shown: str
) -> None:
    assert number(value) == shown


@pytest.mark.parametrize(
    ("count", "noun", "text"),
    [
        (0, "endpoint", "0 endpoints"),
        (1, "endpoint", "1 endpoint"),
        (2, "endpoint", "2 endpoints"),
        (1, "scaling policy", "1 scaling policy"),
        (2, "scaling policy", "2 scaling policies"),
        (0, "scaling policy", "0 scaling policies"),
        (3, "day", "3 days"),  # a vowel before the y
        (2, "box", "2 boxes"),
        (2, "match", "2 matches"),
        (2, "running notebook instance", "2 running notebook instances"),
        (1, "idle SageMaker Studio app", "1 idle SageMaker Studio app"),
        (0.0, "resource-hour", "0 resource-hours"),
        (1.0, "resource-hour", "1 resource-hour"),
        (2.5, "resource-hour", "2.5 resource-hours"),
        (1_500, "resource-hour", "1,500 resource-hours"),
        (2, "copy", "2 copies"),
        (2, "person", "2 people"),
    ],
)
def test_plural(count: float, noun: str, text: str) -> None:
    many = "people" if noun == "person" else None
    assert plural(count, noun, many) == text


def test_plural_of_the_last_word() -> None:
    assert plural_of("inference component") == "inference components"
    assert plural_of("HyperPod cluster") == "HyperPod clusters"
    assert plural_of("policy") == "policies"
    assert plural_of("key") == "keys"


@given(st.integers(min_value=0, max_value=10**6))
def test_a_whole_count_never_shows_a_decimal_and_one_alone_is_singular(count: int) -> None:
    text = plural(count, "endpoint")
    assert text == f"{count:,} endpoint" + ("" if count == 1 else "s")
    assert "(s)" not in text and ".0" not in text
