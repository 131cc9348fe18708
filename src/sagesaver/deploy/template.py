"""The CloudFormation template that runs SageSaver serverless in one account and region.

:func:`render_template` turns a policy into a template (a plain ``dict``; the caller writes it
as JSON or YAML). The stack holds:

* ``IdleScanFunction`` (``sagesaver.lambda_handlers.idle_endpoints``), run by an EventBridge
  Scheduler schedule (``scan_schedule``, hourly by default);
* ``ScheduleTickFunction`` (``sagesaver.lambda_handlers.schedule_tick``), only when the policy has
  ``schedules``, run by the schedules described below;
* an SNS topic encrypted with the AWS managed key ``alias/aws/sns``, one e-mail subscription
  per address, and the functions' policy text pointing ``notify.sns_topic_arn`` at it;
* the DynamoDB ledger (keys ``pk``/``sk``, on-demand, encrypted, point-in-time recovery;
  kept when the stack is deleted, because it holds the backups of deleted endpoints);
* the ``sagesaver-autostop`` notebook lifecycle configuration (the on-instance agent);
* one log group per function (30 days) and one IAM role per function whose inline policy
  grants exactly the actions of the capabilities :data:`FUNCTIONS` declares, on the narrowest
  resources the services allow; a role that lets EventBridge Scheduler invoke the functions.

**How the schedule tick is triggered** (``tick``):

``"boundaries"`` (the default)
    One EventBridge Scheduler schedule per start or stop expression of each policy schedule
    (:func:`sagesaver.core.cron.to_eventbridge_expressions`), evaluated in the schedule's own
    IANA time zone (``ScheduleExpressionTimezone``), with the input
    ``{"schedule": NAME, "transition": "start"|"stop"}``. The function runs within a minute
    of each start and stop moment and only then; the ledger's record of the previous run makes
    each run act on the moments since then. A schedule with ``enforced: true`` also gets a
    ``rate(<interval_minutes> minutes)`` schedule (its ``interval_minutes``), since it must
    drive instances to the wanted state between boundaries too.
    Caveat: EventBridge Scheduler skips a cron time that does not exist on a spring-forward
    day (SageSaver's own rule is "take effect just after the gap"), so a start or stop set
    inside a DST gap (usually 02:00-03:00 local) is missed on that one day; choose
    ``"rate"`` or ``enforced: true`` for such times.
``"rate"``
    One schedule, ``rate(<tick_minutes> minutes)``, with the input ``{}``: every run handles
    every schedule, acting on the boundaries since its previous run. Up to ``tick_minutes``
    late, but it follows SageSaver's daylight-saving rules exactly.

**How the topic ARN reaches the policy**: the functions read the topic only from the policy
text (``SAGESAVER_POLICY``). The policy is dumped with ``notify.sns_topic_arn`` set to the
variable ``${NotificationTopic}`` and the whole text is passed through ``Fn::Sub`` (any
literal ``${`` of the policy is escaped as ``${!``), so CloudFormation writes the topic's ARN
into it. A topic ARN already in the policy is replaced by the stack's topic.

Function names are ``<stack name>-idle-scan`` and ``<stack name>-schedule-tick`` (so the log
group names are known in advance): keep stack names to 50 characters (Lambda's limit is 64).

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from sagesaver.core.cron import ScheduleError
from sagesaver.core.errors import InputError
from sagesaver.core.lifecycle import AgentOptions, encoded_content, render_on_start
from sagesaver.core.partitions import one_partition, service_principal
from sagesaver.core.permissions import (
    CAPABILITIES,
    SAGEMAKER_RESOURCE_TYPES,
    SELECTED_ENDPOINT_CHANGES,
    TRAINING_JOBS,
    UNSCOPED_ACTIONS,
    is_read_only,
    resource_tag_condition,
)
from sagesaver.core.policy import LEDGER_TABLE_RE, Policy
from sagesaver.core.rules.schedules import tick_invocations
from sagesaver.deploy.availability import LIFECYCLE_TYPE, SCHEDULE_TYPE, Gap, gaps
from sagesaver.deploy.package import RUNTIME as PACKAGE_RUNTIME

RUNTIME = PACKAGE_RUNTIME  # one runtime for the package and the template
ARCHITECTURES = ("x86_64", "arm64")
LOG_RETENTION_DAYS = 30
LIFECYCLE_CONFIG_NAME = "sagesaver-autostop"
# The topic's key: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# key for SNS, so the stack makes its own, which lets CloudWatch (and the functions) use it.
TOPIC_KEY = "TopicKey"
DEAD_LETTERS = "DeadLetterQueue"
# Lambda's limit on the total size of a function's environment variables.
ENV_LIMIT_BYTES = 4096
# The longest values CloudFormation can substitute: a topic ARN (partition, region, account
# and a generated name of up to 256 characters) and a generated table name.
TOPIC_ARN_MAX = 320
TABLE_NAME_MAX = 255
REGION_MAX = 20

TOPIC = "NotificationTopic"
TABLE = "LedgerTable"
LIFECYCLE = "AutoStopLifecycleConfig"
SCHEDULER_ROLE = "SchedulerRole"
SCAN_SCHEDULE = "IdleScanSchedule"
IDLE_SCAN = "IdleScanFunction"
SCHEDULE_TICK = "ScheduleTickFunction"

# Actions the stack grants beyond :data:`sagesaver.core.permissions.CAPABILITIES`.
LEDGER_ACTIONS: tuple[str, ...] = (
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",  # leases, announcements and backups are read by key prefix
    "dynamodb:UpdateItem",  # a lease moves on, conditionally, step by step
)
LOG_ACTIONS: tuple[str, ...] = ("logs:CreateLogStream", "logs:PutLogEvents")
INVOKE_ACTIONS: tuple[str, ...] = ("lambda:InvokeFunction",)
# Publishing to the topic encrypted with the stack's key needs the key too.
TOPIC_KEY_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")
# A failed asynchronous invocation (after Lambda's retries) lands in the dead-letter queue.
DEAD_LETTER_ACTIONS: tuple[str, ...] = ("sqs:SendMessage",)
EXTRA_ACTIONS: dict[str, tuple[str, ...]] = {
    "ledger": LEDGER_ACTIONS,
    "logs": LOG_ACTIONS,
    "invoke": INVOKE_ACTIONS,
    "topic-key": TOPIC_KEY_ACTIONS,
    "dead-letter": DEAD_LETTER_ACTIONS,
}

Tick = Literal["boundaries", "rate"]
Json = dict[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the stack and what its role may do.

    ``capabilities`` name entries of :data:`sagesaver.core.permissions.CAPABILITIES`;
    ``deleting`` are added when the policy's ``endpoints.action`` is ``delete`` (the only case
    in which the function changes endpoints), ``releasing`` when ``jobs.warm_pools.action`` is
    ``release`` (the only case in which it changes training jobs). ``ledger`` says when it uses
    the DynamoDB ledger (:data:`LEDGER_ACTIONS`): ``"always"`` or ``"deleting"`` (deleting or
    releasing).
    """

    handler: str
    name: str
    description: str
    capabilities: tuple[str, ...]
    deleting: tuple[str, ...] = ()
    releasing: tuple[str, ...] = ()
    ledger: Literal["always", "deleting"] = "always"
    memory_mb: int = 512
    timeout_s: int = 300

    def capabilities_for(self, policy: Policy) -> tuple[str, ...]:
        """The capabilities the function needs under ``policy``."""
        return (
            self.capabilities
            + (self.deleting if _deletes(policy) else ())
            + (self.releasing if _releases(policy) else ())
        )

    def uses_ledger(self, policy: Policy) -> bool:
        """Whether the function reads or writes the ledger under ``policy``."""
        return self.ledger == "always" or _deletes(policy) or _releases(policy)

    def actions_for(self, policy: Policy) -> list[str]:
        """Every IAM action the function's role is granted under ``policy``, sorted."""
        actions = {a for c in self.capabilities_for(policy) for a in CAPABILITIES[c]}
        if not policy.endpoints.delete_config:  # configurations are kept unless asked
            actions.discard("sagemaker:DeleteEndpointConfig")
        if self.uses_ledger(policy):
            actions.update(LEDGER_ACTIONS)
        if "sns:Publish" in actions:
            actions.update(TOPIC_KEY_ACTIONS)
        actions.update(LOG_ACTIONS)
        actions.update(DEAD_LETTER_ACTIONS)
        return sorted(actions)


FUNCTIONS: dict[str, FunctionSpec] = {
    IDLE_SCAN: FunctionSpec(
        handler="sagesaver.lambda_handlers.idle_endpoints",
        name="idle-scan",
        description="SageSaver: report idle SageMaker endpoints (and delete them per policy)",
        capabilities=("scan", "notify", "live-prices"),
        deleting=("enforce",),
        releasing=("release-warm-pools",),
        ledger="always",  # a retried invocation must not send its digest twice
        memory_mb=512,
        timeout_s=600,
    ),
    SCHEDULE_TICK: FunctionSpec(
        handler="sagesaver.lambda_handlers.schedule_tick",
        name="schedule-tick",
        description="SageSaver: start and stop notebook instances on their schedules",
        capabilities=("schedule", "live-prices"),
        ledger="always",
        memory_mb=256,
        timeout_s=300,
    ),
}


def declared_actions() -> set[str]:
    """Every action the template may grant: all capabilities plus :data:`EXTRA_ACTIONS`."""
    found = {a for actions in CAPABILITIES.values() for a in actions}
    found.update(a for actions in EXTRA_ACTIONS.values() for a in actions)
    return found


def _deletes(policy: Policy) -> bool:
    return policy.endpoints.action == "delete"


def _releases(policy: Policy) -> bool:
    return policy.jobs.enabled and policy.jobs.warm_pools.action == "release"


def _sub(text: str) -> Json:
    return {"Fn::Sub": text}


def _ref(name: str) -> Json:
    return {"Ref": name}


def _arn_of(name: str) -> Json:
    return {"Fn::GetAtt": [name, "Arn"]}


def _log_group_id(function: str) -> str:
    return f"{function}LogGroup"


def _role_id(function: str) -> str:
    return f"{function}Role"


def _function_name(spec: FunctionSpec) -> Json:
    return _sub(f"${{AWS::StackName}}-{spec.name}")


# --- the policy text ------------------------------------------------------------------------

_TOPIC_PLACEHOLDER = "SAGESAVER-DEPLOY-TOPIC-ARN-PLACEHOLDER"


def policy_text(policy: Policy) -> str:
    """The policy as ``Fn::Sub`` text whose ``notify.sns_topic_arn`` is the stack's topic.

    Substituting ``${NotificationTopic}`` with the topic ARN and ``${!`` with ``${`` (what
    ``Fn::Sub`` does) gives YAML that :func:`sagesaver.core.policy.parse_policy` reads back as
    ``policy`` with that topic.
    """
    data: dict[str, Any] = policy.model_dump(mode="json", exclude_defaults=True)
    notify = dict(data.get("notify") or {})
    notify["sns_topic_arn"] = _TOPIC_PLACEHOLDER
    data["notify"] = notify
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if text.count(_TOPIC_PLACEHOLDER) != 1:
        raise InputError(f"the policy must not contain the text {_TOPIC_PLACEHOLDER!r}")
    return text.replace("${", "${!").replace(_TOPIC_PLACEHOLDER, f"${{{TOPIC}}}")


# --- IAM ------------------------------------------------------------------------------------


def _sagemaker_arns(
    actions: Iterable[str], regions: Sequence[str], only: Iterable[str] | None = None
) -> list[Json]:
    """Account- and region-scoped ARNs of the resource types ``actions`` act on (``only``
    those types, when given)."""
    types: set[str] = set()
    for action in actions:
        types.update(SAGEMAKER_RESOURCE_TYPES.get(action, ("*",)))
    if only is not None:
        types &= set(only)
    patterns = sorted("*" if t == "*" else f"{t}/*" for t in types)
    if "*" in patterns:
        patterns = ["*"]
    return [
        _sub(f"arn:${{AWS::Partition}}:sagemaker:{region}:${{AWS::AccountId}}:{pattern}")
        for region in regions
        for pattern in patterns
    ]


def _function_statements(
    function: str, spec: FunctionSpec, policy: Policy, regions: Sequence[str]
) -> list[Json]:
    """The inline policy statements of one function's role, one Sid per kind of grant."""
    unscoped: list[str] = []
    sagemaker_read: list[str] = []
    sagemaker_write: list[str] = []
    publish: list[str] = []
    ledger: list[str] = []
    logs: list[str] = []
    topic_key: list[str] = []
    dead_letters: list[str] = []
    for action in spec.actions_for(policy):
        service = action.split(":", 1)[0]
        if action in UNSCOPED_ACTIONS:
            unscoped.append(action)
        elif service == "sagemaker":
            (sagemaker_read if is_read_only(action) else sagemaker_write).append(action)
        elif action == "sns:Publish":
            publish.append(action)
        elif action in LEDGER_ACTIONS:
            ledger.append(action)
        elif action in LOG_ACTIONS:
            logs.append(action)
        elif action in TOPIC_KEY_ACTIONS:
            topic_key.append(action)
        elif action in DEAD_LETTER_ACTIONS:
            dead_letters.append(action)
        else:
            raise ValueError(f"{function}: no resource scoping is declared for {action}")
    statements: list[Json] = []

    def add(sid: str, actions: list[str], resource: Any) -> None:
        if actions:
            statements.append(
                {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
            )

    add("ReadOnlyNoResourceLevel", unscoped, "*")
    add("SageMakerRead", sagemaker_read, _sagemaker_arns(sagemaker_read, regions))
    # Changes to training jobs (warm pools) on their own: sharing the endpoints' statement
    # would grant each change on the other's resource types too.
    jobs_write = [a for a in sagemaker_write if SAGEMAKER_RESOURCE_TYPES.get(a) == TRAINING_JOBS]
    sagemaker_write = [a for a in sagemaker_write if a not in jobs_write]
    add("SageMakerChangeTrainingJobs", jobs_write, _sagemaker_arns(jobs_write, regions))
    condition = resource_tag_condition(policy.endpoints.tags)
    selected = [a for a in sagemaker_write if a in SELECTED_ENDPOINT_CHANGES]
    if condition is None or not selected:
        add("SageMakerChange", sagemaker_write, _sagemaker_arns(sagemaker_write, regions))
    else:
        # Endpoints are changed only when they carry the tags the policy selects by.
        add(
            "SageMakerChangeSelectedEndpoints",
            selected,
            _sagemaker_arns(selected, regions, only=["endpoint"]),
        )
        statements[-1]["Condition"] = condition
        rest = [a for a in sagemaker_write if a not in selected or a == "sagemaker:AddTags"]
        other_types = {
            t for a in rest for t in SAGEMAKER_RESOURCE_TYPES.get(a, ("*",)) if t != "endpoint"
        }
        add("SageMakerChange", rest, _sagemaker_arns(rest, regions, only=other_types))
    add("Notify", publish, _ref(TOPIC))
    add("Ledger", ledger, _ledger_arn(policy))
    add("Logs", logs, _arn_of(_log_group_id(function)))
    add("TopicKey", topic_key, _arn_of(TOPIC_KEY))
    add("DeadLetters", dead_letters, _arn_of(DEAD_LETTERS))
    return statements


def _role(service: str, policy_name: str, statements: list[Json]) -> Json:
    trust: Json = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if service == service_principal("scheduler"):
        trust["Condition"] = {"StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")}}
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [trust]},
            "Policies": [
                {
                    "PolicyName": policy_name,
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
                }
            ],
        },
    }


def template_actions(template: dict[str, Any]) -> set[str]:
    """Every IAM action in every inline policy of ``template`` (roles, policies)."""
    found: set[str] = set()
    documents: list[Any] = []
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            documents += [p.get("PolicyDocument", {}) for p in properties.get("Policies", [])]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            documents.append(properties.get("PolicyDocument", {}))
    for document in documents:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            for key in ("Action", "NotAction"):
                value = statement.get(key, [])
                found.update([value] if isinstance(value, str) else value)
    return found


# --- the template ---------------------------------------------------------------------------


def _check_inputs(
    code_bucket: str,
    code_key: str,
    emails: Sequence[str],
    architecture: str,
    tick_minutes: int,
    scan_schedule: str,
    tick: str,
) -> list[str]:
    """Validate the arguments; return the e-mail addresses, de-duplicated, in order."""
    if not code_bucket.strip() or not code_key.strip():
        raise InputError("the code bucket and key must not be empty")
    if architecture not in ARCHITECTURES:
        raise InputError(f"architecture {architecture!r}: use one of {', '.join(ARCHITECTURES)}")
    if not 1 <= tick_minutes <= 1440:
        raise InputError(f"tick minutes {tick_minutes}: must be from 1 to 1440")
    if not re.fullmatch(r"(rate|cron)\(.+\)", scan_schedule.strip()):
        raise InputError(f"scan schedule {scan_schedule!r}: use rate(...) or cron(...)")
    if tick not in ("boundaries", "rate"):
        raise InputError(f"tick {tick!r}: use 'boundaries' or 'rate'")
    addresses: list[str] = []
    for email in emails:
        address = email.strip()
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            raise InputError(f"{email!r} is not an e-mail address")
        if address.lower() not in {a.lower() for a in addresses}:
            addresses.append(address)
    return addresses


def _logical(prefix: str, name: str) -> str:
    """A stable CloudFormation logical id for a user-chosen name."""
    camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return f"{prefix}{camel}{digest}"


def _schedule(
    description: str,
    expression: str,
    target: str,
    payload: Json | None = None,
    timezone: str | None = None,
) -> Json:
    target_json: Json = {"Arn": _arn_of(target), "RoleArn": _arn_of(SCHEDULER_ROLE)}
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
    """The schedules that run the schedule tick (see the module docstring)."""
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
    """The stack's own ledger table (when the policy names none)."""
    return {
        "Type": "AWS::DynamoDB::Table",
        # The ledger holds the backups that `sagesaver restore` needs: keep it.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    }


def _ledger_arn(policy: Policy) -> Any:
    """The ledger table's ARN: the team's table the policy names, else the stack's own."""
    table = policy.ledger_table
    if table is None:
        return _arn_of(TABLE)
    match = LEDGER_TABLE_RE.match(policy.ledger or "")
    region = (match.group("region") if match else None) or "${AWS::Region}"
    return _sub(f"arn:${{AWS::Partition}}:dynamodb:{region}:${{AWS::AccountId}}:table/{table}")


def _ledger_setting(policy: Policy) -> Any:
    """SAGESAVER_LEDGER: the policy's DynamoDB ledger (a team shares it with the laptops that
    run the same policy), else the stack's own table."""
    if policy.ledger_table is not None:
        return policy.ledger
    return _sub(f"dynamodb://${{{TABLE}}}")


def _environment(policy: Policy, text: str) -> Json:
    """The functions' environment; raises when it could exceed Lambda's 4 KB."""
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
) -> dict[str, Json]:
    regions = policy.regions or ["${AWS::Region}"]
    return {
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
        _role_id(function): _role(
            service_principal("lambda"),
            f"sagesaver-{spec.name}",
            _function_statements(function, spec, policy, regions),
        ),
        function: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": _function_name(spec),
                "Description": spec.description,
                "Runtime": runtime,
                "Architectures": [architecture],
                "Handler": spec.handler,
                "Code": {"S3Bucket": code_bucket, "S3Key": code_key},
                "MemorySize": spec.memory_mb,
                "Timeout": spec.timeout_s,
                # One run at a time: a slow run and the next scheduled one never overlap.
                "ReservedConcurrentExecutions": 1,
                "DeadLetterConfig": {"TargetArn": _arn_of(DEAD_LETTERS)},
                "Role": _arn_of(_role_id(function)),
                "Environment": environment,
            },
        },
    }


def _topic_key() -> Json:
    """The topic's KMS key: the account administers it; CloudWatch may use it to publish
    alarms to the topic (the functions get their own grant in their roles)."""
    account_root = _sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    return {
        "Type": "AWS::KMS::Key",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "Description": "SageSaver: the notification topic's key",
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": account_root},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Sid": "CloudWatchAlarmsPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": service_principal("cloudwatch")},
                        "Action": list(TOPIC_KEY_ACTIONS),
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")}
                        },
                    },
                ],
            },
        },
    }


def _errors_alarm(function: str) -> Json:
    """An alarm that tells the topic when a run of ``function`` failed (it raises then)."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"SageSaver: a run of {function} failed; see its log group",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": _ref(function)}],
            "Statistic": "Sum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [_ref(TOPIC)],
        },
    }


def deployment_gaps(policy: Policy, region: str | None) -> list[Gap]:
    """What the stack cannot have in ``region``; raises :class:`InputError` when ``region``
    is of another partition than the policy's regions, topic or ledger (a stack reaches only
    its own partition), or when EventBridge Scheduler, which runs every function, is missing.
    """
    if region is None:
        return []
    named: dict[str, list[str]] = {"the stack's region": [region], "regions": policy.regions}
    if policy.notify.topic_region is not None:
        named["notify.sns_topic_arn"] = [policy.notify.topic_region]
    match = LEDGER_TABLE_RE.match(policy.ledger or "")
    if match and match.group("region"):
        named["ledger"] = [match.group("region")]
    one_partition(named)
    return gaps(region, {LIFECYCLE_TYPE, SCHEDULE_TYPE})


def _rule(description: str, expression: str, target: str, payload: Json) -> Json:
    """An EventBridge rule invoking ``target`` (UTC only: rules have no time zones)."""
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": description,
            "ScheduleExpression": expression,
            "State": "ENABLED",
            "Targets": [
                {"Id": target, "Arn": _arn_of(target), "Input": json.dumps(payload, sort_keys=True)}
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
    return resources


def render_template(
    policy: Policy,
    code_bucket: str,
    code_key: str,
    emails: list[str],
    architecture: str = "x86_64",
    tick_minutes: int = 10,
    scan_schedule: str = "rate(1 hour)",
    *,
    tick: Tick = "boundaries",
    runtime: str = RUNTIME,
    region: str | None = None,
) -> dict[str, Any]:
    """The CloudFormation template deploying SageSaver for ``policy`` (see the module doc).

    ``code_bucket``/``code_key`` name the zip of the package and its dependencies; ``emails``
    are subscribed to the notification topic; ``architecture`` is ``x86_64`` or ``arm64``;
    ``scan_schedule`` is the idle scan's EventBridge Scheduler expression; ``tick`` chooses
    how the schedule tick is triggered (``tick_minutes`` is its period with ``"rate"``);
    ``runtime`` is the package's (``sagesaver.deploy.package.read_manifest``); ``region``,
    when known, is the stack's: it must be of the policy's partition, and a resource type
    CloudFormation does not offer there is left out or refused (:func:`deployment_gaps`).
    Raises :class:`~sagesaver.core.errors.InputError` for invalid arguments.
    """
    addresses = _check_inputs(
        code_bucket, code_key, emails, architecture, tick_minutes, scan_schedule, tick
    )
    missing = {g.resource_type for g in deployment_gaps(policy, region)}
    text = policy_text(policy)
    environment = _environment(policy, text)
    functions = [IDLE_SCAN] + ([SCHEDULE_TICK] if policy.schedules else [])

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
        resources[TABLE] = _ledger_table()
    if LIFECYCLE_TYPE not in missing:
        resources[LIFECYCLE] = {
            "Type": LIFECYCLE_TYPE,
            "Properties": {
                "NotebookInstanceLifecycleConfigName": LIFECYCLE_CONFIG_NAME,
                "OnStart": [{"Content": encoded_content(render_on_start(AgentOptions()))}],
            },
        }
    for function in functions:
        resources.update(
            _function_resources(
                function,
                FUNCTIONS[function],
                policy,
                environment,
                code_bucket,
                code_key,
                architecture,
                runtime,
            )
        )
    for function in functions:
        resources[f"{function}ErrorsAlarm"] = _errors_alarm(function)
    if SCHEDULE_TYPE in missing:
        resources.update(_rules_instead_of_scheduler(policy, scan_schedule.strip(), tick_minutes))
        return _template(policy, resources, functions, scheduler=False)
    resources[SCHEDULER_ROLE] = _role(
        service_principal("scheduler"),
        "sagesaver-invoke",
        [
            {
                "Sid": "InvokeSageSaver",
                "Effect": "Allow",
                "Action": list(INVOKE_ACTIONS),
                "Resource": [_arn_of(f) for f in functions],
            }
        ],
    )
    resources[SCAN_SCHEDULE] = _schedule(
        "SageSaver: idle endpoint scan", scan_schedule.strip(), IDLE_SCAN, {}
    )
    if policy.schedules:
        resources.update(_tick_schedules(policy, tick, tick_minutes))
    return _template(policy, resources, functions, scheduler=True)


def _template(
    policy: Policy, resources: dict[str, Json], functions: list[str], scheduler: bool
) -> dict[str, Any]:
    """The template document: ``resources`` and the outputs the commands read back."""
    outputs: dict[str, Json] = {
        "TopicArn": {"Description": "The notification topic", "Value": _ref(TOPIC)},
        "LedgerTableName": {
            "Description": "The ledger table",
            "Value": policy.ledger_table or _ref(TABLE),
        },
    }
    if policy.schedules and scheduler:  # what `sagesaver schedule rules --stack-name` needs
        outputs["SchedulerRoleArn"] = {
            "Description": "The role EventBridge Scheduler assumes to invoke the functions",
            "Value": _arn_of(SCHEDULER_ROLE),
        }
    for function in functions:
        outputs[f"{function}Arn"] = {
            "Description": FUNCTIONS[function].description,
            "Value": _arn_of(function),
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SageSaver: stops and deletes idle Amazon SageMaker resources",
        "Resources": resources,
        "Outputs": outputs,
    }
