"""One ledger interface, two stores (SQLite file, DynamoDB table on the moto server): the same
tests for both."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sagesaver.aws.session import Aws
from sagesaver.core.errors import InputError
from sagesaver.demo.simulator import Simulator
from sagesaver.ledger import Backup, Entry, Ledger, Outcome, SqliteLedger, open_ledger
from sagesaver.ledger.dynamodb import create_table

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, sim: Simulator) -> Ledger:
    if request.param == "sqlite":
        return open_ledger(str(tmp_path / "ledger.sqlite"))
    create_table(Aws(), "us-east-1", "sagesaver-ledger")
    return open_ledger("dynamodb://us-east-1/sagesaver-ledger")


def entry(at: datetime, name: str = "ep", action: str = "delete", **extra: object) -> Entry:
    values: dict[str, object] = {
        "at": at,
        "account": "123456789012",
        "region": "us-east-1",
        "kind": "endpoint",
        "resource": name,
        "action": action,
        "rule": "idle-endpoint",
        "reason": "idle 30 h",
        "hourly_cost": 0.23,
        "dry_run": False,
        "outcome": "deleted",
        "tags": {"team": "ml"},
    }
    values.update(extra)
    return Entry(**values)  # type: ignore[arg-type]


def test_schedule_runs(ledger: Ledger) -> None:
    assert ledger.last_schedule_run("office", "us-east-1") is None
    ledger.set_schedule_run("office", "us-east-1", T0)
    ledger.set_schedule_run("office", "us-east-1", T0 + timedelta(minutes=10))
    ledger.set_schedule_run("office", "eu-west-1", T0)
    assert ledger.last_schedule_run("office", "us-east-1") == T0 + timedelta(minutes=10)
    assert ledger.last_schedule_run("office", "eu-west-1") == T0


def test_entries_round_trip_in_time_order(ledger: Ledger) -> None:
    later = entry(T0 + timedelta(hours=2), "b", "stop", hourly_cost=None, backup_ref="bk-1")
    ledger.record(later)
    ledger.record(entry(T0, "a"))
    assert [e.resource for e in ledger.entries()] == ["a", "b"]
    assert ledger.entries()[1] == later
    assert [e.resource for e in ledger.entries(since=T0 + timedelta(hours=1))] == ["b"]


def test_the_end_of_a_released_pool_round_trips(ledger: Ledger) -> None:
    until = T0 + timedelta(minutes=45)
    released = entry(T0, "tune-7", "release", kind="training-job", off_until=until)
    ledger.record(released)
    ledger.record(entry(T0 + timedelta(minutes=1), "ep"))
    assert [e.off_until for e in ledger.entries()] == [until, None]
    assert ledger.entries()[0] == released


def test_a_ledger_of_an_earlier_version_gains_the_new_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the entries table as an earlier version made it
        db.execute(
            "CREATE TABLE entries (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
            " account TEXT NOT NULL, region TEXT NOT NULL, kind TEXT NOT NULL,"
            " resource TEXT NOT NULL, action TEXT NOT NULL, rule TEXT NOT NULL,"
            " reason TEXT NOT NULL, hourly_cost_usd REAL, dry_run INTEGER NOT NULL,"
            " outcome TEXT NOT NULL, backup_ref TEXT)"
        )
        db.execute(
            "INSERT INTO entries (at, account, region, kind, resource, action, rule, reason,"
            " hourly_cost_usd, dry_run, outcome) VALUES (?, '1', 'us-east-1', 'endpoint', 'ep',"
            " 'delete', 'r', 'x', 0.5, 0, 'deleted')",
            (T0.isoformat(),),
        )
    read_only = SqliteLedger(path, read_only=True)  # not migrated: still readable
    assert [(e.resource, e.tags, e.off_until) for e in read_only.entries()] == [("ep", {}, None)]
    assert [e.status for e in read_only.entries()] == [Outcome.DONE]  # from its text
    writable = SqliteLedger(path)
    writable.record(entry(T0, "tune-7", "release", off_until=T0 + timedelta(hours=1)))
    assert [e.off_until for e in writable.entries()] == [None, T0 + timedelta(hours=1)]
    assert [e.status for e in writable.entries()] == [Outcome.DONE, Outcome.DONE]


def test_the_typed_outcome_round_trips(ledger: Ledger) -> None:
    """The type is kept as written, whatever the text says."""
    ledger.record(entry(T0, "a", outcome="deleted", status=Outcome.SKIPPED))
    ledger.record(
        entry(T0 + timedelta(seconds=1), "b", outcome="deleted (confirmed by a later run)")
    )
    ledger.record(entry(T0 + timedelta(seconds=2), "c", outcome="sent", status=Outcome.UNCONFIRMED))
    assert [(e.resource, e.status, e.carried_out) for e in ledger.entries()] == [
        ("a", Outcome.SKIPPED, False),
        ("b", Outcome.CONFIRMED, True),
        ("c", Outcome.UNCONFIRMED, False),
    ]


def test_claims_are_taken_once(ledger: Ledger) -> None:
    assert ledger.claim("arn:1|delete", T0) is True
    assert ledger.claim("arn:1|delete", T0) is False
    assert ledger.claim("arn:2|delete", T0) is True


def test_concurrent_claims_have_exactly_one_winner(ledger: Ledger) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(ledger.claim("arn:contested|delete", T0))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_backups_newest_first_and_filtered(ledger: Ledger) -> None:
    document = {"endpoint": {"EndpointName": "ep"}, "models": [{"spec": {"ModelName": "m"}}]}
    ledger.save_backup(Backup("b1", T0, "123456789012", "us-east-1", "ep", document))
    ledger.save_backup(
        Backup("b2", T0 + timedelta(days=1), "123456789012", "us-east-1", "ep", document)
    )
    ledger.save_backup(Backup("b3", T0, "123456789012", "eu-west-1", "other", document))
    assert [b.id for b in ledger.backups("ep")] == ["b2", "b1"]
    assert [b.id for b in ledger.backups(region="eu-west-1")] == ["b3"]
    assert ledger.backups("ep")[0].document == document


def test_a_backup_of_a_deletion_that_did_not_happen_is_dropped(ledger: Ledger) -> None:
    document = {"endpoint": {"EndpointName": "ep"}}
    ledger.save_backup(Backup("b1", T0, "123456789012", "us-east-1", "ep", document))
    ledger.save_backup(Backup("b2", T0, "123456789012", "us-east-1", "ep", document))
    ledger.drop_backup("b1")
    ledger.drop_backup("missing")  # nothing to drop is not an error
    assert [b.id for b in ledger.backups("ep")] == ["b2"]


def test_bad_ledger_locations_are_input_errors(sim: Simulator, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="use a file path or dynamodb://"):
        open_ledger("s3://bucket/ledger")
    with pytest.raises(InputError, match="dynamodb://us-east-1/missing"):
        open_ledger("dynamodb://us-east-1/missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot open the ledger"):
        SqliteLedger(tmp_path / "file" / "ledger.sqlite")


def test_the_table_keeps_remembered_configurations_in_parts(sim: Simulator) -> None:
    from sagesaver.ledger.dynamodb import CACHE_PART_BYTES, DynamoConfigStore, DynamoLedger

    create_table(Aws(), "us-east-1", "sagesaver-ledger")
    table = DynamoLedger(Aws(), "us-east-1", "sagesaver-ledger")
    store = DynamoConfigStore(table)
    assert store.load() is None
    big = bytes(range(256)) * (CACHE_PART_BYTES * 2 // 256 + 7)  # three parts
    store.save(big)
    assert store.load() == big
    store.save(b"small")  # fewer parts than before: the old ones are ignored
    assert store.load() == b"small"
    # A part left by another write (torn by a concurrent run) is never mixed in.
    store.save(big)
    client = Aws().client("dynamodb", "us-east-1")
    client.put_item(
        TableName="sagesaver-ledger",
        Item={
            "pk": {"S": "cache#endpoint-configs"},
            "sk": {"S": "part#0001"},
            "write": {"S": "another-write"},
            "data": {"B": b"x"},
        },
    )
    assert store.load() is None


def test_when_each_kind_was_last_seen_whole_never_moves_back(ledger: Ledger) -> None:
    assert ledger.seen() == {}
    ledger.mark_seen("endpoint", T0 + timedelta(hours=2))
    ledger.mark_seen("endpoint", T0)  # a slower run that began earlier: kept as it was
    ledger.mark_seen("notebook", T0)
    assert ledger.seen() == {"endpoint": T0 + timedelta(hours=2), "notebook": T0}
