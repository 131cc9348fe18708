"""What a ledger store raises when it cannot be read or written: the SQLite file's errors (a
full disk, a locked or read-only file) and DynamoDB's (throttled, denied, unreachable). A run
that meets one reports it and goes on with what needs no record; it never acts without one."""

from __future__ import annotations

import sqlite3

from botocore.exceptions import BotoCoreError, ClientError

from sagesaver.core.model import ScanError

LEDGER_ERRORS = (sqlite3.Error, BotoCoreError, ClientError)


def ledger_error(
    exc: Exception, location: str, what: str, resource: str | None = None
) -> ScanError:
    """The run's error for a ledger that refused ``what`` (a write), naming the ledger."""
    return ScanError(
        "-",
        "ledger",
        f"the ledger {location} could not record {what}: {type(exc).__name__}: {exc}",
        resource,
        "LedgerUnwritable",
    )
