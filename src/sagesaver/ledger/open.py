"""Opening the ledger a setting names: a file path, or ``dynamodb://[REGION/]TABLE``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_data_dir

from sagesaver.core.errors import InputError
from sagesaver.ledger.base import Ledger
from sagesaver.ledger.sqlite import SqliteLedger

if TYPE_CHECKING:
    from sagesaver.aws.session import Aws


def default_ledger_path() -> Path:
    """``ledger.sqlite`` in the user's data directory."""
    return Path(user_data_dir("sagesaver")) / "ledger.sqlite"


def parse_ledger_spec(
    spec: str, default_region: str | None = None, setting: str = "--ledger"
) -> tuple[str, str]:
    """``(region, table)`` for ``dynamodb://[REGION/]TABLE`` (``region`` may be empty when no
    default is known), ``("", path)`` for a file; anything else is :class:`InputError`."""
    if spec.startswith("dynamodb://"):
        location = spec.removeprefix("dynamodb://").strip("/")
        region, _, table = location.rpartition("/")
        if not table:
            raise InputError(
                f"{setting} {spec}: use dynamodb://TABLE (with a default region) "
                "or dynamodb://REGION/TABLE"
            )
        return region or default_region or "", table
    if "://" in spec:
        raise InputError(f"{setting} {spec}: use a file path or dynamodb://[REGION/]TABLE")
    return "", spec


def open_ledger(
    spec: str | None,
    default_region: str | None = None,
    read_only: bool = False,
    setting: str = "--ledger",
    aws: Aws | None = None,
) -> Ledger:
    """The ledger named by ``--ledger``: a file path (default: the user's data directory), or
    ``dynamodb://TABLE`` / ``dynamodb://REGION/TABLE`` for a DynamoDB table, reached through
    ``aws`` (the command's profile) when given. ``read_only`` (for commands that only read)
    never creates a file: the default file may be missing (it reads as empty), a named one
    must exist."""
    if spec is None:
        return SqliteLedger(default_ledger_path(), read_only, setting)
    if spec.startswith("dynamodb://"):
        from sagesaver.aws.session import Aws
        from sagesaver.ledger.dynamodb import DynamoLedger

        aws = aws or Aws()
        region, table = parse_ledger_spec(spec, default_region or aws.default_region, setting)
        if not region:
            raise InputError(
                f"{setting} {spec}: no region: use dynamodb://REGION/TABLE or set a default region"
            )
        return DynamoLedger(aws, region, table, setting)
    _, name = parse_ledger_spec(spec, setting=setting)
    path = Path(name).expanduser()
    if read_only and not path.exists():  # a named ledger that is not there is a typo, or lost
        raise InputError(
            f"{setting} {path}: no such ledger file (this command only reads it; the first "
            "run with --apply creates one)"
        )
    return SqliteLedger(path, read_only, setting)
