"""Every kind that acts is recoverable: the executor refuses a lane whose kind has no
resolver, so a new kind cannot act before a later run can finish what it left half-done."""

from __future__ import annotations

import pytest

from sagesaver.core.model import Kind
from sagesaver.core.policy import parse_policy
from sagesaver.pipelines.enforce import Lane, run_lanes
from sagesaver.pipelines.recovery import RESOLVERS


def test_a_kind_that_acts_without_a_resolver_is_refused() -> None:
    unresolved = [kind for kind in Kind if kind not in RESOLVERS]
    assert unresolved  # the check below would be empty otherwise
    with pytest.raises(ValueError, match="no recovery for a kind that acts"):
        Lane(unresolved[0], 0.0, 1, lambda aws, step, ctx: ("", False, None), "")


def test_the_lanes_of_every_acting_policy_are_recoverable() -> None:
    policy = parse_policy(
        "endpoints: {action: delete}\njobs: {enabled: true, warm_pools: {action: release}}\n"
    )
    kinds = {lane.kind for lane in run_lanes(policy)}
    assert kinds == {Kind.ENDPOINT, Kind.TRAINING_JOB}
    assert kinds | {Kind.STUDIO_APP} <= RESOLVERS.keys()
