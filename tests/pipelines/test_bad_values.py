"""One bad value is one resource's problem: absurd tag dates, a cron that never fires, a damaged
ledger, and a retried Lambda invocation. Nothing here may crash a run half-way."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.grace import SCHEDULED_TAG, parse_tag
from sagesaver.core.rules.schedules import KEEP_RUNNING_TAG, parse_keep_running
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.ledger import SqliteLedger, open_ledger
from tests.conftest import Cli, run_at

EAST = "us-east-1"
OLD = timedelta(days=5)
ABSURD_DEADLINES = [
    "delete@9999-12-31T23:59:59-01:00",
    "delete@0001-01-01T00:00:00+05:00",
    "delete@10000-01-01T00:00:00Z",
    "delete@",
]


@pytest.mark.parametrize("value", ABSURD_DEADLINES)
def test_an_absurd_deadline_is_an_unreadable_tag(value: str) -> None:
    assert parse_tag(value) is None


def test_keep_running_until_the_end_of_time() -> None:
    forever = parse_keep_running("9999-12-31")
    assert forever is not None and forever.year == 9999
    ancient = parse_keep_running("0001-01-01T00:00:00+05:00")
    assert ancient is not None and ancient.year == 1
    assert parse_keep_running("not a date") is None


def test_absurd_deadlines_are_replaced_and_the_run_goes_on(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"endpoints: {{action: delete, grace_hours: 24}}\nnotify: {{sns_topic_arn: '{topic}'}}\n"
    )
    sm = sim.client("sagemaker", EAST)
    for index, value in enumerate(ABSURD_DEADLINES):
        arn = fleet.endpoint(EAST, f"odd-{index}", changed=now - OLD)
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": value}])
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", str(policy),
        "--ledger", str(tmp_path / "ledger.sqlite"), "--apply",
    )  # fmt: skip
    assert code == 0, doc["errors"]
    stages = {s["name"]: (s["stage"], s["applied"]) for s in doc["enforcement"]}
    assert stages == {f"odd-{i}": ("announce", True) for i in range(len(ABSURD_DEADLINES))}
    for index in range(len(ABSURD_DEADLINES)):
        tags = sm.list_tags(ResourceArn=sm.describe_endpoint(EndpointName=f"odd-{index}")[
            "EndpointArn"])["Tags"]  # fmt: skip
        value = next(t["Value"] for t in tags if t["Key"] == SCHEDULED_TAG)
        deadline = parse_tag(value)
        assert deadline is not None and deadline[1] > now


def test_schedules_survive_absurd_keep_running_tags(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "schedules:\n  office:\n    start: cron(0 7 ? * MON-FRI *)\n"
        "    stop: cron(0 21 ? * MON-FRI *)\n    name_contains: dev-\n"
    )
    fleet.notebook(EAST, "dev-forever", tags={KEEP_RUNNING_TAG: "9999-12-31"})
    fleet.notebook(EAST, "dev-ancient", tags={KEEP_RUNNING_TAG: "0001-01-01T00:00:00+05:00"})
    fleet.notebook(EAST, "dev-plain")
    args = ("--policy", str(policy), "--region", EAST)
    with run_at("2026-11-30T21:05:00Z"):
        code, doc = cli.json(
            "schedule", "run", *args, "--apply", "--ledger", str(tmp_path / "ledger.sqlite")
        )
    assert code == 0, doc
    stopped = {a["name"] for a in doc["actions"] if a["applied"]}
    assert stopped == {"dev-ancient", "dev-plain"}
    skipped = {s["name"]: s["reason"] for s in doc["skipped"]}
    assert "kept running until 9999-12-31" in skipped["dev-forever"]
    code, shown = cli.json("schedule", "show", *args, "--at", "2026-11-30T21:05:00Z")
    assert code == 0 and {r["name"] for r in shown["instances"]} >= {"dev-forever"}


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "cron(0 0 31 4 ? *)"])
def test_a_schedule_that_can_never_fire_is_rejected_when_read(
    cli: Cli, sim: Simulator, tmp_path: Path, cron: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"schedules:\n  never:\n    start: '{cron}'\n    name_contains: dev-\n")
    result = cli("schedule", "show", "--policy", str(policy), "--region", EAST)
    assert result.exit_code == 2
    assert "never fires" in result.stderr and "Traceback" not in result.stderr
    assert sim.middleware.counts == {}  # rejected before any AWS call


# --- the ledger's file --------------------------------------------------------------------


def test_a_new_ledger_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "ledger.sqlite"
    SqliteLedger(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


@pytest.mark.parametrize("content", [b"", b"this is not a database, it was damaged" * 100])
def test_an_empty_or_damaged_ledger_is_an_error_never_replaced(
    cli: Cli, sim: Simulator, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(content)
    with pytest.raises(InputError, match=str(path)):
        open_ledger(str(path))
    for command in (("backups",), ("savings",), ("restore", "x")):
        result = cli(*command, "--ledger", str(path))
        assert result.exit_code == 2, (command, result.stdout)
        assert str(path) in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == content  # untouched


def test_read_only_commands_never_create_a_ledger(cli: Cli, sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "absent" / "ledger.sqlite"
    for command in (("backups",), ("savings",), ("report",), ("restore", "gone"), ("run",)):
        result = cli(*command, "--ledger", str(path))
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert "no such ledger file" in result.stderr
    assert not path.exists() and not path.parent.exists()
    SqliteLedger(path)  # once it exists, they read it
    for command in (("backups",), ("savings",), ("report",)):
        result = cli(*command, "--ledger", str(path))
        assert result.exit_code == 0, (command, result.stdout, result.stderr)
    result = cli("restore", "gone", "--ledger", str(path))
    assert result.exit_code == 2 and "no backup" in result.stderr


# --- a retried Lambda invocation ----------------------------------------------------------


def test_a_retried_lambda_invocation_sends_its_digest_once(
    fleet: Fleet, sim: Simulator, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda retries an asynchronous invocation with the same request id after an error."""
    from sagesaver.aws.session import Aws
    from sagesaver.lambda_handlers import idle_endpoints
    from sagesaver.ledger.dynamodb import create_table

    topic = fleet.topic(EAST, "admins")
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    create_table(Aws(), EAST, "ledger")
    for key, value in {
        "SAGESAVER_POLICY": f"notify: {{sns_topic_arn: '{topic}'}}",
        "SAGESAVER_REGIONS": EAST,
        "SAGESAVER_APPLY": "true",
        "SAGESAVER_LEDGER": "dynamodb://ledger",
    }.items():
        monkeypatch.setenv(key, value)
    context: Any = SimpleNamespace(aws_request_id="req-1")
    results = [idle_endpoints({}, context) for _ in range(3)]
    assert all(r["ok"] and r["notified"] for r in results)
    assert len(fleet.published(topic)) == 1
    nothing_new = idle_endpoints({}, SimpleNamespace(aws_request_id="req-2"))  # an hour later
    assert nothing_new["notified"] is False and len(fleet.published(topic)) == 1


def test_the_lambda_names_its_settings(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Lambda error names the environment variable to fix, not a command-line option."""
    from sagesaver.lambda_handlers import RunFailed, idle_endpoints

    monkeypatch.setenv("SAGESAVER_REGIONS", "us-east-9")
    with pytest.raises(RunFailed, match=r"^SAGESAVER_REGIONS us-east-9: "):
        idle_endpoints({}, None)
    monkeypatch.setenv("SAGESAVER_REGIONS", "us-east-1")
    monkeypatch.setenv("SAGESAVER_POLICY", "endpoints: {idle_hours: -1}")
    with pytest.raises(RunFailed, match="SAGESAVER_POLICY"):
        idle_endpoints({}, None)


def test_the_lambda_names_its_setting_for_a_damaged_ledger(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.lambda_handlers import RunFailed, idle_endpoints

    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"")
    monkeypatch.setenv("SAGESAVER_LEDGER", str(path))
    with pytest.raises(RunFailed) as failed:
        idle_endpoints({}, None)
    assert failed.value.summary["ok"] is False
    assert failed.value.summary["input_error"].startswith(
        f"SAGESAVER_LEDGER {path}: the file is empty"
    )
