"""Idle rules for inference components, and what they mean for the endpoint that hosts them.

A component is idle when it is ``InService``, at least ``min_age_hours`` old and its
``Invocations`` (dimension ``InferenceComponentName``) sum to at most the endpoint policy's
``max_invocations`` (0 by default) over ``idle_hours``, the endpoints' own rule. It is
reported on its own, with the advice to set its copies to 0; SageSaver never changes it. It is
judged by the endpoint policy, with its endpoint's tags (selection, protection, owner). An
endpoint that hosts components is idle only when its own variants and every component are.

Only an endpoint whose configuration leaves ``ModelName`` out of a variant can host components
(an endpoint made for them names no model; one that names a model in every variant serves that
model). So when the components cannot be listed (``ListInferenceComponents`` denied by a policy
written before it existed, or not offered in the region), only the endpoints that could host
them are unknown: the others are judged by their own ``Invocations``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sagesaver.core.formats import fmt_hours, hours_between, plural
from sagesaver.core.model import Action, Activity, Decision, Kind, Recommendation, Resource
from sagesaver.core.policy import EndpointPolicy
from sagesaver.core.rules.endpoints import at_most_words

IN_SERVICE = "InService"
COPIES_TO_ZERO = (
    "set its copies to 0 (UpdateInferenceComponentRuntimeConfig with DesiredCopyCount 0, or an "
    "Application Auto Scaling target with MinCapacity 0) to free its accelerators and memory"
)


def decide_component(
    component: Resource, activity: Activity | None, policy: EndpointPolicy, now: datetime
) -> Decision:
    """The decision on one inference component (``instance_count``: its copies, None when
    not read). Never more than ``notify``."""
    protected = policy.is_protected(component.tags)

    def keep(rule: str, reason: str, idle: bool, idle_hours: float | None = None) -> Decision:
        return Decision(component, Action.KEEP, rule, reason, idle, idle_hours, None, protected)

    if component.status != IN_SERVICE:
        return keep("status", f"status is {component.status}, not {IN_SERVICE}", idle=False)
    if activity is None:
        return keep("activity-unknown", "Invocations could not be read: never idle", idle=False)
    window = fmt_hours(activity.window_hours)
    if activity.invocations > policy.max_invocations:
        return keep(
            "active", f"{plural(activity.invocations, 'invocation')} in the last {window}", False
        )
    few_words = (
        f"{plural(activity.invocations, 'invocation')} ({at_most_words(policy.max_invocations)})"
        if activity.invocations > 0
        else "no invocations"
    )
    age = hours_between(component.last_changed, now)
    if age < policy.min_age:
        return keep(
            "min-age",
            f"{few_words}, but created or changed only {fmt_hours(age)} ago "
            f"(min_age_hours {policy.min_age:g})",
            idle=False,
        )
    idle_hours = round(min(activity.window_hours, age), 2)
    reason = f"no Invocations on inference component for {fmt_hours(idle_hours)}"
    if activity.invocations > 0:  # at most max_invocations
        reason = f"{few_words} on inference component in the last {window}"
    in_scope, why = policy.selects(component.name, component.tags)
    if not in_scope:
        return keep("scope", f"{reason}; not selected: {why}", True, idle_hours)
    if protected:
        return keep(
            "protected", f"{reason}; protected by tag {policy.protect_tag}", True, idle_hours
        )
    if component.instance_count is None:
        return keep("details-unknown", f"{reason}; its copies could not be read", True, idle_hours)
    if component.instance_count == 0:
        return keep("zero-copies", f"{reason}; already at 0 copies", True, idle_hours)
    return Decision(
        resource=component,
        action=Action.NOTIFY,
        rule="idle-inference-component",
        reason=f"{reason} on endpoint {component.parent} ({component.instance_count} copies); "
        f"{COPIES_TO_ZERO}",
        idle=True,
        idle_hours=idle_hours,
        recommendations=(
            Recommendation(kind="scale-to-zero", evidence=f"{reason}; {COPIES_TO_ZERO}"),
        ),
    )


def may_host_components(endpoint: Resource) -> bool:
    """Whether the endpoint could host inference components: one of its variants names no
    model, or its variants are not known (nothing then says it cannot)."""
    return not endpoint.variants or any(v.model is None for v in endpoint.variants)


def components_unknown(decision: Decision, why: str) -> Decision:
    """``decision`` on an endpoint when its region's inference components could not be listed
    (``why``: the operation and AWS's error code): an endpoint found idle that could host
    components is unknown, never idle, since their traffic is unseen; any other decision is
    unchanged (an endpoint that names a model in every variant hosts none)."""
    if (
        decision.resource.kind is not Kind.ENDPOINT
        or not decision.idle
        or not may_host_components(decision.resource)
    ):
        return decision
    seen = decision.reason.split(";")[0]
    return replace(
        decision,
        action=Action.KEEP,
        rule="activity-unknown",
        reason=f"{seen}, but its inference components could not be listed ({why}): never idle",
        idle=False,
        idle_hours=None,
        recommendations=(),
    )
