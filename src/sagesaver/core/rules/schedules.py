"""Which notebook instances a schedule run starts or stops. Pure: no AWS, no clock.

Targeting: the tag ``sagesaver:schedule=<name>`` assigns a schedule (``none`` opts out);
without it, a schedule applies to instances its selectors match (``name_contains``, ``include``,
``tags``), and an instance matched by several is skipped as ambiguous. The protect tag is never
touched, and ``sagesaver:keep-running-until=<ISO 8601>`` holds off stops until that time.

Boundaries: a schedule that is not enforced acts on the latest boundary that fell in its window
(:class:`Window`: since the schedule's previous run in the region, its "watermark"). Every
instance left alone says where it stands (:class:`Standing`): already in, or heading to, the
state the boundary asks for (``Pending`` for a start, ``Stopping`` for a stop) is *confirmed*;
heading elsewhere (a stop that meets ``Pending``, a start that meets ``Stopping``, ``Updating``)
the boundary *stays due* for it; a tag, an ambiguity or a state it cannot leave *settles* it.
What the run does with that (the watermark held back, retries) is the pipeline's
(:mod:`sagesaver.pipelines.schedules`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import MAXYEAR, datetime, timedelta, timezone
from enum import Enum

from sagesaver.core.cron import Schedule, Transition
from sagesaver.core.model import Resource
from sagesaver.core.policy import FALSE_VALUES, Policy

SCHEDULE_TAG = "sagesaver:schedule"
KEEP_RUNNING_TAG = "sagesaver:keep-running-until"
OPT_OUT = "none"
STARTABLE, STOPPABLE = "Stopped", "InService"
# States in which an instance already is, or is becoming, what a transition asks for.
ALREADY = {
    Transition.START: frozenset({"InService", "Pending"}),
    Transition.STOP: frozenset({"Stopped", "Stopping"}),
}
# States an instance passes through: met on its way elsewhere, the boundary stays due for it.
TRANSITIONAL = frozenset({"Pending", "Stopping", "Updating"})
STAYS_DUE = "stays due: retried until confirmed or the schedule's next boundary passes"

LastRun = Callable[[str, str], "datetime | None"]


@dataclass(frozen=True)
class Assignment:
    """The schedule an instance falls under, or why it falls under none."""

    resource: Resource
    schedule: str | None
    reason: str


@dataclass(frozen=True)
class PlannedAction:
    """A start or stop to carry out, for the boundary at ``boundary`` (an enforced schedule:
    the run's moment, as it acts on the state it wants now, not on a boundary)."""

    resource: Resource
    schedule: str
    transition: Transition
    reason: str
    boundary: datetime


class Standing(str, Enum):
    """Where an instance left alone at a boundary stands."""

    SETTLED = "settled"  # left alone for good: a tag, an ambiguity, a state it cannot leave
    CONFIRMED = "confirmed"  # already in, or heading to, the state the boundary asks for
    DUE = "due"  # heading elsewhere, or its act not confirmed: the boundary stays due for it


@dataclass(frozen=True)
class Skip:
    """A targeted instance left alone, why, and where it stands."""

    resource: Resource
    schedule: str | None
    reason: str
    standing: Standing = Standing.SETTLED


@dataclass(frozen=True)
class Window:
    """The boundary a not-enforced schedule acts on in one region (its moment and what it
    asks for), and where its window began (the previous run, or ``interval_minutes`` before):
    while the boundary stays due, the schedule's next run looks from ``since`` again."""

    boundary: datetime
    transition: Transition
    since: datetime


@dataclass(frozen=True)
class Wanted:
    """What a run asks of one schedule: the transition (None: nothing), why, and for a
    schedule that is not enforced, the boundary and the window it fell in."""

    transition: Transition | None
    reason: str
    window: Window | None = None
    # Said once by the command: the years planned that the schedule's calendar has no data for.
    notes: tuple[str, ...] = ()


@dataclass
class Plan:
    """The outcome of planning one schedule run."""

    actions: list[PlannedAction] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    # Why a (schedule, region) asked for nothing at this run: "nothing to do" always says why.
    quiet: dict[tuple[str, str], str] = field(default_factory=dict)
    # The boundary each not-enforced (schedule, region) acts on at this run.
    windows: dict[tuple[str, str], Window] = field(default_factory=dict)
    # What to say once (a calendar without data for a year planned), in the order found.
    notes: list[str] = field(default_factory=list)


def assign(resource: Resource, policy: Policy) -> Assignment | None:
    """The schedule of ``resource``; None when no schedule targets it at all."""
    tagged = resource.tags.get(SCHEDULE_TAG)
    if tagged is not None:
        name = tagged.strip()
        if name.lower() == OPT_OUT:
            return Assignment(resource, None, f"opted out by tag {SCHEDULE_TAG}={OPT_OUT}")
        if name not in policy.schedules:
            return Assignment(resource, None, f"tag {SCHEDULE_TAG} names unknown schedule {name!r}")
        return Assignment(resource, name, f"tag {SCHEDULE_TAG}={name}")
    matches = [
        n for n, s in sorted(policy.schedules.items()) if s.selects(resource.name, resource.tags)
    ]
    if not matches:
        return None
    if len(matches) > 1:
        return Assignment(
            resource,
            None,
            f"matches schedules {', '.join(matches)}: tag it {SCHEDULE_TAG}=<name> to choose",
        )
    return Assignment(resource, matches[0], f"selected by schedule {matches[0]}")


def parse_keep_running(value: str) -> datetime | None:
    """The time in a keep-running-until tag (ISO 8601; a date means its end), or None if bad."""
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    try:
        if len(text) == 10:  # a bare date: keep running through that whole day (UTC)
            moment = moment + timedelta(days=1)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except OverflowError:  # beyond the representable range: the end of time, or its start
        if moment.year >= MAXYEAR:
            return datetime.max.replace(tzinfo=timezone.utc)
        return datetime.min.replace(tzinfo=timezone.utc)


def is_protected(resource: Resource, protect_tag: str) -> bool:
    """Carries the protect tag with a value other than false/no/0/off."""
    value = resource.tags.get(protect_tag)
    return value is not None and value.strip().lower() not in FALSE_VALUES


def wanted_transition(
    schedule: Schedule, interval_minutes: int, last_run: datetime | None, now: datetime
) -> tuple[Transition | None, str]:
    """What a run at ``now`` asks for, and a reason (see :func:`wanted`)."""
    asked = wanted(schedule, interval_minutes, last_run, now)
    return asked.transition, asked.reason


def wanted(
    schedule: Schedule, interval_minutes: int, last_run: datetime | None, now: datetime
) -> Wanted:
    """What a run at ``now`` asks for, why, and the boundary it acts on.

    Not enforced: the latest boundary since the previous run (or ``now - interval``).
    Enforced: the state the schedule wants now.
    """
    if schedule.enforced:
        desired = schedule.desired(now)
        why = f"enforced: schedule wants {desired.value if desired else 'nothing'} now"
        today = schedule.day(now)
        if today is not None and today.label:
            why += f" ({today.label})"
        return Wanted(desired, why, notes=tuple(schedule.gap_notes(now, now)))
    since = last_run if last_run is not None and last_run < now else None
    window = "since the previous run"
    if since is None:
        since = now - timedelta(minutes=interval_minutes)
        window = f"in the {interval_minutes} minutes before (no previous run recorded)"
    notes = tuple(schedule.gap_notes(since, now))
    latest = schedule.latest_boundary(since, now)
    if latest is None:
        local = since.astimezone(schedule.tz), now.astimezone(schedule.tz)
        why = (
            f"not enforced (acts only at its boundaries), and no start or stop fell {window}: "
            f"{local[0]:%a %H:%M} to {local[1]:%a %H:%M %Z}"
        )
        skipped = schedule.skipped_starts(since, now)
        if skipped:
            why += f"; no start on {', '.join(str(day) for day in skipped)}"
        return Wanted(None, why, notes=notes)
    moment = latest.at.astimezone(schedule.tz)
    why = f"{latest.transition.value} at {moment:%a %H:%M %Z} ({latest.at:%H:%M} UTC)"
    day = schedule.day(latest.at)
    if day is not None and day.label:
        why += f", {day.label}"
    return Wanted(latest.transition, why, Window(latest.at, latest.transition, since), notes)


@dataclass(frozen=True)
class Upcoming:
    """What a schedule wants at a moment and its next transitions, with their days."""

    wanted: Transition | None
    next_start: datetime | None
    next_stop: datetime | None
    next_start_day: str | None
    next_stop_day: str | None
    skipped_starts: tuple[str, ...]
    warnings: tuple[str, ...]


def upcoming(schedule: Schedule, now: datetime) -> Upcoming:
    """What ``schedule`` wants at ``now``, its next start and stop (marked when their day is
    a make-up workday, a holiday or one of its own dates), the days off before its next start,
    and what to say about years its calendar has no data for."""
    following = schedule.next_transitions(now)
    start, stop = following[Transition.START], following[Transition.STOP]

    def label(moment: datetime | None) -> str | None:
        day = schedule.day(moment) if moment is not None else None
        return day.label if day is not None and day.label else None

    horizon = max((m for m in (start, stop) if m is not None), default=now)
    return Upcoming(
        schedule.desired(now),
        start,
        stop,
        label(start),
        label(stop),
        tuple(str(day) for day in schedule.skipped_starts(now, start or now)),
        tuple(schedule.gap_notes(now, horizon)),
    )


def concerns(assignment: Assignment, policy: Policy, only: frozenset[str] | None) -> bool:
    """Whether a run limited to the schedules ``only`` (None: all) reports this instance.

    Assignment always considers every schedule of the policy, so an instance two schedules
    select stays ambiguous (and untouched) even in a run of one of them.
    """
    if only is None:
        return True
    if assignment.schedule is not None:
        return assignment.schedule in only
    resource = assignment.resource
    tagged = resource.tags.get(SCHEDULE_TAG)
    if tagged is not None:
        return tagged.strip() in only
    return any(
        policy.schedules[name].selects(resource.name, resource.tags)
        for name in only
        if name in policy.schedules
    )


def plan(
    resources: Sequence[Resource],
    policy: Policy,
    now: datetime,
    last_run: LastRun,
    only: frozenset[str] | None = None,
) -> Plan:
    """Decide, instance by instance, what a schedule run does at ``now`` (for the schedules
    ``only``, or all of them)."""
    result = Plan()
    schedules = {name: spec.build(name) for name, spec in policy.schedules.items()}
    asked: dict[tuple[str, str], Wanted] = {}
    for resource in resources:
        assignment = assign(resource, policy)
        if assignment is None or not concerns(assignment, policy, only):
            continue
        if assignment.schedule is None:
            result.skipped.append(Skip(resource, None, assignment.reason))
            continue
        name = assignment.schedule
        if is_protected(resource, policy.schedule_protect_tag):
            result.skipped.append(
                Skip(resource, name, f"protected by tag {policy.schedule_protect_tag}")
            )
            continue
        key = (name, resource.region)
        if key not in asked:
            spec = policy.schedules[name]
            asked[key] = wanted(
                schedules[name], spec.interval_minutes, last_run(name, resource.region), now
            )
            window = asked[key].window
            if window is not None:
                result.windows[key] = window
            result.notes.extend(n for n in asked[key].notes if n not in result.notes)
        transition, why, window = asked[key].transition, asked[key].reason, asked[key].window
        if transition is None:
            result.quiet[key] = why
            continue
        if resource.status in ALREADY[transition]:
            if schedules[name].enforced:
                # the normal case of an enforced schedule: one line for all such instances
                result.quiet[key] = f"{why}; its instances already are"
                continue
            result.skipped.append(
                Skip(resource, name, f"{why}: already {resource.status}", Standing.CONFIRMED)
            )
            continue
        origin = STARTABLE if transition is Transition.START else STOPPABLE
        if resource.status != origin:
            state = f"{why}: state is {resource.status}, not {origin}"
            if resource.status in TRANSITIONAL:  # on its way elsewhere: try again later
                result.skipped.append(Skip(resource, name, f"{state}; {STAYS_DUE}", Standing.DUE))
            else:
                result.skipped.append(Skip(resource, name, state))
            continue
        if transition is Transition.STOP and KEEP_RUNNING_TAG in resource.tags:
            until = parse_keep_running(resource.tags[KEEP_RUNNING_TAG])
            if until is None:
                result.skipped.append(
                    Skip(
                        resource,
                        name,
                        f"{why}: tag {KEEP_RUNNING_TAG} is not an ISO 8601 time; kept",
                    )
                )
                continue
            if until > now:
                result.skipped.append(
                    Skip(resource, name, f"{why}: kept running until {until.isoformat()} by tag")
                )
                continue
        boundary = window.boundary if window is not None else now
        result.actions.append(PlannedAction(resource, name, transition, why, boundary))
    return result


@dataclass(frozen=True)
class TickInvocation:
    """One EventBridge Scheduler schedule that runs the schedule tick: its expression, time
    zone and the payload the tick receives. The deployed stack and ``schedule rules`` make
    the same set from this, so they cannot disagree."""

    schedule: str
    transition: str | None  # start or stop; None: the enforced schedule's rate
    index: int
    description: str
    expression: str
    timezone: str
    payload: dict[str, str]

    @property
    def key(self) -> str:
        """Unique within a policy: ``<schedule>-<transition><index>`` or ``<schedule>-enforce``."""
        if self.transition is None:
            return f"{self.schedule}-enforce"
        return f"{self.schedule}-{self.transition}{self.index}"


def tick_invocations(policy: Policy) -> list[TickInvocation]:
    """The schedules that run the tick at each start and stop of each policy schedule (a start
    and a stop at the same moment share one run), plus a rate for each enforced schedule and
    each schedule that parks endpoints (every ``interval_minutes``, at most ``lead_minutes``).
    Raises :class:`~sagesaver.core.cron.ScheduleError` for a schedule Scheduler cannot express.
    """
    from sagesaver.core.cron import ScheduleError, to_eventbridge_expressions

    invocations = []
    for name, spec in sorted(policy.schedules.items()):
        built = spec.build(name)
        try:
            expressions = to_eventbridge_expressions(built)
        except ScheduleError as exc:
            raise ScheduleError(f"schedules.{name}: {exc}") from exc
        seen: set[str] = set()
        days = built.days
        every_day = (
            f" (every day: {days.source} tells the working days)"
            if days is not None and days.adds_days
            else ""
        )
        for index, (transition, expression) in enumerate(expressions):
            if expression in seen:
                continue
            seen.add(expression)
            invocations.append(
                TickInvocation(
                    name,
                    transition.value,
                    index,
                    f"SageSaver: {transition.value} of schedule {name}{every_day}",
                    expression,
                    built.tz.key,
                    {"schedule": name, "transition": transition.value},
                )
            )
        parks = spec.targets("endpoints")
        if spec.enforced or parks:
            # Parked endpoints come back lead_minutes before a start: a boundary tick would
            # be late, so a schedule that parks runs at least every lead_minutes too.
            minutes = spec.interval_minutes
            if parks and spec.lead_minutes:
                minutes = min(minutes, spec.lead_minutes)
            what = "enforce schedule" if spec.enforced else "park and unpark the endpoints of"
            invocations.append(
                TickInvocation(
                    name,
                    None,
                    0,
                    f"SageSaver: {what} {name} every {minutes} minutes",
                    f"rate({minutes} minute{'s' if minutes != 1 else ''})",
                    built.tz.key,
                    {"schedule": name},
                )
            )
    return invocations


def guard_stop(
    action: PlannedAction,
    status: str,
    tags: Mapping[str, str],
    policy: Policy,
    now: datetime,
) -> Skip | None:
    """The last-moment guard of a scheduled stop: the instance's state and tags read again
    just before ``StopNotebookInstance``. None: the stop goes ahead; otherwise why not, and
    where the instance stands. The rules are :func:`plan`'s, on the fresh facts: still
    assigned to the same schedule, not protected, ``InService``, no later keep-running-until.
    """
    fresh = replace(action.resource, status=status, tags=dict(tags))
    why = f"{action.reason}, read again before the stop"
    assignment = assign(fresh, policy)
    if assignment is None or assignment.schedule != action.schedule:
        now_on = assignment.schedule if assignment is not None else None
        return Skip(fresh, action.schedule, f"{why}: its schedule is now {now_on or 'none'}")
    if is_protected(fresh, policy.schedule_protect_tag):
        return Skip(
            fresh, action.schedule, f"{why}: protected by tag {policy.schedule_protect_tag}"
        )
    if status != STOPPABLE:
        state = f"{why}: state is {status}, not {STOPPABLE}"
        if status in ALREADY[Transition.STOP]:
            return Skip(fresh, action.schedule, state, Standing.CONFIRMED)
        if status in TRANSITIONAL:
            return Skip(fresh, action.schedule, f"{state}; {STAYS_DUE}", Standing.DUE)
        return Skip(fresh, action.schedule, state)
    if KEEP_RUNNING_TAG in tags:
        until = parse_keep_running(tags[KEEP_RUNNING_TAG])
        if until is None:
            return Skip(
                fresh, action.schedule, f"{why}: tag {KEEP_RUNNING_TAG} is not a time; kept"
            )
        if until > now:
            return Skip(fresh, action.schedule, f"{why}: kept running until {until.isoformat()}")
    return None
