"""The command line's contract: ``--version``, ``-o`` meaning one thing everywhere (a format a
command cannot produce is refused, not ignored), errors on stderr only, and ``validate``."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from sagesaver import __version__
from sagesaver.demo.simulator import Fault, Fleet, Simulator
from sagesaver.ledger import SqliteLedger
from tests.cli.test_bad_input import assert_rejected
from tests.conftest import Cli

EAST = "us-east-1"


def test_version_on_the_top_command(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sagesaver {__version__}"


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["studio", "--region", EAST], "studio"),
        (["savings"], "savings"),
        (["schedule", "run", "--region", EAST], "schedule run"),
        (["restore", "gone", "--region", EAST], "restore"),
        (["lifecycle", "install", "cfg", "--region", EAST], "lifecycle install"),
        (["backtest", "--region", EAST], "backtest"),
        (["demo"], "demo"),
        (["validate", "policy.yaml"], "validate"),
    ],
)
def test_a_format_a_command_cannot_produce_is_refused(
    cli: Cli, sim: Simulator, command: list[str], name: str
) -> None:
    sim.middleware.counts.clear()
    result = cli(*command, "--output", "csv")
    assert_rejected(
        sim,
        result,
        [f"Usage: sagesaver {name} ", "'--output'", "'csv' is not one of 'table', 'json'"],
    )
    assert sum(sim.middleware.counts.values()) == 0


def test_backups_and_schedule_show_are_lists_and_print_csv(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-box", tags={"sagesaver:schedule": "office"})
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "schedules:\n  office:\n    timezone: Asia/Shanghai\n"
        "    periods: [{weekdays: mon-fri, begin: '07:00', end: '21:00'}]\n"
    )
    at = "2026-11-30T02:00:00Z"  # Monday 10:00 in Shanghai: inside the period
    shown = cli(
        "schedule", "show", "--policy", str(policy), "--region", EAST, "--at", at, "-o", "csv"
    )
    assert shown.exit_code == 0, shown.stderr
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert [(r["name"], r["schedule"], r["wanted"]) for r in rows] == [
        ("dev-box", "office", "running")
    ]
    ledger = tmp_path / "ledger.sqlite"
    SqliteLedger(ledger)  # a new, empty ledger
    empty = cli("backups", "--ledger", str(ledger), "-o", "csv")
    assert empty.exit_code == 0, empty.stderr
    assert empty.stdout == ""


@pytest.mark.parametrize(
    "command",
    [
        ["backups"],
        ["savings"],
        ["report", "--region", EAST],
        ["run", "--region", EAST],
        ["schedule", "run", "--region", EAST],
        ["restore", "gone", "--region", EAST],
    ],
)
def test_a_named_ledger_that_does_not_exist_is_an_error_for_readers(
    cli: Cli, sim: Simulator, tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "typo.sqlite"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "schedules:\n  office: {start: 'cron(0 7 ? * MON-FRI *)', name_contains: dev-}\n"
    )
    sim.middleware.counts.clear()
    result = cli(*command, "--ledger", str(missing), "--policy", str(policy))
    assert_rejected(sim, result, [f"--ledger {missing}: no such ledger file"])
    assert not missing.exists()


def test_errors_go_to_stderr_and_stdout_keeps_only_the_result(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "idle", changed=now - timedelta(days=3))
    sim.middleware.fault = lambda operation, region, environ: (
        Fault(400, "AccessDeniedException", "not allowed")
        if operation == "ListNotebookInstances"
        else None
    )
    table = cli("scan", "--region", EAST)
    assert table.exit_code == 1
    assert "AccessDeniedException" in table.stderr
    assert "AccessDeniedException" not in table.stdout
    assert "idle" in table.stdout
    as_csv = cli("scan", "--region", EAST, "-o", "csv")
    assert as_csv.exit_code == 1
    assert "AccessDeniedException" in as_csv.stderr
    assert [r["name"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == ["idle"]


VALID = """\
regions: [cn-north-1, cn-northwest-1]
endpoints: {idle_hours: 12, action: delete, grace_hours: 48}
notify: {sns_topic_arn: "arn:aws-cn:sns:cn-north-1:123456789012:ml-admins"}
schedules:
  office:
    timezone: Asia/Shanghai
    periods: [{weekdays: mon-fri, begin: "07:00", end: "21:00"}]
ledger: dynamodb://cn-north-1/sagesaver-ledger
"""


def test_validate_summarises_a_valid_policy_without_calling_aws(
    cli: Cli, sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(VALID)
    sim.middleware.counts.clear()
    with time_machine.travel(datetime.fromisoformat("2026-11-30T02:00:00+00:00"), tick=False):
        table = cli("validate", str(path))
        as_json = cli("validate", str(path), "-o", "json")
    assert sum(sim.middleware.counts.values()) == 0
    assert table.exit_code == 0, table.stderr
    assert f"{path}: valid" in table.stdout
    assert "delete after a 48 h notice" in table.stdout
    assert as_json.exit_code == 0
    document = json.loads(as_json.stdout)
    assert document["valid"] is True
    assert document["regions"] == ["cn-north-1", "cn-northwest-1"]
    # Monday 10:00 in Shanghai: the next stop is 21:00 local (13:00 UTC), the next start Tuesday
    assert document["schedules"]["office"]["next_stop"] == "2026-11-30T13:00:00Z"
    assert document["schedules"]["office"]["next_start"] == "2026-11-30T23:00:00Z"
    assert document["ledger"] == "dynamodb://cn-north-1/sagesaver-ledger"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("endpoints: {idle_hours: -1}\n", ["endpoints.idle_hours"]),
        ("regions: [us-east-1, cn-north-1]\n", ["several partitions", "aws, aws-cn"]),
        ("regions: [xx-nowhere-9]\n", ["SageMaker is not offered in xx-nowhere-9"]),
        (
            "schedules: {office: {start: 'cron(0 7 ? * MON-FRI *)', timezone: Mars/Base}}\n",
            ["Mars/Base"],
        ),
    ],
)
def test_validate_names_the_problem_and_exits_2(
    cli: Cli, sim: Simulator, tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    sim.middleware.counts.clear()
    assert_rejected(sim, cli("validate", str(path)), [str(path), *fragments])
    assert sum(sim.middleware.counts.values()) == 0


def test_progress_goes_to_a_terminal_only(
    cli: Cli, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from sagesaver.cli import common

    fleet.endpoint(EAST, "idle", changed=now - timedelta(days=3))
    piped = cli("scan", "--region", EAST, "--region", "eu-west-1", "-o", "json")
    assert piped.exit_code == 0
    assert piped.stderr == ""  # not a terminal: no progress at all
    terminal = Console(stderr=True, force_terminal=True, highlight=False, width=100)
    monkeypatch.setattr(common, "err", terminal)

    def plain(text: str) -> str:
        return re.sub(r"\x1b\[[0-9;]*m", "", text)

    shown = cli("scan", "--region", EAST, "--region", "eu-west-1", "-o", "json")
    assert shown.exit_code == 0
    assert "us-east-1: 1 endpoint in service" in plain(shown.stderr)
    assert "eu-west-1: 0 endpoints in service" in plain(shown.stderr)
    json.loads(shown.stdout)  # the result is untouched
    replayed = cli("backtest", "--region", EAST, "--days", "2", "-o", "json")
    assert replayed.exit_code == 0, replayed.stderr
    assert "us-east-1: 2 days of 1 endpoint read (1/1 regions)" in plain(replayed.stderr)
