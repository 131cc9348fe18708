"""Rules for notebook instances.

From outside the instance SageSaver cannot see whether a notebook is in use (the on-instance
agent can). The scan reports each instance, what it costs while running, and whether it has a
lifecycle configuration that could carry the auto-stop guard.
"""

from __future__ import annotations

from sagesaver.core.model import Action, Decision, Resource
from sagesaver.core.policy import NotebookPolicy
from sagesaver.core.pricing import Pricer, Quote, currency_of

IN_SERVICE = "InService"
# States in which the instance is billed for compute.
BILLED_STATES = frozenset({"InService", "Pending", "Updating", "Stopping"})


def notebook_quote(resource: Resource, pricer: Pricer) -> Quote:
    """The price per hour while the instance runs; 0 when it is stopped."""
    if resource.status not in BILLED_STATES:
        return pricer.free(resource.region)
    if resource.instance_type is None:
        return Quote(None, currency_of(resource.region), "unknown", "no instance type")
    return pricer.quote(resource.region, "notebook", resource.instance_type)


def notebook_hourly_cost(resource: Resource, pricer: Pricer) -> float | None:
    """The amount of :func:`notebook_quote` (in the region's currency), or None."""
    return notebook_quote(resource, pricer).amount


def decide_notebook(
    resource: Resource, policy: NotebookPolicy, hourly_cost: float | None
) -> Decision:
    """The (for now, report-only) decision on one notebook instance."""
    protected = policy.is_protected(resource.tags)
    in_scope, scope_reason = policy.selects(resource.name, resource.tags)
    if resource.status in BILLED_STATES - {IN_SERVICE}:
        rule = "status"
        reason = f"status is {resource.status}: the instance bills while it changes state"
    elif resource.status != IN_SERVICE:
        rule, reason = "status", f"status is {resource.status}: no instance cost"
    elif resource.lifecycle_config is None:
        rule, reason = (
            "no-auto-stop",
            "InService with no lifecycle configuration: no auto-stop guard",
        )
    else:
        rule = "auto-stop-guard"
        reason = f"InService; lifecycle configuration {resource.lifecycle_config}"
    if not in_scope:
        reason = f"{reason}; not selected: {scope_reason}"
    elif protected:
        reason = f"{reason}; protected by tag {policy.protect_tag}"
    return Decision(
        resource=resource,
        action=Action.KEEP,
        rule=rule,
        reason=reason,
        idle=False,
        idle_hours=None,
        hourly_cost=hourly_cost,
        protected=protected,
    )
