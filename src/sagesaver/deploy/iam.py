"""The stack's IAM: the Lambda functions (:data:`FUNCTIONS`) and the actions their roles are
granted, each on the narrowest resources the services allow (one statement per kind of grant),
with the guards of their code as explicit ``Deny`` statements
(:func:`sagesaver.core.permissions.guard_denies`); the roles; and the actions a template
grants, for the checks.

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sagesaver.core.channels import channel_references, reference_arn
from sagesaver.core.errors import InputError
from sagesaver.core.partitions import service_principal
from sagesaver.core.permissions import (
    CAPABILITIES,
    CHANNEL_READS,
    SAGEMAKER_RESOURCE_TYPES,
    SELECTED_ENDPOINT_CHANGES,
    TRAINING_JOBS,
    UNSCOPED_ACTIONS,
    guard_denies,
    is_read_only,
    resource_tag_condition,
)
from sagesaver.core.policy import LEDGER_TABLE_RE, Policy
from sagesaver.deploy.names import (
    DEAD_LETTERS,
    IDLE_SCAN,
    LEDGER_KEY,
    SCHEDULE_TICK,
    TABLE,
    TOPIC,
    TOPIC_KEY,
    Json,
    _arn_of,
    _log_group_id,
    _ref,
    _sub,
)

# Actions the stack grants beyond :data:`sagesaver.core.permissions.CAPABILITIES`.
LEDGER_ACTIONS: tuple[str, ...] = (
    "dynamodb:DeleteItem",  # a backup taken for a deletion that did not happen is forgotten
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",  # leases, announcements and backups are read by key prefix
    "dynamodb:UpdateItem",  # a lease moves on, conditionally, step by step
)
# Each backup's environment values and digest sealed under the ledger table's own key
# (DescribeKey: it is a customer managed key; Encrypt: the envelope). A function deletes but
# never restores: it may not decrypt a backup (the key policy lets only operators).
LEDGER_KEY_ACTIONS: tuple[str, ...] = ("kms:DescribeKey", "kms:Encrypt")
LOG_ACTIONS: tuple[str, ...] = ("logs:CreateLogStream", "logs:PutLogEvents")
INVOKE_ACTIONS: tuple[str, ...] = ("lambda:InvokeFunction",)
# Publishing to the topic encrypted with the stack's key needs the key too.
TOPIC_KEY_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")
# A failed asynchronous invocation (after Lambda's retries) lands in the dead-letter queue.
DEAD_LETTER_ACTIONS: tuple[str, ...] = ("sqs:SendMessage",)
# The policy's price file, when it is in S3 (``prices: s3://BUCKET/KEY``): that object only.
PRICE_FILE_ACTIONS: tuple[str, ...] = ("s3:GetObject",)
# What the schedule tick adds to ``enforce`` when a schedule parks endpoints (resources:
# [endpoints]): their listing, and bringing them back from the backup (the models and the
# configuration are kept when an endpoint is parked, so no CreateModel and no PassRole).
PARKING_ACTIONS: tuple[str, ...] = (
    "sagemaker:ListEndpoints",
    "sagemaker:ListInferenceComponents",  # a host's components: their copies may go to 0
    "sagemaker:DescribeInferenceComponent",
    "sagemaker:UpdateInferenceComponentRuntimeConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:PutScheduledAction",
)
AUTOSCALING_WRITES = frozenset(a for a in PARKING_ACTIONS if a.startswith("application-"))
EXTRA_ACTIONS: dict[str, tuple[str, ...]] = {
    "price-file": PRICE_FILE_ACTIONS,
    "ledger": LEDGER_ACTIONS,
    "ledger-key": LEDGER_KEY_ACTIONS,
    "logs": LOG_ACTIONS,
    "invoke": INVOKE_ACTIONS,
    "topic-key": TOPIC_KEY_ACTIONS,
    "dead-letter": DEAD_LETTER_ACTIONS,
    "chat-channels": tuple(CHANNEL_READS.values()),  # with notify.channels, only those named
    "parking": PARKING_ACTIONS,
}


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the stack and what its role may do.

    ``capabilities`` name entries of :data:`sagesaver.core.permissions.CAPABILITIES`;
    ``deleting`` are added when the policy's ``endpoints.action`` is ``delete`` (the only case
    in which the function changes endpoints), ``releasing`` when ``jobs.warm_pools.action`` is
    ``release`` (the only case in which it changes training jobs), ``studio`` when
    ``studio_apps.action`` is ``delete`` (the only case in which it reads Studio and deletes
    its apps). ``ledger`` says when it uses the DynamoDB ledger (:data:`LEDGER_ACTIONS`):
    ``"always"`` or ``"deleting"`` (deleting, releasing or deleting Studio apps).
    """

    handler: str
    name: str
    description: str
    capabilities: tuple[str, ...]
    deleting: tuple[str, ...] = ()
    releasing: tuple[str, ...] = ()
    studio: tuple[str, ...] = ()
    # added when a schedule parks endpoints (with :data:`PARKING_ACTIONS`)
    parking: tuple[str, ...] = ()
    ledger: Literal["always", "deleting"] = "always"
    memory_mb: int = 512
    timeout_s: int = 300

    def capabilities_for(self, policy: Policy) -> tuple[str, ...]:
        """The capabilities the function needs under ``policy``."""
        return (
            self.capabilities
            + (self.deleting if _deletes(policy) else ())
            + (self.releasing if _releases(policy) else ())
            + (self.studio if _deletes_studio_apps(policy) else ())
            + (self.parking if _parks(policy) else ())
        )

    def uses_ledger(self, policy: Policy) -> bool:
        """Whether the function reads or writes the ledger under ``policy``."""
        return (
            self.ledger == "always"
            or _deletes(policy)
            or _releases(policy)
            or _deletes_studio_apps(policy)
        )

    def actions_for(self, policy: Policy) -> list[str]:
        """Every IAM action the function's role is granted under ``policy``, sorted."""
        actions = {a for c in self.capabilities_for(policy) for a in CAPABILITIES[c]}
        if not policy.endpoints.delete_config:  # configurations are kept unless asked
            actions.discard("sagemaker:DeleteEndpointConfig")
        if "sns:Publish" in actions:  # notify: the chat channels' references it names
            references = channel_references(policy.notify.channels)
            actions.update(CHANNEL_READS[service] for service in references)
        if self.parking and _parks(policy):
            actions.update(PARKING_ACTIONS)
        if self.uses_ledger(policy):
            actions.update(LEDGER_ACTIONS)
            if "enforce" in self.capabilities_for(policy):  # it takes backups
                actions.update(LEDGER_KEY_ACTIONS)
        if "sns:Publish" in actions:
            actions.update(TOPIC_KEY_ACTIONS)
        actions.update(LOG_ACTIONS)
        actions.update(DEAD_LETTER_ACTIONS)
        if price_file_object(policy) is not None:
            actions.update(PRICE_FILE_ACTIONS)
        return sorted(actions)


FUNCTIONS: dict[str, FunctionSpec] = {
    IDLE_SCAN: FunctionSpec(
        handler="sagesaver.lambda_handlers.idle_endpoints",
        name="idle-scan",
        description="SageSaver: report idle SageMaker endpoints (and delete them per policy)",
        capabilities=("scan", "notify", "live-prices"),
        deleting=("enforce",),
        releasing=("release-warm-pools",),
        studio=("studio",),
        ledger="always",  # a retried invocation must not send its digest twice
        memory_mb=512,
        timeout_s=600,
    ),
    SCHEDULE_TICK: FunctionSpec(
        handler="sagesaver.lambda_handlers.schedule_tick",
        name="schedule-tick",
        description="SageSaver: start and stop notebook instances on their schedules",
        capabilities=("schedule", "live-prices"),
        parking=("enforce", "notify"),  # the parking digest goes where the idle one goes
        ledger="always",
        memory_mb=256,
        timeout_s=300,
    ),
}


def price_file_object(policy: Policy) -> str | None:
    """``BUCKET/KEY`` of the policy's price file in S3, or None when it names none. A local
    path is an :class:`InputError`: the functions cannot read the machine that rendered it."""
    if policy.prices is None:
        return None
    if not policy.prices.startswith("s3://"):
        raise InputError(
            f"prices: {policy.prices} is a local file, which the deployed functions cannot "
            "read; upload it and name it as s3://BUCKET/KEY"
        )
    return policy.prices.removeprefix("s3://")


def declared_actions() -> set[str]:
    """Every action the template may grant: all capabilities plus :data:`EXTRA_ACTIONS`."""
    found = {a for actions in CAPABILITIES.values() for a in actions}
    found.update(a for actions in EXTRA_ACTIONS.values() for a in actions)
    return found


def _deletes(policy: Policy) -> bool:
    return policy.endpoints.action == "delete"


def _releases(policy: Policy) -> bool:
    return policy.jobs.enabled and policy.jobs.warm_pools.action == "release"


def _deletes_studio_apps(policy: Policy) -> bool:
    return policy.studio_apps.action == "delete"


def _parks(policy: Policy) -> bool:
    return any(spec.targets("endpoints") for spec in policy.schedules.values())


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
    ledger_key: list[str] = []
    logs: list[str] = []
    topic_key: list[str] = []
    dead_letters: list[str] = []
    price_file: list[str] = []
    channel_reads: dict[str, list[str]] = {}
    autoscaling: list[str] = []
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
        elif action in LEDGER_KEY_ACTIONS:
            ledger_key.append(action)
        elif action in LOG_ACTIONS:
            logs.append(action)
        elif action in TOPIC_KEY_ACTIONS:
            topic_key.append(action)
        elif action in DEAD_LETTER_ACTIONS:
            dead_letters.append(action)
        elif action in PRICE_FILE_ACTIONS:
            price_file.append(action)
        elif action in CHANNEL_READS.values():
            channel_reads.setdefault(action.split(":", 1)[0], []).append(action)
        elif action in AUTOSCALING_WRITES:
            autoscaling.append(action)
        else:
            raise ValueError(f"{function}: no resource scoping is declared for {action}")
    if spec.parking and _parks(policy) and ledger_key:  # parked endpoints come back from
        ledger_key.append("kms:Decrypt")  # backups sealed under the ledger table's key
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
    # endpoints.tags selects what idle deletion may change; a schedule that parks selects its
    # endpoints by its own keys (in code, as for notebooks), so its function is not held to it.
    parks = bool(spec.parking) and _parks(policy)
    condition = None if parks else resource_tag_condition(policy.endpoints.tags)
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
        # ...and tagged on their other types: configurations, and with Studio deletion the
        # apps' deadline tags (set and removed, on app/* with DeleteApp)
        apps = "sagemaker:DeleteApp" in sagemaker_write
        rest = [
            a
            for a in sagemaker_write
            if a not in selected
            or a == "sagemaker:AddTags"
            or (apps and a == "sagemaker:DeleteTags")
        ]
        other_types = {
            t for a in rest for t in SAGEMAKER_RESOURCE_TYPES.get(a, ("*",)) if t != "endpoint"
        }
        add("SageMakerChange", rest, _sagemaker_arns(rest, regions, only=other_types))
    add(
        "ParkedEndpointsScaling",
        autoscaling,
        [
            _sub(
                f"arn:${{AWS::Partition}}:application-autoscaling:{region}:${{AWS::AccountId}}:"
                "scalable-target/*"
            )
            for region in regions
        ],
    )
    add("Notify", publish, _ref(TOPIC))
    add("Ledger", ledger, _ledger_arn(policy))
    add("LedgerKey", ledger_key, _ledger_key_arn(policy))
    add("Logs", logs, _arn_of(_log_group_id(function)))
    add("TopicKey", topic_key, _arn_of(TOPIC_KEY))
    add("DeadLetters", dead_letters, _arn_of(DEAD_LETTERS))
    price_object = (price_file_object(policy) or "").replace("${", "${!")  # a literal $
    add("PriceFile", price_file, _sub(f"arn:${{AWS::Partition}}:s3:::{price_object}"))
    references = channel_references(policy.notify.channels)
    for sid, service in (
        ("ChatWebhookParameters", "ssm"),
        ("ChatWebhookSecrets", "secretsmanager"),
    ):
        arns = _channel_arns(references.get(service, []), service)
        add(sid, channel_reads.get(service, []), arns)
    # What the function's code refuses, refused by IAM too (protect tag, exclude).
    actions = spec.actions_for(policy)
    guarded = spec.capabilities_for(policy)
    if spec.parking and _parks(policy):  # the park's guards, as `permissions -c schedule` has
        guarded += ("park-endpoints", "park-components")
    for deny in guard_denies(guarded, actions, policy):
        statements.append(deny.statement(lambda ends: _sagemaker_resources(ends, regions)))
    return statements


def _channel_arns(names: Sequence[tuple[str | None, str]], service: str) -> list[Json]:
    """The ARNs of the chat channels' parameters or secrets: exactly those the policy names,
    in the channel's region, else the stack's (where the function runs and reads them)."""
    return [
        _sub(
            reference_arn(
                service,
                name,  # no "$" in parameter or secret names: nothing to escape
                "${AWS::Partition}",
                region or "${AWS::Region}",
                "${AWS::AccountId}",
            )
        )
        for region, name in names
    ]


def _sagemaker_resources(ends: Sequence[str], regions: Sequence[str]) -> list[Json]:
    """The account's SageMaker ARNs ending in ``ends``, in each of ``regions``."""
    return [
        _sub(f"arn:${{AWS::Partition}}:sagemaker:{region}:${{AWS::AccountId}}:{end}")
        for region in regions
        for end in sorted(set(ends))
    ]


# Every role the stacks create carries these tags: the ledger key recognises SageSaver's roles
# by them (``aws:PrincipalTag``), never by the names CloudFormation generates, which it
# shortens for long stack names (see :func:`sagesaver.deploy.resources._ledger_key`).
STACK_TAG = "sagesaver:stack"
FUNCTION_TAG = "sagesaver:function"


def _role(
    service: str, policy_name: str, statements: list[Json], *, serves: str | None = None
) -> Json:
    """A role ``service`` assumes, with ``statements`` as its inline policy, tagged with its
    stack (:data:`STACK_TAG`) and, for a function's role, the logical id of the function or
    functions (space-separated) it ``serves`` (:data:`FUNCTION_TAG`)."""
    tags = [{"Key": STACK_TAG, "Value": _ref("AWS::StackName")}]
    if serves is not None:
        tags.append({"Key": FUNCTION_TAG, "Value": serves})
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
            "Tags": tags,
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


def _ledger_region(policy: Policy) -> str:
    """The region of the team's table the policy names (the stack's own, when it names none)."""
    match = LEDGER_TABLE_RE.match(policy.ledger or "")
    return (match.group("region") if match else None) or "${AWS::Region}"


def _ledger_arn(policy: Policy) -> Any:
    """The ledger table's ARN: the team's table the policy names, else the stack's own."""
    table = policy.ledger_table
    if table is None:
        return _arn_of(TABLE)
    region = _ledger_region(policy)
    return _sub(f"arn:${{AWS::Partition}}:dynamodb:{region}:${{AWS::AccountId}}:table/{table}")


def _ledger_key_arn(policy: Policy) -> Any:
    """The key backups are sealed under: the stack's ledger key, or for the team's table (whose
    key the stack cannot know) the keys of its region in the account, which its key policy
    must also let the function use."""
    if policy.ledger_table is None:
        return _arn_of(LEDGER_KEY)
    region = _ledger_region(policy)
    return _sub(f"arn:${{AWS::Partition}}:kms:{region}:${{AWS::AccountId}}:key/*")
