"""One digest per change: the same idle set is not sent every run, only when something is new
(newly idle, announced, acted on) or as a reminder every notify.repeat_hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.core.digest import digest_is_due
from sagesaver.demo.simulator import Fleet, Simulator
from tests.conftest import Cli

EAST = "us-east-1"
OLD = timedelta(days=5)
T0 = datetime(2026, 11, 30, 9, 0).astimezone()


def test_the_rule() -> None:
    now = T0
    assert digest_is_due(["a"], False, None, 24, now) == (True, "first digest")
    last = (now - timedelta(hours=1), ["a"])
    due, why = digest_is_due(["a"], False, last, 24, now)
    assert not due and "unchanged since" in why
    assert digest_is_due(["a", "b"], False, last, 24, now) == (True, "1 newly idle")
    assert digest_is_due(["a"], True, last, 24, now) == (True, "announces or acts")
    assert digest_is_due([], False, last, 24, now)[0] is False  # fewer idle: nothing new
    old = (now - timedelta(hours=24), ["a"])
    assert digest_is_due(["a"], False, old, 24, now) == (True, "reminder")
    assert digest_is_due(["a"], False, last, 0, now) == (True, "reminder")  # 0: every run


@pytest.fixture
def notify_policy(fleet: Fleet, tmp_path: Path) -> dict[str, str]:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"notify: {{sns_topic_arn: '{topic}', repeat_hours: 24}}\n")
    return {"policy": str(policy), "ledger": str(tmp_path / "ledger.sqlite"), "topic": topic}


def run(cli: Cli, setup: dict[str, str]) -> dict[str, Any]:
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", setup["policy"], "--ledger", setup["ledger"],
        "--apply",
    )  # fmt: skip
    assert code == 0, doc["errors"]
    return doc


def test_hourly_runs_send_a_digest_only_when_something_changed(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, notify_policy: dict[str, str]
) -> None:
    fleet.endpoint(EAST, "idle-a", changed=now - OLD)
    with time_machine.travel(now, tick=False):
        first = run(cli, notify_policy)
    assert first["applied"] and len(fleet.published(notify_policy["topic"])) == 1

    for hour in range(1, 5):  # the same idle set, hour after hour
        with time_machine.travel(now + timedelta(hours=hour), tick=False):
            again = run(cli, notify_policy)
        assert again["applied"] is False and "unchanged since" in again["digest_held"]
    assert len(fleet.published(notify_policy["topic"])) == 1

    fleet.endpoint(EAST, "idle-b", changed=now - OLD)  # something new becomes idle
    with time_machine.travel(now + timedelta(hours=5), tick=False):
        assert run(cli, notify_policy)["applied"] is True
    sent = fleet.published(notify_policy["topic"])
    assert len(sent) == 2 and "idle-b" in sent[-1]["Message"]

    with time_machine.travel(now + timedelta(hours=29), tick=False):  # a day after the last one
        assert run(cli, notify_policy)["applied"] is True
    assert len(fleet.published(notify_policy["topic"])) == 3


def test_an_announcement_always_goes_out(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints: {action: delete, grace_hours: 24}\n"
        f"notify: {{sns_topic_arn: '{topic}', repeat_hours: 24}}\n"
    )
    setup = {"policy": str(policy), "ledger": str(tmp_path / "ledger.sqlite")}
    fleet.endpoint(EAST, "idle-a", changed=now - OLD)
    with time_machine.travel(now, tick=False):
        run(cli, setup)  # announces idle-a
    fleet.endpoint(EAST, "idle-b", changed=now - OLD)
    with time_machine.travel(now + timedelta(hours=1), tick=False):
        doc = run(cli, setup)  # announces idle-b
    assert [s["stage"] for s in doc["enforcement"]] == ["wait", "announce"]
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        held = run(cli, setup)  # nothing new: both wait
    assert held["applied"] is False
    with time_machine.travel(now + timedelta(hours=24, minutes=30), tick=False):
        due = run(cli, setup)  # idle-a is due: the digest naming its deletion goes out first
    assert due["applied"] is True
    fate = {s["name"]: (s["stage"], s["outcome"].split()[0]) for s in due["enforcement"]}
    assert fate == {"idle-a": ("act", "deleted"), "idle-b": ("wait", "delete")}
    assert len(fleet.published(topic)) == 3
