"""The ledger: what SageSaver did, and when each schedule last ran.

One interface, :class:`Ledger`; a local SQLite store (:class:`SqliteLedger`, the default under the
user's data directory). Writes are small transactions, so two processes can share a file.
"""

from __future__ import annotations

import json
import os
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
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    at TEXT NOT NULL,
    expires TEXT NOT NULL,
    state TEXT NOT NULL,
    backup_id TEXT,
    subject TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS announcements (
    key TEXT NOT NULL,
    deadline TEXT NOT NULL,
    at TEXT NOT NULL,
    message_ids TEXT NOT NULL,
    PRIMARY KEY (key, deadline)
);
"""

# The steps of one enforcement, in order. A lease in an open state that has expired belongs to
# a run that stopped half-way: the next run checks the real state and finishes or releases it.
CLAIMED, BACKED_UP, DELETE_SENT, DONE, RELEASED = (
    "claimed",
    "backed-up",
    "delete-sent",
    "done",
    "released",
)
OPEN_STATES = (CLAIMED, BACKED_UP, DELETE_SENT)


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


@dataclass(frozen=True)
class Lease:
    """A run's claim on acting on one resource, valid until ``expires``, and how far it got.

    ``subject`` says what the claim is about (kind, account, region, name, arn, created), so a
    later run can check the real state of a resource whose run stopped half-way.
    """

    key: str
    holder: str
    at: datetime
    expires: datetime
    state: str
    backup_id: str | None = None
    subject: dict[str, str] = field(default_factory=dict)


class Ledger(Protocol):
    """Where runs and actions are recorded."""

    @property
    def location(self) -> str:
        """Where this ledger is, as ``--ledger`` takes it."""
        ...

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

    def is_claimed(self, key: str) -> bool:
        """True when :meth:`claim` has taken ``key``."""
        ...

    def take_lease(
        self, key: str, holder: str, at: datetime, expires: datetime, subject: dict[str, str]
    ) -> bool:
        """Claim ``key`` for ``holder`` until ``expires``: True when taken.

        It can be taken when nobody holds it, when it was released, or when its lease expired
        before ``at`` without being done. A lease that is ``done`` is never taken again. Of
        concurrent callers exactly one wins.
        """
        ...

    def advance_lease(
        self, key: str, holder: str, state: str, backup_id: str | None = None
    ) -> bool:
        """Record that ``holder`` reached ``state`` (and the backup it took). False, and
        nothing written, when ``holder`` no longer holds the lease."""
        ...

    def open_leases(self) -> list[Lease]:
        """Leases not done nor released (live or expired), oldest first."""
        ...

    def record_announcement(
        self, key: str, deadline: datetime, at: datetime, message_ids: list[str]
    ) -> None:
        """Record that SageSaver announced ``deadline`` for ``key`` in a digest that was sent."""
        ...

    def announced_deadlines(self, keys: list[str]) -> dict[str, datetime]:
        """For each key, the deadline of its latest announcement (absent: never announced)."""
        ...

    def save_backup(self, backup: Backup) -> None:
        """Store a backup."""
        ...

    def backups(self, name: str | None = None, region: str | None = None) -> list[Backup]:
        """Stored backups, newest first, optionally of one resource name and region."""
        ...


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def stamp(moment: datetime) -> str:
    """A UTC time that sorts as text (always with microseconds): for comparisons in a store."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


class SqliteLedger:
    """A :class:`Ledger` in one SQLite file.

    The file and any folder made for it are private (``0600``/``0700``): backups hold model
    environment variables, which may hold secrets. An empty or damaged file is an error, never
    silently replaced. With ``read_only`` nothing is ever created: a missing file reads as an
    empty ledger, and writes fail.
    """

    def __init__(self, path: Path, read_only: bool = False, setting: str = "--ledger") -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        self._memory: sqlite3.Connection | None = None
        where = f"{setting} {path}"
        try:
            exists = path.exists()
            if exists and not path.is_file():
                raise InputError(f"{where}: not a file")
            if exists and path.stat().st_size == 0:
                raise InputError(
                    f"{where}: the file is empty (0 bytes), so it is not a SageSaver ledger; "
                    "restore it from a copy, or move it away to start a new ledger"
                )
            if read_only and not exists:
                self._memory = sqlite3.connect(":memory:", check_same_thread=False)
                self._memory.executescript(SCHEMA)
                return
            if not exists:
                _create_private(path)
            with self._connect() as db:
                db.execute("PRAGMA quick_check").fetchone()
                if not read_only:
                    db.executescript(SCHEMA)
                    columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
                    if "tags" not in columns:  # a ledger written by an earlier version
                        db.execute("ALTER TABLE entries ADD COLUMN tags TEXT NOT NULL DEFAULT '{}'")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{where}: not a readable SageSaver ledger ({exc})") from exc
        except OSError as exc:
            raise InputError(f"{where}: cannot open the ledger: {exc}") from exc

    @property
    def location(self) -> str:
        """The file's path."""
        return str(self.path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._memory is not None:
                with self._memory:
                    yield self._memory
                return
            if self.read_only:
                db = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30
                )
            else:
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

    def is_claimed(self, key: str) -> bool:
        """True when ``key`` was claimed."""
        with self._connect() as db:
            return db.execute("SELECT 1 FROM claims WHERE key = ?", (key,)).fetchone() is not None

    def take_lease(
        self, key: str, holder: str, at: datetime, expires: datetime, subject: dict[str, str]
    ) -> bool:
        """Take the lease in one statement: the database arbitrates between runs."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO leases (key, holder, at, expires, state, backup_id, subject)"
                " VALUES (?, ?, ?, ?, ?, NULL, ?)"
                " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, at = excluded.at,"
                " expires = excluded.expires, state = excluded.state, backup_id = NULL,"
                " subject = excluded.subject"
                " WHERE leases.state = ? OR (leases.state != ? AND leases.expires < ?)",
                (
                    key,
                    holder,
                    stamp(at),
                    stamp(expires),
                    CLAIMED,
                    json.dumps(subject, sort_keys=True),
                    RELEASED,
                    DONE,
                    stamp(at),
                ),
            )
            return cursor.rowcount == 1

    def advance_lease(
        self, key: str, holder: str, state: str, backup_id: str | None = None
    ) -> bool:
        """Move the lease on, if ``holder`` still holds it."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE leases SET state = ?, backup_id = COALESCE(?, backup_id)"
                " WHERE key = ? AND holder = ? AND state NOT IN (?, ?)",
                (state, backup_id, key, holder, DONE, RELEASED),
            )
            return cursor.rowcount == 1

    def open_leases(self) -> list[Lease]:
        """Leases not done nor released, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT key, holder, at, expires, state, backup_id, subject FROM leases"
                f" WHERE state IN ({', '.join('?' for _ in OPEN_STATES)}) ORDER BY at, key",
                OPEN_STATES,
            ).fetchall()
        return [
            Lease(
                r[0],
                r[1],
                datetime.fromisoformat(r[2]),
                datetime.fromisoformat(r[3]),
                r[4],
                r[5],
                json.loads(r[6]),
            )
            for r in rows
        ]

    def record_announcement(
        self, key: str, deadline: datetime, at: datetime, message_ids: list[str]
    ) -> None:
        """Record an announcement that reached people."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO announcements (key, deadline, at, message_ids) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key, deadline) DO UPDATE SET at = excluded.at,"
                " message_ids = excluded.message_ids",
                (key, _iso(deadline), _iso(at), json.dumps(message_ids)),
            )

    def announced_deadlines(self, keys: list[str]) -> dict[str, datetime]:
        """The latest announced deadline of each key."""
        found: dict[str, datetime] = {}
        with self._connect() as db:
            for offset in range(0, len(keys), 500):
                batch = keys[offset : offset + 500]
                rows = db.execute(
                    "SELECT key, deadline FROM announcements"
                    f" WHERE key IN ({', '.join('?' for _ in batch)}) ORDER BY at, deadline",
                    batch,
                ).fetchall()
                for key, deadline in rows:  # oldest first: the latest one wins
                    found[key] = datetime.fromisoformat(deadline)
        return found

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


def _create_private(path: Path) -> None:
    """Create an empty ledger file readable by its owner only, in a private folder if new."""
    missing = [folder for folder in [path.parent, *path.parent.parents] if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(descriptor)


def default_ledger_path() -> Path:
    """``ledger.sqlite`` in the user's data directory."""
    return Path(user_data_dir("sagesaver")) / "ledger.sqlite"


def open_ledger(
    spec: str | None,
    default_region: str | None = None,
    read_only: bool = False,
    setting: str = "--ledger",
) -> Ledger:
    """The ledger named by ``--ledger``: a file path (default: the user's data directory), or
    ``dynamodb://TABLE`` / ``dynamodb://REGION/TABLE`` for a DynamoDB table. ``read_only``
    (for commands that only read) never creates a file."""
    if spec is None:
        return SqliteLedger(default_ledger_path(), read_only, setting)
    if spec.startswith("dynamodb://"):
        from sagesaver.aws.dynamo_ledger import DynamoLedger
        from sagesaver.aws.session import Aws

        aws = Aws()
        location = spec.removeprefix("dynamodb://").strip("/")
        region, _, table = location.rpartition("/")
        region = region or default_region or aws.default_region or ""
        if not table or not region:
            raise InputError(
                f"{setting} {spec}: use dynamodb://TABLE (with a default region) "
                "or dynamodb://REGION/TABLE"
            )
        return DynamoLedger(aws, region, table, setting)
    if "://" in spec:
        raise InputError(f"{setting} {spec}: use a file path or dynamodb://[REGION/]TABLE")
    return SqliteLedger(Path(spec).expanduser(), read_only, setting)
