"""The grace-period plan (``core/grace.py``): the scheduled-action tag's format and parsing, the
announcement key, and every stage of :func:`plan_enforcement` (announce, wait, act, defer,
spare, hold), with properties over mixed fleets. Pure: one fixed ``now``, no AWS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.grace import (
    SCHEDULED_TAG,
    EnforcementPlan,
    Stage,
    announcement_key,
    parse_moment,
    parse_tag,
    plan_enforcement,
    tag_value,
)
from sagesaver.core.model import ACTED_ON, UNKNOWN_RULES, Action, Decision, Kind, Resource

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
CREATED = datetime(2025, 12, 1, 8, 30, tzinfo=timezone.utc)
GRACE = 24.0
DUE_STAGES = frozenset({Stage.ACT, Stage.DEFER})


def resource(
    name: str = "ep", tags: dict[str, str] | None = None, created: datetime = CREATED
) -> Resource:
    return Resource(
        kind=Kind.ENDPOINT,
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        region="us-east-1",
        account="123456789012",
        status="InService",
        created=created,
        modified=created,
        tags=tags or {},
    )


def decision(
    name: str = "ep",
    action: Action = Action.DELETE,
    rule: str = "idle-endpoint",
    tag: str | None = None,
    cost: float | None = 1.0,
    created: datetime = CREATED,
) -> Decision:
    tags = {} if tag is None else {SCHEDULED_TAG: tag}
    return Decision(
        resource=resource(name, tags, created),
        action=action,
        rule=rule,
        reason=f"reason of {name}",
        idle=action is not Action.KEEP,
        hourly_cost=cost,
    )


def proven(d: Decision, deadline: datetime) -> dict[str, datetime]:
    """The ledger's record that ``deadline`` was announced for ``d``'s resource."""
    return {announcement_key(d.resource): deadline}


def only_step(plan: EnforcementPlan) -> tuple[Stage, datetime | None, str, str]:
    assert len(plan.steps) == 1
    step = plan.steps[0]
    return step.stage, step.deadline, step.action, step.reason


# --- the tag ---------------------------------------------------------------------------------


def test_tag_value_is_in_utc_with_a_z_and_whole_seconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    deadline = datetime(2026, 11, 30, 12, 0, 0, 987654, tzinfo=plus_two)
    assert tag_value("delete", deadline) == "delete@2026-11-30T10:00:00Z"


def test_parse_moment_reads_a_z_suffix_and_ignores_surrounding_space() -> None:
    assert parse_moment(" 2026-03-02T08:15:00Z ") == datetime(
        2026, 3, 2, 8, 15, tzinfo=timezone.utc
    )


def test_parse_moment_takes_a_time_without_offset_as_utc() -> None:
    moment = parse_moment("2026-03-02T08:15:00")
    assert moment == datetime(2026, 3, 2, 8, 15, tzinfo=timezone.utc)
    assert moment is not None and moment.tzinfo is timezone.utc


def test_parse_moment_converts_an_offset_to_utc() -> None:
    moment = parse_moment("2026-03-02T08:15:00-05:00")
    assert moment is not None and moment.tzinfo is timezone.utc
    assert (moment.hour, moment.minute) == (13, 15)


@pytest.mark.parametrize("text", ["soon", "", "2026-13-01T00:00:00Z", "tomorrow at noon"])
def test_parse_moment_rejects_what_is_not_a_time(text: str) -> None:
    assert parse_moment(text) is None


def test_parse_moment_rejects_a_time_past_the_last_representable_moment() -> None:
    assert parse_moment("9999-12-31T23:59:59-01:00") is None


def test_parse_tag_reads_the_action_lowercased_and_the_deadline() -> None:
    assert parse_tag(" Delete @2026-03-02T00:00:00Z") == (
        "delete",
        datetime(2026, 3, 2, tzinfo=timezone.utc),
    )


@pytest.mark.parametrize(
    "value",
    [
        "delete 2026-03-02T00:00:00Z",  # no separator
        "@2026-03-02T00:00:00Z",  # no action
        "delete@",  # no moment
        "delete@next week",  # not a time
    ],
)
def test_parse_tag_rejects_what_is_not_a_scheduled_action(value: str) -> None:
    assert parse_tag(value) is None


@given(
    action=st.sampled_from(["delete", "release"]),
    offset=st.timedeltas(min_value=timedelta(days=-9000), max_value=timedelta(days=9000)),
    zone=st.sampled_from(
        [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)
def test_property_a_tag_value_parses_back_to_its_action_and_second(
    action: str, offset: timedelta, zone: timezone
) -> None:
    moment = (NOW + offset).astimezone(zone)
    parsed = parse_tag(tag_value(action, moment))
    assert parsed is not None
    assert parsed[0] == action
    assert parsed[1].tzinfo is timezone.utc
    assert timedelta(0) <= moment - parsed[1] < timedelta(seconds=1)


@given(st.text(max_size=40))
def test_property_parse_tag_never_raises_and_gives_an_aware_utc_deadline(value: str) -> None:
    parsed = parse_tag(value)
    if parsed is not None:
        assert "@" in value
        assert parsed[0] == parsed[0].strip().lower()
        assert parsed[1].utcoffset() == timedelta(0)


# --- the announcement key --------------------------------------------------------------------


def test_announcement_key_is_the_lowercased_arn_and_the_creation_second_in_utc() -> None:
    created = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    subject = resource("My-Endpoint", created=created)
    assert announcement_key(subject) == (
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint|2026-01-05T08:00:00+00:00"
    )


def test_a_resource_recreated_under_the_same_name_has_another_key() -> None:
    first = resource("ep", created=CREATED)
    again = resource("ep", created=CREATED + timedelta(days=3))
    assert announcement_key(first) != announcement_key(again)


# --- announce --------------------------------------------------------------------------------


def test_an_untagged_qualifying_endpoint_is_announced_grace_hours_ahead() -> None:
    subject = decision()
    plan = plan_enforcement([subject], GRACE, 10, NOW)
    assert only_step(plan) == (
        Stage.ANNOUNCE,
        NOW + timedelta(hours=GRACE),
        "delete",
        "reason of ep",
    )
    assert plan.steps[0].decision is subject


def test_with_no_grace_period_a_qualifying_endpoint_is_acted_on_at_once() -> None:
    plan = plan_enforcement([decision()], 0, 10, NOW)
    assert only_step(plan) == (Stage.ACT, NOW, "delete", "reason of ep")


def test_a_tag_no_announcement_backs_is_announced_afresh() -> None:
    hand_written = tag_value("delete", NOW - timedelta(hours=1))
    plan = plan_enforcement([decision(tag=hand_written)], GRACE, 10, NOW, announced={})
    stage, deadline, _, reason = only_step(plan)
    assert stage is Stage.ANNOUNCE and deadline == NOW + timedelta(hours=GRACE)
    assert reason == "deadline tag not announced by SageSaver, announced afresh; reason of ep"


def test_without_a_ledger_every_tag_is_announced_afresh() -> None:
    tagged = decision(tag=tag_value("delete", NOW - timedelta(days=2)))
    stage, deadline, _, _ = only_step(plan_enforcement([tagged], GRACE, 10, NOW))
    assert stage is Stage.ANNOUNCE and deadline == NOW + timedelta(hours=GRACE)


def test_an_announcement_about_an_earlier_resource_of_the_same_name_does_not_count() -> None:
    deadline = NOW - timedelta(hours=1)
    earlier = decision(created=CREATED - timedelta(days=30))
    current = decision(tag=tag_value("delete", deadline))
    stage, _, _, _ = only_step(
        plan_enforcement([current], GRACE, 10, NOW, proven(earlier, deadline))
    )
    assert stage is Stage.ANNOUNCE


def test_an_unreadable_tag_is_replaced_with_a_fresh_deadline() -> None:
    subject = decision(tag="delete@whenever")
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, NOW - timedelta(hours=1)))
    stage, deadline, _, reason = only_step(plan)
    assert stage is Stage.ANNOUNCE and deadline == NOW + timedelta(hours=GRACE)
    assert reason == "unreadable tag replaced; reason of ep"


def test_a_tag_for_another_action_is_announced_afresh_for_this_one() -> None:
    subject = decision(tag=tag_value("release", NOW - timedelta(hours=1)))
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, NOW - timedelta(hours=1)))
    assert only_step(plan) == (
        Stage.ANNOUNCE,
        NOW + timedelta(hours=GRACE),
        "delete",
        "reason of ep",
    )


# --- wait and act ----------------------------------------------------------------------------


def test_an_announced_deadline_not_yet_passed_waits() -> None:
    deadline = NOW + timedelta(hours=5)
    subject = decision(tag=tag_value("delete", deadline))
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, deadline))
    assert only_step(plan) == (Stage.WAIT, deadline, "delete", "delete scheduled; reason of ep")


def test_an_announced_deadline_that_passed_is_acted_on() -> None:
    deadline = NOW - timedelta(hours=1)
    subject = decision(tag=tag_value("delete", deadline))
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, deadline))
    assert only_step(plan) == (Stage.ACT, deadline, "delete", "grace period over; reason of ep")


def test_a_deadline_reached_exactly_now_is_due() -> None:
    subject = decision(tag=tag_value("delete", NOW))
    stage, _, _, _ = only_step(plan_enforcement([subject], GRACE, 10, NOW, proven(subject, NOW)))
    assert stage is Stage.ACT


def test_a_user_postpones_by_editing_the_tag_to_a_later_time() -> None:
    later = NOW + timedelta(hours=48)
    subject = decision(tag=tag_value("delete", later))
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, NOW - timedelta(hours=1)))
    stage, deadline, _, _ = only_step(plan)
    assert stage is Stage.WAIT and deadline == later


def test_bringing_the_tag_forward_is_ignored() -> None:
    announced = NOW + timedelta(hours=3)
    subject = decision(tag=tag_value("delete", NOW - timedelta(hours=10)))
    stage, deadline, _, _ = only_step(
        plan_enforcement([subject], GRACE, 10, NOW, proven(subject, announced))
    )
    assert stage is Stage.WAIT and deadline == announced


def test_a_release_is_planned_under_its_own_action() -> None:
    deadline = NOW - timedelta(minutes=5)
    subject = decision(action=Action.RELEASE, tag=tag_value("release", deadline))
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, deadline))
    stage, _, action, _ = only_step(plan)
    assert stage is Stage.ACT and action == "release"


# --- spare and hold --------------------------------------------------------------------------


@pytest.mark.parametrize("action", [Action.KEEP, Action.NOTIFY])
def test_a_tagged_resource_that_no_longer_qualifies_is_spared(action: Action) -> None:
    subject = decision(action=action, rule="active", tag=tag_value("delete", NOW))
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, NOW))
    assert only_step(plan) == (Stage.SPARE, None, "delete", "no longer qualifies: reason of ep")


@pytest.mark.parametrize("action", [Action.KEEP, Action.NOTIFY])
def test_an_untagged_resource_that_does_not_qualify_is_left_out(action: Action) -> None:
    assert plan_enforcement([decision(action=action, rule="active")], GRACE, 10, NOW).steps == []


@pytest.mark.parametrize("rule", sorted(UNKNOWN_RULES))
def test_a_tagged_resource_whose_facts_could_not_be_read_is_held(rule: str) -> None:
    deadline = NOW - timedelta(hours=1)
    subject = decision(action=Action.DELETE, rule=rule, tag=tag_value("delete", deadline))
    plan = plan_enforcement([subject], GRACE, 10, NOW, proven(subject, deadline))
    assert only_step(plan) == (
        Stage.HOLD,
        None,
        "delete",
        "facts could not be read, nothing changed: reason of ep",
    )


@pytest.mark.parametrize("rule", sorted(UNKNOWN_RULES))
def test_an_untagged_resource_whose_facts_could_not_be_read_is_left_out(rule: str) -> None:
    subject = decision(action=Action.DELETE, rule=rule)
    assert plan_enforcement([subject], 0, 10, NOW).steps == []


# --- the blast-radius guard ------------------------------------------------------------------


def due(name: str, cost: float | None) -> tuple[Decision, dict[str, datetime]]:
    deadline = NOW - timedelta(hours=2)
    subject = decision(name=name, tag=tag_value("delete", deadline), cost=cost)
    return subject, proven(subject, deadline)


def plan_due(pairs: Sequence[tuple[Decision, dict[str, datetime]]], limit: int) -> EnforcementPlan:
    announced: dict[str, datetime] = {}
    for _, entry in pairs:
        announced.update(entry)
    return plan_enforcement([d for d, _ in pairs], GRACE, limit, NOW, announced)


def test_due_deletions_beyond_the_limit_are_deferred_most_expensive_acted_on_first() -> None:
    plan = plan_due([due("cheap", 0.5), due("dear", 3.0), due("unpriced", None)], 1)
    assert [s.decision.resource.name for s in plan.of(Stage.ACT)] == ["dear"]
    deferred = plan.of(Stage.DEFER)
    assert [s.decision.resource.name for s in deferred] == ["cheap", "unpriced"]
    for step in deferred:
        assert step.reason == "over max_actions_per_run (1); next run"
        assert step.action == "delete" and step.deadline == NOW - timedelta(hours=2)


def test_an_unknown_price_counts_as_nothing_when_ordering() -> None:
    plan = plan_due([due("a-unpriced", None), due("b-cent", 0.01)], 1)
    assert [s.decision.resource.name for s in plan.of(Stage.ACT)] == ["b-cent"]


def test_equally_priced_due_deletions_are_taken_in_name_order() -> None:
    plan = plan_due([due("c", 1.0), due("a", 1.0), due("b", 1.0)], 2)
    assert [s.decision.resource.name for s in plan.of(Stage.ACT)] == ["a", "b"]
    assert [s.decision.resource.name for s in plan.of(Stage.DEFER)] == ["c"]


def test_a_limit_of_zero_defers_every_due_deletion() -> None:
    plan = plan_due([due("a", 1.0), due("b", 2.0)], 0)
    assert plan.of(Stage.ACT) == []
    assert len(plan.of(Stage.DEFER)) == 2


def test_immediate_actions_without_grace_are_limited_too() -> None:
    plan = plan_enforcement([decision("a", cost=1.0), decision("b", cost=2.0)], 0, 1, NOW)
    assert [s.decision.resource.name for s in plan.of(Stage.ACT)] == ["b"]
    (deferred,) = plan.of(Stage.DEFER)
    assert deferred.decision.resource.name == "a" and deferred.deadline == NOW


def test_due_steps_come_after_the_others_in_the_plan() -> None:
    acted, announced = due("acted", 1.0)
    spared = decision("spared", action=Action.KEEP, rule="active", tag="delete@x")
    fresh = decision("fresh")
    plan = plan_enforcement([acted, spared, fresh], GRACE, 10, NOW, announced)
    assert [(s.decision.resource.name, s.stage) for s in plan.steps] == [
        ("spared", Stage.SPARE),
        ("fresh", Stage.ANNOUNCE),
        ("acted", Stage.ACT),
    ]


def test_of_gives_only_the_steps_at_that_stage() -> None:
    spared = decision("spared", action=Action.KEEP, rule="active", tag="delete@x")
    plan = plan_enforcement([decision("a"), spared, decision("b")], GRACE, 10, NOW)
    assert [s.decision.resource.name for s in plan.of(Stage.ANNOUNCE)] == ["a", "b"]
    assert [s.decision.resource.name for s in plan.of(Stage.SPARE)] == ["spared"]
    assert plan.of(Stage.WAIT) == []


# --- properties ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One drawn decision and what the ledger says was announced for it."""

    decision: Decision
    announced: datetime | None


@st.composite
def cases(draw: st.DrawFn) -> list[Case]:
    count = draw(st.integers(min_value=0, max_value=8))
    drawn: list[Case] = []
    for index in range(count):
        action = draw(st.sampled_from(list(Action)))
        rule = draw(st.sampled_from(["idle-endpoint", "active", "protected", *UNKNOWN_RULES]))
        offset = timedelta(hours=draw(st.floats(min_value=-200, max_value=200)))
        tag = draw(
            st.sampled_from(
                [
                    None,
                    "garbage",
                    tag_value("delete", NOW + offset),
                    tag_value("release", NOW + offset),
                ]
            )
        )
        cost = draw(st.none() | st.floats(min_value=0, max_value=100))
        subject = decision(f"r{index}", action=action, rule=rule, tag=tag, cost=cost)
        announced_offset = draw(st.none() | st.floats(min_value=-200, max_value=200))
        announced = None if announced_offset is None else NOW + timedelta(hours=announced_offset)
        drawn.append(Case(subject, announced))
    return drawn


def plan_cases(drawn: list[Case], grace: float, limit: int, now: datetime = NOW) -> EnforcementPlan:
    announced = {
        announcement_key(c.decision.resource): c.announced for c in drawn if c.announced is not None
    }
    return plan_enforcement([c.decision for c in drawn], grace, limit, now, announced)


graces = st.sampled_from([0.0, 0.5, 24.0, 24.0 * 90])
limits = st.integers(min_value=0, max_value=5)


@given(drawn=cases(), grace=graces, limit=limits)
def test_property_the_plan_gives_each_concerned_decision_exactly_one_step(
    drawn: list[Case], grace: float, limit: int
) -> None:
    plan = plan_cases(drawn, grace, limit)
    for case in drawn:
        d = case.decision
        steps = [s for s in plan.steps if s.decision is d]
        tagged = SCHEDULED_TAG in d.resource.tags
        if d.rule in UNKNOWN_RULES:
            assert [s.stage for s in steps] == ([Stage.HOLD] if tagged else [])
        elif d.action not in ACTED_ON:
            assert [s.stage for s in steps] == ([Stage.SPARE] if tagged else [])
        else:
            assert len(steps) == 1
            assert steps[0].stage in {Stage.ANNOUNCE, Stage.WAIT, Stage.ACT, Stage.DEFER}
            assert steps[0].action == d.action.value
    assert len(plan.steps) == len({id(s.decision) for s in plan.steps})


@given(drawn=cases(), grace=graces, limit=limits)
def test_property_nothing_is_acted_on_before_its_deadline(
    drawn: list[Case], grace: float, limit: int
) -> None:
    plan = plan_cases(drawn, grace, limit)
    for step in plan.steps:
        if step.stage in DUE_STAGES:
            assert step.deadline is not None and step.deadline <= NOW
        elif step.stage is Stage.WAIT:
            assert step.deadline is not None and step.deadline > NOW
        elif step.stage is Stage.ANNOUNCE:
            assert step.deadline == NOW + timedelta(hours=grace) and grace > 0
        else:
            assert step.deadline is None


@given(drawn=cases(), grace=graces, limit=limits)
def test_property_a_decision_to_keep_or_notify_is_never_acted_on(
    drawn: list[Case], grace: float, limit: int
) -> None:
    plan = plan_cases(drawn, grace, limit)
    for step in plan.steps:
        if step.stage is not Stage.SPARE and step.stage is not Stage.HOLD:
            assert step.decision.action in ACTED_ON
            assert step.decision.rule not in UNKNOWN_RULES


@given(drawn=cases(), grace=graces, limit=limits)
def test_property_a_deadline_is_never_earlier_than_the_one_announced(
    drawn: list[Case], grace: float, limit: int
) -> None:
    plan = plan_cases(drawn, grace, limit)
    announced = {id(c.decision): c.announced for c in drawn}
    for step in plan.steps:
        if step.stage in {Stage.SPARE, Stage.HOLD}:
            continue
        tag = parse_tag(step.decision.resource.tags.get(SCHEDULED_TAG, ""))
        proven_deadline = announced[id(step.decision)]
        if tag is None or tag[0] != step.action or proven_deadline is None:
            continue  # not a proven schedule: announced afresh
        assert step.stage in {Stage.WAIT, Stage.ACT, Stage.DEFER}
        assert step.deadline is not None
        assert step.deadline >= proven_deadline and step.deadline >= tag[1]


@given(drawn=cases(), grace=graces, limit=limits)
def test_property_at_most_the_limit_is_acted_on_and_the_dearest_first(
    drawn: list[Case], grace: float, limit: int
) -> None:
    plan = plan_cases(drawn, grace, limit)
    acted, deferred = plan.of(Stage.ACT), plan.of(Stage.DEFER)
    assert len(acted) == min(limit, len(acted) + len(deferred))
    if acted and deferred:
        cheapest_acted = min(s.decision.hourly_cost or 0.0 for s in acted)
        dearest_deferred = max(s.decision.hourly_cost or 0.0 for s in deferred)
        assert cheapest_acted >= dearest_deferred


@given(
    drawn=cases(),
    grace=graces,
    limit=limits,
    later=st.floats(min_value=0, max_value=500),
)
def test_property_what_is_due_stays_due_as_time_passes(
    drawn: list[Case], grace: float, limit: int, later: float
) -> None:
    def due_now(now: datetime) -> set[int]:
        plan = plan_cases(drawn, grace, limit, now)
        return {id(s.decision) for s in plan.steps if s.stage in DUE_STAGES}

    assert due_now(NOW) <= due_now(NOW + timedelta(hours=later))
