"""What the ledger records: actions taken (entries), backups, and the leases of enforcement.
Plain data, so the savings and the report can read them without touching a store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
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


class Outcome(str, Enum):
    """What became of an action, as the ledger keeps it. Only an act that happened
    (:attr:`DONE`, :attr:`CONFIRMED`) counts as saved; the text beside it says the details."""

    DONE = "done"  # carried out, and recorded by the run that did it
    CONFIRMED = "confirmed"  # carried out: a later run found it done and recorded it
    UNCONFIRMED = "unconfirmed"  # sent, its result unknown: a later run confirms or gives back
    PLANNED = "planned"  # announced, spared, deferred or waiting: nothing irreversible
    SKIPPED = "skipped"  # refused by a guard or a condition: nothing changed
    FAILED = "failed"  # AWS refused it: nothing changed


# How a ledger written before outcomes were typed said what happened (its outcome texts).
_LEGACY = (
    (("done (confirmed", "deleted (confirmed", "warm pool ended (confirmed"), Outcome.CONFIRMED),
    (("done", "deleted", "restored", "released:"), Outcome.DONE),
    (("failed",), Outcome.FAILED),
    (("not confirmed",), Outcome.UNCONFIRMED),
    (("skipped", "stopped", "not done", "left for", "gone after"), Outcome.SKIPPED),
)


def outcome_of_text(text: str) -> Outcome:
    """The typed outcome of an entry that has only its text (an earlier version's)."""
    for prefixes, outcome in _LEGACY:
        if text.startswith(prefixes):
            return outcome
    return Outcome.PLANNED


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
    # What became of it; None only on the way in (an entry of an earlier version, which had
    # only :attr:`outcome`'s text): read from the text then.
    status: Outcome | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            object.__setattr__(self, "status", outcome_of_text(self.outcome))
        elif not isinstance(self.status, Outcome):  # as a store gives it back: its value
            object.__setattr__(self, "status", Outcome(self.status))

    @property
    def carried_out(self) -> bool:
        """The act happened (recorded by its run or confirmed by a later one), for real."""
        return not self.dry_run and self.status in (Outcome.DONE, Outcome.CONFIRMED)

    @property
    def currency(self) -> str:
        """The currency of :attr:`hourly_cost`: the region's partition's (prices are quoted in
        it, live or bundled)."""
        return currency_of(self.region)


# The attribute of a DynamoDB backup item that the table's time to live reads (epoch seconds).
EXPIRES_ATTRIBUTE = "expires_at"
# A DynamoDB ledger table's keys (the store creates it; the stack declares it): a partition
# key ``pk`` and a sort key ``sk``, both strings.
TABLE_KEYS: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
}


@dataclass(frozen=True)
class Backup:
    """A stored backup of a deleted resource.

    ``seal`` says how its environment values are kept and holds what checks it
    (:mod:`sagesaver.core.sealing`; None: written by an earlier version). ``expires``: when
    the store forgets it (set once its deletion is recorded, with ``backups.keep_days``)."""

    id: str
    at: datetime
    account: str
    region: str
    name: str
    document: dict[str, Any]
    seal: dict[str, Any] | None = None
    expires: datetime | None = None


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
