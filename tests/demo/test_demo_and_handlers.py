from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sagesaver.demo.run import run_demo
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.lambda_handlers import RunFailed, idle_endpoints

OLD = timedelta(days=5)


def test_handler_returns_summary_with_per_resource_errors(
    fleet: Fleet, sim: Simulator, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = fleet.topic("us-east-1", "admins")
    fleet.endpoint("us-east-1", "idle-one", changed=now - OLD)
    fleet.endpoint("us-west-2", "idle-two", changed=now - OLD)
    monkeypatch.setenv("SAGESAVER_POLICY", f"notify: {{sns_topic_arn: '{topic}'}}")
    monkeypatch.setenv("SAGESAVER_REGIONS", "us-east-1,us-west-2")
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    result = idle_endpoints({}, None)
    assert result["ok"] is True
    assert {e["name"] for e in result["idle_endpoints"]} == {"idle-one", "idle-two"}
    assert result["notified"] is True and len(fleet.published(topic)) == 1
    json.dumps(result)  # serialisable, as Lambda needs


def test_handler_reports_failed_regions_without_failing_whole(
    fleet: Fleet,
    sim: Simulator,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sagesaver.demo.simulator import Fault

    fleet.endpoint("us-east-1", "idle-one", changed=now - OLD)
    sim.middleware.fault = lambda op, region, env: (
        Fault(400, "AccessDeniedException", "denied") if region == "us-west-2" else None
    )
    with pytest.raises(RunFailed, match="us-west-2: denied") as failed:
        idle_endpoints({"regions": ["us-east-1", "us-west-2"], "apply": False}, None)
    result = failed.value.summary  # everything was done and recorded before the raise
    assert result["ok"] is False
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["event"], r.get("name") or r.get("region")) for r in logged] == [
        ("decision", "idle-one"),
        *[("error", "us-west-2")] * len(result["errors"]),
        ("run", None),
    ]
    assert logged[-1]["ok"] is False and logged[-1]["errors"] == len(result["errors"])
    assert [e["name"] for e in result["idle_endpoints"]] == ["idle-one"]
    assert result["errors"][0]["region"] == "us-west-2"
    assert result["notified"] is False


def test_handler_bad_policy_is_an_input_error(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGESAVER_POLICY", "endpoints: {idle_hours: -1}")
    with pytest.raises(RunFailed) as failed:
        idle_endpoints(None, None)
    result = failed.value.summary
    assert result["ok"] is False
    assert "endpoints.idle_hours" in result["input_error"]
    assert sum(sim.middleware.counts.values()) == 0


def test_the_handler_needs_a_ledger_to_release_warm_pools(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGESAVER_POLICY", "jobs: {warm_pools: {action: release}}")
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.delenv("SAGESAVER_LEDGER", raising=False)
    with pytest.raises(RunFailed) as failed:
        idle_endpoints(None, None)
    message = failed.value.summary["input_error"]
    assert message.startswith("jobs.warm_pools.action 'release' needs SAGESAVER_LEDGER")
    assert sum(sim.middleware.counts.values()) == 0


@pytest.mark.slow  # a child process
def test_demo_runs_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo("json") == 0
    doc = json.loads(capsys.readouterr().out)
    decisions = {r["name"]: r["decision"] for r in doc["resources"]}
    assert decisions["llm-playground"] == "notify"
    assert decisions["churn-ab-test"] == "keep"  # traffic only on its second variant
    assert decisions["canary-new-model"] == "keep"  # created an hour ago
    assert decisions["search-ranker-dr"] == "keep"  # protected
    assert decisions["batch-features"] == "keep"  # 0 instances
    by_name = {r["name"]: r for r in doc["resources"]}
    assert (by_name["faq-bot"]["rule"], by_name["faq-bot"]["hourly_cost_usd"]) == ("serverless", 0)
    assert decisions["ocr-warm"] == "notify"  # serverless with provisioned concurrency
    assert by_name["video-tagging-async"]["recommendations"][0]["kind"] == "scale-to-zero"
    assert by_name["doc-summaries-async"]["rule"] == "active"  # only its own metrics show it
    (advice,) = by_name["fraud-scoring"]["recommendations"]
    assert (advice["kind"], advice["to"]) == ("rightsize", "ml.m5.large")
    assert advice["hourly_saving_usd"] == pytest.approx(0.23)
    assert by_name["llm-shared-host"]["rule"] == "active"  # chat-assistant is busy
    assert by_name["legal-summarizer"]["kind"] == "inference-component"
    assert by_name["legal-summarizer"]["decision"] == "notify"
    assert by_name["chat-assistant"]["rule"] == "active"
    owners = {n["owner"]: n["body"] for n in doc["owner_notifications"]}
    assert sorted(owners) == ["li.wei", "maria.garcia"]
    assert "recsys-demo-2025" in owners["li.wei"] and "ocr-warm" not in owners["li.wei"]
    assert "ocr-warm" in owners["maria.garcia"] and "video-tagging-async" in owners["maria.garcia"]
    assert sorted({r["region"] for r in doc["resources"]}) == ["us-east-1", "us-west-2"]
    assert len(doc["notifications"]) == 1
    assert doc["errors"] == []
    deleted = {(e["name"], e["outcome"].split(":")[0]) for e in doc["enforcement"]}
    assert deleted == {
        ("llm-playground", "deleted"),
        ("recsys-demo-2025", "deleted"),
        ("forgotten-poc", "deleted"),
        ("video-tagging-async", "deleted"),
        ("ocr-warm", "deleted"),
        ("tune-resnet-42", "released"),
    }
    pool = by_name["tune-resnet-42"]
    assert (pool["kind"], pool["decision"]) == ("training-job", "notify")  # the scan only reports
    assert "endpoint forgotten-poc: created" in doc["restored"]
    assert {(a["action"], a["name"]) for a in doc["schedule"]} >= {
        ("start", "dev-dana"),
        ("stop", "dev-alice"),
    }


def test_console_script_scans_the_simulator(sim: Simulator, fleet: Fleet, now: datetime) -> None:
    """The installed ``sagesaver`` command, as a user runs it, over HTTP."""
    fleet.endpoint("us-east-1", "idle-one", changed=now - OLD)
    script = Path(sys.executable).with_name("sagesaver")
    env = {**os.environ, **sim.env("us-east-1")}
    done = subprocess.run(
        [str(script), "scan", "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [r["name"] for r in doc["resources"] if r["idle"]] == ["idle-one"]


def deleting_handler(fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle-scan handler set to delete at once (grace 0), one idle endpoint, a table for a
    ledger (``SAGESAVER_LEDGER`` left to the test)."""
    from sagesaver.aws.session import Aws
    from sagesaver.ledger.dynamodb import create_table

    topic = fleet.topic("us-east-1", "admins")
    fleet.endpoint("us-east-1", "idle-one", changed=now - OLD)
    create_table(Aws(), "us-east-1", "ledger")
    monkeypatch.setenv(
        "SAGESAVER_POLICY",
        f"endpoints: {{action: delete, grace_hours: 0}}\nnotify: {{sns_topic_arn: '{topic}'}}",
    )
    monkeypatch.setenv("SAGESAVER_REGIONS", "us-east-1")
    monkeypatch.setenv("SAGESAVER_APPLY", "true")


def test_handler_enforces_with_a_dynamodb_ledger(
    fleet: Fleet, sim: Simulator, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleting_handler(fleet, now, monkeypatch)
    with pytest.raises(RunFailed, match="SAGESAVER_LEDGER"):
        idle_endpoints({}, None)
    monkeypatch.setenv("SAGESAVER_LEDGER", "dynamodb://ledger")
    result = idle_endpoints({}, None)
    assert result["ok"], result
    assert [(e["name"], e["stage"], e["outcome"]) for e in result["enforcement"]] == [
        ("idle-one", "act", "deleted")
    ]
    assert result["enforcement"][0]["backup_id"].startswith("idle-one-")
    assert idle_endpoints({}, None)["enforcement"] == []  # a second run is a no-op


def test_the_scheduled_scan_remembers_configurations_in_the_ledger_table(
    fleet: Fleet, sim: Simulator, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.aws.session import Aws
    from sagesaver.ledger.dynamodb import create_table

    for i in range(30):
        fleet.endpoint("us-east-1", f"idle-{i:02d}", changed=now - OLD)
    create_table(Aws(), "us-east-1", "ledger")
    monkeypatch.setenv("SAGESAVER_REGIONS", "us-east-1")
    monkeypatch.setenv("SAGESAVER_LEDGER", "dynamodb://ledger")
    sim.middleware.counts.clear()
    first = idle_endpoints({}, None)
    assert first["summary"]["idle"] == 30
    assert sim.middleware.counts["DescribeEndpointConfig"] == 30
    sim.middleware.counts.clear()
    again = idle_endpoints({}, None)  # a new invocation: nothing kept in memory
    assert again["summary"] == first["summary"]
    assert again["idle_endpoints"] == first["idle_endpoints"]
    assert "DescribeEndpointConfig" not in sim.middleware.counts
    assert sim.middleware.counts["ListEndpointConfigs"] == 1


class _Invocation:
    """A Lambda context with ``seconds`` left."""

    def __init__(self, seconds: float, request_id: str) -> None:
        self.seconds, self.aws_request_id = seconds, request_id

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


def test_a_lambda_run_short_of_time_starts_no_act_and_says_what_it_left(
    fleet: Fleet, sim: Simulator, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Less than 2 minutes left: no deletion is started (one cut short by the time-out would
    be left half-done); the run says what it left, and the next invocation does it."""
    deleting_handler(fleet, now, monkeypatch)
    monkeypatch.setenv("SAGESAVER_LEDGER", "dynamodb://ledger")
    short = idle_endpoints({}, _Invocation(90, "request-1"))
    [step] = short["enforcement"]
    assert (step["stage"], step["applied"]) == ("act", False)
    assert step["outcome"].startswith("left for the next run: 90 s of this invocation remain")
    assert "DeleteEndpoint" not in sim.middleware.counts
    later = idle_endpoints({}, _Invocation(600, "request-2"))
    assert [(s["name"], s["outcome"]) for s in later["enforcement"]] == [("idle-one", "deleted")]
