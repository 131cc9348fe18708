"""Endpoint enforcement in AWS: fresh checks, complete backups, deletion (restore:
:mod:`sagesaver.aws.restore`).

A backup holds everything needed to bring an endpoint back: the endpoint (name, configuration
name, tags, deployment configuration, and the live weight and instance count of each variant),
its endpoint configuration and every model it uses (each with every field the describe call
returns that the create call accepts, read from the API model, and their tags), and the
Application Auto Scaling targets, policies and scheduled actions of its variants.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sagesaver.aws import endpoint_signals, metrics
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.guard import Observed
from sagesaver.core.model import Resource

SCALING_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"

ENDPOINT_TAG_SKIP_PREFIX = "aws:"
# Tags SageSaver puts on an endpoint configuration before it deletes the endpoint using it.
DELETED_ENDPOINT_TAG = "sagesaver:deleted-endpoint"
BACKUP_TAG = "sagesaver:backup"


def _tags(aws: Aws, region: str, arn: str) -> list[dict[str, str]]:
    client = aws.sagemaker(region)
    found: list[dict[str, str]] = []
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        found += [
            {"Key": t["Key"], "Value": t["Value"]}
            for t in page["Tags"]
            if not t["Key"].startswith(ENDPOINT_TAG_SKIP_PREFIX)
        ]
    return found


def read_for_guard(
    aws: Aws, endpoint: Resource, since: datetime, until: datetime, now: datetime | None = None
) -> tuple[Observed, dict[str, Any]]:
    """Everything the last-moment guard checks, read now: the endpoint (``DescribeEndpoint``),
    its tags, and its traffic from ``since`` to ``until`` on every variant (its asynchronous
    traffic too), as of ``now`` (default ``until``). Raises on any failed read, and
    :class:`metrics.UnreadableMetrics` when a metric is not complete: unknown is never idle.
    Returns the facts and the describe answer."""
    client = aws.sagemaker(endpoint.region)
    described: dict[str, Any] = dict(client.describe_endpoint(EndpointName=endpoint.name))
    variants = [v["VariantName"] for v in described.get("ProductionVariants", [])]
    keys = [(endpoint.name, v) for v in variants]
    total = metrics.invocation_sums(aws, endpoint.region, keys, since, until).total(keys)
    if endpoint.asynchronous:  # its traffic is in its own metrics, not in Invocations
        traffic = endpoint_signals.async_traffic(
            aws, endpoint.region, [endpoint.name], since, until
        )
        if endpoint.name in traffic.problems:
            raise metrics.UnreadableMetrics({(endpoint.name, "*"): traffic.problems[endpoint.name]})
        total += traffic.totals.get(endpoint.name, 0.0)
    tags = {t["Key"]: t["Value"] for t in _tags(aws, endpoint.region, endpoint.arn)}
    observed = Observed(
        status=str(described["EndpointStatus"]),
        created=described["CreationTime"],
        modified=described["LastModifiedTime"],
        tags=tags,
        invocations=total,
        at=until if now is None else now,
    )
    return observed, described


def accepted(client: Any, operation: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The fields of a describe ``answer`` that ``operation`` (a Create/Put/Register call)
    accepts, by the API model, so that nothing it can take back is left out. Tags apart."""
    members = set(client.meta.service_model.operation_model(operation).input_shape.members)
    return {
        k: v
        for k, v in answer.items()
        if k in members and k != "Tags" and v not in (None, [], {}, "")
    }


def _scaling(aws: Aws, region: str, endpoint: str, variants: list[str]) -> dict[str, Any]:
    """The Application Auto Scaling targets, policies and scheduled actions of the variants."""
    scaling = aws.client("application-autoscaling", region)
    targets, policies, scheduled = [], [], []
    for variant in variants:
        resource_id = f"endpoint/{endpoint}/variant/{variant}"
        found = scaling.describe_scalable_targets(
            ServiceNamespace=SCALING_NAMESPACE, ResourceIds=[resource_id]
        )["ScalableTargets"]
        targets += [accepted(scaling, "RegisterScalableTarget", t) for t in found]
        if not found:
            continue
        for policy in scaling.describe_scaling_policies(
            ServiceNamespace=SCALING_NAMESPACE, ResourceId=resource_id
        )["ScalingPolicies"]:
            policies.append(accepted(scaling, "PutScalingPolicy", policy))
        for action in scaling.describe_scheduled_actions(
            ServiceNamespace=SCALING_NAMESPACE, ResourceId=resource_id
        )["ScheduledActions"]:
            scheduled.append(accepted(scaling, "PutScheduledAction", action))
    for item in [*targets, *policies, *scheduled]:
        item.pop("ServiceNamespace", None)
    return {"targets": targets, "policies": policies, "scheduled_actions": scheduled}


def backup(aws: Aws, endpoint: Resource, described: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to recreate the endpoint (see the module docstring): every field the
    describe calls return that the create calls accept, the live weights and instance counts
    of its variants, its deployment configuration, tags, and auto scaling."""
    region = endpoint.region
    client = aws.sagemaker(region)
    config = client.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    models = []
    for name in sorted(
        {v["ModelName"] for v in config["ProductionVariants"] if v.get("ModelName")}
    ):
        model = client.describe_model(ModelName=name)
        models.append(
            {
                "spec": accepted(client, "CreateModel", dict(model)),
                "tags": _tags(aws, region, model["ModelArn"]),
            }
        )
    live = [
        {
            "VariantName": v["VariantName"],
            "Weight": v.get("CurrentWeight"),
            "InstanceCount": v.get("CurrentInstanceCount"),
        }
        for v in described.get("ProductionVariants", [])
        if "CurrentServerlessConfig" not in v
    ]
    saved_endpoint: dict[str, Any] = {
        "EndpointName": endpoint.name,
        "EndpointConfigName": described["EndpointConfigName"],
        "Tags": _tags(aws, region, endpoint.arn),
        "LiveVariants": live,
    }
    if described.get("LastDeploymentConfig"):
        saved_endpoint["DeploymentConfig"] = described["LastDeploymentConfig"]
    variants = [v["VariantName"] for v in described.get("ProductionVariants", [])]
    return {
        "format": 2,
        "region": region,
        "account": endpoint.account,
        "endpoint": saved_endpoint,
        "endpoint_config": {
            "arn": config["EndpointConfigArn"],
            "spec": accepted(client, "CreateEndpointConfig", dict(config)),
            "tags": _tags(aws, region, config["EndpointConfigArn"]),
        },
        "models": models,
        "scaling": _scaling(aws, region, endpoint.name, variants),
    }


def current_tags(aws: Aws, resource: Resource) -> dict[str, str]:
    """The resource's tags read now from SageMaker (not from the scan's bulk read)."""
    return {t["Key"]: t["Value"] for t in _tags(aws, resource.region, resource.arn)}


def is_missing(exc: Exception) -> bool:
    """True when SageMaker said the endpoint does not exist."""
    error = scan_error(exc, "", "")
    return error.code in ("ValidationException", "ResourceNotFound") and (
        "could not find" in error.message.lower() or "not found" in error.message.lower()
    )


def endpoint_state(aws: Aws, region: str, name: str) -> tuple[str, datetime] | None:
    """(status, creation time) of the endpoint named ``name`` now, or None when there is none."""
    try:
        described = aws.sagemaker(region).describe_endpoint(EndpointName=name)
    except AWS_ERRORS as exc:
        if is_missing(exc):
            return None
        raise
    return described["EndpointStatus"], described["CreationTime"]


class DeleteUnconfirmed(Exception):
    """``DeleteEndpoint`` failed as far as the caller saw, and the endpoint could not be read
    afterwards: whether it was deleted is unknown (an answer lost on the way back deletes it
    all the same)."""

    def __init__(self, failed: Exception, unreadable: Exception) -> None:
        super().__init__(
            f"DeleteEndpoint was sent but its result could not be read ({failed}; then "
            f"DescribeEndpoint: {unreadable})"
        )


def delete(aws: Aws, endpoint: Resource, config_name: str | None) -> str:
    """Delete the endpoint, and its configuration when ``config_name`` is given.

    A delete whose answer was lost and was retried (``Could not find endpoint``), or one that
    found the endpoint already ``Deleting``, has done its work: that is a success. A failed
    delete whose endpoint cannot be read afterwards raises :class:`DeleteUnconfirmed`.
    """
    client = aws.sagemaker(endpoint.region)
    outcome = "deleted"
    try:
        client.delete_endpoint(EndpointName=endpoint.name)
    except AWS_ERRORS as failed:
        try:
            state = endpoint_state(aws, endpoint.region, endpoint.name)
        except AWS_ERRORS as unreadable:
            raise DeleteUnconfirmed(failed, unreadable) from failed
        if state is not None and state[0] != "Deleting":
            raise
        outcome = "deleted (it was already being deleted)"
    if config_name:
        client.delete_endpoint_config(EndpointConfigName=config_name)
        outcome += " with its configuration"
    return outcome


def mark_backup_location(
    aws: Aws, region: str, config_arn: str, endpoint_name: str, where: str
) -> None:
    """Tag the endpoint configuration (which outlives the endpoint) with where the backup is,
    so ``restore`` run with another ledger can say where to look."""
    aws.sagemaker(region).add_tags(
        ResourceArn=config_arn,
        Tags=[
            {"Key": DELETED_ENDPOINT_TAG, "Value": endpoint_name},
            {"Key": BACKUP_TAG, "Value": where[:256]},
        ],
    )


def backup_hints(aws: Aws, region: str, endpoint_name: str) -> list[str]:
    """Where backups of a deleted endpoint are kept, from its configurations' tags."""
    paginator = aws.tagging(region).get_paginator("get_resources")
    hints = []
    for page in paginator.paginate(
        ResourceTypeFilters=["sagemaker:endpoint-config"],
        TagFilters=[{"Key": DELETED_ENDPOINT_TAG, "Values": [endpoint_name]}],
    ):
        for mapping in page["ResourceTagMappingList"]:
            tags = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
            if BACKUP_TAG in tags:
                hints.append(tags[BACKUP_TAG])
    return sorted(set(hints))
