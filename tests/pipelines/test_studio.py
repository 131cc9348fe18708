"""Studio apps, spaces and domains. moto implements none of them, so these tests drive the real
code through botocore's Stubber, which checks every request and answer against the API model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine
from botocore.stub import Stubber

from sagesaver.aws.session import Aws
from sagesaver.core.policy import parse_policy
from sagesaver.core.pricing import Pricer, PriceTable
from sagesaver.ledger import SqliteLedger
from sagesaver.pipelines.studio import studio_run

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
REGION = "us-east-1"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:app/d-1/{}/{}/{}"
IDLE_ON = {
    "JupyterLabAppSettings": {
        "AppLifecycleManagement": {"IdleSettings": {"IdleTimeoutInMinutes": 60}}
    }
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return Aws()


def describe(
    owner: str,
    app_type: str,
    name: str,
    last: datetime | None,
    itype: str,
    owner_key: str = "SpaceName",
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "AppArn": ARN.format(owner, app_type.lower(), name),
        "AppType": app_type,
        "AppName": name,
        "DomainId": "d-1",
        owner_key: owner,
        "Status": "InService",
        "CreationTime": NOW - timedelta(days=2),
        "ResourceSpec": {"InstanceType": itype},
    }
    if last is not None:
        answer["LastUserActivityTimestamp"] = last
    return answer


def key(owner: str, app_type: str, name: str, owner_key: str = "SpaceName") -> dict[str, str]:
    return {"DomainId": "d-1", "AppType": app_type, "AppName": name, owner_key: owner}


def stub_guard_tags(stub: Stubber, owner: str, app_type: str, name: str) -> None:
    """The tags the last-moment guard reads again before DeleteApp."""
    arn = ARN.format(owner, app_type.lower(), name)
    stub.add_response("list_tags", {"Tags": [{"Key": "team", "Value": "ml"}]}, {"ResourceArn": arn})


def stub_inventory(stub: Stubber, alice_last: datetime) -> None:
    stub.add_response("list_domains", {"Domains": [{"DomainId": "d-1", "DomainName": "ml"}]})
    stub.add_response(
        "describe_domain", {"DomainId": "d-1", "DefaultUserSettings": {}}, {"DomainId": "d-1"}
    )
    stub.add_response(
        "list_spaces",
        {
            "Spaces": [
                {"DomainId": "d-1", "SpaceName": "alice"},
                {"DomainId": "d-1", "SpaceName": "bob"},
            ]
        },
        {"DomainIdEquals": "d-1"},
    )
    stub.add_response(
        "describe_space",
        {"SpaceName": "alice", "SpaceSettings": IDLE_ON},
        {"DomainId": "d-1", "SpaceName": "alice"},
    )
    stub.add_response(
        "describe_space",
        {"SpaceName": "bob", "SpaceSettings": {}},
        {"DomainId": "d-1", "SpaceName": "bob"},
    )
    stub.add_response(
        "list_apps",
        {
            "Apps": [
                {
                    "DomainId": "d-1",
                    "SpaceName": "alice",
                    "AppType": "JupyterLab",
                    "AppName": "default",
                    "Status": "InService",
                },
                {
                    "DomainId": "d-1",
                    "SpaceName": "bob",
                    "AppType": "CodeEditor",
                    "AppName": "default",
                    "Status": "InService",
                },
                {
                    "DomainId": "d-1",
                    "SpaceName": "bob",
                    "AppType": "KernelGateway",
                    "AppName": "old",
                    "Status": "Deleted",
                },
                {
                    "DomainId": "d-1",
                    "UserProfileName": "dave",
                    "AppType": "JupyterServer",
                    "AppName": "default",
                    "Status": "InService",
                },
            ]
        },
    )
    stub.add_response(
        "describe_app",
        describe("alice", "JupyterLab", "default", alice_last, "ml.t3.medium"),
        key("alice", "JupyterLab", "default"),
    )
    stub.add_response(
        "list_tags",
        {"Tags": [{"Key": "team", "Value": "ml"}]},
        {"ResourceArn": ARN.format("alice", "jupyterlab", "default")},
    )
    stub.add_response(
        "describe_app",
        describe("bob", "CodeEditor", "default", NOW - timedelta(minutes=30), "ml.m5.xlarge"),
        key("bob", "CodeEditor", "default"),
    )
    stub.add_response(
        "list_tags", {"Tags": []}, {"ResourceArn": ARN.format("bob", "codeeditor", "default")}
    )
    stub.add_response(
        "describe_app",
        describe("dave", "JupyterServer", "default", None, "system", "UserProfileName"),
        key("dave", "JupyterServer", "default", "UserProfileName"),
    )
    stub.add_response(
        "list_tags",
        {"Tags": [{"Key": "sagesaver:protect", "Value": "true"}]},
        {"ResourceArn": ARN.format("dave", "jupyterserver", "default")},
    )


TOPIC = f"arn:aws:sns:{REGION}:123456789012:admins"
POLICY = parse_policy(
    "studio_apps: {idle_hours: 3, action: delete, grace_hours: 0}\n"
    f"notify: {{sns_topic_arn: '{TOPIC}'}}\n"
)


def test_inventory_decisions_gaps_and_deletion(aws: Aws, tmp_path: Path) -> None:
    alice_last = NOW - timedelta(hours=10)
    client = aws.sagemaker(REGION)
    with Stubber(client) as stub, Stubber(aws.sns(REGION)) as sns:
        stub_inventory(stub, alice_last)
        # The digest goes out first, naming the deletion it announces...
        sns.add_response("publish", {"MessageId": "m-1"})
        # ...then the fresh check and the delete.
        stub.add_response(
            "describe_app",
            describe("alice", "JupyterLab", "default", alice_last, "ml.t3.medium"),
            key("alice", "JupyterLab", "default"),
        )
        stub_guard_tags(stub, "alice", "JupyterLab", "default")
        stub.add_response("delete_app", {}, key("alice", "JupyterLab", "default"))
        ledger = SqliteLedger(tmp_path / "ledger.sqlite")
        table = PriceTable({REGION: {"currency": "USD", "notebook": {"ml.t3.medium": 0.05}}})
        result = studio_run(
            aws, [REGION], POLICY, NOW, apply=True, ledger=ledger, pricer=Pricer(table)
        )
        stub.assert_no_pending_responses()
        sns.assert_no_pending_responses()
    assert result.errors == []
    assert result.notified is not None and result.notified.message_ids == ["m-1"]
    outcomes = {
        a.decision.resource.name: (a.decision.idle, a.decision.action.value, a.outcome)
        for a in result.apps
    }
    assert outcomes == {
        "alice/JupyterLab/default": (
            True,
            "delete",
            "deleted (the space and its storage are kept)",
        ),
        "bob/CodeEditor/default": (False, "keep", "keep"),
        "dave/JupyterServer/default": (True, "keep", "keep"),  # protected, and never used
    }
    alice = next(a.decision for a in result.apps if a.decision.resource.name.startswith("alice"))
    assert alice.reason == "no user activity for 10.0 h" and alice.hourly_cost_usd == 0.05
    assert (alice.currency, alice.price_source) == ("USD", "bundled")
    dave = next(a.decision for a in result.apps if a.decision.resource.name.startswith("dave"))
    assert "never used since it was created" in dave.reason and "protected" in dave.reason
    assert [(g.domain_id, g.space) for g in result.gaps] == [("d-1", None), ("d-1", "bob")]
    [entry] = ledger.entries()
    assert (entry.resource, entry.action, entry.outcome) == (
        "alice/JupyterLab/default",
        "delete",
        "deleted (the space and its storage are kept)",
    )


def test_dry_run_and_a_change_since_the_scan_delete_nothing(aws: Aws, tmp_path: Path) -> None:
    alice_last = NOW - timedelta(hours=10)
    client = aws.sagemaker(REGION)
    with Stubber(client) as stub:  # dry run: no describe again, no DeleteApp
        stub_inventory(stub, alice_last)
        result = studio_run(aws, [REGION], POLICY, NOW, apply=False, ledger=None)
        stub.assert_no_pending_responses()
    assert [a.outcome for a in result.apps if a.decision.resource.name.startswith("alice")] == [
        "would delete (after a fresh check; space storage kept)"
    ]
    with Stubber(client) as stub, Stubber(aws.sns(REGION)) as sns:  # used since the scan
        stub_inventory(stub, alice_last)
        sns.add_response("publish", {"MessageId": "m-1"})
        stub.add_response(
            "describe_app",
            describe("alice", "JupyterLab", "default", NOW - timedelta(minutes=1), "ml.t3.medium"),
            key("alice", "JupyterLab", "default"),
        )
        stub_guard_tags(stub, "alice", "JupyterLab", "default")
        result = studio_run(
            aws, [REGION], POLICY, NOW, apply=True, ledger=SqliteLedger(tmp_path / "l")
        )
        stub.assert_no_pending_responses()
    assert (
        "skipped: used again: user activity at 2026-11-29 11:59 UTC, after the scan; its "
        "announcement is cancelled: a new one goes out first"
    ) in [a.outcome for a in result.apps]


def studio_cli(aws: Aws, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """``sagesaver studio --region REGION ARGS`` in-process, on ``aws`` (stubbed by the caller)."""
    from typer.testing import CliRunner

    from sagesaver import cli

    monkeypatch.setattr(cli.common, "connect", lambda *_: aws)
    with time_machine.travel(NOW, tick=False):
        return CliRunner().invoke(cli.app, ["studio", "--region", REGION, *args])


@pytest.mark.parametrize("output", ["table", "json"])
def test_unreadable_apps_are_said_to_be_unreadable_never_none(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, output: str
) -> None:
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub.add_response("list_domains", {"Domains": []})  # read: no domain
        stub.add_client_error(
            "list_apps", "AccessDeniedException", "not authorized to perform: sagemaker:ListApps"
        )
        result = studio_cli(aws, monkeypatch, "--output", output)
        stub.assert_no_pending_responses()
    assert result.exit_code == 1  # some region could not be read (README: exit codes)
    assert "No Studio apps" not in result.stdout
    if output == "table":
        assert "error us-east-1: ListApps: AccessDeniedException" in result.stderr
        assert (
            "Studio apps in us-east-1 could not be read: ListApps: AccessDeniedException "
            "not authorized to perform: sagemaker:ListApps" in result.stdout
        )
        return
    doc = json.loads(result.stdout)
    assert doc["apps"] == [] and doc["idle_shutdown_gaps"] == []
    assert doc["unread"] == [
        {
            "scope": "apps",
            "account": None,
            "region": REGION,
            "operation": "ListApps",
            "resource": None,
            "code": "AccessDeniedException",
            "message": "not authorized to perform: sagemaker:ListApps",
        }
    ]


def test_a_failing_region_is_reported_and_the_cli_exits_1(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub.add_client_error("list_domains", "AccessDeniedException", "not allowed")
        stub.add_client_error("list_apps", "AccessDeniedException", "not allowed either")
        result = studio_cli(aws, monkeypatch, "--output", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [(e["operation"], e["code"]) for e in doc["errors"]] == [
        ("ListDomains", "AccessDeniedException"),
        ("ListApps", "AccessDeniedException"),
    ]
    assert [(u["scope"], u["operation"]) for u in doc["unread"]] == [
        ("idle-shutdown", "ListDomains"),
        ("apps", "ListApps"),
    ]
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub.add_client_error("list_domains", "AccessDeniedException", "not allowed")
        stub.add_client_error("list_apps", "AccessDeniedException", "not allowed either")
        table = studio_cli(aws, monkeypatch)
    assert table.exit_code == 1
    assert table.stdout.splitlines() == [
        "Idle shutdown of the Studio domains in us-east-1 could not be read: ListDomains: "
        "AccessDeniedException not allowed",
        "Studio apps in us-east-1 could not be read: ListApps: AccessDeniedException "
        "not allowed either",
    ]


def test_an_unreadable_domain_hides_only_its_own_idle_shutdown(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stub_domains(stub: Stubber) -> None:
        domains = [{"DomainId": "d-1", "DomainName": "a"}, {"DomainId": "d-2", "DomainName": "b"}]
        stub.add_response("list_domains", {"Domains": domains})
        stub.add_client_error("describe_domain", "AccessDeniedException", "not this one")
        stub.add_response(
            "describe_domain", {"DomainId": "d-2", "DefaultUserSettings": {}}, {"DomainId": "d-2"}
        )
        stub.add_client_error("list_spaces", "ThrottlingException", "Rate exceeded", 400)
        stub.add_response("list_apps", {"Apps": []})  # read: none in service

    with Stubber(aws.sagemaker(REGION)) as stub:
        stub_domains(stub)
        result = studio_run(aws, [REGION], POLICY, NOW, apply=False, ledger=None)
        stub.assert_no_pending_responses()
    assert [(g.domain_id, g.space) for g in result.gaps] == [("d-2", None)]  # what was read
    assert [(e.operation, e.resource, e.code) for e in result.errors] == [
        ("DescribeDomain", "d-1", "AccessDeniedException"),
        ("ListSpaces", "d-2", "ThrottlingException"),
    ]
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub_domains(stub)
        table = studio_cli(aws, monkeypatch)
    assert table.exit_code == 1
    assert table.stdout.splitlines() == [
        "d-2 domain default (us-east-1): no default idle shutdown",
        "Idle shutdown of Studio domain d-1 in us-east-1 could not be read: DescribeDomain: "
        "AccessDeniedException not this one",
        "Idle shutdown of Studio domain d-2 in us-east-1 could not be read: ListSpaces: "
        "ThrottlingException Rate exceeded",
        "No Studio apps in service.",  # ListApps answered: that is known
    ]


def test_an_app_that_cannot_be_described_hides_only_itself(aws: Aws) -> None:
    with Stubber(aws.sagemaker(REGION)) as stub:
        stub.add_response("list_domains", {"Domains": []})
        apps = [
            {
                "DomainId": "d-1",
                "SpaceName": owner,
                "AppType": "JupyterLab",
                "AppName": "default",
                "Status": "InService",
            }
            for owner in ("alice", "bob")
        ]
        stub.add_response("list_apps", {"Apps": apps})
        stub.add_client_error("describe_app", "AccessDeniedException", "not bob's")
        stub.add_response(
            "describe_app",
            describe("bob", "JupyterLab", "default", NOW - timedelta(hours=10), "ml.t3.medium"),
            key("bob", "JupyterLab", "default"),
        )
        stub.add_response(
            "list_tags", {"Tags": []}, {"ResourceArn": ARN.format("bob", "jupyterlab", "default")}
        )
        result = studio_run(aws, [REGION], POLICY, NOW, apply=False, ledger=None)
        stub.assert_no_pending_responses()
    assert [a.decision.resource.name for a in result.apps] == ["bob/JupyterLab/default"]
    assert [(e.operation, e.resource) for e in result.errors] == [
        ("DescribeApp", "alice/JupyterLab/default")
    ]
    assert [(u["scope"], u["resource"]) for u in result.document()["unread"]] == [
        ("app", "alice/JupyterLab/default")
    ]


def test_idle_shutdown_settings() -> None:
    from sagesaver.aws.studio import _idle_shutdown_enabled, _space_idle_timeout

    enabled = {
        "CodeEditorAppSettings": {
            "AppLifecycleManagement": {"IdleSettings": {"LifecycleManagement": "ENABLED"}}
        }
    }
    disabled = {
        "JupyterLabAppSettings": {
            "AppLifecycleManagement": {"IdleSettings": {"LifecycleManagement": "DISABLED"}}
        }
    }
    assert _idle_shutdown_enabled(enabled) and not _idle_shutdown_enabled(disabled)
    assert not _idle_shutdown_enabled({}) and not _idle_shutdown_enabled(None)
    assert _space_idle_timeout(IDLE_ON) and not _space_idle_timeout({})


def test_grace_period_announces_with_a_tag_first(aws: Aws, tmp_path: Path) -> None:
    policy = parse_policy("studio_apps: {idle_hours: 3, action: delete, grace_hours: 2}")
    client = aws.sagemaker(REGION)
    with Stubber(client) as stub:
        stub_inventory(stub, NOW - timedelta(hours=10))
        stub.add_response(
            "add_tags",
            {"Tags": []},
            {
                "ResourceArn": ARN.format("alice", "jupyterlab", "default"),
                "Tags": [
                    {"Key": "sagesaver:scheduled-action", "Value": "delete@2026-11-29T14:00:00Z"}
                ],
            },
        )
        result = studio_run(
            aws, [REGION], policy, NOW, apply=True, ledger=SqliteLedger(tmp_path / "l")
        )
        stub.assert_no_pending_responses()
    alice = next(a for a in result.apps if a.decision.resource.name.startswith("alice"))
    assert (alice.outcome, alice.applied) == ("delete scheduled for 2026-11-29 14:00 UTC", True)


def test_cli_apply_deletes_and_tells_the_topic(
    sim: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SageMaker answers come from the Stubber, SNS from the moto server."""
    from typer.testing import CliRunner

    from sagesaver import cli
    from sagesaver.demo.simulator import Fleet

    topic = Fleet(sim).topic(REGION, "admins")
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "studio_apps: {idle_hours: 3, action: delete, grace_hours: 0}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    aws = Aws()
    monkeypatch.setattr(cli.common, "connect", lambda *_: aws)
    last = NOW - timedelta(hours=10)
    # The stubbed apps' times and the command's clock come from one moment: NOW.
    with time_machine.travel(NOW, tick=False), Stubber(aws.sagemaker(REGION)) as stub:
        stub_inventory(stub, last)
        stub.add_response(
            "describe_app",
            describe("alice", "JupyterLab", "default", last, "ml.t3.medium"),
            key("alice", "JupyterLab", "default"),
        )
        stub_guard_tags(stub, "alice", "JupyterLab", "default")
        stub.add_response("delete_app", {}, key("alice", "JupyterLab", "default"))
        result = CliRunner().invoke(
            cli.app,
            [
                "studio",
                "--region",
                REGION,
                "--policy",
                str(policy),
                "--apply",
                "--ledger",
                str(tmp_path / "ledger.sqlite"),
                "--output",
                "json",
            ],
        )
        stub.assert_no_pending_responses()
    assert result.exit_code == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["notified"] is True
    [sent] = Fleet(sim).published(topic)
    assert sent["Subject"].startswith("SageSaver: 1 idle Studio app,")
    assert "alice/JupyterLab/default" in sent["Message"] and "deleted" in sent["Message"]
