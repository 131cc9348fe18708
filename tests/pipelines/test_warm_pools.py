"""Releasing idle warm pools (``jobs.warm_pools.action: release``) on the simulator, whose
training jobs carry warm pools and answer ``UpdateTrainingJob`` (moto has neither): dry run,
release, the fresh re-read, protection, the default, and one failure confined to its job."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.aws import jobs
from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.demo.simulator import Fault, Fleet, Simulator
from sagesaver.ledger import SqliteLedger
from sagesaver.pipelines.enforce import EnforcementRun, enforce_and_notify
from sagesaver.pipelines.scan import scan
from tests.conftest import Cli
from tests.pipelines.test_enforce_faults import Killed, kill_after, kill_before, kill_on_done
from tests.prices import example_pricer

EAST = "us-east-1"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
RELEASE = (
    "jobs:\n  warm_pools: {{action: release, idle_hours: 0.5}}\nnotify: {{sns_topic_arn: '{}'}}\n"
)


def policy_with(topic: str, text: str = RELEASE) -> Policy:
    return parse_policy(text.format(topic))


def one_run(
    policy: Policy, ledger: SqliteLedger, apply: bool = True, at: datetime = NOW
) -> tuple[Any, EnforcementRun]:
    """One scan and its enforcement at ``at``, as `run` does."""
    aws = Aws()
    result = scan(aws, [EAST], policy, at, example_pricer())
    return result, enforce_and_notify(aws, result, policy, at, apply, ledger)


def steps_by_name(done: EnforcementRun) -> dict[str, Any]:
    return {s.step.decision.resource.name: s for s in done.steps}


def updates(sim: Simulator) -> int:
    return sim.middleware.counts["UpdateTrainingJob"]


def test_apply_releases_an_idle_pool_records_it_and_counts_the_saving(
    sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    from sagesaver.core.savings import off_intervals

    topic = fleet.topic(EAST, "admins")
    ended = NOW - timedelta(minutes=40)  # keep-alive 3600 s: it would bill until NOW + 20 min
    fleet.training_job(EAST, "tune-7", ended, "ml.g4dn.xlarge", 2, tags={"team": "cv"})
    fleet.training_job(EAST, "tune-8", NOW - timedelta(minutes=10))  # just ended: kept a while
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    result, done = one_run(policy_with(topic), ledger)
    assert result.errors == []
    steps = steps_by_name(done)
    assert sorted(steps) == ["tune-7"]
    step = steps["tune-7"]
    assert (step.step.stage.value, step.step.action, step.applied) == ("act", "release", True)
    assert step.outcome.startswith("released: KeepAlivePeriodInSeconds set to 0")
    assert fleet.warm_pool(EAST, "tune-7") == "Terminated"
    assert fleet.warm_pool(EAST, "tune-8") == "Available"
    assert updates(sim) == 1
    young = next(d for d in result.decisions if d.resource.name == "tune-8")
    assert young.action.value == "notify" and "released once unused for 0.5 h" in young.reason
    # The digest went out before the release, naming it.
    [message] = fleet.published(topic)
    assert "tune-7" in message["Message"] and "to be released in this run" in message["Message"]
    # The ledger: one entry, the pool's own end, hence the saving: 20 minutes of 2 instances.
    [entry] = ledger.entries()
    assert (entry.kind, entry.action, entry.dry_run, entry.tags) == (
        "training-job",
        "release",
        False,
        {"team": "cv"},
    )
    assert entry.off_until == ended + timedelta(hours=1)
    assert entry.hourly_cost == pytest.approx(2 * 0.736)
    [interval] = off_intervals(ledger.entries(), NOW + timedelta(days=3))
    assert interval.hours == pytest.approx(20 / 60)
    assert interval.saved == pytest.approx(20 / 60 * 2 * 0.736)
    # A second run finds nothing Available and changes nothing.
    sim.middleware.counts.clear()
    _, again = one_run(policy_with(topic), ledger)
    assert "tune-7" not in steps_by_name(again) and updates(sim) == 0


def test_the_dry_run_changes_nothing(sim: Simulator, fleet: Fleet, tmp_path: Path) -> None:
    topic = fleet.topic(EAST, "admins")
    fleet.training_job(EAST, "tune-7", NOW - timedelta(hours=2))
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    sim.middleware.counts.clear()  # what seeding did
    _, done = one_run(policy_with(topic), ledger, apply=False)
    step = steps_by_name(done)["tune-7"]
    assert step.applied is False
    assert step.outcome == "would release (after a fresh check that it is still Available)"
    assert fleet.warm_pool(EAST, "tune-7") == "Available"
    reads = ("Describe", "List", "Get", "Search")
    writes = {op for op in sim.middleware.counts if not op.startswith(reads)}
    assert writes == set()  # no update, no tag, no publish
    assert ledger.entries() == []


def test_a_pool_in_use_at_the_fresh_read_is_left_alone(
    sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    fleet.training_job(EAST, "tune-7", NOW - timedelta(hours=2))
    aws, policy = Aws(), policy_with(topic)
    result = scan(aws, [EAST], policy, NOW, example_pricer())
    [decision] = [d for d in result.decisions if d.resource.name == "tune-7"]
    assert decision.action.value == "release"
    fleet.set_warm_pool(EAST, "tune-7", "InUse")  # a matching job took it meanwhile
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    done = enforce_and_notify(aws, result, policy, NOW, True, ledger)
    step = steps_by_name(done)["tune-7"]
    assert (step.applied, step.outcome) == (False, "skipped: its warm pool is now InUse")
    assert fleet.warm_pool(EAST, "tune-7") == "InUse" and updates(sim) == 0
    [entry] = ledger.entries()  # the skip is recorded, as a release not done
    assert entry.action == "release" and entry.outcome.startswith("skipped")


def test_a_failed_fresh_read_does_nothing_and_says_why(
    sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    fleet.training_job(EAST, "tune-7", NOW - timedelta(hours=2))
    aws, policy = Aws(), policy_with(topic)
    result = scan(aws, [EAST], policy, NOW, example_pricer())
    denied = Fault(400, "AccessDeniedException", "not allowed to describe it")
    sim.middleware.fault = lambda op, region, environ: (
        denied if op == "DescribeTrainingJob" else None
    )
    done = enforce_and_notify(aws, result, policy, NOW, True, SqliteLedger(tmp_path / "l.sqlite"))
    step = steps_by_name(done)["tune-7"]
    assert step.applied is False and "not allowed to describe it" in step.outcome
    assert [(e.resource, e.code) for e in result.errors] == [("tune-7", "AccessDeniedException")]
    assert fleet.warm_pool(EAST, "tune-7") == "Available" and updates(sim) == 0


@pytest.mark.parametrize("when", ["at the scan", "since the scan"])
def test_a_protected_job_keeps_its_pool(
    sim: Simulator, fleet: Fleet, tmp_path: Path, when: str
) -> None:
    topic = fleet.topic(EAST, "admins")
    protect = {"sagesaver:protect": "true"}
    arn = fleet.training_job(
        EAST, "tune-7", NOW - timedelta(hours=2), tags=protect if when == "at the scan" else None
    )
    aws, policy = Aws(), policy_with(topic)
    result = scan(aws, [EAST], policy, NOW, example_pricer())
    if when == "since the scan":
        sim.client("sagemaker", EAST).add_tags(
            ResourceArn=arn, Tags=[{"Key": "sagesaver:protect", "Value": "yes"}]
        )
    done = enforce_and_notify(aws, result, policy, NOW, True, SqliteLedger(tmp_path / "l.sqlite"))
    [decision] = [d for d in result.decisions if d.resource.name == "tune-7"]
    if when == "at the scan":
        assert decision.action.value == "notify" and decision.protected
        assert "protected by tag sagesaver:protect" in decision.reason
        assert steps_by_name(done) == {}
    else:
        step = steps_by_name(done)["tune-7"]
        assert step.outcome == "skipped: protected by tag sagesaver:protect since the scan"
    assert fleet.warm_pool(EAST, "tune-7") == "Available" and updates(sim) == 0


def test_releasing_is_off_by_default(sim: Simulator, fleet: Fleet, tmp_path: Path) -> None:
    assert Policy().jobs.warm_pools.action == "notify"
    topic = fleet.topic(EAST, "admins")
    fleet.training_job(EAST, "tune-7", NOW - timedelta(hours=2))
    policy = parse_policy(f"notify: {{sns_topic_arn: '{topic}'}}")
    result, done = one_run(policy, SqliteLedger(tmp_path / "ledger.sqlite"))
    [decision] = [d for d in result.decisions if d.resource.name == "tune-7"]
    assert (decision.action.value, decision.rule) == ("notify", "warm-pool")
    assert "release it with UpdateTrainingJob" in decision.reason
    assert done.steps == [] and done.notified is not None and done.notified.applied
    assert fleet.warm_pool(EAST, "tune-7") == "Available" and updates(sim) == 0


def test_a_failed_release_of_one_pool_does_not_stop_the_next(
    sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    for name in ("tune-a", "tune-b", "tune-c"):
        fleet.training_job(EAST, name, NOW - timedelta(hours=2))

    def refuse_b(operation: str, region: str, environ: Any) -> Fault | None:
        if operation != "UpdateTrainingJob":
            return None
        import io

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if json.loads(body)["TrainingJobName"] == "tune-b":
            return Fault(400, "ResourceLimitExceeded", "refused for tune-b")
        return None

    sim.middleware.fault = refuse_b
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    result, done = one_run(policy_with(topic), ledger)
    steps = steps_by_name(done)
    assert [steps[n].applied for n in ("tune-a", "tune-b", "tune-c")] == [True, False, True]
    assert steps["tune-b"].outcome == "failed: refused for tune-b"
    assert [(e.resource, e.code) for e in result.errors] == [("tune-b", "ResourceLimitExceeded")]
    pools = [fleet.warm_pool(EAST, n) for n in ("tune-a", "tune-b", "tune-c")]
    assert pools == ["Terminated", "Available", "Terminated"]
    outcomes = {e.resource: e.outcome for e in ledger.entries()}
    assert outcomes["tune-b"].startswith("failed") and outcomes["tune-c"].startswith("released")
    # Its lease was given back: a later run may try again.
    assert not [lease for lease in ledger.open_leases() if "tune-b" in lease.key]


def test_run_through_the_command_line(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    """`run` without --apply says what it would do and writes nothing; with --apply it
    releases (the CLI reads the real clock: times are built from the same `now`)."""
    topic = fleet.topic(EAST, "admins")
    fleet.training_job(EAST, "tune-7", now - timedelta(hours=1))
    policy = tmp_path / "policy.yaml"
    policy.write_text(RELEASE.format(topic))
    ledger = str(tmp_path / "ledger.sqlite")
    SqliteLedger(Path(ledger))  # the team's ledger, new
    args = ("run", "--region", EAST, "--policy", str(policy), "--ledger", ledger)
    code, dry = cli.json(*args)
    [step] = [s for s in dry["enforcement"] if s["name"] == "tune-7"]
    assert code == 0 and dry["dry_run"] and step["outcome"].startswith("would release")
    assert fleet.warm_pool(EAST, "tune-7") == "Available"
    assert SqliteLedger(Path(ledger)).entries() == []
    code, done = cli.json(*args, "--apply")
    [step] = [s for s in done["enforcement"] if s["name"] == "tune-7"]
    assert code == 0 and step["applied"] and step["action"] == "release"
    assert fleet.warm_pool(EAST, "tune-7") == "Terminated"


def test_a_releasing_run_calls_only_what_its_capabilities_declare(
    sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    from sagesaver.core.permissions import CAPABILITIES

    topic = fleet.topic(EAST, "admins")
    fleet.training_job(EAST, "tune-7", NOW - timedelta(hours=2), tags={"team": "cv"})
    sim.middleware.counts.clear()
    one_run(policy_with(topic), SqliteLedger(tmp_path / "ledger.sqlite"))
    assert sim.middleware.counts["UpdateTrainingJob"] == 1
    granted = {*CAPABILITIES["scan"], *CAPABILITIES["notify"], *CAPABILITIES["release-warm-pools"]}
    assert set(sim.middleware.counts) <= {action.split(":", 1)[1] for action in granted}


# Where the first run dies: (patched object, attribute, replacement factory, releases sent).
RELEASE_KILL_POINTS: dict[str, tuple[Any, str, Callable[[Any], Any], int]] = {
    "as the release is sent": (jobs, "release_warm_pool", kill_before, 0),
    "right after the release": (jobs, "release_warm_pool", kill_after, 1),
    "after the ledger entry, before the lease is closed": (
        SqliteLedger, "advance_lease", kill_on_done, 1,
    ),
}  # fmt: skip


@pytest.mark.parametrize("point", sorted(RELEASE_KILL_POINTS))
def test_a_release_cut_short_is_finished_by_the_next_run_and_recorded_once(
    sim: Simulator, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    topic = fleet.topic(EAST, "admins")
    fleet.training_job(EAST, "tune-k", NOW - timedelta(hours=2))
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    owner, attribute, factory, sent = RELEASE_KILL_POINTS[point]
    with monkeypatch.context() as patch:
        patch.setattr(owner, attribute, factory(getattr(owner, attribute)))
        with pytest.raises(Killed):
            one_run(policy_with(topic), ledger)
    assert updates(sim) == sent
    assert [lease.subject["name"] for lease in ledger.open_leases()] == ["tune-k"]

    later = NOW + timedelta(minutes=20)  # the dead run's lease has expired
    result, _ = one_run(policy_with(topic), ledger, at=later)
    assert result.errors == []
    assert fleet.warm_pool(EAST, "tune-k") == "Terminated"
    assert updates(sim) == 1  # never sent twice
    released = [e for e in ledger.entries() if e.action == "release"]
    assert len(released) == 1, released  # recorded exactly once
    if point == "right after the release":  # ended, and by whom is unknown: no saving
        assert released[0].rule == "recover" and released[0].hourly_cost is None
    assert ledger.open_leases() == []  # nothing stuck
