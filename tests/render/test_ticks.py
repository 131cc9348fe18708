"""Chart axes: round ticks from 0 to at least the peak, and no two that read the same."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.render.report import Day, _Ids, nice_ticks, tick_decimals, time_chart


@given(st.floats(min_value=1e-4, max_value=1e9, allow_nan=False))
def test_money_ticks_are_round_cover_the_peak_and_read_differently(peak: float) -> None:
    ticks = nice_ticks(peak)
    assert ticks[0] == 0 and ticks[-1] >= peak
    assert 2 <= len(ticks) <= 5
    places = tick_decimals(ticks)
    labels = [f"${t:,.{places}f}" for t in ticks]
    assert len(set(labels)) == len(labels), labels
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert round(mantissa, 6) in (1, 2, 5)


@given(st.integers(min_value=0, max_value=10**6))
def test_count_ticks_are_whole_numbers(peak: int) -> None:
    ticks = nice_ticks(peak, integer=True)
    assert all(t == int(t) for t in ticks)
    labels = [f"{t:,.0f}" for t in ticks]
    assert len(set(labels)) == len(labels), labels
    assert ticks[-1] >= peak and len(ticks) <= 5


@given(
    st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=60),
    st.floats(min_value=0.0001, max_value=50.0),
)
def test_the_savings_chart_never_repeats_a_tick(actions: list[int], per_action: float) -> None:
    days, saved = [], 0.0
    for index, count in enumerate(actions):
        saved += count * per_action
        days.append(
            Day(date(2026, 11, 1) + timedelta(days=index), count, count * per_action, saved)
        )
    svg = time_chart(_Ids(), days)
    ticks = re.findall(r'<text class="tick" x="(\d+)"[^>]*>([^<]+)</text>', svg)
    assert len({x for x, _ in ticks}) == 2  # the actions axis and the money axis
    for side in {x for x, _ in ticks}:
        labels = [label for x, label in ticks if x == side]
        assert len(labels) == len(set(labels)) >= 2, labels


def test_examples() -> None:
    assert nice_ticks(1, integer=True) == [0, 1]
    assert nice_ticks(7, integer=True) == [0, 2, 4, 6, 8]
    assert nice_ticks(0.013) == pytest.approx([0, 0.005, 0.01, 0.015])
    assert tick_decimals([0, 0.005, 0.01, 0.015]) == 3
    assert nice_ticks(1234.5) == [0, 500, 1000, 1500]
    assert tick_decimals([0, 500, 1000]) == 0
