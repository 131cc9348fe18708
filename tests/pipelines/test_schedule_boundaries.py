"""A schedule boundary stays due until its action is confirmed; every start and stop is
recorded as intent (a lease) before its call and confirmed (an entry, the lease done) after.

A failed call or an instance met in a transitional state heading elsewhere keeps the boundary
due for that instance, until its action is confirmed or the schedule's next boundary passes;
an instance confirmed at the boundary is never acted on again before the next one. A run killed
between its calls and its records is finished by the next run, from the instances' real state.
Kills are simulated as in ``test_enforce_faults.py``: raising :class:`Killed` (not an AWS error)
at one step; the next run comes after the lease has expired.
"""

from __future__ import annotations

import io
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from botocore.retries import standard

from sagesaver.aws import actions
from sagesaver.core.savings import off_intervals
from sagesaver.demo.simulator import ACCOUNT_ID, Fault, Fleet, Simulator
from sagesaver.ledger import SqliteLedger
from sagesaver.pipelines import schedules as schedule_pipeline
from tests.conftest import Cli, run_at
from tests.pipelines.test_schedules import EAST, SEED_POLICY, states, write

MONDAY_2105 = "2026-11-30T21:05:00Z"
LEASE = timedelta(minutes=15)


class Killed(BaseException):
    """The process dies here."""


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def set_status(name: str, status: str) -> None:
    """What moto cannot do by itself: an instance caught in a transitional state."""
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends[ACCOUNT_ID][EAST].notebook_instances[name].status = status


def refuse(
    operation: str, names: set[str], code: str = "ValidationException", status: int = 400
) -> Callable[[str, str, Any], Fault | None]:
    """A fault rule: ``operation`` on any instance of ``names`` fails (``names`` may change)."""

    def rule(called: str, region: str, environ: Any) -> Fault | None:
        if called != operation:
            return None
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if any(f'"{name}"'.encode() in body for name in names):
            return Fault(status, code, f"{operation} refused")
        return None

    return rule


def act(
    cli: Cli, policy: str, ledger: str, at: str, tick: bool = False
) -> tuple[int, dict[str, Any]]:
    """``schedule run --apply`` with the clock at ``at``: standing, or ticking from there
    (botocore's adaptive retries wait for a clock that moves once they were throttled)."""
    with time_machine.travel(moment(at), tick=tick):
        return cli.json(
            "schedule", "run", "--policy", policy, "--region", EAST,
            "--apply", "--ledger", ledger,
        )  # fmt: skip


def entries_of(ledger: str, name: str) -> list[tuple[str, str, str]]:
    """(at, action, outcome) of every ledger entry of ``name``, oldest first."""
    return [
        (e.at.strftime("%a %H:%M"), e.action, e.outcome)
        for e in SqliteLedger(Path(ledger)).entries()
        if e.resource == name
    ]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path, SEED_POLICY), str(tmp_path / "ledger.sqlite")


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries, without their sleeps; two attempts per call."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.005)
    monkeypatch.setenv("SAGESAVER_MAX_ATTEMPTS", "2")


@pytest.mark.parametrize(
    ("code", "status"),
    [("ValidationException", 400), ("ThrottlingException", 400), ("ServiceUnavailable", 503)],
)
def test_a_failed_stop_is_retried_by_the_next_run_of_the_same_period(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    setup: tuple[str, str],
    quick_backoff: None,
    code: str,
    status: int,
) -> None:
    policy, ledger = setup
    fleet.notebook(EAST, "dev-a", status="InService")
    fleet.notebook(EAST, "dev-b", status="InService")
    sim.middleware.fault = refuse("StopNotebookInstance", {"dev-b"}, code, status)
    exit_code, doc = act(cli, policy, ledger, MONDAY_2105, tick=True)
    assert exit_code == 1
    failed = {a["name"]: a for a in doc["actions"]}
    assert failed["dev-a"]["applied"] and not failed["dev-a"]["stays_due"]
    assert not failed["dev-b"]["applied"] and failed["dev-b"]["stays_due"]
    assert "stays due" in failed["dev-b"]["reason"]
    assert states(sim) == {"dev-a": "Stopped", "dev-b": "InService"}

    sim.middleware.fault = None
    sim.middleware.counts.clear()
    exit_code, doc = act(cli, policy, ledger, "2026-11-30T21:15:00Z", tick=True)
    assert exit_code == 0, doc["errors"]
    assert [(a["name"], a["action"], a["applied"]) for a in doc["actions"]] == [
        ("dev-b", "stop", True)
    ]
    assert sim.middleware.counts["StopNotebookInstance"] == 1  # dev-a is not stopped again
    assert states(sim) == {"dev-a": "Stopped", "dev-b": "Stopped"}

    exit_code, doc = act(cli, policy, ledger, "2026-11-30T21:25:00Z", tick=True)
    assert exit_code == 0 and doc["actions"] == []  # the boundary is done with
    assert entries_of(ledger, "dev-a") == [("Mon 21:05", "stop", "done")]
    [(when, action, outcome), confirmed] = entries_of(ledger, "dev-b")
    assert (when, action) == ("Mon 21:05", "stop") and outcome.startswith("failed: ")
    assert confirmed == ("Mon 21:15", "stop", "done")
    assert SqliteLedger(Path(ledger)).open_leases() == []


def test_a_stop_that_meets_a_pending_instance_is_made_once_it_runs(
    cli: Cli, sim: Simulator, fleet: Fleet, setup: tuple[str, str]
) -> None:
    policy, ledger = setup
    fleet.notebook(EAST, "dev-starting", status="InService")
    fleet.notebook(EAST, "dev-stopping", status="InService")
    set_status("dev-starting", "Pending")  # heading elsewhere: the stop stays due
    set_status("dev-stopping", "Stopping")  # heading where the stop leads: confirmed
    exit_code, doc = act(cli, policy, ledger, MONDAY_2105)
    assert exit_code == 0 and doc["actions"] == []
    skipped = {s["name"]: s for s in doc["skipped"]}
    assert skipped["dev-starting"]["stays_due"]
    assert "state is Pending, not InService" in skipped["dev-starting"]["reason"]
    assert "stays due" in skipped["dev-starting"]["reason"]
    assert not skipped["dev-stopping"]["stays_due"]
    assert "already Stopping" in skipped["dev-stopping"]["reason"]

    set_status("dev-starting", "InService")
    set_status("dev-stopping", "Stopped")
    # Someone starts dev-stopping by hand after the boundary: the boundary is not retried on it.
    sim.client("sagemaker", EAST).start_notebook_instance(NotebookInstanceName="dev-stopping")
    exit_code, doc = act(cli, policy, ledger, "2026-11-30T21:15:00Z")
    assert exit_code == 0, doc["errors"]
    assert [(a["name"], a["action"], a["applied"]) for a in doc["actions"]] == [
        ("dev-starting", "stop", True)
    ]
    assert states(sim) == {"dev-starting": "Stopped", "dev-stopping": "InService"}
    exit_code, doc = act(cli, policy, ledger, "2026-11-30T21:25:00Z")
    assert doc["actions"] == [] and states(sim)["dev-stopping"] == "InService"


def test_a_start_that_meets_a_stopping_instance_is_made_once_it_stopped(
    cli: Cli, sim: Simulator, fleet: Fleet, setup: tuple[str, str]
) -> None:
    policy, ledger = setup
    fleet.notebook(EAST, "dev-late", status="Stopped")
    set_status("dev-late", "Stopping")
    exit_code, doc = act(cli, policy, ledger, "2026-11-30T07:05:00Z")
    assert exit_code == 0 and doc["actions"] == []
    [skip] = doc["skipped"]
    assert skip["stays_due"] and "state is Stopping, not Stopped" in skip["reason"]
    set_status("dev-late", "Stopped")
    exit_code, doc = act(cli, policy, ledger, "2026-11-30T07:25:00Z")
    assert [(a["name"], a["action"], a["applied"]) for a in doc["actions"]] == [
        ("dev-late", "start", True)
    ]
    assert states(sim) == {"dev-late": "InService"}


def test_a_due_boundary_is_abandoned_when_the_next_boundary_passes(
    cli: Cli, sim: Simulator, fleet: Fleet, setup: tuple[str, str]
) -> None:
    policy, ledger = setup
    fleet.notebook(EAST, "dev-a", status="InService")
    sim.middleware.fault = refuse("StopNotebookInstance", {"dev-a"})
    for at in (MONDAY_2105, "2026-11-30T23:00:00Z", "2026-12-01T03:00:00Z"):
        exit_code, doc = act(cli, policy, ledger, at)
        assert exit_code == 1 and doc["actions"][0]["stays_due"]  # retried all night
    sim.middleware.fault = None
    sim.middleware.counts.clear()
    # Tuesday 07:05: the start at 07:00 wins over Monday's stop, which is given up.
    exit_code, doc = act(cli, policy, ledger, "2026-12-01T07:05:00Z")
    assert exit_code == 0 and doc["actions"] == []
    assert "start at Tue 07:00" in doc["skipped"][0]["reason"]
    assert "already InService" in doc["skipped"][0]["reason"]
    assert not doc["skipped"][0]["stays_due"]
    assert "StopNotebookInstance" not in sim.middleware.counts
    exit_code, doc = act(cli, policy, ledger, "2026-12-01T07:15:00Z")
    assert doc["actions"] == [] and doc["skipped"] == []  # and Tuesday's start is done with
    assert states(sim) == {"dev-a": "InService"}
    assert SqliteLedger(Path(ledger)).last_schedule_run("seed-example", EAST) == moment(
        "2026-12-01T07:15:00Z"
    )


def test_an_instance_confirmed_at_the_boundary_is_not_acted_on_again_after_a_manual_change(
    cli: Cli, sim: Simulator, fleet: Fleet, setup: tuple[str, str]
) -> None:
    policy, ledger = setup
    fleet.notebook(EAST, "dev-stopped-by-us", status="InService")
    fleet.notebook(EAST, "dev-was-stopped", status="Stopped")
    fleet.notebook(EAST, "dev-failing", status="InService")
    sim.middleware.fault = refuse("StopNotebookInstance", {"dev-failing"})
    exit_code, doc = act(cli, policy, ledger, MONDAY_2105)
    assert exit_code == 1
    assert {a["name"]: a["applied"] for a in doc["actions"]} == {
        "dev-stopped-by-us": True,
        "dev-failing": False,
    }
    # After the boundary, people start both confirmed instances by hand.
    client = sim.client("sagemaker", EAST)
    for name in ("dev-stopped-by-us", "dev-was-stopped"):
        client.start_notebook_instance(NotebookInstanceName=name)
    sim.middleware.fault = None
    sim.middleware.counts.clear()
    exit_code, doc = act(cli, policy, ledger, "2026-11-30T21:15:00Z")
    assert exit_code == 0, doc["errors"]
    assert [a["name"] for a in doc["actions"]] == ["dev-failing"]
    assert sim.middleware.counts["StopNotebookInstance"] == 1
    skipped = {s["name"]: s["reason"] for s in doc["skipped"]}
    assert "at this boundary already" in skipped["dev-stopped-by-us"]
    assert "at this boundary already" in skipped["dev-was-stopped"]
    assert states(sim) == {
        "dev-stopped-by-us": "InService",
        "dev-was-stopped": "InService",
        "dev-failing": "Stopped",
    }
    # Tuesday's 21:00 stop is a new boundary: everything running is stopped again.
    exit_code, doc = act(cli, policy, ledger, "2026-12-01T21:05:00Z")
    assert {a["name"] for a in doc["actions"]} == {"dev-stopped-by-us", "dev-was-stopped"}


def kill_before(real: Callable[..., Any]) -> Callable[..., Any]:
    def killed(*args: Any, **kwargs: Any) -> Any:
        raise Killed

    return killed


def kill_after(real: Callable[..., Any]) -> Callable[..., Any]:
    def killed(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise Killed

    return killed


def kill_on_done(real: Callable[..., Any]) -> Callable[..., Any]:
    def advance(self: Any, key: str, holder: str, state: str, backup_id: str | None = None) -> Any:
        if state == "done":
            raise Killed
        return real(self, key, holder, state, backup_id)

    return advance


# Where the run dies: (patched object, attribute, replacement factory, the call was made).
KILL_POINTS: dict[str, tuple[Any, str, Callable[[Any], Any], bool]] = {
    "1 intent recorded, as the call is sent": (actions, "start_notebook", kill_before, False),
    "2 right after the call": (actions, "start_notebook", kill_after, True),
    "3 after the entry, before the lease is closed": (
        SqliteLedger, "advance_lease", kill_on_done, True,
    ),
}  # fmt: skip


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_run_killed_after_its_starts_is_recorded_once_and_savings_stay_true(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    setup: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    policy, ledger = setup
    fleet.notebook(EAST, "dev-k", status="InService")
    friday, monday = "2026-11-27T21:05:00Z", "2026-11-30T07:05:00Z"
    assert act(cli, policy, ledger, friday)[0] == 0  # stopped on Friday evening, recorded
    owner, attribute, factory, called = KILL_POINTS[point]
    with monkeypatch.context() as patch, time_machine.travel(moment(monday), tick=False):
        patch.setattr(owner, attribute, factory(getattr(owner, attribute)))
        with pytest.raises(Killed):
            cli.runner.invoke(
                cli_app(),
                ["schedule", "run", "--policy", policy, "--region", EAST,
                 "--apply", "--ledger", ledger],
                catch_exceptions=False,
            )  # fmt: skip
    assert states(sim)["dev-k"] == ("InService" if called else "Stopped")

    later = moment(monday) + LEASE + timedelta(minutes=5)
    exit_code, doc = act(cli, policy, ledger, later.isoformat())
    assert exit_code == 0, doc["errors"]
    assert states(sim)["dev-k"] == "InService"
    assert sim.middleware.counts["StartNotebookInstance"] == 1  # never started twice
    starts = [e for e in SqliteLedger(Path(ledger)).entries() if e.action == "start"]
    assert len(starts) == 1, starts  # recorded exactly once
    [start] = starts
    assert start.outcome.startswith("done") and start.resource == "dev-k"
    assert start.at == (moment(monday) if called else later)
    if point.startswith("2"):
        assert start.outcome == "done (confirmed by a later run)"
        assert [r["name"] for r in doc["recovered"]] == ["dev-k"]
    assert SqliteLedger(Path(ledger)).open_leases() == []  # nothing stuck

    # The savings count the hours dev-k was really off: Friday 21:05 to its start.
    [interval] = off_intervals(SqliteLedger(Path(ledger)).entries(), now=later + timedelta(days=30))
    assert interval.end == start.at
    assert interval.hours == pytest.approx((start.at - moment(friday)).total_seconds() / 3600)
    assert interval.hours < 60

    sim.middleware.counts.clear()
    exit_code, doc = act(cli, policy, ledger, (later + LEASE).isoformat())
    assert (
        exit_code == 0
        and doc["actions"] == []
        and "StartNotebookInstance" not in (sim.middleware.counts)
    )


def test_every_start_is_recorded_as_intent_before_its_call(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    setup: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the ledger holds while a call is in flight: an open lease naming the schedule,
    region, instance, transition and boundary, and what a later run needs to record it."""
    policy, ledger = setup
    arn = fleet.notebook(EAST, "dev-i", status="Stopped")
    seen: list[Any] = []
    real = actions.start_notebook

    def look_then_start(aws: Any, region: str, name: str) -> None:
        seen.extend(SqliteLedger(Path(ledger)).open_leases())
        real(aws, region, name)

    monkeypatch.setattr(actions, "start_notebook", look_then_start)
    assert act(cli, policy, ledger, "2026-11-30T07:05:00Z")[0] == 0
    [lease] = seen
    assert lease.state == "delete-sent"  # the lease state that says "the call is sent"
    assert lease.expires - lease.at == LEASE
    assert all(part in lease.key for part in ("seed-example", EAST, "dev-i", "start"))
    assert "2026-11-30T07:00:00" in lease.key  # the boundary
    subject = lease.subject
    assert {k: subject[k] for k in ("kind", "account", "region", "name", "arn")} == {
        "kind": "notebook",
        "account": ACCOUNT_ID,
        "region": EAST,
        "name": "dev-i",
        "arn": arn,
    }
    assert subject["transition"] == "start" and subject["created"]
    assert float(subject["hourly_cost"]) > 0
    assert SqliteLedger(Path(ledger)).open_leases() == []  # confirmed after the call


def test_a_lambda_retry_of_the_same_tick_after_a_failed_stop_acts_again(
    fleet: Fleet, sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sagesaver.lambda_handlers import RunFailed, schedule_tick

    fleet.notebook(EAST, "dev-a", status="InService")
    fleet.notebook(EAST, "dev-b", status="InService")
    fleet.notebook(EAST, "dev-c", status="InService")
    ledger = str(tmp_path / "ledger.sqlite")
    monkeypatch.setenv("SAGESAVER_POLICY", SEED_POLICY)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.setenv("SAGESAVER_LEDGER", ledger)
    failing = {"dev-a", "dev-b"}
    sim.middleware.fault = refuse("StopNotebookInstance", failing)
    tick = "2026-11-30T21:03:00Z"
    with time_machine.travel(moment(tick), tick=False), pytest.raises(RunFailed):
        schedule_tick({"schedule": "seed-example", "transition": "stop"}, None)
    assert states(sim) == {"dev-a": "InService", "dev-b": "InService", "dev-c": "Stopped"}

    failing.discard("dev-a")
    # Someone starts dev-c by hand; Lambda retries the same tick, at the same moment.
    sim.client("sagemaker", EAST).start_notebook_instance(NotebookInstanceName="dev-c")
    with time_machine.travel(moment(tick), tick=False), pytest.raises(RunFailed):
        schedule_tick({"schedule": "seed-example", "transition": "stop"}, None)
    assert states(sim) == {"dev-a": "Stopped", "dev-b": "InService", "dev-c": "InService"}

    failing.clear()  # Lambda's second retry, two minutes later
    with time_machine.travel(moment(tick) + timedelta(minutes=2), tick=False):
        result = schedule_tick({"schedule": "seed-example", "transition": "stop"}, None)
    assert result["ok"] and [a["name"] for a in result["actions"]] == ["dev-b"]
    assert states(sim) == {"dev-a": "Stopped", "dev-b": "Stopped", "dev-c": "InService"}


def test_sigterm_stops_the_cli_cleanly_with_its_records_written(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    setup: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM during the starts: the call in flight finishes and is recorded, the calls not
    yet made are not made, and nothing is left open; the next run starts the others."""
    import os
    import threading
    import time

    assert threading.current_thread() is threading.main_thread()
    policy, ledger = setup
    for name in ("dev-1", "dev-2", "dev-3"):
        fleet.notebook(EAST, name, status="Stopped")
    monkeypatch.setattr(schedule_pipeline, "ACTION_WORKERS", 1)  # one call at a time
    real = actions.start_notebook
    calls: list[str] = []

    def terminated_during_the_first(aws: Any, region: str, name: str) -> None:
        calls.append(name)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)  # the call is still in flight when the signal is handled
        real(aws, region, name)

    monkeypatch.setattr(actions, "start_notebook", terminated_during_the_first)
    unhandled: list[int] = []

    def test_process_survives(signum: int, frame: Any) -> None:
        unhandled.append(signum)  # without the command's own handler, the run goes on

    before = signal.signal(signal.SIGTERM, test_process_survives)
    try:
        with run_at("2026-11-30T07:05:00Z"):
            result = cli(
                "schedule", "run", "--policy", policy, "--region", EAST,
                "--apply", "--ledger", ledger,
            )  # fmt: skip
        assert signal.getsignal(signal.SIGTERM) == test_process_survives  # put back
    finally:
        signal.signal(signal.SIGTERM, before)
    assert unhandled == []
    assert result.exit_code == 128 + signal.SIGTERM
    assert calls == ["dev-1"]
    assert states(sim) == {"dev-1": "InService", "dev-2": "Stopped", "dev-3": "Stopped"}
    assert entries_of(ledger, "dev-1") == [("Mon 07:05", "start", "done")]
    assert SqliteLedger(Path(ledger)).open_leases() == []

    monkeypatch.setattr(actions, "start_notebook", real)
    exit_code, doc = act(cli, policy, ledger, "2026-11-30T07:15:00Z")
    assert exit_code == 0 and [a["name"] for a in doc["actions"]] == ["dev-2", "dev-3"]


def cli_app() -> Any:
    from sagesaver.cli import app

    return app


# --- the pure planning: where each instance stands at a boundary (no AWS) -------------------


def instance(name: str, status: str) -> Any:
    from sagesaver.core.model import Kind, Resource

    created = moment("2026-11-01T00:00:00Z")
    arn = f"arn:aws:sagemaker:{EAST}:{ACCOUNT_ID}:notebook-instance/{name}"
    return Resource(Kind.NOTEBOOK, name, arn, EAST, ACCOUNT_ID, status, created, created)


@pytest.mark.parametrize(
    ("at", "status", "standing"),
    [
        (MONDAY_2105, "InService", None),  # acted on
        (MONDAY_2105, "Stopped", "confirmed"),
        (MONDAY_2105, "Stopping", "confirmed"),  # heading where the stop leads
        (MONDAY_2105, "Pending", "due"),  # heading elsewhere
        (MONDAY_2105, "Updating", "due"),
        (MONDAY_2105, "Failed", "settled"),  # a state it cannot leave
        ("2026-11-30T07:05:00Z", "Pending", "confirmed"),
        ("2026-11-30T07:05:00Z", "Stopping", "due"),
    ],
)
def test_plan_says_where_each_instance_stands_at_the_boundary(
    at: str, status: str, standing: str | None
) -> None:
    from sagesaver.core.policy import parse_policy
    from sagesaver.core.rules.schedules import plan

    now = moment(at)
    planned = plan([instance("dev-x", status)], parse_policy(SEED_POLICY), now, lambda s, r: None)
    [window] = planned.windows.values()
    boundary = now.replace(minute=0)
    assert (window.boundary, window.since) == (boundary, now - timedelta(minutes=10))
    if standing is None:
        [action] = planned.actions
        assert action.boundary == boundary and not planned.skipped
        return
    [skip] = planned.skipped
    assert skip.standing.value == standing and not planned.actions
    assert ("stays due" in skip.reason) is (standing == "due")


def test_an_enforced_schedule_acts_on_the_state_it_wants_now_not_on_a_boundary() -> None:
    from sagesaver.core.policy import parse_policy
    from sagesaver.core.rules.schedules import plan

    policy = parse_policy(
        "schedules:\n  strict:\n    enforced: true\n    start: cron(0 7 ? * MON-FRI *)\n"
        "    stop: cron(0 21 ? * MON-FRI *)\n    name_contains: dev-\n"
    )
    now = moment("2026-11-30T23:30:00Z")
    planned = plan([instance("dev-x", "InService")], policy, now, lambda s, r: None)
    [action] = planned.actions
    assert action.boundary == now and planned.windows == {}


@pytest.mark.parametrize(
    ("move", "standing"),
    [
        ("protect", "settled"),
        ("keep-running", "settled"),
        ("opt-out", "settled"),
        ("stopped-by-hand", "confirmed"),
    ],
)
def test_a_stop_reads_the_instance_again_at_the_last_moment(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    setup: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    move: str,
    standing: str,
) -> None:
    """What a person does between the run's listing and its stop is seen: a protect tag, a
    later keep-running-until, opting out, or stopping it by hand. dev-b is not stopped by
    SageSaver; dev-a, untouched, is."""
    policy, ledger = setup
    fleet.notebook(EAST, "dev-a", status="InService")
    arn = fleet.notebook(EAST, "dev-b", status="InService")
    client = sim.client("sagemaker", EAST)
    real = schedule_pipeline._listing

    def then_a_person_moves(*args: Any) -> Any:
        listing = real(*args)
        if move == "stopped-by-hand":
            client.stop_notebook_instance(NotebookInstanceName="dev-b")
            return listing
        key, value = {
            "protect": ("sagesaver:protect", "true"),
            "keep-running": ("sagesaver:keep-running-until", "2026-12-01T02:00:00Z"),
            "opt-out": ("sagesaver:schedule", "none"),
        }[move]
        client.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": value}])
        return listing

    monkeypatch.setattr(schedule_pipeline, "_listing", then_a_person_moves)
    sim.middleware.counts.clear()
    exit_code, doc = act(cli, policy, ledger, MONDAY_2105)
    assert exit_code == 0, doc["errors"]
    assert sim.middleware.counts["StopNotebookInstance"] == 1 + (move == "stopped-by-hand")
    assert [a["name"] for a in doc["actions"] if a["applied"]] == ["dev-a"]
    [skip] = [s for s in doc["skipped"] if s["name"] == "dev-b"]
    assert "read again before the stop" in skip["reason"], skip
    assert skip["standing"] == standing
    assert [e[1] for e in entries_of(ledger, "dev-b")] == []  # no stop of it is recorded


def test_a_schedule_run_calls_only_what_its_capability_declares(
    cli: Cli, sim: Simulator, fleet: Fleet, setup: tuple[str, str]
) -> None:
    """The schedule tick's role is made from its capabilities (schedule, and live prices for
    the ledger's entries): every call a run with a stop makes (the last-moment read included)
    must be in them."""
    from sagesaver.core.permissions import CAPABILITIES
    from sagesaver.deploy.iam import FUNCTIONS, SCHEDULE_TICK

    policy, ledger = setup
    fleet.notebook(EAST, "dev-a", status="InService")
    sim.middleware.counts.clear()
    exit_code, doc = act(cli, policy, ledger, MONDAY_2105)
    assert exit_code == 0 and [a["name"] for a in doc["actions"] if a["applied"]] == ["dev-a"]
    capabilities = FUNCTIONS[SCHEDULE_TICK].capabilities
    declared = {a.split(":", 1)[1] for c in capabilities for a in CAPABILITIES[c]}
    assert set(sim.middleware.counts) <= declared, set(sim.middleware.counts) - declared
    assert {"DescribeNotebookInstance", "ListTags", "StopNotebookInstance"} <= set(
        sim.middleware.counts
    )
