"""The last-moment guard: what a person or a client does between the scan and the delete, or
while the run works, is seen immediately before ``DeleteEndpoint``; an announcement that no
digest carried, or that no longer names what is there, is no licence to delete.

Each test is a scenario an independent review reproduced against the executor that re-checked
state and metrics only, with a window ending when the run started: each deleted the endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.grace import SCHEDULED_TAG, announcement_key, parse_tag, tag_value
from sagesaver.core.model import Kind, Resource
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, Simulator
from sagesaver.ledger import open_ledger
from tests.conftest import Cli
from tests.pipelines.test_enforce import announced_and_due, backend, run, tags_of

EAST = "us-east-1"
OLD = timedelta(days=5)
PROTECT = "sagesaver:protect"


@pytest.fixture
def setup(fleet: Fleet, tmp_path: Path) -> dict[str, Any]:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints:\n  action: delete\n  grace_hours: 24\n  idle_hours: 2\n"
        f"notify:\n  sns_topic_arn: {topic}\n"
    )
    return {"topic": topic, "policy": str(policy), "ledger": str(tmp_path / "ledger.sqlite")}


def when_backing_up(sim: Simulator, move: Callable[[], None]) -> None:
    """Do ``move`` once, as the run reads the model for its backup: after the scan and after
    the first re-check, moments before the delete."""
    done: list[bool] = []

    def hook(operation: str, region: str, _: object) -> None:
        if operation == "DescribeModel" and not done:
            done.append(True)
            move()
        return None

    sim.middleware.fault = hook  # type: ignore[assignment]


def deleted(doc: dict[str, Any]) -> list[str]:
    return [s["name"] for s in doc["enforcement"] if s["outcome"].startswith("deleted")]


def test_the_scan_never_reads_a_model(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    """The moves below land during the act, not during the scan."""
    fleet.endpoint(EAST, "idle", changed=now - OLD)
    cli.json("scan", "--region", EAST)
    assert "DescribeModel" not in sim.middleware.counts


def test_protected_while_the_run_backs_it_up_it_is_kept(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    arn = fleet.endpoint(EAST, "late-protect", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    sagemaker = sim.client("sagemaker", EAST)
    when_backing_up(
        sim, lambda: sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": PROTECT, "Value": "true"}])
    )
    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    assert "late-protect" in backend().endpoints and deleted(doc) == []
    assert doc["enforcement"][0]["outcome"] == "skipped: protected by tag since the scan"
    assert "DeleteEndpoint" not in sim.middleware.counts
    assert open_ledger(setup["ledger"]).backups("late-protect") == []  # nothing was deleted


def test_postponed_while_the_run_backs_it_up_it_waits(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    arn = fleet.endpoint(EAST, "late-postpone", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    later = tag_value("delete", datetime.now(timezone.utc) + timedelta(days=3))
    sagemaker = sim.client("sagemaker", EAST)
    when_backing_up(
        sim,
        lambda: sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": later}]),
    )
    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    assert "late-postpone" in backend().endpoints and deleted(doc) == []
    assert doc["enforcement"][0]["outcome"].startswith("skipped: postponed to ")
    assert tags_of(sim, arn)[SCHEDULED_TAG] == later  # the person's deadline stands


def test_traffic_while_the_run_works_is_seen(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    """Invoked 30 times during a slow run: the window read before the delete ends now, not
    when the run started."""
    arn = fleet.endpoint(EAST, "late-traffic", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)

    def invoked() -> None:
        fleet.invocations(EAST, "late-traffic", "AllTraffic", [(datetime.now(timezone.utc), 30)])

    when_backing_up(sim, invoked)  # after the run started: its scan saw none
    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    assert deleted(doc) == [], (str(doc["enforcement"]), str(dict(sim.middleware.counts)))
    assert "late-traffic" in backend().endpoints
    assert doc["enforcement"][0]["outcome"].startswith("skipped: active again: 30 invocations")
    assert SCHEDULED_TAG not in tags_of(sim, arn)  # used again: announced afresh next time


def test_traffic_during_the_grace_period_is_seen_when_runs_are_far_apart(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    """``idle_hours: 2``, daily runs: invoked 10 hours before the run that deletes, after the
    announcement. The scan's 2-hour window saw nothing; the guard reads from the announcement."""
    arn = fleet.endpoint(EAST, "used-in-grace", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    fleet.invocations(EAST, "used-in-grace", "AllTraffic", [(now - timedelta(hours=10), 4)])
    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    assert "used-in-grace" in backend().endpoints and deleted(doc) == []
    assert doc["enforcement"][0]["outcome"].startswith("skipped: active again: 4 invocations")


def test_redeployed_after_its_announcement_it_is_announced_afresh(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    """Updated to a new deployment during its grace period (and idle since): no digest named
    it since, so it is not deleted; its deadline tag goes, and the next run announces it."""
    arn = fleet.endpoint(EAST, "redeployed", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    backend().endpoints["redeployed"].last_modified_time = (now - timedelta(days=2)).replace(
        tzinfo=None
    )
    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    assert "redeployed" in backend().endpoints and deleted(doc) == []
    assert "after it was announced" in doc["enforcement"][0]["outcome"]
    assert SCHEDULED_TAG not in tags_of(sim, arn)
    code, doc = run(cli, setup, "--apply")  # the next run announces it, with a new deadline
    assert code == 0, doc["errors"]
    [step] = doc["enforcement"]
    assert step["stage"] == "announce" and step["applied"]
    deadline = parse_tag(tags_of(sim, arn)[SCHEDULED_TAG])[1]  # type: ignore[index]
    assert deadline > datetime.now(timezone.utc) + timedelta(hours=23)


def test_an_announcement_no_digest_carried_is_no_licence(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, Any]
) -> None:
    """A retried Lambda invocation skipped its digest as already sent, yet recorded the
    announcement of an endpoint that digest never named (no message id): it is announced
    again, in a digest that is sent, never deleted on the silent deadline."""
    arn = fleet.endpoint(EAST, "silent", changed=now - OLD)
    sagemaker = sim.client("sagemaker", EAST)
    described = sagemaker.describe_endpoint(EndpointName="silent")
    at = described["LastModifiedTime"] + timedelta(minutes=1)
    deadline = at + timedelta(hours=24)
    sagemaker.add_tags(
        ResourceArn=arn, Tags=[{"Key": SCHEDULED_TAG, "Value": tag_value("delete", deadline)}]
    )
    created = described["CreationTime"]
    resource = Resource(Kind.ENDPOINT, "-", arn, EAST, ACCOUNT_ID, "InService", created, created)
    open_ledger(setup["ledger"]).record_announcement(announcement_key(resource), deadline, at, [])
    code, doc = run(cli, setup, "--apply")
    assert code == 0, doc["errors"]
    assert "silent" in backend().endpoints and deleted(doc) == []
    [step] = doc["enforcement"]
    assert step["stage"] == "announce" and step["applied"]
    assert sim.middleware.counts["Publish"] >= 1
