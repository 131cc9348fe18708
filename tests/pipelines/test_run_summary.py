"""The organisation run's summary: the stack's ``summarise`` (driven with the payloads the
state machine passes) and the CLI's in-process run make the same document for the same run,
and, when they apply, keep it in the ledger under the run's id, where ``report`` reads it. A
ledger that refuses it is an error of the run, never a crash; the summary stays in S3."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sagesaver import organisation_handlers as handlers
from sagesaver.aws.prices import LivePrices
from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.core.pricing import Pricer
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.ledger import SqliteLedger, open_ledger
from sagesaver.pipelines.organisation import OrganisationRun, run_organisation

HOME = "us-east-1"
REGIONS = ["us-east-1", "eu-west-1"]
ACCOUNTS = ["111111111111", "222222222222"]
BUCKET = "org-runs"
ROLE = "SageSaverExecution"
OLD = timedelta(days=5)
# The fields of list_items' answer the state machine keeps (ListItems' ResultSelector).
RUN_FIELDS = ("run_id", "now", "bucket", "prefix", "items_key", "items")


@pytest.fixture
def org(sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, now: datetime) -> Path:
    """Two member accounts in two regions: in each, an idle endpoint and a busy one; the
    stack's settings in the environment. Returns the ledger's path."""
    for account in ACCOUNTS:
        fleet = Fleet(sim, account)
        for region in REGIONS:
            fleet.endpoint(region, f"idle-{account[:2]}", changed=now - OLD)
            fleet.endpoint(region, f"busy-{account[:2]}", changed=now - OLD)
            fleet.invocations(
                region, f"busy-{account[:2]}", "AllTraffic", [(now - timedelta(hours=2), 9)]
            )
    topic = Fleet(sim).topic(HOME, "admins")
    sim.client("s3", HOME).create_bucket(Bucket=BUCKET)
    ledger = tmp_path / "ledger.sqlite"
    SqliteLedger(ledger)  # created: a dry run opens it read-only
    text = (
        "endpoints: {action: delete, grace_hours: 0, max_actions_per_run: 100}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    monkeypatch.setenv("SAGESAVER_POLICY", text)
    monkeypatch.setenv("SAGESAVER_RUN_BUCKET", BUCKET)
    monkeypatch.setenv("SAGESAVER_MEMBER_ROLE", ROLE)
    monkeypatch.setenv("SAGESAVER_REGIONS", ",".join(REGIONS))
    monkeypatch.setenv("SAGESAVER_LEDGER", str(ledger))
    monkeypatch.setenv("AWS_REGION", HOME)
    return ledger


def policy() -> Policy:
    import os

    return parse_policy(os.environ["SAGESAVER_POLICY"], "SAGESAVER_POLICY")


def stack_run(execution: str, now: datetime) -> dict[str, Any]:
    """One execution, each handler called with the payload its state passes; returns what
    ``Summarise`` answered."""
    listed = handlers.list_items(
        {"execution": execution, "started": now.isoformat(), "input": {"accounts": ACCOUNTS}},
        None,
    )
    run = {k: listed[k] for k in RUN_FIELDS}
    for item in document(run, "items.json"):
        handlers.plan_item({**item, "run": run}, None)
    told = handlers.announce({"run": run}, None)
    announce = {k: told[k] for k in ("act_key", "acts", "notified")}
    if announce["acts"] > 0:
        for item in document(run, "act-items.json"):
            handlers.act_item({**item, "run": run}, None)
    return handlers.summarise({"run": run, "announce": announce}, None)


def document(run: dict[str, Any], name: str) -> Any:
    s3 = Aws().client("s3", HOME)
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"{run['prefix']}{name}")["Body"].read())


def summary_in_s3(run_id: str) -> Any:
    return document({"prefix": f"runs/{run_id}/"}, "summary.json")


def cli_run(run_id: str, now: datetime, apply: bool, ledger: Path) -> OrganisationRun:
    """The CLI's run over the same accounts (``run --accounts``), priced as the stack is."""
    aws = Aws()
    pricer = Pricer(live=LivePrices(aws, None))
    store = open_ledger(str(ledger), read_only=not apply)
    return run_organisation(
        aws, ACCOUNTS, ROLE, REGIONS, policy(), now, pricer, apply, store, run_id
    )


def test_the_stack_and_the_cli_summarise_a_dry_run_alike(org: Path, now: datetime) -> None:
    answer = stack_run("dry", now)
    stack_summary = summary_in_s3("dry")
    done = cli_run("dry", now, False, org)
    assert done.summary == stack_summary
    idle = [r for r in stack_summary["rows"] if r["idle"]]
    assert {(r["account"], r["region"]) for r in idle} == {
        (a, r) for a in ACCOUNTS for r in REGIONS
    }
    assert all(r["resources"] == 2 and r["idle"] == 1 and r["acted"] == 0 for r in idle)
    assert all(r["idle_hourly_cost"]["USD"] > 0 for r in idle)
    assert answer["actions"] == 0 and stack_summary["applied"] is False
    assert open_ledger(str(org), read_only=True).run_summaries() == []  # a dry run keeps none


def test_an_applied_stack_run_keeps_its_summary_in_the_ledger(
    org: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    answer = stack_run("applied", now)
    assert answer["actions"] == len(ACCOUNTS) * len(REGIONS) and answer["complete"] is True
    [kept] = open_ledger(str(org)).run_summaries()
    assert (kept.run_id, kept.at) == ("applied", now.replace(microsecond=0))
    assert kept.document == summary_in_s3("applied")
    assert sum(r["acted"] for r in kept.document["rows"]) == answer["actions"]


def test_an_applied_cli_run_keeps_the_same_summary(org: Path, now: datetime) -> None:
    done = cli_run("cli-run", now, True, org)
    assert done.result.errors == []
    [kept] = open_ledger(str(org)).run_summaries()
    assert (kept.run_id, kept.at, kept.document) == ("cli-run", now, done.summary)
    assert sum(r["acted"] for r in kept.document["rows"]) == len(ACCOUNTS) * len(REGIONS)
    assert kept.document["applied"] is True and kept.document["complete"] is True


def refuse(self: SqliteLedger, run_id: str, at: datetime, document: dict[str, Any]) -> None:
    raise sqlite3.OperationalError("database or disk is full")


def test_a_ledger_that_refuses_the_summary_is_an_error_of_the_stack_run(
    org: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.setattr(SqliteLedger, "record_run_summary", refuse)
    answer = stack_run("refused", now)
    assert answer["complete"] is False and answer["errors"] == 1
    assert "could not record the run's summary" in answer["ledger_error"]
    assert str(org) in answer["ledger_error"]
    kept = summary_in_s3("refused")  # the summary stays in S3, acts and all
    assert sum(r["acted"] for r in kept["rows"]) == answer["actions"] == 4


def test_a_ledger_that_refuses_the_summary_is_an_error_of_the_cli_run(
    org: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqliteLedger, "record_run_summary", refuse)
    done = cli_run("refused", now, True, org)
    [error] = done.result.errors
    assert error.code == "LedgerUnwritable" and "the run's summary" in error.message
    assert sum(r["acted"] for r in done.summary["rows"]) == 4  # the acts were made
    assert open_ledger(str(org)).run_summaries() == []
