"""Never act on what was not read: incomplete metrics, unreadable state and ARNs whose case
differs between APIs make a resource unknown, reported as an error, never idle, never changed.

The simulator adds the AWS behaviours moto lacks: ``GetMetricData`` answers that are not
``Complete`` and a tagging API that answers with lower-case ARNs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.grace import SCHEDULED_TAG
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, IncompleteMetrics, Simulator
from tests.conftest import Cli

EAST = "us-east-1"
OLD = timedelta(days=5)


def endpoints_left(region: str = EAST) -> set[str]:
    from moto.sagemaker.models import sagemaker_backends

    return set(sagemaker_backends[ACCOUNT_ID][region].endpoints)


def tags_of(sim: Simulator, arn: str) -> dict[str, str]:
    found = sim.client("sagemaker", EAST).list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"]: t["Value"] for t in found}


@pytest.fixture
def deleting_policy(fleet: Fleet, tmp_path: Path) -> dict[str, str]:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints: {action: delete, grace_hours: 0, max_actions_per_run: 10}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    return {"policy": str(policy), "ledger": str(tmp_path / "ledger.sqlite"), "topic": topic}


def seed_busy_and_idle(fleet: Fleet, now: datetime) -> None:
    fleet.endpoint(EAST, "busy", changed=now - OLD)
    fleet.invocations(EAST, "busy", "AllTraffic", [(now - timedelta(hours=2), 40.0)])
    fleet.endpoint(EAST, "idle", changed=now - OLD)


@pytest.mark.parametrize("mode", ["InternalError", "Forbidden", "PartialData", "omit", "messages"])
def test_an_incomplete_metrics_answer_is_unknown_and_nothing_is_deleted(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    deleting_policy: dict[str, str],
    mode: str,
) -> None:
    seed_busy_and_idle(fleet, now)
    sim.behaviours.incomplete_metrics = IncompleteMetrics(frozenset({"busy"}), mode)
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 1
    busy = next(r for r in doc["resources"] if r["name"] == "busy")
    assert (busy["idle"], busy["decision"], busy["rule"]) == (False, "keep", "activity-unknown")
    [error] = doc["errors"]
    assert (error["resource"], error["operation"]) == ("busy", "GetMetricData")
    idle = next(r for r in doc["resources"] if r["name"] == "idle")
    assert idle["idle"] is True  # the others are judged as usual

    code, doc = cli.json(
        "run", "--region", EAST, "--policy", deleting_policy["policy"],
        "--ledger", deleting_policy["ledger"], "--apply",
    )  # fmt: skip
    assert code == 1
    assert "busy" in endpoints_left()
    assert [s["name"] for s in doc["enforcement"] if s["outcome"].startswith("deleted")] == ["idle"]


def test_partial_data_with_a_next_page_is_read_to_the_end(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    seed_busy_and_idle(fleet, now)
    sim.behaviours.incomplete_metrics = IncompleteMetrics(frozenset({"busy", "idle"}), "paged")
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0, doc["errors"]
    decided = {r["name"]: (r["idle"], r["rule"]) for r in doc["resources"]}
    assert decided == {"busy": (False, "active"), "idle": (True, "idle-endpoint")}
    assert "40 invocations" in next(r for r in doc["resources"] if r["name"] == "busy")["reason"]


def test_metrics_unreadable_at_the_fresh_check_stop_the_deletion(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, deleting_policy: dict[str, str]
) -> None:
    """The scan read them complete; the re-read just before the delete did not."""
    fleet.endpoint(EAST, "idle", changed=now - OLD)
    fleet.invocations(EAST, "idle", "AllTraffic", [(now - timedelta(hours=3), 0.0)])
    calls: list[str] = []

    def fail_the_second_read(operation: str, region: str, _: object) -> None:
        if operation == "GetMetricData":
            calls.append(operation)
            if len(calls) == 2:
                sim.behaviours.incomplete_metrics = IncompleteMetrics(frozenset({"idle"}))

    sim.middleware.fault = fail_the_second_read  # type: ignore[assignment]
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", deleting_policy["policy"],
        "--ledger", deleting_policy["ledger"], "--apply",
    )  # fmt: skip
    assert code == 1
    assert "idle" in endpoints_left()
    [error] = doc["errors"]
    assert error["resource"] == "idle" and "could not be read" in error["message"]


@pytest.mark.parametrize("unreadable", ["metrics", "endpoint-config"])
def test_unreadable_facts_keep_an_announced_deadline(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    unreadable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"endpoints: {{action: delete, grace_hours: 24}}\nnotify: {{sns_topic_arn: '{topic}'}}\n"
    )
    ledger = str(tmp_path / "ledger.sqlite")
    arn = fleet.endpoint(EAST, "announced", changed=now - OLD)
    fleet.invocations(EAST, "announced", "AllTraffic", [(now - timedelta(hours=3), 0.0)])
    args = ("run", "--region", EAST, "--policy", str(policy), "--ledger", ledger, "--apply")
    code, _ = cli.json(*args)
    assert code == 0
    deadline = tags_of(sim, arn)[SCHEDULED_TAG]

    if unreadable == "metrics":
        sim.behaviours.incomplete_metrics = IncompleteMetrics(frozenset({"announced"}))
    else:

        def config_unreadable(operation: str, region: str, _: object) -> Any:
            from sagesaver.demo.simulator import Fault

            if operation == "DescribeEndpointConfig":
                return Fault(400, "AccessDeniedException", "not allowed")
            return None

        sim.middleware.fault = config_unreadable  # type: ignore[assignment]
        # Nothing remembered from the first run: the configuration must be read again.
        monkeypatch.setenv("SAGESAVER_CACHE_DIR", str(tmp_path / "fresh-cache"))
    sim.middleware.counts.clear()
    code, doc = cli.json(*args)
    assert code == 1
    assert tags_of(sim, arn)[SCHEDULED_TAG] == deadline  # the deadline stands
    assert not {"AddTags", "DeleteTags", "DeleteEndpoint"} & set(sim.middleware.counts)
    [step] = doc["enforcement"]
    assert step["stage"] == "hold" and step["applied"] is False
    assert "could not be read" in step["outcome"]


def test_tags_joined_case_insensitively_keep_a_protected_endpoint_protected(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, deleting_policy: dict[str, str]
) -> None:
    fleet.endpoint(EAST, "ProdRanker", tags={"sagesaver:protect": "true"}, changed=now - OLD)
    sim.behaviours.lowercase_tagging_arns = True
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", deleting_policy["policy"],
        "--ledger", deleting_policy["ledger"], "--apply",
    )  # fmt: skip
    assert code == 0, doc["errors"]
    [resource] = doc["resources"]
    assert (resource["decision"], resource["rule"]) == ("keep", "protected")
    assert "ProdRanker" in endpoints_left()
    assert sim.middleware.counts["DeleteEndpoint"] == 0
