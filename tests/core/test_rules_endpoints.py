from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.model import Action, Activity, Kind, Resource, Variant
from sagesaver.core.policy import EndpointPolicy
from sagesaver.core.pricing import Pricer, PriceTable
from sagesaver.core.rules.endpoints import decide_endpoint, endpoint_hourly_cost, is_idle_candidate

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
PRICER = Pricer(PriceTable({"us-east-1": {"hosting": {"ml.m5.large": 0.1, "ml.g4dn.xlarge": 0.7}}}))


def endpoint(
    age_hours: float = 100,
    tags: dict[str, str] | None = None,
    variants: tuple[Variant, ...] = (Variant("AllTraffic", "ml.m5.large", 1),),
    name: str = "ep",
    status: str = "InService",
) -> Resource:
    changed = NOW - timedelta(hours=age_hours)
    return Resource(
        kind=Kind.ENDPOINT,
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}",
        region="us-east-1",
        account="123456789012",
        status=status,
        created=changed - timedelta(days=1),
        modified=changed,
        tags=tags or {},
        variants=variants,
    )


IDLE = Activity(invocations=0, window_hours=24)
RULES = EndpointPolicy()


def test_idle_endpoint_is_notified_with_reason() -> None:
    decision = decide_endpoint(endpoint(), IDLE, RULES, NOW, 0.1)
    assert decision.action is Action.NOTIFY
    assert decision.idle and decision.idle_hours == 24
    assert decision.reason == "no Invocations on any variant for 24.0 h"


def test_traffic_is_active() -> None:
    decision = decide_endpoint(endpoint(), Activity(3, 24), RULES, NOW)
    assert decision.action is Action.KEEP and not decision.idle
    assert "3 invocations" in decision.reason


def test_young_endpoint_is_not_idle_and_age_counts_from_last_modification() -> None:
    young = endpoint(age_hours=1)
    assert young.created < NOW - timedelta(hours=24)  # created long ago, modified an hour ago
    decision = decide_endpoint(young, IDLE, RULES, NOW)
    assert decision.rule == "min-age" and not decision.idle
    assert not is_idle_candidate(young, IDLE, RULES, NOW)


def test_idle_hours_is_limited_by_age_when_min_age_is_lower() -> None:
    rules = EndpointPolicy(idle_hours=48, min_age_hours=2)
    decision = decide_endpoint(endpoint(age_hours=5), Activity(0, 48), rules, NOW)
    assert decision.idle and decision.idle_hours == 5


def test_unknown_activity_is_never_idle() -> None:
    decision = decide_endpoint(endpoint(), None, RULES, NOW)
    assert decision.action is Action.KEEP and not decision.idle
    assert not is_idle_candidate(endpoint(), None, RULES, NOW)


def test_protected_idle_endpoint_is_kept_and_says_why() -> None:
    decision = decide_endpoint(endpoint(tags={"sagesaver:protect": "true"}), IDLE, RULES, NOW)
    assert decision.action is Action.KEEP and decision.idle and decision.protected
    assert "protected by tag sagesaver:protect" in decision.reason


def test_zero_instances_cost_nothing_and_are_kept() -> None:
    resource = endpoint(variants=(Variant("AllTraffic", "ml.m5.large", 0),))
    assert endpoint_hourly_cost(resource, PRICER) == 0
    decision = decide_endpoint(resource, IDLE, RULES, NOW, 0.0)
    assert decision.action is Action.KEEP and decision.idle
    assert "0 instances" in decision.reason


def test_out_of_scope_idle_endpoint_is_kept() -> None:
    rules = EndpointPolicy(exclude=["ep*"])
    decision = decide_endpoint(endpoint(), IDLE, rules, NOW)
    assert decision.action is Action.KEEP and decision.idle
    assert "exclude 'ep*'" in decision.reason


def test_missing_details_are_never_acted_on() -> None:
    decision = decide_endpoint(endpoint(variants=()), IDLE, RULES, NOW)
    assert decision.action is Action.KEEP and decision.rule == "details-unknown"


def test_cost_sums_variants_and_unknown_type_gives_none() -> None:
    two = endpoint(variants=(Variant("a", "ml.m5.large", 2), Variant("b", "ml.g4dn.xlarge", 1)))
    assert endpoint_hourly_cost(two, PRICER) == 0.9
    unknown = endpoint(variants=(Variant("a", "ml.unknown.large", 1),))
    assert endpoint_hourly_cost(unknown, PRICER) is None
    serverless = endpoint(variants=(Variant("a", None, 0, serverless=True),))
    assert endpoint_hourly_cost(serverless, PRICER) == 0


def test_not_in_service_is_kept() -> None:
    decision = decide_endpoint(endpoint(status="Updating"), IDLE, RULES, NOW)
    assert decision.action is Action.KEEP and decision.rule == "status"


tag_values = st.sampled_from(["true", "yes", "", "1", "keep", "TRUE"])


@given(
    age=st.floats(min_value=0, max_value=5000),
    invocations=st.sampled_from([0.0, 0.0, 1.0, 1e6]),
    value=tag_values,
    idle_hours=st.floats(min_value=0.1, max_value=1000),
)
def test_property_a_protected_endpoint_is_never_acted_on(
    age: float, invocations: float, value: str, idle_hours: float
) -> None:
    rules = EndpointPolicy(idle_hours=idle_hours)
    resource = endpoint(age_hours=age, tags={"sagesaver:protect": value})
    decision = decide_endpoint(resource, Activity(invocations, idle_hours), rules, NOW, 1.0)
    assert decision.action is Action.KEEP


@given(
    per_variant=st.lists(st.sampled_from([0.0, 0.0, 2.0, 1e4]), min_size=1, max_size=4),
    age=st.floats(min_value=0, max_value=5000),
)
def test_property_traffic_on_any_variant_means_active(per_variant: list[float], age: float) -> None:
    total = sum(per_variant)
    decision = decide_endpoint(endpoint(age_hours=age), Activity(total, 24), RULES, NOW, 1.0)
    if total > 0:
        assert not decision.idle and decision.action is Action.KEEP
    else:
        assert decision.idle == (age >= RULES.min_age)


THRESHOLD = EndpointPolicy(max_invocations=5)


def test_max_invocations_defaults_to_0_so_any_traffic_is_active() -> None:
    assert RULES.max_invocations == 0
    assert decide_endpoint(endpoint(), Activity(1, 24), RULES, NOW).rule == "active"
    assert not is_idle_candidate(endpoint(), Activity(1, 24), RULES, NOW)


def test_at_most_max_invocations_counts_as_idle_and_says_so() -> None:
    decision = decide_endpoint(endpoint(), Activity(5, 24), THRESHOLD, NOW, 0.1)
    assert decision.action is Action.NOTIFY and decision.idle
    assert decision.rule == "idle-endpoint" and decision.idle_hours == 24
    assert decision.reason == "5 invocations in the last 24.0 h (at most 5 counts as idle)"
    assert is_idle_candidate(endpoint(), Activity(5, 24), THRESHOLD, NOW)


def test_one_more_than_max_invocations_is_active() -> None:
    decision = decide_endpoint(endpoint(), Activity(6, 24), THRESHOLD, NOW, 0.1)
    assert decision.action is Action.KEEP and decision.rule == "active" and not decision.idle
    assert "6 invocations" in decision.reason
    assert not is_idle_candidate(endpoint(), Activity(6, 24), THRESHOLD, NOW)


def test_zero_invocations_under_a_threshold_keeps_todays_reason() -> None:
    decision = decide_endpoint(endpoint(), IDLE, THRESHOLD, NOW, 0.1)
    assert decision.reason == "no Invocations on any variant for 24.0 h"
