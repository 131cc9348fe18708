"""The scan table on a narrow terminal: every name whole, reasons wrapped, no ellipsis, and the
columns that say least left out first (and named in the title)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from sagesaver.core.model import Action, Decision, ScanResult
from sagesaver.render.scan import print_table
from tests.factories import resource as make_resource

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
REASON = (
    "no asynchronous request processed or queued (InvocationsProcessed, "
    "ApproximateBacklogSize, HasBacklogWithoutCapacity) for 24.0 h; let it scale to zero"
)


def endpoint(name: str, region: str = "us-east-1", reason: str = REASON) -> Decision:
    resource = make_resource(
        name, NOW, region=region, instance_type="ml.g4dn.xlarge", instance_count=1
    )
    return Decision(resource, Action.NOTIFY, "idle-endpoint", reason, True, 24.0, 0.736)


def rendered(decisions: list[Decision], width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, highlight=False, color_system=None)
    print_table(ScanResult(NOW, ["us-east-1", "eu-west-1"], decisions), console)
    return out.getvalue()


def words(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("width", [80, 100, 160])
def test_names_whole_reasons_wrapped_nothing_cut(width: int) -> None:
    decisions = [
        endpoint("recommendation-engine-production-canary-eu-2026"),
        endpoint("llm", "eu-west-1"),
    ]
    text = rendered(decisions, width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), [x for x in lines if len(x) > width]
    assert "…" not in text and "..." not in text
    for d in decisions:
        assert any(d.resource.name in line for line in lines), d.resource.name  # on one line
    flat = words(text)
    for word in REASON.split():
        assert word in flat, word  # every word of the reason is shown
    assert "notify" in flat and "$0.74" in flat  # the cost always stays


def test_the_columns_that_say_least_go_first_and_the_title_says_so() -> None:
    decisions = [endpoint("recsys-canary"), endpoint("llm", "eu-west-1")]
    wide = rendered(decisions, 200)
    assert "narrow terminal" not in wide and "InService" in wide and "Region" in wide
    narrow = rendered(decisions, 80)
    assert "InService" not in narrow  # Status is the same on every row: it goes first
    title = next(line for line in narrow.splitlines() if line.startswith("Real-time endpoints"))
    assert "narrow terminal: without status" in title
    assert "Decision" in narrow and "Reason" in narrow


def test_too_narrow_for_a_table_each_resource_is_a_block() -> None:
    name = "recommendation-engine-production-canary-eu-west-1-2026"  # 55 characters
    text = rendered([endpoint(name)], 80)
    assert "┃" not in text  # no table
    lines = text.splitlines()
    assert name in lines
    assert any("us-east-1 · notify · $0.74/h · idle 24.0 h" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)
    for word in REASON.split():
        assert word in words(text), word


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(
        st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=40), min_size=1, max_size=6
    ),
    width=st.integers(min_value=80, max_value=140),
)
def test_any_fleet_fits_any_terminal_from_80_columns(names: list[str], width: int) -> None:
    decisions = [replace(endpoint(n), reason=f"{REASON} ({n})") for n in dict.fromkeys(names)]
    text = rendered(decisions, width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    assert "…" not in text
    for d in decisions:  # whole, in a table cell or on its own line (the block layout)
        assert any(f" {d.resource.name} " in f" {line} " for line in lines), d.resource.name


@settings(max_examples=40, deadline=None)
def first_cell(line: str) -> str:
    """The first word of a table row or a block's first line, without the box drawing."""
    words = line.replace("│", " ").replace("┃", " ").split()
    return words[0] if words else ""


@given(
    names=st.lists(
        st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=30), min_size=2, max_size=6
    ),
    width=st.integers(min_value=80, max_value=140),
)
def test_rows_of_several_regions_always_show_each_region(names: list[str], width: int) -> None:
    """Region is never left out when the rows differ in it: each row's region is on its line
    of the table, or beside its name in the block layout."""
    regions = ["us-east-1", "eu-west-1"]
    unique = list(dict.fromkeys(names))
    decisions = [endpoint(n, regions[i % 2]) for i, n in enumerate(unique)]
    if len({d.resource.region for d in decisions}) < 2:
        return
    lines = rendered(decisions, width).splitlines()
    assert not any("without region" in line for line in lines)
    for d in decisions:
        # The row whose first cell is the name (a name such as "1" is also in "1 x ml...").
        row = next(i for i, line in enumerate(lines) if first_cell(line) == d.resource.name)
        shown = lines[row] if "│" in lines[row] else lines[row + 1]
        assert d.resource.region in shown, (d.resource.name, lines)


def test_one_region_may_go_and_the_title_names_it() -> None:
    name = "recommendation-eng-1"  # 20 characters: no room for the region at 80
    text = rendered([endpoint(name), endpoint(name + "b")], 80)
    title = " ".join(text.split("┏", 1)[0].split())
    assert "narrow terminal: without region" in title and "all in us-east-1" in title
    assert "us-east-1" not in text.split("┏", 1)[1].split("Wasting")[0]
