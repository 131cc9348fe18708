"""The schedule run: list notebook instances, plan starts and stops, act, record.

Every instance is handled on its own: a failed start or stop is listed in ``errors`` and the
others go on. API calls: the list pages and one tag page per region (only where there are
instances), plus one call per instance that must change.

Intent, then confirmation. With a ledger, each start or stop is a lease before its call (key
``schedule|SCHEDULE|REGION|ACCOUNT|NAME|TRANSITION|BOUNDARY``, :func:`lease_key`; its subject
says what a later run needs to record it: the instance, its creation, the transition, the
boundary, the reason, the price and the tags), moved to ``delete-sent`` (:data:`SENT`) as the
call goes out, and confirmed as soon as the call returns: the entry written, then the lease
``done``. The worker that made the call writes them (both stores are safe to write from
threads: the SQLite one serialises every statement under a lock on a connection of its own,
the DynamoDB one uses a boto3 client). A run that dies loses at most the calls in flight: the
next run, once the lease has expired (:data:`~sagesaver.pipelines.acts.LEASE`), resolves each
open schedule lease of its region by the instance's state in its listing: the call took effect
(a start: ``Pending``/``InService``; a stop: ``Stopping``/``Stopped``) -> its entry, at the
lease's moment, "confirmed by a later run"; otherwise the lease is released.

A boundary stays due until its action is confirmed. A schedule that is not enforced acts on
the latest boundary since its previous run in the region (the watermark,
``set_schedule_run``). The watermark moves to this run only when every instance is settled at
that boundary: its act confirmed, already in (or heading to) the wanted state, or left alone
on purpose (a tag, an ambiguity, a state it cannot leave). While some instance is not (its
call failed, it was met heading elsewhere, another run holds it, the run was stopped), the
watermark stays at the window's start, so the next run (or a retry of the same tick) sees the
same boundary again, until the schedule's next boundary passes and wins. A later run of the
same period never acts again on an instance settled at the boundary: the lease of an act
confirmed at it is ``done`` (never taken again), and while the boundary stays due the run
writes such a ``done`` lease for each instance it found already in the wanted state; a person
who starts an instance by hand after the stop is not overruled before the next boundary.

``SIGTERM`` (or any exception) during the calls: no further call starts; the calls in flight
finish and are recorded (the CLI turns ``SIGTERM`` into a clean exit).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws import actions, inventory, tags
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws, caller_account
from sagesaver.core.cron import Transition
from sagesaver.core.digest import Message
from sagesaver.core.formats import iso, stamp
from sagesaver.core.model import Resource, ScanError
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer
from sagesaver.core.rules.parking import targeting
from sagesaver.core.rules.schedules import (
    ALREADY,
    STAYS_DUE,
    Plan,
    PlannedAction,
    Skip,
    Standing,
    Upcoming,
    assign,
    concerns,
    guard_stop,
    is_protected,
    plan,
    tick_invocations,
    upcoming,
)
from sagesaver.ledger import DELETE_SENT, DONE, RELEASED, Entry, Lease, Ledger, Outcome
from sagesaver.ledger.errors import LEDGER_ERRORS, ledger_error
from sagesaver.pipelines.acts import LEASE
from sagesaver.pipelines.parking import ParkingRun, park_endpoints, parking_document
from sagesaver.pipelines.parking_digest import notify_parking
from sagesaver.render.scan import error_dict

REGION_WORKERS = 8
ACTION_WORKERS = 16  # starts and stops at once per region (botocore adaptive retries)
LEASE_PREFIX = "schedule|"
SENT = DELETE_SENT  # the lease state of a start or stop whose call went out
LEDGER_WRITE_TRIES = 3


@dataclass(frozen=True)
class ActionResult:
    """A planned start or stop and what became of it. ``stays_due``: not confirmed, so its
    boundary stays due for this instance."""

    planned: PlannedAction
    applied: bool
    error: str | None = None
    stays_due: bool = False
    note: str | None = None


@dataclass
class ScheduleRunResult:
    """What one schedule run did, in every region."""

    at: datetime
    actions: list[ActionResult] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    quiet: dict[tuple[str, str], str] = field(default_factory=dict)
    # What earlier runs did that this run found and recorded (their calls took effect).
    recovered: list[Entry] = field(default_factory=list)
    # Said once: a calendar without data for a year this run planned.
    warnings: list[str] = field(default_factory=list)
    # The endpoints parked and brought back (schedules with resources: [endpoints]).
    parking: ParkingRun = field(default_factory=ParkingRun)
    # The digest of what parking did, as sent (pipelines/parking_digest.py); none: nothing
    # to tell, or nowhere to tell it.
    parking_digest: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    """What the acts of one region share."""

    aws: Aws
    region: str
    at: datetime
    ledger: Ledger | None
    holder: str
    stop: threading.Event  # set: start no further call (the run is being stopped)
    held: frozenset[str] = frozenset()  # lease keys other runs held when this one began
    policy: Policy | None = None  # the rules the last-moment guard of a stop applies again


def _listing(aws: Aws, region: str, errors: list[ScanError]) -> tags.Listing:
    return tags.list_with_tags(
        aws, region, inventory.list_notebook_instances, tags.NOTEBOOK_TYPE, errors
    )


def _targeted_instances(
    aws: Aws, region: str, policy: Policy, errors: list[ScanError]
) -> list[Resource] | None:
    """Notebook instances of the region with their tags; None when they cannot be read."""
    listing = _listing(aws, region, errors)
    if not listing.listed or not listing.tags_read:
        return None  # without tags the protect tag is unknown: touch nothing in this region
    return listing.tagged  # the untagged ones (ambiguous ARNs) are never touched


# --- the records: one lease per start or stop, one entry once it is known ------------------


def lease_key(action: PlannedAction) -> str:
    """The lease of one start or stop of one instance at one boundary."""
    r = action.resource
    parts = (action.schedule, r.region, r.account, r.name, action.transition.value)
    return LEASE_PREFIX + "|".join(parts) + f"|{stamp(action.boundary)}"


def _subject(action: PlannedAction, price: float | None) -> dict[str, str]:
    """What a later run needs to check the instance and record the act."""
    r = action.resource
    return {
        "kind": r.kind.value,
        "account": r.account,
        "region": r.region,
        "name": r.name,
        "arn": r.arn,
        "created": iso(r.created),
        "schedule": action.schedule,
        "transition": action.transition.value,
        "boundary": iso(action.boundary),
        "reason": action.reason,
        "hourly_cost": "" if price is None else repr(price),
        "tags": json.dumps(r.tags, sort_keys=True),
    }


def _entry(subject: dict[str, str], at: datetime, status: Outcome, error: str = "") -> Entry:
    """The one place a schedule entry is made: an act done (by this run, or found done by a
    later one: :attr:`Outcome.CONFIRMED`) or failed (``error``)."""
    text = {
        Outcome.DONE: "done",
        Outcome.CONFIRMED: "done (confirmed by a later run)",
        Outcome.FAILED: f"failed: {error}",
    }[status]
    price = subject.get("hourly_cost")
    return Entry(
        at=at,
        account=subject["account"],
        region=subject["region"],
        kind=subject["kind"],
        resource=subject["name"],
        action=subject["transition"],
        rule=f"schedule:{subject['schedule']}",
        reason=subject["reason"],
        hourly_cost=float(price) if price else None,
        dry_run=False,
        outcome=text,
        tags=json.loads(subject.get("tags") or "{}"),
        status=status,
    )


def _record(ledger: Ledger, entry: Entry) -> str | None:
    """Write ``entry`` (a few tries); the problem when it could not be."""
    problem = None
    for _ in range(LEDGER_WRITE_TRIES):
        try:
            ledger.record(entry)
            return None
        except LEDGER_ERRORS as exc:
            problem = f"{type(exc).__name__}: {exc}"
    return problem


# --- acting on one instance -----------------------------------------------------------------


def _call(aws: Aws, region: str, action: PlannedAction) -> ScanError | None:
    """Start or stop one instance; the error, if AWS refused or could not be reached."""
    name = action.resource.name
    start = action.transition is Transition.START
    try:
        if start:
            actions.start_notebook(aws, region, name)
        else:
            actions.stop_notebook(aws, region, name)
    except AWS_ERRORS as exc:
        operation = "StartNotebookInstance" if start else "StopNotebookInstance"
        return scan_error(exc, region, operation, name)
    return None


Outcomes = tuple[ActionResult | Skip, ScanError | None]


def _guard(run: _Run, action: PlannedAction) -> Outcomes | None:
    """The last-moment guard of a stop (:func:`~sagesaver.core.rules.schedules.guard_stop`):
    the instance read again just before ``StopNotebookInstance``. None: go ahead. A start
    destroys nothing and is not guarded; an instance that cannot be read is not stopped."""
    if action.transition is not Transition.STOP or run.policy is None:
        return None
    name = action.resource.name
    try:
        status, found = actions.notebook_now(run.aws, run.region, name, action.resource.arn)
    except AWS_ERRORS as exc:
        error = scan_error(exc, run.region, "DescribeNotebookInstance", name)
        why = f"{action.reason}: not read again before the stop ({error.message}); {STAYS_DUE}"
        return Skip(action.resource, action.schedule, why, Standing.DUE), error
    refused = guard_stop(action, status, found, run.policy, run.at)
    return None if refused is None else (refused, None)


def _act(run: _Run, action: PlannedAction, subject: dict[str, str]) -> Outcomes:
    """Record the intent, make the call, confirm it: a failure is this instance's only."""
    if run.stop.is_set():
        return ActionResult(action, False, "not sent: the run was stopped first", True), None
    ledger = run.ledger
    if ledger is None:  # nowhere to record: act only
        refused = _guard(run, action)
        if refused is not None:
            return refused
        error = _call(run.aws, run.region, action)
        if error is not None:
            return ActionResult(action, False, error.message, True), error
        return ActionResult(action, True), None
    key, name = lease_key(action), action.resource.name
    try:
        taken = ledger.take_lease(key, run.holder, run.at, run.at + LEASE, subject)
        refused = _guard(run, action) if taken else None
        if refused is not None:
            ledger.advance_lease(key, run.holder, RELEASED)
            return refused
        if taken:
            ledger.advance_lease(key, run.holder, SENT)
    except LEDGER_ERRORS as exc:  # no intent recorded: no call
        error = ledger_error(exc, ledger.location, f"the {action.transition.value}", name)
        return ActionResult(action, False, f"not sent: {error.message}", True), error
    if not taken:
        verb = "started" if action.transition is Transition.START else "stopped"
        if key in run.held:
            why = f"{action.reason}: another run is acting on it; {STAYS_DUE}"
            return Skip(action.resource, action.schedule, why, Standing.DUE), None
        why = f"{action.reason}: {verb} at this boundary already; not again before the next one"
        return Skip(action.resource, action.schedule, why, Standing.CONFIRMED), None
    error = _call(run.aws, run.region, action)
    if error is not None:
        _record(ledger, _entry(subject, run.at, Outcome.FAILED, error.message))
        with contextlib.suppress(*LEDGER_ERRORS):  # unreleased, it frees itself on expiry
            ledger.advance_lease(key, run.holder, RELEASED)
        return ActionResult(action, False, error.message, True), error
    problem = _record(ledger, _entry(subject, run.at, Outcome.DONE))
    if problem is not None:  # done, not yet recorded: the lease stays open for the next run
        return ActionResult(action, True, note=f"not yet in the ledger ({problem})"), None
    with contextlib.suppress(*LEDGER_ERRORS):  # the entry is written: the next run finds it
        ledger.advance_lease(key, run.holder, DONE)
    return ActionResult(action, True), None


def _act_all(
    run: _Run, planned: Sequence[PlannedAction], subjects: Sequence[dict[str, str]]
) -> list[Outcomes]:
    """Every planned act at once on a bounded pool, in the plan's order. An exception
    (a kill, SIGTERM) stops the calls not yet started; those in flight finish, recorded."""
    if not planned:
        return []
    outcomes: list[Outcomes | None] = [None] * len(planned)
    with ThreadPoolExecutor(max_workers=max(1, ACTION_WORKERS)) as pool:
        futures = {
            pool.submit(_act, run, action, subject): index
            for index, (action, subject) in enumerate(zip(planned, subjects, strict=True))
        }
        try:
            for future in as_completed(futures):
                outcomes[futures[future]] = future.result()
        except BaseException:
            run.stop.set()
            raise
    return [o for o in outcomes if o is not None]


# --- the next run: what a run that died left open --------------------------------------------


def _recover(
    run: _Run, listing: tags.Listing, errors: list[ScanError]
) -> tuple[list[Entry], frozenset[str]]:
    """Resolve the expired schedule leases of the region by the instances' state; returns the
    entries recorded and the keys of the leases other runs still hold."""
    ledger = run.ledger
    if ledger is None:
        return [], frozenset()
    try:
        leases = [
            lease
            for lease in ledger.open_leases()
            if lease.key.startswith(LEASE_PREFIX) and lease.subject.get("region") == run.region
        ]
    except LEDGER_ERRORS as exc:
        errors.append(ledger_error(exc, ledger.location, "a recovery (reading its leases)"))
        return [], frozenset()
    held = frozenset(lease.key for lease in leases if lease.expires >= run.at)
    expired = [lease for lease in leases if lease.expires < run.at]
    if not expired:
        return [], held
    account = run.aws.account or next((r.account for r in listing.everything), None)
    if account is None:
        try:
            account = caller_account(run.aws, run.region)
        except AWS_ERRORS as exc:
            errors.append(scan_error(exc, run.region, "recover"))
            return [], held
    found: list[Entry] = []
    for lease in expired:
        if lease.subject.get("account") != account:
            continue  # another account's: it waits for a run in that account
        try:
            entry = _resolve(run, ledger, lease, listing)
        except LEDGER_ERRORS as exc:  # it waits for a run that can record what it finds
            errors.append(
                ledger_error(exc, ledger.location, "a recovery", lease.subject.get("name"))
            )
            continue
        if entry is not None:
            found.append(entry)
    return found, held


def _resolve(run: _Run, ledger: Ledger, lease: Lease, listing: tags.Listing) -> Entry | None:
    subject = lease.subject
    if not ledger.take_lease(lease.key, run.holder, run.at, run.at + LEASE, subject):
        return None  # another run is resolving it
    instance = next(
        (
            r
            for r in listing.everything
            if r.arn.lower() == subject["arn"].lower() and iso(r.created) == subject["created"]
        ),
        None,
    )
    took_effect = (
        instance is not None and instance.status in ALREADY[Transition(subject["transition"])]
    )
    if lease.state != SENT or not took_effect:
        ledger.advance_lease(lease.key, run.holder, RELEASED)  # not done: the boundary stays due
        return None
    entry = _entry(subject, lease.at, Outcome.CONFIRMED)
    recorded = any(  # the run died between its entry and closing the lease
        e.resource == entry.resource
        and e.region == entry.region
        and e.action == entry.action
        and e.rule == entry.rule
        and e.at == lease.at
        and e.carried_out
        for e in ledger.entries(since=lease.at)
    )
    if not recorded:
        ledger.record(entry)
    ledger.advance_lease(lease.key, run.holder, DONE)
    return None if recorded else entry


# --- one region ----------------------------------------------------------------------------


def _run_region(
    aws: Aws,
    region: str,
    policy: Policy,
    at: datetime,
    apply: bool,
    ledger: Ledger | None,
    only: frozenset[str] | None,
    pricer: Pricer,
    holder: str,
    stop: threading.Event,
) -> ScheduleRunResult:
    result = ScheduleRunResult(at=at)
    listing = _listing(aws, region, result.errors)
    if not listing.listed or not listing.tags_read:
        return result  # without tags the protect tag is unknown: touch nothing in this region
    here = _Run(aws, region, at, ledger if apply else None, holder, stop, policy=policy)
    if apply:
        result.recovered, held = _recover(here, listing, result.errors)
        here = _Run(aws, region, at, here.ledger, holder, stop, held, policy)

    def last_run(schedule: str, region: str) -> datetime | None:
        return ledger.last_schedule_run(schedule, region) if ledger is not None else None

    planned: Plan = plan(listing.tagged, policy, at, last_run, only)
    result.quiet.update(planned.quiet)
    result.warnings.extend(planned.notes)
    if not apply:
        result.skipped.extend(planned.skipped)
        result.actions.extend(ActionResult(action, applied=False) for action in planned.actions)
        return result
    subjects = [_subject(action, _price(pricer, action)) for action in planned.actions]
    outcomes = _act_all(here, planned.actions, subjects)
    late_skips: list[Skip] = []
    for outcome, error in outcomes:
        if isinstance(outcome, Skip):
            late_skips.append(outcome)
        else:
            result.actions.append(outcome)
        if error is not None:
            result.errors.append(error)
    result.skipped.extend(planned.skipped + late_skips)
    if ledger is not None:
        _move_watermarks(here, policy, only, planned, result, result.errors)
    return result


def _price(pricer: Pricer, action: PlannedAction) -> float | None:
    instance_type = action.resource.instance_type
    if not instance_type:
        return None
    return pricer.hourly(action.resource.region, "notebook", instance_type)


def _move_watermarks(
    run: _Run,
    policy: Policy,
    only: frozenset[str] | None,
    planned: Plan,
    result: ScheduleRunResult,
    errors: list[ScanError],
) -> None:
    """Move each schedule's watermark to this run, or hold it at its window's start while
    its boundary stays due for some instance (module docstring)."""
    ledger = run.ledger
    if ledger is None:  # called only for runs that keep a ledger
        raise ValueError("a schedule watermark without a ledger")
    due = {a.planned.schedule for a in result.actions if a.stays_due}
    due |= {s.schedule for s in result.skipped if s.standing is Standing.DUE and s.schedule}
    for schedule in policy.schedules:
        if only is not None and schedule not in only:
            continue
        window = planned.windows.get((schedule, run.region))
        try:
            if window is None or schedule not in due:
                ledger.set_schedule_run(schedule, run.region, run.at)
                continue
            for skip in planned.skipped:  # settled without an act: never acted on in this period
                if skip.schedule == schedule and skip.standing is Standing.CONFIRMED:
                    _settle(run, ledger, skip, window.transition, window.boundary)
            ledger.set_schedule_run(schedule, run.region, window.since)
        except LEDGER_ERRORS as exc:
            errors.append(ledger_error(exc, ledger.location, f"the run of schedule {schedule}"))


def _settle(
    run: _Run, ledger: Ledger, skip: Skip, transition: Transition, boundary: datetime
) -> None:
    """A ``done`` lease for an instance found already in the state ``boundary`` asks for."""
    if skip.schedule is None:  # settled skips are of a schedule
        raise ValueError(f"settling {skip.resource.name} outside any schedule")
    action = PlannedAction(skip.resource, skip.schedule, transition, skip.reason, boundary)
    key = lease_key(action)
    if ledger.take_lease(key, run.holder, run.at, run.at + LEASE, _subject(action, None)):
        ledger.advance_lease(key, run.holder, DONE)


def schedule_run(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    at: datetime,
    apply: bool,
    ledger: Ledger | None = None,
    only: frozenset[str] | None = None,
    pricer: Pricer | None = None,
    unpark_wait_minutes: float | None = None,
) -> ScheduleRunResult:
    """Run the schedules ``only`` (default: every schedule of the policy) at ``at`` in each
    region (dry run unless ``apply``); the ledger's entries carry the price ``pricer`` quotes
    (the bundled table's when None); ``unpark_wait_minutes``: how long a parked endpoint's
    restore waits for it (:func:`~sagesaver.pipelines.parking.park_endpoints`). An exception
    (SIGTERM made one) stops every call not yet started; the calls in flight finish and are
    recorded before it goes on up."""
    total = ScheduleRunResult(at=at)
    prices = pricer or Pricer()
    notebooks, everything = targeting(policy, "notebooks"), policy
    holder, stop = f"schedule-{uuid.uuid4().hex[:16]}", threading.Event()
    workers = max(1, min(REGION_WORKERS, len(regions)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for part in pool.map(
                lambda r: _run_region(
                    aws, r, notebooks, at, apply, ledger, only, prices, holder, stop
                ),
                regions,
            ):
                total.actions.extend(part.actions)
                total.skipped.extend(part.skipped)
                total.errors.extend(part.errors)
                total.quiet.update(part.quiet)
                total.recovered.extend(part.recovered)
                total.warnings.extend(w for w in part.warnings if w not in total.warnings)
        except BaseException:
            stop.set()
            raise
    total.parking = park_endpoints(
        aws, regions, everything, at, apply, ledger, only, prices, None, unpark_wait_minutes
    )
    total.errors.extend(total.parking.errors)
    total.warnings.extend(w for w in total.parking.warnings if w not in total.warnings)
    if apply:  # what was parked, kept up and why, back or not: told where the digests go
        total.parking_digest = notify_parking(aws, everything, total.parking.rows, at, total.errors)
    return total


def _action_reason(action: ActionResult) -> str:
    reason = action.planned.reason
    if action.error is not None:
        reason += f"; failed: {action.error}"
    if action.note is not None:
        reason += f"; {action.note}"
    if action.stays_due:
        reason += f"; {STAYS_DUE}"
    return reason


def run_document(result: ScheduleRunResult, apply: bool) -> dict[str, Any]:
    """The JSON document of a schedule run (the CLI's ``--output json`` and the handler's)."""
    return {
        "at": iso(result.at),
        "dry_run": not apply,
        "actions": [
            {
                "name": a.planned.resource.name,
                "region": a.planned.resource.region,
                "schedule": a.planned.schedule,
                "action": a.planned.transition.value,
                "applied": a.applied,
                "reason": _action_reason(a),
                "stays_due": a.stays_due,
            }
            for a in result.actions
        ],
        "skipped": [
            {
                "name": s.resource.name,
                "region": s.resource.region,
                "schedule": s.schedule,
                "reason": s.reason,
                "stays_due": s.standing is Standing.DUE,
                "standing": s.standing.value,
            }
            for s in result.skipped
        ],
        "recovered": [
            {
                "name": e.resource,
                "region": e.region,
                "schedule": e.rule.removeprefix("schedule:"),
                "action": e.action,
                "at": iso(e.at),
                "outcome": e.outcome,
            }
            for e in result.recovered
        ],
        "quiet": [
            {"schedule": schedule, "region": region, "reason": reason}
            for (schedule, region), reason in sorted(result.quiet.items())
        ],
        "errors": [error_dict(e) for e in result.errors],
        "warnings": list(result.warnings),
        "parking": parking_document(result.parking),
    }


@dataclass(frozen=True)
class ShowRow:
    """One targeted instance and what its schedule wants; with working days, what its next
    start's and stop's days are (a make-up workday, a public holiday), and the days off on
    which it will not start before its next start."""

    resource: Resource
    schedule: str | None
    reason: str
    wanted: str | None
    next_start: datetime | None
    next_stop: datetime | None
    timezone: str | None
    next_start_day: str | None = None
    next_stop_day: str | None = None
    skipped_starts: tuple[str, ...] = ()


def schedule_show(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    only: frozenset[str] | None = None,
) -> tuple[list[ShowRow], list[ScanError], list[str]]:
    """Each targeted instance, its schedule, wanted state now, and next transitions; the
    errors; and what to say once (a calendar without data for a year shown)."""
    errors: list[ScanError] = []
    rows: list[ShowRow] = []
    warnings: list[str] = []
    policy = targeting(policy, "notebooks")
    schedules = {name: spec.build(name) for name, spec in policy.schedules.items()}
    ahead: dict[str, Upcoming] = {}
    for region in regions:
        instances = _targeted_instances(aws, region, policy, errors) or []
        for resource in instances:
            assignment = assign(resource, policy)
            if assignment is None or not concerns(assignment, policy, only):
                continue
            if assignment.schedule is None:
                rows.append(ShowRow(resource, None, assignment.reason, None, None, None, None))
                continue
            schedule = schedules[assignment.schedule]
            if is_protected(resource, policy.schedule_protect_tag):  # as `schedule run` does
                reason = f"protected by tag {policy.schedule_protect_tag}: never started or stopped"
                rows.append(ShowRow(resource, assignment.schedule, reason, None, None, None, None))
                continue
            if assignment.schedule not in ahead:
                ahead[assignment.schedule] = upcoming(schedule, now)
                warnings.extend(w for w in ahead[assignment.schedule].warnings if w not in warnings)
            next_up = ahead[assignment.schedule]
            desired = next_up.wanted
            rows.append(
                ShowRow(
                    resource,
                    assignment.schedule,
                    assignment.reason,
                    None
                    if desired is None
                    else ("running" if desired is Transition.START else "stopped"),
                    next_up.next_start,
                    next_up.next_stop,
                    schedule.tz.key,
                    next_up.next_start_day,
                    next_up.next_stop_day,
                    next_up.skipped_starts,
                )
            )
    return rows, errors, warnings


SCHEDULER_NAME_MAX = 64  # CreateSchedule: Name is [0-9a-zA-Z-_.]+, 1 to 64 characters


def scheduler_name(key: str) -> str:
    """``sagesaver-<key>`` as a valid, unique Scheduler name (a digest replaces what does not
    fit or is not allowed)."""
    name = f"sagesaver-{key}"
    clean = re.sub(r"[^0-9A-Za-z_.-]", "-", name)
    if clean == name and len(name) <= SCHEDULER_NAME_MAX:
        return name
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return f"{clean[: SCHEDULER_NAME_MAX - 9]}-{digest}"


def eventbridge_rules(
    policy: Policy, target_arn: str, role_arn: str, group: str | None = None
) -> list[dict[str, Any]]:
    """The ``CreateSchedule`` requests that run the schedule tick as the deployed stack does
    (the same :func:`~sagesaver.core.rules.schedules.tick_invocations`), ready for
    ``aws scheduler create-schedule --cli-input-json``."""
    requests = []
    for tick_run in tick_invocations(policy):
        request: dict[str, Any] = {
            "Name": scheduler_name(tick_run.key),
            "Description": tick_run.description,
            "ScheduleExpression": tick_run.expression,
            "ScheduleExpressionTimezone": tick_run.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": target_arn,
                "RoleArn": role_arn,
                "Input": json.dumps(tick_run.payload, sort_keys=True),
            },
        }
        if group is not None:
            request["GroupName"] = group
        requests.append(request)
    return requests
