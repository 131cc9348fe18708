"""Idle rules for real-time endpoints.

An endpoint is *idle* when it is at least ``min_age_hours`` old (counted from its creation or
its last modification, whichever is later) and the ``Invocations`` of **all** its variants sum
to zero over the last ``idle_hours``. A published zero counts as idle; traffic on any variant
counts as activity. A missing activity reading never makes an endpoint idle.
"""

from __future__ import annotations

from datetime import datetime

from sagesaver.core.formats import fmt_hours, hours_between
from sagesaver.core.model import Action, Activity, Decision, Resource
from sagesaver.core.policy import EndpointPolicy
from sagesaver.core.pricing import Pricer, Quote, combine, currency_of

IN_SERVICE = "InService"


def endpoint_quote(resource: Resource, pricer: Pricer) -> Quote:
    """The endpoint's instances' price per hour; unknown if a variant's price is unknown.

    Serverless variants cost nothing while idle; variants at 0 instances cost nothing.
    """
    currency = currency_of(resource.region)
    if not resource.variants:
        return Quote(None, currency, "unknown", "its instances could not be read")
    parts: list[tuple[Quote, int]] = []
    for variant in resource.variants:
        if variant.serverless or variant.instance_count == 0:
            continue
        if variant.instance_type is None:
            return Quote(None, currency, "unknown", f"variant {variant.name}: no instance type")
        quote = pricer.quote(resource.region, "hosting", variant.instance_type)
        parts.append((quote, variant.instance_count))
    return combine(parts, currency, pricer.mode)


def endpoint_hourly_cost(resource: Resource, pricer: Pricer) -> float | None:
    """The amount of :func:`endpoint_quote` (in the region's currency), or None."""
    return endpoint_quote(resource, pricer).amount


def is_idle_candidate(
    resource: Resource, activity: Activity | None, policy: EndpointPolicy, now: datetime
) -> bool:
    """True when the endpoint is idle by its metrics and age (tags and scope aside).

    The run describes exactly these endpoints to learn their instances and cost.
    """
    if resource.status != IN_SERVICE or activity is None or activity.invocations > 0:
        return False
    return hours_between(resource.last_changed, now) >= policy.min_age


def decide_endpoint(
    resource: Resource,
    activity: Activity | None,
    policy: EndpointPolicy,
    now: datetime,
    hourly_cost: float | None = None,
) -> Decision:
    """The decision on one endpoint. ``activity`` is None when metrics could not be read."""
    age = hours_between(resource.last_changed, now)
    in_scope, scope_reason = policy.selects(resource.name, resource.tags)
    protected = policy.is_protected(resource.tags)

    def keep(rule: str, reason: str, idle: bool, idle_hours: float | None = None) -> Decision:
        return Decision(
            resource=resource,
            action=Action.KEEP,
            rule=rule,
            reason=reason,
            idle=idle,
            idle_hours=idle_hours,
            hourly_cost=hourly_cost,
            protected=protected,
        )

    if resource.status != IN_SERVICE:
        return keep("status", f"status is {resource.status}, not {IN_SERVICE}", idle=False)
    if activity is None:
        return keep("activity-unknown", "Invocations could not be read: never idle", idle=False)
    if activity.invocations > 0:
        return keep(
            "active",
            f"{activity.invocations:g} invocations in the last {fmt_hours(activity.window_hours)}",
            idle=False,
        )
    if age < policy.min_age:
        return keep(
            "min-age",
            f"no invocations, but created or changed only {fmt_hours(age)} ago "
            f"(min_age_hours {policy.min_age:g})",
            idle=False,
        )

    idle_hours = round(min(activity.window_hours, age), 2)
    idle_reason = f"no Invocations on any variant for {fmt_hours(idle_hours)}"
    if not in_scope:
        return keep("scope", f"{idle_reason}; not selected: {scope_reason}", True, idle_hours)
    if protected:
        return keep(
            "protected", f"{idle_reason}; protected by tag {policy.protect_tag}", True, idle_hours
        )
    if resource.variants and all(v.serverless or v.instance_count == 0 for v in resource.variants):
        return keep(
            "zero-instances",
            f"{idle_reason}; scaled to 0 instances, so it costs nothing",
            True,
            idle_hours,
        )
    if not resource.variants:
        return keep(
            "details-unknown",
            f"{idle_reason}; its instances could not be read, so nothing is done",
            True,
            idle_hours,
        )
    return Decision(
        resource=resource,
        action=Action(policy.action),
        rule="idle-endpoint",
        reason=idle_reason,
        idle=True,
        idle_hours=idle_hours,
        hourly_cost=hourly_cost,
        protected=False,
    )
