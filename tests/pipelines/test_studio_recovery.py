"""Studio apps through the last-moment guard and recovery: a DeleteApp cut short is resolved
by the next run, and a protect tag written after the scan stops the delete. Studio is not in
moto: botocore's Stubber answers (and checks every request against the API model)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from sagesaver.aws import studio as aws_studio
from sagesaver.aws.session import Aws
from sagesaver.ledger import DELETE_SENT, Outcome, SqliteLedger
from sagesaver.pipelines.studio import studio_run
from tests.pipelines.test_studio import (
    ARN,
    NOW,
    POLICY,
    REGION,
    describe,
    key,
    stub_guard_tags,
    stub_inventory,
)

IDENTITY = {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/a", "UserId": "a"}
LATER = timedelta(minutes=20)  # after the lease (15 minutes) has expired


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Aws:
    """Clients with test credentials and no endpoint URL: the Stubber answers every call."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Aws()


class Killed(BaseException):
    """The process dies here."""


def stub_empty_inventory(stub: Stubber) -> None:
    """One domain, no spaces, no app in service."""
    stub.add_response("list_domains", {"Domains": [{"DomainId": "d-1", "DomainName": "ml"}]})
    stub.add_response(
        "describe_domain", {"DomainId": "d-1", "DefaultUserSettings": {}}, {"DomainId": "d-1"}
    )
    stub.add_response("list_spaces", {"Spaces": []}, {"DomainIdEquals": "d-1"})
    stub.add_response("list_apps", {"Apps": []})


def killed_after_delete_app(aws: Aws, ledger: SqliteLedger, monkeypatch: Any) -> None:
    """A studio run whose process dies right after DeleteApp was accepted."""
    alice_last = NOW - timedelta(hours=10)
    real = aws_studio.delete_app

    def dies(session: Aws, app: aws_studio.StudioApp) -> None:
        real(session, app)
        raise Killed

    with Stubber(aws.sagemaker(REGION)) as stub, Stubber(aws.sns(REGION)) as sns:
        stub_inventory(stub, alice_last)
        sns.add_response("publish", {"MessageId": "m-1"})
        stub.add_response(
            "describe_app",
            describe("alice", "JupyterLab", "default", alice_last, "ml.t3.medium"),
            key("alice", "JupyterLab", "default"),
        )
        stub_guard_tags(stub, "alice", "JupyterLab", "default")
        stub.add_response("delete_app", {}, key("alice", "JupyterLab", "default"))
        with monkeypatch.context() as patch, pytest.raises(Killed):
            patch.setattr(aws_studio, "delete_app", dies)
            studio_run(aws, [REGION], POLICY, NOW, apply=True, ledger=ledger)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("status", ["Deleted", "Deleting"])
def test_a_delete_app_cut_short_is_recorded_once_by_the_next_run(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    killed_after_delete_app(aws, ledger, monkeypatch)
    [lease] = ledger.open_leases()
    assert lease.state == DELETE_SENT
    assert lease.subject["domain"] == "d-1" and lease.subject["space"] == "alice"
    assert ledger.entries() == []  # the run died before recording it

    gone = describe("alice", "JupyterLab", "default", None, "ml.t3.medium")
    gone["Status"] = status
    with Stubber(aws.sagemaker(REGION)) as stub, Stubber(aws.client("sts", REGION)) as sts:
        stub_empty_inventory(stub)
        sts.add_response("get_caller_identity", IDENTITY)  # recovery in the lease's account
        stub.add_response("describe_app", gone, key("alice", "JupyterLab", "default"))
        result = studio_run(aws, [REGION], POLICY, NOW + LATER, apply=True, ledger=ledger)
        stub.assert_no_pending_responses()
    assert result.errors == []
    [entry] = ledger.entries()
    assert (entry.resource, entry.action) == ("alice/JupyterLab/default", "delete")
    assert entry.status is Outcome.CONFIRMED
    assert entry.outcome.startswith("deleted (confirmed by a later run")
    assert entry.hourly_cost is None  # its moment is not known: no saving counted from it
    assert ledger.open_leases() == []

    with Stubber(aws.sagemaker(REGION)) as stub:  # nothing left to resolve
        stub_empty_inventory(stub)
        studio_run(aws, [REGION], POLICY, NOW + 2 * LATER, apply=True, ledger=ledger)
        stub.assert_no_pending_responses()
    assert len(ledger.entries()) == 1


def test_a_delete_app_that_did_not_happen_is_given_back(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed as DeleteApp is sent but before it reached AWS: the app is still InService, so
    the lease is released, nothing is recorded, and the app is judged afresh."""
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    killed_after_delete_app(aws, ledger, monkeypatch)
    alive = describe("alice", "JupyterLab", "default", NOW - timedelta(hours=10), "ml.t3.medium")
    with Stubber(aws.sagemaker(REGION)) as stub, Stubber(aws.client("sts", REGION)) as sts:
        stub_empty_inventory(stub)
        sts.add_response("get_caller_identity", IDENTITY)
        stub.add_response("describe_app", alive, key("alice", "JupyterLab", "default"))
        studio_run(aws, [REGION], POLICY, NOW + LATER, apply=True, ledger=ledger)
        stub.assert_no_pending_responses()
    assert ledger.open_leases() == [] and ledger.entries() == []


def test_an_app_protected_after_the_scan_is_not_deleted(aws: Aws, tmp_path: Path) -> None:
    alice_last = NOW - timedelta(hours=10)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    with Stubber(aws.sagemaker(REGION)) as stub, Stubber(aws.sns(REGION)) as sns:
        stub_inventory(stub, alice_last)
        sns.add_response("publish", {"MessageId": "m-1"})
        stub.add_response(
            "describe_app",
            describe("alice", "JupyterLab", "default", alice_last, "ml.t3.medium"),
            key("alice", "JupyterLab", "default"),
        )
        protected = {"Tags": [{"Key": "sagesaver:protect", "Value": "true"}]}
        arn = ARN.format("alice", "jupyterlab", "default")
        stub.add_response("list_tags", protected, {"ResourceArn": arn})
        result = studio_run(aws, [REGION], POLICY, NOW, apply=True, ledger=ledger)
        stub.assert_no_pending_responses()  # no DeleteApp
    [alice] = [a for a in result.apps if a.decision.resource.name.startswith("alice")]
    assert (alice.outcome, alice.applied) == ("skipped: protected by tag since the scan", False)
    assert ledger.open_leases() == []
