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
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.decide.studio import decide_app
from sagesaver.ledger import Entry, Ledger
from sagesaver.model import Action, Decision, ScanError
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


def studio_run(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    pricer: Pricer | None = None,
) -> StudioResult:
    """Inventory Studio in each region, decide, and (with ``apply``) delete idle apps."""
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
        acting = [(a, d) for a, d in decided if d.action is Action.DELETE]
        acting.sort(key=lambda pair: -(pair[1].hourly_cost_usd or 0.0))
        allowed = {id(pair[1]) for pair in acting[: rules.max_actions_per_run]}
        for app, decision in decided:
            if decision.action is not Action.DELETE:
                result.apps.append(AppOutcome(decision, decision.action.value))
            elif id(decision) not in allowed:
                result.apps.append(
                    AppOutcome(
                        decision,
                        f"deferred: over max_actions_per_run ({rules.max_actions_per_run})",
                    )
                )
            elif not apply:
                result.apps.append(AppOutcome(decision, "would delete (space storage kept)"))
            else:
                try:
                    result.apps.append(_act(aws, app, decision, now, ledger))
                except AWS_ERRORS as exc:
                    error = scan_error(exc, region, "DeleteApp", app.resource.name)
                    result.errors.append(error)
                    result.apps.append(AppOutcome(decision, f"failed: {error.message}"))
    return result
