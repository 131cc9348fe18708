"""The schedule run: list notebook instances, plan starts and stops, act, record.

Every instance is handled on its own: a failed start or stop is listed in ``errors`` and the
others go on. API calls: the list pages and one tag page per region (only where there are
instances), plus one call per instance that must change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws import actions, inventory, tags
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.cron import Transition
from sagesaver.core.formats import iso
from sagesaver.core.model import Resource, ScanError
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer
from sagesaver.core.rules.schedules import (
    Plan,
    PlannedAction,
    Skip,
    assign,
    concerns,
    is_protected,
    plan,
    tick_invocations,
)
from sagesaver.ledger import Entry, Ledger
from sagesaver.render.scan import error_dict

REGION_WORKERS = 8
ACTION_WORKERS = 16  # starts and stops at once per region (botocore adaptive retries)


@dataclass(frozen=True)
class ActionResult:
    """A planned start or stop and what became of it."""

    planned: PlannedAction
    applied: bool
    error: str | None = None


@dataclass
class ScheduleRunResult:
    """What one schedule run did, in every region."""

    at: datetime
    actions: list[ActionResult] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    quiet: dict[tuple[str, str], str] = field(default_factory=dict)


def _targeted_instances(
    aws: Aws, region: str, policy: Policy, errors: list[ScanError]
) -> list[Resource] | None:
    """Notebook instances of the region with their tags; None when they cannot be read."""
    listing = tags.list_with_tags(
        aws, region, inventory.list_notebook_instances, tags.NOTEBOOK_TYPE, errors
    )
    if not listing.listed or not listing.tags_read:
        return None  # without tags the protect tag is unknown: touch nothing in this region
    return listing.tagged  # the untagged ones (ambiguous ARNs) are never touched


def _run_region(
    aws: Aws,
    region: str,
    policy: Policy,
    at: datetime,
    apply: bool,
    ledger: Ledger | None,
    only: frozenset[str] | None,
    pricer: Pricer,
) -> ScheduleRunResult:
    result = ScheduleRunResult(at=at)
    instances = _targeted_instances(aws, region, policy, result.errors)
    if instances is None:
        return result

    def last_run(schedule: str, region: str) -> datetime | None:
        return ledger.last_schedule_run(schedule, region) if ledger is not None else None

    planned: Plan = plan(instances, policy, at, last_run, only)
    result.skipped.extend(planned.skipped)
    result.quiet.update(planned.quiet)
    if not apply:
        result.actions.extend(ActionResult(action, applied=False) for action in planned.actions)
    else:
        # One call per instance, independent of the others: made at once on a bounded pool,
        # reported in the plan's order.
        with ThreadPoolExecutor(max_workers=ACTION_WORKERS) as pool:
            outcomes = list(pool.map(lambda a: _act(aws, region, a), planned.actions))
        for outcome, error in outcomes:
            result.actions.append(outcome)
            if error is not None:
                result.errors.append(error)
    if apply and ledger is not None:
        for outcome in result.actions:
            ledger.record(_entry(outcome, at, pricer))
        for schedule in policy.schedules:
            if only is None or schedule in only:
                ledger.set_schedule_run(schedule, region, at)
    return result


def _act(aws: Aws, region: str, action: PlannedAction) -> tuple[ActionResult, ScanError | None]:
    """Start or stop one instance; a failure is its own, never the others'."""
    name = action.resource.name
    start = action.transition is Transition.START
    try:
        if start:
            actions.start_notebook(aws, region, name)
        else:
            actions.stop_notebook(aws, region, name)
    except AWS_ERRORS as exc:
        operation = "StartNotebookInstance" if start else "StopNotebookInstance"
        error = scan_error(exc, region, operation, name)
        return ActionResult(action, applied=False, error=error.message), error
    return ActionResult(action, applied=True), None


def _entry(outcome: ActionResult, at: datetime, pricer: Pricer) -> Entry:
    action = outcome.planned
    instance_type = action.resource.instance_type
    price = (
        pricer.hourly(action.resource.region, "notebook", instance_type) if instance_type else None
    )
    return Entry(
        at=at,
        account=action.resource.account,
        region=action.resource.region,
        kind=action.resource.kind.value,
        resource=action.resource.name,
        action=action.transition.value,
        rule=f"schedule:{action.schedule}",
        reason=action.reason,
        hourly_cost=price,
        dry_run=False,
        outcome="done" if outcome.applied else f"failed: {outcome.error}",
        tags=dict(action.resource.tags),
    )


def schedule_run(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    at: datetime,
    apply: bool,
    ledger: Ledger | None = None,
    only: frozenset[str] | None = None,
    pricer: Pricer | None = None,
) -> ScheduleRunResult:
    """Run the schedules ``only`` (default: every schedule of the policy) at ``at`` in each
    region (dry run unless ``apply``); the ledger's entries carry the price ``pricer`` quotes
    (the bundled table's when None)."""
    total = ScheduleRunResult(at=at)
    prices = pricer or Pricer()
    workers = max(1, min(REGION_WORKERS, len(regions)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(
            lambda r: _run_region(aws, r, policy, at, apply, ledger, only, prices), regions
        ):
            total.actions.extend(part.actions)
            total.skipped.extend(part.skipped)
            total.errors.extend(part.errors)
            total.quiet.update(part.quiet)
    return total


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
                "reason": a.planned.reason
                if a.error is None
                else f"{a.planned.reason}; failed: {a.error}",
            }
            for a in result.actions
        ],
        "skipped": [
            {
                "name": s.resource.name,
                "region": s.resource.region,
                "schedule": s.schedule,
                "reason": s.reason,
            }
            for s in result.skipped
        ],
        "quiet": [
            {"schedule": schedule, "region": region, "reason": reason}
            for (schedule, region), reason in sorted(result.quiet.items())
        ],
        "errors": [error_dict(e) for e in result.errors],
    }


@dataclass(frozen=True)
class ShowRow:
    """One targeted instance and what its schedule wants."""

    resource: Resource
    schedule: str | None
    reason: str
    wanted: str | None
    next_start: datetime | None
    next_stop: datetime | None
    timezone: str | None


def schedule_show(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    only: frozenset[str] | None = None,
) -> tuple[list[ShowRow], list[ScanError]]:
    """Each targeted instance, its schedule, wanted state now, and next transitions."""
    errors: list[ScanError] = []
    rows: list[ShowRow] = []
    schedules = {name: spec.build(name) for name, spec in policy.schedules.items()}
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
            desired = schedule.desired(now)
            upcoming = schedule.next_transitions(now)
            rows.append(
                ShowRow(
                    resource,
                    assignment.schedule,
                    assignment.reason,
                    None
                    if desired is None
                    else ("running" if desired is Transition.START else "stopped"),
                    upcoming[Transition.START],
                    upcoming[Transition.STOP],
                    schedule.tz.key,
                )
            )
    return rows, errors


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
