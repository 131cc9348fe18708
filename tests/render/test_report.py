"""The HTML report, checked through the DOM of a real headless Chromium; and the Markdown one."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.aws.prices import LivePrices
from sagesaver.aws.session import Aws
from sagesaver.core.model import Action, Decision, Kind, Resource, ScanResult
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer
from sagesaver.core.savings import off_intervals
from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from sagesaver.ledger import Entry, SqliteLedger
from sagesaver.pipelines.scan import scan
from sagesaver.render.report import (
    headline,
    idle_cost_by,
    render_html,
    render_markdown,
    savings_by_day,
)
from sagesaver.render.scan import summary, to_document
from tests.chromium import Chromium, ChromiumUnavailable, Node, ensure_chromium, parse

EAST, WEST = "us-east-1", "us-west-2"
OLD = timedelta(days=5)
EVIL = "<script>x</script>"
ARTIFACTS = Path(__file__).parents[1] / "artifacts"


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """A headless Chromium; installed with apt-get when missing. Never skipped."""
    try:
        binary, took = ensure_chromium()
    except ChromiumUnavailable as exc:
        pytest.fail(f"headless Chromium is required and could not be installed: {exc}")
    if took:
        print(f"chromium installed in {took:.0f} s")
    yield Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))


def seed(fleet: Fleet, now: datetime) -> None:
    changed = now - OLD
    fleet.endpoint(
        EAST,
        "llm-playground",
        [VariantSpec("AllTraffic", "ml.p3.2xlarge", 1)],
        tags={"owner": "alice"},
        changed=changed,
    )
    fleet.endpoint(
        EAST,
        "gpu-pair",
        [VariantSpec("a", "ml.g4dn.xlarge", 1), VariantSpec("b", "ml.g4dn.xlarge", 1)],
        tags={"owner": "bob"},
        changed=changed,
    )
    fleet.endpoint(EAST, "untagged-small", changed=changed)
    fleet.endpoint(
        WEST,
        "west-gpu",
        [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)],
        tags={"owner": EVIL},
        changed=changed,
    )
    fleet.endpoint(WEST, "west-small", tags={"owner": "alice"}, changed=changed)
    fleet.endpoint(EAST, "busy", tags={"owner": "carol"}, changed=changed)
    fleet.invocations(EAST, "busy", "AllTraffic", [(now - timedelta(hours=1), 42.0)])


def ledger_entries(path: Path, now: datetime) -> list[Entry]:
    """Applied actions on three different days, plus ones that saved nothing."""

    def entry(ago: timedelta, name: str, action: str, cost: float | None, outcome: str) -> Entry:
        return Entry(
            at=now - ago,
            account="123456789012",
            region=EAST,
            kind="notebook" if action in ("stop", "start") else "endpoint",
            resource=name,
            action=action,
            rule="idle",
            reason="idle",
            hourly_cost=cost,
            dry_run=False,
            outcome=outcome,
            tags={"owner": "alice"},
        )

    ledger = SqliteLedger(path)
    for e in [
        entry(timedelta(days=3), "old-endpoint", "delete", 2.0, "deleted (backup b-1)"),
        entry(timedelta(days=2), "nb-1", "stop", 0.5, "done"),
        entry(timedelta(days=1), "nb-1", "start", 0.5, "done"),
        entry(timedelta(days=1), "other", "delete:announce", 1.0, "delete scheduled"),
        entry(timedelta(hours=5), "nb-2", "stop", 1.0, "failed: AccessDenied"),
    ]:
        ledger.record(e)
    return ledger.entries()


@pytest.fixture
def scanned(sim: Simulator, fleet: Fleet, now: datetime) -> ScanResult:
    seed(fleet, now)
    aws = Aws()  # prices from the simulator's Price List stand-in
    result = scan(aws, [EAST, WEST], Policy(), now, Pricer(live=LivePrices(aws, None)))
    assert not result.errors, result.errors
    return result


BACKTEST: dict[str, Any] = {
    "totals": {"endpoints": 3, "would_have_saved_usd": 123.456, "false_positives": 0},
    "idle_hours": 24,
    "endpoints": [
        {"name": "llm-playground", "region": EAST, "saved_usd": 100.0},
        {"name": "gpu-pair", "region": EAST, "saved_usd": 23.456, "note": EVIL},
    ],
}


def values(nodes: list[Node]) -> list[float]:
    return [float(n.attrs["data-value"]) for n in nodes]


def test_report_in_chromium(
    chromium: Chromium, scanned: ScanResult, now: datetime, tmp_path: Path
) -> None:
    entries = ledger_entries(tmp_path / "l.sqlite", now)
    page = tmp_path / "report.html"
    html = render_html(scanned, entries, now, backtest=BACKTEST)
    page.write_text(html, encoding="utf-8")
    dom = parse(chromium.dump_dom(page))

    # Chromium parsed it as a whole document, with nothing it would fetch or run.
    assert dom.find("h1").text() == "SageSaver report"
    assert not dom.find_all("script")
    for node in dom.elements():
        for attr in ("src", "href", "xlink:href", "action"):
            assert not re.match(r"\s*(https?:)?//", node.attrs.get(attr, "")), node
    assert not dom.find_all("link") and not dom.find_all("img") and not dom.find_all("iframe")

    # (1) the headline numbers equal the scan summary's and the ledger's.
    totals = summary(scanned.decisions, scanned.errors)
    assert totals == to_document(scanned)["summary"]
    metric = {n.attrs["data-metric"]: float(n.attrs["data-value"]) for n in dom.find_all("dd")}
    assert metric["idle_hourly_cost"] == pytest.approx(totals["idle_hourly_cost_usd"])
    assert metric["idle_30_day_cost"] == pytest.approx(totals["idle_30_day_cost_usd"])
    assert metric["idle"] == totals["idle"] == 5
    assert metric["wasting"] == totals["wasting"]["resources"]
    assert metric["left_alone"] == sum(
        totals["idle_left_alone"][k] for k in ("protected", "zero_cost", "kept")
    )
    saved = sum(i.saved or 0.0 for i in off_intervals(entries, now))
    assert saved == pytest.approx(2.0 * 72 + 0.5 * 24)
    assert metric["saved"] == pytest.approx(saved, abs=0.005)
    idle_hourly = 3.825 + 2 * 0.736 + 0.115 + 2 * 0.736 + 0.115
    assert totals["idle_hourly_cost_usd"] == pytest.approx(idle_hourly)
    shown = dom.find("dd", data_metric="idle_hourly_cost").text()
    assert shown == f"${totals['idle_hourly_cost_usd']:,.2f}"

    # (2) each idle-cost chart's bars sum to the idle cost per hour, with the right groups.
    charts = {f.attrs["data-chart"]: f for f in dom.find_all("figure")}
    assert set(charts) == {"kind", "region", "owner", "savings-over-time"}
    expected_groups = {
        "kind": {"endpoint": idle_hourly},
        "region": {EAST: 3.825 + 2 * 0.736 + 0.115, WEST: 2 * 0.736 + 0.115},
        "owner": {"alice": 3.825 + 0.115, "bob": 2 * 0.736, "(none)": 0.115, EVIL: 2 * 0.736},
    }
    for name, groups in expected_groups.items():
        bars = charts[name].find_all("rect", **{"class": "bar"})
        got = {b.attrs["data-label"]: float(b.attrs["data-value"]) for b in bars}
        assert got == pytest.approx(groups), name
        assert sum(values(bars)) == pytest.approx(totals["idle_hourly_cost_usd"], abs=1e-3)
        assert values(bars) == sorted(values(bars), reverse=True)  # largest first
        # the fallback table carries the same numbers, to the cent (money reads with 2 places)
        cells = [row.find_all("td") for row in charts[name].find("tbody").find_all("tr")]
        table = {c[0].text(): float(c[1].text().lstrip("$").replace(",", "")) for c in cells}
        assert table.pop("Total") == pytest.approx(totals["idle_hourly_cost_usd"], abs=0.005)
        assert table == pytest.approx(groups, abs=0.005)

    # Every chart: figure + figcaption, svg role=img with a title and a desc.
    svgs = dom.find_all("svg")
    assert len(svgs) == 4
    for figure in charts.values():
        assert figure.find("figcaption").text()
        svg = figure.find("svg")
        assert svg.attrs["role"] == "img"
        assert svg.children and isinstance(svg.children[0], Node)
        assert svg.children[0].tag == "title" and svg.children[0].text()
        assert svg.find("desc").text()
        assert figure.find("details").find("table")

    # (3) the most expensive idle resource comes first, with its cost.
    rows = dom.find("table", id="top-idle").find("tbody").find_all("tr")
    assert len(rows) == 5
    first = rows[0]
    assert first.attrs["data-name"] == "llm-playground"
    assert first.find("th").text() == "llm-playground"
    assert EAST in [c.text() for c in first.find_all("td")]
    assert first.find("td", data_column="hourly").text() == "$3.83"
    assert first.find("td", data_column="30-days").text() == f"${3.825 * 720:,.2f}"
    hourly = [float(r.attrs["data-hourly"]) for r in rows]
    assert hourly == sorted(hourly, reverse=True)
    assert "busy" not in {r.attrs["data-name"] for r in rows}

    # (4) actions per day and cumulative savings.
    over_time = charts["savings-over-time"]
    actions = over_time.find_all("rect", data_series="actions")
    assert len(actions) == len(savings_by_day(entries, now)) >= 4
    assert sum(values(actions)) == 3  # delete, stop, start; not the announce nor the failure
    cumulative = values(over_time.find_all("circle", data_series="cumulative-saved"))
    assert cumulative == sorted(cumulative)
    assert cumulative[-1] == pytest.approx(metric["saved"], abs=0.01)
    assert [a.attrs["data-label"] for a in actions][-1] == now.date().isoformat()

    # (5) the backtest, rendered generically.
    backtest = dom.find("section", id="backtest")
    text = backtest.text()
    assert "would_have_saved_usd" in text and "123.456" in text and "llm-playground" in text

    # The malicious tag value is shown as text, never parsed as markup.
    assert EVIL in charts["owner"].text() and EVIL in backtest.text()
    assert "(none)" in charts["owner"].text()

    # A screenshot, kept as an artifact.
    png = chromium.screenshot(page, ARTIFACTS / "html_report.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 20_000
    dark = chromium.screenshot(page, ARTIFACTS / "html_report_dark.png", dark=True).read_bytes()
    assert dark[:8] == data[:8] and len(dark) > 20_000 and dark != data
    (ARTIFACTS / "html_report.html").write_text(html, encoding="utf-8")


def test_empty_report_in_chromium(chromium: Chromium, tmp_path: Path) -> None:
    now = datetime(2026, 11, 29, 5, 30, tzinfo=timezone.utc)
    page = tmp_path / "empty.html"
    page.write_text(render_html(ScanResult(now, [EAST]), [], now), encoding="utf-8")
    dom = parse(chromium.dump_dom(page))
    metric = {n.attrs["data-metric"]: float(n.attrs["data-value"]) for n in dom.find_all("dd")}
    assert metric == {
        "wasting": 0,
        "left_alone": 0,
        "idle_hourly_cost": 0,
        "idle_30_day_cost": 0,
        "idle": 0,
        "saved": 0,
    }
    assert not dom.find_all("rect")
    assert "No idle resources" in dom.find("section", id="top").text()
    assert all(svg.attrs["role"] == "img" for svg in dom.find_all("svg"))


# --------------------------------------------------------------------------- pure tests

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def decision(
    name: str, cost: float | None, tags: dict[str, str] | None = None, region: str = EAST
) -> Decision:
    resource = Resource(
        kind=Kind.ENDPOINT,
        name=name,
        arn=f"arn:aws:sagemaker:{region}:1:endpoint/{name}",
        region=region,
        account="1",
        status="InService",
        created=NOW - OLD,
        modified=NOW - OLD,
        tags=tags or {},
        instance_type="ml.m5.large",
        instance_count=1,
    )
    return Decision(resource, Action.NOTIFY, "idle-endpoint", "no traffic", True, 24.0, cost)


def synthetic() -> ScanResult:
    return ScanResult(
        NOW,
        [EAST, WEST],
        [
            decision(EVIL, 1.5, {"team": EVIL}),
            decision("a|b*c_d", 0.25, {"team": "web"}, WEST),
            decision("unpriced", None),
        ],
    )


def test_css_has_dark_mode_and_print_rules() -> None:
    html = render_html(synthetic(), [], NOW)
    style = html[html.index("<style>") : html.index("</style>")]
    assert "@media (prefers-color-scheme: dark)" in style
    assert "color-scheme: light dark" in style
    print_css = style[style.index("@media print") :]
    assert "background: none" in print_css
    assert "break-inside: avoid" in print_css and "figure" in print_css and "table" in print_css
    assert "<script" not in html.replace(EVIL.replace("<", "&lt;").replace(">", "&gt;"), "")
    assert "url(" not in html and "@import" not in html


def test_everything_from_the_data_is_escaped() -> None:
    html = render_html(synthetic(), [], NOW, backtest={"totals": {EVIL: 1}}, owner_tag="team")
    assert EVIL not in html
    assert "<script" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    dom = parse(html)
    assert not dom.find_all("script")
    owners = {
        r.attrs["data-label"] for r in dom.find("figure", data_chart="owner").find_all("rect")
    }
    assert owners == {EVIL, "web", "(none)"}


def applied(at: datetime, name: str, cost: float, dry_run: bool = False) -> Entry:
    """An endpoint deleted at ``at`` (or only planned, with ``dry_run``)."""
    outcome = "dry run" if dry_run else "deleted"
    return Entry(at, "1", EAST, "endpoint", name, "delete", "r", "r", cost, dry_run, outcome)


def test_output_is_deterministic() -> None:
    entries = [applied(NOW - timedelta(days=2), "x", 1.0)]
    one = render_html(synthetic(), entries, NOW, backtest=BACKTEST)
    assert one == render_html(synthetic(), list(entries), NOW, backtest=dict(BACKTEST))
    assert render_markdown(synthetic(), entries, NOW) == render_markdown(synthetic(), entries, NOW)


def test_groups_and_savings_by_day() -> None:
    bars = idle_cost_by(synthetic(), "owner", "team")
    # "unpriced" has no known price: its group's amount is unknown (None), never 0.
    assert [(b.label, b.value, b.unknown) for b in bars] == [
        (EVIL, 1.5, 0),
        ("web", 0.25, 0),
        ("(none)", None, 1),
    ]
    entries = [
        applied(NOW - timedelta(hours=36), "x", 2.0),
        applied(NOW - timedelta(hours=1), "y", 1.0, dry_run=True),
    ]
    days = savings_by_day(entries, NOW)
    # 36 h ago is 2026-11-28 00:00: a whole day, then 12 h of today.
    assert [(d.day.isoformat(), d.actions, d.saved, d.cumulative) for d in days] == [
        ("2026-11-28", 1, 48.0, 48.0),
        ("2026-11-29", 0, 24.0, 72.0),
    ]
    h = headline(synthetic(), entries, NOW)
    assert (h["saved"], h["actions_applied"], h["idle_with_unknown_cost"]) == (72.0, 1, 1)


def test_markdown_digest() -> None:
    entries = [applied(NOW - timedelta(days=1), "x", 2.0)]
    md = render_markdown(synthetic(), entries, NOW, backtest=BACKTEST, owner_tag="team")
    assert md.startswith("## SageSaver report (2026-11-29T12:00:00Z)\n")
    assert "- **Idle:** 3 of 3 resources, $1.75/h = $1,260.00 per 30 days (1 with unknown" in md
    assert "- **Saved so far:** $48.00 (1 action applied, 24.0 h off)" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| # | Name |")
    assert table[1].startswith("| 1 | &lt;script&gt;x&lt;/script&gt; | endpoint | us-east-1 |")
    assert "$1.50 | $1,080.00 |" in table[1]
    assert "| 2 | a\\|b\\*c\\_d | endpoint | us-west-2 | web | $0.25 | $180.00 |" in md
    assert "| 3 | unpriced | endpoint | us-east-1 | (none) | unknown | unknown |" in md
    assert "| 2026-11-28 | 1 | $24.00 |" in md
    assert "- would\\_have\\_saved\\_usd: 123.456" in md
    assert EVIL not in md


def test_backtest_documents_of_any_shape() -> None:
    document = {
        "window": {"start": "2026-11-01T00:00:00Z", "hours": 672},
        "policy": {"idle_hours": 24, "include": ["*"]},
        "totals": {"endpoints": 2, "usd_saved": 12.5, "mistakes": 0},
        "endpoints": [
            {"name": EVIL, "flagged_at": [f"t{i}" for i in range(8)], "usd_saved": None},
            {"name": "b", "usd_saved": 12.5},
        ],
        "errors": [],
    }
    dom = parse(render_html(synthetic(), [], NOW, backtest=document))
    section = dom.find("section", id="backtest")
    tables = {t.find("caption").text(): t for t in section.find_all("table")}
    assert set(tables) == {"Backtest totals", "Backtest parameters", "Backtest endpoints"}
    params = {
        r.find_all("td")[0].text(): r.find_all("td")[1].text()
        for r in tables["Backtest parameters"].find("tbody").find_all("tr")
    }
    assert params == {
        "window.start": "2026-11-01T00:00:00Z",
        "window.hours": "672",
        "policy.idle_hours": "24",
        "policy.include": "*",
    }
    rows = tables["Backtest endpoints"].find("tbody").find_all("tr")
    assert [c.text() for c in rows[0].find_all("td")] == [
        EVIL,
        "t0, t1, t2, t3, t4 … (+3 more)",
        "-",
    ]
    assert [c.text() for c in rows[1].find_all("td")] == ["b", "-", "12.5"]
    compared = {
        "totals": {"deleted": {"a": 1, "b": 3, "difference": 2}},
        "deleted_only_by_b": ["us-east-1/x", "us-east-1/y"],
    }
    section = parse(render_html(synthetic(), [], NOW, backtest=compared)).find(
        "section", id="backtest"
    )
    head = [th.text() for th in section.find("thead").find_all("th")]
    assert head == ["total", "a", "b", "difference"]
    assert [c.text() for c in section.find("tbody").find_all("td")] == ["deleted", "1", "3", "2"]
    assert "us-east-1/x, us-east-1/y" in section.text()


def test_a_ledger_in_two_currencies_is_never_added_up() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)

    def stopped(region: str, cost: float) -> Entry:
        return Entry(
            at=now - timedelta(hours=10),
            account="123456789012",
            region=region,
            kind="notebook",
            resource=f"nb-{region}",
            action="stop",
            rule="schedule:office",
            reason="stop at 21:00",
            hourly_cost=cost,
            dry_run=False,
            outcome="done",
        )

    entries = [stopped("cn-north-1", 1.0), stopped("us-east-1", 0.5)]
    china = ScanResult(generated_at=now, regions=["cn-north-1"])
    markdown = render_markdown(china, entries, now)
    assert "- **Saved so far:** ¥10.00 (2 actions applied, 20.0 h off; also $5.00)" in markdown
    html = render_html(china, entries, now)
    assert 'data-metric="saved" data-value="10"' in html
    assert "also $5.00 in another partition" in html


def test_recommendations_in_html_and_markdown() -> None:
    from dataclasses import replace

    from sagesaver.core.model import Recommendation, Variant

    base = synthetic()
    first, second, third = base.decisions
    rightsize = Recommendation("rightsize", f"peaks low {EVIL}", "ml.m5.large", 0.23)
    scale = Recommendation("scale-to-zero", "no backlog", None, 0.736)
    resource = replace(
        second.resource,
        asynchronous=True,
        variants=(
            Variant("v", None, 0, serverless=True, provisioned_concurrency=2, memory_mb=4096),
        ),
    )
    scanned = ScanResult(
        NOW,
        base.regions,
        [
            replace(first, recommendations=(rightsize,)),
            replace(second, resource=resource, recommendations=(scale,)),
            third,
        ],
    )
    dom = parse(render_html(scanned, [], NOW))
    rows = dom.find("table", id="recommendations").find_all("tr")[1:]
    assert [(r.attrs["data-kind"], r.attrs["data-name"]) for r in rows] == [
        ("scale-to-zero", "a|b*c_d"),  # the larger saving first
        ("rightsize", EVIL),
    ]
    assert "serverless, 2 provisioned × 4096 MB (async)" in rows[0].text()
    assert "rightsize to ml.m5.large" in rows[1].text() and "$0.23" in rows[1].text()
    md = render_markdown(scanned, [], NOW)
    assert "### Recommendations (2)" in md
    assert "| a\\|b\\*c\\_d | us-west-2 | scale-to-zero | $0.74 | no backlog |" in md
    assert EVIL not in md
    assert "No recommendations." in render_html(synthetic(), [], NOW)


def left_alone(name: str, cost: float | None, rule: str, protected: bool = False) -> Decision:
    """An idle endpoint SageSaver keeps (protected, costing nothing, or kept by ``rule``)."""
    acting = decision(name, cost)
    return replace(acting, action=Action.KEEP, rule=rule, protected=protected)


def note_of(card: Node) -> str:
    """The note under a totals card."""
    assert card.parent is not None
    (note,) = [n for n in card.parent.find_all("div") if n.attrs.get("class") == "note"]
    return note.text()


def test_headline_splits_wasting_from_idle_left_alone() -> None:
    """The report's totals say what SageSaver would act on and what it leaves alone, as the
    scan's table and JSON do, rather than one count of everything idle."""
    scan = ScanResult(
        NOW,
        [EAST],
        [
            decision("acting-priced", 1.5),
            decision("acting-unpriced", None),
            left_alone("guarded", 2.0, "protected", protected=True),
            left_alone("serverless", 0.0, "serverless"),
            left_alone("outside", 0.5, "scope"),
        ],
    )
    html = render_html(scan, [], NOW)
    dom = parse(html)
    cards = {n.attrs["data-metric"]: n for n in dom.find_all("dd")}
    assert float(cards["wasting"].attrs["data-value"]) == 2
    assert cards["wasting"].text() == "2 resources, $1.50/h"
    wasting_note = note_of(cards["wasting"])
    assert "1 with an unknown price" in wasting_note
    assert float(cards["left_alone"].attrs["data-value"]) == 3
    alone_note = note_of(cards["left_alone"])
    assert alone_note == "1 protected, $2.00/h; 1 costing nothing; 1 kept (scope 1)"
    md = render_markdown(scan, [], NOW)
    assert (
        "- **Wasting:** 2 idle resources SageSaver would act on, $1.50/h = $1,080.00 per "
        "30 days, plus 1 with an unknown price" in md
    )
    assert "- **Idle, left alone:** 1 protected, $2.00/h; 1 costing nothing; 1 kept (scope 1)" in md


def test_no_known_price_is_never_shown_as_zero() -> None:
    scan = ScanResult(NOW, [EAST], [decision("a", None), decision("b", None)])
    dom = parse(render_html(scan, [], NOW))
    cards = {n.attrs["data-metric"]: n for n in dom.find_all("dd")}
    assert cards["wasting"].text() == "2 resources, an unknown amount"
    assert cards["idle_hourly_cost"].text() == "unknown"
    assert cards["idle_30_day_cost"].text() == "unknown"
    assert "$0.00" not in cards["idle_hourly_cost"].text()
    md = render_markdown(scan, [], NOW)
    assert "an unknown amount: no price is known for any of them" in md
    assert "$0.00/h" not in md


def test_the_report_shows_the_hours_each_endpoint_was_parked() -> None:
    """Parked hours per endpoint (issue: the report shows parked hours): a confirmed park runs
    to its unpark, or to now while still parked; an unconfirmed park counts nothing; an
    unknown price is unknown, never 0. In yuan for a China region."""
    from sagesaver.core.records import Outcome

    def park(name: str, action: str, at: datetime, cost: float | None = 2.0, **more: Any) -> Entry:
        fields: dict[str, Any] = {
            "at": at,
            "account": "1",
            "region": "cn-north-1",
            "kind": "endpoint",
            "resource": name,
            "action": action,
            "rule": "schedule:office",
            "reason": "test",
            "hourly_cost": cost,
            "dry_run": False,
            "outcome": "test",
            "status": Outcome.DONE,
        }
        return Entry(**{**fields, **more})

    night = NOW - timedelta(hours=30)
    entries = [
        park("dev-alpha", "park", night),
        park("dev-alpha", "unpark", night + timedelta(hours=9, minutes=40)),
        park("dev-alpha", "park", NOW - timedelta(hours=6)),  # still parked: 6 h so far
        park("dev-beta", "park", night, cost=None),
        park("dev-beta", "unpark", night + timedelta(hours=10)),
        park("dev-lost", "park", night, status=Outcome.UNCONFIRMED),
    ]
    html = render_html(ScanResult(NOW, ["cn-north-1"]), entries, NOW)
    section = html[html.index('<section id="parked">') :]
    section = section[: section.index("</section>")]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section))
    assert re.search(r"dev-alpha cn-north-1 office 2 15\.7 ¥31\.33", text), text
    assert re.search(r"dev-beta cn-north-1 office 1 10\.0 unknown", text), text
    assert "dev-lost" not in text
    markdown = render_markdown(ScanResult(NOW, ["cn-north-1"]), entries, NOW)
    assert "| dev-alpha | cn-north-1 | office | 2 | 15.7 | ¥31.33 |" in markdown
    empty = render_html(ScanResult(NOW, [EAST]), [], NOW)
    assert "No endpoint has been parked by a schedule." in empty
