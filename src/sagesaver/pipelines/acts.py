"""Acting on one due resource: the claim (a lease in the ledger and the same claim as a tag
on the resource), the last-moment guard, the backup and the irreversible call, each step
recorded; one function per kind that acts (:data:`Act`), used by the executor
(``enforce.py``) and by Studio's lane (``studio.py``).
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any

from sagesaver.aws import endpoints as aws_endpoints
from sagesaver.aws import jobs, tags
from sagesaver.aws import studio as aws_studio
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.metrics import UnreadableMetrics
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso, minute
from sagesaver.core.grace import (
    SCHEDULED_TAG,
    Stage,
    Step,
    announcement_key,
    parse_moment,
)
from sagesaver.core.guard import Guarded, Verdict, guard_endpoint, traffic_window_start
from sagesaver.core.model import Resource
from sagesaver.core.policy import Policy
from sagesaver.core.records import Announced, Outcome
from sagesaver.core.rules.parking import PARK, parked
from sagesaver.core.sealing import Kept
from sagesaver.ledger import (
    BACKED_UP,
    DELETE_SENT,
    DONE,
    RELEASED,
    Backup,
    Entry,
    Ledger,
)
from sagesaver.ledger.errors import LEDGER_ERRORS

# How long a run's claim on one resource holds. Long enough for a backup and a delete (a
# Lambda run lasts 15 minutes at most); a run that died frees the resource this long after.
LEASE = timedelta(minutes=15)
CLAIM_TAG = "sagesaver:claim"


def warn_on_stderr(message: str) -> None:
    """One warning line on the process's stderr (the terminal; a Lambda's log)."""
    sys.stderr.write(f"sagesaver: warning: {message}\n")


@dataclass(frozen=True)
class RunContext:
    """What every step of one enforcement run shares."""

    run_id: str
    now: datetime
    policy: Policy
    ledger: Ledger
    # The time at the moment of an act (the last-moment guard reads up to it); ``now`` is
    # when the run started.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    # Where a warning goes (a backup's environment values kept in clear).
    warn: Callable[[str], None] = warn_on_stderr


# Acting on one due resource: (what became of it, said and typed; the backup id). DONE means
# the act happened; UNCONFIRMED that it was sent and a later run confirms it. Raises on AWS
# errors (nothing was done).
Act = Callable[[Aws, Step, RunContext], tuple[str, Outcome, str | None]]
SKIPPED, UNCONFIRMED = Outcome.SKIPPED, Outcome.UNCONFIRMED


def _entry(
    step: Step,
    now: datetime,
    outcome: str,
    dry_run: bool,
    backup_id: str | None = None,
    off_until: datetime | None = None,
    status: Outcome = Outcome.PLANNED,
) -> Entry:
    resource = step.decision.resource
    return Entry(
        at=now,
        account=resource.account,
        region=resource.region,
        kind=resource.kind.value,
        resource=resource.name,
        action=step.action if step.stage is Stage.ACT else f"{step.action}:{step.stage.value}",
        rule=step.decision.rule,
        reason=step.reason,
        hourly_cost=step.decision.hourly_cost,
        dry_run=dry_run,
        outcome=outcome,
        backup_ref=backup_id,
        tags={k: v for k, v in resource.tags.items() if k not in (SCHEDULED_TAG, CLAIM_TAG)},
        off_until=off_until,
        status=status,
    )


# --- the claim: a lease in the ledger and the same claim as a tag on the resource -----------


class LeaseLost(Exception):
    """This run's lease expired and another run took the resource over."""


def lease_key(resource: Resource, created: datetime, action: str = "delete") -> str:
    """The lease of one action on one resource (not on another later given its name)."""
    return f"{announcement_key(replace(resource, created=created))}|{action}"


def claim_tag_value(holder: str, expires: datetime) -> str:
    """``RUN@EXPIRES``: who claims the resource, and until when."""
    return f"{holder}@{iso(expires)}"


def parse_claim_tag(value: str) -> tuple[str, datetime] | None:
    """(holder, expiry) of a claim tag, or None when it is not one."""
    holder, sep, moment = value.rpartition("@")
    expires = parse_moment(moment) if sep else None
    return (holder, expires) if holder and expires is not None else None


def _claim_on_resource(aws: Aws, resource: Resource, ctx: RunContext, expires: datetime) -> str:
    """Put this run's claim on the resource and read it back. Returns why another run holds
    it, or "" when the claim is this run's."""
    current = aws_endpoints.current_tags(aws, resource).get(CLAIM_TAG)
    other = parse_claim_tag(current) if current else None
    if other is not None and other[0] != ctx.run_id and other[1] > ctx.now:
        return f"another run ({other[0]}) holds it until {minute(other[1])}"
    mine = claim_tag_value(ctx.run_id, expires)
    tags.set_tag(aws, resource, CLAIM_TAG, mine)
    back = aws_endpoints.current_tags(aws, resource).get(CLAIM_TAG)
    if back != mine:
        return "another run claimed it at the same moment"
    return ""


def _advance(ctx: RunContext, key: str, state: str, backup_id: str | None = None) -> None:
    if not ctx.ledger.advance_lease(key, ctx.run_id, state, backup_id):
        raise LeaseLost(key)


def drop_unconfirmed_backups(ledger: Ledger, region: str, name: str) -> None:
    """Forget the backups of ``name`` that no recorded deletion and no open lease refers to:
    they were taken for a deletion that did not happen (the resource is still there), and a
    later deletion takes its own. One deletion, one backup; none for a deletion that never
    was."""
    found = ledger.backups(name, region)
    if not found:
        return
    used = {e.backup_ref for e in ledger.entries(min(b.at for b in found)) if e.backup_ref}
    used |= {lease.backup_id for lease in ledger.open_leases() if lease.backup_id}
    for backup in found:
        if backup.id not in used:
            ledger.drop_backup(backup.id)


def _release(aws: Aws, ctx: RunContext, key: str, resource: Resource | None) -> None:
    """Give the resource back after a failure before the delete (best effort for the tag and
    for forgetting the backup taken for it)."""
    ctx.ledger.advance_lease(key, ctx.run_id, RELEASED)
    if resource is not None:
        with contextlib.suppress(*LEDGER_ERRORS):
            drop_unconfirmed_backups(ctx.ledger, resource.region, resource.name)
        try:
            current = aws_endpoints.current_tags(aws, resource).get(CLAIM_TAG, "")
            if current.startswith(f"{ctx.run_id}@"):
                tags.remove_tag(aws, resource, CLAIM_TAG)
        except AWS_ERRORS:
            pass  # an expired claim tag is ignored by every run


def _subject(resource: Resource, created: datetime) -> dict[str, str]:
    return {
        "kind": resource.kind.value,
        "account": resource.account,
        "region": resource.region,
        "name": resource.name,
        "arn": resource.arn,
        "created": iso(created),
    }


# --- acting on one endpoint ---------------------------------------------------------------


def backup_location(ledger: Ledger, backup_id: str) -> str:
    """Where a backup is kept, as a person passes it to ``restore``."""
    return f"{ledger.location} (backup {backup_id})"


def backup_tag_value(ledger: Ledger, backup_id: str) -> str:
    """Where a backup is kept, as written to an AWS tag: a DynamoDB ledger as ``--ledger``
    takes it; a SQLite ledger by its file name only (its folders name users and machines, and
    a tag is read by anyone who may list the account's tags)."""
    location = ledger.location
    if not location.startswith("dynamodb://"):
        location = f"SQLite ledger {PurePath(location).name}"
    return f"{location} (backup {backup_id})"


def _guard(
    aws: Aws, endpoint: Resource, ctx: RunContext, announced: Announced | None
) -> tuple[Guarded, dict[str, Any], dict[str, str]]:
    """The last-moment guard for deleting ``endpoint``: everything read again, now."""
    rules = ctx.policy.endpoints
    at = ctx.clock()
    since = traffic_window_start(announced, rules.idle_hours, at)
    # The read ends at the next whole minute: CloudWatch takes whole seconds, and a datapoint
    # of this very second must not fall after the window (a later end only finds more).
    until = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    observed, described = aws_endpoints.read_for_guard(aws, endpoint, since, until, at)
    protected = rules.is_protected(observed.tags)
    verdict = guard_endpoint(
        endpoint.created,
        announced,
        observed,
        rules.grace_hours,
        protected,
        max_invocations=rules.max_invocations,
    )
    return verdict, described, observed.tags


def _not_now(aws: Aws, endpoint: Resource, guarded: Guarded, seen: dict[str, str]) -> str:
    """What a refused act leaves behind: a cancelled announcement loses its deadline tag (when
    ``seen``, the tags read by the guard, have it), so the next run announces afresh before it
    may act."""
    if guarded.verdict is not Verdict.CANCEL:
        return f"skipped: {guarded.reason}"
    if SCHEDULED_TAG not in seen:  # a grace period of 0 writes none
        return f"skipped: {guarded.reason}; its announcement is cancelled: a new one goes out first"
    try:
        tags.remove_tag(aws, endpoint, SCHEDULED_TAG)
    except AWS_ERRORS as exc:  # the guard will refuse again, for the same reason
        return f"skipped: {guarded.reason} (its deadline tag could not be removed: {exc})"
    return f"skipped: {guarded.reason}; its announcement is cancelled: a new one goes out first"


# The last-moment guard of a deletion: (verdict, DescribeEndpoint's answer, the tags read).
Check = Callable[[Aws, Resource, RunContext], tuple[Guarded, dict[str, Any], dict[str, str]]]


@dataclass(frozen=True)
class OtherGuard:
    """A deletion with a guard other than the idle rule's (a schedule's park,
    :mod:`sagesaver.pipelines.parking`): ``check`` runs where the idle guard would, the lease
    and its subject name ``action``, and the endpoint configuration is always kept."""

    check: Check
    action: str


def parked_by_schedule(ledger: Ledger, endpoint: Resource) -> str:
    """Why the idle rule may not delete ``endpoint`` now: a schedule parked it (the ledger's
    newest carried-out ``park`` of its name, not yet followed by its ``unpark``: its instances
    or copies at 0, on their way there or back, or the endpoint restored and not yet recorded
    back), or a park of it is under way (an open park lease); "" when neither. A name reused
    while parked stays refused too until the schedule settles it: keeping is the safe side."""
    key = (endpoint.account, endpoint.region, endpoint.name)
    found = parked(ledger.entries()).get(key)
    if found is not None:
        return (
            f"parked by schedule {found.schedule} since {minute(found.entry.at)}: its schedule "
            "brings it back, and an idle deletion would lose the park (not deleted)"
        )
    for lease in ledger.open_leases():
        subject = lease.subject
        named = (subject.get("account"), subject.get("region"), subject.get("name"))
        if subject.get("action") == PARK and named == key:
            schedule = subject.get("rule", "").removeprefix("schedule:") or "?"
            return f"schedule {schedule} is parking it (a park under way): not deleted"
    return ""


def _not_parked(check: Check) -> Check:
    """``check`` after the ledger says the endpoint is not parked by a schedule (an unreadable
    ledger keeps it too); a parked one is kept, nothing read of AWS, nothing tagged."""

    def guarded(
        aws: Aws, endpoint: Resource, ctx: RunContext
    ) -> tuple[Guarded, dict[str, Any], dict[str, str]]:
        try:
            why = parked_by_schedule(ctx.ledger, endpoint)
        except LEDGER_ERRORS as exc:
            why = f"the ledger could not be read to see whether a schedule parked it ({exc})"
        if why:
            return Guarded(Verdict.KEEP, why), {}, {}
        return check(aws, endpoint, ctx)

    return guarded


def act_on_endpoint(
    aws: Aws, step: Step, ctx: RunContext, other: OtherGuard | None = None
) -> tuple[str, Outcome, str | None]:
    """Guard, claim, back up, guard again at the last moment, delete; each step recorded in
    the lease. The guard (:mod:`sagesaver.core.guard`, or ``other``'s) runs before anything is
    written, and again immediately before ``DeleteEndpoint``, after the backup was read: a
    protect tag, a later deadline, traffic or a redeployment that lands while the run works is
    seen. The idle rule's guard first reads the ledger: an endpoint a schedule parked (or is
    parking) is kept, whatever AWS says of it now (:func:`parked_by_schedule`)."""
    endpoint = step.decision.resource
    rules = ctx.policy.endpoints
    check: Check
    if other is None:
        announced = ctx.ledger.announcements([announcement_key(endpoint)]).get(
            announcement_key(endpoint)
        )
        # An endpoint a schedule parked is never the idle rule's, whatever it reads now.
        check = _not_parked(lambda aws, endpoint, ctx: _guard(aws, endpoint, ctx, announced))
    else:
        check = other.check
    delete_config = rules.delete_config and other is None
    guarded, described, seen = check(aws, endpoint, ctx)
    if not guarded.act:
        return _not_now(aws, endpoint, guarded, seen), SKIPPED, None
    created = described["CreationTime"]
    key = lease_key(endpoint, created, "delete" if other is None else other.action)
    expires = ctx.now + LEASE
    subject = _subject(endpoint, created)
    if other is not None:
        subject |= {"action": other.action, "rule": step.decision.rule}
    if not ctx.ledger.take_lease(key, ctx.run_id, ctx.now, expires, subject):
        return "skipped: another run is acting on it", SKIPPED, None
    try:
        blocked = _claim_on_resource(aws, endpoint, ctx, expires)
        if blocked:
            ctx.ledger.advance_lease(key, ctx.run_id, RELEASED)
            return f"skipped: {blocked}", SKIPPED, None
        document = aws_endpoints.backup(aws, endpoint, described)
        document["endpoint"]["Tags"] = [
            t for t in document["endpoint"]["Tags"] if t["Key"] not in (SCHEDULED_TAG, CLAIM_TAG)
        ]
        guarded, _, seen = check(aws, endpoint, ctx)  # the last moment
        if not guarded.act:
            _release(aws, ctx, key, endpoint)
            return _not_now(aws, endpoint, guarded, seen), SKIPPED, None
        backup_id = f"{endpoint.name}-{ctx.now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        kept = ctx.ledger.save_backup(
            Backup(backup_id, ctx.now, endpoint.account, endpoint.region, endpoint.name, document),
            environment=ctx.policy.backups.environment,
        )
        if kept is Kept.CLEAR:
            ctx.warn(clear_warning(ctx.ledger, backup_id, endpoint.name))
        _advance(ctx, key, BACKED_UP, backup_id)
        where = backup_tag_value(ctx.ledger, backup_id)
        config_name = described["EndpointConfigName"]
        if not delete_config:
            config_arn = document["endpoint_config"]["arn"]
            aws_endpoints.mark_backup_location(
                aws, endpoint.region, config_arn, endpoint.name, where
            )
        _advance(ctx, key, DELETE_SENT, backup_id)
    except (*AWS_ERRORS, UnreadableMetrics):
        _release(aws, ctx, key, endpoint)
        raise
    try:
        outcome = aws_endpoints.delete(aws, endpoint, None)
    except aws_endpoints.DeleteUnconfirmed as exc:
        # It may be deleted: the lease stays at delete-sent with its backup, and the next run
        # confirms the deletion (or gives the endpoint back) from what AWS says then.
        # (No backup id in the result: an entry naming it would read as the deletion's.)
        return (
            f"not confirmed: {exc}; the next run confirms it from AWS ({where})",
            UNCONFIRMED,
            None,
        )
    except AWS_ERRORS:
        _release(aws, ctx, key, endpoint)  # the endpoint is still there: a later run retries
        raise
    if delete_config:
        try:
            aws.sagemaker(endpoint.region).delete_endpoint_config(EndpointConfigName=config_name)
            outcome += " with its configuration"
        except AWS_ERRORS as exc:
            error = scan_error(exc, endpoint.region, "DeleteEndpointConfig", config_name)
            outcome += f"; its configuration was kept: {error.message}"
    outcome = record_done(ctx, step, key, outcome, backup_id)
    return outcome, Outcome.DONE, backup_id


def clear_warning(ledger: Ledger, backup_id: str, name: str) -> str:
    """What a run says when a backup's environment values could not be sealed."""
    return (
        f"backup {backup_id} of {name} keeps its models' environment values (often secrets) "
        f"in clear in {ledger.location}: it has no KMS key to seal them (a SQLite file, or a "
        "DynamoDB table without a customer managed key). Keep it private, or set "
        "backups.environment: false in the policy to keep their names only"
    )


def keep_backup(ctx: RunContext, backup_id: str) -> None:
    """With ``backups.keep_days``, let a backup whose deletion is now recorded expire that
    long after (best effort: one the ledger cannot mark is kept for good)."""
    days = ctx.policy.backups.keep_days
    if days is not None:
        with contextlib.suppress(*LEDGER_ERRORS):
            ctx.ledger.keep_backup_until(backup_id, ctx.now + timedelta(days=days))


LEDGER_WRITE_TRIES = 3


def record_done(
    ctx: RunContext,
    step: Step,
    key: str,
    outcome: str,
    backup_id: str | None = None,
    off_until: datetime | None = None,
) -> str:
    """Record the action in the ledger, then close its lease; returns the outcome as it
    stands. A run that dies in between leaves the lease open: the next run finds the entry
    and only closes it. ``off_until``: when the resource would have stopped billing by itself
    (the savings stop there).

    The act has happened: a ledger that cannot be written (tried :data:`LEDGER_WRITE_TRIES`
    times) never turns it into a failure. The lease stays open at its last state, and the
    next run's recovery records the act from what AWS says."""
    recorded = outcome
    if backup_id is not None:
        recorded += f"; backup in {backup_location(ctx.ledger, backup_id)}"
    entry = _entry(step, ctx.now, recorded, False, backup_id, off_until, Outcome.DONE)
    for attempt in range(LEDGER_WRITE_TRIES):
        try:
            ctx.ledger.record(entry)
            break
        except LEDGER_ERRORS as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < LEDGER_WRITE_TRIES:
                time.sleep(0.2 * 2**attempt)
    else:
        return f"{outcome}; not yet in the ledger ({problem}): the next run records it"
    if backup_id is not None:  # its deletion is recorded: no longer pending
        keep_backup(ctx, backup_id)
    with contextlib.suppress(*LEDGER_ERRORS):  # the entry is written: the next run finds it
        ctx.ledger.advance_lease(key, ctx.run_id, DONE, backup_id)  # and closes the lease
    return outcome


# --- releasing an idle warm pool ------------------------------------------------------------


def act_on_warm_pool(aws: Aws, step: Step, ctx: RunContext) -> tuple[str, Outcome, str | None]:
    """Re-read the training job (``DescribeTrainingJob``) and its tags; release its warm pool
    only if it is still ``Available``, is the same job, and is not protected now; a lease in
    the ledger keeps two runs from acting at once. A failed read raises (nothing is done)."""
    resource = step.decision.resource
    rules = ctx.policy.jobs.warm_pools
    pool = jobs.warm_pool_now(aws, resource.region, resource.name)
    if pool.status != "Available":
        return f"skipped: its warm pool is now {pool.status or 'gone'}", SKIPPED, None
    if pool.created != resource.created:
        return "skipped: a different training job has its name now", SKIPPED, None
    if rules.is_protected(jobs.job_tags(aws, resource.region, resource.arn)):
        return f"skipped: protected by tag {rules.protect_tag} since the scan", SKIPPED, None
    key = lease_key(resource, pool.created, "release")
    subject = _subject(resource, pool.created)
    if not ctx.ledger.take_lease(key, ctx.run_id, ctx.now, ctx.now + LEASE, subject):
        return "skipped: another run is acting on it", SKIPPED, None
    ctx.ledger.advance_lease(key, ctx.run_id, DELETE_SENT)
    try:
        jobs.release_warm_pool(aws, resource.region, resource.name)
    except AWS_ERRORS:
        ctx.ledger.advance_lease(key, ctx.run_id, RELEASED)
        raise
    outcome = "released: KeepAlivePeriodInSeconds set to 0 (the job and its model are kept)"
    # The saving ends where the pool would have ended by itself; unknown counts nothing.
    off_until = ctx.now
    if pool.expires is None:
        outcome += "; its keep-alive end is unknown, so no saving is counted"
    elif pool.expires > ctx.now:
        off_until = pool.expires
        outcome += f"; it would have billed until {minute(pool.expires)}"
    outcome = record_done(ctx, step, key, outcome, off_until=off_until)
    return outcome, Outcome.DONE, None


# --- deleting an idle Studio app -------------------------------------------------------------


def canvas_window(policy: Policy) -> timedelta:
    """How far back a Canvas app's TimeSinceLastActive is read: the idle window and an hour."""
    return timedelta(hours=policy.studio_apps.idle_hours + 1)


def app_subject(app: aws_studio.StudioApp, created: datetime) -> dict[str, str]:
    """A Studio app's lease subject: enough to find the app again (:func:`aws.studio.app_state`)."""
    return {
        **_subject(app.resource, created),
        "domain": app.domain_id,
        "app_type": app.app_type,
        "app_name": app.app_name,
        "space": app.space or "",
        "user_profile": app.user_profile or "",
    }


def act_on_studio_apps(apps: Mapping[str, aws_studio.StudioApp]) -> Act:
    """Deleting a due app (``apps`` by ARN): a lease, the last-moment guard (the app, its tags,
    its activity and its announcement read again), ``DeleteApp``; the space and its storage
    stay."""

    def act(aws: Aws, step: Step, ctx: RunContext) -> tuple[str, Outcome, str | None]:
        resource = step.decision.resource
        app = apps[resource.arn]
        rules = ctx.policy.studio_apps
        key = lease_key(resource, resource.created)
        announced = ctx.ledger.announcements([announcement_key(resource)]).get(
            announcement_key(resource)
        )
        subject = app_subject(app, resource.created)
        if not ctx.ledger.take_lease(key, ctx.run_id, ctx.now, ctx.now + LEASE, subject):
            return "skipped: another run is acting on it", SKIPPED, None
        try:
            observed = aws_studio.read_for_guard(aws, app, ctx.clock(), canvas_window(ctx.policy))
        except (*AWS_ERRORS, aws_studio.UnreadableActivity) as exc:
            ctx.ledger.advance_lease(key, ctx.run_id, RELEASED)
            if isinstance(exc, aws_studio.UnreadableActivity):
                return f"skipped: {exc}", SKIPPED, None
            raise
        protected = rules.is_protected(observed.tags)
        guarded = guard_endpoint(
            resource.created, announced, observed, rules.grace_hours, protected, "app"
        )
        if not guarded.act:
            ctx.ledger.advance_lease(key, ctx.run_id, RELEASED)
            return _not_now(aws, resource, guarded, observed.tags), SKIPPED, None
        _advance(ctx, key, DELETE_SENT)
        try:
            aws_studio.delete_app(aws, app)
        except AWS_ERRORS:
            try:
                state = aws_studio.app_state(aws, resource.region, subject)
            except AWS_ERRORS:
                return (
                    "not confirmed: DeleteApp failed and the app could not be read; the "
                    "next run confirms it from AWS",
                    UNCONFIRMED,
                    None,
                )
            if state is not None and state[0] not in ("Deleting", "Deleted"):
                ctx.ledger.advance_lease(key, ctx.run_id, RELEASED)
                raise
        outcome = record_done(ctx, step, key, "deleted (the space and its storage are kept)")
        return outcome, Outcome.DONE, None

    return act
