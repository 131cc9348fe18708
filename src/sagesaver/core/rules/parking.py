"""Parking endpoints on schedules: which endpoints a schedule run parks (backs up and deletes)
at a stop, which it brings back (restores) ``lead_minutes`` before a start, and the guard of a
park at its last moment. Pure: no AWS, no clock.

A schedule targets endpoints with ``resources: [..., endpoints]``; the same selectors
(``name_contains``, ``include``, ``tags``), the tag ``sagesaver:schedule`` and the protect tag
apply as to notebook instances (:func:`sagesaver.core.rules.schedules.assign`, over the
schedules that target endpoints only).

- **Park** acts on a stop boundary as notebooks' stops do: a schedule that is not enforced
  parks at the latest stop since its previous parking run (its own watermark,
  :func:`watermark`); an enforced one whenever it wants them stopped.
- **Unpark** is wanted while the schedule wants them running ``lead_minutes`` from now: a
  parked endpoint comes back early enough to be ``InService`` at the start, and one whose
  restore failed is tried again at the next run. On a day off (a holiday of its calendar) the
  schedule wants no start, so a parked endpoint stays parked.
- Which endpoints are parked is the ledger's: the newest carried-out ``park`` of a name that
  no later ``unpark``, ``recreated`` or deletion followed (:func:`parked`). A ``restore`` alone
  does not end it: an unpark cut short after ``CreateEndpoint`` (a time-out waiting for
  ``InService``) is resumed by the next run, which records the ``unpark`` once all is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sagesaver.core.cron import Schedule, Transition
from sagesaver.core.formats import iso
from sagesaver.core.guard import Guarded, Observed, Verdict
from sagesaver.core.model import Kind, Resource
from sagesaver.core.policy import FALSE_VALUES, Policy
from sagesaver.core.records import Entry
from sagesaver.core.rules.schedules import assign, concerns, wanted

PARK, UNPARK = "park", "unpark"
RULE_PREFIX = "schedule:"
# Acts after which a parked endpoint is no longer parked: brought back completely, created again
# by someone, or deleted for good.
ENDS_PARKING = frozenset({UNPARK, "recreated", "delete"})


def watermark(schedule: str) -> str:
    """The ledger's name for a schedule's parking runs (apart from its notebooks' runs: a
    schedule name has no ':')."""
    return f"{schedule}:endpoints"


def targeting(policy: Policy, resources: str) -> Policy:
    """``policy`` with only the schedules that act on ``resources`` (notebooks or endpoints)."""
    kept = {n: s for n, s in policy.schedules.items() if resources in s.resources}
    if len(kept) == len(policy.schedules):
        return policy
    return policy.model_copy(update={"schedules": kept})


def parking_schedules(policy: Policy, only: frozenset[str] | None) -> list[str]:
    """The schedules of a run (``only``, or all) that park endpoints."""
    return sorted(
        name
        for name, spec in policy.schedules.items()
        if spec.targets("endpoints") and (only is None or name in only)
    )


@dataclass(frozen=True)
class Parked:
    """An endpoint SageSaver parked and has not brought back: its ``park`` entry (name, region,
    account, price, backup), and the schedule that parked it."""

    entry: Entry

    @property
    def schedule(self) -> str:
        """The schedule that parked it."""
        return self.entry.rule.removeprefix(RULE_PREFIX)

    @property
    def backup_id(self) -> str | None:
        """The backup its park took."""
        return self.entry.backup_ref


def _key(entry: Entry) -> tuple[str, str, str]:
    return (entry.account, entry.region, entry.resource)


def parked(entries: Iterable[Entry]) -> dict[tuple[str, str, str], Parked]:
    """The endpoints parked now, by (account, region, name): those whose newest carried-out
    act is a ``park`` (an unconfirmed one is not parked: its delete is not known to have
    happened)."""
    latest: dict[tuple[str, str, str], Entry] = {}
    for entry in sorted(entries, key=lambda e: e.at):
        if entry.kind != Kind.ENDPOINT.value or not entry.carried_out:
            continue
        if entry.action == PARK or entry.action in ENDS_PARKING:
            latest[_key(entry)] = entry
    return {key: Parked(e) for key, e in latest.items() if e.action == PARK}


def last_park_backup(entries: Iterable[Entry], account: str, region: str, name: str) -> str | None:
    """The backup of the endpoint's newest carried-out park (the last cycle's), if any."""
    found = [
        e
        for e in entries
        if e.action == PARK
        and e.carried_out
        and _key(e) == (account, region, name)
        and e.backup_ref
    ]
    return max(found, key=lambda e: e.at).backup_ref if found else None


# --- planning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPark:
    """An endpoint to park for ``schedule``'s stop at ``boundary``."""

    resource: Resource
    schedule: str
    reason: str
    boundary: datetime


@dataclass(frozen=True)
class PlannedUnpark:
    """A parked endpoint to bring back, why, and the start it comes back for."""

    parked: Parked
    reason: str
    start: datetime | None


@dataclass(frozen=True)
class ParkSkip:
    """An endpoint a parking run leaves as it is, and why."""

    name: str
    region: str
    schedule: str | None
    reason: str


@dataclass
class ParkPlan:
    """What one parking run does in one region."""

    parks: list[PlannedPark] = field(default_factory=list)
    unparks: list[PlannedUnpark] = field(default_factory=list)
    skipped: list[ParkSkip] = field(default_factory=list)
    # The stop each (not enforced) schedule parks at, and where its window began.
    windows: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    quiet: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


LastRun = Callable[[str], "datetime | None"]


def wants_stopped(
    policy: Policy, schedules: Sequence[str], now: datetime, last_run: LastRun, result: ParkPlan
) -> dict[str, datetime]:
    """The schedules (of ``schedules``) whose stop falls in this run, with the boundary they
    park at (an enforced schedule: ``now``); why each other one parks nothing goes to
    ``result.quiet``."""
    stopping: dict[str, datetime] = {}
    for name in schedules:
        spec = policy.schedules[name]
        asked = wanted(spec.build(name), spec.interval_minutes, last_run(name), now)
        result.notes.extend(n for n in asked.notes if n not in result.notes)
        if asked.window is not None:
            result.windows[name] = (asked.window.boundary, asked.window.since)
        if asked.transition is Transition.STOP:
            stopping[name] = asked.window.boundary if asked.window is not None else now
        else:
            result.quiet[name] = f"parks nothing: {asked.reason}"
    return stopping


def plan_parks(
    endpoints: Sequence[Resource],
    policy: Policy,
    stopping: dict[str, datetime],
    now_parked: dict[tuple[str, str, str], Parked],
    only: frozenset[str] | None,
    result: ParkPlan,
) -> None:
    """Which ``InService`` endpoints to park for the schedules ``stopping`` now: assigned to
    one (by tag or selectors, among the schedules that park endpoints), not protected by the
    schedule's or the endpoints' protect tag."""
    targeted = targeting(policy, "endpoints")
    for resource in endpoints:
        assignment = assign(resource, targeted)
        if assignment is None or not concerns(assignment, targeted, only):
            continue
        name = assignment.schedule
        if name is None:
            result.skipped.append(ParkSkip(resource.name, resource.region, None, assignment.reason))
            continue
        if name not in stopping:
            continue
        if protected(policy, resource.tags):
            why = f"protected by tag {policy.schedule_protect_tag}: never parked"
            result.skipped.append(ParkSkip(resource.name, resource.region, name, why))
            continue
        if (resource.account, resource.region, resource.name) in now_parked:
            why = "parked already, and an endpoint of its name is in service: left alone"
            result.skipped.append(ParkSkip(resource.name, resource.region, name, why))
            continue
        if resource.status != "InService":
            why = f"state is {resource.status}, not InService"
            result.skipped.append(ParkSkip(resource.name, resource.region, name, why))
            continue
        boundary = stopping[name]
        schedule = policy.schedules[name].build(name)
        local = boundary.astimezone(schedule.tz)
        reason = f"park at {local:%a %H:%M %Z} ({assignment.reason})"
        result.parks.append(PlannedPark(resource, name, reason, boundary))


def protected(policy: Policy, tags: Mapping[str, str]) -> bool:
    """An endpoint a schedule never parks: it carries the schedules' protect tag or the
    endpoints' one (each with a value other than false/no/0/off)."""
    return policy.endpoints.is_protected(dict(tags)) or (
        policy.schedule_protect_tag in tags
        and tags[policy.schedule_protect_tag].strip().lower() not in FALSE_VALUES
    )


def comes_back(schedule: Schedule, lead_minutes: int, now: datetime) -> datetime | None:
    """When a parked endpoint of ``schedule`` is brought back: ``lead_minutes`` before its
    next start (now, when that is already past); None when it has no next start."""
    lead = timedelta(minutes=lead_minutes)
    start = schedule.next_transitions(now + lead)[Transition.START]
    if schedule.desired(now + lead) is Transition.START:
        return now
    return None if start is None else start - lead


def plan_unparks(
    now_parked: Iterable[Parked],
    policy: Policy,
    region: str,
    now: datetime,
    only: frozenset[str] | None,
    result: ParkPlan,
) -> None:
    """Which parked endpoints of ``region`` come back now: their schedule wants them running
    ``lead_minutes`` from now. An endpoint parked by a schedule the policy no longer has is
    reported, never restored by the schedule (``sagesaver restore`` brings it back)."""
    for item in sorted(now_parked, key=lambda p: p.entry.resource):
        entry = item.entry
        if entry.region != region or (only is not None and item.schedule not in only):
            continue
        spec = policy.schedules.get(item.schedule)
        if spec is None or not spec.targets("endpoints"):
            why = (
                f"parked by schedule {item.schedule}, which no longer parks endpoints: bring it "
                f"back with `sagesaver restore {entry.resource}`"
            )
            result.skipped.append(ParkSkip(entry.resource, region, item.schedule, why))
            continue
        schedule = spec.build(item.schedule)
        lead = timedelta(minutes=spec.lead_minutes)
        if schedule.desired(now + lead) is not Transition.START:
            continue
        start = schedule.latest_boundary(now + lead - timedelta(days=8), now + lead)
        at = start.at if start is not None and start.transition is Transition.START else None
        reason = f"unpark {spec.lead_minutes} min before the start"
        if at is not None:
            reason += f" at {at.astimezone(schedule.tz):%a %H:%M %Z}"
        result.unparks.append(PlannedUnpark(item, reason, at))


# --- the last-moment guard of a park ------------------------------------------------------


def guard_park(
    expected_created: datetime,
    observed: Observed,
    protected: bool,
    quiet_minutes: int,
    config_now: str,
    config_parked: str | None,
) -> Guarded:
    """The verdict on parking an endpoint now, from what AWS says at that moment: the same
    endpoint, still ``InService``, not protected, unchanged since the last unpark (the same
    endpoint configuration as the backup of its last park, when there is one), and no
    invocation in the last ``quiet_minutes`` (``observed.invocations`` covers them). Any
    refusal keeps it up (:attr:`Verdict.KEEP`): a schedule's park is never announced, so there
    is nothing to cancel."""
    if observed.created != expected_created:
        return Guarded(Verdict.KEEP, "another endpoint has its name now")
    if observed.status != "InService":
        return Guarded(Verdict.KEEP, f"state is now {observed.status}")
    if protected:
        return Guarded(Verdict.KEEP, "protected by tag")
    if config_parked is not None and config_now != config_parked:
        return Guarded(
            Verdict.KEEP,
            f"changed since its last unpark: it runs configuration {config_now}, it was parked "
            f"with {config_parked}; left up so that no change is parked unseen (it is parked "
            "again once it runs that configuration again)",
        )
    if observed.invocations > 0:
        return Guarded(
            Verdict.KEEP,
            f"in use: {observed.invocations:g} invocations in the last {quiet_minutes} minutes "
            f"(to {iso(observed.at)})",
        )
    return Guarded(Verdict.ACT, f"no invocations in the last {quiet_minutes} minutes, unchanged")
