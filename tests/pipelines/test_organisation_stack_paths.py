"""Every path of the organisation state machine, executed on the simulator with the real item
handlers: an item that fails is recorded and the others go on (within the tolerated failure
percentage the run announces and acts, the digest naming what was not read); beyond it, the run
goes straight to its summary; a failed announcement acts on nothing; a run with nothing due
skips the acting Map. Each summary says what was missed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from sagesaver import organisation_handlers as handlers
from sagesaver.demo.simulator import ACCOUNT_ID, Fault, Fleet, Simulator
from sagesaver.deploy.state_machine import HANDLERS, state_machine_definition

HOME = "us-east-1"
BUCKET = "org-runs"
OLD = timedelta(days=5)
ACCOUNTS = [f"{n:012d}" for n in range(100000000001, 100000000013)]  # 12 members

pytestmark = pytest.mark.slow


def function_arn(key: str) -> str:
    return f"arn:aws:lambda:{HOME}:{ACCOUNT_ID}:function:sagesaver-org-{key}"


@pytest.fixture
def machine(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    sim.execute_state_machines()
    sim.client("s3", HOME).create_bucket(Bucket=BUCKET)
    for key, name in HANDLERS.items():
        sim.functions.register(function_arn(key), getattr(handlers, name))
    topic = Fleet(sim).topic(HOME, "admins")
    monkeypatch.setenv(
        "SAGESAVER_POLICY",
        "endpoints: {action: delete, grace_hours: 0, max_actions_per_run: 50}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n",
    )
    from sagesaver.aws.session import Aws
    from sagesaver.ledger.dynamodb import create_table

    create_table(Aws(), HOME, "ledger")
    monkeypatch.setenv("SAGESAVER_LEDGER", f"dynamodb://{HOME}/ledger")
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.setenv("SAGESAVER_RUN_BUCKET", BUCKET)
    monkeypatch.setenv("SAGESAVER_MEMBER_ROLE", "SageSaverExecution")
    monkeypatch.setenv("SAGESAVER_REGIONS", HOME)
    monkeypatch.setenv("AWS_REGION", HOME)
    definition = state_machine_definition(
        "aws", {key: function_arn(key) for key in HANDLERS}, 4, 10
    )
    yield sim.client("stepfunctions", HOME).create_state_machine(
        name="sagesaver-org",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/states",
    )["stateMachineArn"]
    sim.execute_state_machines(on=False)


def seed_idle(sim: Simulator, now: datetime, accounts: list[str]) -> None:
    for account in accounts:
        Fleet(sim, account).endpoint(HOME, f"idle-{account[-2:]}", changed=now - OLD)


def refuse_puts(sim: Simulator, *parts: str) -> None:
    """S3 refuses (403, not retried) every PUT whose key holds one of ``parts``."""

    def refuse(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation.startswith("PUT ") and any(part in operation for part in parts):
            return Fault(403, "AccessDenied", "Access Denied")
        return None

    sim.middleware.fault = refuse


def run(sim: Simulator, machine: str, name: str) -> Any:
    states = sim.client("stepfunctions", HOME)
    arn = states.start_execution(
        stateMachineArn=machine, name=name, input=json.dumps({"accounts": ACCOUNTS})
    )["executionArn"]
    done = sim.wait_for_execution(arn, timeout_s=300)
    assert done.status == "SUCCEEDED", (done.error, done.cause)
    return done.output


def document(sim: Simulator, name: str, key: str) -> Any:
    body = sim.client("s3", HOME).get_object(Bucket=BUCKET, Key=f"runs/{name}/{key}")["Body"]
    return json.loads(body.read())


def endpoints(sim: Simulator, account: str) -> set[str]:
    found = sim.client("sagemaker", HOME, account).list_endpoints()["Endpoints"]
    return {e["EndpointName"] for e in found}


def invocations(sim: Simulator) -> Callable[[str], int]:
    return lambda key: int(sim.functions.invocations.get(f"sagesaver-org-{key}", 0))


def test_a_failed_item_within_tolerance_is_named_and_the_rest_is_done(
    sim: Simulator, machine: str, now: datetime
) -> None:
    seed_idle(sim, now, ACCOUNTS)
    refuse_puts(sim, f"plans/{ACCOUNTS[0]}/")  # 1 of 12 items: 8.3 %, under 10 %

    summary = run(sim, machine, "one-failed")

    assert summary["complete"] is False and summary["missed_count"] == 1
    [missed] = summary["missed"]
    assert (missed["stage"], missed["account"], missed["region"]) == ("plan", ACCOUNTS[0], HOME)
    assert "PutObject" in missed["error"]  # why, as the item's Lambda said it
    assert summary["actions"] == 11
    assert endpoints(sim, ACCOUNTS[0]) == {f"idle-{ACCOUNTS[0][-2:]}"}  # not read: untouched
    assert all(not endpoints(sim, a) for a in ACCOUNTS[1:])
    [digest] = document(sim, "one-failed", "announced.json")["digest"]
    assert f"Not read: {ACCOUNTS[0]} {HOME}: PlanItem ItemFailed" in digest["body"]
    failure = document(sim, "one-failed", f"failures/plan/{ACCOUNTS[0]}/{HOME}.json")
    assert failure["stage"] == "plan"


def test_beyond_the_tolerated_failures_nothing_is_announced_or_acted_on(
    sim: Simulator, machine: str, now: datetime
) -> None:
    seed_idle(sim, now, ACCOUNTS)
    refuse_puts(sim, f"plans/{ACCOUNTS[0]}/", f"plans/{ACCOUNTS[1]}/")  # 2 of 12: 16.7 %
    called = invocations(sim)

    summary = run(sim, machine, "too-many")

    assert summary["complete"] is False
    stages = {m["stage"] for m in summary["missed"]}
    assert stages == {"plan"}  # the two items, and the plan Map itself
    assert summary["missed_count"] == 3
    assert called("announce") == 0 and called("act") == 0
    assert summary["actions"] == 0
    assert all(endpoints(sim, a) for a in ACCOUNTS)
    fleet = Fleet(sim)
    assert fleet.published(fleet.topic(HOME, "admins")) == []  # no digest either


def test_a_failed_announcement_acts_on_nothing(sim: Simulator, machine: str, now: datetime) -> None:
    seed_idle(sim, now, ACCOUNTS[:3])
    refuse_puts(sim, "act-items.json")
    called = invocations(sim)

    summary = run(sim, machine, "no-announcement")

    assert called("announce") == 1 and called("act") == 0
    [missed] = summary["missed"]
    assert missed["stage"] == "announce"
    assert summary["actions"] == 0
    assert all(endpoints(sim, a) for a in ACCOUNTS[:3])


def test_an_act_item_that_fails_is_recorded_and_the_others_act(
    sim: Simulator, machine: str, now: datetime
) -> None:
    seed_idle(sim, now, ACCOUNTS[:3])
    refuse_puts(sim, f"acts/{ACCOUNTS[1]}/")

    summary = run(sim, machine, "act-failed")

    # the item, and the acting Map (1 of 3 items is beyond 10 %)
    missed = {(m["stage"], m["account"]) for m in summary["missed"]}
    assert missed == {("act", ACCOUNTS[1]), ("act", "-")}
    # its act was made before its document could not be written: the ledger has it
    assert not any(endpoints(sim, a) for a in ACCOUNTS[:3])
    from sagesaver.ledger import open_ledger

    deleted = {
        e.account
        for e in open_ledger(f"dynamodb://{HOME}/ledger").entries()
        if e.action == "delete" and e.carried_out
    }
    assert deleted == set(ACCOUNTS[:3])


def test_nothing_due_skips_the_acting_map(sim: Simulator, machine: str, now: datetime) -> None:
    Fleet(sim, ACCOUNTS[0]).endpoint(HOME, "young", changed=now - timedelta(minutes=5))
    called = invocations(sim)

    summary = run(sim, machine, "nothing-due")

    assert summary["complete"] is True and summary["missed"] == []
    assert called("plan") == len(ACCOUNTS) and called("announce") == 1
    assert called("act") == 0 and called("summarise") == 1
    assert endpoints(sim, ACCOUNTS[0]) == {"young"}
    assert document(sim, "nothing-due", "act-items.json") == []
