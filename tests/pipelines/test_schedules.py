"""Schedules end to end: the ``sagesaver schedule`` commands against a moto server."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.conftest import Cli, run_at

EAST = "us-east-1"
SEED_POLICY = """
schedules:
  seed-example:
    start: cron(0 7 ? * MON-FRI *)
    stop: cron(0 21 ? * MON-FRI *)
    name_contains: dev-
"""
MONDAY_0705 = "2026-11-30T07:05:00Z"
MONDAY_2105 = "2026-11-30T21:05:00Z"


def states(sim: Simulator, region: str = EAST) -> dict[str, str]:
    client = sim.client("sagemaker", region)
    found = {}
    for page in client.get_paginator("list_notebook_instances").paginate():
        for item in page["NotebookInstances"]:
            found[item["NotebookInstanceName"]] = item["NotebookInstanceStatus"]
    return found


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


def run(cli: Cli, policy: str, at: str, *extra: str) -> tuple[int, dict[str, Any]]:
    """``schedule run`` at ``at``: a what-if with ``--at``, or, to act, a run at that time."""
    args = ("schedule", "run", "--policy", policy, "--region", EAST)
    if "--apply" not in extra:
        return cli.json(*args, "--at", at, *extra)
    with run_at(at):
        return cli.json(*args, *extra)


def test_seed_example_150_instances(cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path) -> None:
    dev_stopped, dev_running = set(), set()
    for i in range(150):
        if i % 3 == 0:
            name = f"dev-{i:03d}"
            status = "InService" if i % 9 == 0 else "Stopped"
            (dev_running if status == "InService" else dev_stopped).add(name)
        else:
            name = f"team-{i:03d}"
            status = "Stopped" if i % 2 else "InService"
        fleet.notebook(EAST, name, status=status)
    before = states(sim)
    policy, ledger = write(tmp_path, SEED_POLICY), str(tmp_path / "ledger.sqlite")
    sim.middleware.counts.clear()

    code, doc = run(cli, policy, MONDAY_0705, "--apply", "--ledger", ledger)
    assert code == 0, doc["errors"]
    assert {a["name"] for a in doc["actions"]} == dev_stopped
    assert all(a["action"] == "start" and a["applied"] for a in doc["actions"])
    assert "07:00" in doc["actions"][0]["reason"]
    counts = dict(sim.middleware.counts)
    after = states(sim)
    changed = {n for n in after if after[n] != before[n]}
    assert changed == dev_stopped  # every stopped dev- instance, and nothing else
    assert counts["StartNotebookInstance"] == len(dev_stopped)
    assert counts["ListNotebookInstances"] == math.ceil(150 / 100)
    assert "StopNotebookInstance" not in counts and "DescribeNotebookInstance" not in counts
    from sagesaver.core.permissions import LIVE_PRICES, SCHEDULE

    assert set(counts) <= {action.split(":")[1] for action in SCHEDULE + LIVE_PRICES}

    code, doc = run(cli, policy, MONDAY_2105, "--apply", "--ledger", ledger)
    assert code == 0
    assert {a["name"] for a in doc["actions"]} == dev_stopped | dev_running
    assert {a["action"] for a in doc["actions"]} == {"stop"}
    final = states(sim)
    assert {n for n, s in final.items() if n.startswith("dev-")} == dev_stopped | dev_running
    assert all(final[n] == "Stopped" for n in dev_stopped | dev_running)
    assert all(final[n] == before[n] for n in final if not n.startswith("dev-"))

    code, doc = run(cli, policy, "2026-11-30T21:15:00Z", "--apply", "--ledger", ledger)
    assert code == 0 and doc["actions"] == []  # the boundary was handled by the previous run


def test_api_calls_for_1000_instances(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    stopped_dev = 0
    for i in range(1000):
        dev = i % 4 == 0
        status = "Stopped" if i % 2 == 0 else "InService"
        stopped_dev += dev and status == "Stopped"
        fleet.notebook(EAST, f"{'dev' if dev else 'prod'}-{i:04d}", status=status)
    sim.middleware.counts.clear()
    code, _ = run(
        cli, write(tmp_path, SEED_POLICY), MONDAY_0705, "--apply", "--ledger", str(tmp_path / "l")
    )
    assert code == 0
    counts = dict(sim.middleware.counts)
    assert counts == {
        "ListNotebookInstances": 10,
        "GetResources": 1,  # no instance is tagged: one page
        "StartNotebookInstance": stopped_dev,
        "GetProducts": 1,  # the ledger's entries carry the price: one type, asked once
    }


def test_dry_run_changes_nothing_and_records_nothing(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-a", status="Stopped")
    policy = write(tmp_path, SEED_POLICY)
    sim.middleware.counts.clear()
    code, doc = run(cli, policy, MONDAY_0705)
    assert code == 0
    assert doc["dry_run"] is True
    assert [(a["name"], a["action"], a["applied"]) for a in doc["actions"]] == [
        ("dev-a", "start", False)
    ]
    assert "StartNotebookInstance" not in sim.middleware.counts
    assert states(sim)["dev-a"] == "Stopped"
    table = cli("schedule", "run", "--policy", policy, "--region", EAST, "--at", MONDAY_0705)
    assert "would start dev-a" in table.stdout and "Dry run" in table.stdout


def test_started_by_hand_in_the_evening_is_stopped_at_the_next_stop_only(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-evening", status="InService")
    policy, ledger = write(tmp_path, SEED_POLICY), str(tmp_path / "ledger.sqlite")
    assert (
        run(cli, policy, MONDAY_2105, "--apply", "--ledger", ledger)[1]["actions"][0]["action"]
        == "stop"
    )
    sim.client("sagemaker", EAST).start_notebook_instance(NotebookInstanceName="dev-evening")
    for moment in ("2026-11-30T22:05:00Z", "2026-12-01T03:00:00Z"):
        code, doc = run(cli, policy, moment, "--apply", "--ledger", ledger)
        assert code == 0 and doc["actions"] == []
    assert states(sim)["dev-evening"] == "InService"
    # Tuesday's 07:00 start finds it running: reported, not acted on.
    code, doc = run(cli, policy, "2026-12-01T07:05:00Z", "--apply", "--ledger", ledger)
    assert doc["actions"] == [] and "already InService" in doc["skipped"][0]["reason"]
    code, doc = run(cli, policy, "2026-12-01T21:05:00Z", "--apply", "--ledger", ledger)
    assert [a["action"] for a in doc["actions"]] == ["stop"]


def test_latest_boundary_wins_after_a_long_gap(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-x", status="Stopped")
    policy, ledger = write(tmp_path, SEED_POLICY), str(tmp_path / "ledger.sqlite")
    run(cli, policy, "2026-11-27T20:00:00Z", "--apply", "--ledger", ledger)  # Friday evening
    # Next run on Monday 08:00: Friday's 21:00 stop and Monday's 07:00 start fell; start wins.
    _, doc = run(cli, policy, "2026-11-30T08:00:00Z", "--apply", "--ledger", ledger)
    assert [a["action"] for a in doc["actions"]] == ["start"]


def test_tags_assign_opt_out_protect_and_keep_running(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    policy = write(
        tmp_path,
        SEED_POLICY
        + """
  berlin-office:
    timezone: Europe/Berlin
    periods:
      - {weekdays: mon-fri, begin: "08:00", end: "22:00"}
  other:
    start: "0 6 * * *"
    name_contains: dev-amb
""",
    )
    fleet.notebook(EAST, "dev-plain")
    fleet.notebook(EAST, "dev-optout", tags={"sagesaver:schedule": "none"})
    fleet.notebook(EAST, "dev-protected", tags={"sagesaver:protect": "true"})
    fleet.notebook(EAST, "dev-late", tags={"sagesaver:keep-running-until": "2026-11-30T23:30:00Z"})
    fleet.notebook(
        EAST, "dev-late-expired", tags={"sagesaver:keep-running-until": "2026-11-30T12:00:00Z"}
    )
    fleet.notebook(EAST, "dev-late-garbage", tags={"sagesaver:keep-running-until": "soon"})
    fleet.notebook(EAST, "research-berlin", tags={"sagesaver:schedule": "berlin-office"})
    fleet.notebook(EAST, "dev-ambiguous")
    fleet.notebook(EAST, "x-unknown", tags={"sagesaver:schedule": "nope"})
    fleet.notebook(EAST, "untargeted")
    # 21:05 UTC on Monday is 22:05 in Berlin: both schedules want a stop.
    code, doc = run(cli, policy, MONDAY_2105, "--apply", "--ledger", str(tmp_path / "l"))
    assert code == 0
    acted = {a["name"]: a["schedule"] for a in doc["actions"]}
    assert acted == {
        "dev-plain": "seed-example",
        "dev-late-expired": "seed-example",
        "research-berlin": "berlin-office",
    }
    skipped = {s["name"]: s["reason"] for s in doc["skipped"]}
    assert "opted out" in skipped["dev-optout"]
    assert "protected" in skipped["dev-protected"]
    assert "kept running until 2026-11-30T23:30:00+00:00" in skipped["dev-late"]
    assert "not an ISO 8601 time" in skipped["dev-late-garbage"]
    assert "matches schedules other, seed-example" in skipped["dev-ambiguous"]
    assert "unknown schedule 'nope'" in skipped["x-unknown"]
    assert "untargeted" not in skipped
    assert states(sim)["dev-protected"] == "InService"


def test_one_failure_does_not_stop_the_others(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    for name in ("dev-a", "dev-b", "dev-c"):
        fleet.notebook(EAST, name, status="Stopped")

    def fail_b(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation != "StartNotebookInstance":
            return None
        import io

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        return Fault(400, "ResourceLimitExceeded", "quota") if b"dev-b" in body else None

    sim.middleware.fault = fail_b
    code, doc = run(
        cli, write(tmp_path, SEED_POLICY), MONDAY_0705, "--apply", "--ledger", str(tmp_path / "l")
    )
    assert code == 1
    assert {a["name"]: a["applied"] for a in doc["actions"]} == {
        "dev-a": True,
        "dev-b": False,
        "dev-c": True,
    }
    assert (
        doc["errors"][0]["resource"] == "dev-b"
        and doc["errors"][0]["operation"] == "StartNotebookInstance"
    )
    assert states(sim) == {"dev-a": "InService", "dev-b": "Stopped", "dev-c": "InService"}


def test_only_stopped_are_started_other_states_are_skipped(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-stopped", status="Stopped")
    fleet.notebook(EAST, "dev-weird", status="Stopped")
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends["123456789012"][EAST].notebook_instances["dev-weird"].status = "Failed"
    _, doc = run(cli, write(tmp_path, SEED_POLICY), MONDAY_0705)
    assert [a["name"] for a in doc["actions"]] == ["dev-stopped"]
    assert "state is Failed, not Stopped" in doc["skipped"][0]["reason"]


def test_enforced_schedule_drives_to_the_wanted_state(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    policy = write(
        tmp_path,
        """
schedules:
  strict:
    enforced: true
    timezone: America/New_York
    periods: [{weekdays: mon-fri, begin: "09:00", end: "17:00"}]
    name_contains: dev-
""",
    )
    fleet.notebook(EAST, "dev-running-at-night", status="InService")
    fleet.notebook(EAST, "dev-stopped", status="Stopped")
    _, doc = run(
        cli, policy, "2026-12-01T04:00:00Z", "--apply", "--ledger", str(tmp_path / "l")
    )  # 23:00 NY
    assert {(a["name"], a["action"]) for a in doc["actions"]} == {("dev-running-at-night", "stop")}
    _, doc = run(cli, policy, "2026-12-01T15:00:00Z")  # 10:00 New York
    assert {(a["name"], a["action"]) for a in doc["actions"]} == {
        ("dev-running-at-night", "start"),
        ("dev-stopped", "start"),
    }


def test_show_lists_schedule_wanted_state_and_next_transitions(
    cli: Cli, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-a", status="Stopped")
    fleet.notebook(EAST, "dev-b", tags={"sagesaver:schedule": "none"})
    policy = write(tmp_path, SEED_POLICY)
    code, doc = cli.json(
        "schedule", "show", "--policy", policy, "--region", EAST, "--at", "2026-12-04T22:00:00Z"
    )
    assert code == 0
    rows = {r["name"]: r for r in doc["instances"]}
    assert rows["dev-a"]["schedule"] == "seed-example"
    assert rows["dev-a"]["wanted"] == "stopped"
    assert rows["dev-a"]["next_start"] == "2026-12-07T07:00:00Z"
    assert rows["dev-a"]["next_stop"] == "2026-12-07T21:00:00Z"
    assert rows["dev-b"]["schedule"] is None
    table = cli(
        "schedule", "show", "--policy", policy, "--region", EAST, "--at", "2026-12-04T22:00:00Z"
    )
    assert "Mon 2026-12-07 07:00 UTC" in table.stdout


def test_rules_export_eventbridge_scheduler_definitions(
    cli: Cli, sim: Simulator, tmp_path: Path
) -> None:
    policy = write(
        tmp_path,
        SEED_POLICY
        + """
  night-shift:
    timezone: Asia/Tokyo
    periods: [{weekdays: fri, begin: "22:00", end: "06:00"}]
    tags: {team: ops}
""",
    )
    refused = cli("schedule", "rules", "--policy", policy)
    assert refused.exit_code == 2
    assert "pass --target-arn and --role-arn, or --stack-name" in refused.stderr
    result = cli(
        "schedule", "rules", "--policy", policy, "--target-arn", TICK_ARN, "--role-arn", ROLE
    )
    assert result.exit_code == 0, result.stderr
    requests = json.loads(result.stdout)
    rules = {r["Name"]: r for r in requests}
    assert rules["sagesaver-seed-example-start0"]["ScheduleExpression"] == "cron(0 7 ? * MON-FRI *)"
    assert rules["sagesaver-seed-example-stop1"]["ScheduleExpressionTimezone"] == "UTC"
    assert rules["sagesaver-night-shift-start0"]["ScheduleExpression"] == "cron(0 22 ? * FRI *)"
    assert rules["sagesaver-night-shift-stop1"]["ScheduleExpression"] == "cron(0 6 ? * SAT *)"
    assert rules["sagesaver-night-shift-stop1"]["ScheduleExpressionTimezone"] == "Asia/Tokyo"
    assert json.loads(rules["sagesaver-night-shift-stop1"]["Target"]["Input"]) == {
        "schedule": "night-shift",
        "transition": "stop",
    }
    for request in requests:
        assert_accepted_by_create_schedule(request)
    scheduler = sim.client("scheduler", EAST)  # and the simulator creates every one of them
    for request in requests:
        scheduler.create_schedule(**request)
    assert len(scheduler.list_schedules()["Schedules"]) == len(requests) == 4


TICK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:sagesaver-ScheduleTickFunction"
ROLE = "arn:aws:iam::123456789012:role/sagesaver-SchedulerRole"


def assert_accepted_by_create_schedule(request: dict[str, Any]) -> None:
    """What CreateSchedule's model requires of every member (required members, types, lengths,
    patterns, enums): moto checks almost none of it."""
    import re

    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("scheduler")
    shape = model.operation_model("CreateSchedule").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()

    def check(value: Any, shape: Any, where: str) -> None:
        if shape.type_name == "structure":
            assert set(value) <= set(shape.members), (where, set(value) - set(shape.members))
            for key, member in value.items():
                check(member, shape.members[key], f"{where}.{key}")
        elif shape.type_name == "string":
            meta = shape.metadata
            assert meta.get("min", 0) <= len(value) <= meta.get("max", 10**9), (where, value)
            if "pattern" in meta:
                assert re.fullmatch(meta["pattern"], value), (where, meta["pattern"], value)
            if shape.enum:
                assert value in shape.enum, (where, value)

    check(request, shape, "CreateSchedule")


def test_rules_take_the_function_and_role_from_the_deployed_stack(
    cli: Cli, sim: Simulator, tmp_path: Path
) -> None:
    policy = write(tmp_path, SEED_POLICY)
    stack = sim.client("cloudformation", EAST)
    stack.create_stack(
        StackName="sagesaver",
        TemplateBody=json.dumps(
            {
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {
                    "ScheduleTickFunctionArn": {"Value": TICK_ARN},
                    "SchedulerRoleArn": {"Value": ROLE},
                },
            }
        ),
    )
    result = cli("schedule", "rules", "--policy", policy, "--stack-name", "sagesaver")
    assert result.exit_code == 0, result.stderr
    targets = {(r["Target"]["Arn"], r["Target"]["RoleArn"]) for r in json.loads(result.stdout)}
    assert targets == {(TICK_ARN, ROLE)}
    missing = cli("schedule", "rules", "--policy", policy, "--stack-name", "nothing-here")
    assert missing.exit_code == 2
    assert "--stack-name nothing-here" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedule", "run", "--schedule", "nope"], "--schedule: unknown schedule nope"),
        (["schedule", "run", "--at", "next monday"], "--at 'next monday': not an ISO 8601 time"),
        (["schedule", "show", "--schedule", "x"], "unknown schedule x"),
    ],
)
def test_bad_schedule_input_exits_2(
    cli: Cli, sim: Simulator, tmp_path: Path, args: list[str], message: str
) -> None:
    result = cli(*args, "--policy", write(tmp_path, SEED_POLICY), "--region", EAST)
    assert result.exit_code == 2
    assert message in result.stderr
    assert sum(sim.middleware.counts.values()) == 0


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            "schedules: {a: {timezone: Europe/Narnia, start: '0 7 * * *'}}",
            "unknown time zone 'Europe/Narnia'",
        ),
        (
            "schedules: {a: {start: 'cron(0 7 * * MON *)'}}",
            "exactly one of day-of-month and day-of-week",
        ),
        (
            "schedules: {a: {periods: [{weekdays: mon-fry, begin: '07:00', end: '09:00'}]}}",
            "unknown day name",
        ),
        (
            "schedules: {a: {periods: [{begin: '07:00', end: '25:00'}]}}",
            "time '25:00' does not exist",
        ),
    ],
)
def test_bad_schedule_policies_exit_2(
    cli: Cli, sim: Simulator, tmp_path: Path, policy: str, message: str
) -> None:
    result = cli("schedule", "run", "--policy", write(tmp_path, policy), "--region", EAST)
    assert result.exit_code == 2
    assert message in result.stderr
    assert sum(sim.middleware.counts.values()) == 0


def test_lambda_schedule_tick(
    fleet: Fleet, sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import time_machine

    from sagesaver.lambda_handlers import RunFailed, schedule_tick

    fleet.notebook(EAST, "dev-a", status="Stopped")
    monkeypatch.setenv("SAGESAVER_POLICY", SEED_POLICY)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    with time_machine.travel("2026-11-30T07:03:00Z", tick=False):
        result = schedule_tick({"schedule": "seed-example"}, None)
    assert result["ok"] and [a["name"] for a in result["actions"]] == ["dev-a"]
    assert states(sim)["dev-a"] == "InService"
    with pytest.raises(RunFailed, match=r"^event\.schedule: unknown schedule 'nope'"):
        schedule_tick({"schedule": "nope"}, None)


def test_a_run_of_one_schedule_still_sees_ambiguity(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    policy = write(
        tmp_path, SEED_POLICY + "\n  other:\n    start: '0 7 * * *'\n    name_contains: dev-b\n"
    )
    fleet.notebook(EAST, "dev-a", status="Stopped")  # seed-example only
    fleet.notebook(EAST, "dev-b", status="Stopped")  # both schedules select it
    code, doc = run(cli, policy, MONDAY_0705, "--schedule", "seed-example")
    assert code == 0
    assert [a["name"] for a in doc["actions"]] == ["dev-a"]
    assert [
        (s["name"], "matches schedules other, seed-example" in s["reason"]) for s in doc["skipped"]
    ] == [("dev-b", True)]


def test_starts_are_made_at_once_not_one_after_the_other(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    import threading
    import time

    for i in range(40):
        fleet.notebook(EAST, f"dev-{i:02d}", status="Stopped")
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def overlap(operation: str, region: str, _: object) -> Fault | None:
        if operation != "StartNotebookInstance":
            return None
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.05)  # a round trip long enough for concurrent calls to meet
        with lock:
            in_flight[0] -= 1
        return None

    sim.middleware.fault = overlap
    code, doc = run(
        cli,
        write(tmp_path, SEED_POLICY),
        MONDAY_0705,
        "--apply",
        "--ledger",
        str(tmp_path / "ledger.sqlite"),
    )
    assert code == 0
    assert sorted(a["name"] for a in doc["actions"]) == [f"dev-{i:02d}" for i in range(40)]
    assert [a["name"] for a in doc["actions"]] == sorted(a["name"] for a in doc["actions"])
    assert all(s == "InService" for s in states(sim).values())
    assert most[0] > 1


def test_a_what_if_with_apply_is_refused_and_records_nothing(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-a", status="Stopped")
    policy, ledger = write(tmp_path, SEED_POLICY), tmp_path / "ledger.sqlite"
    sim.middleware.counts.clear()
    result = cli(
        "schedule", "run", "--policy", policy, "--region", EAST,
        "--at", MONDAY_0705, "--apply", "--ledger", str(ledger),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--at with --apply" in result.stderr
    assert sum(sim.middleware.counts.values()) == 0
    assert not ledger.exists()
    # A what-if in the future, with the team's ledger, leaves the ledger as it was.
    with run_at(MONDAY_0705):
        run(cli, policy, MONDAY_0705, "--apply", "--ledger", str(ledger))
    before = ledger.read_bytes()
    code, doc = run(cli, policy, MONDAY_2105, "--ledger", str(ledger))
    assert code == 0 and doc["dry_run"] is True
    assert ledger.read_bytes() == before


def test_nothing_to_start_or_stop_says_why(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-a", status="Stopped")
    policy = write(tmp_path, SEED_POLICY)
    at = "2026-11-30T12:00:00Z"  # Monday noon: no boundary near
    table = cli("schedule", "run", "--policy", policy, "--region", EAST, "--at", at)
    assert table.exit_code == 0
    text = " ".join(table.stdout.split())  # the terminal may wrap the reason
    assert "Nothing to start or stop." in text
    assert "seed-example (us-east-1): not enforced (acts only at its boundaries)" in text
    assert "Mon 11:50 to Mon 12:00 UTC" in text
    _, doc = run(cli, policy, at)
    assert doc["quiet"] == [
        {
            "schedule": "seed-example",
            "region": EAST,
            "reason": "not enforced (acts only at its boundaries), and no start or stop fell in "
            "the 10 minutes before (no previous run recorded): Mon 11:50 to Mon 12:00 UTC",
        }
    ]
    nobody = write(tmp_path, SEED_POLICY.replace("dev-", "prod-"))
    untargeted = cli("schedule", "run", "--policy", nobody, "--region", EAST, "--at", at)
    assert "no notebook instance is targeted" in untargeted.stdout


def test_show_and_run_agree_on_protected_instances(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-guarded", status="Stopped", tags={"sagesaver:protect": "true"})
    fleet.notebook(EAST, "dev-free", status="Stopped")
    policy = write(tmp_path, SEED_POLICY)
    code, shown = cli.json(
        "schedule", "show", "--policy", policy, "--region", EAST, "--at", MONDAY_0705
    )
    assert code == 0
    rows = {r["name"]: r for r in shown["instances"]}
    assert rows["dev-free"]["wanted"] == "running"
    assert rows["dev-guarded"]["wanted"] is None
    assert "protected by tag sagesaver:protect" in rows["dev-guarded"]["reason"]
    code, ran = run(cli, policy, MONDAY_0705)
    assert [a["name"] for a in ran["actions"]] == ["dev-free"]
    assert [s["name"] for s in ran["skipped"]] == ["dev-guarded"]
