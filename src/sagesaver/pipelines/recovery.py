"""Resuming or releasing what a run left half-done: every expired open lease of a kind that
acts is resolved by the real state of its resource, in the lease's own account (or it waits).

Each kind that acts has its resolver here, registered with the kind
(:data:`sagesaver.pipelines.kinds.ACTING`): the executor recovers exactly the kinds it acts
on, and a kind cannot act without one.

- An endpoint gone (or ``Deleting``, or replaced by a newer one of the same name) after its
  delete was sent: the deletion is recorded once, with its backup. Gone after the backup but
  before the delete: recorded as gone. Still there: the lease is released, the stale claim tag
  removed, the backup taken for it forgotten, and the endpoint judged afresh.
- A warm pool: see :func:`resolve_warm_pool`.
- A Studio app gone (or ``Deleting``/``Deleted``, or recreated) after ``DeleteApp`` was sent:
  the deletion is recorded once. Otherwise the lease is released.

An entry a later run records carries no price: no saving is counted from a confirmation whose
moment is not known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sagesaver.aws import endpoints as aws_endpoints
from sagesaver.aws import jobs, tags
from sagesaver.aws import studio as aws_studio
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws, caller_account
from sagesaver.core.formats import iso
from sagesaver.core.grace import parse_moment
from sagesaver.core.model import Decision, Kind, Resource, ScanError, ScanResult
from sagesaver.core.savings import OFF_ACTIONS, ON_ACTIONS
from sagesaver.ledger import (
    BACKED_UP,
    DELETE_SENT,
    DONE,
    RELEASED,
    Entry,
    Lease,
    Ledger,
    Outcome,
)
from sagesaver.ledger.errors import LEDGER_ERRORS, ledger_error
from sagesaver.pipelines.acts import (
    CLAIM_TAG,
    LEASE,
    RunContext,
    backup_location,
    drop_unconfirmed_backups,
    keep_backup,
)

Resolve = Callable[[Aws, Ledger, Lease, RunContext], Entry | None]


def reach(result: ScanResult, aws: Aws) -> Callable[[str], Aws | None]:
    """The session to resolve a lease of an account with: the fanned-out account's own, or
    the caller's for the caller's own account; None for any other (never the caller's
    session in another account's stead: the resource would look gone there)."""
    own: list[str] = []

    def reach(account: str) -> Aws | None:
        if result.sessions:
            found: Aws | None = result.sessions.get(account)
            return found
        if not own:
            own.append(caller_account(aws, result.regions[0] if result.regions else None))
        return aws if account == own[0] else None

    return reach


# How recently a resource must have been created for a run to look for an act of SageSaver
# on another one of its name before it (a run a day finds every one; a month of missed runs
# still does).
RETURN_WINDOW = timedelta(days=35)


def record_returns(
    ledger: Ledger, decisions: Sequence[Decision], kinds: set[Kind], now: datetime
) -> list[Entry]:
    """Record each resource of ``kinds`` created after SageSaver deleted or released another
    of its name (a person opened the Studio app again, a pipeline redeployed the endpoint):
    the name bills again from its creation, and the savings stop counting there (action
    ``recreated``, at its creation time). Reads the ledger's entries only when some resource
    was created within :data:`RETURN_WINDOW`."""
    recent = [
        d.resource
        for d in decisions
        if d.resource.kind in kinds and d.resource.created > now - RETURN_WINDOW
    ]
    if not recent:
        return []
    last: dict[tuple[str, str, str, str], Entry] = {}
    for entry in ledger.entries():
        if entry.carried_out and entry.action in OFF_ACTIONS | ON_ACTIONS:
            last[(entry.account, entry.region, entry.kind, entry.resource)] = entry
    found = []
    for resource in recent:
        key = (resource.account, resource.region, resource.kind.value, resource.name)
        act = last.get(key)
        if act is None or act.action not in OFF_ACTIONS or act.at >= resource.created:
            continue
        entry = Entry(
            at=resource.created,
            account=resource.account,
            region=resource.region,
            kind=resource.kind.value,
            resource=resource.name,
            action="recreated",
            rule="seen-again",
            reason=f"another {resource.kind.noun} of this name, created after SageSaver's "
            f"{act.action} of {iso(act.at)}",
            hourly_cost=None,
            dry_run=False,
            outcome=f"in service again since {iso(resource.created)}: not counted as saved "
            "from then",
            status=Outcome.CONFIRMED,
        )
        ledger.record(entry)
        found.append(entry)
    return found


def recover(
    sessions: Callable[[str], Aws | None],
    ledger: Ledger,
    regions: Sequence[str],
    ctx: RunContext,
    resolvers: Mapping[Kind, Resolve],
) -> tuple[list[Entry], list[ScanError]]:
    """Resolve every expired open lease of a resource of a kind in ``resolvers`` in
    ``regions`` by its real state, with that kind's resolver.

    An endpoint gone (or ``Deleting``, or replaced by a newer one of the same name) after the
    delete was sent: the deletion is recorded, with its backup. Otherwise the lease is released
    (and the stale claim tag removed), and the endpoint is judged afresh. A warm pool: see
    :func:`resolve_warm_pool`.
    """
    entries: list[Entry] = []
    errors: list[ScanError] = []
    wanted = {kind.value for kind in resolvers}
    for lease in ledger.open_leases():
        subject = lease.subject
        if (
            subject.get("kind") not in wanted
            or subject.get("region") not in regions
            or lease.expires > ctx.now
        ):
            continue
        try:
            session = sessions(subject["account"])
        except AWS_ERRORS as exc:
            errors.append(scan_error(exc, subject["region"], "recover", subject["name"]))
            continue
        if session is None:  # the lease waits, untouched, for a run that reaches its account
            errors.append(
                ScanError(
                    subject["region"],
                    "recover",
                    f"account {subject['account']} is not reachable in this run: its "
                    f"unfinished {subject['kind']} action waits for one that reaches it",
                    subject["name"],
                    "AccountUnreachable",
                    subject["account"],
                )
            )
            continue
        try:
            taken = ledger.take_lease(lease.key, ctx.run_id, ctx.now, ctx.now + LEASE, subject)
        except LEDGER_ERRORS as exc:  # it waits for a run that can record what it finds
            errors.append(ledger_error(exc, ledger.location, "a recovery", subject["name"]))
            continue
        if not taken:
            continue  # another run is resolving it
        resolve = resolvers[Kind(subject["kind"])]
        try:
            entry = resolve(session, ledger, lease, ctx)
        except AWS_ERRORS as exc:
            # The outcome is not known: the lease keeps what it knew (its state and backup)
            # and this run's expiry, and a later run resolves it. Released, a deletion that
            # happened would never be recorded.
            ledger.advance_lease(lease.key, ctx.run_id, lease.state, lease.backup_id)
            errors.append(scan_error(exc, subject["region"], "recover", subject["name"]))
            continue
        if entry is not None:
            ledger.record(entry)
            entries.append(entry)
            if entry.backup_ref is not None:  # its deletion is recorded: no longer pending
                keep_backup(ctx, entry.backup_ref)
            if not entry.action.endswith(":released"):  # released: the lease is given back
                ledger.advance_lease(lease.key, ctx.run_id, DONE, lease.backup_id)
    return entries, errors


def resolve_endpoint(aws: Aws, ledger: Ledger, lease: Lease, ctx: RunContext) -> Entry | None:
    """An endpoint deletion's expired lease, by the endpoint's real state. The entry is
    named by the lease's own action (``delete``, or a schedule's ``park`` with its rule), so
    a park resolved by an idle-scan run stays a park, and its endpoint is brought back."""
    subject = lease.subject
    act = subject.get("action", "delete")
    state = aws_endpoints.endpoint_state(aws, subject["region"], subject["name"])
    same = state is not None and iso(state[1]) == subject["created"]
    gone = not same or (state is not None and state[0] == "Deleting")
    if gone and lease.state == DELETE_SENT:
        recorded = lease.backup_id is not None and any(
            e.backup_ref == lease.backup_id and e.action == act and e.carried_out
            for e in ledger.entries(lease.at)
        )
        if recorded:  # the run died between its ledger entry and closing the lease
            ledger.advance_lease(lease.key, ctx.run_id, DONE, lease.backup_id)
            return None
        outcome = "deleted (confirmed by a later run)"
        if lease.backup_id is not None:
            outcome += f"; backup in {backup_location(ledger, lease.backup_id)}"
        action, status = act, Outcome.CONFIRMED
    elif gone and lease.state == BACKED_UP:
        outcome = "gone after SageSaver's backup, before its delete was sent"
        action, status = f"{act}:gone", Outcome.SKIPPED
    else:
        ledger.advance_lease(lease.key, ctx.run_id, RELEASED)
        if same:
            drop_unconfirmed_backups(ledger, subject["region"], subject["name"])
            resource = _resource_of(subject)
            current = aws_endpoints.current_tags(aws, resource).get(CLAIM_TAG, "")
            if current.startswith(f"{lease.holder}@"):
                tags.remove_tag(aws, resource, CLAIM_TAG)
        if not gone:
            return None
        outcome = "released: it was gone before any backup"
        action, status = f"{act}:released", Outcome.SKIPPED
    entry = _recovered(lease, ctx, action, outcome, backup_ref=lease.backup_id, status=status)
    return entry if "rule" not in subject else replace(entry, rule=subject["rule"])


def _recovered(
    lease: Lease,
    ctx: RunContext,
    action: str,
    outcome: str,
    backup_ref: str | None = None,
    off_until: datetime | None = None,
    status: Outcome = Outcome.CONFIRMED,
) -> Entry:
    """The ledger entry of what a later run found a dead run's action had done (no price: no
    saving is counted from it)."""
    subject = lease.subject
    return Entry(
        at=ctx.now,
        account=subject["account"],
        region=subject["region"],
        kind=subject["kind"],
        resource=subject["name"],
        action=action,
        rule="recover",
        reason=f"the run {lease.holder} stopped at '{lease.state}'",
        hourly_cost=None,
        dry_run=False,
        outcome=outcome,
        backup_ref=backup_ref,
        off_until=off_until,
        status=status,
    )


def resolve_warm_pool(aws: Aws, ledger: Ledger, lease: Lease, ctx: RunContext) -> Entry | None:
    """A release a run left half-done. Recorded already (the run died before closing its
    lease): the lease is closed. The ``UpdateTrainingJob`` may have been sent and the same
    job's pool has ended: the release is recorded once, with no saving counted (whether it
    ended by the release or by its own keep-alive is unknown). Otherwise (never sent, or the
    pool is in use again): the lease is given back and the pool judged afresh."""
    subject = lease.subject
    recorded = any(
        e.action == "release"
        and e.carried_out
        and e.resource == subject["name"]
        and e.region == subject["region"]
        for e in ledger.entries(lease.at)
    )
    if recorded:
        ledger.advance_lease(lease.key, ctx.run_id, DONE)
        return None
    pool = jobs.warm_pool_now(aws, subject["region"], subject["name"])
    same = iso(pool.created) == subject["created"]
    if lease.state != DELETE_SENT or not same or pool.status != "Terminated":
        ledger.advance_lease(lease.key, ctx.run_id, RELEASED)
        return None
    outcome = "warm pool ended (confirmed by a later run; no saving counted)"
    return _recovered(lease, ctx, "release", outcome, off_until=ctx.now)


def _resource_of(subject: dict[str, str]) -> Resource:
    created = parse_moment(subject["created"]) or datetime.min.replace(tzinfo=timezone.utc)
    return Resource(
        Kind(subject["kind"]),
        subject["name"],
        subject["arn"],
        subject["region"],
        subject["account"],
        "unknown",
        created,
        created,
    )


def resolve_studio_app(aws: Aws, ledger: Ledger, lease: Lease, ctx: RunContext) -> Entry | None:
    """A ``DeleteApp`` a run left half-done (module docstring)."""
    subject = lease.subject
    recorded = any(
        e.action == "delete"
        and e.kind == Kind.STUDIO_APP.value
        and e.resource == subject["name"]
        and e.region == subject["region"]
        and e.carried_out
        and e.at >= lease.at
        for e in ledger.entries(lease.at)
    )
    if recorded:  # the run died between its ledger entry and closing the lease
        ledger.advance_lease(lease.key, ctx.run_id, DONE)
        return None
    state = aws_studio.app_state(aws, subject["region"], subject)
    gone = (
        state is None or state[0] in ("Deleting", "Deleted") or iso(state[1]) != subject["created"]
    )
    if not gone or lease.state != DELETE_SENT:
        ledger.advance_lease(lease.key, ctx.run_id, RELEASED)
        return None
    outcome = "deleted (confirmed by a later run; the space and its storage are kept)"
    return _recovered(lease, ctx, "delete", outcome)
