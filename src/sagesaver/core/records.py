"""What the ledger records: actions taken (entries), backups, and the leases of enforcement.
Plain data, so the savings and the report can read them without touching a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.core.partitions import currency_of

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
    hourly_cost: float | None  # in the currency of the region's partition (:attr:`currency`)
    dry_run: bool
    outcome: str
    backup_ref: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # When the resource would have stopped billing by itself had nothing been done (a released
    # warm pool: its job's end plus its keep-alive period); the savings stop counting there.
    off_until: datetime | None = None

    @property
    def currency(self) -> str:
        """The currency of :attr:`hourly_cost`: the region's partition's (prices are quoted in
        it, live or bundled)."""
        return currency_of(self.region)


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


@dataclass(frozen=True)
class Announced:
    """The latest announcement the ledger holds for a resource."""

    deadline: datetime
    at: datetime
    message_ids: tuple[str, ...]

    @property
    def delivered(self) -> bool:
        """A digest carrying it was accepted by the notification service."""
        return bool(self.message_ids)
