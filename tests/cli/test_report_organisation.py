"""``sagesaver run --accounts --apply`` keeps its summary in the ledger, and ``sagesaver
report`` draws the "Organisation" section from it (Markdown and HTML): the run's id, each
account's idle resources and their cost, the acts carried out. Before any such run: none."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from sagesaver.ledger import SqliteLedger
from tests.chromium import parse
from tests.conftest import Cli

EAST = "us-east-1"
BIG, SMALL = "111111111111", "222222222222"
OLD = timedelta(days=5)

pytestmark = pytest.mark.slow


def test_report_draws_the_newest_organisation_run(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    Fleet(sim, BIG).endpoint(
        EAST, "gpu-idle", [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)], changed=now - OLD
    )
    Fleet(sim, SMALL).endpoint(EAST, "small-idle", changed=now - OLD)
    topic = Fleet(sim).topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints: {action: delete, grace_hours: 0, max_actions_per_run: 10}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    accounts = tmp_path / "accounts.txt"
    accounts.write_text(f"{SMALL}\n{BIG}\n")
    ledger = tmp_path / "ledger.sqlite"
    SqliteLedger(ledger)
    base = ["--region", EAST, "--policy", str(policy), "--ledger", str(ledger)]

    before = cli("report", *base)
    assert before.exit_code == 0, before.stderr
    assert "Organisation" not in before.stdout

    run = cli("run", *base, "--accounts", str(accounts), "--role-name", "Member", "--apply")
    assert run.exit_code == 0, run.stderr
    [kept] = SqliteLedger(ledger).run_summaries()
    rows = {r["account"]: r for r in kept.document["rows"]}
    big, small = rows[BIG]["idle_hourly_cost"]["USD"], rows[SMALL]["idle_hourly_cost"]["USD"]
    assert big > small > 0 and rows[BIG]["acted"] == rows[SMALL]["acted"] == 1

    markdown = cli("report", *base)
    assert markdown.exit_code == 0, markdown.stderr
    section = markdown.stdout[markdown.stdout.index("### Organisation") :]
    assert section.startswith(f"### Organisation (run {kept.run_id}, ")
    assert "- **Acts carried out:** 2" in section
    table = [
        line for line in section.splitlines() if line.startswith("| 1") or line.startswith("| 2")
    ]
    assert table == [
        f"| {BIG} | 1 of 1 | ${big:,.2f}/h | ${big * 720:,.2f} | 0 | 1 | 0 | 0 |",
        f"| {SMALL} | 1 of 1 | ${small:,.2f}/h | ${small * 720:,.2f} | 0 | 1 | 0 | 0 |",
    ]

    page = tmp_path / "report.html"
    assert cli("report", *base, "--html", str(page)).exit_code == 0
    section_node = parse(page.read_text()).find("section", id="organisation")
    assert kept.run_id in section_node.find("p").text()
    rows_html = section_node.find("tbody").find_all("tr")
    assert [r.attrs["data-account"] for r in rows_html] == [BIG, SMALL]
    total = section_node.find("tfoot").find("td", data_column="hourly").text()
    assert total == f"${big + small:,.2f}/h"
