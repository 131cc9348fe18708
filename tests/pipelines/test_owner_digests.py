"""A digest for each owner: notify.owner_tag sends, besides the admin digest, one message per
owner naming only their resources, with the SNS message attribute ``owner``; each stream keeps
the one-digest-per-change rule on its own."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.core.errors import PolicyError
from sagesaver.core.policy import parse_policy
from sagesaver.demo.simulator import Fleet, Simulator
from tests.conftest import Cli

EAST = "us-east-1"
OLD = timedelta(days=5)


@pytest.fixture
def setup(fleet: Fleet, tmp_path: Path) -> dict[str, str]:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"notify: {{sns_topic_arn: '{topic}', repeat_hours: 24, owner_tag: owner}}\n")
    return {"policy": str(policy), "ledger": str(tmp_path / "ledger.sqlite"), "topic": topic}


def run(cli: Cli, setup: dict[str, str], *extra: str) -> dict[str, Any]:
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", setup["policy"], "--ledger", setup["ledger"], *extra
    )
    assert code == 0, doc["errors"]
    return doc


def by_audience(published: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for message in published:
        attributes = message["MessageAttributes"]
        who = attributes.get("owner") or attributes["digest"]
        found.setdefault(who, []).append(message)
    return found


def test_each_owner_gets_only_their_resources(
    cli: Cli, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    fleet.endpoint(EAST, "alice-1", tags={"owner": "alice"}, changed=now - OLD)
    fleet.endpoint(EAST, "alice-2", tags={"owner": "alice"}, changed=now - OLD)
    fleet.endpoint(EAST, "bob-1", tags={"owner": "bob"}, changed=now - OLD)
    fleet.endpoint(EAST, "nobody", changed=now - OLD)
    fleet.endpoint(EAST, "busy-carol", tags={"owner": "carol"}, changed=now - OLD)
    fleet.invocations(EAST, "busy-carol", "AllTraffic", [(now - timedelta(hours=1), 5)])

    with time_machine.travel(now, tick=False):  # a dry run, before any ledger exists
        code, dry = cli.json("run", "--region", EAST, "--policy", setup["policy"])
    assert code == 0, dry["errors"]
    assert [d["owner"] for d in dry["owner_notifications"]] == ["alice", "bob"]
    assert fleet.published(setup["topic"]) == []  # a dry run sends nothing

    with time_machine.travel(now, tick=False):
        doc = run(cli, setup, "--apply")
    sent = by_audience(fleet.published(setup["topic"]))
    assert sorted(sent) == ["admin", "alice", "bob"]  # carol has nothing idle
    (admin,) = sent["admin"]
    assert all(n in admin["Message"] for n in ("alice-1", "alice-2", "bob-1", "nobody"))
    (alice,) = sent["alice"]
    assert alice["MessageAttributes"] == {"digest": "owner", "owner": "alice"}
    assert "alice-1" in alice["Message"] and "alice-2" in alice["Message"]
    assert "bob-1" not in alice["Message"] and "nobody" not in alice["Message"]
    assert "alice" in alice["Subject"]
    (bob,) = sent["bob"]
    assert "bob-1" in bob["Message"] and "alice" not in bob["Message"]
    assert "nobody" not in bob["Message"]
    assert [d["applied"] for d in doc["owner_notifications"]] == [True, True]


def test_one_digest_per_change_applies_to_each_owner(
    cli: Cli, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    fleet.endpoint(EAST, "alice-1", tags={"owner": "alice"}, changed=now - OLD)
    fleet.endpoint(EAST, "bob-1", tags={"owner": "bob"}, changed=now - OLD)
    with time_machine.travel(now, tick=False):
        run(cli, setup, "--apply")
    assert len(fleet.published(setup["topic"])) == 3

    later = now + timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        again = run(cli, setup, "--apply")
    assert len(fleet.published(setup["topic"])) == 3  # nothing new: nothing sent
    assert again["digest_held"] and all(d["held"] for d in again["owner_notifications"])

    fleet.endpoint(EAST, "alice-new", tags={"owner": "alice"}, changed=later - OLD)
    with time_machine.travel(later + timedelta(hours=1), tick=False):
        third = run(cli, setup, "--apply")
    new = by_audience(fleet.published(setup["topic"])[3:])
    assert sorted(new) == ["admin", "alice"]  # bob's set did not change
    assert "alice-new" in new["alice"][0]["Message"]
    held = {d["owner"]: d["held"] for d in third["owner_notifications"]}
    assert held["alice"] is None and held["bob"]

    with time_machine.travel(later + timedelta(hours=25), tick=False):
        run(cli, setup, "--apply")  # a day later: each stream's reminder
    reminders = by_audience(fleet.published(setup["topic"])[5:])
    assert sorted(reminders) == ["admin", "alice", "bob"]


def test_without_owner_tag_the_admin_digest_carries_no_attributes(
    cli: Cli, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"notify: {{sns_topic_arn: '{topic}'}}\n")
    fleet.endpoint(EAST, "alice-1", tags={"owner": "alice"}, changed=now - OLD)
    code, doc = cli.json("run", "--region", EAST, "--policy", str(policy), "--apply")
    assert code == 0 and doc["owner_notifications"] == []
    (only,) = fleet.published(topic)
    assert only["MessageAttributes"] == {}


def test_a_failed_owner_publish_is_an_error_and_the_rest_goes_out(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    from sagesaver.demo.simulator import Fault

    fleet.endpoint(EAST, "alice-1", tags={"owner": "alice"}, changed=now - OLD)
    fleet.endpoint(EAST, "bob-1", tags={"owner": "bob"}, changed=now - OLD)
    calls = {"n": 0}

    def fail_second_publish(operation: str, region: str, _: object) -> Fault | None:
        if operation != "Publish":
            return None
        calls["n"] += 1
        return Fault(400, "AuthorizationError", "denied") if calls["n"] == 2 else None

    sim.middleware.fault = fail_second_publish
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", setup["policy"], "--ledger", setup["ledger"], "--apply"
    )
    assert code == 1
    assert [e["operation"] for e in doc["errors"]] == ["Publish"]
    assert doc["applied"]  # the admin digest went out
    outcome = {d["owner"]: d["applied"] for d in doc["owner_notifications"]}
    assert outcome == {"alice": False, "bob": True}


def test_owner_tag_is_validated() -> None:
    assert parse_policy("notify: {owner_tag: team}").notify.owner_tag == "team"
    with pytest.raises(PolicyError, match=r"notify\.owner_tag"):
        parse_policy("notify: {owner_tag: ''}")
