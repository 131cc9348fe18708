"""Issue 29, the stack's robustness and its ledger: pinned and signed code, optional reserved
concurrency, alarms on what fails silently, retried schedules with a dead-letter queue, and a
ledger table under its own key that cannot be deleted by accident."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.policy import parse_policy
from sagesaver.deploy import availability
from sagesaver.deploy.names import DEAD_LETTERS, IDLE_SCAN, SCHEDULE_TICK, SCHEDULER_ROLE, TABLE
from sagesaver.deploy.resources import LEDGER_KEY, StackOptions
from sagesaver.deploy.template import render_template

SCHEDULED = """
schedules:
  office:
    timezone: Europe/Berlin
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
"""
SIGNING = "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef0"
OPERATOR = "arn:aws:iam::123456789012:role/AWSReservedSSO_MLPlatformAdmin_*"


def render(options: StackOptions | None = None, text: str = SCHEDULED, **kw: Any) -> Any:
    policy = parse_policy(text, "p.yaml")
    extra = {"options": options} if options is not None else {}
    return render_template(policy, "code", "sagesaver.zip", ["ops@example.com"], **extra, **kw)


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in of_type(template, "AWS::Lambda::Function").items()}


# --- the functions --------------------------------------------------------------------------


def test_reserved_concurrency_is_left_out_unless_asked_for() -> None:
    """A new account's unreserved concurrency may be at its minimum (10), where reserving even
    one execution fails the stack; the ledger's leases already keep two runs off one resource.
    """
    assert all("ReservedConcurrentExecutions" not in p for p in functions(render()).values())
    chosen = functions(render(StackOptions(reserved_concurrency=1)))
    assert {k: p["ReservedConcurrentExecutions"] for k, p in chosen.items()} == {
        IDLE_SCAN: 1,
        SCHEDULE_TICK: 1,
    }


def test_code_is_pinned_to_its_object_version_and_may_be_signed() -> None:
    version = "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    template = render(StackOptions(code_version=version, signing=SIGNING))
    for properties in functions(template).values():
        assert properties["Code"] == {
            "S3Bucket": "code",
            "S3Key": "sagesaver.zip",
            "S3ObjectVersion": version,
        }
        assert properties["CodeSigningConfigArn"] == SIGNING
    plain = functions(render())[IDLE_SCAN]
    assert "S3ObjectVersion" not in plain["Code"] and "CodeSigningConfigArn" not in plain


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (StackOptions(reserved_concurrency=0), "reserved concurrency 0"),
        (StackOptions(code_version=" "), "code version"),
        (StackOptions(signing="csc-0123"), "code signing configuration 'csc-0123'"),
        (
            StackOptions(signing=SIGNING.replace("arn:aws:", "arn:aws-cn:")),
            "partition aws-cn",
        ),
        (
            StackOptions(signing=SIGNING.replace("us-east-1", "us-west-2")),
            "region us-west-2, the stack's us-east-1",
        ),
        (StackOptions(operators=("alice",)), "operator 'alice'"),
        (
            StackOptions(operators=("arn:aws:iam::123456789012:policy/x",)),
            "operator 'arn:aws:iam::123456789012:policy/x'",
        ),
    ],
)
def test_bad_options_are_input_errors(options: StackOptions, problem: str) -> None:
    with pytest.raises(InputError, match=problem.replace("(", r"\(")):
        render(options, region="us-east-1")


# --- alarms and dead letters ----------------------------------------------------------------


def test_dead_letters_and_throttles_raise_alarms_to_the_topic() -> None:
    alarms = {k: v["Properties"] for k, v in of_type(render(), "AWS::CloudWatch::Alarm").items()}
    depth = alarms["DeadLetterQueueDepthAlarm"]
    assert (depth["Namespace"], depth["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert depth["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [DEAD_LETTERS, "QueueName"]}}
    ]
    assert (depth["Threshold"], depth["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    for function in (IDLE_SCAN, SCHEDULE_TICK):
        throttled = alarms[f"{function}ThrottlesAlarm"]
        assert (throttled["Namespace"], throttled["MetricName"]) == ("AWS/Lambda", "Throttles")
        assert throttled["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_every_schedule_retries_and_keeps_what_it_could_not_deliver() -> None:
    template = render()
    schedules = of_type(template, "AWS::Scheduler::Schedule")
    assert len(schedules) >= 3  # the scan, a start and a stop
    dead_letters = {"Arn": {"Fn::GetAtt": [DEAD_LETTERS, "Arn"]}}
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        assert target["DeadLetterConfig"] == dead_letters
        retry = target["RetryPolicy"]
        assert 1 <= retry["MaximumRetryAttempts"] <= 5
        assert 60 <= retry["MaximumEventAgeInSeconds"] <= 3600
    role = template["Resources"][SCHEDULER_ROLE]["Properties"]["Policies"][0]["PolicyDocument"]
    sends = [s for s in role["Statement"] if s["Action"] == ["sqs:SendMessage"]]
    assert sends == [
        {
            "Sid": "DeadLetters",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": dead_letters["Arn"],
        }
    ]


def test_rules_instead_of_scheduler_retry_and_keep_their_dead_letters_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        availability.NOT_OFFERED, availability.SCHEDULE_TYPE, frozenset({"us-east-1"})
    )
    template = render(region="us-east-1")
    rules = of_type(template, "AWS::Events::Rule")
    assert set(rules) == {"IdleScanSchedule", "ScheduleTickSchedule"}
    for rule in rules.values():
        [target] = rule["Properties"]["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [DEAD_LETTERS, "Arn"]}}
        assert 1 <= target["RetryPolicy"]["MaximumRetryAttempts"] <= 5
    [queue_policy] = of_type(template, "AWS::SQS::QueuePolicy").values()
    [statement] = queue_policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": [r, "Arn"]} for r in sorted(rules)]}
    }
    assert queue_policy["Properties"]["Queues"] == [{"Ref": DEAD_LETTERS}]


# --- the ledger -----------------------------------------------------------------------------


def key_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    key = template["Resources"][LEDGER_KEY]["Properties"]
    assert key["EnableKeyRotation"] is True
    return {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}


DATA_ACTIONS = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:*"}


def test_the_ledger_is_under_its_own_key_and_protected_from_deletion() -> None:
    template = render(StackOptions(operators=(OPERATOR,)))
    table = template["Resources"][TABLE]["Properties"]
    assert table["DeletionProtectionEnabled"] is True
    assert table["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Ref": LEDGER_KEY},
    }
    statements = key_statements(template)
    # The account administers the key but cannot read with it through IAM alone.
    administer = statements["AccountAdministers"]
    assert not set(administer["Action"]) & DATA_ACTIONS
    # Reading and writing the ledger: only through DynamoDB, only SageSaver's roles (by their
    # stack's tag, whatever names CloudFormation gives them: naming the roles themselves would
    # make the key wait on them) and the named operators (by ARN, in their own statement).
    through_dynamodb = {
        "kms:CallerAccount": {"Ref": "AWS::AccountId"},
        "kms:ViaService": {"Fn::Sub": "dynamodb.${AWS::Region}.${AWS::URLSuffix}"},
    }
    use = statements["SageSaverUsesTheLedger"]
    assert use["Principal"] == {"AWS": "*"}
    assert {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"} <= set(use["Action"])
    assert use["Condition"] == {
        "StringEquals": {**through_dynamodb, **OWN_ROLE_TAG},
        "ArnLike": {"aws:PrincipalArn": ACCOUNT_ROLES},
    }
    operators = statements["OperatorsUseTheLedger"]
    assert operators["Principal"] == {"AWS": "*"} and operators["Action"] == use["Action"]
    assert operators["Condition"] == {
        "StringEquals": through_dynamodb,
        "ArnLike": {"aws:PrincipalArn": [OPERATOR]},
    }
    grant = statements["DynamoDBHoldsItsGrant"]
    assert grant["Action"] == ["kms:CreateGrant", "kms:DescribeKey"]
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_a_policy_with_its_own_ledger_table_gets_no_key() -> None:
    text = SCHEDULED + "ledger: dynamodb://team-ledger\n"
    template = render(text=text)
    assert TABLE not in template["Resources"] and LEDGER_KEY not in template["Resources"]


# --- issue 29: backups sealed under the ledger's key, and expiring -------------------------

DELETING = "endpoints: {action: delete}\n"
# How the key recognises SageSaver's roles: the account's roles tagged with the stack's name.
OWN_ROLE_TAG = {"aws:PrincipalTag/sagesaver:stack": {"Ref": "AWS::StackName"}}
ACCOUNT_ROLES = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
SEALING_CONTEXT = {
    "StringEquals": {"kms:CallerAccount": {"Ref": "AWS::AccountId"}},
    # Directly, the key seals and opens only SageSaver's backups (never DynamoDB's own data
    # keys): the backup's context key present, and no context key but SageSaver's.
    "Null": {"kms:EncryptionContext:sagesaver-backup": "false"},
    "ForAllValues:StringLike": {"kms:EncryptionContextKeys": "sagesaver-*"},
}


def test_the_key_seals_backups_directly_and_only_operators_open_them() -> None:
    template = render(StackOptions(operators=(OPERATOR,)), SCHEDULED + DELETING)
    statements = key_statements(template)
    own = {"ArnLike": {"aws:PrincipalArn": ACCOUNT_ROLES}}
    seal = statements["SageSaverSealsBackups"]
    assert seal["Action"] == ["kms:Encrypt"] and seal["Principal"] == {"AWS": "*"}
    assert seal["Condition"] == {
        **SEALING_CONTEXT,
        "StringEquals": {"kms:CallerAccount": {"Ref": "AWS::AccountId"}, **OWN_ROLE_TAG},
        **own,
    }
    by_arn = {**SEALING_CONTEXT, "ArnLike": {"aws:PrincipalArn": [OPERATOR]}}
    assert statements["OperatorsSealBackups"]["Action"] == ["kms:Encrypt"]
    assert statements["OperatorsSealBackups"]["Condition"] == by_arn
    # The functions never restore: only the operators may decrypt a backup.
    open_ = statements["OperatorsOpenBackups"]
    assert open_["Action"] == ["kms:Decrypt"]
    assert open_["Condition"] == by_arn
    assert [s["Sid"] for s in statements.values() if "kms:Decrypt" in s["Action"]] == [
        "SageSaverUsesTheLedger",  # through DynamoDB only
        "OperatorsUseTheLedger",
        "OperatorsOpenBackups",
    ]
    describe = statements["SageSaverDescribesTheKey"]
    assert describe["Action"] == ["kms:DescribeKey"]
    assert describe["Condition"]["ArnLike"] == own["ArnLike"]
    assert describe["Condition"]["StringEquals"] == {
        "kms:CallerAccount": {"Ref": "AWS::AccountId"},
        **OWN_ROLE_TAG,
    }
    assert statements["OperatorsDescribeTheKey"]["Condition"]["ArnLike"] == {
        "aws:PrincipalArn": [OPERATOR]
    }
    # Without operators nobody may open a backup directly, and no statement names anyone.
    alone = key_statements(render(text=SCHEDULED + DELETING))
    assert "OperatorsOpenBackups" not in alone
    assert not [
        s
        for s in alone.values()
        if "aws:PrincipalArn" in s.get("Condition", {}).get("ArnLike", {})
        and s["Condition"]["ArnLike"]["aws:PrincipalArn"] != ACCOUNT_ROLES
    ]


def test_the_deleting_function_may_seal_with_the_ledger_key_and_never_open() -> None:
    template = render(text=SCHEDULED + DELETING)
    scan = statements_by_sid(template, IDLE_SCAN)
    assert scan["LedgerKey"]["Action"] == ["kms:DescribeKey", "kms:Encrypt"]
    assert scan["LedgerKey"]["Resource"] == {"Fn::GetAtt": [LEDGER_KEY, "Arn"]}
    decrypting = [s for s in scan.values() if "kms:Decrypt" in as_list(s["Action"])]
    assert [s["Resource"] for s in decrypting] == [{"Fn::GetAtt": ["TopicKey", "Arn"]}]
    assert "LedgerKey" not in statements_by_sid(template, SCHEDULE_TICK)  # it takes no backups
    assert "LedgerKey" not in statements_by_sid(render(), IDLE_SCAN)  # notify only: none
    # The team's own table: its key is not the stack's, so any key of its region, to seal.
    shared = render(text=SCHEDULED + DELETING + "ledger: dynamodb://eu-west-1/team-ledger\n")
    assert statements_by_sid(shared, IDLE_SCAN)["LedgerKey"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:kms:eu-west-1:${AWS::AccountId}:key/*"
    }


def test_backups_expire_by_the_tables_time_to_live() -> None:
    table = render()["Resources"][TABLE]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def statements_by_sid(template: dict[str, Any], function: str) -> dict[str, dict[str, Any]]:
    role = template["Resources"][f"{function}Role"]["Properties"]["Policies"][0]
    return {s["Sid"]: s for s in role["PolicyDocument"]["Statement"] if "Sid" in s}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_hardened_template_passes_cfn_lint(tmp_path: Path) -> None:
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    options = StackOptions(
        code_version="v1", signing=SIGNING, reserved_concurrency=1, operators=(OPERATOR,)
    )
    path = tmp_path / "hardened.json"
    path.write_text(json.dumps(render(options, SCHEDULED + DELETING)))
    matches = lint_file(path, ManualArgs(regions=["us-east-1", "cn-north-1"]))
    assert [f"{m.rule.id} {m.message} {m.path}" for m in matches] == []


# --- a price file in S3 ---------------------------------------------------------------------


def test_a_price_file_in_s3_is_readable_by_the_functions_and_nothing_else() -> None:
    text = SCHEDULED + "prices: s3://my-prices-cn/sagesaver/cn.json\n"
    template = render(text=text)
    for function in (IDLE_SCAN, SCHEDULE_TICK):
        role = template["Resources"][f"{function}Role"]["Properties"]["Policies"][0]
        [grant] = [s for s in role["PolicyDocument"]["Statement"] if "s3:GetObject" in s["Action"]]
        assert grant == {
            "Sid": "PriceFile",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::my-prices-cn/sagesaver/cn.json"},
        }
    plain = json.dumps(render())
    assert "s3:GetObject" not in plain


def test_a_local_price_file_cannot_be_deployed() -> None:
    with pytest.raises(InputError, match=r"prices: /srv/prices\.json is a local file"):
        render(text=SCHEDULED + "prices: /srv/prices.json\n")


def test_the_functions_may_make_every_call_the_dynamodb_ledger_makes() -> None:
    """Read from the store's code, so a call added there cannot go ungranted (DeleteItem, which
    forgets a backup whose deletion did not happen, was): all but CreateTable, which only the
    CLI's first use of a new table makes (the stack creates its own)."""
    import re

    from sagesaver.deploy.iam import LEDGER_ACTIONS
    from sagesaver.ledger import dynamodb

    source = Path(dynamodb.__file__).read_text(encoding="utf-8")
    methods = set(re.findall(r"client\.([a-z_]+)\(", source)) - {"get_paginator", "get_waiter"}
    methods |= set(re.findall(r"get_paginator\(\"([a-z_]+)\"", source))
    operations = {"".join(p.capitalize() for p in m.split("_")) for m in methods}
    assert {"DeleteItem", "PutItem", "Query"} <= operations  # the reading works
    granted = {a.split(":", 1)[1] for a in LEDGER_ACTIONS}
    assert operations - {"CreateTable"} <= granted
