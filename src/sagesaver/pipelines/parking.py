"""Parking endpoints on schedules: at a stop, each endpoint a schedule targets is backed up and
deleted through the same guarded, recorded deletion as an idle one
(:func:`~sagesaver.pipelines.acts.act_on_endpoint`, with the park's own last-moment guard,
:func:`~sagesaver.core.rules.parking.guard_park`); ``lead_minutes`` before the next start it is
restored from that backup (:func:`~sagesaver.pipelines.restore.restore_backup`: a name someone
reused in the night is refused, never overwritten). Called by ``schedule run`` (and so by the
Lambda's schedule tick) after the notebooks' starts and stops.

Each act is in the ledger: ``park`` (with its backup and the endpoint's price: the savings
count from it), ``unpark`` once the endpoint is back (done) or could not come back (failed,
with the error; tried again at the next run). Without ``apply`` it is a plan: nothing is read
beyond the listing and the ledger, nothing changed, nothing recorded.

Reads: one listing of ``InService`` endpoints with their tags per region, only when a schedule
parks at this run; per park the guard's reads (describe, tags, Invocations over the last
``quiet_minutes``), twice, and the backup's reads.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sagesaver.aws import endpoints as aws_endpoints
from sagesaver.aws import inference_components, inventory, tags
from sagesaver.aws import restore as aws_restore
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.metrics import UnreadableMetrics
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso
from sagesaver.core.grace import Stage, Step
from sagesaver.core.guard import Guarded, Verdict
from sagesaver.core.model import Action, Decision, Resource, ScanError
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer
from sagesaver.core.records import DONE, Backup, Entry, Outcome
from sagesaver.core.rules.endpoints import endpoint_quote
from sagesaver.core.rules.parking import (
    PARK,
    RULE_PREFIX,
    UNPARK,
    Parked,
    ParkPlan,
    PlannedPark,
    PlannedUnpark,
    comes_back,
    guard_park,
    last_park_backup,
    parked,
    parking_schedules,
    plan_parks,
    plan_unparks,
    protected,
    wants_stopped,
    watermark,
)
from sagesaver.core.sealing import BackupRefused
from sagesaver.ledger import Ledger
from sagesaver.ledger.errors import LEDGER_ERRORS, ledger_error
from sagesaver.pipelines import parking_scale
from sagesaver.pipelines.acts import (
    LEASE,
    LeaseLost,
    OtherGuard,
    RunContext,
    act_on_endpoint,
)
from sagesaver.pipelines.recovery import resolve_endpoint
from sagesaver.pipelines.restore import restore_backup

# How long an unpark waits for its endpoint to be InService (restore's waiter, polled every
# 15 s) beyond its lead: a Lambda invocation lasts 15 minutes at most.
MAX_WAIT_MINUTES = 12.0


@dataclass(frozen=True)
class ParkRow:
    """One endpoint a parking run parked, brought back, or would have, or left alone: why, and
    what became of it."""

    name: str
    region: str
    schedule: str | None
    action: str  # park, unpark, or skip
    applied: bool
    reason: str
    outcome: str = ""
    error: str | None = None
    backup_id: str | None = None


@dataclass
class ParkingRun:
    """What one parking run did in every region."""

    rows: list[ParkRow] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    quiet: dict[tuple[str, str], str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    aws: Aws
    region: str
    policy: Policy
    at: datetime
    apply: bool
    ledger: Ledger | None
    pricer: Pricer
    run_id: str
    clock: Callable[[], datetime]
    wait_minutes: float | None = None  # None: up to the lead (at most MAX_WAIT_MINUTES)


def park_endpoints(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    at: datetime,
    apply: bool,
    ledger: Ledger | None,
    only: frozenset[str] | None = None,
    pricer: Pricer | None = None,
    clock: Callable[[], datetime] | None = None,
    wait_minutes: float | None = None,
) -> ParkingRun:
    """Park and bring back the endpoints of the schedules ``only`` (default: all) that target
    endpoints, at ``at`` in each region (a plan unless ``apply``). No schedule targets
    endpoints: nothing is read. ``clock``: the time at the moment of each act (the guard reads
    traffic up to it). ``wait_minutes``: how long an unpark waits for ``InService`` (default:
    its schedule's lead, at most :data:`MAX_WAIT_MINUTES`); a restore not yet finished is
    resumed by the next run."""
    total = ParkingRun()
    names = parking_schedules(policy, only)
    if not names:
        return total
    if apply and ledger is None:
        total.errors.append(
            ScanError(
                "-",
                "park",
                f"schedules {', '.join(names)} park endpoints: that needs a ledger (--ledger, "
                "or SAGESAVER_LEDGER), where their backups are kept; nothing was parked",
                code="NoLedger",
            )
        )
        return total
    run_id = f"park-{uuid.uuid4().hex[:16]}"
    for region in regions:
        run = _Run(
            aws,
            region,
            policy,
            at,
            apply,
            ledger,
            pricer or Pricer(),
            run_id,
            clock or (lambda: datetime.now(timezone.utc)),
            wait_minutes,
        )
        _region(run, names, only, total)
    return total


def _region(run: _Run, names: list[str], only: frozenset[str] | None, total: ParkingRun) -> None:
    ledger, region = run.ledger, run.region
    try:
        if run.apply and ledger is not None:
            _recover(run, ledger, total)
        entries = ledger.entries() if ledger is not None else []
    except LEDGER_ERRORS as exc:
        where = ledger.location if ledger is not None else "-"
        total.errors.append(ledger_error(exc, where, "the parked endpoints (reading them)"))
        return
    now_parked = {k: p for k, p in parked(entries).items() if k[1] == region}
    plan = ParkPlan()
    plan_unparks(now_parked.values(), run.policy, region, run.at, only, plan)

    def last_run(schedule: str) -> datetime | None:
        return ledger.last_schedule_run(watermark(schedule), region) if ledger else None

    stopping = wants_stopped(run.policy, names, run.at, last_run, plan)
    total.warnings.extend(n for n in plan.notes if n not in total.warnings)
    total.quiet.update({(name, region): why for name, why in plan.quiet.items()})
    due: set[str] = set()  # schedules whose stop stays due in this region (a read failed)
    if stopping:
        listing = tags.list_with_tags(
            run.aws, region, inventory.list_in_service_endpoints, tags.ENDPOINT_TYPE, total.errors
        )
        if listing.listed and listing.tags_read:
            plan_parks(listing.tagged, run.policy, stopping, now_parked, only, plan)
        else:  # without tags the protect tag is unknown: park nothing in this region
            due |= set(stopping)
    for unpark in plan.unparks:
        total.rows.append(_unpark(run, unpark, total.errors))
    for park in plan.parks:
        row = _park(run, park, entries, total.errors)
        if row.error is not None and not row.applied:
            due.add(park.schedule)
        total.rows.append(row)
    total.rows.extend(
        ParkRow(s.name, s.region, s.schedule, "skip", False, s.reason) for s in plan.skipped
    )
    if run.apply and ledger is not None:
        for name in names:
            window = plan.windows.get(name)
            moment = window[1] if name in due and window is not None else run.at
            try:
                ledger.set_schedule_run(watermark(name), region, moment)
            except LEDGER_ERRORS as exc:
                total.errors.append(
                    ledger_error(exc, ledger.location, f"the parking run of schedule {name}")
                )


# --- park ---------------------------------------------------------------------------------------


def _priced(run: _Run, resource: Resource) -> tuple[Resource, float | None]:
    """The endpoint with its variants (instance types, counts) and asynchronous flag, and its
    price per hour (None: unknown; the park is still made, its savings count nothing)."""
    variants, asynchronous = inventory.EndpointDescriber(run.aws, run.region).describe(
        resource.name
    )
    described = replace(resource, variants=variants, asynchronous=asynchronous)
    return described, endpoint_quote(described, run.pricer).amount


def _check(
    policy: Policy, quiet_minutes: int, config_parked: str | None, components: bool = True
) -> Callable[[Aws, Resource, RunContext], tuple[Guarded, dict[str, Any], dict[str, str]]]:
    """The park's last-moment guard: everything read again at the moment it runs (with
    ``components``, for a deletion: no inference component hosted)."""

    def check(
        aws: Aws, endpoint: Resource, ctx: RunContext
    ) -> tuple[Guarded, dict[str, Any], dict[str, str]]:
        moment = ctx.clock()
        since = moment - timedelta(minutes=quiet_minutes)
        until = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        observed, described = aws_endpoints.read_for_guard(aws, endpoint, since, until, moment)
        verdict = guard_park(
            endpoint.created,
            observed,
            protected(policy, observed.tags),
            quiet_minutes,
            str(described.get("EndpointConfigName", "")),
            config_parked,
        )
        if verdict.act and components:
            verdict = _no_components(aws, endpoint) or verdict
        return verdict, described, observed.tags

    return check


def _no_components(aws: Aws, endpoint: Resource) -> Guarded | None:
    """None when the endpoint hosts no inference component; else why it stays up. A backup
    holds the endpoint, its configuration and models, not its components: parked, they would
    not come back (idle deletion never deletes such a host either). Unreadable: kept too."""
    try:
        hosted = inference_components.hosted_components(aws, endpoint.region, endpoint.name)
    except AWS_ERRORS as exc:
        error = scan_error(exc, endpoint.region, "ListInferenceComponents", endpoint.name)
        return Guarded(
            Verdict.KEEP,
            f"its inference components could not be listed ({error.code}): kept up, since "
            "parking would lose any it hosts",
        )
    if not hosted:
        return None
    return Guarded(
        Verdict.KEEP,
        f"it hosts inference components ({', '.join(sorted(hosted))}): a backup does not hold "
        "them, so it is not parked; set their copies to 0 outside working hours instead",
    )


def _parked_config(run: _Run, entries: list[Entry], resource: Resource) -> str | None:
    """The endpoint configuration of the endpoint's last park (its backup), if there was one."""
    backup_id = last_park_backup(entries, resource.account, run.region, resource.name)
    if backup_id is None or run.ledger is None:
        return None
    backup = _find_backup(run.ledger, resource.name, run.region, backup_id)
    if backup is None:
        return None
    return str(backup.document.get("endpoint", {}).get("EndpointConfigName", "")) or None


def _find_backup(ledger: Ledger, name: str, region: str, backup_id: str | None) -> Backup | None:
    """A park's backup, or its scaling snapshot (kept under its own name)."""
    for under in (name, parking_scale.snapshot_name(name)):
        for backup in ledger.backups(under, region):
            if backup.id == backup_id:
                return backup
    return None


DRY_PARK = (
    "dry run: after a fresh check, its instances would go to 0 where AWS allows it (an "
    "asynchronous endpoint, a host of inference components that scales to zero); otherwise it "
    "would be backed up and deleted"
)


def _park(run: _Run, park: PlannedPark, entries: list[Entry], errors: list[ScanError]) -> ParkRow:
    resource = park.resource

    def row(
        applied: bool, outcome: str, error: str | None = None, backup: str | None = None
    ) -> ParkRow:
        return ParkRow(
            resource.name,
            resource.region,
            park.schedule,
            PARK,
            applied,
            park.reason,
            outcome,
            error,
            backup,
        )

    if not run.apply:
        return row(False, DRY_PARK)
    ledger = run.ledger
    if ledger is None:  # park_endpoints refuses to apply without one
        raise ValueError("a park without a ledger")
    try:
        described, price = _priced(run, resource)
        config_parked = _parked_config(run, entries, resource)
    except AWS_ERRORS as exc:
        error = scan_error(exc, run.region, "park", resource.name)
        errors.append(error)
        return row(False, f"not parked: {error.message}", error.message)
    except LEDGER_ERRORS as exc:
        error = ledger_error(exc, ledger.location, "the park's last backup", resource.name)
        errors.append(error)
        return row(False, f"not parked: {error.message}", error.message)
    decision = Decision(
        described,
        Action.DELETE,
        RULE_PREFIX + park.schedule,
        park.reason,
        idle=False,
        hourly_cost=price,
    )
    step = Step(decision, Stage.ACT, PARK, None, park.reason)
    # The backup of a parked endpoint is kept while it is parked (backups.keep_days applies
    # once it is back).
    policy = run.policy.model_copy(
        update={"backups": run.policy.backups.model_copy(update={"keep_days": None})}
    )
    ctx = RunContext(run.run_id, run.at, policy, ledger, run.clock)
    quiet = run.policy.schedules[park.schedule].quiet_minutes
    try:
        means = _means(run, described)
        if means.kind == parking_scale.KEEP:
            return row(False, f"kept up: {means.why}")
        fallback = means.why
        if means.kind in (parking_scale.INSTANCES, parking_scale.COPIES):
            check = _check(run.policy, quiet, config_parked, components=False)
            scaled = parking_scale.park_scaled(run.aws, step, ctx, means, check)
            if scaled.status is Outcome.DONE:
                return row(True, scaled.outcome, backup=scaled.snapshot)
            if scaled.refused is None or means.kind == parking_scale.COPIES:
                failed = scaled.status is Outcome.FAILED
                if failed:
                    errors.append(
                        ScanError(run.region, "park", scaled.outcome, resource.name, "ParkRefused")
                    )
                return row(False, scaled.outcome, scaled.outcome if failed else None)
            fallback = f"its instances could not go to 0: {scaled.refused}"
        other = OtherGuard(_check(run.policy, quiet, config_parked), PARK)
        outcome, status, backup_id = act_on_endpoint(run.aws, step, ctx, other)
    except UnreadableMetrics as exc:
        return row(False, f"not parked: its traffic could not be read ({exc})")
    except LeaseLost:
        return row(False, "stopped: another run took it over")
    except AWS_ERRORS as exc:
        error = scan_error(exc, run.region, "park", resource.name)
        errors.append(error)
        return row(False, f"failed: {error.message}", error.message)
    except LEDGER_ERRORS as exc:  # before the act: no act without its record
        error = ledger_error(exc, ledger.location, "the park's intent", resource.name)
        errors.append(error)
        return row(False, f"failed: {error.message}", error.message)
    why = f" ({fallback})" if fallback else ""
    if status is Outcome.DONE:
        return row(True, f"parked: {outcome}{why}", backup=backup_id)
    if status is Outcome.UNCONFIRMED:  # the next run confirms it from AWS, or parks it then
        errors.append(ScanError(run.region, "park", outcome, resource.name, "ParkUnconfirmed"))
        return row(False, outcome, outcome)
    return row(False, outcome.replace("skipped: ", "kept up: ", 1))


def _means(run: _Run, described: Resource) -> parking_scale.Means:
    """How the endpoint is parked: its DescribeEndpoint read once more for the choice."""
    answer = dict(run.aws.sagemaker(run.region).describe_endpoint(EndpointName=described.name))
    return parking_scale.choose_means(run.aws, described, answer)


# --- unpark -------------------------------------------------------------------------------------


def _unpark_entry(item: Parked, at: datetime, reason: str, outcome: str, status: Outcome) -> Entry:
    """The ledger's ``unpark``: done (the endpoint is back; the savings stop counting) or
    failed (it is still parked; the next run tries again)."""
    parked_entry = item.entry
    return Entry(
        at=at,
        account=parked_entry.account,
        region=parked_entry.region,
        kind=parked_entry.kind,
        resource=parked_entry.resource,
        action=UNPARK,
        rule=parked_entry.rule,
        reason=reason,
        hourly_cost=parked_entry.hourly_cost,
        dry_run=False,
        outcome=outcome,
        backup_ref=item.backup_id,
        tags=dict(parked_entry.tags),
        status=status,
    )


def _unpark(run: _Run, unpark: PlannedUnpark, errors: list[ScanError]) -> ParkRow:
    item, name = unpark.parked, unpark.parked.entry.resource

    def row(applied: bool, outcome: str, error: str | None = None) -> ParkRow:
        return ParkRow(
            name,
            run.region,
            item.schedule,
            UNPARK,
            applied,
            unpark.reason,
            outcome,
            error,
            item.backup_id,
        )

    if not run.apply:
        return row(False, f"dry run: it would be restored from backup {item.backup_id}")
    ledger = run.ledger
    if ledger is None:  # park_endpoints refuses to apply without one
        raise ValueError("an unpark without a ledger")

    def failed(message: str, operation: str = "unpark", code: str = "UnparkFailed") -> ParkRow:
        errors.append(ScanError(run.region, operation, message, name, code))
        with contextlib.suppress(*LEDGER_ERRORS):  # unrecorded, the next run tries again anyway
            entry = _unpark_entry(
                item, run.clock(), unpark.reason, f"failed: {message}", Outcome.FAILED
            )
            ledger.record(entry)
        return row(False, f"not back: {message}", message)

    try:
        backup = _find_backup(ledger, name, run.region, item.backup_id)
    except LEDGER_ERRORS as exc:
        error = ledger_error(exc, ledger.location, "the park's backup", name)
        errors.append(error)
        return row(False, f"not back: {error.message}", error.message)
    if backup is None:
        return failed(f"its backup {item.backup_id} is not in {ledger.location}")
    spec = run.policy.schedules[item.schedule]
    wait = min(MAX_WAIT_MINUTES, max(1.0, float(spec.lead_minutes)))
    if run.wait_minutes is not None:
        wait = run.wait_minutes
    if parking_scale.is_snapshot(backup):
        return _scaled_back(run, item, unpark, backup, wait, row, failed)
    try:
        restored = restore_backup(run.aws, ledger, backup, True, run.at, run.clock, wait)
    except BackupRefused as exc:
        return failed(str(exc), code="BackupRefused")
    except LEDGER_ERRORS as exc:
        return failed(ledger_error(exc, ledger.location, "the restore").message)
    problems = "; ".join(f"{e.code}: {e.message}" if e.code else e.message for e in restored.errors)
    try:
        now = aws_restore.endpoint_now(run.aws, run.region, name)
    except AWS_ERRORS as exc:
        now = None
        problems = problems or scan_error(exc, run.region, "DescribeEndpoint", name).message
    if now is not None and now.status == "Creating" and problems:
        # Created, not yet InService (a restore takes minutes; the Lambda tick waits one):
        # no failure, the next run resumes the steps that need it InService.
        return row(False, f"coming back (Creating): the next run finishes its restore ({problems})")
    if now is None or problems:
        # Still parked: the next run tries again, and resumes a restore cut short after
        # CreateEndpoint (the weights once InService, the auto scaling) where it stopped.
        return failed(problems or "the restore created no endpoint")
    state = f"{now.status}" + ("" if now.status == "InService" else ", not yet InService")
    outcome = f"back ({state}), restored from backup {backup.id}"
    try:
        ledger.record(_unpark_entry(item, run.clock(), unpark.reason, outcome, Outcome.DONE))
    except LEDGER_ERRORS as exc:  # the restore's own entry ends its time off all the same
        outcome += f"; not in the ledger: {exc}"
    keep = run.policy.backups.keep_days
    if keep is not None:  # back: its park's backup may now expire, as a deletion's does
        with contextlib.suppress(*LEDGER_ERRORS):
            ledger.keep_backup_until(backup.id, run.at + timedelta(days=keep))
    return row(True, outcome)


def _scaled_back(
    run: _Run,
    item: Parked,
    unpark: PlannedUnpark,
    backup: Backup,
    wait: float,
    row: Callable[..., ParkRow],
    failed: Callable[..., ParkRow],
) -> ParkRow:
    """Unpark a scaled park: its snapshot put back, waited for; recorded once all is back."""
    ledger, name = run.ledger, item.entry.resource
    if ledger is None:  # park_endpoints refuses to apply without one
        raise ValueError("an unpark without a ledger")
    try:
        back = parking_scale.unpark_scaled(
            run.aws, ledger, backup, wait, protected=lambda found: protected(run.policy, found)
        )
    except BackupRefused as exc:
        return failed(str(exc), code="BackupRefused")
    except LEDGER_ERRORS as exc:
        return failed(ledger_error(exc, ledger.location, "the park's snapshot").message)
    except AWS_ERRORS as exc:
        return failed(scan_error(exc, run.region, "unpark", name).message)
    if back.state == "failed":
        return failed(back.message)
    if back.state == "coming":
        return row(False, back.message)
    outcome = back.message
    try:
        ledger.record(_unpark_entry(item, run.clock(), unpark.reason, outcome, Outcome.DONE))
    except LEDGER_ERRORS as exc:
        outcome += f"; not in the ledger: {exc}: the next run records it"
        return row(False, outcome)
    keep = run.policy.backups.keep_days
    if keep is not None:  # back: its snapshot may now expire
        with contextlib.suppress(*LEDGER_ERRORS):
            ledger.keep_backup_until(backup.id, run.at + timedelta(days=keep))
    return row(True, outcome)


# --- a park a run left half-done -------------------------------------------------------------


def _recover(run: _Run, ledger: Ledger, total: ParkingRun) -> None:
    """Each expired open lease of a park in the region, resolved by the endpoint's real state
    (:func:`~sagesaver.pipelines.recovery.resolve_endpoint`) and recorded as a park."""
    for lease in ledger.open_leases():
        subject = lease.subject
        if subject.get("action") != PARK or subject.get("region") != run.region:
            continue
        if lease.expires > run.at:
            continue
        ctx = RunContext(run.run_id, run.at, run.policy, ledger, run.clock)
        if not ledger.take_lease(lease.key, ctx.run_id, run.at, run.at + LEASE, subject):
            continue
        if subject.get("kind") == parking_scale.LEASE_KIND:
            scaled = parking_scale.resolve_scaled(ledger, lease, ctx)
            if scaled is not None:
                ledger.record(scaled)
                ledger.advance_lease(lease.key, ctx.run_id, DONE, lease.backup_id)
            continue
        recorded = lease.backup_id is not None and any(
            e.backup_ref == lease.backup_id and e.action == PARK and e.carried_out
            for e in ledger.entries(lease.at)
        )
        if recorded:
            ledger.advance_lease(lease.key, ctx.run_id, DONE, lease.backup_id)
            continue
        try:
            entry = resolve_endpoint(run.aws, ledger, lease, ctx)
        except AWS_ERRORS as exc:
            ledger.advance_lease(lease.key, ctx.run_id, lease.state, lease.backup_id)
            total.errors.append(scan_error(exc, run.region, "recover", subject.get("name")))
            continue
        if entry is None:
            continue
        ledger.record(entry)  # named by the lease: park, park:gone or park:released
        if entry.action != f"{PARK}:released":
            ledger.advance_lease(lease.key, ctx.run_id, DONE, lease.backup_id)


# --- show and documents ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParkedRow:
    """A parked endpoint for ``schedule show``: since when, and when it comes back."""

    name: str
    region: str
    schedule: str
    since: datetime
    comes_back: datetime | None
    backup_id: str | None
    timezone: str | None
    note: str = ""


def parked_now(
    ledger: Ledger | None,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    only: frozenset[str] | None = None,
) -> list[ParkedRow]:
    """The endpoints parked now in ``regions`` (by the ledger), and when each comes back."""
    if ledger is None:
        return []
    rows = []
    for item in sorted(parked(ledger.entries()).values(), key=lambda p: p.entry.resource):
        entry = item.entry
        if entry.region not in regions or (only is not None and item.schedule not in only):
            continue
        spec = policy.schedules.get(item.schedule)
        back, zone = None, None
        if spec is None or not spec.targets("endpoints"):
            note = f"its schedule no longer parks endpoints: sagesaver restore {entry.resource}"
        else:
            schedule = spec.build(item.schedule)
            back, zone = comes_back(schedule, spec.lead_minutes, now), schedule.tz.key
            note = "" if back is not None else "its schedule has no next start"
        rows.append(
            ParkedRow(
                entry.resource,
                entry.region,
                item.schedule,
                entry.at,
                back,
                item.backup_id,
                zone,
                note,
            )
        )
    return rows


def parking_document(run: ParkingRun) -> list[dict[str, Any]]:
    """The park and unpark rows of a schedule run's JSON document."""
    return [
        {
            "name": r.name,
            "region": r.region,
            "schedule": r.schedule,
            "action": r.action,
            "applied": r.applied,
            "reason": r.reason,
            "outcome": r.outcome,
            "error": r.error,
            "backup_id": r.backup_id,
        }
        for r in run.rows
    ]


def parked_document(rows: Sequence[ParkedRow]) -> list[dict[str, Any]]:
    """``schedule show``'s parked endpoints as JSON."""
    return [
        {
            "name": r.name,
            "region": r.region,
            "schedule": r.schedule,
            "parked_since": iso(r.since),
            "comes_back": iso(r.comes_back) if r.comes_back else None,
            "timezone": r.timezone,
            "backup_id": r.backup_id,
            "note": r.note or None,
        }
        for r in rows
    ]
