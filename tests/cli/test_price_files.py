"""Issue 28: real prices on a host with no internet. A China fleet on the simulator, its Price
List unreachable: ``--prices`` (or ``SAGESAVER_PRICES``, or the policy's ``prices``) names a
price file (an AWS offer file as downloaded, CSV or JSON, or ``sagesaver prices fetch``'s),
whose CNY prices are labelled ``file`` with the file's publication date; a missing or bad
file is exit 2 before any AWS call; the Lambda reads the file from S3; the last good live
prices answer, labelled ``cached``, when the Price List cannot be reached."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from tests.conftest import Cli, run_at
from tests.offer_files import offer_csv, rate, regional_offer

BEIJING, NINGXIA = "cn-north-1", "cn-northwest-1"
PUBLISHED = "2026-10-15T00:00:00Z"
# A fixed clock: the fleet's ages and the cache's days never depend on today.
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
OLD = timedelta(days=3)


@pytest.fixture
def china(sim: Simulator, fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle endpoints in Beijing (2 x ml.g4dn.xlarge) and Ningxia, a notebook in Beijing;
    the Price List unreachable, as from a host without internet."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", BEIJING)
    fleet.endpoint(
        BEIJING, "gpu-idle", [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)], changed=NOW - OLD
    )
    fleet.endpoint(NINGXIA, "cpu-idle", changed=NOW - OLD)
    fleet.notebook(BEIJING, "dev-notebook")
    sim.behaviours.price_list.mode = "unreachable"


def beijing_offer(scale: float = 2.0) -> dict[str, Any]:
    """Beijing's CNY offer file, its figures x ``scale`` (not what the stand-in answers)."""
    return regional_offer("aws-cn", BEIJING, scale=scale, published=PUBLISHED)


def scan(cli: Cli, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    with run_at(NOW.isoformat()):
        result = cli("scan", "--all-regions", "--output", "json", *args)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    return document, {r["name"]: r for r in document["resources"]}


def test_an_aws_offer_file_prices_a_china_fleet_without_a_price_list(
    cli: Cli, sim: Simulator, china: None, tmp_path: Path
) -> None:
    offer = beijing_offer()
    path = tmp_path / "cn-north-1.csv"  # the CSV offer file, as downloaded
    path.write_text(offer_csv(offer))
    sim.middleware.counts.clear()
    document, found = scan(cli, "--prices", str(path))
    gpu = found["gpu-idle"]
    assert (gpu["currency"], gpu["price_source"]) == ("CNY", "file")
    assert gpu["hourly_cost"] == pytest.approx(
        2 * rate(offer, BEIJING, "hosting", "ml.g4dn.xlarge")
    )
    assert gpu["price_date"] == PUBLISHED
    assert gpu["price_note"] == f"from {path} (published 2026-10-15)"
    assert gpu["hourly_cost_usd"] is None
    notebook = found["dev-notebook"]
    assert notebook["price_source"] == "file"
    assert notebook["hourly_cost"] == pytest.approx(
        rate(offer, BEIJING, "notebook", "ml.t3.medium")
    )
    # Ningxia is not in the file, and the Price List cannot be reached: unknown, and why
    ningxia = found["cpu-idle"]
    assert (ningxia["hourly_cost"], ningxia["price_source"]) == (None, "unknown")
    assert f"{path} has no price for cn-northwest-1" in ningxia["price_note"]
    assert document["summary"]["costs"]["CNY"]["idle_hourly"] == pytest.approx(gpu["hourly_cost"])
    assert "file" in document["summary"]["price_sources"]
    assert sim.middleware.counts["GetProducts"] <= 1  # asked for Ningxia only, once


def test_the_option_wins_over_the_environment_which_wins_over_the_policy(
    cli: Cli, sim: Simulator, china: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {}
    for name, scale in (("option", 3.0), ("env", 4.0), ("policy", 5.0)):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(beijing_offer(scale)))
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"prices: {files['policy']}\n")
    unit = rate(beijing_offer(1.0), BEIJING, "notebook", "ml.t3.medium")

    def notebook_price(*args: str) -> float:
        _, found = scan(cli, "--policy", str(policy), *args)
        note = found["dev-notebook"]["price_note"]
        assert found["dev-notebook"]["price_source"] == "file", note
        return float(found["dev-notebook"]["hourly_cost"]) / unit

    assert notebook_price() == pytest.approx(5.0)
    monkeypatch.setenv("SAGESAVER_PRICES", str(files["env"]))
    assert notebook_price() == pytest.approx(4.0)
    assert notebook_price("--prices", str(files["option"])) == pytest.approx(3.0)


def test_a_missing_or_bad_price_file_is_exit_2_before_any_aws_call(
    cli: Cli, sim: Simulator, china: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.middleware.counts.clear()
    missing = cli("scan", "--all-regions", "--prices", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert f"--prices {tmp_path / 'nope.json'}: price file not found" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"offerCode": "AmazonEC2", "products": {}}')
    monkeypatch.setenv("SAGESAVER_PRICES", str(bad))
    refused = cli("run", "--all-regions")
    assert refused.exit_code == 2
    assert f"SAGESAVER_PRICES {bad}: not the AmazonSageMaker offer file" in refused.stderr
    monkeypatch.delenv("SAGESAVER_PRICES")
    policy = tmp_path / "policy.yaml"
    policy.write_text("prices: empty.csv\n")
    (tmp_path / "empty.csv").write_text("")
    monkeypatch.chdir(tmp_path)
    empty = cli("report", "--all-regions", "--policy", str(policy))
    assert empty.exit_code == 2
    assert "policy: prices empty.csv: the price file is empty" in empty.stderr
    assert dict(sim.middleware.counts) == {}  # nothing was asked of AWS


def test_the_last_good_live_prices_answer_when_the_price_list_cannot_be_reached(
    cli: Cli, sim: Simulator, china: None
) -> None:
    sim.behaviours.price_list.mode = "answer"
    _, live = scan(cli)
    assert live["gpu-idle"]["price_source"] == "live"
    sim.behaviours.price_list.mode = "unreachable"
    with run_at((NOW + timedelta(days=40, hours=12)).isoformat()):  # past the cache's 7 days
        result = cli("scan", "--region", BEIJING, "--output", "json")
    assert result.exit_code == 0, result.stderr
    gpu = {r["name"]: r for r in json.loads(result.stdout)["resources"]}["gpu-idle"]
    assert (gpu["price_source"], gpu["hourly_cost"]) == ("cached", live["gpu-idle"]["hourly_cost"])
    assert gpu["price_date"][:10] == "2026-12-01"  # when the Price List last answered
    assert "40 days old: it may be stale" in gpu["price_note"]
    assert "--prices FILE" in result.stderr  # the one line says how to give prices


def test_the_lambda_reads_the_price_file_the_policy_names_in_s3(
    sim: Simulator, china: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.lambda_handlers import idle_endpoints

    s3 = sim.client("s3", BEIJING)
    s3.create_bucket(Bucket="prices-cn", CreateBucketConfiguration={"LocationConstraint": BEIJING})
    offer = beijing_offer()
    s3.put_object(Bucket="prices-cn", Key="sagesaver/cn-north-1.csv", Body=offer_csv(offer))
    monkeypatch.setenv("SAGESAVER_POLICY", "prices: s3://prices-cn/sagesaver/cn-north-1.csv")
    monkeypatch.setenv("SAGESAVER_REGIONS", BEIJING)
    monkeypatch.setenv("AWS_REGION", BEIJING)
    with run_at(NOW.isoformat()):
        result = idle_endpoints({"apply": False}, None)
    [gpu] = [e for e in result["idle_endpoints"] if e["name"] == "gpu-idle"]
    assert (gpu["currency"], gpu["price_source"], gpu["price_date"]) == ("CNY", "file", PUBLISHED)
    assert gpu["hourly_cost"] == pytest.approx(
        2 * rate(offer, BEIJING, "hosting", "ml.g4dn.xlarge")
    )
    # a key that is not there: the run's input error names it, and nothing is scanned
    monkeypatch.setenv("SAGESAVER_POLICY", "prices: s3://prices-cn/sagesaver/missing.csv")
    sim.middleware.counts.clear()
    with pytest.raises(Exception, match=r"s3://prices-cn/sagesaver/missing\.csv") as failed:
        idle_endpoints({"apply": False}, None)
    assert "NoSuchKey" in str(failed.value)
    assert "ListEndpoints" not in sim.middleware.counts and "Search" not in sim.middleware.counts


@pytest.mark.parametrize(
    "command",
    [
        ["scan"],
        ["run"],
        ["studio"],
        ["report"],
        ["backtest"],
        ["schedule", "run"],
    ],
)
def test_every_command_that_shows_money_takes_a_price_file(
    cli: Cli, command: list[str], tmp_path: Path
) -> None:
    """Each one reads the file first: a missing one is exit 2, naming it."""
    result = cli(*command, "--region", BEIJING, "--prices", str(tmp_path / "gone.csv"))
    assert result.exit_code == 2, result.stderr
    assert f"--prices {tmp_path / 'gone.csv'}: price file not found" in result.stderr
