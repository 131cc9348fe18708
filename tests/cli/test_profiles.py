"""``--profile`` and ``-v``: the AWS CLI's habits. A named profile supplies credentials, region
and endpoint exactly as boto3 reads them; a profile, credentials or region that cannot work is
bad input (exit 2, one line, no AWS call); ``-v`` logs each AWS call to stderr only."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sagesaver.demo.simulator import Fleet, Simulator
from tests.cli.test_bad_input import assert_rejected
from tests.conftest import Cli

WEST = "eu-west-1"


@pytest.fixture
def profiles(sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """AWS config files with one profile, ``team``, pointing at the simulator in eu-west-1;
    nothing about AWS left in the environment."""
    for key in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile team]\nregion = {WEST}\nendpoint_url = {sim.url}\n")
    credentials.write_text("[team]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to fall back on
    return config


def test_a_profile_gives_credentials_region_and_endpoint(
    cli: Cli, fleet: Fleet, profiles: Path, now: datetime
) -> None:
    fleet.endpoint(WEST, "idle-in-west", changed=now - timedelta(days=3))
    result = cli("scan", "--profile", "team", "--output", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["regions"] == [WEST]
    assert [r["name"] for r in document["resources"]] == ["idle-in-west"]


def test_verbose_logs_each_call_to_stderr_and_keeps_stdout_clean(
    cli: Cli, fleet: Fleet, profiles: Path, now: datetime
) -> None:
    fleet.endpoint(WEST, "idle-in-west", changed=now - timedelta(days=3))
    result = cli("scan", "--profile", "team", "-v", "--output", "json")
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)  # nothing but the document
    calls = [line for line in result.stderr.splitlines() if line.startswith("aws: ")]
    assert any(f"aws: {WEST} sagemaker.Search -> 200" in line for line in calls), calls
    assert any(f"aws: {WEST} cloudwatch.ListMetrics -> 200" in line for line in calls), calls
    quiet = cli("scan", "--profile", "team", "--output", "json")
    assert "aws: " not in quiet.stderr


def test_an_unknown_profile_is_named_with_the_known_ones(
    cli: Cli, sim: Simulator, profiles: Path
) -> None:
    sim.middleware.counts.clear()
    result = cli("run", "--profile", "nobody", "--apply")
    assert_rejected(sim, result, ["--profile nobody", "no such profile", "known: team"])
    assert sum(sim.middleware.counts.values()) == 0


def test_an_unknown_aws_profile_variable_is_named(
    cli: Cli, sim: Simulator, profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    result = cli("scan")
    assert_rejected(sim, result, ["AWS_PROFILE=nobody", "no such profile"])


def test_no_credentials_at_all_is_bad_input(
    cli: Cli, sim: Simulator, profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", WEST)
    sim.middleware.counts.clear()
    for command in (["scan"], ["schedule", "show"], ["studio"], ["deploy", "delete"]):
        result = cli(*command)
        assert_rejected(sim, result, ["no AWS credentials found", "--profile"])
        assert "Traceback" not in result.output
    assert sum(sim.middleware.counts.values()) == 0


@pytest.mark.parametrize(
    ("region", "fragment"),
    [("us-east1", "not an AWS region name"), ("mars-north-1", "not an AWS region")],
)
def test_a_bad_default_region_is_bad_input(
    cli: Cli,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    region: str,
    fragment: str,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    sim.middleware.counts.clear()
    result = cli("run", "--apply")
    assert_rejected(sim, result, ["AWS_DEFAULT_REGION", region, fragment])
    assert sum(sim.middleware.counts.values()) == 0


def test_a_dynamodb_ledger_is_reached_through_the_profile(
    cli: Cli, sim: Simulator, profiles: Path
) -> None:
    import boto3

    from sagesaver.aws.session import Aws
    from sagesaver.ledger.dynamodb import create_table

    create_table(Aws(boto3.Session(profile_name="team")), WEST, "team-ledger")
    result = cli("backups", "--ledger", f"dynamodb://{WEST}/team-ledger", "--profile", "team", "-v")
    assert result.exit_code == 0, result.stderr
    assert "No backups." in result.stdout
    assert f"aws: {WEST} dynamodb." in result.stderr
