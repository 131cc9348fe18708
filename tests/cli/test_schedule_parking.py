"""Parking endpoints through the command line and the Lambda's schedule tick: ``schedule run``
(dry run and --apply), ``schedule show`` (parked endpoints and when each comes back),
``savings``, and ``validate``; the tick does what the CLI does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.ledger import SqliteLedger
from tests.conftest import Cli
from tests.pipelines.test_parking import BEIJING, POLICY, TUESDAY, at, endpoints, seed

WEDNESDAY = TUESDAY + timedelta(days=1)


@pytest.fixture
def policy_file(
    fleet: Fleet, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("AWS_DEFAULT_REGION", BEIJING)
    seed(fleet, sim, TUESDAY)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return str(path)


def cli_at(cli: Cli, moment: Any, *args: str) -> tuple[int, dict[str, Any]]:
    with time_machine.travel(moment, tick=False):
        return cli.json(*args)


def parking_rows(document: dict[str, Any]) -> set[tuple[str, str, bool]]:
    return {(p["name"], p["action"], p["applied"]) for p in document["parking"]}


def test_schedule_run_show_and_savings(
    cli: Cli, sim: Simulator, policy_file: str, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "ledger.db")
    SqliteLedger(Path(ledger))  # a team's ledger, there before the first run
    # the dry run: a plan, nothing changed, nothing recorded
    with time_machine.travel(at(TUESDAY, 21), tick=False):
        dry = cli("schedule", "run", "--policy", policy_file, "--ledger", ledger)
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    assert "would park endpoint dev-alpha (cn-north-1, schedule office-beijing)" in dry.stdout
    assert "skipped endpoint dev-kept" in dry.stdout and "protected" in dry.stdout
    assert "Dry run: add --apply to act." in dry.stdout
    assert "dev-alpha" in endpoints(sim) and SqliteLedger(Path(ledger)).entries() == []

    code, doc = cli_at(
        cli,
        at(TUESDAY, 21),
        "schedule",
        "run",
        "--policy",
        policy_file,
        "--ledger",
        ledger,
        "--apply",
    )
    assert code == 0, doc
    assert ("dev-alpha", "park", True) in parking_rows(doc)
    assert ("dev-busy", "park", False) in parking_rows(doc)
    assert "dev-alpha" not in endpoints(sim)

    code, shown = cli_at(
        cli, at(TUESDAY, 23), "schedule", "show", "--policy", policy_file, "--ledger", ledger
    )
    assert code == 0, shown
    (row,) = shown["parked_endpoints"]
    assert row["name"] == "dev-alpha" and row["schedule"] == "office-beijing"
    assert row["comes_back"] == at(WEDNESDAY, 6, 40).strftime("%Y-%m-%dT%H:%M:%SZ")
    with time_machine.travel(at(TUESDAY, 23), tick=False):
        table = cli("schedule", "show", "--policy", policy_file, "--ledger", ledger)
    assert "Parked endpoints" in table.stdout and "Wed 2026-03-11 06:40 CST" in table.stdout

    code, back = cli_at(
        cli,
        at(WEDNESDAY, 6, 40),
        "schedule",
        "run",
        "--policy",
        policy_file,
        "--ledger",
        ledger,
        "--apply",
    )
    assert code == 0, back
    assert ("dev-alpha", "unpark", True) in parking_rows(back)
    assert endpoints(sim)["dev-alpha"] == "InService"

    code, saved = cli_at(cli, at(WEDNESDAY, 12), "savings", "--ledger", ledger)
    assert code == 0, saved
    (parked,) = [r for r in saved["resources"] if r["name"] == "dev-alpha"]
    assert parked["action"] == "park" and parked["hours"] == pytest.approx(9 + 40 / 60)
    assert parked["to"] == at(WEDNESDAY, 6, 40).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert saved["hours_off"] == pytest.approx(9 + 40 / 60, abs=0.01)


def test_the_lambda_tick_parks_and_unparks_as_the_cli_does(
    sim: Simulator, policy_file: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.lambda_handlers import schedule_tick

    monkeypatch.setenv("SAGESAVER_POLICY", POLICY)
    monkeypatch.setenv("SAGESAVER_REGIONS", BEIJING)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.setenv("SAGESAVER_LEDGER", str(tmp_path / "tick.db"))
    monkeypatch.setenv("AWS_REGION", BEIJING)
    with time_machine.travel(at(TUESDAY, 21), tick=False):
        stop = schedule_tick({"schedule": "office-beijing", "transition": "stop"}, None)
    assert {(r["name"], r["action"], r["applied"]) for r in stop["parking"]} >= {
        ("dev-alpha", "park", True),
        ("dev-busy", "park", False),
    }
    assert "dev-alpha" not in endpoints(sim)
    with time_machine.travel(at(WEDNESDAY, 6, 40), tick=False):
        start = schedule_tick({"schedule": "office-beijing"}, None)
    assert ("dev-alpha", "unpark", True) in {
        (r["name"], r["action"], r["applied"]) for r in start["parking"]
    }
    assert endpoints(sim)["dev-alpha"] == "InService"


def test_validate_shows_what_a_schedule_parks(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        POLICY.replace(
            "resources: [notebooks, endpoints]", "resources: [endpoints]\n    quiet_minutes: 45"
        )
    )
    code, doc = cli.json("validate", str(path))
    assert code == 0, doc
    schedule = doc["schedules"]["office-beijing"]
    assert schedule["resources"] == ["endpoints"]
    assert schedule["quiet_minutes"] == 45 and schedule["lead_minutes"] == 20
    table = cli("validate", str(path))
    assert "acts on endpoints: endpoints parked at a stop after 45 min" in table.stdout


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[notebooks, gpus]", "Input should be 'notebooks' or 'endpoints'"),
        ("[]", "at least 1 item"),
    ],
)
def test_unknown_resources_are_refused(cli: Cli, tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("[notebooks, endpoints]", value))
    result = cli("validate", str(path))
    assert result.exit_code == 2
    assert "schedules.office-beijing.resources" in result.stderr + result.stdout
    assert problem in result.stderr + result.stdout


def test_what_a_parking_cycle_calls_is_what_permissions_prints_for_schedule(
    cli: Cli, sim: Simulator, policy_file: str, tmp_path: Path
) -> None:
    """`sagesaver permissions -c schedule --policy P` for a policy whose schedule parks
    endpoints: every operation of a park and an unpark is in it (prices aside: live-prices is
    a capability of its own), the protect tag is denied on DeleteEndpoint, and it creates no
    model and passes no role (parking keeps them). Without parking it touches no endpoint."""
    import json

    def allowed(policy_path: str) -> tuple[set[str], list[dict[str, Any]]]:
        printed = cli("permissions", "-c", "schedule", "--policy", policy_path)
        assert printed.exit_code == 0, printed.stderr
        [policy] = json.loads(printed.stdout).values()
        actions = {
            a.split(":", 1)[1]
            for s in policy["Statement"]
            if s["Effect"] == "Allow"
            for a in s["Action"]
        }
        return actions, [s for s in policy["Statement"] if s["Effect"] == "Deny"]

    ledger = str(tmp_path / "ledger.db")
    sim.middleware.counts.clear()
    for moment in (at(TUESDAY, 21), at(WEDNESDAY, 6, 40)):
        code, doc = cli_at(
            cli, moment, "schedule", "run", "--policy", policy_file, "--ledger", ledger, "--apply"
        )
        assert code == 0, doc
    called = set(sim.middleware.counts) - {"GetProducts"}
    assert {"DeleteEndpoint", "CreateEndpoint", "ListInferenceComponents"} <= called
    granted, denies = allowed(policy_file)
    assert called - granted == set()
    assert not {"CreateModel", "PassRole"} & granted
    assert any("sagemaker:DeleteEndpoint" in s["Action"] and "Condition" in s for s in denies)
    plain = tmp_path / "plain.yaml"
    text = Path(policy_file).read_text()
    plain.write_text(text.replace("resources: [notebooks, endpoints]\n", ""))
    granted, _ = allowed(str(plain))
    assert not {"DeleteEndpoint", "CreateEndpoint"} & granted
