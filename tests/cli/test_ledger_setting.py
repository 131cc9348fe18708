"""A policy can name its ledger, so a team (and its deployed stack) shares one: every command
given the policy uses it unless --ledger says otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import time_machine

from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.ledger import SqliteLedger
from tests.conftest import Cli
from tests.pipelines.test_enforce import announced_and_due

EAST = "us-east-1"


def test_every_command_uses_the_policy_ledger(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    shared = tmp_path / "team" / "ledger.sqlite"
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints: {action: delete, grace_hours: 24}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
        f"ledger: {shared}\n"
    )
    arn = fleet.endpoint(EAST, "team-poc", changed=now - timedelta(days=5))
    announced_and_due(sim, str(shared), arn)
    with time_machine.travel(now, tick=False):
        code, doc = cli.json("run", "--region", EAST, "--policy", str(policy), "--apply")
    assert code == 0, doc["errors"]
    [step] = doc["enforcement"]
    assert step["outcome"] == "deleted" and step["backup_location"].startswith(str(shared))

    code, listed = cli.json("backups", "--policy", str(policy))
    assert code == 0 and [b["name"] for b in listed["backups"]] == ["team-poc"]
    code, planned = cli.json("restore", "team-poc", "--region", EAST, "--policy", str(policy))
    assert code == 0 and "endpoint team-poc: would create" in planned["steps"]
    with time_machine.travel(now + timedelta(hours=2), tick=False):  # a run sees it gone
        assert cli.json("run", "--region", EAST, "--policy", str(policy), "--apply")[0] == 0
        code, saved = cli.json("savings", "--policy", str(policy))
    assert code == 0 and [r["name"] for r in saved["resources"]] == ["team-poc"]
    assert [e.resource for e in SqliteLedger(shared).entries() if e.action == "delete"] == [
        "team-poc"
    ]


def test_a_bad_ledger_setting_is_named_as_the_policy_key(cli: Cli, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("ledger: s3://bucket/ledger\n")
    result = cli("backups", "--policy", str(policy))
    assert result.exit_code == 2 and "ledger" in result.stderr and "s3://" in result.stderr
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    policy.write_text(f"ledger: {empty}\n")
    result = cli("backups", "--policy", str(policy))
    assert result.exit_code == 2 and result.stderr.count("policy: ledger") == 1
