"""``restore``: find a backup in the ledger, recreate the endpoint (``aws.endpoints.restore``
refuses to touch anything it did not create), and record the restore."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws.endpoints import RestoreRefused, backup_hints, restore
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso
from sagesaver.core.model import ScanError
from sagesaver.core.records import Backup, Entry
from sagesaver.ledger import Ledger
from sagesaver.render.scan import error_dict


@dataclass
class RestoreResult:
    """The backup used and what was (or would be) done."""

    backup: Backup
    apply: bool
    steps: list[str] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The JSON document of the restore."""
        return {
            "backup": self.backup.id,
            "region": self.backup.region,
            "at": iso(self.backup.at),
            "dry_run": not self.apply,
            "steps": self.steps,
            "errors": [error_dict(e) for e in self.errors],
        }


def _hints(aws: Aws, name: str, region: str | None) -> str:
    """Where SageSaver said it kept backups of ``name`` (tags on its endpoint configuration)."""
    where = region or aws.default_region
    if where is None:
        return ""
    try:
        hints = backup_hints(aws, where, name)
    except AWS_ERRORS:
        return ""
    if not hints:
        return ""
    return "; SageSaver kept its backup in " + ", ".join(hints) + " (pass that --ledger)"


def choose_backup(
    aws: Aws, ledger: Ledger, name: str, region: str | None, backup_id: str | None
) -> Backup:
    """The backup to restore: ``backup_id``, or the newest of ``name`` (in ``region``).

    Raises :class:`InputError` when there is none (saying where SageSaver kept one, if it
    knows) or when backups in several regions make the choice ambiguous.
    """
    found = [b for b in ledger.backups(name, region) if backup_id in (None, b.id)]
    if not found:
        where = f" in {region}" if region else ""
        raise InputError(
            f"no backup of endpoint {name!r}{where} in {ledger.location}"
            + _hints(aws, name, region)
        )
    regions = sorted({b.region for b in found})
    if backup_id is None and len(regions) > 1:
        raise InputError(f"{name!r} has backups in {', '.join(regions)}: pass --region")
    return found[0]


def restore_backup(
    aws: Aws, ledger: Ledger, backup: Backup, apply: bool, now: datetime
) -> RestoreResult:
    """Recreate what ``backup`` describes (or say what would be), and record it with apply."""
    result = RestoreResult(backup=backup, apply=apply)
    name = backup.name
    try:
        result.steps = restore(aws, backup.document, apply)
    except RestoreRefused as exc:
        result.errors.append(ScanError(backup.region, "restore", str(exc), name, "Refused"))
    except AWS_ERRORS as exc:
        result.errors.append(scan_error(exc, backup.region, "restore", name))
    if apply and not result.errors:
        ledger.record(
            Entry(
                at=now,
                account=backup.account,
                region=backup.region,
                kind="endpoint",
                resource=name,
                action="restore",
                rule="restore",
                reason=f"from backup {backup.id}",
                hourly_cost=None,
                dry_run=False,
                outcome="restored",
                backup_ref=backup.id,
            )
        )
    return result
