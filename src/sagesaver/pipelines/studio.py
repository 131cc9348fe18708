"""The Studio run: idle apps, what they cost, deleting them (the space's storage is kept), and
the domains and spaces with no built-in idle shutdown configured.

Prices of Studio instances are taken from the notebook-instance column of the price table
(the same on-demand list for the common types); an unknown type has cost null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sagesaver.aws import studio as aws_studio
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso
from sagesaver.core.model import Decision, Kind, ScanError, ScanResult
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer, Quote, currency_of
from sagesaver.core.rules.studio import decide_app
from sagesaver.core.thresholds import below_min_cost
from sagesaver.ledger import Ledger
from sagesaver.pipelines.acts import act_on_studio_apps, canvas_window
from sagesaver.pipelines.enforce import EnforcementRun, enforce
from sagesaver.pipelines.kinds import ACTING
from sagesaver.pipelines.scan import NotifyOutcome, notify_idle, priced
from sagesaver.render.scan import error_dict, resource_dict

CANVAS_NOTE = (
    "Canvas bills its workspace session until the user logs out; deleting the app logs them "
    "out and keeps their work"
)


@dataclass(frozen=True)
class AppOutcome:
    """A decision on an app and what was done about it."""

    decision: Decision
    outcome: str
    applied: bool = False


# What an unread part of Studio hides (``Unread.scope``): a region's apps (ListApps), one
# app, or idle-shutdown settings (of a region's domains, ListDomains, or of one domain).
APPS, APP, IDLE_SHUTDOWN = "apps", "app", "idle-shutdown"


@dataclass(frozen=True)
class Unread:
    """A part of Studio that could not be read, so its absence from the result says nothing:
    ``scope`` (:data:`APPS`, :data:`APP`, :data:`IDLE_SHUTDOWN`) and the error (its
    ``resource`` names the app or domain; None for a whole region)."""

    scope: str
    error: ScanError


@dataclass
class StudioResult:
    """Everything a Studio run found and did, and what it could not read."""

    generated_at: datetime
    apps: list[AppOutcome] = field(default_factory=list)
    gaps: list[aws_studio.ShutdownGap] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    notified: NotifyOutcome | None = None
    dry_run: bool = True
    unread: list[Unread] = field(default_factory=list)

    def not_read(self, scope: str, errors: Sequence[ScanError]) -> None:
        """Record ``errors`` as errors of the run and as what they left unread."""
        self.errors.extend(errors)
        self.unread.extend(Unread(scope, e) for e in errors)

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
            # Never "none": what could not be read, so an empty list above is not taken as such.
            "unread": [{"scope": u.scope, **error_dict(u.error)} for u in self.unread],
            "errors": [error_dict(e) for e in self.errors],
        }


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
        domains: list[ScanError] = []  # a domain that cannot be read hides only its gaps
        try:
            result.gaps.extend(aws_studio.shutdown_gaps(aws, region, domains))
        except AWS_ERRORS as exc:
            domains.append(scan_error(exc, region, "ListDomains"))
        result.not_read(IDLE_SHUTDOWN, domains)
        described: list[ScanError] = []  # an app that cannot be described hides only itself
        try:
            found = aws_studio.in_service_apps(aws, region, list(rules.app_types), described)
        except AWS_ERRORS as exc:
            result.not_read(APPS, [scan_error(exc, region, "ListApps")])
            continue
        result.not_read(APP, described)
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
            decisions.append(below_min_cost(priced(decision, quote), policy.min_hourly_cost))
    scanned = ScanResult(now, list(regions), decisions, result.errors)
    if rules.action == "delete":
        lane = ACTING[Kind.STUDIO_APP].lane(policy, act_on_studio_apps(apps))
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
