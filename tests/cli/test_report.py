"""`sagesaver report` end to end on the moto server (the DOM checks are in test_html_report)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from tests.conftest import Cli


def test_report_html_and_markdown(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic("us-east-1", "admins")
    fleet.endpoint(
        "us-east-1",
        "big-idle",
        [VariantSpec("AllTraffic", "ml.p3.2xlarge")],
        tags={"owner": "ana"},
        changed=now - timedelta(days=9),
    )
    fleet.endpoint(
        "us-east-1",
        "small-idle",
        [VariantSpec("AllTraffic", "ml.m5.large")],
        changed=now - timedelta(days=9),
    )
    policy = tmp_path / "p.yaml"
    policy.write_text("endpoints: {exclude: [big-*]}\n" + f"notify: {{sns_topic_arn: '{topic}'}}\n")
    ledger = str(tmp_path / "ledger.sqlite")
    delete = tmp_path / "delete.yaml"
    delete.write_text(
        "endpoints: {action: delete, grace_hours: 0, exclude: [big-*]}\n"
        + f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    assert (
        cli(
            "run", "--region", "us-east-1", "--policy", str(delete), "--ledger", ledger, "--apply"
        ).exit_code
        == 0
    )

    page = tmp_path / "report.html"
    result = cli(
        "report", "--html", str(page), "--region", "us-east-1", "--policy", str(policy),
        "--ledger", ledger, "--backtest-days", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") or text.lower().startswith("<!doctype html>")
    assert "big-idle" in text and "<script" not in text.lower()
    assert "backtest" in text.lower()
    markdown = cli("report", "--region", "us-east-1", "--ledger", ledger)
    assert markdown.exit_code == 0
    assert "big-idle" in markdown.stdout and "|" in markdown.stdout


def test_report_bad_input(cli: Cli, sim: Simulator, tmp_path: Path) -> None:
    result = cli(
        "report", "--region", "us-east-1", "--backtest-days", "0", "--ledger", str(tmp_path / "l")
    )
    assert result.exit_code == 2 and "--backtest-days 0" in result.stderr
