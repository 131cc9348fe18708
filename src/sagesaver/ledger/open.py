"""Opening the ledger a setting names: a file path, or ``dynamodb://[REGION/]TABLE``."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir

from sagesaver.core.errors import InputError
from sagesaver.ledger.base import Ledger
from sagesaver.ledger.sqlite import SqliteLedger


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
        from sagesaver.aws.session import Aws
        from sagesaver.ledger.dynamodb import DynamoLedger

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
