"""The organisation stack (``sagesaver deploy render --organization``): one Step Functions
state machine (:func:`state_machine_definition`, in :mod:`sagesaver.deploy.state_machine`) that
plans, announces and acts for every account of an AWS Organization.

:func:`organisation_template` is the CloudFormation template around it:

* six functions, ``sagesaver.organisation_handlers.<handler>``, with one shared environment
  (the policy, the ledger, the member role's name, the external id, the run bucket), 900 s;
* their roles: ``OrgListRole`` (the organisation's accounts, the enabled regions),
  ``OrgFanOutRole`` for ``plan_item`` and ``act_item`` (``sts:AssumeRole`` on the member role
  name in any account, only inside the organisation, ``aws:ResourceOrgID``; the member roles
  trust this role: it is ``--caller-role`` of ``deploy render --member-role``),
  ``OrgReportRole`` for ``announce`` and ``summarise`` (the topic and chat channels),
  ``OrgRecordFailureRole``; every one reads and writes the run bucket's ``runs/`` and the
  ledger;
* the run bucket (SSE-S3, public access blocked, TLS only, ``runs/`` expiring after 30 days;
  kept when the stack is deleted);
* the state machine (Standard, logging errors to its own log group, no X-Ray) and its role:
  ``lambda:InvokeFunction`` on the six functions, ``s3:GetObject`` on ``runs/*`` (the Maps'
  item readers), ``states:StartExecution`` on itself and ``states:DescribeExecution`` /
  ``states:StopExecution`` on its child executions (a Distributed Map runs each item as a
  child execution), the log delivery actions;
* an EventBridge Scheduler schedule (``scan_schedule``) that starts an execution with the input
  ``{}``; the topic, the ledger table and its key, the dead-letter queue as the single-account
  stack has them; alarms on ``ExecutionsFailed`` and ``ExecutionsTimedOut`` to the topic.

Parameters: ``MemberRoleName``, ``OrganizationId``, ``ExternalId`` (NoEcho, optional),
``MaxConcurrency`` (20) and ``ToleratedFailurePercentage`` (10) of both Maps.

Why ``DefinitionString`` through ``Fn::Sub`` and not ``Definition`` with
``DefinitionSubstitutions``: a substitution is a string, and Step Functions refuses a string
where ``MaxConcurrency`` takes an integer ("SCHEMA_VALIDATION_FAILED: Expected value of type
Integer", https://github.com/aws/serverless-application-model/issues/1616); a ``Fn::Sub`` text
can hold the parameter unquoted (https://github.com/aws-cloudformation/cloudformation-coverage-
roadmap/issues/591). cfn-lint does not look inside a ``Fn::Sub`` definition: the tests lint the
definition as CloudFormation resolves it.

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sagesaver.core.accounts import ROLE_NAME_RE
from sagesaver.core.channels import channel_references
from sagesaver.core.errors import InputError
from sagesaver.core.partitions import one_partition, partition_of, service_principal
from sagesaver.core.permissions import CHANNEL_READS
from sagesaver.core.policy import Policy
from sagesaver.deploy.availability import SCHEDULE_TYPE
from sagesaver.deploy.iam import (
    FUNCTIONS,
    LEDGER_ACTIONS,
    LEDGER_KEY_ACTIONS,
    LOG_ACTIONS,
    PRICE_FILE_ACTIONS,
    TOPIC_KEY_ACTIONS,
    FunctionSpec,
    _channel_arns,
    _ledger_arn,
    _ledger_key_arn,
    _role,
    price_file_object,
)
from sagesaver.deploy.member import ORG_ID_RE
from sagesaver.deploy.names import (
    DEAD_LETTERS,
    IDLE_SCAN,
    RUN_BUCKET,
    RUN_SCHEDULE,
    SCHEDULER_ROLE,
    STATE_MACHINE,
    STATE_MACHINE_LOGS,
    STATE_MACHINE_ROLE,
    TABLE,
    TOPIC,
    TOPIC_KEY,
    Json,
    _arn_of,
    _log_group_id,
    _ref,
    _sub,
)
from sagesaver.deploy.package import RUNTIME
from sagesaver.deploy.resources import (
    LOG_RETENTION_DAYS,
    StackOptions,
    _alarm,
    _dead_letters_alarm,
    _environment,
    _function_resources,
    _schedule,
    check_options,
    messaging_and_ledger,
)
from sagesaver.deploy.state_machine import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TOLERATED_FAILURE_PERCENTAGE,
    HANDLER_MODULE,
    HANDLERS,
    TASK_TIMEOUT_S,
    state_machine_definition,
)
from sagesaver.deploy.template import _check_inputs, deployment_gaps, policy_text

__all__ = ["organisation_template", "state_machine_definition"]

# --- the template ---------------------------------------------------------------------------

DEFAULT_MEMBER_ROLE = "SageSaverExecution"
MEMBER_ROLE_NAME = "MemberRoleName"
ORGANIZATION_ID = "OrganizationId"
EXTERNAL_ID = "ExternalId"
MAX_CONCURRENCY = "MaxConcurrency"
TOLERATED_FAILURE = "ToleratedFailurePercentage"
HAS_EXTERNAL_ID = "HasExternalId"
EXTERNAL_ID_MAX = 256  # of IAM's 1,224: the functions' environment is 4 KB in all
BUCKET_NAME_MAX = 63
STATE_MACHINE_NAME = "${AWS::StackName}-organisation"
RUNS_PREFIX = "runs/"
RUNS_EXPIRE_DAYS = 30

FUNCTION_IDS: dict[str, str] = {
    "list": "OrgListFunction",
    "plan": "OrgPlanFunction",
    "announce": "OrgAnnounceFunction",
    "act": "OrgActFunction",
    "record_failure": "OrgRecordFailureFunction",
    "summarise": "OrgSummariseFunction",
}
_DESCRIPTIONS: dict[str, str] = {
    "list": "SageSaver organisation run: list the accounts and regions",
    "plan": "SageSaver organisation run: plan one account and region",
    "announce": "SageSaver organisation run: announce the organisation's digest",
    "act": "SageSaver organisation run: act in one account and region",
    "record_failure": "SageSaver organisation run: record an item that failed",
    "summarise": "SageSaver organisation run: summarise the run",
}
# Memory per function (MB): the digest and the summary read every item's document.
_MEMORY_MB: dict[str, int] = {
    "list": 512,
    "plan": 512,
    "announce": 1024,
    "act": 512,
    "record_failure": 256,
    "summarise": 1024,
}
# Which role each function runs as, and what each role may do besides its functions' logs.
FUNCTION_ROLES: dict[str, str] = {
    "list": "OrgListRole",
    "plan": "OrgFanOutRole",
    "act": "OrgFanOutRole",
    "announce": "OrgReportRole",
    "summarise": "OrgReportRole",
    "record_failure": "OrgRecordFailureRole",
}
FAN_OUT_ROLE = "OrgFanOutRole"
ROLE_GRANTS: dict[str, tuple[str, ...]] = {
    "OrgListRole": ("organisation", "regions", "runs", "ledger"),
    "OrgFanOutRole": ("assume", "prices", "runs", "ledger", "ledger-key"),
    "OrgReportRole": ("notify", "runs", "ledger"),
    "OrgRecordFailureRole": ("runs", "ledger"),
}
# The active accounts, or those of the OUs an execution names and of the OUs under them.
ORGANISATION_ACTIONS: tuple[str, ...] = (
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
)
RUN_DOCUMENT_ACTIONS: tuple[str, ...] = ("s3:GetObject", "s3:PutObject")
INVOKE = "lambda:InvokeFunction"
# A Distributed Map starts each item as a child execution of this state machine, and describes
# and stops them (https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-
# map.html: StartExecution on the state machine, DescribeExecution and StopExecution on
# execution:<name>/*, the child executions' ARNs: execution:<name>/<map run label>:<id>).
CHILD_START: tuple[str, ...] = ("states:StartExecution",)
CHILD_WATCH: tuple[str, ...] = ("states:DescribeExecution", "states:StopExecution")
# Logging to CloudWatch Logs is a log delivery that the state machine's role sets up; these
# actions support no resource-level permissions
# (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).
LOG_DELIVERY_ACTIONS: tuple[str, ...] = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)


def _bucket_arn(suffix: str = "") -> Json:
    return _sub(f"arn:${{AWS::Partition}}:s3:::${{{RUN_BUCKET}}}{suffix}")


def _state_machine_arn(kind: str = "stateMachine", suffix: str = "") -> Json:
    return _sub(
        f"arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:{kind}:"
        f"{STATE_MACHINE_NAME}{suffix}"
    )


def _deletes_anything(policy: Policy) -> bool:
    """Whether acting takes backups (the ledger key): as the idle scan, when it enforces."""
    return "enforce" in FUNCTIONS[IDLE_SCAN].capabilities_for(policy)


def _role_statements(role: str, policy: Policy) -> list[Json]:
    """The inline policy of one of the functions' roles: one Sid per kind of grant."""
    grants = ROLE_GRANTS[role]
    statements: list[Json] = []

    def add(sid: str, actions: Sequence[str], resource: Any, condition: Json | None = None) -> None:
        statement: Json = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": list(actions),
            "Resource": resource,
        }
        if condition is not None:
            statement["Condition"] = condition
        statements.append(statement)

    if "organisation" in grants:  # these support no resource-level permissions
        add("ReadTheOrganisation", ORGANISATION_ACTIONS, "*")
    if "regions" in grants:
        add("EnabledRegions", ["ec2:DescribeRegions"], "*")
    if "assume" in grants:
        # The member role, in whichever account, and only in the stack's organisation.
        add(
            "AssumeTheMemberRoleInTheOrganisation",
            ["sts:AssumeRole"],
            _sub(f"arn:${{AWS::Partition}}:iam::*:role/${{{MEMBER_ROLE_NAME}}}"),
            {"StringEquals": {"aws:ResourceOrgID": _ref(ORGANIZATION_ID)}},
        )
    if "prices" in grants:
        add("Prices", ["pricing:GetProducts"], "*")
        price_object = price_file_object(policy)
        if price_object is not None:
            literal = price_object.replace("${", "${!")
            add("PriceFile", PRICE_FILE_ACTIONS, _sub(f"arn:${{AWS::Partition}}:s3:::{literal}"))
    if "runs" in grants:
        add("RunDocuments", RUN_DOCUMENT_ACTIONS, _bucket_arn(f"/{RUNS_PREFIX}*"))
        add(
            "RunListing",
            ["s3:ListBucket"],
            _bucket_arn(),
            {"StringLike": {"s3:prefix": f"{RUNS_PREFIX}*"}},
        )
    if "ledger" in grants:
        add("Ledger", LEDGER_ACTIONS, _ledger_arn(policy))
    if "ledger-key" in grants and _deletes_anything(policy):
        add("LedgerKey", LEDGER_KEY_ACTIONS, _ledger_key_arn(policy))
    if "notify" in grants:
        add("Notify", ["sns:Publish"], _ref(TOPIC))
        add("TopicKey", TOPIC_KEY_ACTIONS, _arn_of(TOPIC_KEY))
        references = channel_references(policy.notify.channels)
        for sid, service in (
            ("ChatWebhookParameters", "ssm"),
            ("ChatWebhookSecrets", "secretsmanager"),
        ):
            if references.get(service):
                add(sid, [CHANNEL_READS[service]], _channel_arns(references[service], service))
    functions = [FUNCTION_IDS[step] for step, owner in FUNCTION_ROLES.items() if owner == role]
    add("Logs", LOG_ACTIONS, [_arn_of(_log_group_id(f)) for f in functions])
    return statements


def _state_machine_role() -> Json:
    return _role(
        service_principal("states"),
        "sagesaver-organisation-run",
        [
            {
                "Sid": "InvokeTheRunsFunctions",
                "Effect": "Allow",
                "Action": [INVOKE],
                "Resource": [_arn_of(FUNCTION_IDS[step]) for step in HANDLERS],
            },
            {
                "Sid": "ReadTheItems",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": _bucket_arn(f"/{RUNS_PREFIX}*"),
            },
            {
                "Sid": "StartChildExecutions",
                "Effect": "Allow",
                "Action": list(CHILD_START),
                "Resource": _state_machine_arn(),
            },
            {
                "Sid": "WatchChildExecutions",
                "Effect": "Allow",
                "Action": list(CHILD_WATCH),
                "Resource": _state_machine_arn("execution", "/*"),
            },
            {
                "Sid": "LogDelivery",
                "Effect": "Allow",
                "Action": list(LOG_DELIVERY_ACTIONS),
                "Resource": "*",
            },
        ],
    )


def _definition_text() -> str:
    """The definition as ``Fn::Sub`` text: the functions' ARNs, the partition, and the two
    Map settings as bare numbers (never strings: Step Functions wants integers)."""
    functions = {step: f"${{{FUNCTION_IDS[step]}.Arn}}" for step in HANDLERS}
    definition = state_machine_definition(
        "${AWS::Partition}", functions, f"${{{MAX_CONCURRENCY}}}", f"${{{TOLERATED_FAILURE}}}"
    )
    text = json.dumps(definition, indent=2)
    for name in (MAX_CONCURRENCY, TOLERATED_FAILURE):
        text = text.replace(f'"${{{name}}}"', f"${{{name}}}")
    return text


def _run_bucket() -> dict[str, Json]:
    """The bucket of each run's documents and its policy (TLS only)."""
    bucket: Json = {
        "Type": "AWS::S3::Bucket",
        # Emptied by its lifecycle rule; deleting a bucket that still holds objects would
        # fail the stack's deletion.
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "ExpireRuns",
                        "Status": "Enabled",
                        "Prefix": RUNS_PREFIX,
                        "ExpirationInDays": RUNS_EXPIRE_DAYS,
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
        },
    }
    policy: Json = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": _ref(RUN_BUCKET),
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [_arn_of(RUN_BUCKET), _bucket_arn("/*")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    }
    return {RUN_BUCKET: bucket, f"{RUN_BUCKET}Policy": policy}


def _parameters(member_role_name: str, org_id: str | None) -> Json:
    organisation: Json = {
        "Type": "String",
        "Description": "The organisation (o-...): the functions assume member roles only in "
        "its accounts",
        "AllowedPattern": f"^{ORG_ID_RE.pattern}$",
    }
    if org_id is not None:
        organisation["Default"] = org_id
    return {
        MEMBER_ROLE_NAME: {
            "Type": "String",
            "Description": "The role each member account has for SageSaver "
            "(deploy render --member-role), a path allowed",
            "Default": member_role_name,
            "AllowedPattern": ROLE_NAME_RE.pattern,
        },
        ORGANIZATION_ID: organisation,
        EXTERNAL_ID: {
            "Type": "String",
            "NoEcho": True,
            "Description": "The external id the member roles require (empty: none)",
            "Default": "",
            "AllowedPattern": f"^([\\w+=,.@:/-]{{2,{EXTERNAL_ID_MAX}}})?$",
        },
        MAX_CONCURRENCY: {
            "Type": "Number",
            "Description": "Items (account and region) planned or acted on at once",
            "Default": DEFAULT_MAX_CONCURRENCY,
            "MinValue": 1,
            "MaxValue": 10000,
        },
        TOLERATED_FAILURE: {
            "Type": "Number",
            "Description": "Percentage of items that may fail before a Map stops (the run "
            "then goes on to its summary)",
            "Default": DEFAULT_TOLERATED_FAILURE_PERCENTAGE,
            "MinValue": 0,
            "MaxValue": 100,
        },
    }


def _check_organisation_inputs(member_role_name: str, org_id: str | None) -> None:
    if not ROLE_NAME_RE.match(member_role_name) or not member_role_name.rpartition("/")[2]:
        raise InputError(f"--member-role-name {member_role_name!r}: not an IAM role name")
    if org_id is not None and not ORG_ID_RE.fullmatch(org_id):
        raise InputError(f"--org-id {org_id}: an organisation id is o- and 10 to 32 of a-z, 0-9")


def _shared_environment(policy: Policy, text: str) -> Json:
    """The one environment of the six functions: the single stack's (policy, ledger, apply,
    regions when the policy names them) and the run's settings."""
    added: Json = {
        "SAGESAVER_MEMBER_ROLE": _ref(MEMBER_ROLE_NAME),
        "SAGESAVER_EXTERNAL_ID": {
            "Fn::If": [HAS_EXTERNAL_ID, _ref(EXTERNAL_ID), _ref("AWS::NoValue")]
        },
        "SAGESAVER_RUN_BUCKET": _ref(RUN_BUCKET),
    }
    if policy.prices is not None:
        added["SAGESAVER_PRICES"] = policy.prices
    extra = (
        sum(len(key) for key in added)
        + 64  # a role name
        + EXTERNAL_ID_MAX
        + BUCKET_NAME_MAX
        + len(policy.prices or "")
    )
    environment = _environment(policy, text, extra)
    variables: Json = environment["Variables"]
    if not policy.regions:  # the list function reads the partition's enabled regions
        del variables["SAGESAVER_REGIONS"]
    variables.update(added)
    return environment


def organisation_template(
    policy: Policy,
    code_bucket: str = "sagesaver-artifacts",
    code_key: str = "sagesaver-lambda.zip",
    emails: Sequence[str] = (),
    architecture: str = "x86_64",
    scan_schedule: str = "rate(1 hour)",
    *,
    member_role_name: str = DEFAULT_MEMBER_ROLE,
    org_id: str | None = None,
    runtime: str = RUNTIME,
    region: str | None = None,
    options: StackOptions | None = None,
) -> dict[str, Any]:
    """The CloudFormation template of the organisation stack (see the module doc).

    ``code_bucket``/``code_key``, ``emails``, ``architecture``, ``runtime``, ``region`` and
    ``options`` as :func:`sagesaver.deploy.template.render_template` takes them;
    ``scan_schedule`` starts a run; ``member_role_name`` and ``org_id`` are the defaults of the
    ``MemberRoleName`` and ``OrganizationId`` parameters (no default id: it is asked at
    deployment). Raises :class:`~sagesaver.core.errors.InputError` for invalid arguments.
    """
    addresses = _check_inputs(
        code_bucket, code_key, list(emails), architecture, 10, scan_schedule, "rate"
    )
    _check_organisation_inputs(member_role_name, org_id)
    missing = {g.resource_type for g in deployment_gaps(policy, region)}
    if SCHEDULE_TYPE in missing:
        raise InputError(
            f"EventBridge Scheduler is not offered by CloudFormation in {region}: the "
            "organisation stack needs it to start its runs"
        )
    partition = one_partition({"regions": policy.regions}) or (
        partition_of(region) if region else None
    )
    options = options or StackOptions()
    check_options(options, partition, region)
    environment = _shared_environment(policy, policy_text(policy))

    resources = messaging_and_ledger(addresses, policy, options.operators)
    resources.update(_run_bucket())
    for role in ROLE_GRANTS:
        served = [FUNCTION_IDS[step] for step, owner in FUNCTION_ROLES.items() if owner == role]
        resources[role] = _role(
            service_principal("lambda"),
            f"sagesaver-{role}",
            _role_statements(role, policy),
            serves=" ".join(served),
        )
    for step, handler in HANDLERS.items():
        spec = FunctionSpec(
            handler=f"{HANDLER_MODULE}.{handler}",
            name=f"org-{step.replace('_', '-')}",
            description=_DESCRIPTIONS[step],
            capabilities=(),
            memory_mb=_MEMORY_MB[step],
            timeout_s=TASK_TIMEOUT_S,
        )
        resources.update(
            _function_resources(
                FUNCTION_IDS[step],
                spec,
                policy,
                environment,
                code_bucket,
                code_key,
                architecture,
                runtime,
                options,
                role=FUNCTION_ROLES[step],
            )
        )
    resources[STATE_MACHINE_LOGS] = {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            # /aws/vendedlogs/: the prefix AWS advises for logs services deliver.
            "LogGroupName": _sub(f"/aws/vendedlogs/states/{STATE_MACHINE_NAME}"),
            "RetentionInDays": LOG_RETENTION_DAYS,
        },
    }
    resources[STATE_MACHINE_ROLE] = _state_machine_role()
    resources[STATE_MACHINE] = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": _sub(STATE_MACHINE_NAME),
            "StateMachineType": "STANDARD",
            "RoleArn": _arn_of(STATE_MACHINE_ROLE),
            "DefinitionString": _sub(_definition_text()),
            "LoggingConfiguration": {
                "Level": "ERROR",
                "IncludeExecutionData": False,
                "Destinations": [
                    {"CloudWatchLogsLogGroup": {"LogGroupArn": _arn_of(STATE_MACHINE_LOGS)}}
                ],
            },
            "TracingConfiguration": {"Enabled": False},
        },
    }
    resources[SCHEDULER_ROLE] = _role(
        service_principal("scheduler"),
        "sagesaver-start-run",
        [
            {
                "Sid": "StartARun",
                "Effect": "Allow",
                "Action": list(CHILD_START),
                "Resource": _ref(STATE_MACHINE),
            },
            {  # a start it could not deliver, after its retries
                "Sid": "DeadLetters",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage"],
                "Resource": _arn_of(DEAD_LETTERS),
            },
        ],
    )
    resources[RUN_SCHEDULE] = _schedule(
        "SageSaver: the organisation run", scan_schedule.strip(), STATE_MACHINE, {}
    )
    machine = {"Name": "StateMachineArn", "Value": _ref(STATE_MACHINE)}
    resources["OrganisationRunFailedAlarm"] = _alarm(
        "SageSaver: an organisation run failed; see the state machine's executions",
        "AWS/States",
        "ExecutionsFailed",
        machine,
    )
    resources["OrganisationRunTimedOutAlarm"] = _alarm(
        "SageSaver: an organisation run timed out; see the state machine's executions",
        "AWS/States",
        "ExecutionsTimedOut",
        machine,
    )
    resources["DeadLetterQueueDepthAlarm"] = _dead_letters_alarm()
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SageSaver: idle Amazon SageMaker resources across an organisation",
        "Parameters": _parameters(member_role_name, org_id),
        "Conditions": {HAS_EXTERNAL_ID: {"Fn::Not": [{"Fn::Equals": [_ref(EXTERNAL_ID), ""]}]}},
        "Resources": resources,
        "Outputs": _outputs(policy),
    }


def _outputs(policy: Policy) -> Json:
    return {
        "StateMachineArn": {"Description": "The organisation run", "Value": _ref(STATE_MACHINE)},
        "RunBucketName": {"Description": "Each run's documents", "Value": _ref(RUN_BUCKET)},
        "FanOutRoleArn": {
            "Description": "The role that assumes the member roles: --caller-role of "
            "'sagesaver deploy render --member-role'",
            "Value": _arn_of(FAN_OUT_ROLE),
        },
        "TopicArn": {"Description": "The notification topic", "Value": _ref(TOPIC)},
        "LedgerTableName": {
            "Description": "The ledger table",
            "Value": policy.ledger_table or _ref(TABLE),
        },
    }
