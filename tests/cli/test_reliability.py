"""Faults: with a fifth of the requests failing transiently, results are exactly the same;
no action is ever taken twice; secrets never reach an output."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.retries import standard

from sagesaver.demo.simulator import Fault, Fleet, Simulator, TransientFaults, VariantSpec
from tests.conftest import Cli, run_at

EAST, WEST = "us-east-1", "us-west-2"
OLD = timedelta(days=4)
SCHEDULE_POLICY = """
schedules:
  office:
    start: cron(0 7 ? * MON-FRI *)
    stop: cron(0 21 ? * MON-FRI *)
    name_contains: dev-
"""


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retry policy but not its sleeps (up to 20 s), so the suite stays fast."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.005)


def seed(fleet: Fleet, now: datetime) -> str:
    for region in (EAST, WEST):
        for i in range(60):
            name = f"ep-{region[-6:]}-{i:02d}"
            variants = [VariantSpec("a"), VariantSpec("b")] if i % 4 == 0 else [VariantSpec("a")]
            fleet.endpoint(
                region, name, variants, tags={"team": "ml"} if i % 3 else {}, changed=now - OLD
            )
            if i % 2:
                fleet.invocations(region, name, variants[-1].name, [(now - timedelta(hours=2), 5)])
            elif i % 5 == 0:
                fleet.invocations(region, name, "a", [(now - timedelta(hours=2), 0)])
        for i in range(12):
            fleet.notebook(
                region, f"dev-{region[-6:]}-{i:02d}", status="Stopped" if i % 2 else "InService"
            )
    return fleet.topic(EAST, "admins")


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("generated_at", "message_ids")}


def test_scan_and_run_are_unchanged_by_20_percent_transient_faults(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = seed(fleet, now)
    policy = tmp_path / "p.yaml"
    policy.write_text(f"notify: {{sns_topic_arn: '{topic}'}}\n")
    args = ("--policy", str(policy), "--region", EAST, "--region", WEST)
    # Each command starts at the same moment (the clock ticking from there): idle_hours count
    # from an endpoint's last traffic, so only the faults may differ between the runs.
    moment = (now + timedelta(minutes=1)).isoformat()
    with run_at(moment):
        code, clean = cli.json("scan", *args)
    assert code == 0 and clean["summary"]["idle"] > 0

    faults = TransientFaults(0.2, seed=7, kinds=("throttle", "429", "500", "503"))
    sim.middleware.fault = faults
    # Nothing remembered from the clean scan: every read is made again, under faults.
    monkeypatch.setenv("SAGESAVER_CACHE_DIR", str(tmp_path / "fresh-cache"))
    with run_at(moment):
        code, faulty = cli.json("scan", *args)
    assert code == 0, faulty["errors"]
    assert comparable(faulty) == comparable(clean)
    assert sum(faults.injected.values()) >= 15  # of about 90 calls (Search reads in bulk)
    assert set(faults.injected) == {"throttle", "429", "500", "503"}

    with run_at(moment):
        code, sent = cli.json("run", *args, "--apply")
    assert code == 0, sent["errors"]
    assert len(fleet.published(topic)) == 1  # a retried Publish is still one digest
    assert comparable(sent)["resources"] == clean["resources"]


def test_time_outs_are_retried_and_change_nothing(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for i in range(20):
        fleet.endpoint(EAST, f"ep-{i}", changed=now - OLD)
    code, clean = cli.json("scan", "--region", EAST)
    monkeypatch.setenv("SAGESAVER_READ_TIMEOUT", "0.3")
    monkeypatch.setenv("SAGESAVER_CACHE_DIR", str(tmp_path / "fresh-cache"))
    faults = TransientFaults(0.2, seed=3, kinds=("timeout",), timeout_s=0.6)
    sim.middleware.fault = faults
    code, faulty = cli.json("scan", "--region", EAST)
    assert code == 0, faulty["errors"]
    assert faults.injected["timeout"] >= 3
    assert comparable(faulty) == comparable(clean)


def started(sim: Simulator) -> int:
    """StartNotebookInstance requests that reached the service (not answered by a fault)."""
    return (
        sim.middleware.counts["StartNotebookInstance"]
        - sim.middleware.faults_sent["StartNotebookInstance"]
    )


def test_schedule_run_under_faults_acts_once_per_instance(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    seed(fleet, now)
    policy = tmp_path / "p.yaml"
    policy.write_text(SCHEDULE_POLICY)
    faults = TransientFaults(0.25, seed=11, kinds=("throttle", "500", "503"))
    sim.middleware.fault = faults
    with run_at("2026-11-30T07:05:00Z"):
        code, doc = cli.json(
            "schedule",
            "run",
            "--policy",
            str(policy),
            "--region",
            EAST,
            "--region",
            WEST,
            "--apply",
            "--ledger",
            str(tmp_path / "ledger"),
        )
    assert code == 0, doc["errors"]
    stopped_dev = {f"dev-{r[-6:]}-{i:02d}" for r in (EAST, WEST) for i in range(12) if i % 2}
    assert {a["name"] for a in doc["actions"]} == stopped_dev
    assert started(sim) == len(stopped_dev)  # every instance started exactly once
    assert faults.injected["throttle"] + faults.injected["500"] + faults.injected["503"] > 0


def test_no_action_on_an_instance_whose_state_could_not_be_read(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.notebook(EAST, "dev-a", status="Stopped")
    fleet.notebook(WEST, "dev-b", status="Stopped")
    policy = tmp_path / "p.yaml"
    policy.write_text(SCHEDULE_POLICY)

    def unreadable_tags_in_west(operation: str, region: str, _: object) -> Fault | None:
        if region == WEST and operation == "GetResources":
            return Fault(400, "AccessDeniedException", "no tag:GetResources")
        return None

    sim.middleware.fault = unreadable_tags_in_west
    with run_at("2026-11-30T07:05:00Z"):
        code, doc = cli.json(
            "schedule",
            "run",
            "--policy",
            str(policy),
            "--region",
            EAST,
            "--region",
            WEST,
            "--apply",
            "--ledger",
            str(tmp_path / "ledger"),
        )
    assert code == 1
    assert [a["name"] for a in doc["actions"]] == ["dev-a"]  # west: protect tag unknown
    assert [(e["region"], e["operation"]) for e in doc["errors"]] == [(WEST, "GetResources")]
    assert started(sim) == 1


SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIASAGESAVERSECRET1",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-sagesaver-secret-key-0000",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEsagesaverSessionToken0000",
}


@pytest.fixture
def secret_credentials(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    yield


def test_no_secret_reaches_outputs_ledger_or_notifications(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path, secret_credentials: None
) -> None:
    topic = seed(fleet, now)
    policy = tmp_path / "p.yaml"
    policy.write_text(f"notify: {{sns_topic_arn: '{topic}'}}\n" + SCHEDULE_POLICY)
    ledger = tmp_path / "ledger.sqlite"

    def deny_some(operation: str, region: str, _: object) -> Fault | None:
        if region == WEST and operation in ("ListEndpoints", "StartNotebookInstance"):
            return Fault(403, "AccessDeniedException", "User is not authorized to perform this")
        return None

    sim.middleware.fault = deny_some
    outputs = []
    for args in (
        ("scan", "--region", EAST, "--region", WEST),
        ("scan", "--region", EAST, "--region", WEST, "--output", "json"),
        ("run", "--region", EAST, "--region", WEST, "--apply", "--output", "json"),
        ("run", "--region", EAST, "--region", WEST),
        (
            "schedule",
            "run",
            "--region",
            EAST,
            "--region",
            WEST,
            "--apply",
            "--ledger",
            str(ledger),
        ),
        ("schedule", "show", "--region", EAST),
    ):
        if args[:2] == ("schedule", "run"):  # acting at a Monday 07:05 start
            with run_at("2026-11-30T07:05:00Z"):
                result = cli(*args, "--policy", str(policy))
        else:
            result = cli(*args, "--policy", str(policy))
        outputs += [result.stdout, result.stderr]
    assert any("AccessDeniedException" in text for text in outputs)  # errors were reported
    with sqlite3.connect(ledger) as db:
        outputs += [repr(row) for row in db.execute("SELECT * FROM entries")]
    outputs += [m["Message"] + (m["Subject"] or "") for m in fleet.published(topic)]
    assert len(outputs) > 12
    for text in outputs:
        for secret in SECRETS.values():
            assert secret not in text
            assert secret[:12] not in text


def test_the_fault_harness_bites_without_retries(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control: with retries off, the same faults do surface as errors (exit code 1)."""
    seed(fleet, now)
    monkeypatch.setenv("SAGESAVER_MAX_ATTEMPTS", "1")
    sim.middleware.fault = TransientFaults(0.2, seed=7, kinds=("throttle", "500"))
    code, doc = cli.json("scan", "--region", EAST, "--region", WEST)
    assert code == 1
    assert {e["code"] for e in doc["errors"]} <= {"ThrottlingException", "InternalFailure"}
    assert doc["errors"]


@pytest.mark.parametrize(("setting", "attempts"), [(None, 6), ("1", 1), ("3", 3)])
def test_a_call_is_attempted_as_many_times_in_all_as_the_readme_says(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, setting: str | None, attempts: int
) -> None:
    """README: "6 attempts in all"; ``SAGESAVER_MAX_ATTEMPTS`` counts the first one too
    (botocore's ``max_attempts`` counts retries only: 6 of them made 7 attempts)."""
    from botocore.exceptions import ClientError

    from sagesaver.aws.session import Aws, open_session

    if setting is not None:
        monkeypatch.setenv("SAGESAVER_MAX_ATTEMPTS", setting)
    faults = TransientFaults(1.0, kinds=("500",), operations=frozenset({"ListEndpoints"}))
    sim.middleware.fault = faults
    with pytest.raises(ClientError):
        Aws(open_session()).sagemaker(EAST).list_endpoints()
    assert sum(faults.injected.values()) == attempts
