"""The ledger's contract: what SageSaver did, its leases and announcements, and the records.

:class:`Ledger` is the protocol every store implements (:mod:`sagesaver.ledger.sqlite`, a local
file; :mod:`sagesaver.ledger.dynamodb`, a table); one contract test suite runs against both.
Nothing here talks to AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sagesaver.core.records import Announced, Backup, Entry, Lease
from sagesaver.core.sealing import Kept, Opened

# How many run summaries :meth:`Ledger.run_summaries` returns unless told.
RUN_SUMMARIES = 10


@dataclass(frozen=True)
class RunSummary:
    """The summary an organisation run left (:func:`~sagesaver.pipelines.organisation.
    summary_document`): per account, region and kind, its idle cost, acts and errors."""

    run_id: str
    at: datetime
    document: dict[str, Any]


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

    def mark_seen(self, kind: str, at: datetime) -> None:
        """Record that a run saw every resource of ``kind`` at ``at`` (a complete scan): what
        the ledger says of them holds until then. Never moves back."""
        ...

    def seen(self) -> dict[str, datetime]:
        """For each kind, when a run last saw all its resources (absent: never recorded)."""
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

    def announcements(self, keys: list[str]) -> dict[str, Announced]:
        """For each key, its latest announcement: deadline, when it was made and the message
        ids of the digest that carried it (absent: never announced)."""
        ...

    def last_digest(self, scope: str) -> tuple[datetime, list[str]] | None:
        """When the last digest of ``scope`` (a topic and kind) went out, and what it named."""
        ...

    def record_digest(self, scope: str, at: datetime, keys: list[str]) -> None:
        """Record that a digest of ``scope`` naming ``keys`` went out at ``at``."""
        ...

    def save_backup(self, backup: Backup, environment: bool = True) -> Kept:
        """Store a backup with its seal (:mod:`sagesaver.core.sealing`): its environment
        values sealed under the store's KMS key when it has one, else in clear, or with
        ``environment`` False their names only. Returns how they were kept."""
        ...

    def open_backup(self, backup: Backup, decrypt: bool, accept_unsealed: bool = False) -> Opened:
        """``backup`` as restore may use it, its seal checked first; ``decrypt`` (restore
        --apply only) opens values sealed under KMS. Raises
        :class:`~sagesaver.core.sealing.BackupRefused` when it does not verify, and
        :class:`~sagesaver.core.sealing.Unsealed` for one without a seal this store vouches
        for, unless ``accept_unsealed``."""
        ...

    def keep_backup_until(self, backup_id: str, until: datetime) -> None:
        """Let the backup expire at ``until`` (its deletion is recorded; a pending one is never
        given an expiry); nothing when there is none of that id."""
        ...

    def backups(self, name: str | None = None, region: str | None = None) -> list[Backup]:
        """Stored backups, newest first, optionally of one resource name and region."""
        ...

    def drop_backup(self, backup_id: str) -> None:
        """Forget a backup taken for a deletion that did not happen (its resource is still
        there); nothing when there is none of that id."""
        ...

    def record_run_summary(self, run_id: str, at: datetime, document: dict[str, Any]) -> None:
        """Keep the summary ``document`` of run ``run_id``, made at ``at`` (the run's clock);
        the same run recorded again at the same moment replaces it."""
        ...

    def run_summaries(
        self, since: datetime | None = None, limit: int = RUN_SUMMARIES
    ) -> list[RunSummary]:
        """The newest ``limit`` run summaries made at or after ``since``, newest first."""
        ...
