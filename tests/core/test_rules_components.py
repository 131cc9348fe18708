"""The inference component idle rule (``core/rules/components.py``): status, unknown
Invocations, traffic, minimum age, scope, protection, unread and zero copies, and the
scale-to-zero advice, which is never more than a notification. Pure: one fixed ``now``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.model import Action, Activity, Decision, Kind, Resource, Variant
from sagesaver.core.policy import EndpointPolicy
from sagesaver.core.rules.components import (
    COPIES_TO_ZERO,
    components_unknown,
    decide_component,
    may_host_components,
)
from sagesaver.core.rules.endpoints import decide_endpoint

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
RULES = EndpointPolicy()  # idle_hours 24, min_age defaults to idle_hours
IDLE = Activity(invocations=0, window_hours=24)
PROTECTED = {"sagesaver:protect": "true"}


def component(
    age_hours: float = 100,
    copies: int | None = 2,
    status: str = "InService",
    tags: dict[str, str] | None = None,
    name: str = "ic-llm",
) -> Resource:
    changed = NOW - timedelta(hours=age_hours)
    return Resource(
        kind=Kind.INFERENCE_COMPONENT,
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:inference-component/{name}",
        region="us-east-1",
        account="123456789012",
        status=status,
        created=changed - timedelta(days=2),
        modified=changed,
        tags=tags or {},
        instance_count=copies,
        parent="ep-shared",
    )


def decide(
    resource: Resource | None = None,
    activity: Activity | None = IDLE,
    rules: EndpointPolicy = RULES,
    now: datetime = NOW,
) -> Decision:
    return decide_component(resource or component(), activity, rules, now)


def test_an_idle_component_is_notified_with_the_advice_to_scale_to_zero() -> None:
    decision = decide()
    assert decision.action is Action.NOTIFY and decision.rule == "idle-inference-component"
    assert decision.idle and decision.idle_hours == 24.0
    assert decision.reason == (
        "no Invocations on inference component for 24.0 h on endpoint ep-shared (2 copies); "
        f"{COPIES_TO_ZERO}"
    )
    (advice,) = decision.recommendations
    assert advice.kind == "scale-to-zero"
    assert advice.evidence == f"no Invocations on inference component for 24.0 h; {COPIES_TO_ZERO}"
    assert decision.hourly_cost is None and not decision.protected


def test_an_idle_component_is_only_notified_even_when_the_policy_deletes() -> None:
    decision = decide(rules=EndpointPolicy(action="delete"))
    assert decision.action is Action.NOTIFY


def test_a_component_with_invocations_is_active() -> None:
    decision = decide(activity=Activity(invocations=3, window_hours=24))
    assert decision.action is Action.KEEP and decision.rule == "active"
    assert not decision.idle and decision.idle_hours is None
    assert decision.reason == "3 invocations in the last 24.0 h"


def test_a_fraction_of_an_invocation_still_counts_as_activity() -> None:
    decision = decide(activity=Activity(invocations=0.5, window_hours=6))
    assert decision.rule == "active" and decision.reason == "0.5 invocations in the last 6.0 h"


def test_a_component_whose_invocations_could_not_be_read_is_never_idle() -> None:
    decision = decide(activity=None)
    assert decision.action is Action.KEEP and decision.rule == "activity-unknown"
    assert not decision.idle and decision.unknown
    assert decision.reason == "Invocations could not be read: never idle"


@pytest.mark.parametrize("status", ["Creating", "Updating", "Failed", "Deleting"])
def test_a_component_not_in_service_is_kept(status: str) -> None:
    decision = decide(resource=component(status=status))
    assert decision.action is Action.KEEP and decision.rule == "status"
    assert decision.reason == f"status is {status}, not InService"
    assert not decision.idle


def test_a_young_component_is_not_idle_and_age_counts_from_its_last_change() -> None:
    young = component(age_hours=2)
    assert young.created < NOW - timedelta(hours=24)  # created long ago, changed 2 h ago
    decision = decide(resource=young)
    assert decision.action is Action.KEEP and decision.rule == "min-age"
    assert not decision.idle
    assert decision.reason == (
        "no invocations, but created or changed only 2.0 h ago (min_age_hours 24)"
    )


def test_a_component_exactly_min_age_old_is_idle() -> None:
    decision = decide(resource=component(age_hours=24))
    assert decision.idle and decision.action is Action.NOTIFY


def test_idle_hours_are_limited_by_age_when_min_age_is_lower() -> None:
    rules = EndpointPolicy(idle_hours=48, min_age_hours=2)
    decision = decide(resource=component(age_hours=5), activity=Activity(0, 48), rules=rules)
    assert decision.idle and decision.idle_hours == 5.0


def test_idle_hours_are_limited_by_the_window_looked_at() -> None:
    decision = decide(resource=component(age_hours=1000), activity=Activity(0, 72))
    assert decision.idle_hours == 72.0


def test_an_idle_component_outside_the_selection_is_kept_and_says_why() -> None:
    decision = decide(rules=EndpointPolicy(exclude=["ic-*"]))
    assert decision.action is Action.KEEP and decision.rule == "scope"
    assert decision.idle and decision.idle_hours == 24.0
    assert decision.reason == (
        "no Invocations on inference component for 24.0 h; not selected: name matches exclude "
        "'ic-*'"
    )


def test_the_selection_is_by_component_name_and_tags() -> None:
    rules = EndpointPolicy(include=["ic-*"], tags={"team": "ml"})
    assert decide(resource=component(tags={"team": "ml"}), rules=rules).action is Action.NOTIFY
    assert decide(resource=component(tags={"team": "web"}), rules=rules).rule == "scope"
    assert decide(resource=component(name="other", tags={"team": "ml"}), rules=rules).rule == (
        "scope"
    )


def test_a_protected_idle_component_is_kept_and_says_why() -> None:
    decision = decide(resource=component(tags=PROTECTED))
    assert decision.action is Action.KEEP and decision.rule == "protected"
    assert decision.idle and decision.protected and decision.idle_hours == 24.0
    assert decision.reason.endswith("; protected by tag sagesaver:protect")


def test_a_protected_busy_component_is_active_and_flagged_protected() -> None:
    decision = decide(resource=component(tags=PROTECTED), activity=Activity(1, 24))
    assert decision.rule == "active" and decision.protected


def test_a_component_whose_copies_could_not_be_read_is_kept() -> None:
    decision = decide(resource=component(copies=None))
    assert decision.action is Action.KEEP and decision.rule == "details-unknown"
    assert decision.idle and decision.unknown
    assert decision.reason.endswith("; its copies could not be read")


def test_a_component_already_at_zero_copies_is_kept() -> None:
    decision = decide(resource=component(copies=0))
    assert decision.action is Action.KEEP and decision.rule == "zero-copies"
    assert decision.idle and decision.idle_hours == 24.0
    assert decision.reason.endswith("; already at 0 copies")
    assert decision.recommendations == ()


# --- properties ------------------------------------------------------------------------------

ages = st.floats(min_value=0, max_value=5000)
windows = st.floats(min_value=0.1, max_value=1000)
invocations = st.sampled_from([0.0, 0.0, 0.5, 1.0, 1e6])
copies = st.none() | st.integers(min_value=0, max_value=8)
actions = st.sampled_from(["notify", "delete"])
statuses = st.sampled_from(["InService", "InService", "Creating", "Failed"])


@given(
    age=ages,
    count=invocations,
    window=windows,
    n=copies,
    action=actions,
    status=statuses,
    read=st.booleans(),
)
def test_property_a_component_is_never_more_than_notified(
    age: float, count: float, window: float, n: int | None, action: str, status: str, read: bool
) -> None:
    rules = EndpointPolicy(idle_hours=window, action=action)
    activity = Activity(count, window) if read else None
    decision = decide(component(age, n, status), activity, rules)
    assert decision.action in {Action.KEEP, Action.NOTIFY}
    assert decision.hourly_cost is None


@given(
    age=ages,
    count=invocations,
    window=windows,
    n=copies,
    value=st.sampled_from(["true", "", "yes", "1"]),
)
def test_property_a_protected_component_is_never_notified(
    age: float, count: float, window: float, n: int | None, value: str
) -> None:
    resource = component(age, n, tags={"sagesaver:protect": value})
    decision = decide(resource, Activity(count, window), EndpointPolicy(idle_hours=window))
    assert decision.action is Action.KEEP and decision.protected


@given(age=ages, window=windows, n=copies, status=statuses)
def test_property_unknown_invocations_are_never_idle(
    age: float, window: float, n: int | None, status: str
) -> None:
    decision = decide(component(age, n, status), None, EndpointPolicy(idle_hours=window))
    assert not decision.idle and decision.action is Action.KEEP


@given(
    age=ages,
    count=st.floats(min_value=1e-6, max_value=1e9),
    window=windows,
    n=copies,
)
def test_property_a_component_with_any_invocation_in_the_window_is_never_idle(
    age: float, count: float, window: float, n: int | None
) -> None:
    decision = decide(component(age, n), Activity(count, window), EndpointPolicy(idle_hours=window))
    assert not decision.idle and decision.action is Action.KEEP and decision.rule == "active"


@given(
    age=ages,
    window=windows,
    min_age=st.none() | st.floats(min_value=0, max_value=1000),
    n=copies,
)
def test_property_idle_exactly_when_old_enough_and_never_beyond_window_or_age(
    age: float, window: float, min_age: float | None, n: int | None
) -> None:
    rules = EndpointPolicy(idle_hours=window, min_age_hours=min_age)
    decision = decide(component(age, n), Activity(0, window), rules)
    threshold = window if min_age is None else min_age
    if abs(age - threshold) > 1e-6:  # clear of the microseconds a timedelta keeps
        assert decision.idle is (age > threshold)
    if decision.idle:
        assert decision.idle_hours is not None
        assert decision.idle_hours <= window + 0.005 and decision.idle_hours <= age + 0.005
    else:
        assert decision.rule == "min-age"


@given(age=ages, window=windows, n=copies, later=st.floats(min_value=0, max_value=1000))
def test_property_an_idle_component_stays_idle_as_time_passes(
    age: float, window: float, n: int | None, later: float
) -> None:
    rules = EndpointPolicy(idle_hours=window)
    resource = component(age, n)
    before = decide(resource, Activity(0, window), rules)
    after = decide(resource, Activity(0, window), rules, now=NOW + timedelta(hours=later))
    if before.idle:
        assert after.idle and after.action is before.action and after.rule == before.rule


def endpoint(*models: str | None) -> Resource:
    """An endpoint whose variants name these models (None: a variant naming none)."""
    return Resource(
        kind=Kind.ENDPOINT,
        name="ep",
        arn="arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep",
        region="us-east-1",
        account="123456789012",
        status="InService",
        created=NOW - timedelta(days=10),
        modified=NOW - timedelta(days=10),
        variants=tuple(
            Variant(f"v{i}", "ml.m5.large", 1, model=model) for i, model in enumerate(models)
        ),
    )


def test_only_an_endpoint_with_a_variant_naming_no_model_may_host_components() -> None:
    assert not may_host_components(endpoint("m1"))
    assert not may_host_components(endpoint("m1", "m2"))
    assert may_host_components(endpoint("m1", None))
    assert may_host_components(endpoint())  # variants not read: nothing says it cannot


@given(
    models=st.lists(st.sampled_from(["m1", None]), max_size=3),
    invocations=st.sampled_from([0.0, 0.5, 7.0]),
    protected=st.booleans(),
)
def test_property_unlisted_components_make_unknown_exactly_the_idle_possible_hosts(
    models: list[str | None], invocations: float, protected: bool
) -> None:
    resource = replace(endpoint(*models), tags=PROTECTED if protected else {})
    decision = decide_endpoint(resource, Activity(invocations, 24), RULES, NOW, 1.0)
    judged = components_unknown(decision, "ListInferenceComponents: AccessDeniedException")
    if decision.idle and may_host_components(resource):
        assert judged.rule == "activity-unknown" and judged.unknown
        assert not judged.idle and judged.action is Action.KEEP and judged.idle_hours is None
        assert judged.reason == (
            f"{decision.reason.split(';')[0]}, but its inference components could not be listed "
            "(ListInferenceComponents: AccessDeniedException): never idle"
        )
    else:
        assert judged == decision  # busy, or names a model in every variant: judged as usual


def test_a_trickle_at_most_max_invocations_counts_as_idle_as_for_endpoints() -> None:
    trickle = Activity(invocations=3, window_hours=24)
    assert decide(activity=trickle).rule == "active"  # the default: any call is traffic
    lenient = EndpointPolicy(max_invocations=3)
    decision = decide(activity=trickle, rules=lenient)
    assert (decision.action, decision.rule, decision.idle) == (
        Action.NOTIFY,
        "idle-inference-component",
        True,
    )
    assert decision.reason.startswith(
        "3 invocations (at most 3 counts as idle) on inference component in the last 24.0 h"
    )
    busier = decide(activity=Activity(invocations=4, window_hours=24), rules=lenient)
    assert (busier.rule, busier.idle) == ("active", False)
    assert busier.reason == "4 invocations in the last 24.0 h"
    young = decide(component(age_hours=2), activity=trickle, rules=lenient)
    assert young.rule == "min-age" and young.reason.startswith("3 invocations (at most 3")
