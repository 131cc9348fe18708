"""The IAM actions each SageSaver capability needs, declared once.

The README's permission list, ``sagesaver permissions`` and (later) the deployment template
are generated from these declarations; a test checks that every AWS operation a run makes is
declared here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sagesaver.core.partitions import service_principal

SCAN: tuple[str, ...] = (
    "sagemaker:Search",  # endpoints in bulk; without it, ListEndpoints + GetResources
    "sagemaker:ListEndpointConfigs",  # configurations created again since the last run
    "sagemaker:ListEndpoints",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:ListNotebookInstances",
    "sagemaker:ListInferenceComponents",
    "sagemaker:DescribeInferenceComponent",
    "sagemaker:DescribeNotebookInstance",
    "sagemaker:ListTrainingJobs",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:ListTags",  # the protect and owner tags of training jobs holding warm pools
    "sagemaker:ListProcessingJobs",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:ListClusters",
    "sagemaker:DescribeCluster",
    "cloudwatch:ListMetrics",
    "cloudwatch:GetMetricData",
    "tag:GetResources",
)
NOTIFY: tuple[str, ...] = ("sns:Publish",)
SCHEDULE: tuple[str, ...] = (
    "sagemaker:ListNotebookInstances",
    "tag:GetResources",
    "sagemaker:StartNotebookInstance",
    "sagemaker:StopNotebookInstance",
    # a stop's last-moment read of the instance and its tags
    "sagemaker:DescribeNotebookInstance",
    "sagemaker:ListTags",
)
LIFECYCLE: tuple[str, ...] = (
    "sagemaker:DescribeNotebookInstanceLifecycleConfig",
    "sagemaker:CreateNotebookInstanceLifecycleConfig",
    "sagemaker:UpdateNotebookInstanceLifecycleConfig",
    "sagemaker:ListNotebookInstances",
    "tag:GetResources",
    "sagemaker:UpdateNotebookInstance",
    "sagemaker:StopNotebookInstance",
    "sagemaker:StartNotebookInstance",
    "sagemaker:DescribeNotebookInstance",
)
ENFORCE: tuple[str, ...] = (
    "sagemaker:AddTags",
    "sagemaker:DeleteTags",
    "sagemaker:ListTags",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeModel",
    "sagemaker:DeleteEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "cloudwatch:GetMetricData",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
    "application-autoscaling:DescribeScheduledActions",
)
RESTORE: tuple[str, ...] = (
    "sagemaker:DescribeModel",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeEndpoint",
    "sagemaker:CreateModel",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:AddTags",
    "iam:PassRole",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:PutScheduledAction",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
    "tag:GetResources",
)
STUDIO: tuple[str, ...] = (
    "sagemaker:ListDomains",
    "sagemaker:DescribeDomain",
    "sagemaker:ListSpaces",
    "sagemaker:DescribeSpace",
    "sagemaker:ListApps",
    "sagemaker:DescribeApp",
    "sagemaker:ListTags",
    "sagemaker:AddTags",  # the deadline of an announced deletion
    "sagemaker:DeleteTags",  # the deadline of an announcement a change or a use cancelled
    "sagemaker:DeleteApp",
    "cloudwatch:GetMetricData",
)
# Ending an idle warm pool: re-read the job and its tags, then UpdateTrainingJob with
# ResourceConfig.KeepAlivePeriodInSeconds 0 (the job and its model are kept).
RELEASE_WARM_POOLS: tuple[str, ...] = (
    "sagemaker:DescribeTrainingJob",
    "sagemaker:ListTags",
    "sagemaker:UpdateTrainingJob",
)
FAN_OUT: tuple[str, ...] = ("sts:AssumeRole", "organizations:ListAccounts")
ALL_REGIONS: tuple[str, ...] = ("ec2:DescribeRegions",)
LIVE_PRICES: tuple[str, ...] = ("pricing:GetProducts",)

CAPABILITIES: dict[str, tuple[str, ...]] = {
    "scan": SCAN,
    "notify": NOTIFY,
    "schedule": SCHEDULE,
    "lifecycle": LIFECYCLE,
    "enforce": ENFORCE,
    "restore": RESTORE,
    "studio": STUDIO,
    "release-warm-pools": RELEASE_WARM_POOLS,
    "fan-out": FAN_OUT,
    "all-regions": ALL_REGIONS,
    "live-prices": LIVE_PRICES,
}


# Read-only actions that support no resource-level permissions: they need ``Resource: "*"``.
UNSCOPED_ACTIONS = frozenset(
    {
        "sagemaker:Search",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListEndpoints",
        "sagemaker:ListNotebookInstances",
        "sagemaker:ListInferenceComponents",
        "sagemaker:ListTrainingJobs",
        "sagemaker:ListProcessingJobs",
        "sagemaker:ListClusters",
        "sagemaker:ListNotebookInstanceLifecycleConfigs",
        "sagemaker:ListDomains",
        "sagemaker:ListApps",
        "sagemaker:ListSpaces",
        "cloudwatch:ListMetrics",
        "cloudwatch:GetMetricData",
        "tag:GetResources",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:DescribeScheduledActions",
        "ec2:DescribeRegions",
        "pricing:GetProducts",
    }
)
TRAINING_JOBS: tuple[str, ...] = ("training-job",)
# The SageMaker resource types each action is used on; others get every type (``*``) of the
# account and regions.
SAGEMAKER_RESOURCE_TYPES: dict[str, tuple[str, ...]] = {
    "sagemaker:DescribeEndpoint": ("endpoint",),
    "sagemaker:DescribeInferenceComponent": ("inference-component",),
    "sagemaker:DescribeTrainingJob": ("training-job",),
    "sagemaker:UpdateTrainingJob": TRAINING_JOBS,
    "sagemaker:DescribeProcessingJob": ("processing-job",),
    "sagemaker:DescribeCluster": ("cluster",),
    "sagemaker:DeleteEndpoint": ("endpoint",),
    "sagemaker:DescribeEndpointConfig": ("endpoint-config",),
    "sagemaker:DeleteEndpointConfig": ("endpoint-config",),
    "sagemaker:DescribeModel": ("model",),
    "sagemaker:AddTags": ("endpoint", "endpoint-config"),
    "sagemaker:DeleteTags": ("endpoint",),
    "sagemaker:ListTags": ("endpoint", "endpoint-config", "model", "training-job", "app"),
    "sagemaker:StartNotebookInstance": ("notebook-instance",),
    "sagemaker:StopNotebookInstance": ("notebook-instance",),
    "sagemaker:DescribeNotebookInstance": ("notebook-instance",),
    "sagemaker:UpdateNotebookInstance": ("notebook-instance",),
    "sagemaker:DescribeApp": ("app",),
    "sagemaker:DeleteApp": ("app",),
    "sagemaker:DescribeDomain": ("domain",),
    "sagemaker:DescribeSpace": ("space",),
    "sagemaker:CreateModel": ("model",),
    "sagemaker:CreateEndpointConfig": ("endpoint-config",),
    "sagemaker:CreateEndpoint": ("endpoint", "endpoint-config"),
    "sagemaker:UpdateEndpointWeightsAndCapacities": ("endpoint",),
    "sagemaker:DescribeNotebookInstanceLifecycleConfig": ("notebook-instance-lifecycle-config",),
    "sagemaker:CreateNotebookInstanceLifecycleConfig": ("notebook-instance-lifecycle-config",),
    "sagemaker:UpdateNotebookInstanceLifecycleConfig": ("notebook-instance-lifecycle-config",),
}
# Application Auto Scaling changes are scoped to scalable targets, and to SageMaker's.
AUTOSCALING_WRITES = frozenset(
    {
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:PutScheduledAction",
    }
)
# What each capability can change, as `sagesaver permissions --help` and the README say it.
CHANGES: dict[str, str] = {
    "scan": "nothing (reads only)",
    "notify": "publishes to the notification topic",
    "schedule": "starts and stops notebook instances",
    "lifecycle": "creates and updates lifecycle configurations, attaches them (stop/start)",
    "enforce": "tags and deletes endpoints (and their configurations with delete_config)",
    "restore": "creates models, endpoint configurations, endpoints and their auto scaling",
    "studio": "deletes Studio apps",
    "release-warm-pools": "ends idle warm pools of training jobs (the jobs are kept)",
    "fan-out": "nothing itself: assumes the member role",
    "all-regions": "nothing (reads only)",
    "live-prices": "nothing (reads only)",
}


# The changes SageSaver makes only to endpoints the policy selects; when it selects by tag,
# they can carry the same tags as an IAM condition.
SELECTED_ENDPOINT_CHANGES = frozenset(
    {"sagemaker:DeleteEndpoint", "sagemaker:AddTags", "sagemaker:DeleteTags"}
)


def resource_tag_condition(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """``aws:ResourceTag`` conditions equal to the policy's tag selection, or None when there
    is none, or when a value uses a glob IAM cannot express (``[...]``).

    Globs ``*`` and ``?`` become ``StringLike``; a literal ``$`` is written ``${$}`` (IAM reads
    ``${...}`` as a policy variable).
    """
    if not tags or any("[" in value for value in tags.values()):
        return None
    equals: dict[str, str] = {}
    like: dict[str, str] = {}
    for key, value in sorted(tags.items()):
        literal = value.replace("$", "${$}")
        (like if any(c in value for c in "*?") else equals)[f"aws:ResourceTag/{key}"] = literal
    condition: dict[str, Any] = {}
    if equals:
        condition["StringEquals"] = equals
    if like:
        condition["StringLike"] = like
    return condition


def scoped_document(
    capabilities: Iterable[str],
    regions: Iterable[str] = ("*",),
    account: str = "*",
    partition: str = "aws",
    topic_arn: str | None = None,
    role_name: str = "SageSaverExecution",
    delete_config: bool = False,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An IAM policy granting exactly what ``capabilities`` need, each action scoped to the
    resources it acts on: writes never on ``*``; ``iam:PassRole`` only to SageMaker;
    ``sts:AssumeRole`` only on the member role; ``sns:Publish`` only on the topic. When the
    policy selects endpoints by ``tags``, endpoints are changed only when they carry them."""
    actions = set(actions_for(capabilities))
    if not delete_config:
        actions.discard("sagemaker:DeleteEndpointConfig")
    regions = sorted(set(regions)) or ["*"]
    statements: list[dict[str, Any]] = []

    def add(sid: str, chosen: set[str], resource: Any, condition: Any = None) -> None:
        if chosen:
            statement: dict[str, Any] = {
                "Sid": sid,
                "Effect": "Allow",
                "Action": sorted(chosen),
                "Resource": resource,
            }
            if condition:
                statement["Condition"] = condition
            statements.append(statement)

    def sagemaker_arns(chosen: set[str], only: set[str] | None = None) -> list[str]:
        types = sorted(
            t
            for t in {t for a in chosen for t in SAGEMAKER_RESOURCE_TYPES.get(a, ("*",))}
            if only is None or t in only
        )
        return [
            f"arn:{partition}:sagemaker:{region}:{account}:{t if t == '*' else t + '/*'}"
            for region in regions
            for t in types
        ]

    unscoped = {a for a in actions if a in UNSCOPED_ACTIONS or a == "organizations:ListAccounts"}
    sagemaker = {a for a in actions - unscoped if a.startswith("sagemaker:")}
    add("ReadOnlyNoResourceLevel", unscoped, "*")
    add("SageMakerRead", {a for a in sagemaker if is_read_only(a)}, sagemaker_arns(sagemaker))
    changes = {a for a in sagemaker if not is_read_only(a)}
    # Changes to training jobs (warm pools) on their own: sharing the endpoints' statement
    # would grant each change on the other's resource types too.
    jobs = {a for a in changes if SAGEMAKER_RESOURCE_TYPES.get(a) == TRAINING_JOBS}
    add("SageMakerChangeTrainingJobs", jobs, sagemaker_arns(jobs))
    changes -= jobs
    condition = resource_tag_condition(tags or {})
    selected = changes & SELECTED_ENDPOINT_CHANGES
    if condition is not None and selected:
        add(
            "SageMakerChangeSelectedEndpoints",
            selected,
            sagemaker_arns(selected, only={"endpoint"}),
            condition,
        )
        tagging = selected & {"sagemaker:AddTags"}  # backup markers on configurations
        other = {t for a in tagging for t in SAGEMAKER_RESOURCE_TYPES[a]} - {"endpoint"}
        add("SageMakerTagOtherResources", tagging, sagemaker_arns(tagging, only=other))
        changes -= selected
    add("SageMakerChange", changes, sagemaker_arns(changes))
    add(
        "AutoScalingSageMakerVariants",
        actions & AUTOSCALING_WRITES,
        [
            f"arn:{partition}:application-autoscaling:{region}:{account}:scalable-target/*"
            for region in regions
        ],
        {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}},
    )
    topic = topic_arn or f"arn:{partition}:sns:{regions[0]}:{account}:*"
    add("Notify", actions & {"sns:Publish"}, topic)
    add(
        "AssumeMemberRole",
        actions & {"sts:AssumeRole"},
        f"arn:{partition}:iam::*:role/{role_name}",
    )
    add(
        "PassModelRoleToSageMaker",
        actions & {"iam:PassRole"},
        f"arn:{partition}:iam::{account}:role/*",
        {"StringEquals": {"iam:PassedToService": service_principal("sagemaker")}},
    )
    done = {a for s in statements for a in s["Action"]}
    missing = actions - done
    if missing:  # every declared action must have a scoping rule
        raise ValueError(f"no resource scoping is declared for {sorted(missing)}")
    return {"Version": "2012-10-17", "Statement": statements}


def is_read_only(action: str) -> bool:
    """Describe, List, Get and Search actions change nothing."""
    verb = action.split(":", 1)[1]
    return verb.startswith(("Describe", "List", "Get", "Search"))


def actions_for(capabilities: Iterable[str]) -> list[str]:
    """The sorted, de-duplicated IAM actions of the named capabilities."""
    actions: set[str] = set()
    for name in capabilities:
        actions.update(CAPABILITIES[name])
    return sorted(actions)
