"""The IAM actions each SageSaver capability needs, declared once.

The README's permission list, ``sagesaver permissions`` and (later) the deployment template
are generated from these declarations; a test checks that every AWS operation a run makes is
declared here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

SCAN: tuple[str, ...] = (
    "sagemaker:ListEndpoints",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:ListNotebookInstances",
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
    "sagemaker:DeleteApp",
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
    "fan-out": FAN_OUT,
    "all-regions": ALL_REGIONS,
    "live-prices": LIVE_PRICES,
}


def actions_for(capabilities: Iterable[str]) -> list[str]:
    """The sorted, de-duplicated IAM actions of the named capabilities."""
    actions: set[str] = set()
    for name in capabilities:
        actions.update(CAPABILITIES[name])
    return sorted(actions)


def policy_document(capabilities: Iterable[str]) -> str:
    """An IAM policy document (JSON) granting exactly those actions."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SageSaver",
                "Effect": "Allow",
                "Action": actions_for(capabilities),
                "Resource": "*",
            }
        ],
    }
    return json.dumps(document, indent=2)
