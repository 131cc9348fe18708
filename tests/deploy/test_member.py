"""The role a member account needs for a fan-out (`deploy render --member-role`): trusted by the
caller's role alone, from its organisation, with the external id; granted what a run does there
and refused what SageSaver refuses; checked by cfn-lint (aws and aws-cn) and parliament."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string

from sagesaver.core.errors import InputError
from sagesaver.core.permissions import capability_documents
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.deploy.member import MEMBER_ROLE, member_capabilities, member_role_template
from tests.conftest import Cli

CALLER = "arn:aws:iam::111122223333:role/sagesaver-central"
CHINA_CALLER = "arn:aws-cn:iam::111122223333:role/ops/sagesaver-central"
ORG = "o-a1b2c3d4e5"
MEMBER = "444455556666"
# Deleting endpoints (with their configurations) selected by tag, releasing warm pools.
ACTING = """
regions: [us-east-1, eu-west-1]
endpoints:
  action: delete
  delete_config: true
  exclude: ["prod-*"]
  tags: {owner: "${team}"}
jobs:
  warm_pools: {action: release}
"""
CHINA = """
regions: [cn-north-1, cn-northwest-1]
endpoints: {action: delete}
"""


def acting() -> Policy:
    return parse_policy(ACTING, "acting")


def role_of(template: dict[str, Any]) -> dict[str, Any]:
    [(logical, role)] = template["Resources"].items()
    assert logical == MEMBER_ROLE and role["Type"] == "AWS::IAM::Role"
    properties: dict[str, Any] = role["Properties"]
    return properties


def concrete(value: Any, account: str = MEMBER) -> Any:
    """The template's ``Fn::Sub`` resolved as CloudFormation does in ``account``."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            text: str = value["Fn::Sub"]
            return text.replace("${AWS::AccountId}", account).replace("${!", "${")
        return {k: concrete(v, account) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(v, account) for v in value]
    return value


def test_the_member_role_trusts_only_the_caller_from_its_organisation() -> None:
    role = role_of(member_role_template(Policy(), CALLER, ORG))
    assert role["RoleName"] == "SageSaverExecution"
    assert role["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyTheCallerFromItsOrganisation",
                "Effect": "Allow",
                "Principal": {"AWS": CALLER},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
            }
        ],
    }
    with_id = role_of(member_role_template(Policy(), CALLER, ORG, external_id="sagesaver-7f3e"))
    [trust] = with_id["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": ORG, "sts:ExternalId": "sagesaver-7f3e"}
    }


def test_the_role_name_may_have_a_path() -> None:
    role = role_of(member_role_template(Policy(), CALLER, ORG, role_name="ml/ops/Saver"))
    assert (role["RoleName"], role["Path"]) == ("Saver", "/ml/ops/")
    assert "Path" not in role_of(member_role_template(Policy(), CALLER, ORG))


@pytest.mark.parametrize(
    ("text", "capabilities"),
    [
        ("{}", ["scan"]),
        ("endpoints: {action: delete}", ["scan", "enforce"]),
        (ACTING, ["scan", "enforce", "release-warm-pools"]),
    ],
)
def test_its_policies_are_what_a_run_does_in_a_member(text: str, capabilities: list[str]) -> None:
    """The member does the reads and the acts; the caller keeps the digest (its topic), the
    prices, the organisation's accounts and the AssumeRole itself."""
    policy = parse_policy(text, "p")
    assert member_capabilities(policy) == capabilities
    role = role_of(member_role_template(policy, CALLER, ORG))
    expected = capability_documents(
        capabilities,
        regions=policy.regions or ["*"],
        account=MEMBER,
        partition="aws",
        delete_config=policy.endpoints.delete_config,
        tags=policy.endpoints.tags,
        policy=policy,
    )
    assert {p["PolicyName"]: concrete(p["PolicyDocument"]) for p in role["Policies"]} == {
        f"sagesaver-{name}": document for name, document in expected.items()
    }


def test_the_guards_are_explicit_denies_in_the_member_too() -> None:
    role = role_of(member_role_template(acting(), CALLER, ORG))
    denies = {
        s["Sid"]: s
        for p in role["Policies"]
        for s in concrete(p["PolicyDocument"])["Statement"]
        if s["Effect"] == "Deny"
    }
    assert {
        "DenyProtectedEndpoints",
        "DenyExcludedEndpoints",
        "DenyProtectedWarmPools",
        "DenyProtectTagChanges",
    } <= set(denies)
    assert (
        f"arn:aws:sagemaker:eu-west-1:{MEMBER}:endpoint/prod-*"
        in (denies["DenyExcludedEndpoints"]["Resource"])
    )
    granted = {
        a for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] for a in s["Action"]
    }
    assert not granted & {"sts:AssumeRole", "sns:Publish", "organizations:ListAccounts"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"caller_role": "arn:aws:iam::111122223333:user/alice"}, "--caller-role"),
        ({"caller_role": "*"}, "--caller-role"),
        ({"caller_role": "arn:aws:iam::1:role/x"}, "--caller-role"),
        ({"caller_role": "arn:aws:iam::111122223333:role/*"}, "--caller-role"),
        ({"caller_role": CHINA_CALLER}, "partition"),  # the policy's regions are aws
        ({"org_id": "o-short"}, "--org-id"),
        ({"org_id": "r-a1b2c3d4e5"}, "--org-id"),
        ({"org_id": "o-A1B2C3D4E5"}, "--org-id"),
        ({"external_id": "has space"}, "--external-id"),
        ({"role_name": "bad role!"}, "--role-name"),
        ({"region": "cn-north-1"}, "partition"),
    ],
)
def test_bad_member_role_input_is_an_input_error(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"caller_role": CALLER, "org_id": ORG, **options}
    with pytest.raises(InputError, match=message):
        member_role_template(acting(), **arguments)


def test_policies_larger_than_iam_takes_for_one_role_are_refused() -> None:
    regions = "us-east-1, us-east-2, us-west-1, us-west-2, eu-west-1, eu-central-1"
    many = ACTING.replace("us-east-1, eu-west-1", regions)
    with pytest.raises(InputError, match="more than IAM's 10240"):
        member_role_template(parse_policy(many, "many"), CALLER, ORG)
    everywhere = "\n".join(line for line in ACTING.splitlines() if "regions" not in line)
    member_role_template(parse_policy(everywhere, "everywhere"), CALLER, ORG)


def test_a_china_caller_gets_china_arns() -> None:
    role = role_of(member_role_template(parse_policy(CHINA, "china"), CHINA_CALLER, ORG))
    resources = json.dumps(concrete(role["Policies"]))
    assert f"arn:aws-cn:sagemaker:cn-north-1:{MEMBER}:endpoint/*" in resources
    assert "arn:aws:" not in resources


# --- cfn-lint and parliament -------------------------------------------------------------


VARIANTS = {
    "aws": (ACTING, CALLER, "us-east-1"),
    "aws-cn": (CHINA, CHINA_CALLER, "cn-north-1"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cfn_lint_finds_nothing(variant: str, tmp_path: Path) -> None:
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    text, caller, region = VARIANTS[variant]
    template = member_role_template(
        parse_policy(text, variant), caller, ORG, external_id="sagesaver-7f3e", region=region
    )
    path = tmp_path / "member.json"
    path.write_text(json.dumps(template, indent=2))
    matches = lint_file(path, ManualArgs(regions=[region]))
    assert [f"{m.rule.id} {m.message} {m.path}" for m in matches] == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_parliament_finds_nothing(variant: str) -> None:
    text, caller, _ = VARIANTS[variant]
    role = role_of(
        member_role_template(parse_policy(text, variant), caller, ORG, external_id="x-1")
    )
    for inline in role["Policies"]:
        document = json.dumps(concrete(inline["PolicyDocument"]))
        findings = analyze_policy_string(document).findings
        assert findings == [], (inline["PolicyName"], [(f.issue, f.detail) for f in findings])
    # The trust policy is the role's resource policy: parliament reads it with the role as
    # its resource, and checks its condition keys against sts:AssumeRole's.
    partition = caller.split(":")[1]
    trust = json.loads(json.dumps(role["AssumeRolePolicyDocument"]))
    for statement in trust["Statement"]:
        statement["Resource"] = f"arn:{partition}:iam::{MEMBER}:role/SageSaverExecution"
    assert analyze_policy_string(json.dumps(trust)).findings == []


# --- the command -------------------------------------------------------------------------


def test_deploy_render_member_role(cli: Cli, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ACTING)
    result = cli(
        "deploy", "render", "--member-role", "--policy", str(policy), "--caller-role", CALLER,
        "--org-id", ORG, "--external-id", "sagesaver-7f3e", "--role-name", "SageSaverMember",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    template = json.loads(result.stdout)
    assert template == member_role_template(
        acting(), CALLER, ORG, role_name="SageSaverMember", external_id="sagesaver-7f3e"
    )
    assert template["Outputs"]["RoleArn"]["Value"] == {"Fn::GetAtt": [MEMBER_ROLE, "Arn"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--member-role", "--org-id", ORG], "--member-role needs --caller-role"),
        (["--member-role", "--caller-role", CALLER], "--member-role needs --org-id"),
        (["--member-role", "--caller-role", CALLER, "--org-id", "o-1"], "--org-id"),
        (
            ["--member-role", "--caller-role", CHINA_CALLER, "--org-id", ORG, "-r", "us-east-1"],
            "partition",
        ),
        (
            ["--member-role", "--caller-role", CALLER, "--org-id", ORG, "--email", "a@b.example"],
            "--email",
        ),
        (["--caller-role", CALLER, "--org-id", ORG], "--caller-role goes with --member-role"),
    ],
)
def test_bad_member_role_options_exit_2(cli: Cli, args: list[str], message: str) -> None:
    result = cli("deploy", "render", *args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and result.stdout == ""
