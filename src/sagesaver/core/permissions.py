"""The IAM actions each SageSaver capability needs, declared once, and the guards of its code
written as IAM.

The README's permission list, ``sagesaver permissions`` (one policy per capability, or their
union) and the deployment template's roles are generated from these declarations; a test
checks that every AWS operation a run makes is declared here. What the code refuses before it
acts (a protect tag, an ``exclude`` name, a change to the protect tag) is refused by explicit
``Deny`` statements too (:func:`guard_denies`); what IAM cannot say is listed
(:func:`left_to_code`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagesaver.core.channels import channel_references, reference_arn
from sagesaver.core.errors import InputError
from sagesaver.core.partitions import service_principal
from sagesaver.core.policy import FALSE_VALUES, PRICES_S3_RE, Policy

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
# What notify adds when the policy names chat channels (notify.channels): reading their webhook
# URLs and signing secrets, by the service of the reference, on only those named.
CHANNEL_READS: dict[str, str] = {
    "ssm": "ssm:GetParameter",
    "secretsmanager": "secretsmanager:GetSecretValue",
}
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
# What ``schedule`` adds when a schedule of the policy parks endpoints (``resources:
# [endpoints]``): their listing, the components a host has (never parked), the guarded
# deletion, and the restore that keeps models and configurations (no CreateModel, no PassRole).
PARK_ENDPOINTS: tuple[str, ...] = (
    "sagemaker:ListEndpoints",
    "sagemaker:ListInferenceComponents",
    # a host whose instances may go to 0 is parked by its components' copies
    "sagemaker:DescribeInferenceComponent",
    "sagemaker:UpdateInferenceComponentRuntimeConfig",
    *(a for a in ENFORCE if a != "sagemaker:DeleteEndpointConfig"),
    "sagemaker:CreateEndpoint",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
    "application-autoscaling:RegisterScalableTarget",
    "application-autoscaling:PutScalingPolicy",
    "application-autoscaling:PutScheduledAction",
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
# `studio configure` (studio-idle): Studio's own idle shutdown set on the domains, user
# profiles and spaces that lack it (each described and its tags read again before its update).
STUDIO_IDLE: tuple[str, ...] = (
    "sagemaker:ListDomains",
    "sagemaker:DescribeDomain",
    "sagemaker:ListUserProfiles",
    "sagemaker:DescribeUserProfile",
    "sagemaker:ListSpaces",
    "sagemaker:DescribeSpace",
    "sagemaker:ListTags",
    "sagemaker:UpdateDomain",
    "sagemaker:UpdateUserProfile",
    "sagemaker:UpdateSpace",
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
    "studio-idle": STUDIO_IDLE,
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
        "sagemaker:ListUserProfiles",
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
    "sagemaker:ListTags": (
        "endpoint",
        "endpoint-config",
        "model",
        "training-job",
        "app",
        "domain",
        "user-profile",
        "space",
    ),
    "sagemaker:StartNotebookInstance": ("notebook-instance",),
    "sagemaker:StopNotebookInstance": ("notebook-instance",),
    "sagemaker:DescribeNotebookInstance": ("notebook-instance",),
    "sagemaker:UpdateNotebookInstance": ("notebook-instance",),
    "sagemaker:DescribeApp": ("app",),
    "sagemaker:DeleteApp": ("app",),
    "sagemaker:DescribeDomain": ("domain",),
    "sagemaker:DescribeSpace": ("space",),
    "sagemaker:DescribeUserProfile": ("user-profile",),
    "sagemaker:UpdateDomain": ("domain",),
    "sagemaker:UpdateUserProfile": ("user-profile",),
    "sagemaker:UpdateSpace": ("space",),
    "sagemaker:CreateModel": ("model",),
    "sagemaker:CreateEndpointConfig": ("endpoint-config",),
    "sagemaker:CreateEndpoint": ("endpoint", "endpoint-config"),
    "sagemaker:UpdateEndpointWeightsAndCapacities": ("endpoint",),
    "sagemaker:UpdateInferenceComponentRuntimeConfig": ("inference-component",),
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
    "notify": "publishes to the notification topic; reads the chat channels' webhooks",
    "schedule": "starts and stops notebook instances",
    "lifecycle": "creates and updates lifecycle configurations, attaches them (stop/start)",
    "enforce": "tags and deletes endpoints (and their configurations with delete_config)",
    "restore": "creates models, endpoint configurations, endpoints and their auto scaling",
    "studio": "deletes Studio apps",
    "release-warm-pools": "ends idle warm pools of training jobs (the jobs are kept)",
    "fan-out": "nothing itself: assumes the member role",
    "all-regions": "nothing (reads only)",
    "live-prices": "nothing (reads only)",
    "studio-idle": "sets Studio's idle shutdown on domains, user profiles and spaces",
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


# The lifecycle configuration the stack creates and the README installs: lifecycle
# configurations are written only under the names given (`sagesaver permissions
# --lifecycle-config`), this one by default. deploy/template.py names the stack's with it.
LIFECYCLE_CONFIG_NAME = "sagesaver-autostop"
LIFECYCLE_CONFIG_WRITES = frozenset(
    {
        "sagemaker:CreateNotebookInstanceLifecycleConfig",
        "sagemaker:UpdateNotebookInstanceLifecycleConfig",
    }
)
ROLE_ARN_RE = re.compile(r"^arn:(?P<partition>aws(-cn|-us-gov)?):iam::\d{12}:role/[\w+=,.@/-]+$")
ROLE_PATH_RE = re.compile(r"^/([\w+=,.@-]+/)+$")
# What IAM can match of a name glob: the characters of SageMaker names and the wildcards * and
# ? (IAM's and fnmatch's agree). A pattern with other characters matches no SageMaker name.
IAM_GLOB_RE = re.compile(r"^[A-Za-z0-9*?-]+$")


@dataclass(frozen=True)
class GuardedActs:
    """The acts of one capability that SageSaver's code refuses on a protected resource (and,
    with ``excludes``, on one whose name matches the kind's ``exclude``): what becomes
    explicit ``Deny`` statements. ``resource_type`` is the SageMaker type acted on;
    ``name_arn`` the ARN resource part (after ``type/``) for a name pattern."""

    sid: str
    actions: tuple[str, ...]
    resource_type: str
    protect_tag: Callable[[Policy], str]
    excludes: Callable[[Policy], Sequence[str]] | None
    name_arn: Callable[[str], str]
    # A second protect tag the code refuses too (a park: the schedules' protect tag).
    also_protect: Callable[[Policy], str] | None = None


# Each kind's acts and the guard its code applies before them (core/rules, pipelines/acts):
# endpoints (DeleteEndpoint), Studio apps (DeleteApp: the app's space or user profile name is
# the third part of its ARN), warm pools (UpdateTrainingJob), notebooks started and stopped by
# schedules (the schedule protect tag) and attached by lifecycle install (the notebooks' one).
# Notebooks' ``exclude`` only narrows what a scan reports: no act refuses it.
GUARDED: dict[str, GuardedActs] = {
    "enforce": GuardedActs(
        "Endpoints",
        ("sagemaker:DeleteEndpoint",),
        "endpoint",
        lambda p: p.endpoints.protect_tag,
        lambda p: p.endpoints.exclude,
        lambda name: f"endpoint/{name}",
    ),
    "studio": GuardedActs(
        "StudioApps",
        ("sagemaker:DeleteApp",),
        "app",
        lambda p: p.studio_apps.protect_tag,
        lambda p: p.studio_apps.exclude,
        lambda name: f"app/*/{name}/*",
    ),
    "release-warm-pools": GuardedActs(
        "WarmPools",
        ("sagemaker:UpdateTrainingJob",),
        "training-job",
        lambda p: p.jobs.warm_pools.protect_tag,
        lambda p: p.jobs.warm_pools.exclude,
        lambda name: f"training-job/{name}",
    ),
    # Not capabilities of their own: what schedule's parking of endpoints adds
    # (PARK_ENDPOINTS), refused by the park's guard on the endpoints' protect tag and the
    # schedules' one (core/rules/parking.protected): the deletion, the instances taken to 0,
    # and an inference component's copies (its own tags: :data:`PARK_LEFT_TO_CODE`). Both
    # actions take the resource's aws:ResourceTag (resource types endpoint and
    # inference-component:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html).
    "park-endpoints": GuardedActs(
        "ParkedEndpoints",
        ("sagemaker:DeleteEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"),
        "endpoint",
        lambda p: p.endpoints.protect_tag,
        None,
        lambda name: f"endpoint/{name}",
        lambda p: p.schedule_protect_tag,
    ),
    "park-components": GuardedActs(
        "ParkedComponents",
        ("sagemaker:UpdateInferenceComponentRuntimeConfig",),
        "inference-component",
        lambda p: p.endpoints.protect_tag,
        None,
        lambda name: f"inference-component/{name}",
        lambda p: p.schedule_protect_tag,
    ),
    "schedule": GuardedActs(
        "ScheduledNotebooks",
        ("sagemaker:StartNotebookInstance", "sagemaker:StopNotebookInstance"),
        "notebook-instance",
        lambda p: p.schedule_protect_tag,
        None,
        lambda name: f"notebook-instance/{name}",
    ),
    "lifecycle": GuardedActs(
        "NotebooksAttached",
        (
            "sagemaker:StartNotebookInstance",
            "sagemaker:StopNotebookInstance",
            "sagemaker:UpdateNotebookInstance",
        ),
        "notebook-instance",
        lambda p: p.notebooks.protect_tag,
        None,
        lambda name: f"notebook-instance/{name}",
    ),
}
TAGGING = ("sagemaker:AddTags", "sagemaker:DeleteTags")


@dataclass(frozen=True)
class Deny:
    """One explicit ``Deny``: its actions on SageMaker ARNs ending in ``resources`` (what
    follows ``arn:PARTITION:sagemaker:REGION:ACCOUNT:``), under ``condition``."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, Any] | None = None
    # ``resources`` written as they are (another service's, or "*"), not SageMaker ARN ends.
    literal: bool = False

    def statement(self, arns: Callable[[Sequence[str]], Any]) -> dict[str, Any]:
        """The statement, its resources made ARNs by ``arns`` (per region, partition)."""
        statement: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Deny",
            "Action": sorted(self.actions),
            "Resource": list(self.resources) if self.literal else arns(self.resources),
        }
        if self.condition:
            statement["Condition"] = self.condition
        return statement


# The member role is assumed only in an account of the caller's own organisation: the
# account of the role (aws:ResourceOrgID) against the caller's (the policy variable).
SAME_ORGANISATION: dict[str, Any] = {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}


def protected_condition(protect_tag: str) -> dict[str, Any]:
    """True when a resource carries ``protect_tag`` with a value other than false/no/0/off
    (any case), as :meth:`sagesaver.core.policy.Selection.is_protected` reads it. IAM cannot
    strip spaces: a value such as `` false`` counts as protecting here (refused, never acted
    on by mistake)."""
    key = f"aws:ResourceTag/{protect_tag}"
    return {"Null": {key: "false"}, "StringNotEqualsIgnoreCase": {key: sorted(FALSE_VALUES)}}


def iam_name_patterns(patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """The name globs IAM can match (as written and lower-cased: SageMaker writes names in
    lower case in its ARNs), and apart those it cannot (``[...]``): left to SageSaver's code.
    A glob of characters no SageMaker name has matches nothing and needs no statement."""
    matched: list[str] = []
    left: list[str] = []
    for pattern in patterns:
        if "[" in pattern:
            left.append(pattern)
        elif IAM_GLOB_RE.match(pattern):
            matched += [pattern] if pattern == pattern.lower() else [pattern, pattern.lower()]
    return sorted(set(matched)), left


def guard_denies(
    capabilities: Iterable[str], actions: Iterable[str], policy: Policy | None = None
) -> list[Deny]:
    """The explicit ``Deny`` statements of what SageSaver's code refuses, for the acts
    ``actions`` grants: on resources carrying the protect tag, on names the ``exclude`` of
    their kind matches, and on changing the protect tag itself (``AddTags`` only when
    ``restore``, which recreates a backup's own tags, is not among ``capabilities``)."""
    policy = policy or Policy()
    chosen = list(dict.fromkeys(capabilities))
    granted = set(actions)
    denies: list[Deny] = []
    for capability in chosen:
        guarded = GUARDED.get(capability)
        acts = tuple(a for a in guarded.actions if a in granted) if guarded else ()
        if guarded is None or not acts:
            continue
        denies.append(
            Deny(
                f"DenyProtected{guarded.sid}",
                acts,
                (f"{guarded.resource_type}/*",),
                protected_condition(guarded.protect_tag(policy)),
            )
        )
        also = guarded.also_protect(policy) if guarded.also_protect else None
        if also is not None and also != guarded.protect_tag(policy):
            denies.append(
                Deny(
                    f"DenyScheduleProtected{guarded.sid}",
                    acts,
                    (f"{guarded.resource_type}/*",),
                    protected_condition(also),
                )
            )
        names, _ = iam_name_patterns(guarded.excludes(policy) if guarded.excludes else ())
        if names:
            arns = tuple(guarded.name_arn(n) for n in names)
            denies.append(Deny(f"DenyExcluded{guarded.sid}", acts, arns))
    if "park-endpoints" in chosen and PARK_TARGETS in granted:
        denies += _protected_targets(policy)
    tagging = tuple(
        a for a in TAGGING if a in granted and (a != "sagemaker:AddTags" or "restore" not in chosen)
    )
    if tagging:  # every protect tag of the policy: SageSaver writes and removes none
        keys = sorted({spec.protect_tag(policy).replace("$", "${$}") for spec in GUARDED.values()})
        denies.append(
            Deny(
                "DenyProtectTagChanges",
                tagging,
                ("*",),
                {"ForAnyValue:StringEquals": {"aws:TagKeys": keys}},
            )
        )
    return denies


PARK_TARGETS = "application-autoscaling:RegisterScalableTarget"
# What the park's Deny statements cannot hold: the code reads the endpoint's tags, IAM the
# acted-on resource's own.
PARK_LEFT_TO_CODE = (
    "schedule: sagemaker:UpdateInferenceComponentRuntimeConfig is denied on an inference "
    "component carrying a protect tag itself; a component of a protected endpoint without "
    "one is refused by SageSaver alone",
    "schedule: application-autoscaling:RegisterScalableTarget is denied on a scalable target "
    "carrying a protect tag itself (its endpoint's tags are not its own); on any other, "
    "SageSaver alone refuses a protected endpoint's",
)


def _protected_targets(policy: Policy) -> list[Deny]:
    """The park's ``RegisterScalableTarget`` refused on a scalable target carrying a protect
    tag: the action acts on ``scalable-target`` resources, whose ``aws:ResourceTag`` is the
    target's own tags
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsapplicationautoscaling.html,
    https://docs.aws.amazon.com/autoscaling/application/userguide/resource-tagging-support.html).
    Any resource: the condition alone says which."""
    keys = sorted({policy.endpoints.protect_tag, policy.schedule_protect_tag})
    return [
        Deny(
            f"DenyProtectedScalableTargets{index}",
            (PARK_TARGETS,),
            ("*",),
            protected_condition(key),
            literal=True,
        )
        for index, key in enumerate(keys, 1)
    ]


def left_to_code(capabilities: Iterable[str], policy: Policy | None = None) -> list[str]:
    """The guards of ``capabilities`` that no IAM statement can hold, one line each."""
    policy = policy or Policy()
    chosen = set(capabilities)
    lines: list[str] = []
    for capability, guarded in GUARDED.items():
        if capability in chosen and guarded.excludes:
            _, left = iam_name_patterns(guarded.excludes(policy))
            lines += [
                f"{capability}: exclude {p!r} is not an IAM pattern ([...]): "
                "SageSaver alone refuses it"
                for p in left
            ]
    if chosen & {"schedule", "lifecycle"} and policy.notebooks.exclude:
        lines.append(
            "notebooks.exclude only narrows what a scan reports: schedules and lifecycle "
            "install do not read it, and no Deny claims it"
        )
    if "schedule" in chosen and parks_endpoints(policy):
        lines += PARK_LEFT_TO_CODE
    if "enforce" in chosen and policy.endpoints.delete_config:
        lines.append(
            "enforce: DeleteEndpointConfig is not conditioned: SageSaver deletes the "
            "configuration of the endpoint it deleted, and tags none it deletes"
        )
    return lines


def role_resources(pass_roles: Iterable[str], partition: str, account: str) -> list[str]:
    """The role ARNs ``iam:PassRole`` is granted on: each ARN as given, each path
    (``/sagemaker/``) as every role under it in ``account``. Raises InputError otherwise
    (``*``, the root path ``/``, a role of another partition)."""
    resources = []
    for value in pass_roles:
        match = ROLE_ARN_RE.match(value)
        if match:
            if match["partition"] != partition:
                raise InputError(f"--pass-role {value}: not in partition {partition}")
            resources.append(value)
        elif ROLE_PATH_RE.match(value):
            resources.append(f"arn:{partition}:iam::{account}:role{value}*")
        else:
            raise InputError(
                f"--pass-role {value}: give a role ARN (arn:{partition}:iam::ACCOUNT:role/NAME) "
                "or a path under which the models' roles are (/sagemaker/), never every role"
            )
    return sorted(set(resources))


def scoped_document(
    capabilities: Iterable[str],
    regions: Iterable[str] = ("*",),
    account: str = "*",
    partition: str = "aws",
    topic_arn: str | None = None,
    role_name: str = "SageSaverExecution",
    delete_config: bool = False,
    tags: Mapping[str, str] | None = None,
    *,
    policy: Policy | None = None,
    pass_roles: Sequence[str] = (),
    lifecycle_configs: Sequence[str] = (LIFECYCLE_CONFIG_NAME,),
) -> dict[str, Any]:
    """An IAM policy granting exactly what ``capabilities`` need, each action scoped to the
    resources it acts on: writes never on ``*``; ``iam:PassRole`` only on ``pass_roles``
    (role ARNs, from :func:`role_resources`: none given, none granted) and only to
    SageMaker; lifecycle configurations written only under ``lifecycle_configs``;
    ``sts:AssumeRole`` only on the member role and only in the caller's organisation;
    ``sns:Publish`` only on the topic. When the policy selects endpoints by ``tags``,
    endpoints are changed only when they carry them. Then the guards of ``policy``
    (:func:`guard_denies`) as explicit ``Deny`` statements."""
    capabilities = list(capabilities)
    actions = set(actions_for(capabilities))
    if not delete_config:
        actions.discard("sagemaker:DeleteEndpointConfig")
    if not pass_roles:
        actions.discard("iam:PassRole")
    references = channel_references((policy or Policy()).notify.channels)
    if "notify" in capabilities:  # the chat channels' references, only those named
        actions.update(CHANNEL_READS[service] for service in references)
    price_file = price_file_arn(policy, partition)
    if price_file is not None and "scan" in capabilities:  # every command that prices scans
        actions.add("s3:GetObject")
    guarded = list(capabilities)
    if "schedule" in capabilities and parks_endpoints(policy):
        actions.update(PARK_ENDPOINTS)
        guarded += ["park-endpoints", "park-components"]
        tags = None  # a schedule selects the endpoints it parks by its own keys, in code
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

    def arns_of(suffixes: Iterable[str]) -> list[str]:
        ends = sorted(set(suffixes))
        return [
            f"arn:{partition}:sagemaker:{region}:{account}:{end}"
            for region in regions
            for end in ends
        ]

    def sagemaker_arns(chosen: set[str], only: set[str] | None = None) -> list[str]:
        types = {t for a in chosen for t in SAGEMAKER_RESOURCE_TYPES.get(a, ("*",))}
        return arns_of(t if t == "*" else t + "/*" for t in types if only is None or t in only)

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
    # Lifecycle configurations (on-start scripts run as root) only under SageSaver's names.
    configs = changes & LIFECYCLE_CONFIG_WRITES
    add(
        "SageSaverLifecycleConfigurations",
        configs,
        arns_of(f"notebook-instance-lifecycle-config/{n}" for n in lifecycle_configs),
    )
    changes -= configs
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
    add("PriceFile", actions & {"s3:GetObject"}, price_file)
    for sid, service in (
        ("ChatWebhookParameters", "ssm"),
        ("ChatWebhookSecrets", "secretsmanager"),
    ):
        add(
            sid,
            actions & {CHANNEL_READS[service]},
            channel_resources(references.get(service, []), service, partition, account),
        )
    add(
        "AssumeMemberRole",
        actions & {"sts:AssumeRole"},
        f"arn:{partition}:iam::*:role/{role_name}",
        SAME_ORGANISATION,
    )
    add(
        "PassModelRoleToSageMaker",
        actions & {"iam:PassRole"},
        list(pass_roles),
        {"StringEquals": {"iam:PassedToService": service_principal("sagemaker")}},
    )
    done = {a for s in statements for a in s["Action"]}
    missing = actions - done
    if missing:  # every declared action must have a scoping rule
        raise ValueError(f"no resource scoping is declared for {sorted(missing)}")
    statements += [d.statement(arns_of) for d in guard_denies(guarded, actions, policy)]
    return {"Version": "2012-10-17", "Statement": statements}


def price_file_arn(policy: Policy | None, partition: str) -> str | None:
    """The ARN of the policy's price file when it is in S3 (``prices: s3://BUCKET/KEY``)."""
    match = PRICES_S3_RE.match(policy.prices or "") if policy is not None else None
    if match is None:
        return None
    return f"arn:{partition}:s3:::{match.group('bucket')}/{match.group('key')}"


def parks_endpoints(policy: Policy | None) -> bool:
    """Whether a schedule of ``policy`` parks endpoints (``resources: [endpoints]``)."""
    return policy is not None and any(s.targets("endpoints") for s in policy.schedules.values())


def channel_resources(
    names: Sequence[tuple[str | None, str]], service: str, partition: str, account: str
) -> list[str]:
    """The ARNs of the channels' parameters or secrets (``service``): each (region, name) of
    :func:`sagesaver.core.channels.channel_references`, in its region (any, ``*``, when the
    channel leaves it to the run)."""
    return sorted(
        {reference_arn(service, name, partition, region or "*", account) for region, name in names}
    )


def capability_documents(capabilities: Iterable[str], **options: Any) -> dict[str, dict[str, Any]]:
    """One policy per capability (:func:`scoped_document` with the same ``options``), so that
    each can be given to the role or person that needs it and no other."""
    return {name: scoped_document([name], **options) for name in dict.fromkeys(capabilities)}


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
