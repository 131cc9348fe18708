"""The totals under the scan table: "wasting" is what SageSaver would act on; what it leaves
alone is listed apart; an unknown price is never shown as $0.00."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from sagesaver.core.model import Action, Decision, ScanResult
from sagesaver.render.scan import print_table, summary
from tests.render.test_table_width import NOW, endpoint


def printed(decisions: list[Decision]) -> str:
    out = io.StringIO()
    print_table(ScanResult(NOW, ["us-east-1"], decisions), Console(file=out, width=200))
    return " ".join(out.getvalue().split())


def test_wasting_is_what_would_be_acted_on_and_the_rest_is_apart() -> None:
    unpriced = replace(
        endpoint("no-price"), hourly_cost=None, price_note="not in the bundled table"
    )
    protected = replace(endpoint("guarded"), action=Action.KEEP, protected=True, hourly_cost=0.5)
    scaled_to_zero = replace(endpoint("zero"), action=Action.KEEP, hourly_cost=0.0)
    storage = replace(
        endpoint("parked"), action=Action.KEEP, rule="stopped-storage", hourly_cost=None
    )
    decisions = [endpoint("idle-one"), unpriced, protected, scaled_to_zero, storage]
    text = printed(decisions)
    assert (
        "Wasting: 2 idle resources SageSaver would act on, $0.74/h = $529.92 per 30 days, "
        "plus 1 with an unknown price (unknown: 1 x not in the bundled table)"
    ) in text
    assert (
        "Idle, left alone: 1 protected, $0.50/h; 1 costing nothing; 1 kept (stopped-storage 1)"
    ) in text
    document = summary(decisions, [])
    assert document["wasting"]["resources"] == 2
    assert document["wasting"]["unknown_price"] == 1
    assert document["idle_left_alone"]["protected"] == 1


def test_an_unknown_price_is_never_zero_dollars() -> None:
    unknown = [replace(endpoint(n), hourly_cost=None, price_note="no figures") for n in "ab"]
    text = printed(unknown)
    assert "$0.00" not in text
    assert "Wasting: 2 idle resources SageSaver would act on, an unknown amount" in text
    assert "(unknown: 2 x no figures)" in text
    assert "Wasting: nothing SageSaver would act on" in printed([])
