"""The ledger in one SQLite file: the default store, under the user's data directory.

Writes are small transactions, so two processes can share a file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sagesaver.core.errors import InputError
from sagesaver.core.formats import stamp, utc_iso
from sagesaver.core.records import (
    CLAIMED,
    DONE,
    OPEN_STATES,
    RELEASED,
    Announced,
    Backup,
    Entry,
    Lease,
    Outcome,
)
from sagesaver.core.sealing import Kept, Opened, open_plain, seal_plain
from sagesaver.files import create_private
from sagesaver.ledger.base import RUN_SUMMARIES, RunSummary

SCHEMA = """
CREATE TABLE IF NOT EXISTS schedule_runs (
    schedule TEXT NOT NULL,
    region TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (schedule, region)
);
CREATE TABLE IF NOT EXISTS seen (
    kind TEXT PRIMARY KEY,
    at TEXT NOT NULL
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
    tags TEXT NOT NULL DEFAULT '{}',
    off_until TEXT,
    status TEXT
);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at);
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    seal TEXT,
    expires TEXT
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
CREATE TABLE IF NOT EXISTS digests (
    scope TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    keys TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS announcements (
    key TEXT NOT NULL,
    deadline TEXT NOT NULL,
    at TEXT NOT NULL,
    message_ids TEXT NOT NULL,
    PRIMARY KEY (key, deadline)
);
CREATE TABLE IF NOT EXISTS run_summaries (
    run_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_summaries_at ON run_summaries (at);
"""


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
                create_private(path)
            with self._connect() as db:
                db.execute("PRAGMA quick_check").fetchone()
                if not read_only:
                    db.executescript(SCHEMA)
                    columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
                    if "tags" not in columns:  # a ledger written by an earlier version
                        db.execute("ALTER TABLE entries ADD COLUMN tags TEXT NOT NULL DEFAULT '{}'")
                    if "off_until" not in columns:  # written before warm pools were released
                        db.execute("ALTER TABLE entries ADD COLUMN off_until TEXT")
                    if "status" not in columns:  # written before outcomes were typed
                        db.execute("ALTER TABLE entries ADD COLUMN status TEXT")
                    kept = {row[1] for row in db.execute("PRAGMA table_info(backups)")}
                    for column in ("seal", "expires"):  # written before backups were sealed
                        if column not in kept:
                            db.execute(f"ALTER TABLE backups ADD COLUMN {column} TEXT")
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
                (schedule, region, utc_iso(at)),
            )

    def mark_seen(self, kind: str, at: datetime) -> None:
        """Record a complete scan of ``kind`` (never moving back)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO seen (kind, at) VALUES (?, ?) ON CONFLICT (kind) DO UPDATE"
                " SET at = MAX(at, excluded.at)",
                (kind, utc_iso(at)),
            )

    def seen(self) -> dict[str, datetime]:
        """When each kind was last seen whole."""
        with self._connect() as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if "seen" not in tables:  # a ledger of an earlier version, opened read-only
                return {}
            rows = db.execute("SELECT kind, at FROM seen").fetchall()
        return {kind: datetime.fromisoformat(at) for kind, at in rows}

    def record(self, entry: Entry) -> None:
        """Append one entry."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO entries (at, account, region, kind, resource, action, rule, reason,"
                " hourly_cost_usd, dry_run, outcome, backup_ref, tags, off_until, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    utc_iso(entry.at),
                    entry.account,
                    entry.region,
                    entry.kind,
                    entry.resource,
                    entry.action,
                    entry.rule,
                    entry.reason,
                    entry.hourly_cost,
                    int(entry.dry_run),
                    entry.outcome,
                    entry.backup_ref,
                    json.dumps(entry.tags, sort_keys=True),
                    utc_iso(entry.off_until) if entry.off_until else None,
                    entry.status.value if entry.status else None,
                ),
            )

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """Entries at or after ``since``, oldest first."""
        params: tuple[str, ...] = ()
        where = ""
        if since is not None:
            where = " WHERE at >= ?"
            params = (utc_iso(since),)
        with self._connect() as db:
            # A ledger of an earlier version opened read-only was not given the new columns.
            columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
            tags = "tags" if "tags" in columns else "'{}'"
            until = "off_until" if "off_until" in columns else "NULL"
            status = "status" if "status" in columns else "NULL"
            query = (
                "SELECT at, account, region, kind, resource, action, rule, reason, hourly_cost_usd,"
                f" dry_run, outcome, backup_ref, {tags}, {until}, {status} FROM entries"
            )
            rows = db.execute(query + where + " ORDER BY at, id", params).fetchall()
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
                hourly_cost=r[8],
                dry_run=bool(r[9]),
                outcome=r[10],
                backup_ref=r[11],
                tags=json.loads(r[12] or "{}"),
                off_until=datetime.fromisoformat(r[13]) if r[13] else None,
                status=Outcome(r[14]) if r[14] else None,  # None: read from the text
            )
            for r in rows
        ]

    def claim(self, key: str, at: datetime) -> bool:
        """Take ``key`` once (a primary-key insert: the database arbitrates)."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO claims (key, at) VALUES (?, ?)", (key, utc_iso(at))
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
                (key, utc_iso(deadline), utc_iso(at), json.dumps(message_ids)),
            )

    def announcements(self, keys: list[str]) -> dict[str, Announced]:
        """The latest announcement of each key."""
        found: dict[str, Announced] = {}
        with self._connect() as db:
            for offset in range(0, len(keys), 500):
                batch = keys[offset : offset + 500]
                rows = db.execute(
                    "SELECT key, deadline, at, message_ids FROM announcements"
                    f" WHERE key IN ({', '.join('?' for _ in batch)}) ORDER BY at, deadline",
                    batch,
                ).fetchall()
                for key, deadline, at, message_ids in rows:  # oldest first: the latest wins
                    found[key] = Announced(
                        datetime.fromisoformat(deadline),
                        datetime.fromisoformat(at),
                        tuple(json.loads(message_ids)),
                    )
        return found

    def last_digest(self, scope: str) -> tuple[datetime, list[str]] | None:
        """The last digest of ``scope``."""
        with self._connect() as db:
            row = db.execute("SELECT at, keys FROM digests WHERE scope = ?", (scope,)).fetchone()
        return None if row is None else (datetime.fromisoformat(row[0]), json.loads(row[1]))

    def record_digest(self, scope: str, at: datetime, keys: list[str]) -> None:
        """Record a digest (replacing the previous one of the scope)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO digests (scope, at, keys) VALUES (?, ?, ?)"
                " ON CONFLICT (scope) DO UPDATE SET at = excluded.at, keys = excluded.keys",
                (scope, utc_iso(at), json.dumps(keys)),
            )

    def save_backup(self, backup: Backup, environment: bool = True) -> Kept:
        """Store a backup: a file has no key, so its environment values stay in clear (or
        names only), with a digest beside them. The backups that expired before this one was
        taken are pruned."""
        document, seal, kept = seal_plain(backup, environment)
        with self._connect() as db:
            db.execute(
                "INSERT INTO backups (id, at, account, region, name, document, seal)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    backup.id,
                    utc_iso(backup.at),
                    backup.account,
                    backup.region,
                    backup.name,
                    json.dumps(document, sort_keys=True),
                    json.dumps(seal, sort_keys=True),
                ),
            )
            db.execute(
                "DELETE FROM backups WHERE expires IS NOT NULL AND expires < ?",
                (stamp(backup.at),),
            )
        return kept

    def open_backup(self, backup: Backup, decrypt: bool, accept_unsealed: bool = False) -> Opened:
        """The backup, its digest checked (a file's digest detects damage, not forgery)."""
        return open_plain(backup, accept_unsealed)

    def keep_backup_until(self, backup_id: str, until: datetime) -> None:
        """Let the backup expire at ``until``."""
        with self._connect() as db:
            db.execute("UPDATE backups SET expires = ? WHERE id = ?", (stamp(until), backup_id))

    def backups(self, name: str | None = None, region: str | None = None) -> list[Backup]:
        """Stored backups, newest first."""
        where = ""
        params: list[str] = []
        if name is not None:
            where += " AND name = ?"
            params.append(name)
        if region is not None:
            where += " AND region = ?"
            params.append(region)
        with self._connect() as db:
            # A ledger of an earlier version opened read-only was not given the new columns.
            columns = {row[1] for row in db.execute("PRAGMA table_info(backups)")}
            seal = "seal" if "seal" in columns else "NULL"
            expires = "expires" if "expires" in columns else "NULL"
            query = (
                f"SELECT id, at, account, region, name, document, {seal}, {expires}"
                f" FROM backups WHERE 1 = 1{where} ORDER BY at DESC, id DESC"
            )
            rows = db.execute(query, params).fetchall()
        return [
            Backup(
                r[0],
                datetime.fromisoformat(r[1]),
                r[2],
                r[3],
                r[4],
                json.loads(r[5]),
                json.loads(r[6]) if r[6] else None,
                datetime.fromisoformat(r[7]) if r[7] else None,
            )
            for r in rows
        ]

    def drop_backup(self, backup_id: str) -> None:
        """Forget a backup taken for a deletion that did not happen."""
        with self._connect() as db:
            db.execute("DELETE FROM backups WHERE id = ?", (backup_id,))

    def record_run_summary(self, run_id: str, at: datetime, document: dict[str, Any]) -> None:
        """Keep a run's summary (replacing an earlier one of the same run)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO run_summaries (run_id, at, document) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET at = excluded.at,"
                " document = excluded.document",
                (run_id, stamp(at), json.dumps(document, sort_keys=True)),
            )

    def run_summaries(
        self, since: datetime | None = None, limit: int = RUN_SUMMARIES
    ) -> list[RunSummary]:
        """The newest run summaries, newest first."""
        params: list[str | int]
        where, params = "", [max(0, limit)]
        if since is not None:
            where, params = " WHERE at >= ?", [stamp(since), *params]
        with self._connect() as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if "run_summaries" not in tables:  # a ledger of an earlier version, read-only
                return []
            rows = db.execute(
                f"SELECT run_id, at, document FROM run_summaries{where}"
                " ORDER BY at DESC, run_id DESC LIMIT ?",
                params,
            ).fetchall()
        return [RunSummary(r[0], datetime.fromisoformat(r[1]), json.loads(r[2])) for r in rows]
