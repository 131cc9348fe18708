"""The ledger key recognises SageSaver's own roles by their tags, not by the names
CloudFormation generates for them: with the longest stack name ``deploy apply`` accepts (50
characters), each role of the single-account stack and of the organisation stack may use the
key for exactly what it could before, the roles of another stack and the account's untagged
roles may not, and the operators still may only seal and open backups directly.

The key policy is evaluated by tests/iam_evaluator.py (:func:`decide_for`) for callers whose
ARNs are the role names CloudFormation would generate. The rule it follows is not documented:
CloudFormation "generates a unique physical ID" (https://docs.aws.amazon.com/AWSCloudFormation/
latest/UserGuide/aws-properties-name.html), an IAM role name has at most 64 characters, and
names observed are ``<stack>-<logical id>-<12 or 13 random characters>`` with, when that is too
long, the stack name shortened (``my-stack-na-MyFunctionRole-X1X2X3X4X5X6X``,
https://github.com/aws/serverless-application-model/issues/3261) or the logical id shortened
(https://gist.github.com/christianklotz/468a240a75f4ae3e73bd52722f926acb). The test therefore
tries each way of shortening, and the key must not care which.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from sagesaver.core.policy import parse_policy
from sagesaver.core.sealing import CONTEXT_BACKUP
from sagesaver.deploy.names import LEDGER_KEY, SCHEDULE_TICK
from sagesaver.deploy.organisation import organisation_template
from sagesaver.deploy.resources import StackOptions
from sagesaver.deploy.template import render_template
from tests.iam_evaluator import Caller, Request, decide_for

ACCOUNT = "123456789012"
STRANGER = "210987654321"
STACK = "sagesaver-ml-platform-production-eu-central-team42"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_MLPlatformAdmin_*"
OPERATOR_SESSION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_MLPlatformAdmin_0a1b2c3d"
# IAM's limit on a role's name; the random part CloudFormation appends (12 characters on older
# stacks, 13 on newer ones).
ROLE_NAME_MAX = 64
SUFFIXES = ("Q1W2E3R4T5Y6", "Q1W2E3R4T5Y6U")
PARTITIONS = {
    "aws": ("eu-central-1", "amazonaws.com"),
    "aws-cn": ("cn-north-1", "amazonaws.com.cn"),
    "aws-us-gov": ("us-gov-west-1", "amazonaws.com"),
}

PARKING = """
endpoints: {action: delete, tags: {team: ml}}
schedules:
  office:
    timezone: Europe/Berlin
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
    resources: [notebooks, endpoints]
"""
NOT_PARKING = PARKING.replace("    resources: [notebooks, endpoints]\n", "")


def test_the_stack_name_is_the_longest_deploy_apply_accepts() -> None:
    assert len(STACK) == 50


# --- the names CloudFormation would generate --------------------------------------------------


def generated_role_names(stack: str, logical_id: str) -> list[str]:
    """The names CloudFormation may give the role ``logical_id`` of ``stack``: the full
    ``<stack>-<logical id>-<suffix>`` when it fits, else with the stack name, the logical id,
    or both (evenly) shortened to fit in 64 characters."""
    names: list[str] = []
    for suffix in SUFFIXES:
        full = f"{stack}-{logical_id}-{suffix}"
        if len(full) <= ROLE_NAME_MAX:
            names.append(full)
            continue
        room = ROLE_NAME_MAX - len(suffix) - 2  # for the stack name and the logical id
        if room - len(logical_id) >= 1:
            names.append(f"{stack[: room - len(logical_id)]}-{logical_id}-{suffix}")
        if room - len(stack) >= 1:
            names.append(f"{stack}-{logical_id[: room - len(stack)]}-{suffix}")
        half = room // 2
        names.append(f"{stack[:half]}-{logical_id[: room - half]}-{suffix}")
    return names


def test_the_generated_names_are_valid_role_names_and_lose_the_stacks_prefix() -> None:
    """The model of the generated names: IAM's limits hold, and with a 50-character stack name
    no name keeps ``<stack>-`` (the old key policy's pattern) whole."""
    for logical_id in ("IdleScanFunctionRole", f"{SCHEDULE_TICK}Role", "SchedulerRole"):
        names = generated_role_names(STACK, logical_id)
        assert len(names) >= 2
        for name in names:
            assert len(name) <= ROLE_NAME_MAX and re.fullmatch(r"[\w+=,.@-]+", name), name
            assert not name.startswith(f"{STACK}-"), name
            assert not name.startswith(f"{STACK}-{SCHEDULE_TICK}Role-"), name
    # A short stack name keeps the whole name.
    assert generated_role_names("ss", "SchedulerRole") == [
        f"ss-SchedulerRole-{s}" for s in SUFFIXES
    ]


# --- the key policy and the roles, as CloudFormation resolves them ------------------------------


def resolve(value: Any, stack: str, partition: str) -> Any:
    """``value`` with the pseudo parameters resolved for ``stack`` in ACCOUNT (the key policy
    and the roles' tags refer to nothing else)."""
    region, suffix = PARTITIONS[partition]
    pseudo = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::StackName": stack,
        "AWS::URLSuffix": suffix,
    }
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return pseudo[value["Ref"]]
        if set(value) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}!]+)\}", lambda m: pseudo[m.group(1)], value["Fn::Sub"])
        return {k: resolve(v, stack, partition) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, stack, partition) for v in value]
    return value


def key_policy(template: dict[str, Any], partition: str = "aws") -> dict[str, Any]:
    document: dict[str, Any] = resolve(
        template["Resources"][LEDGER_KEY]["Properties"]["KeyPolicy"], STACK, partition
    )
    return document


def role_callers(
    template: dict[str, Any], stack: str, partition: str = "aws", account: str = ACCOUNT
) -> dict[str, list[Caller]]:
    """Each role of ``template`` deployed as ``stack``: one caller per name CloudFormation may
    give it, carrying the role's tags."""
    callers: dict[str, list[Caller]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        tags = resolve(resource["Properties"]["Tags"], stack, partition)
        tag_map = {t["Key"]: t["Value"] for t in tags}
        callers[logical_id] = [
            Caller(f"arn:{partition}:iam::{account}:role/{name}", tag_map)
            for name in generated_role_names(stack, logical_id)
        ]
    return callers


def requests(partition: str = "aws", account: str = ACCOUNT) -> dict[str, Request]:
    """What a caller of ``account`` may ask of the key: through DynamoDB (the table's own data
    keys and its grant) or directly (a backup's envelope, with its encryption context, or
    without one)."""
    region, suffix = PARTITIONS[partition]
    key = f"arn:{partition}:kms:{region}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    dynamodb: dict[str, Any] = {
        "kms:CallerAccount": account,
        "kms:ViaService": f"dynamodb.{region}.{suffix}",
        "kms:EncryptionContextKeys": ["aws:dynamodb:tableName", "aws:dynamodb:subscriberId"],
    }
    backup: dict[str, Any] = {
        "kms:CallerAccount": account,
        f"kms:EncryptionContext:{CONTEXT_BACKUP}": "ledger-backup-1",
        "kms:EncryptionContextKeys": [CONTEXT_BACKUP],
    }
    direct: dict[str, Any] = {"kms:CallerAccount": account}
    grant = {**dynamodb, "kms:GrantIsForAWSResource": "true"}
    asked = {
        **{f"dynamodb {a}": ("kms:" + a, dynamodb) for a in DYNAMODB_USE},
        "dynamodb CreateGrant": ("kms:CreateGrant", grant),
        **{f"backup {a}": ("kms:" + a, backup) for a in ("Encrypt", "Decrypt", "GenerateDataKey")},
        "backup ReEncryptFrom": ("kms:ReEncryptFrom", backup),
        "direct DescribeKey": ("kms:DescribeKey", direct),
        "direct Encrypt": ("kms:Encrypt", direct),
        "direct Decrypt": ("kms:Decrypt", direct),
        "direct Sign": ("kms:Sign", direct),
    }
    return {name: Request(action, key, context) for name, (action, context) in asked.items()}


DYNAMODB_USE = ("Decrypt", "Encrypt", "GenerateDataKey", "ReEncryptFrom", "DescribeKey")
# What each kind of caller was allowed when the key matched SageSaver's roles by the stack's
# name prefix (and the schedule tick's role by ``<stack>-ScheduleTickFunctionRole-*``), in a
# stack whose names CloudFormation did not shorten.
EVERY_CALLER_OF_THE_ACCOUNT = {"dynamodb CreateGrant"}  # DynamoDB's grant, as DynamoDB asks
SAGESAVER_ROLE = {
    *(f"dynamodb {a}" for a in DYNAMODB_USE),
    *EVERY_CALLER_OF_THE_ACCOUNT,
    "backup Encrypt",
    "direct DescribeKey",
}
OPERATOR_ALLOWED = SAGESAVER_ROLE | {"backup Decrypt"}


def allowed(document: Mapping[str, Any], caller: Caller, partition: str = "aws") -> set[str]:
    return {
        name
        for name, request in requests(partition).items()
        if decide_for(document, request, caller) == "allow"
    }


# --- the single-account stack -----------------------------------------------------------------


def render(text: str, region: str, operators: tuple[str, ...] = (OPERATOR,)) -> dict[str, Any]:
    policy = parse_policy(text, "p.yaml")
    options = StackOptions(operators=operators)
    return render_template(
        policy, "code", "sagesaver.zip", ["ops@example.com"], region=region, options=options
    )


@pytest.mark.parametrize("partition", sorted(PARTITIONS))
@pytest.mark.parametrize("text", [PARKING, NOT_PARKING], ids=["parking", "not-parking"])
def test_each_role_of_a_long_named_stack_keeps_what_it_was_allowed(
    partition: str, text: str
) -> None:
    region, _ = PARTITIONS[partition]
    operator = OPERATOR.replace("arn:aws:", f"arn:{partition}:")
    template = render(text, region, (operator,))
    document = key_policy(template, partition)
    parks = text == PARKING
    callers = role_callers(template, STACK, partition)
    assert set(callers) >= {"IdleScanFunctionRole", f"{SCHEDULE_TICK}Role"}
    for logical_id, named in callers.items():
        expected = set(SAGESAVER_ROLE)
        if parks and logical_id == f"{SCHEDULE_TICK}Role":
            expected.add("backup Decrypt")  # it restores the endpoints it parked
        for caller in named:
            assert allowed(document, caller, partition) == expected, (logical_id, caller.arn)
    session = Caller(OPERATOR_SESSION_ROLE.replace("arn:aws:", f"arn:{partition}:"))
    assert allowed(document, session, partition) == OPERATOR_ALLOWED


def test_the_operators_may_only_seal_and_open_backups_directly() -> None:
    document = key_policy(render(PARKING, "eu-central-1"))
    operator = Caller(OPERATOR_SESSION_ROLE)
    direct = {n for n in allowed(document, operator) if not n.startswith("dynamodb ")}
    assert direct == {"backup Encrypt", "backup Decrypt", "direct DescribeKey"}
    # Tagged as one of the stack's roles or not, an operator is an operator.
    tagged = Caller(OPERATOR_SESSION_ROLE, {"sagesaver:stack": STACK})
    assert allowed(document, tagged) == OPERATOR_ALLOWED
    # Without operators, nobody but the schedule tick's role opens a backup.
    alone = key_policy(render(PARKING, "eu-central-1", operators=()))
    assert allowed(alone, operator) == EVERY_CALLER_OF_THE_ACCOUNT
    openers = {
        logical_id
        for logical_id, named in role_callers(render(PARKING, "eu-central-1", ()), STACK).items()
        if all("backup Decrypt" in allowed(alone, c) for c in named)
    }
    assert openers == {f"{SCHEDULE_TICK}Role"}


def test_roles_of_another_stack_and_untagged_roles_are_refused() -> None:
    template = render(PARKING, "eu-central-1")
    document = key_policy(template)
    # Another stack, whose name begins like this one's: the old prefix matched its roles.
    for other in (f"{STACK}-staging", "sagesaver-ml-platform-staging"):
        for logical_id, named in role_callers(template, other).items():
            for caller in named:
                assert allowed(document, caller) == EVERY_CALLER_OF_THE_ACCOUNT, (
                    logical_id,
                    caller.arn,
                )
    # A role of the account named like one of the stack's, without its tags; or carrying the
    # schedule tick's function tag but no stack tag.
    for tags in ({}, {"sagesaver:function": SCHEDULE_TICK}, {"sagesaver:stack": STACK.upper()}):
        untagged = Caller(f"arn:aws:iam::{ACCOUNT}:role/{STACK}-IdleScanFunctionRole-Q1W2", tags)
        assert allowed(document, untagged) == EVERY_CALLER_OF_THE_ACCOUNT, tags
    # An IAM user tagged as the stack's: only roles are SageSaver's.
    user = Caller(f"arn:aws:iam::{ACCOUNT}:user/mallory", {"sagesaver:stack": STACK})
    assert allowed(document, user) == EVERY_CALLER_OF_THE_ACCOUNT
    # The stack's own roles, deployed in another account: kms:CallerAccount refuses them.
    for named in role_callers(template, STACK, account=STRANGER).values():
        for caller in named:
            for name, request in requests(account=STRANGER).items():
                assert decide_for(document, request, caller) == "implicit-deny", name
    # The tick's decrypt is its own: the idle scan's role tagged as another function may not.
    [scan] = role_callers(template, STACK)["IdleScanFunctionRole"][:1]
    assert "backup Decrypt" not in allowed(document, scan)
    assert scan.tags["sagesaver:function"] == "IdleScanFunction"


def test_every_role_of_the_stack_is_tagged_with_the_stack_and_its_function() -> None:
    template = render(PARKING, "eu-central-1")
    roles = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {"IdleScanFunctionRole", f"{SCHEDULE_TICK}Role", "SchedulerRole"}
    for logical_id, role in roles.items():
        tags = {t["Key"]: t["Value"] for t in role["Properties"]["Tags"]}
        assert tags["sagesaver:stack"] == {"Ref": "AWS::StackName"}
        if logical_id != "SchedulerRole":  # it invokes the functions, it serves none
            assert tags["sagesaver:function"] == logical_id.removesuffix("Role")
            function = template["Resources"][tags["sagesaver:function"]]
            assert function["Properties"]["Role"] == {"Fn::GetAtt": [logical_id, "Arn"]}


# --- the organisation stack -------------------------------------------------------------------


@pytest.mark.parametrize("partition", sorted(PARTITIONS))
def test_the_organisation_stacks_roles_keep_what_they_were_allowed(partition: str) -> None:
    region, _ = PARTITIONS[partition]
    text = f"regions: [{region}]\nendpoints: {{action: delete}}\n"
    operator = OPERATOR.replace("arn:aws:", f"arn:{partition}:")
    template = organisation_template(
        parse_policy(text, "org.yaml"),
        emails=["ops@example.com"],
        region=region,
        options=StackOptions(operators=(operator,)),
    )
    document = key_policy(template, partition)
    callers = role_callers(template, STACK, partition)
    assert len(callers) == 6  # four for the functions, the state machine's, the scheduler's
    for logical_id, named in callers.items():
        for caller in named:
            # It parks nothing: no role opens a backup.
            assert allowed(document, caller, partition) == SAGESAVER_ROLE, (logical_id, caller)
    # Each function's role names the functions it serves.
    served = {
        k: {t["Key"]: t["Value"] for t in v["Properties"]["Tags"]}.get("sagesaver:function")
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::IAM::Role"
    }
    for function, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            [role, _] = resource["Properties"]["Role"]["Fn::GetAtt"]
            assert function in str(served[role]).split(" "), (function, role)
    for other in role_callers(template, f"{STACK}-staging", partition).values():
        assert all(allowed(document, c, partition) == EVERY_CALLER_OF_THE_ACCOUNT for c in other)
    session = Caller(OPERATOR_SESSION_ROLE.replace("arn:aws:", f"arn:{partition}:"))
    assert allowed(document, session, partition) == OPERATOR_ALLOWED
