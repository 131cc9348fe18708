"""Where runs and actions are recorded: the contract (:mod:`.base`), the SQLite and DynamoDB
stores, and :func:`open_ledger`. The base and the SQLite store import nothing from AWS."""

from sagesaver.core.formats import stamp
from sagesaver.core.records import (
    BACKED_UP,
    CLAIMED,
    DELETE_SENT,
    DONE,
    OPEN_STATES,
    RELEASED,
    Backup,
    Entry,
    Lease,
    Outcome,
)
from sagesaver.ledger.base import Ledger, RunSummary
from sagesaver.ledger.open import default_ledger_path, open_ledger
from sagesaver.ledger.sqlite import SqliteLedger

__all__ = [
    "BACKED_UP",
    "CLAIMED",
    "DELETE_SENT",
    "DONE",
    "OPEN_STATES",
    "RELEASED",
    "Backup",
    "Entry",
    "Lease",
    "Ledger",
    "Outcome",
    "RunSummary",
    "SqliteLedger",
    "default_ledger_path",
    "open_ledger",
    "stamp",
]
