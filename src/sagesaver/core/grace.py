"""Escalation with a grace period, and the blast-radius guard. Pure: no AWS, no clock.

When an endpoint first qualifies for deletion, SageSaver tags it
``sagesaver:scheduled-action=delete@<deadline, ISO 8601 UTC>`` and says so in the notification;
the ledger records the deadline once the notification was sent. At a run after the deadline it
is deleted, after a fresh re-check. If it became active again (or was protected, or left the
policy's selection) the tag is removed and the endpoint is spared. When the facts about it could
not be read, nothing about it changes (the deadline stands, nothing is done).

Only a deadline SageSaver announced counts: a tag that no announcement in the ledger backs
(written by hand, or by a run whose digest never went out) is treated as new, announced and
given a fresh grace period. A user postpones by editing the tag to a later time; an earlier
time than the one announced is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum

from sagesaver.core.model import ACTED_ON, Decision, Resource

SCHEDULED_TAG = "sagesaver:scheduled-action"


class Stage(str, Enum):
    """What a run does with an endpoint under enforcement."""

    ANNOUNCE = "announce"  # tag it with the deadline and tell people
    WAIT = "wait"  # the deadline has not passed
    ACT = "act"  # the deadline passed: re-check, back up, delete
    DEFER = "defer"  # due, but beyond max_actions_per_run this run
    SPARE = "spare"  # tagged, but no longer qualifies: remove the tag
    HOLD = "hold"  # tagged, but its facts could not be read: change nothing


@dataclass(frozen=True)
class Step:
    """One endpoint's step in this run."""

    decision: Decision
    stage: Stage
    action: str
    deadline: datetime | None
    reason: str


@dataclass
class EnforcementPlan:
    """Every step of the run, in the order they should be carried out."""

    steps: list[Step] = field(default_factory=list)

    def of(self, stage: Stage) -> list[Step]:
        """The steps at ``stage``."""
        return [s for s in self.steps if s.stage is stage]


def tag_value(action: str, deadline: datetime) -> str:
    """``delete@2026-11-30T10:00:00Z``."""
    moment = deadline.astimezone(timezone.utc).replace(microsecond=0)
    return f"{action}@{moment.isoformat().replace('+00:00', 'Z')}"


def parse_moment(text: str) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime, or None when it is not one that exists in UTC
    (``9999-12-31T23:59:59-01:00`` is past the last representable moment)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def parse_tag(value: str) -> tuple[str, datetime] | None:
    """The (action, deadline) of a scheduled-action tag, or None if it is not one."""
    action, sep, moment = value.partition("@")
    if not sep or not action:
        return None
    deadline = parse_moment(moment)
    if deadline is None:
        return None
    return action.strip().lower(), deadline


def announcement_key(resource: Resource) -> str:
    """What an announcement is about: this resource, not another one later given its name."""
    created = resource.created.astimezone(timezone.utc).isoformat(timespec="seconds")
    return f"{resource.arn.lower()}|{created}"


def plan_enforcement(
    decisions: Sequence[Decision],
    grace_hours: float,
    max_actions: int,
    now: datetime,
    announced: Mapping[str, datetime] | None = None,
) -> EnforcementPlan:
    """The steps for every decision with a destructive action, or carrying our tag.

    ``announced`` holds, by :func:`announcement_key`, the deadlines SageSaver announced in a
    digest that was sent. Due deletions beyond ``max_actions`` are deferred, the most expensive
    acted on first.
    """
    announced = announced or {}
    plan = EnforcementPlan()
    due: list[Step] = []
    for decision in decisions:
        destructive = decision.action in ACTED_ON
        raw = decision.resource.tags.get(SCHEDULED_TAG)
        scheduled = parse_tag(raw) if raw is not None else None
        if decision.unknown:
            if raw is not None:
                reason = f"facts could not be read, nothing changed: {decision.reason}"
                plan.steps.append(Step(decision, Stage.HOLD, "delete", None, reason))
            continue
        if not destructive:
            if raw is not None:
                plan.steps.append(
                    Step(
                        decision,
                        Stage.SPARE,
                        "delete",
                        None,
                        f"no longer qualifies: {decision.reason}",
                    )
                )
            continue
        action = decision.action.value
        proven = announced.get(announcement_key(decision.resource))
        if scheduled is None or scheduled[0] != action or proven is None:
            deadline = now + timedelta(hours=grace_hours)
            stage = Stage.ACT if grace_hours == 0 else Stage.ANNOUNCE
            if raw is not None and scheduled is None:
                why = "unreadable tag replaced; "
            elif scheduled is not None and proven is None:
                why = "deadline tag not announced by SageSaver, announced afresh; "
            else:
                why = ""
            step = Step(decision, stage, action, deadline, f"{why}{decision.reason}")
            (due if stage is Stage.ACT else plan.steps).append(step)
            continue
        deadline = max(scheduled[1], proven)  # postponing works, bringing forward does not
        if deadline > now:
            plan.steps.append(
                Step(
                    decision, Stage.WAIT, action, deadline, f"{action} scheduled; {decision.reason}"
                )
            )
        else:
            due.append(
                Step(decision, Stage.ACT, action, deadline, f"grace period over; {decision.reason}")
            )
    due.sort(key=lambda s: (-(s.decision.hourly_cost or 0.0), s.decision.resource.name))
    for index, step in enumerate(due):
        if index < max_actions:
            plan.steps.append(step)
        else:
            plan.steps.append(
                Step(
                    step.decision,
                    Stage.DEFER,
                    step.action,
                    step.deadline,
                    f"over max_actions_per_run ({max_actions}); next run",
                )
            )
    return plan
