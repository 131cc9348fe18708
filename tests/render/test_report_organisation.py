"""The report's "Organisation" section, drawn from the newest run summary in the ledger: the
numbers a reader sees per account (idle cost per hour and per 30 days in each currency, never
added across currencies; unknown prices counted and said, never 0), the acts, the errors and
what was missed, with the run's id and time. No summary, no section."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sagesaver.core.grace import Stage, Step
from sagesaver.core.model import Action, Decision, Kind, Resource, ScanError, ScanResult
from sagesaver.ledger import Outcome, RunSummary, SqliteLedger
from sagesaver.pipelines.enforce import StepResult
from sagesaver.pipelines.organisation import ItemPlan, Missed, summary_document
from sagesaver.render.report import render_html, render_markdown
from sagesaver.render.report_organisation import MD_ACCOUNTS
from tests.chromium import Node, parse

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=timezone.utc)
RUN_AT = NOW - timedelta(hours=3)
A, B, C, D = "111111111111", "222222222222", "333333333333", "444444444444"
EVIL = "<script>x</script>"


def decision(
    account: str, region: str, name: str, cost: float | None, idle: bool = True
) -> Decision:
    resource = Resource(
        kind=Kind.ENDPOINT,
        name=name,
        arn=f"arn:aws:sagemaker:{region}:{account}:endpoint/{name}",
        region=region,
        account=account,
        status="InService",
        created=RUN_AT - timedelta(days=5),
        modified=RUN_AT - timedelta(days=5),
    )
    return Decision(resource, Action.DELETE, "idle-endpoint", "no traffic", idle, 30.0, cost)


def act(d: Decision, applied: bool, status: Outcome) -> StepResult:
    step = Step(d, Stage.ACT, "delete", RUN_AT, "idle")
    return StepResult(step, applied, "deleted" if applied else "failed", status=status)


def document() -> dict[str, object]:
    """A: three idle ($1.50, $0.25 and one without a price), one act made and one failed.
    B: one idle at $4.00, one busy, two read errors. C: one idle priced in CNY. D: nothing
    idle. One error of no account (the digest), one item missed."""
    a1 = decision(A, "us-east-1", "a-big", 1.5)
    a2 = decision(A, "eu-west-1", "a-small", 0.25)
    a3 = decision(A, "us-east-1", "a-unpriced", None)
    plans = [
        ItemPlan(A, "us-east-1", [a1, a3]),
        ItemPlan(A, "eu-west-1", [a2]),
        ItemPlan(
            B,
            "us-east-1",
            [decision(B, "us-east-1", "b-idle", 4.0), decision(B, "us-east-1", "b-busy", 4, False)],
        ),
        ItemPlan(
            B,
            "eu-west-1",
            errors=[
                ScanError("eu-west-1", "ListEndpoints", "throttled", account=B),
                ScanError("eu-west-1", "ListNotebookInstances", "throttled", account=B),
            ],
        ),
        ItemPlan(C, "cn-north-1", [decision(C, "cn-north-1", "c-idle", 10.0)]),
        ItemPlan(D, "us-east-1", [decision(D, "us-east-1", "d-busy", 2.0, False)]),
    ]
    steps = [act(a1, True, Outcome.DONE), act(a2, False, Outcome.FAILED)]
    errors = [ScanError("-", "Publish", "the topic refused the digest")]
    missed = [Missed("plan", "555555555555", "eu-west-1", f"States.Timeout {EVIL}")]
    summary = summary_document(plans, steps, errors, missed)
    summary.update(run_id="run-42", generated_at="2026-12-07T06:30:00Z", applied=True)
    return summary


def record() -> RunSummary:
    return RunSummary("run-42", RUN_AT, document())


def scan() -> ScanResult:
    return ScanResult(NOW, ["us-east-1"], [decision("1", "us-east-1", "local", 0.5)])


def cells(row: Node) -> dict[str, str]:
    return {td.attrs["data-column"]: td.text() for td in row.find_all("td")}


def test_the_html_section_shows_each_account_largest_idle_cost_first() -> None:
    dom = parse(render_html(scan(), [], NOW, organisation=record()))
    section = dom.find("section", id="organisation")
    meta = section.find("p", data_run="run-42").text()
    assert "run-42" in meta and "2026-12-07T06:30:00Z" in meta
    assert "applied, 4 accounts, incomplete: 1 missed, 3 errors" in meta
    rows = section.find("table", id="organisation-accounts").find("tbody").find_all("tr")
    assert [r.attrs["data-account"] for r in rows] == [B, A, C, D]
    by_account = {r.attrs["data-account"]: cells(r) for r in rows}
    assert by_account[B] == {
        "resources": "2",
        "idle": "1",
        "hourly": "$4.00/h",
        "30-days": "$2,880.00",
        "unknown": "0",
        "acted": "0",
        "failed": "0",
        "errors": "2",
    }
    assert by_account[A]["hourly"] == "$1.75/h + 1 unknown"  # never "$1.75" alone, never 0
    assert by_account[A]["30-days"] == "$1,260.00 + 1 unknown"
    assert (by_account[A]["unknown"], by_account[A]["acted"], by_account[A]["failed"]) == (
        "1",
        "1",
        "1",
    )
    assert by_account[C]["hourly"] == "¥10.00/h" and by_account[C]["30-days"] == "¥7,200.00"
    assert by_account[D]["idle"] == "0" and by_account[D]["hourly"] == "-"
    total = cells(section.find("tfoot").find("tr"))
    assert total["hourly"] == "¥10.00/h + $5.75/h + 1 unknown"  # two currencies, never added
    assert total["30-days"] == "¥7,200.00 + $4,140.00 + 1 unknown"
    assert (total["idle"], total["acted"], total["failed"], total["errors"]) == ("5", "1", "1", "3")
    assert "1 error not of one account" in section.text()
    [missed] = section.find("table", id="organisation-missed").find("tbody").find_all("tr")
    assert [td.text() for td in missed.find_all("td")] == [
        "plan",
        "555555555555",
        "eu-west-1",
        f"States.Timeout {EVIL}",
    ]
    assert not dom.find_all("script")


def test_an_account_whose_prices_are_all_unknown_shows_unknown() -> None:
    plans = [ItemPlan(A, "us-east-1", [decision(A, "us-east-1", "x", None)])]
    summary = summary_document(plans, [], [], [])
    dom = parse(render_html(scan(), [], NOW, organisation=RunSummary("r", RUN_AT, summary)))
    row = cells(dom.find("tr", data_account=A))
    assert (row["hourly"], row["30-days"], row["unknown"]) == ("unknown", "unknown", "1")
    assert "complete" in dom.find("section", id="organisation").find("p").text()


def test_the_markdown_section_says_the_same() -> None:
    text = render_markdown(scan(), [], NOW, organisation=record())
    section = text[text.index("### Organisation") :]
    assert section.startswith("### Organisation (run run-42, 2026-12-07T06:30:00Z)")
    assert "- **Idle:** 5 of 7 resources, ¥10.00/h + $5.75/h + 1 unknown = " in section
    assert "¥7,200.00 + $4,140.00 + 1 unknown per 30 days (1 without a price)" in section
    assert "- **Acts carried out:** 1 (1 failed)" in section
    rows = [line for line in section.splitlines() if re.match(r"\| \d{12} \|", line)]
    assert rows == [
        f"| {B} | 1 of 2 | $4.00/h | $2,880.00 | 0 | 0 | 0 | 2 |",
        f"| {A} | 3 of 3 | $1.75/h + 1 unknown | $1,260.00 + 1 unknown | 1 | 1 | 1 | 0 |",
        f"| {C} | 1 of 1 | ¥10.00/h | ¥7,200.00 | 0 | 0 | 0 | 0 |",
        f"| {D} | 0 of 1 | - | - | 0 | 0 | 0 | 0 |",
    ]
    assert "#### Missed (1)" in section
    assert (
        "| plan | 555555555555 | eu-west-1 | States.Timeout &lt;script&gt;x&lt;/script&gt; |"
        in (section)
    )


def test_the_markdown_lists_the_largest_accounts_and_says_how_many_more() -> None:
    plans = [
        ItemPlan(f"{n:012d}", "us-east-1", [decision(f"{n:012d}", "us-east-1", "e", float(n))])
        for n in range(1, MD_ACCOUNTS + 6)
    ]
    summary = summary_document(plans, [], [], [])
    text = render_markdown(scan(), [], NOW, organisation=RunSummary("r", RUN_AT, summary))
    rows = [line for line in text.splitlines() if re.match(r"\| \d{12} \|", line)]
    assert len(rows) == MD_ACCOUNTS
    assert rows[0].startswith(f"| {MD_ACCOUNTS + 5:012d} |")  # the most expensive first
    assert "… and 5 more accounts (the HTML report lists them all)" in text


def test_no_summary_no_section() -> None:
    assert 'id="organisation"' not in render_html(scan(), [], NOW)
    assert "Organisation" not in render_markdown(scan(), [], NOW)


def test_the_newest_summary_of_the_ledger_is_the_one_drawn(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    older = summary_document(
        [ItemPlan(D, "us-east-1", [decision(D, "us-east-1", "o", 9.0)])], [], [], []
    )
    ledger.record_run_summary("run-41", RUN_AT - timedelta(days=1), older)
    ledger.record_run_summary("run-42", RUN_AT, document())
    [newest] = ledger.run_summaries(limit=1)
    html = render_html(scan(), [], NOW, organisation=newest)
    rows = parse(html).find("table", id="organisation-accounts").find("tbody").find_all("tr")
    assert [r.attrs["data-account"] for r in rows] == [B, A, C, D]
    assert "run-41" not in html
