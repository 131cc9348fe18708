"""`sagesaver report` end to end on the moto server (the DOM checks are in test_html_report)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from sagesaver.ledger.sqlite import SqliteLedger
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


def _empty_ledger(folder: Path) -> str:
    path = folder / "ledger.sqlite"
    SqliteLedger(path)  # creates it: report only reads a ledger
    return str(path)


def test_a_second_report_describes_no_endpoint_configuration(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, config_cache_dir: Path
) -> None:
    for name in ("idle-a", "idle-b"):
        fleet.endpoint("us-east-1", name, changed=now - timedelta(days=9))
    ledger = _empty_ledger(config_cache_dir)
    sim.middleware.counts.clear()
    first = cli("report", "--region", "us-east-1", "--ledger", ledger)
    assert first.exit_code == 0, first.stderr
    assert sim.middleware.counts["DescribeEndpointConfig"] == 2  # nothing remembered yet
    assert (config_cache_dir / "endpoint-configs.json.gz").exists()
    sim.middleware.counts.clear()
    second = cli("report", "--region", "us-east-1", "--ledger", ledger)
    assert second.exit_code == 0, second.stderr
    assert "DescribeEndpointConfig" not in sim.middleware.counts
    assert sim.middleware.counts["ListEndpointConfigs"] == 1  # the check for ones made again
    assert "idle-a" in second.stdout and "idle-b" in second.stdout


def test_a_report_uses_what_a_scan_remembered(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    fleet.endpoint("us-east-1", "idle-one", changed=now - timedelta(days=9))
    assert cli("scan", "--region", "us-east-1").exit_code == 0
    sim.middleware.counts.clear()
    report = cli("report", "--region", "us-east-1", "--ledger", _empty_ledger(tmp_path))
    assert report.exit_code == 0, report.stderr
    assert "DescribeEndpointConfig" not in sim.middleware.counts
    assert "idle-one" in report.stdout
