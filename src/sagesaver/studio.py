"""The Studio run: idle apps, what they cost, deleting them (the space's storage is kept), and
the domains and spaces with no built-in idle shutdown configured.

Prices of Studio instances are taken from the notebook-instance column of the price table
(the same on-demand list for the common types); an unknown type has cost null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sagesaver.aws import studio as aws_studio
from sagesaver.aws import tags
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.decide.enforce import SCHEDULED_TAG, Stage, Step, plan_enforcement, tag_value
from sagesaver.decide.studio import decide_app
from sagesaver.ledger import Entry, Ledger
from sagesaver.model import Decision, ScanError
from sagesaver.policy import Policy
from sagesaver.pricing import Pricer


@dataclass(frozen=True)
class AppOutcome:
    """A decision on an app and what was done about it."""

    decision: Decision
    outcome: str
    applied: bool = False


@dataclass
class StudioResult:
    """Everything a Studio run found and did."""

    generated_at: datetime
    apps: list[AppOutcome] = field(default_factory=list)
    gaps: list[aws_studio.ShutdownGap] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)


def _act(
    aws: Aws, app: aws_studio.StudioApp, decision: Decision, now: datetime, ledger: Ledger | None
) -> AppOutcome:
    if ledger is None:
        return AppOutcome(decision, "skipped: a ledger is needed to record the deletion")
    if not aws_studio.still_idle(aws, app):
        return AppOutcome(decision, "skipped: used or changed since the scan")
    if not ledger.claim(f"{app.resource.arn}|{app.last_activity}|delete", now):
        return AppOutcome(decision, "skipped: another run already acted on it")
    aws_studio.delete_app(aws, app)
    resource = decision.resource
    ledger.record(
        Entry(
            at=now,
            account=resource.account,
            region=resource.region,
            kind=resource.kind.value,
            resource=resource.name,
            action="delete",
            rule=decision.rule,
            reason=decision.reason,
            hourly_cost_usd=decision.hourly_cost_usd,
            dry_run=False,
            outcome="deleted",
            tags=dict(resource.tags),
        )
    )
    return AppOutcome(decision, "deleted (the space and its storage are kept)", True)


def _carry_out(
    aws: Aws,
    app: aws_studio.StudioApp,
    step: Step,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
) -> AppOutcome:
    decision = step.decision
    when = step.deadline.strftime("%Y-%m-%d %H:%M UTC") if step.deadline else "-"
    if step.stage is Stage.WAIT:
        return AppOutcome(decision, f"delete due after {when}")
    if step.stage is Stage.DEFER:
        return AppOutcome(decision, step.reason)
    if step.stage is Stage.ANNOUNCE:
        if not apply:
            return AppOutcome(decision, f"would schedule delete for {when}")
        assert step.deadline is not None
        tags.set_tag(aws, app.resource, SCHEDULED_TAG, tag_value(step.action, step.deadline))
        return AppOutcome(decision, f"delete scheduled for {when}", True)
    if step.stage is Stage.SPARE:
        if not apply:
            return AppOutcome(decision, f"would remove {SCHEDULED_TAG}: {step.reason}")
        tags.remove_tag(aws, app.resource, SCHEDULED_TAG)
        return AppOutcome(decision, f"spared: {step.reason}", True)
    if not apply:
        return AppOutcome(decision, "would delete (space storage kept)")
    return _act(aws, app, decision, now, ledger)


def studio_run(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    pricer: Pricer | None = None,
) -> StudioResult:
    """Inventory Studio in each region, decide, and (with ``apply``) announce, spare or delete
    idle apps, with the same grace-period tags and guards as endpoints."""
    pricer = pricer or Pricer()
    rules = policy.studio_apps
    result = StudioResult(generated_at=now)
    for region in regions:
        try:
            result.gaps.extend(aws_studio.shutdown_gaps(aws, region))
        except AWS_ERRORS as exc:
            result.errors.append(scan_error(exc, region, "ListDomains/ListSpaces"))
        try:
            apps = aws_studio.in_service_apps(aws, region, list(rules.app_types))
        except AWS_ERRORS as exc:
            result.errors.append(scan_error(exc, region, "ListApps"))
            continue
        decided = []
        for app in apps:
            itype = app.resource.instance_type
            cost = pricer.hourly(region, "notebook", itype) if itype else None
            space = app.space or app.user_profile or ""
            decided.append(
                (app, decide_app(app.resource, space, app.last_activity, rules, now, cost))
            )
        plan = plan_enforcement(
            [d for _, d in decided], rules.grace_hours, rules.max_actions_per_run, now
        )
        steps = {step.decision.resource.arn: step for step in plan.steps}
        for app, decision in decided:
            step = steps.get(app.resource.arn)
            if step is None:
                result.apps.append(AppOutcome(decision, decision.action.value))
                continue
            try:
                result.apps.append(_carry_out(aws, app, step, now, apply, ledger))
            except AWS_ERRORS as exc:
                error = scan_error(exc, region, f"enforce:{step.stage.value}", app.resource.name)
                result.errors.append(error)
                result.apps.append(AppOutcome(decision, f"failed: {error.message}"))
    return result
