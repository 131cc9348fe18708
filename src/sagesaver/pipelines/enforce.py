"""Carry out the enforcement plan: announce, tell people, then act; every step recorded.

One executor for every resource kind. A run:

1. finishes or releases what earlier runs left half-done (expired leases, see
   :func:`~sagesaver.pipelines.recovery.recover`), and records the resources created again
   after SageSaver acted on one of their name (their savings end there);
2. plans each resource's step from the scan, the tags, and the deadlines SageSaver itself
   announced (the ledger): announce, wait, spare, hold (facts unreadable: change nothing),
   defer, or act;
3. writes the announcement and spare tags, then sends **one** digest naming every step,
   including the acts it is about to make. If the digest cannot be sent, nothing is acted on
   in this run; announcements count only once a digest carrying them was delivered;
4. acts on each due resource through its kind's act (:mod:`.acts`): a lease in the ledger
   (the intent), the last-moment guard reading everything again, the irreversible call, then
   its typed entry and the lease closed. A run that dies half-way leaves an expired lease that
   the next run resolves by looking at the real state; a ledger that cannot be written stops
   every act.

Each kind under enforcement is registered in :data:`~sagesaver.pipelines.kinds.ACTING` and
enters a run as a :class:`~sagesaver.pipelines.kinds.Lane`: endpoints (deleted after a
backup), Studio apps (deleted, their space kept), and training jobs' idle warm pools (released
with ``UpdateTrainingJob``: no backup is needed, the job and its model stay; no grace tag,
since a pool lives at most 6 hours: the digest sent before the act announces it). All lanes of
a run share its one digest.

One resource's failure never stops the others.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws import tags
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.metrics import UnreadableMetrics
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso, minute
from sagesaver.core.grace import (
    SCHEDULED_TAG,
    EnforcementPlan,
    Stage,
    Step,
    announcement_key,
    plan_enforcement,
    tag_value,
)
from sagesaver.core.model import Kind, ScanError, ScanResult
from sagesaver.core.policy import Policy
from sagesaver.ledger import (
    Ledger,
    Outcome,
)
from sagesaver.ledger.errors import LEDGER_ERRORS, ledger_error
from sagesaver.pipelines.acts import (
    LeaseLost,
    RunContext,
    _entry,
    backup_location,
)
from sagesaver.pipelines.kinds import ACTING, Lane, run_lanes
from sagesaver.pipelines.recovery import reach, record_returns, recover
from sagesaver.pipelines.scan import NotifyOutcome, notify_idle


@dataclass(frozen=True)
class StepResult:
    """What became of one step."""

    step: Step
    applied: bool
    outcome: str
    backup_id: str | None = None
    backup_location: str | None = None
    # Typed: an act carried out is DONE; a tag written or a step waiting is PLANNED.
    status: Outcome = Outcome.PLANNED


@dataclass
class EnforcementRun:
    """Every step of a run and the digest that announced them."""

    steps: list[StepResult] = field(default_factory=list)
    notified: NotifyOutcome | None = None


def new_run_id() -> str:
    """A fresh identifier for one run (the Lambda passes its request id instead)."""
    return uuid.uuid4().hex[:16]


def step_dict(result: StepResult) -> dict[str, Any]:
    """The JSON object of one enforcement step (the CLI's and the handler's)."""
    resource = result.step.decision.resource
    deadline = result.step.deadline
    return {
        "name": resource.name,
        "region": resource.region,
        "account": resource.account,
        "stage": result.step.stage.value,
        "action": result.step.action,
        "reason": result.step.reason,
        "deadline": iso(deadline) if deadline else None,
        "applied": result.applied,
        "outcome": result.outcome,
        "status": result.status.value,
        "backup_id": result.backup_id,
        "backup_location": result.backup_location,
    }


# No act starts with less time left than this (a Lambda invocation's): a guard, a backup and a
# delete take seconds, and one cut short by the time-out is left for recovery to sort out.
ACT_RESERVE_S = 120.0


# --- the run ---------------------------------------------------------------------------------


def _prepare_step(aws: Aws, step: Step, apply: bool) -> tuple[str, bool]:
    """Everything but acting: announce, spare, hold, wait, defer."""
    resource = step.decision.resource
    if step.stage is Stage.WAIT:
        return f"{step.action} due after {minute(step.deadline)}", False
    if step.stage is Stage.DEFER:
        return step.reason, False
    if step.stage is Stage.HOLD:
        return f"nothing changed: {step.reason}", False
    if step.stage is Stage.ANNOUNCE:
        if not apply:
            return f"would schedule {step.action} for {minute(step.deadline)}", False
        if step.deadline is None:  # an announcement always has its deadline
            raise ValueError(f"announcing {step.action} without a deadline")
        tags.set_tag(aws, resource, SCHEDULED_TAG, tag_value(step.action, step.deadline))
        return f"{step.action} scheduled for {minute(step.deadline)}", True
    if not apply:
        return f"would remove {SCHEDULED_TAG}: {step.reason}", False
    tags.remove_tag(aws, resource, SCHEDULED_TAG)
    return f"spared: {step.reason}", True


def _record_announcements(
    ledger: Ledger,
    plan: EnforcementPlan,
    outcomes: dict[int, StepResult],
    acting: list[int],
    now: datetime,
    message_ids: list[str],
) -> None:
    """Record the announcements the digest carried (``message_ids``): the deadlines written in
    this run, and, for a step due now that no delivered digest announced before (a grace period
    of 0), this run's digest, which names it. The guard still refuses an act unless the grace
    period has passed since its announcement."""
    for step_result in outcomes.values():
        step = step_result.step
        if step.stage is Stage.ANNOUNCE and step_result.applied and step.deadline:
            key = announcement_key(step.decision.resource)
            ledger.record_announcement(key, step.deadline, now, message_ids)
    acting_keys = [announcement_key(plan.steps[i].decision.resource) for i in acting]
    before = ledger.announcements(acting_keys) if acting_keys else {}
    for key in acting_keys:
        if key not in before or not before[key].delivered:
            ledger.record_announcement(key, now, now, message_ids)


@dataclass
class Prepared:
    """A run's plan once its tags are written, before its digest: the steps, what became of
    every step but the acts (by index in ``plan.steps``), and the lanes by kind."""

    plan: EnforcementPlan
    outcomes: dict[int, StepResult]
    lanes: dict[Kind, Lane]

    @property
    def acting(self) -> list[int]:
        """The indexes of the steps due to be acted on in this run."""
        return [i for i, s in enumerate(self.plan.steps) if s.stage is Stage.ACT]


def enforce(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    run_id: str | None = None,
    lanes: Sequence[Lane] | None = None,
    time_left: Callable[[], float] | None = None,
) -> EnforcementRun:
    """Plan, announce, notify, then act on the resources of ``result`` of each lane's kind
    (endpoints when no lane is given; module docstring). Errors go to ``result.errors``; the
    digest goes out once per ``run_id``. The three phases are :func:`prepare_run`,
    :func:`announce_run` and :func:`act_steps`; the organisation run calls them apart, from
    its own Lambda items (:mod:`sagesaver.pipelines.organisation`)."""
    run_id = run_id or new_run_id()
    prepared = prepare_run(aws, result, policy, now, apply, ledger, run_id, lanes)
    notified, announced_ok = announce_run(aws, result, policy, now, apply, ledger, run_id, prepared)
    outcomes = act_steps(
        aws, result, policy, now, apply, ledger, run_id, prepared, announced_ok, time_left
    )
    steps = [outcomes[i] for i in range(len(prepared.plan.steps))]
    if ledger is not None and apply:
        record_steps(ledger, steps, now, result)
    return EnforcementRun(steps, notified)


def lanes_of(policy: Policy, lanes: Sequence[Lane] | None = None) -> dict[Kind, Lane]:
    """The lanes of a run by kind: those given, else endpoints' alone."""
    chosen = list(lanes) if lanes else [ACTING[Kind.ENDPOINT].lane(policy)]
    return {lane.kind: lane for lane in chosen}


def prepare_run(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    run_id: str,
    lanes: Sequence[Lane] | None = None,
    mark_seen: bool = True,
) -> Prepared:
    """Phase 1: recover what earlier runs left half-done, plan every step, and write the
    announcement and spare tags (with ``apply``). ``mark_seen``: record that a scan without
    errors saw every resource of the lanes' kinds (False for one part of a wider run)."""
    by_kind = lanes_of(policy, lanes)
    # A scan that read everything: what the ledger says of these kinds holds until now.
    complete = not result.errors
    if apply and ledger is not None:
        context = RunContext(run_id, now, policy, ledger)
        resolvers = {kind: ACTING[kind].resolve for kind in by_kind}
        _, errors = recover(reach(result, aws), ledger, result.regions, context, resolvers)
        result.errors.extend(errors)
        try:
            record_returns(ledger, result.decisions, set(by_kind), now)
            if complete and mark_seen:
                for kind in by_kind:
                    ledger.mark_seen(kind.value, now)
        except LEDGER_ERRORS as exc:
            result.errors.append(ledger_error(exc, ledger.location, "the resources seen again"))
    plan = EnforcementPlan()
    for lane in by_kind.values():
        decisions = [d for d in result.decisions if d.resource.kind is lane.kind]
        keys = [announcement_key(d.resource) for d in decisions if SCHEDULED_TAG in d.resource.tags]
        delivered = ledger.announcements(keys) if ledger is not None and keys else {}
        # only an announcement a digest carried counts: one made in silence is made again
        announced = {k: a.deadline for k, a in delivered.items() if a.delivered}
        lane_plan = plan_enforcement(decisions, lane.grace_hours, lane.max_actions, now, announced)
        plan.steps.extend(lane_plan.steps)

    outcomes: dict[int, StepResult] = {}
    for index, step in enumerate(plan.steps):
        if step.stage is Stage.ACT:
            continue
        resource = step.decision.resource
        status = Outcome.PLANNED
        try:
            outcome, applied = _prepare_step(result.session_for(resource.account, aws), step, apply)
        except AWS_ERRORS as exc:
            error = scan_error(exc, resource.region, f"enforce:{step.stage.value}", resource.name)
            result.errors.append(error)
            outcome, applied, status = f"failed: {error.message}", False, Outcome.FAILED
        outcomes[index] = StepResult(step, applied, outcome, status=status)
    return Prepared(plan, outcomes, by_kind)


def announce_run(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    run_id: str,
    prepared: Prepared,
) -> tuple[NotifyOutcome, bool]:
    """Phase 2: one digest naming every step, including the acts about to be made, and the
    announcements it carried recorded. Returns the digest's outcome and whether acts may
    follow (``apply`` and the digest delivered)."""
    plan, outcomes, acting = prepared.plan, prepared.outcomes, prepared.acting
    notes = {r.step.decision.resource.arn: r.outcome for r in outcomes.values()}
    for index in acting:
        step = plan.steps[index]
        notes[step.decision.resource.arn] = (
            f"to be {step.action}d in this run, after a fresh check"
            + ACTING[step.decision.resource.kind].note(ledger)
            + (f" ({step.reason})" if step.reason.startswith("deadline tag") else "")
        )
    news_arns = {plan.steps[i].decision.resource.arn for i in acting} | {
        r.step.decision.resource.arn
        for r in outcomes.values()
        if r.step.stage is Stage.ANNOUNCE and r.applied
    }
    notified = notify_idle(
        aws,
        result,
        policy,
        apply,
        notes,
        run_id=run_id,
        ledger=ledger,
        news=bool(news_arns),
        news_arns=news_arns,
    )
    announced_ok = apply and notified.applied
    if (
        apply
        and acting
        and not announced_ok
        and not any(e.operation in ("Publish", "ChatWebhook") for e in result.errors)
    ):
        result.errors.append(
            ScanError(
                "-",
                "Publish",
                "no digest could be sent (set notify.sns_topic_arn or notify.channels): "
                "nothing is deleted before people are told",
                code="NotAnnounced",
            )
        )
    if announced_ok and ledger is not None and notified.message_ids:
        try:
            _record_announcements(ledger, plan, outcomes, acting, now, notified.message_ids)
        except LEDGER_ERRORS as exc:  # unrecorded, they do not count: announced again later
            result.errors.append(ledger_error(exc, ledger.location, "the announcements"))
    return notified, announced_ok


def act_steps(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    run_id: str,
    prepared: Prepared,
    announced_ok: bool,
    time_left: Callable[[], float] | None = None,
) -> dict[int, StepResult]:
    """Phase 3: act on each due step through its lane's act (guard, intent, act, record) when
    ``apply``, a ledger and a delivered digest allow; otherwise say why not. Returns every
    step's result by index (the earlier phases' with the acts')."""
    outcomes = dict(prepared.outcomes)
    for index in prepared.acting:
        step = prepared.plan.steps[index]
        resource = step.decision.resource
        lane = prepared.lanes[resource.kind]
        if not apply:
            outcomes[index] = StepResult(step, False, f"would {step.action} ({lane.would})")
            continue
        if ledger is None:
            outcomes[index] = StepResult(
                step, False, "skipped: a ledger is needed to act", status=Outcome.SKIPPED
            )
            continue
        if not announced_ok:
            outcomes[index] = StepResult(
                step,
                False,
                "not done: the digest announcing it could not be sent",
                status=Outcome.SKIPPED,
            )
            continue
        left = time_left() if time_left is not None else None
        if left is not None and left < ACT_RESERVE_S:
            outcomes[index] = StepResult(
                step,
                False,
                f"left for the next run: {left:.0f} s of this invocation remain, an act is "
                f"started with {ACT_RESERVE_S:.0f} s or more",
                status=Outcome.SKIPPED,
            )
            continue
        context = RunContext(run_id, now, policy, ledger)
        try:
            outcome, status, backup_id = lane.act(
                result.session_for(resource.account, aws), step, context
            )
        except UnreadableMetrics as exc:
            result.errors.append(
                ScanError(
                    resource.region, "GetMetricData", str(exc), resource.name, "IncompleteData"
                )
            )
            outcome, status, backup_id = f"skipped: {exc}", Outcome.SKIPPED, None
        except LeaseLost:
            outcome, status, backup_id = "stopped: another run took it over", Outcome.SKIPPED, None
        except AWS_ERRORS as exc:
            error = scan_error(exc, resource.region, "enforce:act", resource.name)
            result.errors.append(error)
            outcome, status, backup_id = f"failed: {error.message}", Outcome.FAILED, None
        except LEDGER_ERRORS as exc:  # before the act: no act without its record
            error = ledger_error(exc, ledger.location, "the act's intent", resource.name)
            result.errors.append(error)
            outcome, status, backup_id = f"failed: {error.message}", Outcome.FAILED, None
        where = backup_location(ledger, backup_id) if backup_id else None
        applied = status is Outcome.DONE
        outcomes[index] = StepResult(step, applied, outcome, backup_id, where, status)
    return outcomes


def record_steps(
    ledger: Ledger, steps: Sequence[StepResult], now: datetime, result: ScanResult
) -> None:
    """Record each announce, act, spare and defer step in the ledger (an act carried out was
    recorded by the act itself, before its lease was closed); a failed write is an error of
    ``result``."""
    for step_result in steps:
        step = step_result.step
        if step.stage is Stage.ACT and step_result.applied:
            continue
        if step.stage in (Stage.ANNOUNCE, Stage.ACT, Stage.SPARE, Stage.DEFER):
            entry = _entry(
                step,
                now,
                step_result.outcome,
                False,
                step_result.backup_id,
                status=step_result.status,
            )
            try:
                ledger.record(entry)
            except LEDGER_ERRORS as exc:
                what = f"the {step.stage.value} step"
                result.errors.append(ledger_error(exc, ledger.location, what, entry.resource))


def run_document(done: EnforcementRun, apply: bool) -> dict[str, Any]:
    """What ``run`` adds to the scan's JSON document: the steps and the digest."""
    notified = done.notified
    messages = notified.messages if notified else []
    return {
        "applied": bool(notified and notified.applied),
        "dry_run": not apply,
        "sns_topic_arn": notified.topic_arn if notified else None,
        "enforcement": [step_dict(s) for s in done.steps],
        "notifications": [
            {"subject": m.subject, "body": m.body, "bytes": len(m.body.encode())} for m in messages
        ],
        "message_ids": notified.message_ids if notified else [],
        "digest_held": notified.held if notified else None,
        "channels": [r.document() for r in (notified.channels if notified else [])],
        "owner_notifications": [
            {
                "owner": digest.owner,
                "applied": digest.applied,
                "held": digest.held,
                "message_ids": digest.message_ids,
                "messages": [{"subject": m.subject, "body": m.body} for m in digest.messages],
            }
            for digest in (notified.owners if notified else [])
        ],
    }


def enforce_and_notify(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    run_id: str | None = None,
    time_left: Callable[[], float] | None = None,
) -> EnforcementRun:
    """The acting part of a run after its scan, shared by the CLI, the Lambda handler and
    the demo: with ``endpoints.action: delete`` and/or ``jobs.warm_pools.action: release``,
    :func:`enforce` on those lanes (which sends the digest first); otherwise the digest alone.
    ``time_left``: seconds the run may still take (a Lambda invocation's), checked before
    each act."""
    lanes = run_lanes(policy)
    if lanes:
        return enforce(aws, result, policy, now, apply, ledger, run_id, lanes, time_left)
    return EnforcementRun([], notify_idle(aws, result, policy, apply, None, run_id, ledger))
