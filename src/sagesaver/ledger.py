"""The ledger: what SageSaver did, and when each schedule last ran.

One interface, :class:`Ledger`; a local SQLite store (:class:`SqliteLedger`, the default under the
user's data directory). Writes are small transactions, so two processes can share a file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from platformdirs import user_data_dir

from sagesaver.errors import InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS schedule_runs (
    schedule TEXT NOT NULL,
    region TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (schedule, region)
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    kind TEXT NOT NULL,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    hourly_cost_usd REAL,
    dry_run INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    backup_ref TEXT,
    tags TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at);
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS backups_name ON backups (name, at);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Entry:
    """One decision acted on (or skipped by a guard), as the ledger keeps it."""

    at: datetime
    account: str
    region: str
    kind: str
    resource: str
    action: str
    rule: str
    reason: str
    hourly_cost_usd: float | None
    dry_run: bool
    outcome: str
    backup_ref: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Backup:
    """A stored backup of a deleted resource."""

    id: str
    at: datetime
    account: str
    region: str
    name: str
    document: dict[str, Any]


class Ledger(Protocol):
    """Where runs and actions are recorded."""

    def last_schedule_run(self, schedule: str, region: str) -> datetime | None:
        """When ``schedule`` last ran (with --apply) in ``region``, or None."""
        ...

    def set_schedule_run(self, schedule: str, region: str, at: datetime) -> None:
        """Record that ``schedule`` ran in ``region`` at ``at``."""
        ...

    def record(self, entry: Entry) -> None:
        """Append one entry."""
        ...

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """Entries at or after ``since``, oldest first."""
        ...

    def claim(self, key: str, at: datetime) -> bool:
        """Take ``key`` once: True for the first caller ever, False for every later one.

        Two runs that would act on the same resource at the same time both try to claim it;
        only one wins, so no action is ever taken twice.
        """
        ...

    def save_backup(self, backup: Backup) -> None:
        """Store a backup."""
        ...

    def backups(self, name: str | None = None, region: str | None = None) -> list[Backup]:
        """Stored backups, newest first, optionally of one resource name and region."""
        ...


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


class SqliteLedger:
    """A :class:`Ledger` in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.executescript(SCHEMA)
                columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
                if "tags" not in columns:  # a ledger written by an earlier version
                    db.execute("ALTER TABLE entries ADD COLUMN tags TEXT NOT NULL DEFAULT '{}'")
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"--ledger {path}: cannot open the ledger: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                with db:
                    yield db
            finally:
                db.close()

    def last_schedule_run(self, schedule: str, region: str) -> datetime | None:
        """When ``schedule`` last ran in ``region``, or None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT at FROM schedule_runs WHERE schedule = ? AND region = ?", (schedule, region)
            ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def set_schedule_run(self, schedule: str, region: str, at: datetime) -> None:
        """Record the run (replacing the previous one)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO schedule_runs (schedule, region, at) VALUES (?, ?, ?) "
                "ON CONFLICT (schedule, region) DO UPDATE SET at = excluded.at",
                (schedule, region, _iso(at)),
            )

    def record(self, entry: Entry) -> None:
        """Append one entry."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO entries (at, account, region, kind, resource, action, rule, reason,"
                " hourly_cost_usd, dry_run, outcome, backup_ref, tags)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _iso(entry.at),
                    entry.account,
                    entry.region,
                    entry.kind,
                    entry.resource,
                    entry.action,
                    entry.rule,
                    entry.reason,
                    entry.hourly_cost_usd,
                    int(entry.dry_run),
                    entry.outcome,
                    entry.backup_ref,
                    json.dumps(entry.tags, sort_keys=True),
                ),
            )

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """Entries at or after ``since``, oldest first."""
        query = (
            "SELECT at, account, region, kind, resource, action, rule, reason, hourly_cost_usd,"
            " dry_run, outcome, backup_ref, tags FROM entries"
        )
        params: tuple[str, ...] = ()
        if since is not None:
            query += " WHERE at >= ?"
            params = (_iso(since),)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY at, id", params).fetchall()
        return [
            Entry(
                at=datetime.fromisoformat(r[0]),
                account=r[1],
                region=r[2],
                kind=r[3],
                resource=r[4],
                action=r[5],
                rule=r[6],
                reason=r[7],
                hourly_cost_usd=r[8],
                dry_run=bool(r[9]),
                outcome=r[10],
                backup_ref=r[11],
                tags=json.loads(r[12] or "{}"),
            )
            for r in rows
        ]

    def claim(self, key: str, at: datetime) -> bool:
        """Take ``key`` once (a primary-key insert: the database arbitrates)."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO claims (key, at) VALUES (?, ?)", (key, _iso(at))
            )
            return cursor.rowcount == 1

    def save_backup(self, backup: Backup) -> None:
        """Store a backup."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO backups (id, at, account, region, name, document)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    backup.id,
                    _iso(backup.at),
                    backup.account,
                    backup.region,
                    backup.name,
                    json.dumps(backup.document, default=str, sort_keys=True),
                ),
            )

    def backups(self, name: str | None = None, region: str | None = None) -> list[Backup]:
        """Stored backups, newest first."""
        query = "SELECT id, at, account, region, name, document FROM backups WHERE 1 = 1"
        params: list[str] = []
        if name is not None:
            query += " AND name = ?"
            params.append(name)
        if region is not None:
            query += " AND region = ?"
            params.append(region)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY at DESC, id DESC", params).fetchall()
        return [
            Backup(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4], json.loads(r[5]))
            for r in rows
        ]


def default_ledger_path() -> Path:
    """``ledger.sqlite`` in the user's data directory."""
    return Path(user_data_dir("sagesaver")) / "ledger.sqlite"


def open_ledger(spec: str | None, default_region: str | None = None) -> Ledger:
    """The ledger named by ``--ledger``: a file path (default: the user's data directory), or
    ``dynamodb://TABLE`` / ``dynamodb://REGION/TABLE`` for a DynamoDB table."""
    if spec is None:
        return SqliteLedger(default_ledger_path())
    if spec.startswith("dynamodb://"):
        from sagesaver.aws.dynamo_ledger import DynamoLedger
        from sagesaver.aws.session import Aws

        aws = Aws()
        location = spec.removeprefix("dynamodb://").strip("/")
        region, _, table = location.rpartition("/")
        region = region or default_region or aws.default_region or ""
        if not table or not region:
            raise InputError(
                f"--ledger {spec}: use dynamodb://TABLE (with a default region) "
                "or dynamodb://REGION/TABLE"
            )
        return DynamoLedger(aws, region, table)
    if "://" in spec:
        raise InputError(f"--ledger {spec}: use a file path or dynamodb://[REGION/]TABLE")
    return SqliteLedger(Path(spec).expanduser())
