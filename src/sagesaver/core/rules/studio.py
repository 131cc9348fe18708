"""Idle rule for SageSaver Studio apps. Pure.

An ``InService`` app is idle when its last user activity (``DescribeApp``'s
``LastUserActivityTimestamp``; its creation when it has none; for Canvas, the activity its
``TimeSinceLastActive`` metric gives) is older than ``idle_hours``. An app whose activity could
not be read is never idle.
"""

from __future__ import annotations

from datetime import datetime

from sagesaver.core.formats import fmt_hours, hours_between
from sagesaver.core.model import Action, Decision, Resource
from sagesaver.core.policy import StudioPolicy


def decide_app(
    resource: Resource,
    space: str,
    last_activity: datetime | None,
    policy: StudioPolicy,
    now: datetime,
    hourly_cost: float | None,
    activity_known: bool = True,
) -> Decision:
    """The decision on one app; ``activity_known`` False when its activity could not be read
    (never idle)."""
    since = last_activity or resource.created
    hours = hours_between(since, now)
    idle_hours = round(hours, 2)  # for the reason and the report, never for the threshold
    what = "no user activity" if last_activity else "never used since it was created"
    protected = policy.is_protected(resource.tags)
    in_scope, scope_reason = policy.selects(space, resource.tags)

    def keep(rule: str, reason: str, idle: bool) -> Decision:
        return Decision(
            resource,
            Action.KEEP,
            rule,
            reason,
            idle,
            idle_hours if idle else None,
            hourly_cost,
            protected,
        )

    if resource.status != "InService":
        return keep("status", f"status is {resource.status}", False)
    if not activity_known:
        return keep("activity-unknown", "its activity could not be read: never idle", False)
    if hours < policy.idle_hours:
        return keep("active", f"last user activity {fmt_hours(idle_hours)} ago", False)
    reason = f"{what} for {fmt_hours(idle_hours)}"
    if not in_scope:
        return keep("scope", f"{reason}; not selected: {scope_reason}", True)
    if protected:
        return keep("protected", f"{reason}; protected by tag {policy.protect_tag}", True)
    return Decision(
        resource, Action(policy.action), "idle-studio-app", reason, True, idle_hours, hourly_cost
    )
