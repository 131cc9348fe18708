"""A catalogue of bad inputs. Each one: exit code 2, a one-line error naming the file or option,
the key (and line where YAML gives it) and the problem, and no mutating AWS call at all."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sagesaver.demo.simulator import Fleet, Simulator
from tests.conftest import Cli

EAST = "us-east-1"
MUTATING_PREFIXES = (
    "Create",
    "Update",
    "Delete",
    "Start",
    "Stop",
    "Publish",
    "Put",
    "Tag",
    "Untag",
)


@pytest.fixture
def fleet_to_harm(fleet: Fleet, now: datetime) -> str:
    """Something every command could change: idle endpoints, stopped dev notebooks, a topic."""
    fleet.endpoint(EAST, "idle-endpoint", changed=now - timedelta(days=3))
    fleet.notebook(EAST, "dev-stopped", status="Stopped")
    fleet.notebook(EAST, "dev-running")
    return fleet.topic(EAST, "admins")


# (name, policy text or None, command arguments, expected fragments of the error line)
POLICY_CASES: list[tuple[str, str, list[str], list[str]]] = [
    ("yaml-syntax", "endpoints: {idle_hours: 3\n", ["scan"], [":2:", "not valid YAML"]),
    ("yaml-tab", "endpoints:\n\tidle_hours: 3\n", ["scan"], [":2:", "not valid YAML"]),
    ("yaml-duplicate-doc", "a: 1\n---\nb: 2\n", ["scan"], ["not valid YAML"]),
    ("unknown-top-key", "endpoint:\n  idle_hours: 3\n", ["scan"], [":1:", "endpoint: unknown key"]),
    (
        "unknown-nested-key",
        "endpoints:\n  idle_hour: 3\n",
        ["scan"],
        [":2:", "endpoints.idle_hour: unknown key"],
    ),
    (
        "negative-hours",
        "endpoints:\n  idle_hours: -1\n",
        ["scan"],
        [":2:", "endpoints.idle_hours", "greater than 0"],
    ),
    (
        "zero-hours",
        "endpoints:\n  idle_hours: 0\n",
        ["scan"],
        ["endpoints.idle_hours", "greater than 0"],
    ),
    (
        "hours-not-number",
        "endpoints:\n  idle_hours: a day\n",
        ["scan"],
        ["endpoints.idle_hours", "valid number"],
    ),
    (
        "hours-beyond-retention",
        "endpoints:\n  idle_hours: 20000\n",
        ["scan"],
        ["endpoints.idle_hours", "less than or equal to 10920"],
    ),
    (
        "negative-min-age",
        "endpoints:\n  min_age_hours: -3\n",
        ["scan"],
        ["endpoints.min_age_hours"],
    ),
    (
        "unknown-action",
        "endpoints:\n  action: destroy\n",
        ["scan"],
        ["endpoints.action", "'notify' or 'delete'"],
    ),
    (
        "exclude-not-list",
        "endpoints:\n  exclude: prod-*\n",
        ["scan"],
        ["endpoints.exclude", "valid list"],
    ),
    (
        "invalid-glob",
        "endpoints:\n  exclude: ['[prod']\n",
        ["scan"],
        ["endpoints.exclude.0", "unclosed '['"],
    ),
    ("empty-glob", "endpoints:\n  include: ['']\n", ["scan"], ["endpoints.include.0"]),
    (
        "tags-not-mapping",
        "endpoints:\n  tags: [team]\n",
        ["scan"],
        ["endpoints.tags", "valid dictionary"],
    ),
    ("empty-protect-tag", "endpoints:\n  protect_tag: ''\n", ["scan"], ["endpoints.protect_tag"]),
    (
        "bad-topic-arn",
        "notify:\n  sns_topic_arn: my-topic\n",
        ["run"],
        ["notify.sns_topic_arn", "not an SNS topic ARN"],
    ),
    (
        "bad-account-id",
        "notify:\n  sns_topic_arn: arn:aws:sns:us-east-1:12345:t\n",
        ["run"],
        ["notify.sns_topic_arn"],
    ),
    (
        "topic-in-unknown-region",
        "notify:\n  sns_topic_arn: arn:aws:sns:us-east-9:123456789012:t\n",
        ["run"],
        ["notify.sns_topic_arn", "us-east-9"],
    ),
    (
        "bad-policy-region",
        "regions: [mars-1]\n",
        ["scan"],
        ["regions", "'mars-1' is not an AWS region name"],
    ),
    ("unknown-policy-region", "regions: [eu-north-9]\n", ["scan"], ["regions", "eu-north-9"]),
    ("bad-version", "version: 2\n", ["scan"], ["version"]),
    ("policy-is-a-list", "- endpoints\n", ["scan"], ["must be a mapping"]),
    (
        "unknown-time-zone",
        "schedules:\n  a: {timezone: Mars/Olympus, start: '0 7 * * *'}\n",
        ["schedule", "run"],
        ["schedules.a.timezone", "unknown time zone 'Mars/Olympus'"],
    ),
    (
        "eventbridge-both-days",
        "schedules:\n  a: {start: 'cron(0 7 * * MON *)'}\n",
        ["schedule", "run"],
        ["schedules.a.start", "exactly one of"],
    ),
    (
        "eventbridge-five-fields",
        "schedules:\n  a: {start: 'cron(0 7 ? * MON)'}\n",
        ["schedule", "run"],
        ["schedules.a.start", "6 fields"],
    ),
    (
        "eventbridge-day-8",
        "schedules:\n  a: {start: 'cron(0 7 ? * 8 *)'}\n",
        ["schedule", "run"],
        ["out of range 1-7"],
    ),
    (
        "eventbridge-bad-year",
        "schedules:\n  a: {start: 'cron(0 7 ? * MON 99)'}\n",
        ["schedule", "run"],
        ["year field"],
    ),
    (
        "classic-four-fields",
        "schedules:\n  a: {start: '0 7 * *'}\n",
        ["schedule", "run"],
        ["schedules.a.start", "5 classic fields"],
    ),
    (
        "classic-minute-61",
        "schedules:\n  a: {stop: '61 7 * * *'}\n",
        ["schedule", "run"],
        ["schedules.a.stop", "not a valid cron"],
    ),
    (
        "impossible-period-time",
        "schedules:\n  a: {periods: [{begin: '25:00', end: '08:00'}]}\n",
        ["schedule", "run"],
        ["schedules.a.periods.0", "'25:00' does not exist"],
    ),
    (
        "bad-weekday-name",
        "schedules:\n  a: {periods: [{weekdays: mon-fry, begin: '07:00', end: '08:00'}]}\n",
        ["schedule", "run"],
        ["unknown day name 'fry'"],
    ),
    (
        "empty-period",
        "schedules:\n  a: {periods: [{begin: '07:00', end: '07:00'}]}\n",
        ["schedule", "run"],
        ["no length"],
    ),
    (
        "periods-and-crons",
        "schedules:\n  a: {periods: [{begin: '07:00', end: '08:00'}], start: '0 7 * * *'}\n",
        ["schedule", "run"],
        ["either periods or start/stop"],
    ),
    (
        "schedule-without-times",
        "schedules:\n  a: {name_contains: dev-}\n",
        ["schedule", "run"],
        ["needs periods"],
    ),
    (
        "reserved-schedule-name",
        "schedules:\n  none: {start: '0 7 * * *'}\n",
        ["schedule", "run"],
        ["'none' is reserved"],
    ),
    (
        "zero-interval",
        "schedules:\n  a: {start: '0 7 * * *', interval_minutes: 0}\n",
        ["schedule", "run"],
        ["schedules.a.interval_minutes"],
    ),
    (
        "unknown-schedule-key",
        "schedules:\n  a: {start: '0 7 * * *', timezon: UTC}\n",
        ["schedule", "run"],
        ["schedules.a.timezon: unknown key"],
    ),
]

OPTION_CASES: list[tuple[str, list[str], list[str]]] = [
    (
        "bad-region-name",
        ["scan", "--region", "moon-1"],
        ["--region", "'moon-1' is not an AWS region name"],
    ),
    ("unknown-region", ["scan", "--region", "us-east-9"], ["--region us-east-9", "not offered"]),
    ("region-and-all", ["scan", "--region", EAST, "--all-regions"], ["cannot be used together"]),
    ("bad-output", ["scan", "--output", "xml"], ["--output"]),
    ("apply-without-topic", ["run", "--region", EAST, "--apply"], ["needs notify.sns_topic_arn"]),
    (
        "unknown-schedule-option",
        ["schedule", "run", "--region", EAST, "--schedule", "x"],
        ["--schedule: unknown schedule x (known: none)"],
    ),
    (
        "bad-at",
        ["schedule", "show", "--region", EAST, "--at", "tomorrow"],
        ["--at 'tomorrow'", "ISO 8601"],
    ),
    (
        "lifecycle-bad-name",
        ["lifecycle", "install", "stop_idle", "--region", EAST],
        ["'stop_idle'", "letters, digits and '-'"],
    ),
    (
        "lifecycle-name-too-long",
        ["lifecycle", "install", "a" * 64, "--region", EAST],
        ["1 to 63 characters"],
    ),
    (
        "lifecycle-bad-tag",
        ["lifecycle", "install", "ok", "--attach-tag", "team", "--region", EAST],
        ["--attach-tag 'team'"],
    ),
    (
        "agent-time-zero",
        ["lifecycle", "install", "ok", "--idle-time", "0", "--region", EAST],
        ["--idle-time 0"],
    ),
    (
        "agent-cpu-over-100",
        ["lifecycle", "render", "--cpu-threshold", "150"],
        ["--cpu-threshold 150"],
    ),
    (
        "agent-gpu-negative",
        ["lifecycle", "render", "--gpu-threshold", "-5"],
        ["--gpu-threshold -5"],
    ),
    (
        "agent-interval-zero",
        ["lifecycle", "render", "--interval-minutes", "0"],
        ["--interval-minutes 0"],
    ),
    (
        "restart-timeout-zero",
        ["lifecycle", "install", "ok", "--restart-timeout", "0", "--region", EAST],
        ["--restart-timeout 0"],
    ),
    (
        "unknown-capability",
        ["permissions", "--capability", "everything"],
        ["--capability", "everything"],
    ),
]

ENV_CASES: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "max-attempts-not-number",
        {"SAGESAVER_MAX_ATTEMPTS": "many"},
        ["SAGESAVER_MAX_ATTEMPTS='many'", "not a number"],
    ),
    (
        "read-timeout-zero",
        {"SAGESAVER_READ_TIMEOUT": "0"},
        ["SAGESAVER_READ_TIMEOUT='0'", "must be from"],
    ),
]


def assert_rejected(sim: Simulator, result: object, fragments: list[str]) -> None:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.exit_code == 2, (result.exit_code, stderr)  # type: ignore[attr-defined]
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(" ".join(lines)) < 400, stderr  # one short error, even if the terminal wraps it
    text = " ".join(line.strip() for line in lines)
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    mutating = [op for op in sim.middleware.counts if op.startswith(MUTATING_PREFIXES)]
    assert mutating == []


@pytest.mark.parametrize(
    ("policy", "command", "fragments"),
    [c[1:] for c in POLICY_CASES],
    ids=[c[0] for c in POLICY_CASES],
)
def test_bad_policy(
    cli: Cli,
    sim: Simulator,
    fleet_to_harm: str,
    tmp_path: Path,
    policy: str,
    command: list[str],
    fragments: list[str],
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    sim.middleware.counts.clear()
    result = cli(
        *command,
        "--policy",
        str(path),
        "--region",
        EAST,
        *(["--apply"] if command[0] == "run" else []),
    )
    assert_rejected(sim, result, [str(path), *fragments])
    assert sum(sim.middleware.counts.values()) == 0  # not even a read


@pytest.mark.parametrize(
    ("args", "fragments"), [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES]
)
def test_bad_option(
    cli: Cli, sim: Simulator, fleet_to_harm: str, args: list[str], fragments: list[str]
) -> None:
    sim.middleware.counts.clear()
    assert_rejected(sim, cli(*args), fragments)


@pytest.mark.parametrize(
    ("env", "fragments"), [c[1:] for c in ENV_CASES], ids=[c[0] for c in ENV_CASES]
)
def test_bad_environment(
    cli: Cli,
    sim: Simulator,
    fleet_to_harm: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    fragments: list[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sim.middleware.counts.clear()
    assert_rejected(sim, cli("run", "--region", EAST, "--apply"), fragments)


def test_unreadable_and_missing_policy_files(
    cli: Cli, sim: Simulator, fleet_to_harm: str, tmp_path: Path
) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    cases = [
        (tmp_path / "missing.yaml", "policy file not found"),
        (tmp_path, "is a directory"),
        (binary, "cannot read"),
    ]
    sim.middleware.counts.clear()
    for path, fragment in cases:
        result = cli("run", "--policy", str(path), "--region", EAST, "--apply")
        assert_rejected(sim, result, [str(path), fragment])


def test_the_catalogue_is_large_enough() -> None:
    assert len(POLICY_CASES) + len(OPTION_CASES) + len(ENV_CASES) + 3 >= 40


def test_a_policy_nested_too_deeply_exits_2(cli: Cli, tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("endpoints: " + "[" * 20000 + "]" * 20000 + "\n", encoding="utf-8")
    result = cli("validate", str(deep))
    assert result.exit_code == 2
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr
