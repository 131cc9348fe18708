"""Fan-out over accounts (STS AssumeRole into each) and regions, against the moto server."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.conftest import Cli

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")
OLD = timedelta(days=3)


def test_three_accounts_two_regions_one_denied(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    for account in ACCOUNTS:
        fleet = Fleet(sim, account)
        for region in REGIONS:
            fleet.endpoint(region, f"idle-{account[:3]}-{region}", changed=now - OLD)
            busy = f"busy-{account[:3]}-{region}"
            fleet.endpoint(region, busy, changed=now - OLD)
            fleet.invocations(region, busy, "AllTraffic", [(now - timedelta(hours=1), 3)])
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("# the team accounts\n" + "\n".join(ACCOUNTS) + "\n111111111111\n")

    def deny_third(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation != "AssumeRole":
            return None
        import io

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if b"333333333333" in body:
            return Fault(403, "AccessDenied", "not authorized to perform sts:AssumeRole")
        return None

    sim.middleware.fault = deny_third
    sim.middleware.counts.clear()
    code, doc = cli.json(
        "scan",
        "--accounts",
        str(accounts),
        "--role-name",
        "SageSaverExecution",
        "--region",
        REGIONS[0],
        "--region",
        REGIONS[1],
    )
    assert code == 1
    found = {(r["account"], r["region"], r["name"], r["idle"]) for r in doc["resources"]}
    assert found == {
        (account, region, f"{kind}-{account[:3]}-{region}", kind == "idle")
        for account in ACCOUNTS[:2]
        for region in REGIONS
        for kind in ("idle", "busy")
    }
    [error] = doc["errors"]
    assert (error["account"], error["operation"], error["code"]) == (
        "333333333333",
        "AssumeRole",
        "AccessDenied",
    )
    assert sim.middleware.counts["AssumeRole"] == 3  # once per account, the duplicate dropped


def test_bad_fan_out_input_exits_2(cli: Cli, sim: Simulator, tmp_path: Path) -> None:
    bad = tmp_path / "accounts.txt"
    bad.write_text("111111111111\n12345\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    for args, message in (
        (["--accounts", str(bad)], f"{bad}:2: '12345' is not a 12-digit AWS account id"),
        (["--accounts", str(empty)], "no account ids"),
        (["--accounts", str(bad), "--organization"], "cannot be used together"),
        (["--organization", "--role-name", "bad role!"], "not an IAM role name"),
    ):
        sim.middleware.counts.clear()
        result = cli("scan", "--region", "us-east-1", *args)
        assert result.exit_code == 2, result.stderr
        assert message in result.stderr
        assert "AssumeRole" not in sim.middleware.counts


def test_organization_accounts(cli: Cli, sim: Simulator, now: datetime) -> None:
    org = sim.client("organizations", "us-east-1")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(AccountName="ml", Email="ml@example.com")["CreateAccountStatus"]
    member_id = org.describe_create_account_status(CreateAccountRequestId=member["Id"])[
        "CreateAccountStatus"
    ]["AccountId"]
    Fleet(sim, member_id).endpoint("us-east-1", "member-idle", changed=now - OLD)
    code, doc = cli.json("scan", "--organization", "--region", "us-east-1")
    assert code == 0, doc["errors"]
    assert {(r["account"], r["name"]) for r in doc["resources"]} == {(member_id, "member-idle")}


def test_recovery_waits_for_an_account_it_cannot_reach(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    """A member account's lease, left open by a run that died after its delete was sent, is
    resolved in that account only: while its role cannot be assumed, it waits (it used to be
    resolved in the caller's account, found 'gone', and recorded as a deletion)."""
    from sagesaver.core.formats import iso
    from sagesaver.ledger import DELETE_SENT, SqliteLedger

    member = ACCOUNTS[1]
    arn = Fleet(sim, member).endpoint(REGIONS[0], "still-there", changed=now - OLD)
    created = sim.client("sagemaker", REGIONS[0], member).describe_endpoint(
        EndpointName="still-there"
    )["CreationTime"]
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    subject = {
        "kind": "endpoint",
        "account": member,
        "region": REGIONS[0],
        "name": "still-there",
        "arn": arn,
        "created": iso(created),
    }
    key = f"{arn.lower()}|{iso(created)}|delete"
    assert ledger.take_lease(
        key, "dead-run", now - timedelta(hours=2), now - timedelta(hours=1), subject
    )
    assert ledger.advance_lease(key, "dead-run", DELETE_SENT, "backup-1")
    accounts = tmp_path / "accounts.txt"
    accounts.write_text(f"{ACCOUNTS[0]}\n{member}\n")
    policy = tmp_path / "policy.yaml"
    topic = Fleet(sim).topic(REGIONS[0], "admins")
    policy.write_text(f"endpoints: {{action: delete}}\nnotify: {{sns_topic_arn: '{topic}'}}\n")

    def deny_member(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation != "AssumeRole":
            return None
        import io

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if member.encode() in body:
            return Fault(403, "AccessDenied", "not authorized to perform sts:AssumeRole")
        return None

    sim.middleware.fault = deny_member
    code, doc = cli.json(
        "run", "--accounts", str(accounts), "--role-name", "SageSaverExecution",
        "--region", REGIONS[0], "--policy", str(policy),
        "--ledger", str(tmp_path / "ledger.sqlite"), "--apply",
    )  # fmt: skip
    assert code == 1
    assert not [e for e in ledger.entries() if e.resource == "still-there"]  # nothing recorded
    [lease] = ledger.open_leases()
    assert (lease.state, lease.backup_id) == (DELETE_SENT, "backup-1")
    assert any(
        e["operation"] == "recover" and e["resource"] == "still-there" for e in doc["errors"]
    )


def _record_assume_roles(sim: Simulator) -> list[dict[str, str]]:
    """Every AssumeRole request the simulator receives from now on, as its form fields."""
    import io
    from urllib.parse import parse_qsl

    seen: list[dict[str, str]] = []

    def record(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation == "AssumeRole":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            seen.append(dict(parse_qsl(body.decode())))
        return None

    sim.middleware.fault = record
    return seen


def test_each_assume_role_carries_the_external_id_and_who_ran_it(
    cli: Cli, sim: Simulator, now: datetime, tmp_path: Path
) -> None:
    """The member's CloudTrail says who ran the fan-out (sagesaver-<the caller's user or
    session name>, from one GetCallerIdentity a run), and the member role can require an
    external id (sts:ExternalId)."""
    for account in ACCOUNTS[:2]:
        Fleet(sim, account).endpoint(REGIONS[0], f"idle-{account[:3]}", changed=now - OLD)
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(ACCOUNTS[:2]) + "\n")
    caller = sim.client("sts", REGIONS[0]).get_caller_identity()["Arn"]
    who = caller.rsplit("/", 1)[-1]
    seen = _record_assume_roles(sim)
    sim.middleware.counts.clear()
    code, doc = cli.json(
        "scan", "--accounts", str(accounts), "--region", REGIONS[0],
        "--external-id", "sagesaver-7f3e",
    )  # fmt: skip
    assert code == 0, doc["errors"]
    assert {r["account"] for r in doc["resources"]} == set(ACCOUNTS[:2])
    assert sorted(r["RoleArn"] for r in seen) == [
        f"arn:aws:iam::{a}:role/SageSaverExecution" for a in ACCOUNTS[:2]
    ]
    assert {(r["RoleSessionName"], r.get("ExternalId")) for r in seen} == {
        (f"sagesaver-{who}", "sagesaver-7f3e")
    }
    assert sim.middleware.counts["GetCallerIdentity"] == 1  # one a run, not one an account

    seen.clear()
    code, doc = cli.json("scan", "--accounts", str(accounts), "--region", REGIONS[0])
    assert code == 0 and len(seen) == 2
    assert all("ExternalId" not in r for r in seen)  # none asked for, none sent


def test_a_bad_external_id_exits_2_before_any_call(
    cli: Cli, sim: Simulator, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("111111111111\n")
    sim.middleware.counts.clear()
    result = cli("scan", "--accounts", str(accounts), "--external-id", "has space")
    assert result.exit_code == 2, result.stderr
    assert "--external-id: " in result.stderr
    assert not sim.middleware.counts


def test_the_lambda_assumes_as_its_function_with_the_external_id(
    sim: Simulator, monkeypatch: Any
) -> None:
    """In Lambda, the session name is sagesaver-lambda-<function name> (no GetCallerIdentity)
    and SAGESAVER_EXTERNAL_ID is the external id."""
    from sagesaver import lambda_handlers

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "sagesaver-idle-scan")
    monkeypatch.setenv("SAGESAVER_EXTERNAL_ID", "sagesaver-7f3e")
    monkeypatch.setenv("SAGESAVER_REGIONS", REGIONS[0])
    aws, _, _, _ = lambda_handlers._configuration({})
    seen = _record_assume_roles(sim)
    sim.middleware.counts.clear()
    member = aws.assume(ACCOUNTS[0], "SageSaverExecution", REGIONS[0])
    assert member.account == ACCOUNTS[0]
    [request] = seen
    assert request["RoleSessionName"] == "sagesaver-lambda-sagesaver-idle-scan"
    assert request["ExternalId"] == "sagesaver-7f3e"
    assert "GetCallerIdentity" not in sim.middleware.counts

    monkeypatch.setenv("SAGESAVER_EXTERNAL_ID", "has space")
    summary = lambda_handlers._idle_endpoints({}, None)
    assert summary["ok"] is False
    assert summary["input_error"].startswith("SAGESAVER_EXTERNAL_ID: ")
