"""The ledger: what SageSaver did, and when each schedule last ran.

One interface, :class:`Ledger`; a local SQLite store (:class:`SqliteLedger`, the default under the
user's data directory). Writes are small transactions, so two processes can share a file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

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
    backup_ref TEXT
);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at);
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
                " hourly_cost_usd, dry_run, outcome, backup_ref)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )

    def entries(self, since: datetime | None = None) -> list[Entry]:
        """Entries at or after ``since``, oldest first."""
        query = (
            "SELECT at, account, region, kind, resource, action, rule, reason, hourly_cost_usd,"
            " dry_run, outcome, backup_ref FROM entries"
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
            )
            for r in rows
        ]


def default_ledger_path() -> Path:
    """``ledger.sqlite`` in the user's data directory."""
    return Path(user_data_dir("sagesaver")) / "ledger.sqlite"


def open_ledger(spec: str | None) -> Ledger:
    """The ledger named by ``--ledger``: a file path (default: the user's data directory)."""
    if spec is None:
        return SqliteLedger(default_ledger_path())
    if "://" in spec:
        raise InputError(f"--ledger {spec}: only a local file path is supported in this release")
    return SqliteLedger(Path(spec).expanduser())
