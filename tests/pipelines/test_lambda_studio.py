"""The deployed idle-scan function carries out ``studio_apps.action: delete`` as ``sagesaver
studio`` does (issue 31, deliverable 4): on the simulator, whose Studio apps, spaces and tags are
added at the wire (``sagesaver.demo.studio``: moto has none); and ``deploy render`` grants the
Studio actions only when the policy asks for deletion."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.core.permissions import CAPABILITIES
from sagesaver.core.policy import parse_policy
from sagesaver.demo.simulator import Fleet, Simulator
from sagesaver.demo.studio import STUDIO
from sagesaver.deploy.template import FUNCTIONS, IDLE_SCAN, render_template, template_actions
from sagesaver.lambda_handlers import RunFailed, idle_endpoints

EAST = "us-east-1"
STUDIO_POLICY = "studio_apps: {idle_hours: 3, action: delete, grace_hours: 1}\n"


class Context:
    """What the handler reads of Lambda's context: the request id."""

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


def seed_apps(sim: Simulator, now: datetime) -> dict[str, str]:
    """A domain with three spaces, each running JupyterLab: ``alice`` idle for 10 hours,
    ``bob`` used 10 minutes ago, ``carol`` idle but protected. Returns the apps' ARNs."""
    sm = sim.client("sagemaker", EAST)
    sm.create_domain(
        DomainName="ml", AuthMode="IAM", DefaultUserSettings={}, SubnetIds=["s"], VpcId="v"
    )
    arns = {}
    for name, last, tags in (
        ("alice", now - timedelta(hours=10), {}),
        ("bob", now - timedelta(minutes=10), {}),
        ("carol", now - timedelta(hours=10), {"sagesaver:protect": "true"}),
    ):
        sm.create_space(DomainId="d-ml", SpaceName=name, SpaceSettings={"AppType": "JupyterLab"})
        arn = sm.create_app(
            DomainId="d-ml",
            SpaceName=name,
            AppType="JupyterLab",
            AppName="default",
            ResourceSpec={"InstanceType": "ml.t3.medium"},
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["AppArn"]
        STUDIO.set_app_times(arn, created=now - timedelta(days=2), last_activity=last)
        arns[name] = arn
    return arns


def status(sim: Simulator, space: str) -> str:
    described = sim.client("sagemaker", EAST).describe_app(
        DomainId="d-ml", SpaceName=space, AppType="JupyterLab", AppName="default"
    )
    return str(described["Status"])


@pytest.fixture
def deleting(sim: Simulator, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The function's settings: Studio apps deleted after 1 hour's grace, a file ledger, the
    topic people read. Returns the topic's ARN."""
    topic = fleet.topic(EAST, "admins")
    monkeypatch.setenv(
        "SAGESAVER_POLICY", STUDIO_POLICY + f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    monkeypatch.setenv("SAGESAVER_REGIONS", EAST)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.setenv("SAGESAVER_LEDGER", str(tmp_path / "ledger.sqlite"))
    return topic


def outcomes(summary: dict[str, Any]) -> dict[str, str]:
    return {a["name"].split("/")[0]: a["outcome"] for a in summary["studio_apps"]}


def test_an_idle_app_is_deleted_after_its_grace_period_and_no_other(
    sim: Simulator,
    fleet: Fleet,
    deleting: str,
    now: datetime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_apps(sim, now)
    with time_machine.travel(now, tick=False):
        first = idle_endpoints({}, Context("request-1"))
    assert first["ok"] is True, first["errors"]
    announced = outcomes(first)
    assert announced["alice"].startswith("delete scheduled for"), announced
    assert announced["bob"] == "keep" and announced["carol"] == "keep"
    assert [status(sim, s) for s in ("alice", "bob", "carol")] == ["InService"] * 3
    # people were told first: the Studio digest names the app to be deleted
    digests = [m for m in fleet.published(deleting) if "alice" in m["Message"]]
    assert len(digests) == 1 and "JupyterLab" in digests[0]["Message"]
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in logged if r.get("kind") == "studio-app"} == {
        "alice/JupyterLab/default",
        "bob/JupyterLab/default",
        "carol/JupyterLab/default",
    }

    # The next scheduled run before the deadline deletes nothing.
    with time_machine.travel(now + timedelta(minutes=30), tick=False):
        early = idle_endpoints({}, Context("request-2"))
    assert "deleted" not in " ".join(outcomes(early).values())
    assert status(sim, "alice") == "InService"

    # After the grace period: alice's app goes, its space stays; bob's and carol's stay.
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        later = idle_endpoints({}, Context("request-3"))
    assert later["ok"] is True, later["errors"]
    done = outcomes(later)
    assert done["alice"].startswith("deleted"), done
    assert done["bob"] == "keep" and done["carol"] == "keep"
    assert [status(sim, s) for s in ("alice", "bob", "carol")] == [
        "Deleted",
        "InService",
        "InService",
    ]
    space = sim.client("sagemaker", EAST).describe_space(DomainId="d-ml", SpaceName="alice")
    assert space["Status"] == "InService"


def test_an_app_used_again_after_the_announcement_is_not_deleted(
    sim: Simulator, deleting: str, now: datetime
) -> None:
    arns = seed_apps(sim, now)
    with time_machine.travel(now, tick=False):
        first = idle_endpoints({}, Context("request-1"))
    assert outcomes(first)["alice"].startswith("delete scheduled for")
    STUDIO.set_app_times(arns["alice"], last_activity=now + timedelta(minutes=50))
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        later = idle_endpoints({}, Context("request-2"))
    assert not outcomes(later)["alice"].startswith("deleted"), outcomes(later)
    assert status(sim, "alice") == "InService"


def test_without_studio_deletion_the_function_reads_no_studio(
    sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_apps(sim, now)
    topic = fleet.topic(EAST, "admins")  # a run that applies tells people: it needs a topic
    monkeypatch.setenv(
        "SAGESAVER_POLICY",
        f"studio_apps: {{idle_hours: 3}}\nnotify: {{sns_topic_arn: '{topic}'}}\n",
    )
    monkeypatch.setenv("SAGESAVER_REGIONS", EAST)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.delenv("SAGESAVER_LEDGER", raising=False)
    sim.middleware.counts.clear()
    summary = idle_endpoints({}, None)
    assert summary["studio_apps"] == []
    assert "ListApps" not in sim.middleware.counts and "DeleteApp" not in sim.middleware.counts
    assert status(sim, "alice") == "InService"


def test_deleting_studio_apps_needs_a_ledger(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAGESAVER_POLICY", STUDIO_POLICY)
    monkeypatch.setenv("SAGESAVER_APPLY", "true")
    monkeypatch.delenv("SAGESAVER_LEDGER", raising=False)
    with pytest.raises(RunFailed) as failed:
        idle_endpoints(None, None)
    message = failed.value.summary["input_error"]
    assert message.startswith("studio_apps.action 'delete' needs SAGESAVER_LEDGER")
    assert sum(sim.middleware.counts.values()) == 0


# --- deploy render ------------------------------------------------------------------------


def idle_scan_role(policy_text: str) -> dict[str, Any]:
    template = render_template(parse_policy(policy_text, "p"), "bucket", "key.zip", [])
    role: dict[str, Any] = template["Resources"][f"{IDLE_SCAN}Role"]
    return role


def statements(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return {s["Sid"]: s for s in found}


def test_the_stack_grants_studio_deletion_only_when_the_policy_asks_for_it() -> None:
    asked = idle_scan_role(STUDIO_POLICY)
    granted = template_actions({"Resources": {"R": asked}})
    assert set(CAPABILITIES["studio"]) <= granted
    chosen = parse_policy(STUDIO_POLICY, "p")
    assert sorted(granted) == FUNCTIONS[IDLE_SCAN].actions_for(chosen)
    by_sid = statements(asked)
    change = by_sid["SageMakerChange"]
    assert "sagemaker:DeleteApp" in change["Action"]
    apps = {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:app/*"}
    assert apps in change["Resource"]
    # the deadline tag on apps, and nothing on every resource
    assert {"sagemaker:AddTags", "sagemaker:DeleteTags"} <= set(change["Action"])
    assert not [r for r in change["Resource"] if str(r).endswith(":*'}")]
    # the code's guards, in IAM too: the protect tag, and the protect tag's changes
    deny = by_sid["DenyProtectedStudioApps"]
    assert deny["Effect"] == "Deny" and deny["Action"] == ["sagemaker:DeleteApp"]
    assert deny["Condition"]["Null"] == {"aws:ResourceTag/sagesaver:protect": "false"}
    assert "DenyProtectTagChanges" in by_sid

    reported = idle_scan_role("studio_apps: {idle_hours: 3, action: notify}\n")
    others = template_actions({"Resources": {"R": reported}})
    assert not {"sagemaker:DeleteApp", "sagemaker:ListApps", "sagemaker:DescribeApp"} & others
    assert "DenyProtectedStudioApps" not in statements(reported)


def test_with_endpoints_selected_by_tag_the_apps_deadline_tag_can_still_be_removed() -> None:
    """Endpoints are changed only when they carry the selected tags; a Studio app's deadline
    tag (set when announced, removed when the announcement is void) is not an endpoint's."""
    role = idle_scan_role("endpoints: {action: delete, tags: {owner: ml}}\n" + STUDIO_POLICY)
    by_sid = statements(role)
    selected = by_sid["SageMakerChangeSelectedEndpoints"]
    assert selected["Condition"] == {"StringEquals": {"aws:ResourceTag/owner": "ml"}}
    change = by_sid["SageMakerChange"]
    assert {"sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:DeleteApp"} <= set(
        change["Action"]
    )
    resources = [r["Fn::Sub"] for r in change["Resource"]]
    assert any(r.endswith(":app/*") for r in resources)
    assert not any(r.endswith(":endpoint/*") for r in resources)
