"""``run`` over accounts runs the organisation pipeline's stages (plan per account and region,
one announcement, act per item), the same stages the organisation stack's state machine calls:
one digest naming every account's idle endpoints before any act, each act in its own account
through the guard, and plans that survive their trip through a JSON document."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sagesaver.demo.simulator import ACCOUNT_ID, Fault, Fleet, Simulator
from sagesaver.ledger import open_ledger
from tests.conftest import Cli

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")
OLD = timedelta(days=5)
PROTECT = {"sagesaver:protect": "true"}


def seed(sim: Simulator, now: datetime) -> None:
    for account in ACCOUNTS:
        fleet = Fleet(sim, account)
        for region in REGIONS:
            fleet.endpoint(region, f"idle-{account[:3]}-{region}", changed=now - OLD)
            fleet.endpoint(region, f"kept-{account[:3]}-{region}", tags=PROTECT, changed=now - OLD)
            busy = f"busy-{account[:3]}-{region}"
            fleet.endpoint(region, busy, changed=now - OLD)
            fleet.invocations(region, busy, "AllTraffic", [(now - timedelta(hours=1), 3)])


def policy_file(tmp_path: Path, topic: str) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints: {action: delete, grace_hours: 0, max_actions_per_run: 20}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    return policy


def record_order(sim: Simulator, denied: str | None = None) -> list[str]:
    """The operations the simulator serves, in order (AssumeRole into ``denied`` refused)."""
    order: list[str] = []

    def watch(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        order.append(operation)
        if operation == "AssumeRole" and denied:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            if denied.encode() in body:
                return Fault(403, "AccessDenied", "not authorized to perform sts:AssumeRole")
        return None

    sim.middleware.fault = watch
    return order


def endpoints_left(sim: Simulator) -> set[tuple[str, str, str]]:
    return {
        (account, region, e["EndpointName"])
        for account in ACCOUNTS
        for region in REGIONS
        for e in sim.client("sagemaker", region, account).list_endpoints()["Endpoints"]
    }


def run_args(policy: Path, accounts: Path, ledger: Path) -> list[str]:
    return [
        "run",
        "--policy",
        str(policy),
        "--accounts",
        str(accounts),
        "--role-name",
        "SageSaverExecution",
        "--region",
        REGIONS[0],
        "--region",
        REGIONS[1],
        "--ledger",
        str(ledger),
        "--apply",
    ]


def test_one_digest_names_every_account_before_any_act(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    seed(sim, now)
    fleet = Fleet(sim)
    topic = fleet.topic(REGIONS[0], "admins")
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(ACCOUNTS) + "\n")
    ledger = tmp_path / "ledger.sqlite"
    order = record_order(sim)

    code, doc = cli.json(*run_args(policy_file(tmp_path, topic), accounts, ledger))

    assert code == 0, doc["errors"]
    idle = {(a, r, f"idle-{a[:3]}-{r}") for a in ACCOUNTS for r in REGIONS}
    everything = {
        (a, r, f"{k}-{a[:3]}-{r}")
        for a in ACCOUNTS
        for r in REGIONS
        for k in ("idle", "kept", "busy")
    }
    assert endpoints_left(sim) == everything - idle
    # one digest, published before the first deletion, naming every account's idle endpoints
    [message] = fleet.published(topic)
    assert all(name in message["Message"] for _, _, name in idle)
    assert order.index("Publish") < order.index("DeleteEndpoint")
    assert order.count("Publish") == 1
    assert order.count("DeleteEndpoint") == len(idle)
    # each deletion recorded once, in its own account and region, with its backup
    deleted = {
        (e.account, e.region, e.resource)
        for e in open_ledger(str(ledger)).entries()
        if e.action == "delete" and e.carried_out
    }
    assert deleted == idle
    steps = {(s["account"], s["region"], s["name"]): s for s in doc["enforcement"]}
    assert {k for k, s in steps.items() if s["applied"]} == idle
    assert all(steps[k]["backup_id"] for k in idle)


def test_an_account_out_of_reach_is_named_and_the_others_are_acted_on(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    seed(sim, now)
    fleet = Fleet(sim)
    topic = fleet.topic(REGIONS[0], "admins")
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(ACCOUNTS) + "\n")
    ledger = tmp_path / "ledger.sqlite"
    record_order(sim, denied=ACCOUNTS[2])

    code, doc = cli.json(*run_args(policy_file(tmp_path, topic), accounts, ledger))

    assert code == 1
    [error] = doc["errors"]
    assert (error["account"], error["operation"], error["code"]) == (
        ACCOUNTS[2],
        "AssumeRole",
        "AccessDenied",
    )
    gone = {(a, r, f"idle-{a[:3]}-{r}") for a in ACCOUNTS[:2] for r in REGIONS}
    left = endpoints_left(sim)
    assert not gone & left
    assert {(ACCOUNTS[2], r, f"idle-{ACCOUNTS[2][:3]}-{r}") for r in REGIONS} <= left
    [message] = fleet.published(topic)
    # the digest gives each account's total and says which account was not read
    body = message["Message"]
    assert f"Not read: {ACCOUNTS[2]}: AssumeRole AccessDenied" in body
    for account in ACCOUNTS[:2]:
        assert f"- {account}: 2 idle; " in body


def test_a_dry_run_over_accounts_changes_nothing_and_sends_nothing(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    seed(sim, now)
    fleet = Fleet(sim)
    topic = fleet.topic(REGIONS[0], "admins")
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(ACCOUNTS) + "\n")
    order = record_order(sim)
    args = run_args(policy_file(tmp_path, topic), accounts, tmp_path / "ledger.sqlite")
    args = args[: args.index("--ledger")]  # a dry run: no --apply, no ledger to create

    code, doc = cli.json(*args)

    assert code == 0, doc["errors"]
    assert not {"Publish", "DeleteEndpoint", "AddTags", "CreateEndpointConfig"} & set(order)
    assert fleet.published(topic) == []
    would = {(s["account"], s["name"]) for s in doc["enforcement"] if s["stage"] == "act"}
    assert would == {(a, f"idle-{a[:3]}-{r}") for a in ACCOUNTS for r in REGIONS}
    assert all(s["outcome"].startswith("would delete") for s in doc["enforcement"])


def test_plans_survive_their_json_document(sim: Simulator, now: datetime) -> None:
    from sagesaver.aws.session import Aws
    from sagesaver.core.policy import parse_policy
    from sagesaver.core.pricing import Pricer
    from sagesaver.pipelines.organisation import ItemPlan, plan_item

    seed(sim, now)
    policy = parse_policy("endpoints: {action: delete, grace_hours: 24}\n", "test")
    plan, member = plan_item(
        Aws(),
        ACCOUNTS[0],
        REGIONS[1],
        "SageSaverExecution",
        policy,
        now,
        Pricer(),
        False,
        None,
        "run-1",
    )
    assert member is not None and plan.decisions and plan.steps
    document = json.loads(json.dumps(plan.document()))
    assert ItemPlan.from_document(document) == plan
    assert {d.resource.account for d in plan.decisions} == {ACCOUNTS[0]}
    assert ACCOUNT_ID not in {d.resource.account for d in plan.decisions}


def test_an_account_out_of_reach_counts_once_however_many_regions_fail_alike(
    now: datetime,
) -> None:
    """The stack plans each region of an unreachable account as its own item, each failing
    AssumeRole alike; the CLI tries the account once. Both count one error, named once."""
    from sagesaver.core.model import ScanError
    from sagesaver.pipelines.organisation import ItemPlan, _result, summary_document

    denied = ScanError(
        "-", "AssumeRole", "denied", "arn:aws:iam::333333333333:role/R", "AccessDenied", ACCOUNTS[2]
    )
    per_region = [ItemPlan(ACCOUNTS[2], region, errors=[denied]) for region in REGIONS]
    once = [ItemPlan(ACCOUNTS[2], REGIONS[0], errors=[denied])]
    for plans in (per_region, once):
        assert _result(plans, now, {}).errors == [denied]
        summary = summary_document(plans, [], [], [])
        assert summary["errors"] == [{"account": ACCOUNTS[2], "region": "-", "errors": 1}]
    assert summary_document(per_region, [], [], []) == summary_document(once, [], [], [])
