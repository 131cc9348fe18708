"""`sagesaver backtest` end to end on the moto server."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.conftest import Cli


def test_backtest_and_compare(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    fleet.endpoint("us-east-1", "always-idle", changed=now - timedelta(days=40))
    fleet.endpoint("us-east-1", "daily-job", changed=now - timedelta(days=40))
    fleet.invocations(
        "us-east-1",
        "daily-job",
        "AllTraffic",
        [(now - timedelta(hours=h), 5) for h in range(6, 24 * 5, 24)],
    )
    strict = tmp_path / "strict.yaml"
    strict.write_text("endpoints: {idle_hours: 12, action: delete, grace_hours: 0}\n")
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("endpoints: {idle_hours: 48, action: delete, grace_hours: 0}\n")
    code, doc = cli.json(
        "backtest",
        "--region",
        "us-east-1",
        "--days",
        "5",
        "--policy",
        str(strict),
        "--compare",
        str(lenient),
    )
    assert code == 0, doc
    strict_totals, lenient_totals = doc["policy"]["totals"], doc["compare"]["totals"]
    assert strict_totals["deleted"] == 2 and strict_totals["mistakes"] == 1  # the daily job
    assert lenient_totals["deleted"] == 1 and lenient_totals["mistakes"] == 0
    assert strict_totals["usd_saved"] > lenient_totals["usd_saved"] > 0
    assert doc["difference"]["totals"]["mistakes"]["difference"] == -1
    assert doc["difference"]["mistakes_only_by_a"] == ["us-east-1/daily-job"]
    table = cli("backtest", "--region", "us-east-1", "--days", "5", "--policy", str(strict))
    assert table.exit_code == 0 and "would delete always-idle" in table.stdout


def test_backtest_days_out_of_range(cli: Cli, sim: Simulator) -> None:
    result = cli("backtest", "--region", "us-east-1", "--days", "500")
    assert result.exit_code == 2 and "--days 500" in result.stderr
    assert sum(sim.middleware.counts.values()) == 0


def test_a_failed_component_listing_leaves_out_only_the_endpoints_that_could_host_them(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint("us-east-1", "model-idle", changed=now - timedelta(days=40))
    fleet.endpoint("us-east-1", "host-idle", changed=now - timedelta(days=40), models=False)

    def deny(operation: str, region: str, _: object) -> Fault | None:
        if operation == "ListInferenceComponents":
            return Fault(400, "AccessDeniedException", "not authorized")
        return None

    sim.middleware.fault = deny
    code, doc = cli.json("backtest", "--region", "us-east-1", "--days", "5")
    assert code == 1
    replayed = doc["policy"]
    assert [t["name"] for t in replayed["endpoints"]] == ["model-idle"]  # judged as usual
    assert (replayed["totals"]["endpoints"], replayed["totals"]["flagged"]) == (1, 1)
    assert [(e["operation"], e["resource"], e["code"]) for e in replayed["errors"]] == [
        ("ListInferenceComponents", None, "AccessDeniedException"),
        ("ListInferenceComponents", "host-idle", "AccessDeniedException"),
    ]
    assert "could host inference components" in replayed["errors"][1]["message"]
