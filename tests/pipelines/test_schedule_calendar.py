"""Holidays and make-up workdays (调休) end to end: a team in Beijing under the seed's weekday
07:00-21:00 schedule with ``calendar: CN``, on the simulator, replayed over fixed dates of 2026
(CLI, ``schedule show``, ``validate``, and the Lambda's schedule tick)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from sagesaver.demo.simulator import Fleet, Simulator
from tests.conftest import Cli
from tests.pipelines.test_schedules import states

BEIJING, NINGXIA = "cn-north-1", "cn-northwest-1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# The seed's weekday schedule, on Beijing time, with China's public holidays and make-up days.
CALENDAR_POLICY = """
regions: [cn-north-1]
schedules:
  office-beijing:
    timezone: Asia/Shanghai
    calendar: CN
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
"""
# Far enough ahead that no release of the holidays library has China's make-up days for it.
UNPUBLISHED = 2031
DEV = {"dev-alice", "dev-bob", "dev-carol"}
# Golden Week's weekdays, as show and validate list the starts they skip.
GOLDEN_WEEK = [
    "Thu 2026-10-01 (CN public holiday: National Day)",
    "Fri 2026-10-02 (CN public holiday: National Day)",
    "Mon 2026-10-05 (CN public holiday: National Day (observed))",
    "Tue 2026-10-06 (CN public holiday: Day off (substituted from 09/20/2026))",
    "Wed 2026-10-07 (CN public holiday: Day off (substituted from 10/10/2026))",
]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Beijing wall-clock time as a UTC instant."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)
    return local.astimezone(timezone.utc)


def z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def beijing(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """dev- notebooks in cn-north-1, stopped, and one the schedule does not target; returns
    the policy's path."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", BEIJING)
    for name in sorted(DEV):
        fleet.notebook(BEIJING, name, status="Stopped")
    fleet.notebook(BEIJING, "prod-serving", status="InService")
    policy = tmp_path / "policy.yaml"
    policy.write_text(CALENDAR_POLICY)
    return str(policy)


def apply_at(cli: Cli, policy: str, ledger: str, moment: datetime) -> dict[str, Any]:
    with time_machine.travel(moment, tick=False):
        code, doc = cli.json("schedule", "run", "--policy", policy, "--ledger", ledger, "--apply")
    assert code == 0, doc
    return doc


def test_starts_and_stops_happen_exactly_on_working_days(
    cli: Cli, sim: Simulator, beijing: str, tmp_path: Path
) -> None:
    """Saturday 14 February and Saturday 10 October 2026 are workdays; Monday 16 February and
    Thursday 1 October are holidays; Tuesday 10 March is an ordinary working day."""
    ledger = str(tmp_path / "ledger.sqlite")
    days = {
        date(2026, 2, 14): True,  # make-up Saturday (Spring Festival)
        date(2026, 2, 16): False,  # Chinese New Year's Eve, a Monday
        date(2026, 3, 10): True,  # an ordinary Tuesday
        date(2026, 10, 1): False,  # National Day, a Thursday
        date(2026, 10, 10): True,  # make-up Saturday (National Day)
    }
    acted: dict[tuple[date, str], set[tuple[str, str]]] = {}
    for day, working in days.items():
        for hour, minute in ((6, 50), (7, 5), (12, 0), (21, 5), (23, 0)):
            doc = apply_at(cli, beijing, ledger, at(day, hour, minute))
            assert all(a["applied"] for a in doc["actions"]), doc
            done = {(a["name"], a["action"]) for a in doc["actions"]}
            if done:
                acted[(day, f"{hour:02d}:{minute:02d}")] = done
            assert doc["errors"] == [] and doc["warnings"] == []
            running = {n for n, s in states(sim, BEIJING).items() if s == "InService"}
            expected_running = DEV if working and (7, 0) <= (hour, minute) < (21, 0) else set()
            assert running - {"prod-serving"} == expected_running, (day, hour, minute)
            assert "prod-serving" in running  # never targeted
    starts = {(name, "start") for name in DEV}
    stops = {(name, "stop") for name in DEV}
    assert acted == {
        key: value
        for day, working in days.items()
        if working
        for key, value in (((day, "07:05"), starts), ((day, "21:05"), stops))
    }


def test_a_holiday_run_says_why_it_starts_nothing(cli: Cli, beijing: str) -> None:
    code, doc = cli.json(
        "schedule", "run", "--policy", beijing, "--at", z(at(date(2026, 10, 1), 7, 5))
    )
    assert code == 0 and doc["actions"] == []
    [quiet] = doc["quiet"]
    assert "no start on Thu 2026-10-01 (CN public holiday: National Day)" in quiet["reason"]
    makeup = at(date(2026, 10, 10), 7, 5)
    code, doc = cli.json("schedule", "run", "--policy", beijing, "--at", z(makeup))
    assert code == 0
    assert {a["name"] for a in doc["actions"]} == DEV
    assert all(
        a["reason"] == "start at Sat 07:00 CST (23:00 UTC), CN make-up workday"
        for a in doc["actions"]
    )


def test_a_holiday_stop_still_stops_an_instance_started_by_hand(
    cli: Cli, sim: Simulator, beijing: str, tmp_path: Path
) -> None:
    """A calendar takes starts away, never a stop: what someone starts on a holiday stops at
    21:00 as on any day."""
    ledger = str(tmp_path / "ledger.sqlite")
    holiday = date(2026, 10, 1)
    assert apply_at(cli, beijing, ledger, at(holiday, 7, 5))["actions"] == []
    sim.client("sagemaker", BEIJING).start_notebook_instance(NotebookInstanceName="dev-alice")
    doc = apply_at(cli, beijing, ledger, at(holiday, 21, 5))
    assert [(a["name"], a["action"]) for a in doc["actions"]] == [("dev-alice", "stop")]
    assert states(sim, BEIJING)["dev-alice"] == "Stopped"


def test_schedule_show_marks_make_up_days_and_the_holidays_it_skips(
    cli: Cli, beijing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_golden_week = z(at(date(2026, 9, 30), 22))
    code, doc = cli.json("schedule", "show", "--policy", beijing, "--at", before_golden_week)
    assert code == 0
    rows = {r["name"]: r for r in doc["instances"]}
    alice = rows["dev-alice"]
    assert alice["next_start"] == "2026-10-07T23:00:00Z"  # Thursday 8 October, 07:00
    assert alice["next_start_day"] is None
    assert alice["next_stop_day"] == "CN public holiday: National Day"
    assert alice["skipped_starts"] == GOLDEN_WEEK
    before_spring = z(at(date(2026, 2, 13), 22))
    code, doc = cli.json("schedule", "show", "--policy", beijing, "--at", before_spring)
    alice = {r["name"]: r for r in doc["instances"]}["dev-alice"]
    assert alice["next_start"] == "2026-02-13T23:00:00Z"
    assert alice["next_start_day"] == "CN make-up workday"
    assert alice["skipped_starts"] == []
    monkeypatch.setenv("COLUMNS", "250")
    table = cli("schedule", "show", "--policy", beijing, "--at", before_spring)
    assert table.exit_code == 0, table.stderr
    assert "Sat 2026-02-14 07:00 CST (23:00 UTC), CN make-up workday" in table.stdout
    table = cli("schedule", "show", "--policy", beijing, "--at", before_golden_week)
    assert "office-beijing: no start on " + ", ".join(GOLDEN_WEEK) in table.stdout
    as_csv = cli("schedule", "show", "--policy", beijing, "--at", before_golden_week, "-o", "csv")
    assert as_csv.exit_code == 0
    assert "; ".join(GOLDEN_WEEK[:2]) in as_csv.stdout


def test_validate_marks_holidays_and_make_up_days(cli: Cli, beijing: str) -> None:
    with time_machine.travel(at(date(2026, 9, 30), 22), tick=False):
        result = cli("validate", beijing, "--output", "json")
        text = cli("validate", beijing)
    assert result.exit_code == 0, result.stderr
    office = json.loads(result.stdout)["schedules"]["office-beijing"]
    assert office["calendar"] == "CN"
    assert office["next_start"] == "2026-10-07T23:00:00Z"
    assert office["next_stop_day"] == "CN public holiday: National Day"
    assert office["skipped_starts"] == GOLDEN_WEEK
    assert "office-beijing (Asia/Shanghai, at boundaries only, calendar CN)" in text.stdout
    assert "no start on " + ", ".join(GOLDEN_WEEK) in text.stdout
    with time_machine.travel(at(date(2026, 2, 13), 22), tick=False):
        result = cli("validate", beijing, "--output", "json")
    office = json.loads(result.stdout)["schedules"]["office-beijing"]
    assert office["next_start_day"] == "CN make-up workday"


def test_a_year_without_calendar_data_follows_the_weekday_rule_and_says_so_once(
    cli: Cli, sim: Simulator, fleet: Fleet, beijing: str, tmp_path: Path
) -> None:
    fleet.notebook(NINGXIA, "dev-ningxia", status="Stopped")
    policy = tmp_path / "two-regions.yaml"
    policy.write_text(CALENDAR_POLICY.replace("[cn-north-1]", "[cn-north-1, cn-northwest-1]"))
    national_day = date(UNPUBLISHED, 10, 1)
    assert national_day.weekday() < 5
    result = cli("schedule", "run", "--policy", str(policy), "--at", z(at(national_day, 7, 5)),
                 "--output", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {a["name"] for a in doc["actions"]} == DEV | {"dev-ningxia"}  # the weekday rule
    [warning] = doc["warnings"]
    assert f"calendar CN has no data for {UNPUBLISHED}" in warning
    assert result.stderr.count(f"no data for {UNPUBLISHED}") == 1
    assert result.stderr.startswith("sagesaver: warning: schedule office-beijing:")
    shown = cli("schedule", "show", "--policy", str(policy), "--at", z(at(national_day, 7, 5)))
    assert shown.exit_code == 0
    assert shown.stderr.count(f"no data for {UNPUBLISHED}") == 1
    with time_machine.travel(at(national_day, 7, 5), tick=False):
        checked = cli("validate", str(policy), "--output", "json")
    assert checked.exit_code == 0
    assert f"no data for {UNPUBLISHED}" in json.loads(checked.stdout)["warnings"][0]
    # a year the library knows: no warning
    known = cli("schedule", "run", "--policy", str(policy), "--at", z(at(date(2026, 10, 1), 7, 5)))
    assert known.exit_code == 0 and "warning" not in known.stderr


def test_the_lambda_schedule_tick_follows_the_calendar(
    sim: Simulator, beijing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.lambda_handlers import schedule_tick

    monkeypatch.setenv("SAGESAVER_POLICY", CALENDAR_POLICY)
    monkeypatch.setenv("SAGESAVER_REGIONS", BEIJING)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.setenv("AWS_REGION", BEIJING)
    event = {"schedule": "office-beijing", "transition": "start"}
    # the deployed tick runs at 07:00 every day; on the holiday its planning starts nothing
    with time_machine.travel(at(date(2026, 10, 1), 7) + timedelta(seconds=40), tick=False):
        ticked = schedule_tick(event, None)
    assert ticked["ok"] and ticked["actions"] == [], ticked
    assert "CN public holiday: National Day" in ticked["quiet"][0]["reason"]
    with time_machine.travel(at(date(2026, 10, 10), 7) + timedelta(seconds=40), tick=False):
        ticked = schedule_tick(event, None)
    assert ticked["ok"], ticked
    assert {(a["name"], a["action"], a["applied"]) for a in ticked["actions"]} == {
        (name, "start", True) for name in DEV
    }
    assert {n for n, s in states(sim, BEIJING).items() if s == "InService"} == DEV | {
        "prod-serving"
    }
