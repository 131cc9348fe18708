"""Deletion under faults: a run killed at each step of enforcement, lost answers, two ledgers,
forged deadlines, and a digest that cannot be sent.

A kill is simulated by raising :class:`Killed` (not an AWS error) at one step and making the
clean-up of the run a no-op, as a killed process runs no more code. The next run comes after
the lease has expired. After it, for every step: nothing was deleted without a backup, nothing
twice, nothing is left stuck, and the deletion is in the ledger exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.aws import endpoints as aws_endpoints
from sagesaver.core.grace import SCHEDULED_TAG, parse_tag
from sagesaver.demo.simulator import ACCOUNT_ID, Fault, Fleet, Simulator
from sagesaver.ledger import BACKED_UP, DELETE_SENT, SqliteLedger
from sagesaver.pipelines import acts
from tests.conftest import Cli
from tests.pipelines.test_enforce import announced_and_due

EAST = "us-east-1"
OLD = timedelta(days=5)
LATER = acts.LEASE + timedelta(minutes=5)


class Killed(BaseException):
    """The process dies here."""


def endpoints_left() -> set[str]:
    from moto.sagemaker.models import sagemaker_backends

    return set(sagemaker_backends[ACCOUNT_ID][EAST].endpoints)


def tags_of(sim: Simulator, arn: str) -> dict[str, str]:
    found = sim.client("sagemaker", EAST).list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"]: t["Value"] for t in found}


@pytest.fixture
def setup(fleet: Fleet, tmp_path: Path) -> dict[str, str]:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"endpoints: {{action: delete, grace_hours: 24}}\nnotify: {{sns_topic_arn: '{topic}'}}\n"
    )
    return {"policy": str(policy), "ledger": str(tmp_path / "ledger.sqlite"), "topic": topic}


def run(cli: Cli, setup: dict[str, str], ledger: str | None = None) -> tuple[int, dict[str, Any]]:
    return cli.json(
        "run", "--region", EAST, "--policy", setup["policy"],
        "--ledger", ledger or setup["ledger"], "--apply",
    )  # fmt: skip


def kill_before(target: Callable[..., Any]) -> Callable[..., Any]:
    def killed(*args: Any, **kwargs: Any) -> Any:
        raise Killed

    return killed


def kill_after(target: Callable[..., Any]) -> Callable[..., Any]:
    def killed(*args: Any, **kwargs: Any) -> Any:
        target(*args, **kwargs)
        raise Killed

    return killed


def kill_at_state(state: str) -> Callable[..., Any]:
    real = acts._advance

    def advance(ctx: Any, key: str, reached: str, backup_id: str | None = None) -> None:
        if reached == state:
            raise Killed
        real(ctx, key, reached, backup_id)

    return advance


def kill_on_done(real: Callable[..., Any]) -> Callable[..., Any]:
    def advance(self: Any, key: str, holder: str, state: str, backup_id: str | None = None) -> Any:
        if state == "done":
            raise Killed
        return real(self, key, holder, state, backup_id)

    return advance


# Where the first run dies: (patched object, attribute, replacement factory).
KILL_POINTS: dict[str, tuple[Any, str, Callable[[Any], Any]]] = {
    "1 after the lease, before the claim tag": (acts, "_claim_on_resource", kill_before),
    "2 after the claim tag, before the backup": (aws_endpoints, "backup", kill_before),
    "3 after the backup, before it is recorded": (
        acts, "_advance", lambda _: kill_at_state(BACKED_UP),
    ),
    "4 after the backup, before the delete is sent": (
        acts, "_advance", lambda _: kill_at_state(DELETE_SENT),
    ),
    "5 as the delete is sent": (aws_endpoints, "delete", kill_before),
    "6 right after the delete": (aws_endpoints, "delete", kill_after),
    "7 after the ledger entry, before the lease is closed": (
        SqliteLedger, "advance_lease", kill_on_done,
    ),
}  # fmt: skip


def killed_run(
    cli: Cli,
    setup: dict[str, str],
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    attribute: str,
    replacement: Any,
) -> None:
    """A ``run --apply`` at ``now`` whose process dies where ``replacement`` raises."""
    with monkeypatch.context() as patch, time_machine.travel(now, tick=False):
        patch.setattr(owner, attribute, replacement)
        patch.setattr(acts, "_release", lambda *args: None)  # a dead process cleans nothing
        with pytest.raises(Killed):
            cli.runner.invoke(
                cli_app(),
                ["run", "--region", EAST, "--policy", setup["policy"],
                 "--ledger", setup["ledger"], "--apply"],
                catch_exceptions=False,
            )  # fmt: skip


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_run_killed_at_any_step_is_finished_by_the_next_one(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    setup: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    arn = fleet.endpoint(EAST, "doomed", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    owner, attribute, factory = KILL_POINTS[point]
    replacement = factory(getattr(owner, attribute))
    killed_run(cli, setup, now, monkeypatch, owner, attribute, replacement)
    # In between, no backup is listed as the backup of a deletion that is not recorded.
    code, listed = cli.json("backups", "--ledger", setup["ledger"])
    assert code == 0
    recorded = {e.backup_ref for e in SqliteLedger(Path(setup["ledger"])).entries()}
    for row in listed["backups"]:
        assert row["deletion"] == ("recorded" if row["id"] in recorded else "pending"), row

    with time_machine.travel(now + LATER, tick=False):
        code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    ledger = SqliteLedger(Path(setup["ledger"]))
    deleted = [e for e in ledger.entries() if e.action == "delete" and e.resource == "doomed"]
    assert "doomed" not in endpoints_left()  # finished
    assert len(deleted) == 1, deleted  # recorded exactly once
    # never without a backup, and one backup for one deletion
    assert [b.id for b in ledger.backups("doomed")] == [deleted[0].backup_ref]
    code, listed = cli.json("backups", "--ledger", setup["ledger"])
    assert [row["deletion"] for row in listed["backups"]] == ["recorded"]
    deletes = sim.middleware.counts["DeleteEndpoint"]
    assert deletes <= 2  # the killed "as the delete is sent" never reached AWS
    assert ledger.open_leases() == []  # nothing stuck

    with time_machine.travel(now + 2 * LATER, tick=False):
        sim.middleware.counts.clear()
        code, doc = run(cli, setup)
    assert code == 0 and doc["enforcement"] == []
    assert "DeleteEndpoint" not in sim.middleware.counts


def cli_app() -> Any:
    from sagesaver.cli import app

    return app


def test_a_delete_whose_answer_was_lost_is_a_success(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    """The first DeleteEndpoint is carried out but its answer is lost; the retry is told
    'Could not find endpoint'. That is a deletion, with its backup recorded."""
    arn = fleet.endpoint(EAST, "lost-answer", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    sent: list[str] = []

    def lose_the_answer(operation: str, region: str, environ: Any) -> Fault | None:
        if operation == "DeleteEndpoint" and not sent:
            sent.append(operation)
            from moto.sagemaker.models import sagemaker_backends

            sagemaker_backends[ACCOUNT_ID][EAST].delete_endpoint("lost-answer")
            return Fault(500, "InternalFailure", "the answer was lost")
        return None

    sim.middleware.fault = lose_the_answer  # type: ignore[assignment]
    code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    [step] = doc["enforcement"]
    assert step["applied"] and step["outcome"].startswith("deleted") and step["backup_id"]
    [entry] = [e for e in SqliteLedger(Path(setup["ledger"])).entries() if e.action == "delete"]
    assert entry.backup_ref == step["backup_id"]


def test_two_runs_with_two_ledgers_delete_once(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    setup: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two operators, two ledgers: the claim tag on the endpoint makes them agree. The second
    run comes in while the first holds the claim (it is paused right after the claim)."""
    arn = fleet.endpoint(EAST, "shared", changed=now - OLD)
    other = str(tmp_path / "laptop-2.sqlite")
    announced_and_due(sim, setup["ledger"], arn)
    announced_and_due(sim, other, arn)
    real_backup = aws_endpoints.backup
    second: list[tuple[int, dict[str, Any]]] = []

    def backup_while_another_run_comes(*args: Any, **kwargs: Any) -> Any:
        if not second:
            second.append(run(cli, setup, other))  # the other laptop, same moment
        return real_backup(*args, **kwargs)

    monkeypatch.setattr(aws_endpoints, "backup", backup_while_another_run_comes)
    code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    [(other_code, other_doc)] = second
    assert other_code == 0
    assert other_doc["enforcement"][0]["outcome"].startswith("skipped: another run")
    assert doc["enforcement"][0]["outcome"].startswith("deleted")
    assert sim.middleware.counts["DeleteEndpoint"] == 1
    assert SqliteLedger(Path(other)).backups("shared") == []
    assert "shared" not in endpoints_left()


def test_restore_says_where_a_backup_in_another_ledger_is(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str], tmp_path: Path
) -> None:
    arn = fleet.endpoint(EAST, "elsewhere", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    code, doc = run(cli, setup)
    assert code == 0 and doc["enforcement"][0]["backup_location"].startswith(setup["ledger"])
    message = fleet.published(setup["topic"])[0]["Message"]
    assert f"backup kept in {setup['ledger']}" in message
    mine = tmp_path / "mine.sqlite"
    SqliteLedger(mine)  # a teammate's own ledger, which does not hold this backup
    result = cli("restore", "elsewhere", "--region", EAST, "--ledger", str(mine))
    assert result.exit_code == 2
    # Named by its file only: the tag it is read from carries no local path (issue 29).
    named = (
        f"SQLite ledger {Path(setup['ledger']).name} (backup {doc['enforcement'][0]['backup_id']})"
    )
    assert named in result.stderr and setup["ledger"] not in result.stderr


def test_a_forged_deadline_is_announced_afresh_not_acted_on(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    arn = fleet.endpoint(EAST, "never-announced", changed=now - OLD)
    sim.client("sagemaker", EAST).add_tags(
        ResourceArn=arn,
        Tags=[{"Key": SCHEDULED_TAG, "Value": "delete@1970-01-01T00:00:00Z"}],
    )
    code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    [step] = doc["enforcement"]
    assert step["stage"] == "announce" and "not announced by SageSaver" in step["reason"]
    assert "never-announced" in endpoints_left()
    deadline = parse_tag(tags_of(sim, arn)[SCHEDULED_TAG])
    assert deadline is not None and deadline[1] > now + timedelta(hours=23)
    assert "never-announced" in fleet.published(setup["topic"])[0]["Message"]


def test_an_announced_deadline_cannot_be_brought_forward(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    arn = fleet.endpoint(EAST, "announced", changed=now - OLD)
    with time_machine.travel(now, tick=False):
        assert run(cli, setup)[0] == 0  # announced: deadline now + 24 h
    sim.client("sagemaker", EAST).add_tags(
        ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": "delete@2000-01-01T00:00:00Z"}]
    )
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        code, doc = run(cli, setup)
    assert code == 0 and doc["enforcement"][0]["stage"] == "wait"
    assert "announced" in endpoints_left()
    with time_machine.travel(now + timedelta(hours=25), tick=False):
        code, doc = run(cli, setup)
    assert code == 0 and doc["enforcement"][0]["outcome"].startswith("deleted")


def test_nothing_is_deleted_when_the_digest_cannot_be_sent(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    arn = fleet.endpoint(EAST, "due", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)

    def sns_down(operation: str, region: str, _: object) -> Fault | None:
        return Fault(403, "AuthorizationError", "not allowed") if operation == "Publish" else None

    sim.middleware.fault = sns_down  # type: ignore[assignment]
    code, doc = run(cli, setup)
    assert code == 1
    assert "due" in endpoints_left()
    assert sim.middleware.counts["DeleteEndpoint"] == 0
    [step] = doc["enforcement"]
    assert step["applied"] is False and "digest" in step["outcome"]
    assert [e["operation"] for e in doc["errors"]] == ["Publish"]

    sim.middleware.fault = None
    code, doc = run(cli, setup)  # SNS is back: announced first, then deleted
    assert code == 0 and doc["enforcement"][0]["outcome"].startswith("deleted")


def test_recovery_that_cannot_read_the_state_keeps_the_lease_for_the_next_run(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    setup: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run dies right after DeleteEndpoint; the run that recovers it cannot read the
    endpoint (DescribeEndpoint fails): the lease keeps what it knew (delete sent, the backup),
    so the run after records the deletion once, instead of it never being recorded."""
    arn = fleet.endpoint(EAST, "doomed", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    killed = kill_after(aws_endpoints.delete)
    killed_run(cli, setup, now, monkeypatch, aws_endpoints, "delete", killed)
    assert "doomed" not in endpoints_left()

    def unreadable(operation: str, region: str, _: object) -> Fault | None:
        if operation == "DescribeEndpoint":
            return Fault(500, "InternalFailure", "try again")
        return None

    sim.middleware.fault = unreadable
    with time_machine.travel(now + LATER, tick=False):
        code, doc = run(cli, setup)
    assert code == 1 and any(e["operation"] == "recover" for e in doc["errors"])
    ledger = SqliteLedger(Path(setup["ledger"]))
    [lease] = ledger.open_leases()
    assert lease.state == DELETE_SENT and lease.backup_id is not None  # nothing forgotten

    sim.middleware.fault = None
    with time_machine.travel(now + 3 * LATER, tick=False):
        code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    deleted = [e for e in ledger.entries() if e.action == "delete" and e.resource == "doomed"]
    assert len(deleted) == 1 and deleted[0].backup_ref == lease.backup_id
    assert ledger.open_leases() == []


def test_a_deletion_the_ledger_cannot_record_is_a_deletion_recorded_by_the_next_run(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    setup: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ledger refuses every write of the deletion's entry (a throttled table, a locked
    file): the deletion happened, so it is reported as one, never as 'failed'; the next run
    records it once from AWS."""
    import sqlite3

    arn = fleet.endpoint(EAST, "doomed", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    real = SqliteLedger.record

    def refused(self: SqliteLedger, entry: Any) -> None:
        if entry.action == "delete":
            raise sqlite3.OperationalError("database is locked")
        real(self, entry)

    with monkeypatch.context() as patch, time_machine.travel(now, tick=False):
        patch.setattr(SqliteLedger, "record", refused)
        patch.setattr("time.sleep", lambda seconds: None)
        code, doc = run(cli, setup)
    [step] = doc["enforcement"]
    assert step["applied"] and step["status"] == "done" and step["outcome"].startswith("deleted")
    assert "not yet in the ledger (OperationalError: database is locked)" in step["outcome"]
    assert "doomed" not in endpoints_left()

    with time_machine.travel(now + LATER, tick=False):
        code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    ledger = SqliteLedger(Path(setup["ledger"]))
    deleted = [e for e in ledger.entries() if e.action == "delete" and e.resource == "doomed"]
    assert len(deleted) == 1 and deleted[0].backup_ref == step["backup_id"]
    assert ledger.open_leases() == []


def test_a_delete_whose_result_cannot_be_read_keeps_its_backup_and_lease(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    """DeleteEndpoint is carried out but every answer is lost, and the endpoint cannot be
    read afterwards: whether it was deleted is unknown. It is not reported 'failed', its
    backup is kept and its lease stays open; the next run records the deletion once."""
    arn = fleet.endpoint(EAST, "doomed", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    deleted: list[str] = []

    def lost(operation: str, region: str, environ: Any) -> Fault | None:
        if operation == "DeleteEndpoint":
            if not deleted:
                from moto.sagemaker.models import sagemaker_backends

                sagemaker_backends[ACCOUNT_ID][EAST].delete_endpoint("doomed")
                deleted.append("doomed")
            return Fault(500, "InternalFailure", "the answer was lost")
        if operation == "DescribeEndpoint" and deleted:
            return Fault(500, "InternalFailure", "try again")
        return None

    sim.middleware.fault = lost  # type: ignore[assignment]
    with time_machine.travel(now, tick=True):
        code, doc = run(cli, setup)
    [step] = doc["enforcement"]
    assert step["status"] == "unconfirmed" and not step["applied"], step
    assert "not confirmed" in step["outcome"]
    ledger = SqliteLedger(Path(setup["ledger"]))
    [lease] = ledger.open_leases()
    assert lease.state == DELETE_SENT and lease.backup_id is not None
    assert [b.id for b in ledger.backups("doomed")] == [lease.backup_id]

    sim.middleware.fault = None
    with time_machine.travel(now + LATER, tick=False):
        code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    entries = [e for e in ledger.entries() if e.carried_out]
    assert [(e.action, e.backup_ref) for e in entries] == [("delete", lease.backup_id)]
    assert ledger.open_leases() == []


LEDGER_WRITES = (
    "record", "record_announcement", "take_lease", "advance_lease", "save_backup",
    "record_digest", "drop_backup", "claim",
)  # fmt: skip


def test_a_full_disk_stops_every_act_and_says_so_without_a_traceback(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    setup: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ledger's disk fills up after the scan: no act happens without its record, the run
    says which ledger could not record what, goes on with the other resources, and exits 1."""
    import sqlite3

    from sagesaver.cli import app

    arn = fleet.endpoint(EAST, "doomed", changed=now - OLD)
    fleet.endpoint(EAST, "second", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)

    def full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    for method in LEDGER_WRITES:
        monkeypatch.setattr(SqliteLedger, method, full)
    with time_machine.travel(now, tick=False):
        result = cli.runner.invoke(
            app,
            ["run", "--region", EAST, "--policy", setup["policy"],
             "--ledger", setup["ledger"], "--apply"],
        )  # fmt: skip
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert {"doomed", "second"} <= endpoints_left()  # nothing deleted without its record
    assert "DeleteEndpoint" not in sim.middleware.counts
    expected = f"the ledger {setup['ledger']} could not record the act's intent"
    assert expected in result.stderr and "database or disk is full" in result.stderr
    assert "act doomed (us-east-1): failed:" in result.stdout
    assert "announce second (us-east-1)" in result.stdout  # the others went on


def test_the_command_ends_a_ledger_failure_with_its_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    import sagesaver.cli as cli_module

    def fails() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(cli_module, "app", fails)
    with pytest.raises(SystemExit) as ended:
        cli_module.main()
    assert ended.value.code == 1
    assert "the ledger file failed: OperationalError: database or disk is full" in (
        capsys.readouterr().err
    )
