"""The notebook instance rules (``core/rules/notebooks.py``): what an instance costs in each
state, and the report-only decision (status, auto-stop guard, scope, protection), which never
acts on an instance. Pure: no AWS."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.model import Action, Kind, Resource
from sagesaver.core.policy import NotebookPolicy
from sagesaver.core.pricing import Pricer, PriceTable
from sagesaver.core.rules.notebooks import (
    BILLED_STATES,
    decide_notebook,
    notebook_hourly_cost,
    notebook_quote,
)

CREATED = datetime(2026, 2, 1, 9, tzinfo=timezone.utc)
PRICER = Pricer(
    PriceTable(
        {
            "us-east-1": {"notebook": {"ml.t3.medium": 0.05}},
            "cn-north-1": {"currency": "CNY", "notebook": {"ml.t3.medium": 0.4}},
        }
    )
)
RULES = NotebookPolicy()
PROTECTED = {"sagesaver:protect": "true"}


def notebook(
    status: str = "InService",
    instance_type: str | None = "ml.t3.medium",
    lifecycle_config: str | None = None,
    tags: dict[str, str] | None = None,
    name: str = "nb",
    region: str = "us-east-1",
) -> Resource:
    return Resource(
        kind=Kind.NOTEBOOK,
        name=name,
        arn=f"arn:aws:sagemaker:{region}:123456789012:notebook-instance/{name}",
        region=region,
        account="123456789012",
        status=status,
        created=CREATED,
        modified=CREATED,
        tags=tags or {},
        instance_type=instance_type,
        lifecycle_config=lifecycle_config,
    )


# --- cost ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Stopped", "Failed", "Deleting"])
def test_a_notebook_that_is_not_running_costs_a_known_zero(status: str) -> None:
    quote = notebook_quote(notebook(status=status), PRICER)
    assert quote.amount == 0.0
    assert quote.currency == "USD" and quote.source == "bundled"
    assert notebook_hourly_cost(notebook(status=status), PRICER) == 0.0


def test_a_stopped_notebook_with_no_instance_type_still_costs_zero() -> None:
    assert notebook_hourly_cost(notebook(status="Stopped", instance_type=None), PRICER) == 0.0


def test_a_stopped_notebook_costs_zero_in_its_regions_currency() -> None:
    quote = notebook_quote(notebook(status="Stopped", region="cn-north-1"), PRICER)
    assert (quote.amount, quote.currency) == (0.0, "CNY")


@pytest.mark.parametrize("status", sorted(BILLED_STATES))
def test_a_notebook_is_billed_its_instance_price_in_every_billed_state(status: str) -> None:
    quote = notebook_quote(notebook(status=status), PRICER)
    assert quote.amount == 0.05 and quote.source == "bundled"
    assert notebook_hourly_cost(notebook(status=status), PRICER) == 0.05


def test_a_running_notebook_is_priced_from_its_regions_table() -> None:
    quote = notebook_quote(notebook(region="cn-north-1"), PRICER)
    assert (quote.amount, quote.currency) == (0.4, "CNY")


def test_a_running_notebook_without_an_instance_type_has_an_unknown_cost() -> None:
    quote = notebook_quote(notebook(instance_type=None), PRICER)
    assert quote.amount is None
    assert quote.source == "unknown" and quote.note == "no instance type"
    assert quote.currency == "USD"
    assert notebook_hourly_cost(notebook(instance_type=None), PRICER) is None


def test_a_running_notebook_of_an_unpriced_type_has_an_unknown_cost_not_zero() -> None:
    resource = notebook(instance_type="ml.p5.48xlarge")
    quote = notebook_quote(resource, PRICER)
    assert quote.amount is None and quote.source == "unknown"
    assert quote.note is not None and "ml.p5.48xlarge" in quote.note
    assert notebook_hourly_cost(resource, PRICER) is None


# --- decision --------------------------------------------------------------------------------


def test_a_stopped_notebook_is_kept_under_the_status_rule() -> None:
    decision = decide_notebook(notebook(status="Stopped"), RULES, 0.0)
    assert decision.action is Action.KEEP and decision.rule == "status"
    assert decision.reason == "status is Stopped: no instance cost"


def test_a_running_notebook_without_lifecycle_configuration_has_no_auto_stop_guard() -> None:
    decision = decide_notebook(notebook(), RULES, 0.05)
    assert decision.action is Action.KEEP and decision.rule == "no-auto-stop"
    assert decision.reason == "InService with no lifecycle configuration: no auto-stop guard"
    assert decision.hourly_cost == 0.05


def test_a_running_notebook_with_lifecycle_configuration_can_carry_the_guard() -> None:
    decision = decide_notebook(notebook(lifecycle_config="sagesaver-autostop"), RULES, 0.05)
    assert decision.action is Action.KEEP and decision.rule == "auto-stop-guard"
    assert decision.reason == "InService; lifecycle configuration sagesaver-autostop"


def test_a_notebook_outside_the_selection_says_why() -> None:
    rules = NotebookPolicy(exclude=["nb*"])
    decision = decide_notebook(notebook(), rules, 0.05)
    assert decision.rule == "no-auto-stop" and decision.action is Action.KEEP
    assert decision.reason.endswith("; not selected: name matches exclude 'nb*'")


def test_a_protected_notebook_says_so_and_is_flagged() -> None:
    decision = decide_notebook(notebook(tags=PROTECTED), RULES, 0.05)
    assert decision.protected and decision.action is Action.KEEP
    assert decision.reason.endswith("; protected by tag sagesaver:protect")


def test_a_protected_notebook_outside_the_selection_gives_the_scope_reason_only() -> None:
    rules = NotebookPolicy(include=["prod-*"])
    decision = decide_notebook(notebook(tags=PROTECTED), rules, 0.05)
    assert decision.protected
    assert "not selected: name matches none of include ['prod-*']" in decision.reason
    assert "protected by tag" not in decision.reason


def test_the_policys_own_protect_tag_is_the_one_that_counts() -> None:
    rules = NotebookPolicy(protect_tag="team:keep")
    assert decide_notebook(notebook(tags={"team:keep": "yes"}), rules, None).protected
    assert not decide_notebook(notebook(tags=PROTECTED), rules, None).protected


@pytest.mark.parametrize("value", ["false", "No", " 0 ", "OFF"])
def test_a_protect_tag_saying_no_does_not_protect(value: str) -> None:
    decision = decide_notebook(notebook(tags={"sagesaver:protect": value}), RULES, None)
    assert not decision.protected
    assert "protected" not in decision.reason


# --- properties ------------------------------------------------------------------------------

statuses = st.sampled_from(
    ["InService", "Pending", "Updating", "Stopping", "Stopped", "Failed", "Deleting"]
)
protect_values = st.sampled_from(
    [(None, False), ("true", True), ("", True), ("keep", True), ("false", False), ("OFF", False)]
)


@given(
    status=statuses,
    lifecycle=st.none() | st.sampled_from(["guard", "other"]),
    protect=protect_values,
    excluded=st.booleans(),
    cost=st.none() | st.floats(min_value=0, max_value=50),
)
def test_property_a_notebook_decision_only_ever_reports(
    status: str,
    lifecycle: str | None,
    protect: tuple[str | None, bool],
    excluded: bool,
    cost: float | None,
) -> None:
    value, protected = protect
    tags = {} if value is None else {"sagesaver:protect": value}
    rules = NotebookPolicy(exclude=["nb"] if excluded else [])
    resource = notebook(status=status, lifecycle_config=lifecycle, tags=tags)
    decision = decide_notebook(resource, rules, cost)
    assert decision.action is Action.KEEP
    assert not decision.idle and decision.idle_hours is None
    assert decision.protected is protected
    assert decision.hourly_cost == cost
    assert decision.resource is resource
    assert ("not selected" in decision.reason) is excluded
    assert ("protected by tag" in decision.reason) is (protected and not excluded)
    if status != "InService":
        assert decision.rule == "status"
    else:
        assert decision.rule == ("no-auto-stop" if lifecycle is None else "auto-stop-guard")


@given(status=st.text(max_size=12), instance_type=st.none() | st.just("ml.t3.medium"))
def test_property_only_a_billed_state_costs_anything(
    status: str, instance_type: str | None
) -> None:
    cost = notebook_hourly_cost(notebook(status=status, instance_type=instance_type), PRICER)
    if status not in {"InService", "Pending", "Updating", "Stopping"}:
        assert cost == 0.0
    else:
        assert cost == (None if instance_type is None else 0.05)


@pytest.mark.parametrize("status", ["Pending", "Updating", "Stopping"])
def test_a_notebook_in_a_billed_state_is_not_said_to_cost_nothing(status: str) -> None:
    """Its instance bills while it changes state (``BILLED_STATES``): the reason says so, as
    its cost does."""
    resource = notebook(status=status)
    assert notebook_hourly_cost(resource, PRICER) == 0.05
    decision = decide_notebook(resource, RULES, 0.05)
    assert decision.reason == f"status is {status}: the instance bills while it changes state"
