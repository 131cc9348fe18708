"""A price table for tests that need figures: test figures (an earlier hand-made table), not
AWS prices. The shipped table has none (see scripts/generate_prices.py), and the simulator's
Price List stand-in answers only the few types of its example offer files."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from sagesaver.core.pricing import Pricer, PriceTable, table_from_document


@cache
def example_table() -> PriceTable:
    raw = json.loads((Path(__file__).parent / "test_prices.json").read_text(encoding="utf-8"))
    return table_from_document(raw)


def example_pricer() -> Pricer:
    """An offline pricer over :func:`example_table`."""
    return Pricer(table=example_table())
