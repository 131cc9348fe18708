"""The IAM policy `sagesaver permissions` prints: exactly the declared actions, each scoped to
what it acts on, checked by parliament (AWS's IAM definitions) and by rule."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string

from sagesaver.core.permissions import (
    CAPABILITIES,
    UNSCOPED_ACTIONS,
    actions_for,
    is_read_only,
    scoped_document,
)
from tests.conftest import Cli
from tests.iam_evaluator import Request, decide

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
TOPIC = "arn:aws:sns:us-east-1:123456789012:admins"
EVERYTHING = list(CAPABILITIES)
MODEL_ROLE = "arn:aws:iam::123456789012:role/models/endpoint-model"


def test_the_readme_lists_every_declared_action() -> None:
    missing = sorted(
        action
        for actions in CAPABILITIES.values()
        for action in actions
        if f"`{action}`" not in README
    )
    assert missing == []


def document(**options: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "regions": ["us-east-1", "eu-west-1"],
        "account": "123456789012",
        "topic_arn": TOPIC,
        "delete_config": True,
        "pass_roles": [MODEL_ROLE],
    }
    return scoped_document(EVERYTHING, **{**defaults, **options})


def allows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The Allow statements (the Deny ones are the guards: test_permission_guards.py)."""
    return [s for s in doc["Statement"] if s["Effect"] == "Allow"]


def by_action(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a: s for s in allows(doc) for a in s["Action"]}


def test_parliament_finds_nothing_and_would_find_the_old_star_policy() -> None:
    assert analyze_policy_string(json.dumps(document())).findings == []
    everything_on_star = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions_for(EVERYTHING), "Resource": "*"}],
    }
    assert analyze_policy_string(json.dumps(everything_on_star)).findings != []


def test_exactly_the_declared_actions_and_no_write_on_star() -> None:
    doc = document()
    granted = sorted(by_action(doc))
    assert granted == actions_for(EVERYTHING)
    for statement in allows(doc):
        assert not any("*" in action for action in statement["Action"])
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= UNSCOPED_ACTIONS | {"organizations:ListAccounts"}
            assert all(is_read_only(a) for a in statement["Action"]), statement


def test_each_grant_is_scoped_to_what_it_acts_on() -> None:
    grants = by_action(document())
    assert grants["sns:Publish"]["Resource"] == TOPIC
    assert grants["sts:AssumeRole"]["Resource"] == "arn:aws:iam::*:role/SageSaverExecution"
    assert grants["sts:AssumeRole"]["Condition"] == ORGANISATION_ONLY
    pass_role = grants["iam:PassRole"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert pass_role["Resource"] == [MODEL_ROLE]  # never every role of the account
    assert pass_role["Action"] == ["iam:PassRole"]
    deletes = grants["sagemaker:DeleteEndpoint"]["Resource"]
    assert "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/*" in deletes
    assert all(r.startswith("arn:aws:sagemaker:") for r in deletes)
    scaling = grants["application-autoscaling:RegisterScalableTarget"]
    assert scaling["Condition"] == {
        "StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}
    }


ORGANISATION_ONLY = {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}


def test_the_member_role_is_assumed_only_in_the_callers_organisation() -> None:
    """The review's finding: the caller could assume the member role name in any account.
    Now only in an account of its own organisation (``aws:ResourceOrgID``, the account of
    the role assumed, against the caller's ``aws:PrincipalOrgID``)."""
    fan_out = scoped_document(["fan-out"], ["us-east-1"], "123456789012")
    [grant] = [s for s in allows(fan_out) if "sts:AssumeRole" in s["Action"]]
    assert grant["Action"] == ["sts:AssumeRole"] and grant["Condition"] == ORGANISATION_ONLY
    member = "arn:aws:iam::444455556666:role/SageSaverExecution"
    ours = {"aws__PrincipalOrgID": "o-a1b2c3d4e5"}
    inside = Request.on("sts:AssumeRole", member, aws__ResourceOrgID="o-a1b2c3d4e5", **ours)
    outside = Request.on("sts:AssumeRole", member, aws__ResourceOrgID="o-zzzzzzzzzz", **ours)
    no_org = Request.on("sts:AssumeRole", member, aws__ResourceOrgID="o-a1b2c3d4e5")
    other_role = Request.on(
        "sts:AssumeRole", "arn:aws:iam::444455556666:role/Admin", aws__ResourceOrgID="o-a1b2c3d4e5"
    )
    assert decide(fan_out, inside) == "allow"
    assert decide(fan_out, outside) == "implicit-deny"
    assert decide(fan_out, no_org) == "implicit-deny"  # a caller outside any organisation
    assert decide(fan_out, other_role) == "implicit-deny"
    # The key is one AWS lists for sts:AssumeRole (a global key), and parliament checks it.
    assert analyze_policy_string(json.dumps(fan_out)).findings == []
    misspelt = json.loads(json.dumps(fan_out).replace("aws:ResourceOrgID", "aws:ResourceOrgId2"))
    assert [f.issue for f in analyze_policy_string(json.dumps(misspelt)).findings] == [
        "UNKNOWN_CONDITION_FOR_ACTION"
    ]


def test_delete_config_is_granted_only_when_the_policy_deletes_configurations() -> None:
    assert "sagemaker:DeleteEndpointConfig" in by_action(document(delete_config=True))
    assert "sagemaker:DeleteEndpointConfig" not in by_action(document(delete_config=False))


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_every_partition_gets_its_own_arns(cli: Cli, region: str, partition: str) -> None:
    role = f"arn:{partition}:iam::123456789012:role/model"
    args = ("--region", region, "--account", "123456789012", "--pass-role", role)
    result = cli("permissions", *args)
    assert result.exit_code == 0, result.stderr
    documents = json.loads(result.stdout)  # one policy per capability
    assert list(documents) == list(CAPABILITIES)
    union = cli("permissions", *args, "--union", "-c", "restore", "-c", "scan")
    assert union.exit_code == 0, union.stderr
    arns = [
        r
        for doc in [*documents.values(), json.loads(union.stdout)]
        for s in doc["Statement"]
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
        if r != "*"
    ]
    assert arns and all(r.startswith(f"arn:{partition}:") for r in arns)


def test_bad_permissions_input_exits_2(cli: Cli) -> None:
    mixed = cli("permissions", "--region", "cn-north-1", "--region", "us-east-1")
    assert mixed.exit_code == 2 and "several partitions" in mixed.stderr
    account = cli("permissions", "--account", "12")
    assert account.exit_code == 2 and "12 digits" in account.stderr


def test_a_selection_by_tag_becomes_a_resource_tag_condition() -> None:
    doc = document(tags={"team": "ml", "env": "dev-*", "cost": "$5"})
    assert analyze_policy_string(json.dumps(doc)).findings == []
    holding = [s for s in allows(doc) if "sagemaker:DeleteEndpoint" in s["Action"]]
    assert len(holding) == 1  # no other statement lets an endpoint be deleted
    [selected] = holding
    assert selected["Condition"] == {
        "StringEquals": {"aws:ResourceTag/cost": "${$}5", "aws:ResourceTag/team": "ml"},
        "StringLike": {"aws:ResourceTag/env": "dev-*"},
    }
    assert all(r.split(":")[-1] == "endpoint/*" for r in selected["Resource"])
    untagged_tagging = [
        r
        for s in allows(doc)
        if "sagemaker:AddTags" in s["Action"] and "Condition" not in s
        for r in s["Resource"]
    ]
    assert untagged_tagging and not any(r.endswith(":endpoint/*") for r in untagged_tagging)


def test_a_glob_iam_cannot_express_keeps_the_plain_grant() -> None:
    doc = document(tags={"team": "[ab]*"})
    assert not any("Condition" in s and "sagemaker:DeleteEndpoint" in s["Action"]
                   for s in allows(doc))  # fmt: skip


def test_releasing_warm_pools_changes_training_jobs_and_nothing_else() -> None:
    grants = by_action(document())
    release = grants["sagemaker:UpdateTrainingJob"]
    assert release["Action"] == ["sagemaker:UpdateTrainingJob"]  # a statement of its own
    assert release["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:training-job/*",
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/*",
    ]
    assert not any(
        "training-job" in resource
        for action, statement in grants.items()
        if action.startswith("sagemaker:")
        and not is_read_only(action)
        and action != "sagemaker:UpdateTrainingJob"
        for resource in statement["Resource"]
    )
    only = scoped_document(["scan", "release-warm-pools"], ["us-east-1"], "123456789012")
    changes = {a for s in only["Statement"] for a in s["Action"] if not is_read_only(a)}
    assert changes == {"sagemaker:UpdateTrainingJob"}
    assert analyze_policy_string(json.dumps(only)).findings == []


APP = "arn:aws:sagemaker:us-east-1:123456789012:app/d-abc123def456/alice/jupyterlab/default"
NOTEBOOK = "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/dev-a"


@pytest.mark.parametrize(
    ("capability", "action", "arn"),
    [
        # Studio reads each app's tags (the protect and owner tags) before judging it.
        ("studio", "sagemaker:ListTags", APP),
        ("studio", "sagemaker:DescribeApp", APP),
        ("studio", "sagemaker:DeleteApp", APP),
        ("studio", "sagemaker:AddTags", APP),  # an announcement's deadline
        ("studio", "sagemaker:DeleteTags", APP),  # a cancelled one's
        # a scheduled stop reads the instance and its tags again at the last moment
        ("schedule", "sagemaker:DescribeNotebookInstance", NOTEBOOK),
        ("schedule", "sagemaker:ListTags", NOTEBOOK),
        ("scan", "sagemaker:ListTags", "arn:aws:sagemaker:us-east-1:123456789012:training-job/t"),
        ("enforce", "sagemaker:ListTags", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"),
    ],
)
def test_the_arns_each_capability_calls_are_granted(capability: str, action: str, arn: str) -> None:
    """Each call a capability makes is allowed on the ARN it makes it on (IAM wildcards)."""
    doc = scoped_document([capability], ["us-east-1"], "123456789012")
    allowed = [
        resource
        for statement in allows(doc)
        if action in statement["Action"]
        for resource in (
            [statement["Resource"]]
            if isinstance(statement["Resource"], str)
            else statement["Resource"]
        )
        if fnmatch.fnmatchcase(arn, resource)
    ]
    assert allowed, f"{action} on {arn} is not granted by the {capability} policy"
    # and no guard refuses it on an ordinary resource (no protect tag, no exclude)
    assert decide(doc, Request.on(action, arn)) == "allow"


def test_a_price_file_in_s3_is_readable_by_the_scan_policy_and_nothing_else(
    cli: Cli, tmp_path: Path
) -> None:
    """`prices: s3://...` in the policy: the scan capability (every command that prices
    scans) may read that one object, in the policy's partition; no price file, no S3."""
    path = tmp_path / "p.yaml"
    path.write_text("regions: [cn-north-1]\nprices: s3://my-prices-cn/sagesaver/cn.json\n")
    result = cli("permissions", "--policy", str(path))
    assert result.exit_code == 0, result.stderr
    documents = json.loads(result.stdout)
    reads = {
        name: [s for s in doc["Statement"] if "s3:GetObject" in s["Action"]]
        for name, doc in documents.items()
    }
    assert reads.pop("scan") == [
        {
            "Sid": "PriceFile",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": "arn:aws-cn:s3:::my-prices-cn/sagesaver/cn.json",
        }
    ]
    assert all(found == [] for found in reads.values())
    path.write_text("regions: [cn-north-1]\n")
    plain = cli("permissions", "--policy", str(path), "-c", "scan")
    assert plain.exit_code == 0 and "s3:" not in plain.stdout
