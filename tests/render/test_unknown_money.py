"""Issue 28: "unknown" is never a number. Each symptom a reviewer reproduced on a China fleet
with the Price List unreachable (every price unknown), then a property over every output."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from sagesaver.core.backtest import replay
from sagesaver.core.digest import build_digest
from sagesaver.core.model import Action, Decision, Kind, Recommendation, Resource, ScanResult
from sagesaver.core.policy import EndpointPolicy
from sagesaver.core.records import Entry
from sagesaver.core.savings import off_intervals
from sagesaver.render.commands import render_backtest, render_savings
from sagesaver.render.report import render_html, render_markdown
from sagesaver.render.scan import print_table, to_csv, to_document, to_json
from tests.factories import resource as make_resource

NOW = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
BEIJING = "cn-north-1"
NOTE = "the Price List API did not answer (cn-northwest-1): EndpointConnectionError"


def resource(name: str, kind: Kind = Kind.ENDPOINT, region: str = BEIJING) -> Resource:
    return make_resource(name, NOW, kind, region, instance_type="ml.m5.large", instance_count=1)


def idle_endpoint(name: str, cost: float | None = None, region: str = BEIJING) -> Decision:
    return Decision(
        resource(name, region=region),
        Action.NOTIFY,
        "idle-endpoint",
        "no Invocations for 26.0 h",
        True,
        26.0,
        cost,
        price_source="unknown" if cost is None else "live",
        price_note=NOTE if cost is None else None,
    )


def unguarded_notebook(name: str, cost: float | None = None) -> Decision:
    return Decision(
        resource(name, Kind.NOTEBOOK),
        Action.KEEP,
        "no-auto-stop",
        "InService with no lifecycle configuration: no auto-stop guard",
        False,
        None,
        cost,
        price_source="unknown" if cost is None else "live",
        price_note=NOTE if cost is None else None,
    )


def idle_notebook(name: str) -> Decision:
    return Decision(
        resource(name, Kind.NOTEBOOK),
        Action.NOTIFY,
        "idle-notebook",
        "no kernel activity for 30.0 h",
        True,
        30.0,
        None,
        price_note=NOTE,
    )


def china_fleet() -> ScanResult:
    """Four idle endpoints and three unguarded notebooks in Beijing, no price known."""
    decisions = [idle_endpoint(f"ep-{i}") for i in range(4)]
    decisions += [unguarded_notebook(f"nb-{i}") for i in range(3)]
    return ScanResult(NOW, [BEIJING], decisions)


def table(result: ScanResult) -> str:
    out = io.StringIO()
    print_table(result, Console(file=out, width=200, highlight=False, color_system=None))
    return " ".join(out.getvalue().split())


def test_digest_of_unknown_prices_says_unknown_not_zero() -> None:
    [message] = build_digest([idle_endpoint(f"ep-{i}") for i in range(4)], NOW)
    assert "0.00" not in message.subject
    assert message.subject == "SageSaver: 4 idle endpoints, cost unknown (no price known)"
    assert "0.00" not in message.body
    assert (
        "Total: unknown: no price is known for any of the 4 (4 x the Price List API did not "
        "answer (cn-northwest-1): EndpointConnectionError)."
    ) in message.body


def test_digest_of_some_unknown_prices_totals_the_known_and_counts_the_rest() -> None:
    decisions = [idle_endpoint("a", 2.5), idle_endpoint("b"), idle_endpoint("c")]
    [message] = build_digest(decisions, NOW)
    assert message.subject == "SageSaver: 3 idle endpoints, CNY 2.50/h wasted + 2 unknown"
    assert (
        "Total: ¥2.50 per hour, ¥1,800.00 per 30 days, plus 2 with an unknown price" in message.body
    )


def test_scan_table_never_prices_unguarded_notebooks_at_zero() -> None:
    text = table(china_fleet())
    assert "0.00" not in text
    assert (
        "No auto-stop guard: 3 running notebook instances, cost unknown (3 x the Price List "
        "API did not answer (cn-northwest-1): EndpointConnectionError)"
    ) in text
    assert "Wasting: 4 idle resources SageSaver would act on, an unknown amount" in text


def test_html_and_markdown_reports_never_show_an_unknown_group_as_zero() -> None:
    result = china_fleet()
    result.decisions.append(idle_notebook("idle-nb"))
    html = render_html(result, [], NOW)
    assert "notebook: ¥0.00/h" not in html
    assert "notebook: unknown" in html
    assert "¥0.00" not in html
    assert 'data-metric="saved" data-value="0">nothing yet</dd>' in html
    markdown = render_markdown(result, [], NOW)
    assert "¥0.00" not in markdown and "$" not in markdown
    assert "- **Idle:** 5 of 8 resources, an unknown amount" in markdown


def test_json_summary_is_null_and_named_by_meaning_where_no_price_is_known() -> None:
    summary = to_document(china_fleet())["summary"]
    assert summary["currency"] == "CNY"
    assert summary["idle_hourly_cost"] is None
    assert summary["idle_30_day_cost"] is None
    assert summary["idle_hourly_cost_usd"] is None
    assert summary["idle_30_day_cost_usd"] is None
    assert summary["actionable_hourly_cost"] is None
    assert summary["actionable_hourly_cost_usd"] is None
    assert summary["notebooks_without_auto_stop_hourly_cost"] is None
    assert summary["notebooks_without_auto_stop_hourly_cost_usd"] is None
    assert summary["costs"]["CNY"]["idle_hourly"] is None
    assert summary["costs"]["CNY"]["idle_unknown_price"] == 4
    assert summary["costs"]["CNY"]["notebooks_without_auto_stop_hourly"] is None


def test_json_summary_in_yuan_has_no_usd_figures() -> None:
    result = ScanResult(NOW, [BEIJING], [idle_endpoint("a", 2.5), idle_endpoint("b")])
    summary = to_document(result)["summary"]
    assert (summary["currency"], summary["idle_hourly_cost"]) == ("CNY", 2.5)
    assert summary["idle_with_unknown_cost"] == 1
    assert summary["idle_hourly_cost_usd"] is None  # not 0.0: the amount is in yuan


def test_savings_of_a_fresh_ledger_names_no_dollar_amount() -> None:
    out = io.StringIO()
    render_savings([], None, NOW, "team", "table", Console(file=out, width=160))
    text = out.getvalue()
    assert "$" not in text and "0.00" not in text
    assert "Saved nothing yet: the ledger has no stop, delete or release carried out" in text


def test_backtest_in_china_labels_yuan_as_yuan() -> None:
    result = replay(
        {"ep": [0.0] * 72},
        {"ep": NOW - timedelta(days=30)},
        {"ep": 10.0},
        {},
        EndpointPolicy(action="delete", idle_hours=24, grace_hours=0),
        NOW,
        region=BEIJING,
    )
    document = json.loads(json.dumps(result.to_document()))
    [endpoint] = document["endpoints"]
    # Flagged and deleted at the end of hour 24: 48 hours left, at 10 yuan an hour.
    assert (endpoint["saved"], endpoint["currency"], endpoint["usd_saved"]) == (480.0, "CNY", None)
    totals = document["totals"]
    assert (totals["saved"], totals["currency"], totals["usd_saved"]) == (480.0, "CNY", None)
    assert totals["saved_unknown_count"] == 0


def test_backtest_with_no_known_price_saves_an_unknown_amount() -> None:
    result = replay(
        {"ep": [0.0] * 72},
        {"ep": NOW - timedelta(days=30)},
        {"ep": None},
        {},
        EndpointPolicy(action="delete", idle_hours=24, grace_hours=0),
        NOW,
        region="us-east-1",
    )
    totals = result.to_document()["totals"]
    assert (totals["saved"], totals["usd_saved"], totals["saved_unknown_count"]) == (None, None, 1)
    assert result.to_document()["endpoints"][0]["saved"] is None


# --------------------------------------------------------------------------- every output

# Every known price in these fleets is at least 0.01 an hour, and every ledger interval lasts
# whole hours: any amount rendered as 0.00 can only stand for an unknown one (or for nothing at
# all, which the fleets are built to avoid: each currency has an idle resource and an action).
ZERO_MONEY = re.compile(r"(?:\$|¥|USD |CNY )-?0\.00(?!\d)")
REGIONS = {"USD": "us-east-1", "CNY": BEIJING}
ROLES = ("notify", "delete", "protected", "kept", "unguarded")
prices = st.one_of(st.none(), st.integers(1, 500_000).map(lambda cents: cents / 100))


@st.composite
def fleets(draw: st.DrawFn) -> list[Decision]:
    """Idle and running resources, in USD and CNY, each price known (>= 0.01) or unknown;
    every currency drawn has at least one idle resource SageSaver would act on."""
    currencies = draw(st.sets(st.sampled_from(sorted(REGIONS)), min_size=1))
    decisions = []
    for currency in sorted(currencies):
        decisions.append(_decision(f"first-{currency}", REGIONS[currency], "notify", draw(prices)))
    extra = st.tuples(st.sampled_from(sorted(currencies)), st.sampled_from(ROLES), prices)
    for index, (currency, role, cost) in enumerate(draw(st.lists(extra, max_size=8))):
        owner = draw(st.sampled_from(["alice", "bob", None]))
        decisions.append(_decision(f"r{index}", REGIONS[currency], role, cost, owner))
    return decisions


def _decision(
    name: str, region: str, role: str, cost: float | None, owner: str | None = "alice"
) -> Decision:
    kind = Kind.NOTEBOOK if role in ("unguarded", "kept") else Kind.ENDPOINT
    base = replace(resource(name, kind, region), tags={"owner": owner} if owner else {})
    # Some unknown prices say why, the others do not.
    note = NOTE if cost is None and name.endswith("0") else None
    price = {"price_source": "unknown" if cost is None else "live", "price_note": note}
    if role == "unguarded":
        return Decision(base, Action.KEEP, "no-auto-stop", "no guard", False, None, cost, **price)
    action = {"notify": Action.NOTIFY, "delete": Action.DELETE}.get(role, Action.KEEP)
    rule = {"kept": "stopped-storage", "protected": "protected"}.get(role, "idle-endpoint")
    advice = (Recommendation("scale-to-zero", "no backlog", None, cost),)
    return Decision(
        base,
        action,
        rule,
        "idle",
        True,
        30.0,
        cost,
        protected=role == "protected",
        recommendations=advice if role == "notify" else (),
        **price,
    )


@st.composite
def ledgers(draw: st.DrawFn, currencies: frozenset[str]) -> list[Entry]:
    """Stops and deletes carried out whole hours ago, at least one per currency, each price
    known (>= 0.01) or unknown."""
    entries = []
    drawn = draw(
        st.lists(st.tuples(st.integers(1, 200), prices, st.sampled_from(["stop", "delete"])))
    )
    firsts = [(draw(st.integers(1, 200)), draw(prices), "stop") for _ in currencies]
    for index, (currency, (ago, cost, action)) in enumerate(
        [*zip(sorted(currencies), firsts, strict=True)]
        + [(draw(st.sampled_from(sorted(currencies))), d) for d in drawn]
    ):
        entries.append(
            Entry(
                at=NOW - timedelta(hours=ago),
                account="123456789012",
                region=REGIONS[currency],
                kind="notebook" if action == "stop" else "endpoint",
                resource=f"res-{index}",
                action=action,
                rule="idle",
                reason="idle",
                hourly_cost=cost,
                dry_run=False,
                outcome="done",
                tags={"team": "ml"} if index % 2 else {},
            )
        )
    return entries


def assert_no_zero_money(text: str, what: str) -> None:
    found = ZERO_MONEY.findall(text)
    assert not found, f"{what}: {found} in\n{text}"


def _known_total(decisions: list[Decision], currency: str) -> float | None:
    """The oracle: the known sum in ``currency``; None when some are there and none is known."""
    chosen = [d for d in decisions if d.cost_currency == currency]
    known = [d.hourly_cost for d in chosen if d.hourly_cost is not None]
    return None if chosen and not known else sum(known)


def check_scan_json(decisions: list[Decision], result: ScanResult) -> None:
    document = json.loads(to_json(result))
    by_name = {d.resource.name: d for d in decisions}
    for item in document["resources"]:
        d = by_name[item["name"]]
        assert item["hourly_cost"] == d.hourly_cost and item["currency"] == d.cost_currency
        usd = d.hourly_cost if d.cost_currency == "USD" else None
        assert item["hourly_cost_usd"] == usd
        for advice in item.get("recommendations", []):
            assert (advice["hourly_saving"], advice["currency"]) == (d.hourly_cost, d.cost_currency)
            assert advice["hourly_saving_usd"] == usd
    summary = document["summary"]
    groups = {
        "idle": [d for d in decisions if d.idle],
        "actionable": [d for d in decisions if d.action is not Action.KEEP],
        "notebooks_without_auto_stop": [d for d in decisions if d.rule == "no-auto-stop"],
    }
    currencies = {d.cost_currency for d in decisions}
    single = currencies.pop() if len(currencies) == 1 else None
    assert summary["currency"] == single
    for currency, costs in summary["costs"].items():
        for group, members in groups.items():
            expected = _known_total(members, currency)
            got = costs[f"{group}_hourly"]
            assert (got is None) == (expected is None), (currency, group, costs)
            if expected is not None:
                assert got == pytest.approx(expected, abs=1e-3)
    for group, members in groups.items():
        field = f"{group}_hourly_cost"
        expected = None if single is None else _known_total(members, single)
        assert (summary[field] is None) == (expected is None), field
        if expected is not None:
            assert summary[field] == pytest.approx(expected, abs=1e-3)
        assert summary[f"{field}_usd"] == (summary[field] if single == "USD" else None)


def check_csv(decisions: list[Decision], result: ScanResult) -> None:
    rows = {row["name"]: row for row in csv.DictReader(io.StringIO(to_csv(result)))}
    for d in decisions:
        row = rows[d.resource.name]
        assert row["hourly_cost"] == ("" if d.hourly_cost is None else str(d.hourly_cost))
        assert row["currency"] == d.cost_currency


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_output_shows_an_unknown_amount_as_zero(data: st.DataObject) -> None:
    decisions = data.draw(fleets())
    regions = sorted({d.resource.region for d in decisions})
    result = ScanResult(NOW, regions, decisions)
    currencies = frozenset(d.cost_currency for d in decisions)

    # The scan: table (with its totals lines), JSON, CSV.
    assert_no_zero_money(table(result), "table")
    check_scan_json(decisions, result)
    check_csv(decisions, result)

    # The digest, and each owner's.
    for message in build_digest(decisions, NOW):
        assert_no_zero_money(message.subject + "\n" + message.body, "digest")
    for owner in ("alice", "bob"):
        mine = [d for d in decisions if d.resource.tags.get("owner") == owner]
        for message in build_digest(mine, NOW, f"SageSaver for {owner}"):
            assert_no_zero_money(message.subject + "\n" + message.body, f"digest of {owner}")

    # The reports: one partition's ledger, in the report's currency.
    report_currency = "USD" if len(currencies) > 1 else next(iter(currencies))
    entries = data.draw(ledgers(frozenset({report_currency})))
    html = render_html(result, entries, NOW, owner_tag="owner")
    assert_no_zero_money(re.sub(r'<text class="tick"[^>]*>[^<]*</text>', "", html), "HTML")
    assert not re.search(r'<g data-label="[^"]*" data-value="0"', html), "a bar at 0"
    for metric in ("idle_hourly_cost", "idle_30_day_cost", "saved"):
        assert f'data-metric="{metric}" data-value="0"' not in html, metric
    assert_no_zero_money(render_markdown(result, entries, NOW, owner_tag="owner"), "Markdown")

    # savings, of a ledger in any mix of currencies.
    mixed = data.draw(ledgers(frozenset(REGIONS)))
    intervals = off_intervals(mixed, NOW)
    out = io.StringIO()
    render_savings(intervals, None, NOW, "team", "table", Console(file=out, width=160))
    assert_no_zero_money(out.getvalue(), "savings")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        render_savings(intervals, None, NOW, "team", "json")
    savings = json.loads(printed.getvalue())
    amounts = [*savings["saved"].values(), *(r["saved"] for r in savings["resources"])]
    amounts += [
        v for by in savings["by"].values() for t in by.values() for v in t["saved"].values()
    ]
    assert all(a is None or a >= 0.01 for a in amounts), amounts
    assert savings["saved_usd"] is None  # two currencies: no one USD figure

    # backtest, of one partition's endpoints (JSON and table).
    costs = data.draw(st.lists(prices, min_size=1, max_size=4))
    check_backtest(costs, data.draw(st.sampled_from(sorted(REGIONS))))


def check_backtest(costs: list[float | None], currency: str) -> None:
    names = [f"ep-{i}" for i in range(len(costs))]
    result = replay(
        dict.fromkeys(names, [0.0] * 72),
        dict.fromkeys(names, NOW - timedelta(days=30)),
        dict(zip(names, costs, strict=True)),
        {},
        EndpointPolicy(action="delete", idle_hours=24, grace_hours=0, max_actions_per_run=100),
        NOW,
        region=REGIONS[currency],
    )
    document = json.loads(json.dumps(result.to_document()))
    for endpoint, cost in zip(document["endpoints"], costs, strict=True):
        assert endpoint["currency"] == currency
        assert endpoint["saved"] == (None if cost is None else round(cost * 48, 2))
        assert endpoint["usd_saved"] == (endpoint["saved"] if currency == "USD" else None)
    totals = document["totals"]
    known = [c * 48 for c in costs if c is not None]
    assert totals["saved"] == (pytest.approx(sum(known), abs=0.01) if known else None)
    assert totals["saved_unknown_count"] == len(costs) - len(known)
    assert totals["usd_saved"] == (totals["saved"] if currency == "USD" else None)
    out = io.StringIO()
    render_backtest({"policy": result}, {"policy": "policy"}, 3, 1, "table", Console(file=out))
    assert_no_zero_money(out.getvalue(), "backtest table")
