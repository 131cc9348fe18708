"""``restore``: find a backup in the ledger and recreate its endpoint, recording each step, so
that a restore that stopped half-way is resumed by the next one.

- Two restores of one endpoint at once: a lease on its name lets one act; the other changes
  nothing and says so.
- Right after ``CreateEndpoint`` a ``restore`` entry is recorded (the savings stop counting the
  endpoint as off from then on; its outcome says what remains), and a key naming the endpoint
  created (its ARN and creation time) is claimed in the ledger.
- Each later step (live weights, each scaling target, policy, scheduled action) is recorded
  when done: an entry, and a key claimed under the endpoint's.
- Run again with the same backup: when the endpoint of the name is the one recorded, the
  restore skips what is done and does the rest (nothing left: it says so and changes nothing).
  Any other endpoint of the name is refused: restore never changes what it did not create.
- A failure before ``CreateEndpoint`` records nothing; the models and configuration it created
  are used as they are by the next restore.
- Before anything, the backup's seal is checked (:meth:`Ledger.open_backup`): a backup whose
  digest or envelope does not verify, or one without a seal unless ``accept_unsealed``, is
  refused (:class:`~sagesaver.core.sealing.BackupRefused`, exit 2) with nothing read or
  created in SageMaker. Only ``apply`` decrypts values sealed under KMS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sagesaver.aws import restore as aws_restore
from sagesaver.aws.endpoints import backup_hints
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.restore import RestoreRefused, Step
from sagesaver.aws.session import Aws
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso, minute, utc_iso
from sagesaver.core.model import ScanError
from sagesaver.core.records import RELEASED, Backup, Entry, Outcome
from sagesaver.core.sealing import BackupRefused
from sagesaver.ledger import Ledger
from sagesaver.render.scan import error_dict

# The ledger's actions: ``restore`` ends the endpoint's time off (core.savings.ON_ACTIONS);
# ``restore:step``, each step done after it, ends nothing.
RESTORE = "restore"
RESTORE_STEP = "restore:step"
# A restore's lease lasts its longest wait for InService, and this much more.
LEASE_MARGIN = timedelta(minutes=15)


class RestoreStopped(Exception):
    """The restore cannot go on (the endpoint it created could not be read back)."""


@dataclass
class RestoreResult:
    """The backup used and what was (or would be) done."""

    backup: Backup
    apply: bool
    steps: list[str] = field(default_factory=list)
    # What is still to do, as the dry run says it: all of it in a dry run, nothing once done.
    remaining: list[str] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    # A backup accepted although its seal could not be checked (--accept-unsealed).
    warnings: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The JSON document of the restore."""
        return {
            "backup": self.backup.id,
            "region": self.backup.region,
            "at": iso(self.backup.at),
            "dry_run": not self.apply,
            "steps": self.steps,
            "remaining": self.remaining,
            "warnings": self.warnings,
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


def lease_key(backup: Backup) -> str:
    """The lease a restore holds while it acts: one per endpoint name (whatever the backup)."""
    return f"restore|{backup.account}|{backup.region}|{backup.name}"


def created_key(backup: Backup, endpoint: aws_restore.Endpoint) -> str:
    """The ledger's claim that ``backup``'s restore created ``endpoint`` (that very one: its ARN
    and creation time, never another endpoint later given the name)."""
    return f"restore|{backup.id}|{endpoint.arn.lower()}|{utc_iso(endpoint.created)}"


def _step_key(endpoint_key: str, step: Step) -> str:
    return f"{endpoint_key}|{step.key}"


def _entry(backup: Backup, at: datetime, action: str, outcome: str) -> Entry:
    """Every ledger entry a restore records is made here: each is of a step carried out
    (``DONE``); the ``restore`` one ends the endpoint's time off in the savings."""
    return Entry(
        at=at,
        account=backup.account,
        region=backup.region,
        kind="endpoint",
        resource=backup.name,
        action=action,
        rule="restore",
        reason=f"from backup {backup.id}",
        hourly_cost=None,
        dry_run=False,
        outcome=outcome,
        backup_ref=backup.id,
        status=Outcome.DONE,
    )


def _still_to_do(steps: list[Step]) -> str:
    return "; ".join(step.summary for step in steps)


def _created_outcome(steps: list[Step]) -> str:
    if not steps:
        return "restored"
    return f"restored in part: the endpoint was created; still to do: {_still_to_do(steps)}"


def _step_outcome(step: Step, rest: list[Step]) -> str:
    done = "; ".join(step.lines("done"))
    return f"{done}; still to do: {_still_to_do(rest)}" if rest else f"{done}; restore complete"


def _planned(steps: list[Step]) -> list[str]:
    return [line for step in steps for line in step.lines("planned")]


def _release(ledger: Ledger, key: str, holder: str) -> None:
    """Give the restore's lease back (a killed process never does: it expires)."""
    ledger.advance_lease(key, holder, RELEASED)


def _under_way(ledger: Ledger, backup: Backup) -> ScanError:
    key = lease_key(backup)
    held = [lease for lease in ledger.open_leases() if lease.key == key]
    until = f" until {minute(held[0].expires)}" if held else ""
    return ScanError(
        backup.region,
        "restore",
        f"another restore of {backup.name} is under way{until}: nothing was changed; if it "
        "was stopped, restore again once its claim has expired",
        backup.name,
        "RestoreUnderWay",
    )


def restore_backup(
    aws: Aws,
    ledger: Ledger,
    backup: Backup,
    apply: bool,
    now: datetime,
    clock: Callable[[], datetime] | None = None,
    wait_minutes: float = 30,
    accept_unsealed: bool = False,
) -> RestoreResult:
    """Recreate what ``backup`` describes, or resume its restore where it stopped (with
    ``apply``: recording each step; without: saying what would be done). ``clock`` dates the
    entries (default: ``now``). Its seal is checked first: raises
    :class:`~sagesaver.core.sealing.BackupRefused` (nothing done) when it does not verify."""
    try:
        opened = ledger.open_backup(backup, decrypt=apply, accept_unsealed=accept_unsealed)
    except AWS_ERRORS as exc:  # the key could not be described or used: nothing is trusted
        error = scan_error(exc, backup.region, "restore", backup.name)
        raise BackupRefused(
            f"backup {backup.id} of {backup.name} ({backup.region}): its seal could not be "
            f"checked: {error.code}: {error.message}; nothing was created"
        ) from exc
    backup = replace(backup, document=opened.document)
    result = RestoreResult(backup=backup, apply=apply, steps=[opened.check, *opened.notes])
    if opened.warning:
        result.warnings.append(opened.warning)
    at = clock or (lambda: now)

    def attempt() -> None:
        _restore(aws, ledger, backup, apply, at, wait_minutes, result)

    if not apply:
        _collecting(result, attempt)
        return result
    key, holder = lease_key(backup), uuid.uuid4().hex[:16]
    expires = now + timedelta(minutes=wait_minutes) + LEASE_MARGIN
    subject = {"kind": RESTORE, "account": backup.account, "region": backup.region}
    subject |= {"name": backup.name, "backup": backup.id}
    if not ledger.take_lease(key, holder, now, expires, subject):
        result.errors.append(_under_way(ledger, backup))
        return result
    try:
        _collecting(result, attempt)
    finally:
        _release(ledger, key, holder)
    return result


def _collecting(result: RestoreResult, restore: Callable[[], None]) -> None:
    """Run ``restore``, its failure becoming the result's error."""
    backup = result.backup
    try:
        restore()
    except RestoreRefused as exc:
        result.errors.append(ScanError(backup.region, "restore", str(exc), backup.name, "Refused"))
    except RestoreStopped as exc:
        result.errors.append(ScanError(backup.region, "restore", str(exc), backup.name, "Stopped"))
    except AWS_ERRORS as exc:
        result.errors.append(scan_error(exc, backup.region, "restore", backup.name))


def _restore(
    aws: Aws,
    ledger: Ledger,
    backup: Backup,
    apply: bool,
    at: Callable[[], datetime],
    wait_minutes: float,
    result: RestoreResult,
) -> None:
    saved, name = backup.document, backup.name
    steps = aws_restore.later_steps(saved)
    existing = aws_restore.endpoint_now(aws, backup.region, name)
    if existing is not None:
        endpoint_key = created_key(backup, existing)
        steps = _resumed(ledger, backup, existing, endpoint_key, steps, result)
        if not steps:
            result.steps.append(
                f"nothing left to do: the restore of backup {backup.id} is complete"
            )
            return
        result.remaining = _planned(steps)
        if not apply:
            result.steps += result.remaining
            return
    else:
        parts = aws_restore.check_parts(aws, saved, apply)
        result.steps += parts.lines
        result.remaining = [f"endpoint {name}: would create", *_planned(steps)]
        if not apply:
            result.steps += result.remaining
            return
        aws_restore.create_parts(aws, saved, parts)
        endpoint_key = _create_endpoint(aws, ledger, backup, steps, at, result)
    for index, step in enumerate(steps):
        aws_restore.run_step(aws, saved, step, wait_minutes)
        result.steps += step.lines("done")
        rest = steps[index + 1 :]
        ledger.record(_entry(backup, at(), RESTORE_STEP, _step_outcome(step, rest)))
        ledger.claim(_step_key(endpoint_key, step), at())
        result.remaining = _planned(rest)


def _create_endpoint(
    aws: Aws,
    ledger: Ledger,
    backup: Backup,
    steps: list[Step],
    at: Callable[[], datetime],
    result: RestoreResult,
) -> str:
    """``CreateEndpoint``, recorded at once (it bills from then on: the savings stop there),
    then which endpoint it is. Returns the key the ledger knows it by."""
    name = backup.name
    arn = aws_restore.create_endpoint(aws, backup.document)
    result.steps.append(f"endpoint {name}: created")
    result.remaining = _planned(steps)
    ledger.record(_entry(backup, at(), RESTORE, _created_outcome(steps)))
    created = aws_restore.endpoint_now(aws, backup.region, name)
    if created is None or created.arn.lower() != arn.lower():
        raise RestoreStopped(
            f"endpoint {name} was created but could not be read back, so a later restore "
            "cannot tell it is the one it created: set what remains by hand"
        )
    endpoint_key = created_key(backup, created)
    ledger.claim(endpoint_key, at())
    return endpoint_key


def _resumed(
    ledger: Ledger,
    backup: Backup,
    existing: aws_restore.Endpoint,
    endpoint_key: str,
    steps: list[Step],
    result: RestoreResult,
) -> list[Step]:
    """The steps still to do on ``existing``, the endpoint of the backup's name now: refused
    (:class:`RestoreRefused`) unless the ledger says this backup's restore created it."""
    name = backup.name
    if not ledger.is_claimed(endpoint_key):
        raise RestoreRefused(
            f"an endpoint named {name} exists ({existing.status}): restore never changes a "
            "resource it did not create; delete or rename that endpoint first"
        )
    if existing.status == "Deleting":
        raise RestoreRefused(
            f"endpoint {name}, which this backup's restore created, is being deleted: restore "
            "again once it is gone"
        )
    result.steps.append(
        f"endpoint {name}: exists, created by this backup's restore ({minute(existing.created)})"
    )
    todo = []
    for step in steps:
        if ledger.is_claimed(_step_key(endpoint_key, step)):
            result.steps += step.lines("earlier")
        else:
            todo.append(step)
    return todo
