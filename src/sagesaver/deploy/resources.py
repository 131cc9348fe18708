"""The stack's resources beyond IAM: the schedules (EventBridge Scheduler, or EventBridge
rules where Scheduler is not offered), the ledger table, the topic's key, the error alarms, and
each function with its log group, role and environment.

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sagesaver.core.cron import ScheduleError
from sagesaver.core.errors import InputError
from sagesaver.core.partitions import service_principal
from sagesaver.core.policy import Policy
from sagesaver.core.records import EXPIRES_ATTRIBUTE, TABLE_KEYS
from sagesaver.core.rules.schedules import tick_invocations
from sagesaver.core.sealing import CONTEXT_BACKUP, CONTEXT_PREFIX
from sagesaver.deploy.iam import (
    FUNCTION_TAG,
    STACK_TAG,
    TOPIC_KEY_ACTIONS,
    FunctionSpec,
    _function_statements,
    _role,
)
from sagesaver.deploy.names import (
    DEAD_LETTERS,
    IDLE_SCAN,
    LEDGER_KEY,
    SCAN_SCHEDULE,
    SCHEDULE_TICK,
    SCHEDULER_ROLE,
    TABLE,
    TOPIC,
    TOPIC_KEY,
    Json,
    _arn_of,
    _log_group_id,
    _logical,
    _ref,
    _role_id,
    _sub,
)

LOG_RETENTION_DAYS = 30
# Lambda's limit on the total size of a function's environment variables.
ENV_LIMIT_BYTES = 4096
# The longest values CloudFormation can substitute: a topic ARN (partition, region, account
# and a generated name of up to 256 characters) and a generated table name.
TOPIC_ARN_MAX = 320
TABLE_NAME_MAX = 255
REGION_MAX = 20

Tick = Literal["boundaries", "rate"]

# A schedule's invocation that Lambda refuses (throttled, or the service briefly unavailable)
# is tried again for up to 15 minutes, then kept in the dead-letter queue (whose depth raises
# an alarm). Later runs do what a lost one would have: boundaries stay due, idle endpoints
# stay idle.
RETRY_POLICY: Json = {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 900}
SIGNING_RE = re.compile(
    r"arn:(?P<partition>aws(?:-cn|-us-gov)?):lambda:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):"
    r"\d{12}:code-signing-config:csc-[a-z0-9]{17}"
)
OPERATOR_RE = re.compile(r"arn:(?P<partition>aws(?:-cn|-us-gov)?):iam::\d{12}:(role|user)/\S+")


@dataclass(frozen=True)
class StackOptions:
    """What a stack may add beyond the policy.

    ``code_version``: the S3 object version of the package (``S3ObjectVersion``), so that a
    later upload under the same key changes nothing until the stack is updated;
    ``signing``: a Lambda code signing configuration ARN (``CodeSigningConfigArn``);
    ``reserved_concurrency``: reserve executions per function (default none: reserving fails
    on accounts whose unreserved concurrency is at its minimum, and the ledger's leases already
    keep two runs off one resource); ``operators``: IAM role or user ARNs (``*`` allowed, as
    in ``ArnLike``) who may read the ledger table's key, for ``sagesaver restore`` and
    ``backups`` from a laptop.
    """

    code_version: str | None = None
    signing: str | None = None
    reserved_concurrency: int | None = None
    operators: tuple[str, ...] = ()


def check_options(options: StackOptions, partition: str | None, region: str | None) -> None:
    """Raise :class:`InputError` naming the first bad option; ``partition`` and ``region``
    are the stack's, when known."""
    if options.reserved_concurrency is not None and options.reserved_concurrency < 1:
        raise InputError(
            f"reserved concurrency {options.reserved_concurrency}: reserve at least 1 "
            "execution, or leave it out"
        )
    if options.code_version is not None and not options.code_version.strip():
        raise InputError("the code version must not be empty (an S3 object version id)")
    arns = [("operator", operator, OPERATOR_RE) for operator in options.operators]
    if options.signing is not None:
        arns.insert(0, ("code signing configuration", options.signing, SIGNING_RE))
    for label, arn, shape in arns:
        match = shape.fullmatch(arn)
        if match is None:
            raise InputError(f"{label} {arn!r} is not an ARN of the expected form")
        if partition is not None and match.group("partition") != partition:
            raise InputError(
                f"{label} {arn!r} is of partition {match.group('partition')}, the stack of "
                f"partition {partition}"
            )
        found = match.groupdict().get("region")
        if region is not None and found is not None and found != region:
            raise InputError(
                f"{label} {arn!r} is of region {found}, the stack's {region}: Lambda uses a "
                "code signing configuration of its own region only"
            )


def _function_name(spec: FunctionSpec) -> Json:
    return _sub(f"${{AWS::StackName}}-{spec.name}")


def _schedule(
    description: str,
    expression: str,
    target: str,
    payload: Json | None = None,
    timezone: str | None = None,
) -> Json:
    target_json: Json = {
        "Arn": _arn_of(target),
        "RoleArn": _arn_of(SCHEDULER_ROLE),
        "RetryPolicy": dict(RETRY_POLICY),
        "DeadLetterConfig": {"Arn": _arn_of(DEAD_LETTERS)},
    }
    if payload is not None:
        target_json["Input"] = json.dumps(payload, sort_keys=True)
    properties: Json = {
        "Description": description,
        "ScheduleExpression": expression,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": target_json,
    }
    if timezone is not None:
        properties["ScheduleExpressionTimezone"] = timezone
    return {"Type": "AWS::Scheduler::Schedule", "Properties": properties}


def _rate(minutes: int) -> str:
    return f"rate({minutes} minute{'s' if minutes != 1 else ''})"


def _tick_schedules(policy: Policy, tick: Tick, tick_minutes: int) -> dict[str, Json]:
    """The schedules that run the schedule tick (see :mod:`sagesaver.deploy.template`)."""
    if tick == "rate":
        return {
            "ScheduleTickSchedule": _schedule(
                f"SageSaver: schedule tick every {tick_minutes} minutes",
                _rate(tick_minutes),
                SCHEDULE_TICK,
                {},
            )
        }
    try:
        invocations = tick_invocations(policy)
    except ScheduleError as exc:
        raise InputError(str(exc)) from exc
    schedules: dict[str, Json] = {}
    for tick_run in invocations:
        # The logical ids of earlier versions, so that updating a stack keeps its schedules.
        label = (tick_run.transition or "enforce").capitalize()
        index = "" if tick_run.transition is None else str(tick_run.index)
        schedules[f"{_logical('Tick', tick_run.schedule)}{label}{index}"] = _schedule(
            tick_run.description,
            tick_run.expression,
            SCHEDULE_TICK,
            tick_run.payload,
            tick_run.timezone,
        )
    return schedules


def _ledger_table() -> Json:
    """The stack's own ledger table (when the policy names none), under its own key
    (:func:`_ledger_key`), with deletion protection."""
    return {
        "Type": "AWS::DynamoDB::Table",
        # The ledger holds the backups that `sagesaver restore` needs: keep it.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            **TABLE_KEYS,
            "BillingMode": "PAY_PER_REQUEST",
            "DeletionProtectionEnabled": True,
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": _ref(LEDGER_KEY),
            },
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            # Backups expire once their deletion is recorded, with backups.keep_days (a
            # pending one has no expires_at: it never expires).
            "TimeToLiveSpecification": {"AttributeName": EXPIRES_ATTRIBUTE, "Enabled": True},
        },
    }


# Administering a key, without using it: the account cannot read the ledger through IAM alone.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)
KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
)


def _ledger_key(operators: tuple[str, ...], parks: bool = False) -> Json:
    """The ledger table's key. The backups in the ledger are what ``restore`` recreates
    endpoints from (their models' containers and environments): only SageSaver's roles and
    the named ``operators`` may use the key, and only through DynamoDB in this account.

    SageSaver's roles are recognised by their tag ``sagesaver:stack`` (the stack's name,
    ``aws:PrincipalTag``; :func:`_own_roles`), not by their names: a key policy naming the roles
    would make the key, hence the table, wait on roles whose policies name the table, and the
    names CloudFormation generates for them (``<stack>-<logical id>-<suffix>``, at most 64
    characters) are shortened, stack name included, when the stack's name is long. The
    operators keep their own statements, by ARN (``aws:PrincipalArn``)."""
    through_dynamodb = {
        "kms:CallerAccount": _ref("AWS::AccountId"),
        "kms:ViaService": _sub("dynamodb.${AWS::Region}.${AWS::URLSuffix}"),
    }
    use: list[Json] = [
        _key_allow(
            "SageSaverUsesTheLedger",
            list(KEY_USE_ACTIONS),
            _conditions({"StringEquals": through_dynamodb}, _own_roles()),
        )
    ]
    if operators:
        use.append(
            _key_allow(
                "OperatorsUseTheLedger",
                list(KEY_USE_ACTIONS),
                {"StringEquals": through_dynamodb, "ArnLike": {"aws:PrincipalArn": [*operators]}},
            )
        )
    return _kms_key(
        "SageSaver: the ledger table's key (backups of deleted endpoints)",
        # The key of a retained table: deleting it would make the backups unreadable.
        "Retain",
        list(KEY_ADMIN_ACTIONS),
        [
            *use,
            *_sealing_statements(operators, parks),
            _key_allow(
                "DynamoDBHoldsItsGrant",
                ["kms:CreateGrant", "kms:DescribeKey"],
                {
                    "StringEquals": through_dynamodb,
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            ),
        ],
    )


def _own_roles(function: str | None = None) -> Json:
    """The condition that recognises the stack's own roles (of ``function``, when given) by
    their tags (:func:`sagesaver.deploy.iam._role`), whatever names CloudFormation gave them.

    A Lambda function's requests carry its role's tags as ``aws:PrincipalTag/KEY``: a role
    session's principal tags are the tags attached to the role, plus session tags, which the
    Lambda service passes none of (https://docs.aws.amazon.com/IAM/latest/UserGuide/
    id_session-tags.html; https://docs.aws.amazon.com/IAM/latest/UserGuide/
    reference_policies_condition-keys.html#condition-keys-principaltag), and KMS key policies
    evaluate every global condition key (https://docs.aws.amazon.com/kms/latest/developerguide/
    conditions-aws.html). ``aws:PrincipalArn`` (a role's ARN for its sessions) keeps it to the
    account's roles: an IAM user tagged alike is not one of SageSaver's. Whoever may tag a role
    of the account with ``sagesaver:stack`` (``iam:TagRole``, or a session tag where a role's
    trust allows ``sts:TagSession``) can lend it the key, as creating a role named after the
    stack could before: keep those permissions, or the ``sagesaver:`` tag keys, guarded."""
    tags: Json = {f"aws:PrincipalTag/{STACK_TAG}": _ref("AWS::StackName")}
    if function is not None:
        tags[f"aws:PrincipalTag/{FUNCTION_TAG}"] = function
    return {
        "StringEquals": tags,
        "ArnLike": {
            "aws:PrincipalArn": _sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*")
        },
    }


def _conditions(*blocks: Json) -> Json:
    """One ``Condition`` of ``blocks`` (all must hold), their keys merged per operator."""
    merged: Json = {}
    for block in blocks:
        for operator, keys in block.items():
            merged.setdefault(operator, {}).update(keys)
    return merged


def _key_allow(sid: str, actions: list[str], condition: Json) -> Json:
    """A key policy statement that lets any principal for which ``condition`` holds."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": actions,
        "Resource": "*",
        "Condition": condition,
    }


def _kms_key(description: str, keep: str, administer: Any, statements: list[Json]) -> Json:
    """A rotated KMS key that the account administers (``administer``: its actions) and
    ``statements`` let use; ``keep`` is its deletion policy (``Retain`` or ``Delete``)."""
    account_root = _sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    return {
        "Type": "AWS::KMS::Key",
        "DeletionPolicy": keep,
        "UpdateReplacePolicy": keep,
        "Properties": {
            "Description": description,
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": account_root},
                        "Action": administer,
                        "Resource": "*",
                    },
                    *statements,
                ],
            },
        },
    }


def _sealing_statements(operators: tuple[str, ...], parks: bool) -> list[Json]:
    """The key used directly, not through DynamoDB: each backup's envelope
    (:mod:`sagesaver.core.sealing`). SageSaver's roles and the operators seal (``Encrypt``),
    only the operators open (``Decrypt``: restore), each only with a backup's encryption
    context (its ``sagesaver-backup`` key present, no key but SageSaver's: never DynamoDB's
    own data keys); both may describe the key. When a schedule parks endpoints (``parks``),
    the schedule function opens backups too: it restores the endpoints it parked (its role is
    recognised by its tags, ``sagesaver:function`` = ``ScheduleTickFunction``); the idle scan
    never opens one."""
    account = {"StringEquals": {"kms:CallerAccount": _ref("AWS::AccountId")}}
    context = _conditions(
        account,
        {
            "Null": {f"kms:EncryptionContext:{CONTEXT_BACKUP}": "false"},
            "ForAllValues:StringLike": {"kms:EncryptionContextKeys": f"{CONTEXT_PREFIX}*"},
        },
    )
    named = {"ArnLike": {"aws:PrincipalArn": [*operators]}}
    statements = [
        _key_allow("SageSaverSealsBackups", ["kms:Encrypt"], _conditions(context, _own_roles()))
    ]
    if operators:
        statements += [
            _key_allow("OperatorsSealBackups", ["kms:Encrypt"], _conditions(context, named)),
            _key_allow("OperatorsOpenBackups", ["kms:Decrypt"], _conditions(context, named)),
        ]
    if parks:
        statements.append(
            _key_allow(
                "ScheduleTickOpensParkedBackups",
                ["kms:Decrypt"],
                _conditions(context, _own_roles(SCHEDULE_TICK)),
            )
        )
    statements.append(
        _key_allow(
            "SageSaverDescribesTheKey", ["kms:DescribeKey"], _conditions(account, _own_roles())
        )
    )
    if operators:
        statements.append(
            _key_allow("OperatorsDescribeTheKey", ["kms:DescribeKey"], _conditions(account, named))
        )
    return statements


def _ledger_setting(policy: Policy) -> Any:
    """SAGESAVER_LEDGER: the policy's DynamoDB ledger (a team shares it with the laptops that
    run the same policy), else the stack's own table."""
    if policy.ledger_table is not None:
        return policy.ledger
    return _sub(f"dynamodb://${{{TABLE}}}")


def _environment(policy: Policy, text: str, extra_bytes: int = 0) -> Json:
    """The functions' environment; raises when it could exceed Lambda's 4 KB (with
    ``extra_bytes`` for the variables a caller adds: the organisation stack's)."""
    regions: Any = ",".join(policy.regions) if policy.regions else _ref("AWS::Region")
    variables: Json = {
        "SAGESAVER_POLICY": _sub(text),
        "SAGESAVER_APPLY": "true",
        "SAGESAVER_LEDGER": _ledger_setting(policy),
        "SAGESAVER_REGIONS": regions,
    }
    policy_bytes = len(text.encode("utf-8")) - len(f"${{{TOPIC}}}") + TOPIC_ARN_MAX
    size = (
        sum(len(key) for key in variables)
        + policy_bytes
        + len("true")
        + len("dynamodb://")
        + TABLE_NAME_MAX
        + (len(regions) if isinstance(regions, str) else REGION_MAX)
        + extra_bytes
    )
    if size > ENV_LIMIT_BYTES:
        raise InputError(
            f"the policy is {len(text.encode('utf-8'))} bytes as YAML: with the other settings "
            f"it could exceed the {ENV_LIMIT_BYTES} bytes Lambda allows for a function's "
            "environment; shorten it"
        )
    return {"Variables": variables}


def _function_resources(
    function: str,
    spec: FunctionSpec,
    policy: Policy,
    environment: Json,
    code_bucket: str,
    code_key: str,
    architecture: str,
    runtime: str,
    options: StackOptions,
    *,
    role: str | None = None,
) -> dict[str, Json]:
    """The function, its log group and its role; with ``role`` (the logical id of a role the
    caller builds, as the organisation stack does), that role and no dead-letter queue (a
    function only ever invoked synchronously)."""
    regions = policy.regions or ["${AWS::Region}"]
    code: Json = {"S3Bucket": code_bucket, "S3Key": code_key}
    if options.code_version is not None:
        code["S3ObjectVersion"] = options.code_version.strip()
    properties: Json = {
        "FunctionName": _function_name(spec),
        "Description": spec.description,
        "Runtime": runtime,
        "Architectures": [architecture],
        "Handler": spec.handler,
        "Code": code,
        "MemorySize": spec.memory_mb,
        "Timeout": spec.timeout_s,
        "DeadLetterConfig": {"TargetArn": _arn_of(DEAD_LETTERS)},
        "Role": _arn_of(role or _role_id(function)),
        "Environment": environment,
    }
    if role is not None:
        del properties["DeadLetterConfig"]
    if options.signing is not None:
        properties["CodeSigningConfigArn"] = options.signing
    if options.reserved_concurrency is not None:
        properties["ReservedConcurrentExecutions"] = options.reserved_concurrency
    resources: dict[str, Json] = {
        _log_group_id(function): {
            "Type": "AWS::Logs::LogGroup",
            # Named after the function: a retained group would block re-creating the stack.
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": _sub(f"/aws/lambda/${{AWS::StackName}}-{spec.name}"),
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
    }
    if role is None:
        resources[_role_id(function)] = _role(
            service_principal("lambda"),
            f"sagesaver-{spec.name}",
            _function_statements(function, spec, policy, regions),
            serves=function,
        )
    resources[function] = {"Type": "AWS::Lambda::Function", "Properties": properties}
    return resources


def _topic_key() -> Json:
    """The topic's KMS key: the account administers it; CloudWatch may use it to publish
    alarms to the topic (the functions get their own grant in their roles)."""
    return _kms_key(
        "SageSaver: the notification topic's key",
        "Delete",
        "kms:*",
        [
            {
                "Sid": "CloudWatchAlarmsPublish",
                "Effect": "Allow",
                "Principal": {"Service": service_principal("cloudwatch")},
                "Action": list(TOPIC_KEY_ACTIONS),
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")}},
            }
        ],
    )


def _alarm(
    description: str, namespace: str, metric: str, dimension: Json, statistic: str = "Sum"
) -> Json:
    """An alarm that tells the topic as soon as ``metric`` reaches 1 in five minutes."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [dimension],
            "Statistic": statistic,
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [_ref(TOPIC)],
        },
    }


def _errors_alarm(function: str) -> Json:
    """An alarm that tells the topic when a run of ``function`` failed (it raises then)."""
    return _alarm(
        f"SageSaver: a run of {function} failed; see its log group",
        "AWS/Lambda",
        "Errors",
        {"Name": "FunctionName", "Value": _ref(function)},
    )


def _throttles_alarm(function: str) -> Json:
    """An alarm that tells the topic when Lambda refused to run ``function`` (throttled)."""
    alarm = _errors_alarm(function)
    alarm["Properties"].update(
        AlarmDescription=f"SageSaver: Lambda throttled {function}; a run was delayed or lost "
        "(see the dead-letter queue)",
        MetricName="Throttles",
    )
    return alarm


def _dead_letters_alarm() -> Json:
    """An alarm that tells the topic when an invocation could not be delivered or run."""
    return _alarm(
        "SageSaver: an invocation of a function was never run; its event is in the dead-letter "
        "queue",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [DEAD_LETTERS, "QueueName"]}},
        "Maximum",
    )


def _rule(description: str, expression: str, target: str, payload: Json) -> Json:
    """An EventBridge rule invoking ``target`` (UTC only: rules have no time zones)."""
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": description,
            "ScheduleExpression": expression,
            "State": "ENABLED",
            "Targets": [
                {
                    "Id": target,
                    "Arn": _arn_of(target),
                    "Input": json.dumps(payload, sort_keys=True),
                    "RetryPolicy": dict(RETRY_POLICY),
                    "DeadLetterConfig": {"Arn": _arn_of(DEAD_LETTERS)},
                }
            ],
        },
    }


def _invoke_permission(function: str, rule: str) -> Json:
    """Lets the EventBridge rule ``rule`` invoke ``function`` (and nothing else)."""
    return {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": _ref(function),
            "Principal": service_principal("events"),
            "SourceArn": _arn_of(rule),
        },
    }


def _rules_instead_of_scheduler(
    policy: Policy, scan_schedule: str, tick_minutes: int
) -> dict[str, Json]:
    """Where EventBridge Scheduler is not offered: EventBridge rules run the functions, the
    idle scan at its expression (in UTC) and the schedule tick every ``tick_minutes`` (a rule
    has no time zone, so the tick runs at a rate and follows SageSaver's own DST rules)."""
    resources = {
        SCAN_SCHEDULE: _rule("SageSaver: idle endpoint scan", scan_schedule, IDLE_SCAN, {}),
        f"{IDLE_SCAN}Invoke": _invoke_permission(IDLE_SCAN, SCAN_SCHEDULE),
    }
    if policy.schedules:
        resources["ScheduleTickSchedule"] = _rule(
            f"SageSaver: schedule tick every {tick_minutes} minutes",
            _rate(tick_minutes),
            SCHEDULE_TICK,
            {},
        )
        resources[f"{SCHEDULE_TICK}Invoke"] = _invoke_permission(
            SCHEDULE_TICK, "ScheduleTickSchedule"
        )
    rules = sorted(k for k, v in resources.items() if v["Type"] == "AWS::Events::Rule")
    resources[f"{DEAD_LETTERS}Policy"] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [_ref(DEAD_LETTERS)],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "RulesKeepUndelivered",
                        "Effect": "Allow",
                        "Principal": {"Service": service_principal("events")},
                        "Action": "sqs:SendMessage",
                        "Resource": _arn_of(DEAD_LETTERS),
                        "Condition": {"ArnEquals": {"aws:SourceArn": [_arn_of(r) for r in rules]}},
                    }
                ],
            },
        },
    }
    return resources


def messaging_and_ledger(
    addresses: Sequence[str], policy: Policy, operators: tuple[str, ...], parks: bool = False
) -> dict[str, Json]:
    """What every SageSaver stack holds besides its functions: the topic under its own key,
    one e-mail subscription per address, the dead-letter queue, and (unless the policy names
    a team's table) the ledger table under its key (``parks``: the schedule function opens
    the backups it parked)."""
    resources: dict[str, Json] = {
        TOPIC_KEY: _topic_key(),
        DEAD_LETTERS: {
            "Type": "AWS::SQS::Queue",
            "Properties": {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600},
        },
        TOPIC: {
            "Type": "AWS::SNS::Topic",
            "Properties": {"DisplayName": "SageSaver", "KmsMasterKeyId": _ref(TOPIC_KEY)},
        },
    }
    for address in addresses:
        resources[_logical("EmailSubscription", address.lower())] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": _ref(TOPIC), "Protocol": "email", "Endpoint": address},
        }
    if policy.ledger_table is None:
        resources[LEDGER_KEY] = _ledger_key(operators, parks)
        resources[TABLE] = _ledger_table()
    return resources
