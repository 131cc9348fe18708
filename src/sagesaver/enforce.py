"""Carry out the enforcement plan: announce, spare, and delete with a backup.

Guards, in order, for a deletion: ``--apply``; the plan's own (protect tag, minimum age,
selection, grace period, ``max_actions_per_run``, most expensive first); a fresh describe and
metrics read just before acting (skipped if the state or modification time changed, or traffic
came back); a claim in the ledger, so two runs at the same moment never act twice; a complete
backup stored *before* the delete. One endpoint's failure never stops the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sagesaver.aws import endpoints as aws_endpoints
from sagesaver.aws import tags
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.decide.enforce import SCHEDULED_TAG, Stage, Step, plan_enforcement, tag_value
from sagesaver.ledger import Backup, Entry, Ledger
from sagesaver.model import Kind, ScanError
from sagesaver.policy import Policy
from sagesaver.report import iso
from sagesaver.run import ScanResult


@dataclass(frozen=True)
class StepResult:
    """What became of one step."""

    step: Step
    applied: bool
    outcome: str
    backup_id: str | None = None


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
        "deadline": iso(deadline) if deadline else None,
        "applied": result.applied,
        "outcome": result.outcome,
        "backup_id": result.backup_id,
    }


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _entry(
    step: Step, now: datetime, outcome: str, dry_run: bool, backup_id: str | None = None
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
        hourly_cost_usd=step.decision.hourly_cost_usd,
        dry_run=dry_run,
        outcome=outcome,
        backup_ref=backup_id,
        tags={k: v for k, v in resource.tags.items() if k != SCHEDULED_TAG},
    )


def _delete(
    aws: Aws, step: Step, policy: Policy, now: datetime, ledger: Ledger
) -> tuple[str, str | None]:
    """Re-check, claim, back up, delete. Returns (outcome, backup id)."""
    endpoint = step.decision.resource
    ok, why, described = aws_endpoints.fresh_check(aws, endpoint, policy.endpoints.idle_hours, now)
    if not ok or described is None:
        return f"skipped: {why}", None
    created = described.get("CreationTime", endpoint.created)
    if not ledger.claim(f"{endpoint.arn}|{created}|delete", now):
        return "skipped: another run already acted on it", None
    document = aws_endpoints.backup(aws, endpoint, described)
    document["endpoint"]["Tags"] = [
        t for t in document["endpoint"]["Tags"] if t["Key"] != SCHEDULED_TAG
    ]
    backup_id = f"{endpoint.name}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    ledger.save_backup(
        Backup(backup_id, now, endpoint.account, endpoint.region, endpoint.name, document)
    )
    config = described["EndpointConfigName"] if policy.endpoints.delete_config else None
    aws_endpoints.delete(aws, endpoint, config)
    return "deleted" + (" with its configuration" if config else ""), backup_id


def enforce(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
) -> list[StepResult]:
    """Announce, wait, spare or delete each endpoint the plan names. Errors go to ``result``."""
    rules = policy.endpoints
    decisions = [d for d in result.decisions if d.resource.kind is Kind.ENDPOINT]
    plan = plan_enforcement(decisions, rules.grace_hours, rules.max_actions_per_run, now)
    results: list[StepResult] = []
    for step in plan.steps:
        endpoint = step.decision.resource
        member = result.session_for(endpoint.account, aws)
        try:
            outcome, applied, backup_id = _carry_out(member, step, policy, now, apply, ledger)
        except AWS_ERRORS as exc:
            error: ScanError = scan_error(
                exc, endpoint.region, f"enforce:{step.stage.value}", endpoint.name
            )
            result.errors.append(error)
            outcome, applied, backup_id = f"failed: {error.message}", False, None
        results.append(StepResult(step, applied, outcome, backup_id))
        if (
            ledger is not None
            and apply
            and step.stage in (Stage.ANNOUNCE, Stage.ACT, Stage.SPARE, Stage.DEFER)
        ):
            ledger.record(_entry(step, now, outcome, dry_run=False, backup_id=backup_id))
    return results


def _carry_out(
    aws: Aws, step: Step, policy: Policy, now: datetime, apply: bool, ledger: Ledger | None
) -> tuple[str, bool, str | None]:
    endpoint = step.decision.resource
    if step.stage is Stage.WAIT:
        return f"{step.action} due after {_when(step.deadline)}", False, None
    if step.stage is Stage.DEFER:
        return step.reason, False, None
    if step.stage is Stage.ANNOUNCE:
        if not apply:
            return f"would schedule {step.action} for {_when(step.deadline)}", False, None
        assert step.deadline is not None
        tags.set_tag(aws, endpoint, SCHEDULED_TAG, tag_value(step.action, step.deadline))
        return f"{step.action} scheduled for {_when(step.deadline)}", True, None
    if step.stage is Stage.SPARE:
        if not apply:
            return f"would remove {SCHEDULED_TAG}: {step.reason}", False, None
        tags.remove_tag(aws, endpoint, SCHEDULED_TAG)
        return f"spared: {step.reason}", True, None
    if not apply:
        return f"would {step.action} (after a fresh check and a backup)", False, None
    if ledger is None:
        return "skipped: a ledger is needed to keep the backup", False, None
    outcome, backup_id = _delete(aws, step, policy, now, ledger)
    return outcome, backup_id is not None, backup_id
