"""The last-moment guard's verdicts, one branch each, and its invariants (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.grace import SCHEDULED_TAG, tag_value
from sagesaver.core.guard import (
    Observed,
    Verdict,
    guard_endpoint,
    traffic_window_start,
)
from sagesaver.core.records import Announced

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
CREATED = NOW - timedelta(days=10)
AT = NOW - timedelta(hours=30)  # announced
DEADLINE = AT + timedelta(hours=24)
GRACE = 24.0


def announced(
    at: datetime = AT, deadline: datetime = DEADLINE, ids: tuple[str, ...] = ("m-1",)
) -> Announced:
    return Announced(deadline, at, ids)


def observed(**changes: object) -> Observed:
    facts: dict[str, object] = {
        "status": "InService",
        "created": CREATED,
        "modified": CREATED,
        "tags": {SCHEDULED_TAG: tag_value("delete", DEADLINE)},
        "invocations": 0.0,
        "at": NOW,
    }
    facts.update(changes)
    return Observed(**facts)  # type: ignore[arg-type]


def verdict(seen: Observed, told: Announced | None = None, protected: bool = False) -> Verdict:
    told = announced() if told is None else told
    return guard_endpoint(CREATED, told, seen, GRACE, protected).verdict


def test_everything_still_holding_is_an_act() -> None:
    guarded = guard_endpoint(CREATED, announced(), observed(), GRACE, False)
    assert guarded.act and guarded.verdict is Verdict.ACT


def test_another_endpoint_under_the_name_is_kept() -> None:
    assert verdict(observed(created=CREATED + timedelta(seconds=1))) is Verdict.KEEP


def test_an_endpoint_no_longer_in_service_is_kept() -> None:
    assert verdict(observed(status="Updating")) is Verdict.KEEP


def test_a_protected_endpoint_is_kept() -> None:
    assert verdict(observed(), protected=True) is Verdict.KEEP


def test_no_announcement_or_a_silent_one_cancels() -> None:
    assert guard_endpoint(CREATED, None, observed(), GRACE, False).verdict is Verdict.CANCEL
    assert verdict(observed(), announced(ids=())) is Verdict.CANCEL


def test_a_change_after_the_announcement_cancels_it() -> None:
    assert verdict(observed(modified=AT + timedelta(seconds=1))) is Verdict.CANCEL
    assert verdict(observed(modified=AT)) is Verdict.ACT


def test_a_removed_deadline_tag_withdraws_the_announcement() -> None:
    assert verdict(observed(tags={})) is Verdict.CANCEL
    assert verdict(observed(tags={SCHEDULED_TAG: "soon"})) is Verdict.CANCEL


def test_with_a_grace_period_of_0_no_tag_is_needed() -> None:
    told = announced(at=NOW - timedelta(minutes=1), deadline=NOW - timedelta(minutes=1))
    seen = observed(tags={})
    assert guard_endpoint(CREATED, told, seen, 0.0, False).verdict is Verdict.ACT
    assert guard_endpoint(CREATED, told, seen, 1.0, False).verdict is Verdict.WAIT


def test_a_later_deadline_tag_postpones_an_earlier_one_does_not_hasten() -> None:
    later = {SCHEDULED_TAG: tag_value("delete", NOW + timedelta(hours=1))}
    assert verdict(observed(tags=later)) is Verdict.WAIT
    earlier = {SCHEDULED_TAG: tag_value("delete", AT)}
    assert verdict(observed(tags=earlier)) is Verdict.ACT  # the announced deadline holds


def test_less_than_the_grace_period_since_the_announcement_waits() -> None:
    told = announced(at=NOW - timedelta(hours=2), deadline=NOW - timedelta(hours=1))
    assert verdict(observed(), told) is Verdict.WAIT


def test_any_traffic_cancels() -> None:
    assert verdict(observed(invocations=0.5)) is Verdict.CANCEL


def test_the_traffic_window_reaches_back_to_the_announcement() -> None:
    assert traffic_window_start(announced(), 2, NOW) == AT
    assert traffic_window_start(announced(), 48, NOW) == NOW - timedelta(hours=48)
    assert traffic_window_start(None, 2, NOW) == NOW - timedelta(hours=2)


moments = st.integers(min_value=-100 * 3600, max_value=100 * 3600).map(
    lambda s: NOW + timedelta(seconds=s)
)


@given(
    modified=moments,
    at=moments,
    deadline=moments,
    tag=st.none() | moments,
    invocations=st.sampled_from([0.0, 0.5, 3.0]),
    protected=st.booleans(),
    status=st.sampled_from(["InService", "Updating", "Deleting"]),
    ids=st.sampled_from([(), ("m-1",)]),
    grace=st.sampled_from([0.0, 2.0, 24.0]),
)
def test_property_an_act_is_only_ever_allowed_when_every_fact_holds(
    modified: datetime,
    at: datetime,
    deadline: datetime,
    tag: datetime | None,
    invocations: float,
    protected: bool,
    status: str,
    ids: tuple[str, ...],
    grace: float,
) -> None:
    tags = {} if tag is None else {SCHEDULED_TAG: tag_value("delete", tag)}
    seen = observed(modified=modified, tags=tags, invocations=invocations, status=status)
    guarded = guard_endpoint(CREATED, Announced(deadline, at, ids), seen, grace, protected)
    if guarded.act:
        assert not protected and status == "InService" and ids and invocations == 0
        assert modified <= at and at + timedelta(hours=grace) <= NOW and deadline <= NOW
        assert tag is None or tag.replace(microsecond=0) <= NOW


def test_traffic_up_to_max_invocations_still_acts_one_more_cancels() -> None:
    told = announced()
    at_most = guard_endpoint(CREATED, told, observed(invocations=5.0), GRACE, False, "endpoint", 5)
    assert at_most.verdict is Verdict.ACT
    assert "5 invocations (at most 5 counts as idle)" in at_most.reason
    more = guard_endpoint(CREATED, told, observed(invocations=6.0), GRACE, False, "endpoint", 5)
    assert more.verdict is Verdict.CANCEL
    assert "6 invocations" in more.reason and "(at most 5 counts as idle)" in more.reason
    assert verdict(observed(invocations=1.0)) is Verdict.CANCEL  # the default is 0
