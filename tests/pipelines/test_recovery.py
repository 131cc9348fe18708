"""Every kind that acts is recoverable: the executor refuses a lane whose kind has no
resolver, so a new kind cannot act before a later run can finish what it left half-done; and a
lease is closed only by an act carried out, never by a skipped one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import pytest

from sagesaver.aws.jobs import PoolNow
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso
from sagesaver.core.model import Kind
from sagesaver.core.policy import parse_policy
from sagesaver.ledger import DELETE_SENT, Entry, Outcome, SqliteLedger
from sagesaver.pipelines import recovery
from sagesaver.pipelines.acts import LEASE, RunContext
from sagesaver.pipelines.kinds import ACTING, Lane, run_lanes

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)


def test_a_kind_that_acts_without_being_registered_is_refused() -> None:
    unregistered = [kind for kind in Kind if kind not in ACTING]
    assert unregistered  # the check below would be empty otherwise
    with pytest.raises(ValueError, match="no recovery for a kind that acts"):
        Lane(unregistered[0], 0.0, 1, lambda aws, step, ctx: ("", Outcome.SKIPPED, None), "")


def test_the_lanes_follow_the_policy() -> None:
    acting = parse_policy(
        "endpoints: {action: delete}\njobs: {enabled: true, warm_pools: {action: release}}\n"
    )
    assert [lane.kind for lane in run_lanes(acting)] == [Kind.ENDPOINT, Kind.TRAINING_JOB]
    assert run_lanes(parse_policy("{}")) == []  # reports only
    studio = ACTING[Kind.STUDIO_APP]
    with pytest.raises(ValueError, match="needs its inventory"):
        studio.lane(acting)


def test_every_acting_kind_is_granted_its_irreversible_call() -> None:
    """A kind's irreversible call is in the IAM capability it names, and its resolver is a
    function of its own: nothing about a kind is left to a switch elsewhere."""
    from sagesaver.core.permissions import CAPABILITIES

    for kind, spec in ACTING.items():
        assert spec.kind is kind
        assert spec.call in CAPABILITIES[spec.capability], (kind, spec.call)
        assert spec.verb in ("delete", "release") and spec.would
    assert len({spec.resolve for spec in ACTING.values()}) == len(ACTING)


def test_a_skipped_release_recorded_after_a_lease_does_not_close_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run dies after UpdateTrainingJob; meanwhile another run recorded a *skipped* release
    of the same job ("another run is acting on it"). Only an act carried out closes the lease:
    the recovery records the release the dead run made, once."""
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    subject = {
        "kind": Kind.TRAINING_JOB.value, "account": "123456789012", "region": "us-east-1",
        "name": "tune-7", "arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/tune-7",
        "created": iso(T0 - timedelta(hours=3)),
    }  # fmt: skip
    assert ledger.take_lease("k", "dead-run", T0, T0 + LEASE, subject)
    ledger.advance_lease("k", "dead-run", DELETE_SENT)
    skipped = Entry(
        T0 + timedelta(minutes=1), "123456789012", "us-east-1", "training-job", "tune-7",
        "release", "idle-warm-pool", "idle", 0.5, False, "skipped: another run is acting on it",
        status=Outcome.SKIPPED,
    )  # fmt: skip
    ledger.record(skipped)
    ended = PoolNow("Terminated", T0 - timedelta(hours=3), None)
    monkeypatch.setattr(recovery.jobs, "warm_pool_now", lambda *args: ended)
    later = T0 + LEASE + timedelta(minutes=5)
    ctx = RunContext("next-run", later, parse_policy("{}"), ledger)
    found, errors = recovery.recover(
        lambda account: cast(Aws, object()),
        ledger,
        ["us-east-1"],
        ctx,
        {Kind.TRAINING_JOB: ACTING[Kind.TRAINING_JOB].resolve},
    )
    assert errors == []
    assert [(e.action, e.status) for e in found] == [("release", Outcome.CONFIRMED)]
    assert [e.status for e in ledger.entries()] == [Outcome.SKIPPED, Outcome.CONFIRMED]
    assert ledger.open_leases() == []
