"""The Studio app idle rule (``core/rules/studio.py``): status, unknown activity, last use or
creation against ``idle_hours``, selection by space name, protection and the policy's action.
Pure: one fixed ``now``, no AWS."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.model import Action, Decision, Kind, Resource
from sagesaver.core.policy import StudioPolicy
from sagesaver.core.rules.studio import decide_app

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
RULES = StudioPolicy(idle_hours=3)
PROTECTED = {"sagesaver:protect": "true"}
SPACE = "lab"


def app(
    created_hours_ago: float = 100,
    status: str = "InService",
    tags: dict[str, str] | None = None,
    name: str = "default",
) -> Resource:
    created = NOW - timedelta(hours=created_hours_ago)
    return Resource(
        kind=Kind.STUDIO_APP,
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:app/d-abc/{SPACE}/jupyterlab/{name}",
        region="us-east-1",
        account="123456789012",
        status=status,
        created=created,
        modified=created,
        tags=tags or {},
        instance_type="ml.t3.medium",
    )


def used(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def decide(
    resource: Resource | None = None,
    last_activity: datetime | None = None,
    rules: StudioPolicy = RULES,
    space: str = SPACE,
    activity_known: bool = True,
    now: datetime = NOW,
) -> Decision:
    return decide_app(
        resource or app(), space, last_activity, rules, now, 0.05, activity_known=activity_known
    )


def test_an_app_used_within_the_window_is_kept() -> None:
    decision = decide(last_activity=used(1))
    assert decision.action is Action.KEEP and decision.rule == "active"
    assert not decision.idle and decision.idle_hours is None
    assert decision.reason == "last user activity 1.0 h ago"
    assert decision.hourly_cost == 0.05


def test_an_app_unused_beyond_the_window_is_idle_and_notified() -> None:
    decision = decide(last_activity=used(5))
    assert decision.action is Action.NOTIFY and decision.rule == "idle-studio-app"
    assert decision.idle and decision.idle_hours == 5.0
    assert decision.reason == "no user activity for 5.0 h"
    assert decision.hourly_cost == 0.05 and not decision.protected


def test_an_idle_app_gets_the_policys_action() -> None:
    decision = decide(last_activity=used(5), rules=StudioPolicy(idle_hours=3, action="delete"))
    assert decision.action is Action.DELETE and decision.rule == "idle-studio-app"


def test_an_app_unused_for_exactly_the_window_is_idle() -> None:
    decision = decide(last_activity=used(3))
    assert decision.idle and decision.idle_hours == 3.0


def test_idle_hours_are_rounded_to_hundredths() -> None:
    decision = decide(last_activity=NOW - timedelta(hours=4, seconds=20))
    assert decision.idle_hours == 4.01


def test_an_app_never_used_counts_from_its_creation() -> None:
    decision = decide(resource=app(created_hours_ago=10), last_activity=None)
    assert decision.action is Action.NOTIFY and decision.idle_hours == 10.0
    assert decision.reason == "never used since it was created for 10.0 h"


def test_an_app_never_used_but_just_created_is_kept() -> None:
    decision = decide(resource=app(created_hours_ago=0.5), last_activity=None)
    assert decision.rule == "active" and not decision.idle
    assert decision.reason == "last user activity 0.5 h ago"


def test_activity_after_creation_is_what_counts() -> None:
    decision = decide(resource=app(created_hours_ago=1000), last_activity=used(0.25))
    assert decision.rule == "active" and not decision.idle


@pytest.mark.parametrize("status", ["Pending", "Deleting", "Failed", "Deleted"])
def test_an_app_not_in_service_is_kept_whatever_its_age(status: str) -> None:
    decision = decide(resource=app(status=status), last_activity=used(500))
    assert decision.action is Action.KEEP and decision.rule == "status"
    assert decision.reason == f"status is {status}"
    assert not decision.idle and decision.idle_hours is None


def test_an_app_whose_activity_could_not_be_read_is_never_idle() -> None:
    decision = decide(last_activity=None, activity_known=False)
    assert decision.action is Action.KEEP and decision.rule == "activity-unknown"
    assert not decision.idle and decision.idle_hours is None
    assert decision.unknown
    assert decision.reason == "its activity could not be read: never idle"


def test_an_idle_app_outside_the_selection_is_kept_and_says_why() -> None:
    rules = StudioPolicy(idle_hours=3, exclude=["la*"])
    decision = decide(last_activity=used(5), rules=rules)
    assert decision.action is Action.KEEP and decision.rule == "scope"
    assert decision.idle and decision.idle_hours == 5.0
    assert decision.reason == "no user activity for 5.0 h; not selected: name matches exclude 'la*'"


def test_the_selection_matches_the_space_name_not_the_app_name() -> None:
    rules = StudioPolicy(idle_hours=3, include=["team-*"])
    in_team = decide(
        resource=app(name="whatever"), last_activity=used(5), rules=rules, space="team-a"
    )
    assert in_team.action is Action.NOTIFY
    named_like_team = decide(resource=app(name="team-b"), last_activity=used(5), rules=rules)
    assert named_like_team.rule == "scope"


def test_the_selection_can_require_a_tag() -> None:
    rules = StudioPolicy(idle_hours=3, tags={"env": "dev*"})
    tagged = decide(resource=app(tags={"env": "dev-1"}), last_activity=used(5), rules=rules)
    untagged = decide(last_activity=used(5), rules=rules)
    assert tagged.action is Action.NOTIFY
    assert untagged.rule == "scope" and "tag 'env' is missing" in untagged.reason


def test_a_protected_idle_app_is_kept_and_says_why() -> None:
    decision = decide(resource=app(tags=PROTECTED), last_activity=used(5))
    assert decision.action is Action.KEEP and decision.rule == "protected"
    assert decision.idle and decision.protected and decision.idle_hours == 5.0
    assert decision.reason == "no user activity for 5.0 h; protected by tag sagesaver:protect"


def test_a_protected_app_in_use_is_active_and_still_flagged_protected() -> None:
    decision = decide(resource=app(tags=PROTECTED), last_activity=used(1))
    assert decision.rule == "active" and decision.protected


def test_an_app_both_out_of_scope_and_protected_reports_the_scope() -> None:
    rules = StudioPolicy(idle_hours=3, exclude=[SPACE])
    decision = decide(resource=app(tags=PROTECTED), last_activity=used(5), rules=rules)
    assert decision.rule == "scope" and decision.protected


# --- properties ------------------------------------------------------------------------------

hours = st.floats(min_value=0, max_value=2000)
windows = st.floats(min_value=0.1, max_value=500)
protect_values = st.sampled_from(["true", "", "yes", "1", "keep"])
actions = st.sampled_from(["notify", "delete"])


@given(
    used_ago=st.none() | hours,
    created=hours,
    window=windows,
    value=protect_values,
    action=actions,
    status=st.sampled_from(["InService", "Pending", "Failed"]),
    known=st.booleans(),
)
def test_property_a_protected_app_is_never_acted_on(
    used_ago: float | None,
    created: float,
    window: float,
    value: str,
    action: str,
    status: str,
    known: bool,
) -> None:
    rules = StudioPolicy(idle_hours=window, action=action)
    resource = app(created_hours_ago=created, status=status, tags={"sagesaver:protect": value})
    last = None if used_ago is None else used(used_ago)
    decision = decide(resource, last, rules, activity_known=known)
    assert decision.action is Action.KEEP and decision.protected


@given(used_ago=st.none() | hours, created=hours, window=windows, action=actions)
def test_property_unknown_activity_is_never_idle(
    used_ago: float | None, created: float, window: float, action: str
) -> None:
    rules = StudioPolicy(idle_hours=window, action=action)
    last = None if used_ago is None else used(used_ago)
    decision = decide(app(created_hours_ago=created), last, rules, activity_known=False)
    assert not decision.idle and decision.action is Action.KEEP and decision.unknown


@given(window=windows, short=st.integers(min_value=1, max_value=10**7), action=actions)
def test_property_an_app_used_inside_the_window_is_never_idle(
    window: float, short: int, action: str
) -> None:
    used_ago = max(0.0, window - short / 3600)  # a second or more inside the window
    rules = StudioPolicy(idle_hours=window, action=action)
    decision = decide(last_activity=used(used_ago), rules=rules)
    assert not decision.idle and decision.action is Action.KEEP and decision.rule == "active"


@given(
    window=windows,
    beyond=st.integers(min_value=1, max_value=3_600_000),
    action=actions,
)
def test_property_an_app_unused_for_the_window_is_idle_with_the_policys_action(
    window: float, beyond: int, action: str
) -> None:
    rules = StudioPolicy(idle_hours=window, action=action)
    decision = decide(last_activity=used(window + beyond / 3600), rules=rules)
    assert decision.idle and decision.action is Action(action)
    # reported to the hundredth of an hour
    assert decision.idle_hours == pytest.approx(window + beyond / 3600, abs=0.0051)


@given(
    used_ago=st.none() | hours,
    created=hours,
    window=windows,
    later=st.floats(min_value=0, max_value=1000),
)
def test_property_an_idle_app_stays_idle_as_time_passes(
    used_ago: float | None, created: float, window: float, later: float
) -> None:
    rules = StudioPolicy(idle_hours=window)
    resource = app(created_hours_ago=created)
    last = None if used_ago is None else used(used_ago)
    before = decide(resource, last, rules)
    after = decide(resource, last, rules, now=NOW + timedelta(hours=later))
    if before.idle:
        assert after.idle and after.action is before.action
        assert before.idle_hours is not None and after.idle_hours is not None
        assert after.idle_hours >= before.idle_hours


@given(
    status=st.text(max_size=12).filter(lambda s: s != "InService"),
    used_ago=st.none() | hours,
)
def test_property_an_app_not_in_service_is_never_idle(status: str, used_ago: float | None) -> None:
    last = None if used_ago is None else used(used_ago)
    decision = decide(resource=app(status=status), last_activity=last)
    assert not decision.idle and decision.action is Action.KEEP and decision.rule == "status"


def test_an_app_used_seconds_inside_the_window_is_not_yet_idle() -> None:
    """The threshold is compared with the real idle time, not the one rounded for display
    (which made an app used 2 h 59 min 45 s ago idle under ``idle_hours: 3``)."""
    policy = StudioPolicy(idle_hours=3)
    last = NOW - timedelta(hours=3) + timedelta(seconds=15)
    assert not decide_app(app(), SPACE, last, policy, NOW, 0.05).idle


def test_an_app_unused_seconds_beyond_the_window_is_idle() -> None:
    policy = StudioPolicy(idle_hours=1.3125)
    last = NOW - timedelta(hours=1.3125) - timedelta(seconds=5)
    assert decide_app(app(), SPACE, last, policy, NOW, 0.05).idle
