"""The idle run and an endpoint a schedule parked by scaling (its instances or its inference
components' copies at 0): ``sagesaver run --apply`` with ``action: delete`` and a grace period
of 0 never deletes it, nor tags it, while it is parked, while it is ``Updating`` on its way down
or up, or while its host's instances have not gone yet. The ledger's open ``park`` is the
evidence the last-moment guard reads. Beijing's 07:00-21:00 weekday schedule, on an ordinary
Tuesday of 2026."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.aws.session import Aws
from sagesaver.core.grace import SCHEDULED_TAG, Stage, Step, announcement_key
from sagesaver.core.model import Action, Kind
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.core.pricing import Pricer, table_from_document
from sagesaver.core.rules.parking import parked
from sagesaver.demo.scaling import SCALING
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.ledger import SqliteLedger
from sagesaver.pipelines import parking_scale
from sagesaver.pipelines.acts import CLAIM_TAG, RunContext, act_on_endpoint
from sagesaver.pipelines.scan import scan
from sagesaver.pipelines.schedules import ScheduleRunResult, schedule_run
from tests.conftest import Cli
from tests.pipelines.test_parking_cheaper import (
    BEIJING,
    POLICY,
    PRICES,
    TUESDAY,
    WEDNESDAY,
    at,
    host,
    instances,
    names,
    queue,
    rows,
)

IDLE = "endpoints: {action: delete, grace_hours: 0, idle_hours: 2}\n"


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unpark polls every few milliseconds (AWS: every 15 s)."""
    monkeypatch.setattr(parking_scale, "POLL_SECONDS", 0.01)


@pytest.fixture(autouse=True)
def _instant_updates(sim: Simulator) -> Any:
    yield
    SCALING.clear()


def schedule_tick(
    policy: Policy, ledger: SqliteLedger, moment: datetime, wait_minutes: float | None = None
) -> ScheduleRunResult:
    """``schedule run --apply`` at ``moment`` (an unpark waits ``wait_minutes``)."""
    with time_machine.travel(moment, tick=False):
        pricer = Pricer(table=table_from_document({"regions": PRICES}))
        return schedule_run(
            Aws(), [BEIJING], policy, moment, True, ledger, None, pricer, wait_minutes
        )


def policy_file(tmp_path: Path, topic: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(f"{POLICY}{IDLE}notify: {{sns_topic_arn: '{topic}'}}\n")
    return path


def idle_run(cli: Cli, policy: Path, ledger: Path, moment: datetime) -> dict[str, Any]:
    """``sagesaver run --apply`` at ``moment``: its steps by endpoint name."""
    with time_machine.travel(moment, tick=False):
        _, document = cli.json(
            "run", "--region", BEIJING, "--policy", str(policy),
            "--ledger", str(ledger), "--apply",
        )  # fmt: skip
    return {s["name"]: s for s in document["enforcement"]}


def sagesaver_tags(sim: Simulator, name: str) -> set[str]:
    sagemaker = sim.client("sagemaker", BEIJING)
    arn = sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"]
    listed = sagemaker.list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"] for t in listed if t["Key"] in (SCHEDULED_TAG, CLAIM_TAG)}


def end_updates() -> None:
    """Every endpoint and component ``Updating`` now reads as done."""
    with SCALING.lock:
        SCALING.updating.clear()
        SCALING.updating_reads = 0


def test_the_idle_run_never_deletes_or_tags_an_endpoint_parked_by_scaling(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    topic = fleet.topic(BEIJING, "admins")
    path, store = policy_file(tmp_path, topic), tmp_path / "ledger.sqlite"
    policy, ledger = parse_policy(path.read_text()), SqliteLedger(store)
    queue(fleet, sim, "dev-queue")
    host(fleet, sim, "dev-llm", minimum=0)
    with time_machine.travel(at(TUESDAY, 9), tick=False):
        fleet.endpoint(BEIJING, "dev-idle")  # an ordinary idle endpoint: the run deletes it

    SCALING.updating_reads = 3  # each update reads Updating a while
    evening = schedule_tick(policy, ledger, at(TUESDAY, 21))
    assert not evening.errors, evening.errors
    done = rows(evening)
    assert done[("dev-queue", "park")]["applied"] and done[("dev-llm", "park")]["applied"]
    # dev-idle has no scalable target: parked by deletion, as before
    assert "dev-idle" not in names(sim)
    parked_names = {k[2] for k in parked(ledger.entries())}
    assert parked_names == {"dev-queue", "dev-llm", "dev-idle"}

    # on its way down (Updating), then at 0 instances or 0 copies (the host's instances stay)
    for moment in (at(TUESDAY, 21, 1), at(TUESDAY, 23)):
        steps = idle_run(cli, path, store, moment)
        for name in ("dev-queue", "dev-llm"):
            assert not (steps.get(name) or {}).get("applied"), steps.get(name)
            assert sagesaver_tags(sim, name) == set()
        assert {"dev-queue", "dev-llm"} <= names(sim)

    # on its way up: the unpark's wait ran out, the endpoint is not yet recorded as back
    end_updates()
    SCALING.updating_reads = 10_000
    morning = schedule_tick(policy, ledger, at(WEDNESDAY, 6, 40), wait_minutes=0.05)
    assert "coming back" in rows(morning)[("dev-queue", "unpark")]["outcome"]
    steps = idle_run(cli, path, store, at(WEDNESDAY, 6, 41))
    for name in ("dev-queue", "dev-llm"):
        assert not (steps.get(name) or {}).get("applied"), steps.get(name)
    end_updates()  # InService with its 2 instances; the ledger still has it parked
    assert instances(sim, "dev-queue") == {"AllTraffic": 2}
    steps = idle_run(cli, path, store, at(WEDNESDAY, 6, 45))
    queued = steps["dev-queue"]
    assert not queued["applied"], queued
    assert "parked by schedule office-beijing" in queued["outcome"], queued
    assert {"dev-queue", "dev-llm"} <= names(sim)
    for name in ("dev-queue", "dev-llm"):
        assert sagesaver_tags(sim, name) == set()
    assert not [e for e in ledger.entries() if e.action == "delete" and e.carried_out]

    # the next tick records it back: from then on it is an endpoint like any other
    later = schedule_tick(policy, ledger, at(WEDNESDAY, 6, 50))
    assert rows(later)[("dev-queue", "unpark")]["applied"], rows(later)
    assert "dev-queue" not in {k[2] for k in parked(ledger.entries())}


def test_the_guard_refuses_an_endpoint_parked_after_the_scan_chose_it(
    sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    """The idle scan saw an idle endpoint with its instances; a schedule parked it by scaling
    before the act (in AWS it reads InService with 0 instances once the update is over): the
    last-moment guard reads the ledger's open park and refuses, writing no tag."""
    policy: Policy = parse_policy(f"{POLICY}{IDLE}")
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    queue(fleet, sim, "dev-queue")
    seen = at(TUESDAY, 20, 55)
    with time_machine.travel(seen, tick=False):
        scanned = scan(Aws(), [BEIJING], policy, seen)
    (decision,) = [
        d
        for d in scanned.decisions
        if d.resource.kind is Kind.ENDPOINT and d.resource.name == "dev-queue"
    ]
    assert decision.action is Action.DELETE, decision
    resource = decision.resource
    ledger.record_announcement(announcement_key(resource), seen, seen, ["message-1"])
    evening = schedule_tick(policy, ledger, at(TUESDAY, 21))
    assert rows(evening)[("dev-queue", "park")]["applied"]
    moment = at(TUESDAY, 21, 2)
    step = Step(decision, Stage.ACT, "delete", None, decision.reason)
    context = RunContext("idle-run", moment, policy, ledger, lambda: moment)
    with time_machine.travel(moment, tick=False):
        outcome, status, backup = act_on_endpoint(Aws(), step, context)
    assert status.value == "skipped" and backup is None, outcome
    assert "parked by schedule office-beijing" in outcome
    assert "dev-queue" in names(sim) and instances(sim, "dev-queue") == {"AllTraffic": 0}
    assert sagesaver_tags(sim, "dev-queue") == set()
    assert ledger.open_leases() == []


def test_ledger_backups_lists_backups_and_leaves_scaling_snapshots_out(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    """A scaled park's snapshot is no backup (restore never picks it): ``sagesaver backups``
    lists the deletion park's backup only, and says how many snapshots it left out."""
    policy, store = parse_policy(POLICY), tmp_path / "ledger.sqlite"
    ledger = SqliteLedger(store)
    queue(fleet, sim, "dev-queue")
    with time_machine.travel(at(TUESDAY, 9), tick=False):
        fleet.endpoint(BEIJING, "dev-idle")
    evening = schedule_tick(policy, ledger, at(TUESDAY, 21))
    assert not evening.errors, evening.errors
    assert {b.name for b in ledger.backups()} == {"dev-queue:scaled", "dev-idle"}
    code, listed = cli.json("backups", "--ledger", str(store))
    assert code == 0
    assert [b["name"] for b in listed["backups"]] == ["dev-idle"]
    assert listed["backups"][0]["models"] == 1
    assert listed["scaling_snapshots_left_out"] == 1
    table = cli("backups", "--ledger", str(store))
    assert table.exit_code == 0, table.stderr
    assert "dev-queue" not in table.stdout.replace("\n", " ").split("not listed")[0]
    assert "1 scaling snapshot" in table.stdout and "not listed" in table.stdout
    rows = cli("backups", "--ledger", str(store), "-o", "csv")
    assert "dev-queue" not in rows.stdout and "dev-idle" in rows.stdout
