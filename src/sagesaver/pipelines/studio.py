"""The Studio run: idle apps, what they cost, deleting them (the space's storage is kept), and
the domains and spaces with no built-in idle shutdown configured.

Prices of Studio instances are taken from the notebook-instance column of the price table
(the same on-demand list for the common types); an unknown type has cost null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sagesaver.aws import studio as aws_studio
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso
from sagesaver.core.grace import Step
from sagesaver.core.model import Decision, Kind, ScanError, ScanResult
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer, Quote, currency_of
from sagesaver.core.rules.studio import decide_app
from sagesaver.ledger import DELETE_SENT, RELEASED, Ledger
from sagesaver.pipelines.acts import LEASE, Act, RunContext, lease_key, record_done
from sagesaver.pipelines.enforce import EnforcementRun, Lane, enforce
from sagesaver.pipelines.scan import NotifyOutcome, notify_idle, priced
from sagesaver.render.scan import error_dict, resource_dict

CANVAS_NOTE = (
    "Canvas bills its workspace session until the user logs out; deleting the app logs them "
    "out and keeps their work"
)


def canvas_window(policy: Policy) -> timedelta:
    """How far back a Canvas app's TimeSinceLastActive is read: the idle window and an hour."""
    return timedelta(hours=policy.studio_apps.idle_hours + 1)


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
    notified: NotifyOutcome | None = None
    dry_run: bool = True

    def document(self) -> dict[str, Any]:
        """The JSON document of the run."""
        messages = self.notified.messages if self.notified else []
        return {
            "generated_at": iso(self.generated_at),
            "dry_run": self.dry_run,
            "apps": [
                {**resource_dict(a.decision), "outcome": a.outcome, "applied": a.applied}
                for a in self.apps
            ],
            "idle_shutdown_gaps": [
                {"region": g.region, "domain_id": g.domain_id, "space": g.space, "detail": g.detail}
                for g in self.gaps
            ],
            "notifications": [{"subject": m.subject, "body": m.body} for m in messages],
            "notified": bool(self.notified and self.notified.applied),
            "errors": [error_dict(e) for e in self.errors],
        }


def act_on_apps(apps: Mapping[str, aws_studio.StudioApp]) -> Act:
    """Deleting a due app (``apps`` by ARN): a fresh describe, a lease, the delete."""

    def act(aws: Aws, step: Step, ctx: RunContext) -> tuple[str, bool, str | None]:
        resource = step.decision.resource
        app = apps[resource.arn]
        if not aws_studio.still_idle(aws, app, ctx.now, canvas_window(ctx.policy)):
            return "skipped: used or changed since the scan", False, None
        key = lease_key(resource, resource.created)
        expires = ctx.now + LEASE
        subject = {"kind": resource.kind.value, "region": resource.region, "name": resource.name}
        if not ctx.ledger.take_lease(key, ctx.run_id, ctx.now, expires, subject):
            return "skipped: another run is acting on it", False, None
        ctx.ledger.advance_lease(key, ctx.run_id, DELETE_SENT)
        try:
            aws_studio.delete_app(aws, app)
        except AWS_ERRORS:
            ctx.ledger.advance_lease(key, ctx.run_id, RELEASED)
            raise
        outcome = record_done(ctx, step, key, "deleted (the space and its storage are kept)")
        return outcome, True, None

    return act


def studio_run(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    pricer: Pricer | None = None,
    run_id: str | None = None,
) -> StudioResult:
    """Inventory Studio in each region, decide, and (with ``apply``) announce, spare or delete
    idle apps through the same executor as endpoints (:func:`sagesaver.pipelines.enforce.enforce`),
    which also sends the digest before anything is deleted."""
    pricer = pricer or Pricer()
    rules = policy.studio_apps
    result = StudioResult(generated_at=now, dry_run=not apply)
    apps: dict[str, aws_studio.StudioApp] = {}
    decisions: list[Decision] = []
    for region in regions:
        try:
            result.gaps.extend(aws_studio.shutdown_gaps(aws, region))
        except AWS_ERRORS as exc:
            result.errors.append(scan_error(exc, region, "ListDomains/ListSpaces"))
        try:
            found = aws_studio.in_service_apps(aws, region, list(rules.app_types))
        except AWS_ERRORS as exc:
            result.errors.append(scan_error(exc, region, "ListApps"))
            continue
        try:
            found = aws_studio.with_canvas_activity(aws, region, found, canvas_window(policy), now)
        except AWS_ERRORS as exc:
            result.errors.append(scan_error(exc, region, "GetMetricData"))
            found = [
                replace(a, last_activity=None, activity_known=False)
                if a.app_type == aws_studio.CANVAS
                else a
                for a in found
            ]
        for app in found:
            itype = app.resource.instance_type
            quote = (
                pricer.quote(region, "notebook", itype)
                if itype
                else Quote(None, currency_of(region), "unknown", "no instance type")
            )
            space = app.space or app.user_profile or ""
            apps[app.resource.arn] = app
            decision = decide_app(
                app.resource, space, app.last_activity, rules, now, quote.amount, app.activity_known
            )
            if app.app_type == aws_studio.CANVAS and decision.idle:
                decision = replace(decision, reason=f"{decision.reason}; {CANVAS_NOTE}")
            decisions.append(priced(decision, quote))
    scanned = ScanResult(now, list(regions), decisions, result.errors)
    if rules.action == "delete":
        lane = Lane(
            Kind.STUDIO_APP,
            rules.grace_hours,
            rules.max_actions_per_run,
            act_on_apps(apps),
            "after a fresh check; space storage kept",
        )
        done = enforce(aws, scanned, policy, now, apply, ledger, run_id, [lane])
    else:
        done = EnforcementRun([], notify_idle(aws, scanned, policy, apply, None, run_id, ledger))
    by_arn = {s.step.decision.resource.arn: s for s in done.steps}
    for decision in decisions:
        step = by_arn.get(decision.resource.arn)
        if step is None:
            result.apps.append(AppOutcome(decision, decision.action.value))
        else:
            result.apps.append(AppOutcome(decision, step.outcome, step.applied))
    result.notified = done.notified
    return result
