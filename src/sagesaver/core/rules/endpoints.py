"""Idle rules for real-time endpoints.

An endpoint is *idle* when it is at least ``min_age_hours`` old (counted from its creation or
its last modification, whichever is later) and the ``Invocations`` of **all** its variants sum
to at most ``max_invocations`` (0 by default: none) over the last ``idle_hours``. A published
zero counts as idle; traffic beyond that on any variant counts as activity. A missing activity
reading never makes an endpoint idle. The last-moment guard uses the same threshold
(:func:`sagesaver.core.guard.guard_endpoint`).

Serverless variants (``ServerlessConfig``) cost nothing between requests unless they hold
``ProvisionedConcurrency``, which bills by the hour used or not: an idle serverless endpoint
without it is kept at cost 0; with it, it is judged and priced like any endpoint
(https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html).

Asynchronous endpoints (``AsyncInferenceConfig``) publish no ``Invocations``; their activity is
read from their own metrics (:data:`ASYNC_SIGNAL`), and an idle one is told how to scale to
zero (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sagesaver.core.formats import fmt_hours, hours_between
from sagesaver.core.model import Action, Activity, Decision, Recommendation, Resource
from sagesaver.core.policy import EndpointPolicy
from sagesaver.core.pricing import Pricer, Quote, combine, currency_of

IN_SERVICE = "InService"
# The price-table entry of one GB-hour of serverless provisioned concurrency (the bundled
# table has none yet: such an endpoint then has cost null, "unknown price").
SERVERLESS_PC_PRICE_KEY = "serverless-provisioned-concurrency-gb-hour"
# What the activity of an asynchronous endpoint is read from (see aws/endpoint_signals.py).
ASYNC_SIGNAL = "InvocationsProcessed, ApproximateBacklogSize, HasBacklogWithoutCapacity"
SCALE_TO_ZERO_HOW = (
    "let it scale to zero: register its variant with Application Auto Scaling with "
    "MinCapacity 0, a target-tracking policy on ApproximateBacklogSizePerInstance, and a "
    "step-scaling policy on HasBacklogWithoutCapacity that adds an instance when a request "
    "waits"
)


def endpoint_quote(resource: Resource, pricer: Pricer) -> Quote:
    """The endpoint's instances' price per hour; unknown if a variant's price is unknown.

    Serverless variants cost nothing while idle unless they hold provisioned concurrency
    (priced per GB-hour); variants at 0 instances cost nothing.
    """
    currency = currency_of(resource.region)
    if not resource.variants:
        return Quote(None, currency, "unknown", "its instances could not be read")
    parts: list[tuple[Quote, int]] = []
    for variant in resource.variants:
        if not variant.bills_while_idle:
            continue
        if variant.serverless:
            gb_hour = pricer.quote(resource.region, "hosting", SERVERLESS_PC_PRICE_KEY)
            if gb_hour.amount is None or variant.memory_mb is None:
                note = gb_hour.note or "its memory size could not be read"
                return Quote(None, currency, "unknown", f"variant {variant.name}: {note}")
            gb_hours = variant.memory_mb / 1024 * variant.provisioned_concurrency
            amount = gb_hour.amount * gb_hours
            parts.append((replace(gb_hour, amount=amount), 1))
            continue
        if variant.instance_type is None:
            return Quote(None, currency, "unknown", f"variant {variant.name}: no instance type")
        quote = pricer.quote(resource.region, "hosting", variant.instance_type)
        parts.append((quote, variant.instance_count))
    return combine(parts, currency, pricer.mode)


def endpoint_hourly_cost(resource: Resource, pricer: Pricer) -> float | None:
    """The amount of :func:`endpoint_quote` (in the region's currency), or None."""
    return endpoint_quote(resource, pricer).amount


def activity_words(activity: Activity) -> tuple[str, str]:
    """How to say "traffic" and "no traffic" for the signal the activity was read from."""
    if activity.signal == "Invocations":
        return "invocations", "no Invocations on any variant"
    return (
        f"asynchronous requests processed or queued ({activity.signal})",
        f"no asynchronous request processed or queued ({activity.signal})",
    )


def at_most_words(max_invocations: float) -> str:
    """Why some traffic still counts as idle: the policy's ``max_invocations``."""
    return f"at most {max_invocations:g} counts as idle"


def tags_unknown(decision: Decision, activity: Activity | None) -> Decision:
    """``decision`` on an endpoint whose tags could not be read: kept when idle, since the
    protect tag and the policy's tag filters are unknown (an active one is unchanged)."""
    if not decision.idle or activity is None:
        return decision
    busy_words, idle_words = activity_words(activity)
    seen = f"{idle_words} for {fmt_hours(decision.idle_hours or 0)}"
    if activity.invocations > 0:  # at most the policy's max_invocations
        seen = (
            f"{activity.invocations:g} {busy_words} in the last {fmt_hours(activity.window_hours)}"
        )
    return replace(
        decision,
        action=Action.KEEP,
        rule="tags-unknown",
        reason=f"{seen}; tags could not be read, so nothing is done",
    )


def is_idle_candidate(
    resource: Resource, activity: Activity | None, policy: EndpointPolicy, now: datetime
) -> bool:
    """True when the endpoint is idle by its metrics and age (tags and scope aside).

    The run describes exactly these endpoints to learn their instances and cost.
    """
    if resource.status != IN_SERVICE or activity is None:
        return False
    if activity.invocations > policy.max_invocations:
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
    busy_words, idle_words = activity_words(activity)
    if activity.invocations > policy.max_invocations:
        return keep(
            "active",
            f"{activity.invocations:g} {busy_words} in the last {fmt_hours(activity.window_hours)}",
            idle=False,
        )
    few_words = (
        f"{activity.invocations:g} {busy_words} ({at_most_words(policy.max_invocations)})"
        if activity.invocations > 0
        else "no invocations"
    )
    if age < policy.min_age:
        return keep(
            "min-age",
            f"{few_words}, but created or changed only {fmt_hours(age)} ago "
            f"(min_age_hours {policy.min_age:g})",
            idle=False,
        )

    idle_hours = round(min(activity.window_hours, age), 2)
    idle_reason = f"{idle_words} for {fmt_hours(idle_hours)}"
    if activity.invocations > 0:  # at most max_invocations
        idle_reason = (
            f"{activity.invocations:g} {busy_words} in the last "
            f"{fmt_hours(activity.window_hours)} ({at_most_words(policy.max_invocations)})"
        )
    if not in_scope:
        return keep("scope", f"{idle_reason}; not selected: {scope_reason}", True, idle_hours)
    if protected:
        return keep(
            "protected", f"{idle_reason}; protected by tag {policy.protect_tag}", True, idle_hours
        )
    if resource.variants and all(v.serverless for v in resource.variants):
        if not any(v.bills_while_idle for v in resource.variants):
            return keep(
                "serverless",
                f"{idle_reason}; serverless without provisioned concurrency: it costs nothing "
                "while idle",
                True,
                idle_hours,
            )
    elif resource.variants and not any(v.bills_while_idle for v in resource.variants):
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
    recommendations: tuple[Recommendation, ...] = ()
    if resource.asynchronous:
        recommendations = (
            Recommendation(
                kind="scale-to-zero",
                evidence=f"{idle_reason}; {SCALE_TO_ZERO_HOW}",
                hourly_saving_usd=hourly_cost,
            ),
        )
        idle_reason += f"; {SCALE_TO_ZERO_HOW}"
    return Decision(
        resource=resource,
        action=Action(policy.action),
        rule="idle-endpoint",
        reason=idle_reason,
        idle=True,
        idle_hours=idle_hours,
        hourly_cost=hourly_cost,
        protected=False,
        recommendations=recommendations,
    )
