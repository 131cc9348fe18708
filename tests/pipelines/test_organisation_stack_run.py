"""The organisation stack's state machine, executed on the simulator (moto's ASL interpreter:
every path, ItemReader, ItemSelector, Retry, Catch evaluated as AWS does, by a real JSONPath
library), its Lambda tasks answered by :mod:`sagesaver.organisation_handlers` with the exact
payloads the definition passes: it finds and does what ``sagesaver run --organization`` does,
with one digest naming every account's idle endpoints before any act."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver import organisation_handlers as handlers
from sagesaver.demo.simulator import ACCOUNT_ID, Fault, Fleet, Simulator
from sagesaver.deploy.state_machine import HANDLERS, state_machine_definition
from tests.conftest import Cli

HOME = "us-east-1"
REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1")
OLD = timedelta(days=5)
BUCKET = "org-runs"
ROLE = "SageSaverExecution"
MACHINE_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/sagesaver-org-states"

pytestmark = pytest.mark.slow


def function_arn(key: str) -> str:
    return f"arn:aws:lambda:{HOME}:{ACCOUNT_ID}:function:sagesaver-org-{key}"


@pytest.fixture
def stack(sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """The state machine and its five functions on the simulator; yields its ARN."""
    sim.execute_state_machines()
    sim.client("s3", HOME).create_bucket(Bucket=BUCKET)
    for key, name in HANDLERS.items():
        sim.functions.register(function_arn(key), getattr(handlers, name))
    monkeypatch.setenv("SAGESAVER_RUN_BUCKET", BUCKET)
    monkeypatch.setenv("SAGESAVER_MEMBER_ROLE", ROLE)
    monkeypatch.setenv("SAGESAVER_REGIONS", ",".join(REGIONS))
    monkeypatch.setenv("AWS_REGION", HOME)
    definition = state_machine_definition(
        "aws", {key: function_arn(key) for key in HANDLERS}, 20, 10
    )
    machine = sim.client("stepfunctions", HOME).create_state_machine(
        name="sagesaver-org", definition=json.dumps(definition), roleArn=MACHINE_ROLE
    )["stateMachineArn"]
    yield machine
    sim.execute_state_machines(on=False)


def organisation(sim: Simulator, members: int) -> list[str]:
    """An organisation of ``members`` accounts besides the management account."""
    org = sim.client("organizations", HOME)
    org.create_organization(FeatureSet="ALL")
    ids = []
    for n in range(members):
        request = org.create_account(AccountName=f"team-{n}", Email=f"team-{n}@example.com")
        status = org.describe_create_account_status(
            CreateAccountRequestId=request["CreateAccountStatus"]["Id"]
        )["CreateAccountStatus"]
        ids.append(status["AccountId"])
    return ids


def seed(sim: Simulator, accounts: list[str], now: datetime) -> set[tuple[str, str, str]]:
    """In every fifth account and each region: an idle endpoint, a busy one and a protected
    idle one. Returns the idle, unprotected ones."""
    idle = set()
    for account in accounts[::5]:
        fleet = Fleet(sim, account)
        for region in REGIONS:
            name = f"idle-{account[-4:]}-{region}"
            fleet.endpoint(region, name, changed=now - OLD)
            idle.add((account, region, name))
            fleet.endpoint(
                region,
                f"kept-{account[-4:]}",
                tags={"sagesaver:protect": "true"},
                changed=now - OLD,
            )
            busy = f"busy-{account[-4:]}"
            fleet.endpoint(region, busy, changed=now - OLD)
            fleet.invocations(region, busy, "AllTraffic", [(now - timedelta(hours=2), 5)])
    return idle


def start(sim: Simulator, machine: str, name: str, given: dict[str, Any] | None = None) -> Any:
    """Start an execution named ``name`` (the run's id) and wait for its end."""
    stepfunctions = sim.client("stepfunctions", HOME)
    arn = stepfunctions.start_execution(
        stateMachineArn=machine, name=name, input=json.dumps(given or {})
    )["executionArn"]
    return sim.wait_for_execution(arn, timeout_s=900)


def run_document(sim: Simulator, run_id: str, name: str) -> Any:
    body = sim.client("s3", HOME).get_object(Bucket=BUCKET, Key=f"runs/{run_id}/{name}")["Body"]
    return json.loads(body.read())


def policy_text(topic: str) -> str:
    return (
        "endpoints: {action: delete, grace_hours: 0, max_actions_per_run: 100}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )


def step_key(step: dict[str, Any]) -> tuple[str, ...]:
    return (step["account"], step["region"], step["name"], step["stage"], step["outcome"])


def test_fifty_accounts_three_regions_as_the_cli_does_them(
    cli: Cli,
    sim: Simulator,
    stack: str,
    now: datetime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    members = organisation(sim, 50)
    idle = seed(sim, members, now)
    fleet = Fleet(sim)
    topic = fleet.topic(HOME, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text(topic))
    monkeypatch.setenv("SAGESAVER_POLICY", policy.read_text())
    from sagesaver.aws.session import Aws
    from sagesaver.ledger.dynamodb import create_table

    ledger = f"dynamodb://{HOME}/ledger"  # the stack's and the CLI's
    create_table(Aws(), HOME, "ledger")
    monkeypatch.setenv("SAGESAVER_LEDGER", ledger)

    # 1. a dry run of the stack and of the CLI, at the same moment, find and plan the same
    dry = start(sim, stack, "dry-run")
    assert dry.status == "SUCCEEDED", (dry.error, dry.cause)
    run_id = dry.output["summary_key"].split("/")[1]
    moment = datetime.fromisoformat(dry_now(sim, run_id))  # the execution's start: its clock
    announced = run_document(sim, run_id, "announced.json")
    with time_machine.travel(moment, tick=False):
        code, doc = cli.json(
            "run",
            "--policy",
            str(policy),
            "--organization",
            "--role-name",
            ROLE,
            "--ledger",
            ledger,
            *[arg for region in REGIONS for arg in ("--region", region)],
        )
    assert code == 0, doc["errors"]
    cli_bodies = [n["body"] for n in doc["notifications"]]
    assert [d["body"] for d in announced["digest"]] == cli_bodies
    stack_steps = {step_key(s) for s in settled_steps(announced)}
    assert stack_steps == {step_key(s) for s in doc["enforcement"]}
    would = {(a, r, n) for a, r, n, stage, _ in stack_steps if stage == "act"}
    assert would == idle
    assert len(run_document(sim, run_id, "items.json")) == 51 * len(REGIONS)
    assert fleet.published(topic) == []  # a dry run sends nothing

    # 2. applied: one digest naming every account's idle endpoints, then the acts
    order: list[str] = []

    def watch(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        order.append(operation)
        return None

    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    sim.middleware.fault = watch
    applied = start(sim, stack, "applied")
    assert applied.status == "SUCCEEDED", (applied.error, applied.cause)
    summary = applied.output
    assert summary["complete"] is True and summary["missed_count"] == 0
    assert summary["actions"] == len(idle)
    [message] = fleet.published(topic)
    assert all(name in message["Message"] for _, _, name in idle)
    assert order.count("Publish") == 1
    assert order.index("Publish") < order.index("DeleteEndpoint")
    assert order.count("DeleteEndpoint") == len(idle)
    left = {
        (account, region, e["EndpointName"])
        for account in members[::5]
        for region in REGIONS
        for e in sim.client("sagemaker", region, account).list_endpoints()["Endpoints"]
    }
    assert not left & idle
    assert {n for _, _, n in left} == {
        f"{kind}-{a[-4:]}" for a in members[::5] for kind in ("kept", "busy")
    }
    from sagesaver.ledger import open_ledger

    entries = open_ledger(ledger).entries()
    assert {
        (e.account, e.region, e.resource) for e in entries if e.action == "delete" and e.carried_out
    } == idle


def dry_now(sim: Simulator, run_id: str) -> str:
    return str(run_document(sim, run_id, "summary.json")["generated_at"]).replace("Z", "+00:00")


def settled_steps(announced: dict[str, Any]) -> list[dict[str, Any]]:
    from sagesaver.pipelines.enforce import step_dict
    from sagesaver.pipelines.organisation import step_results_from_document

    return [step_dict(r) for r in step_results_from_document(announced["settled"])]
