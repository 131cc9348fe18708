"""Endpoint enforcement in AWS: scheduled-action tags, complete backups, deletion, restore.

A backup holds everything needed to bring an endpoint back: the endpoint (name, configuration
name, tags), its endpoint configuration (as created, with tags), every model it uses (as created,
with tags), and the Application Auto Scaling targets and policies of its variants.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sagesaver.aws import metrics
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.model import Resource

SCALING_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"

# Fields of the describe answers that CreateModel / CreateEndpointConfig accept again.
MODEL_FIELDS = (
    "ModelName",
    "PrimaryContainer",
    "Containers",
    "InferenceExecutionConfig",
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
)
CONFIG_FIELDS = (
    "EndpointConfigName",
    "ProductionVariants",
    "DataCaptureConfig",
    "KmsKeyId",
    "AsyncInferenceConfig",
    "ExplainerConfig",
    "ShadowProductionVariants",
    "ExecutionRoleArn",
    "VpcConfig",
    "EnableNetworkIsolation",
)
ENDPOINT_TAG_SKIP_PREFIX = "aws:"
# Tags SageSaver puts on an endpoint configuration before it deletes the endpoint using it.
DELETED_ENDPOINT_TAG = "sagesaver:deleted-endpoint"
BACKUP_TAG = "sagesaver:backup"


def _copy(answer: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: answer[k] for k in fields if answer.get(k) not in (None, [], {})}


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


def fresh_check(
    aws: Aws, endpoint: Resource, window_hours: float, now: datetime
) -> tuple[bool, str, dict[str, Any] | None]:
    """Re-read the endpoint just before acting: still ``InService``, not modified since the
    scan, and still no invocations on any variant. Returns (ok, reason, describe answer)."""
    client = aws.sagemaker(endpoint.region)
    described = client.describe_endpoint(EndpointName=endpoint.name)
    if described["EndpointStatus"] != "InService":
        return False, f"state is now {described['EndpointStatus']}", None
    if described["LastModifiedTime"] != endpoint.modified:
        return False, "modified since the scan", None
    variants = [v["VariantName"] for v in described.get("ProductionVariants", [])]
    keys = [(endpoint.name, v) for v in variants]
    read = metrics.invocation_sums(
        aws, endpoint.region, keys, now - timedelta(hours=window_hours), now
    )
    total = read.total(keys)  # raises UnreadableMetrics: unknown is never idle
    if total > 0:
        return False, f"active again: {total:g} invocations", None
    return True, "still idle and unchanged", dict(described)


def backup(aws: Aws, endpoint: Resource, described: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to recreate the endpoint (see the module docstring)."""
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
                "spec": _copy(dict(model), MODEL_FIELDS),
                "tags": _tags(aws, region, model["ModelArn"]),
            }
        )
    scaling = aws.client("application-autoscaling", region)
    targets, policies = [], []
    for variant in described.get("ProductionVariants", []):
        resource_id = f"endpoint/{endpoint.name}/variant/{variant['VariantName']}"
        found = scaling.describe_scalable_targets(
            ServiceNamespace=SCALING_NAMESPACE, ResourceIds=[resource_id]
        )["ScalableTargets"]
        targets += [
            {
                k: t[k]
                for k in ("ResourceId", "ScalableDimension", "MinCapacity", "MaxCapacity")
                if k in t
            }
            for t in found
        ]
        if found:
            for policy in scaling.describe_scaling_policies(
                ServiceNamespace=SCALING_NAMESPACE, ResourceId=resource_id
            )["ScalingPolicies"]:
                policies.append(
                    {
                        k: policy[k]
                        for k in (
                            "PolicyName",
                            "ResourceId",
                            "ScalableDimension",
                            "PolicyType",
                            "TargetTrackingScalingPolicyConfiguration",
                            "StepScalingPolicyConfiguration",
                        )
                        if k in policy
                    }
                )
    return {
        "format": 1,
        "region": region,
        "account": endpoint.account,
        "endpoint": {
            "EndpointName": endpoint.name,
            "EndpointConfigName": described["EndpointConfigName"],
            "Tags": _tags(aws, region, endpoint.arn),
        },
        "endpoint_config": {
            "arn": config["EndpointConfigArn"],
            "spec": _copy(dict(config), CONFIG_FIELDS),
            "tags": _tags(aws, region, config["EndpointConfigArn"]),
        },
        "models": models,
        "scaling": {"targets": targets, "policies": policies},
    }


def current_tags(aws: Aws, resource: Resource) -> dict[str, str]:
    """The resource's tags read now from SageMaker (not from the scan's bulk read)."""
    return {t["Key"]: t["Value"] for t in _tags(aws, resource.region, resource.arn)}


def _is_missing(exc: Exception) -> bool:
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
        if _is_missing(exc):
            return None
        raise
    return described["EndpointStatus"], described["CreationTime"]


def delete(aws: Aws, endpoint: Resource, config_name: str | None) -> str:
    """Delete the endpoint, and its configuration when ``config_name`` is given.

    A delete whose answer was lost and was retried (``Could not find endpoint``), or one that
    found the endpoint already ``Deleting``, has done its work: that is a success.
    """
    client = aws.sagemaker(endpoint.region)
    outcome = "deleted"
    try:
        client.delete_endpoint(EndpointName=endpoint.name)
    except AWS_ERRORS:
        state = endpoint_state(aws, endpoint.region, endpoint.name)
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


def _exists(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except AWS_ERRORS as exc:
        if scan_error(exc, "", "").code in ("ValidationException", "ResourceNotFound"):
            return False
        raise
    return True


def restore(aws: Aws, saved: dict[str, Any], apply: bool) -> list[str]:
    """Recreate whatever of the backup is missing; return what was (or would be) done."""
    region = saved["region"]
    client = aws.sagemaker(region)
    done: list[str] = []
    verb = "created" if apply else "would create"
    for model in saved["models"]:
        name = model["spec"]["ModelName"]
        if _exists(client.describe_model, ModelName=name):
            done.append(f"model {name}: exists")
            continue
        if apply:
            client.create_model(
                **model["spec"], **({"Tags": model["tags"]} if model["tags"] else {})
            )
        done.append(f"model {name}: {verb}")
    config = saved["endpoint_config"]
    config_name = config["spec"]["EndpointConfigName"]
    if _exists(client.describe_endpoint_config, EndpointConfigName=config_name):
        done.append(f"endpoint configuration {config_name}: exists")
    else:
        if apply:
            client.create_endpoint_config(
                **config["spec"], **({"Tags": config["tags"]} if config["tags"] else {})
            )
        done.append(f"endpoint configuration {config_name}: {verb}")
    endpoint = saved["endpoint"]
    name = endpoint["EndpointName"]
    if _exists(client.describe_endpoint, EndpointName=name):
        done.append(f"endpoint {name}: exists")
    else:
        if apply:
            client.create_endpoint(
                EndpointName=name,
                EndpointConfigName=endpoint["EndpointConfigName"],
                **({"Tags": endpoint["Tags"]} if endpoint["Tags"] else {}),
            )
        done.append(f"endpoint {name}: {verb}")
    scaling = aws.client("application-autoscaling", region)
    for target in saved["scaling"]["targets"]:
        if apply:
            scaling.register_scalable_target(ServiceNamespace=SCALING_NAMESPACE, **target)
        done.append(
            f"scaling target {target['ResourceId']}: {'registered' if apply else 'would register'}"
        )
    for policy in saved["scaling"]["policies"]:
        if apply:
            scaling.put_scaling_policy(ServiceNamespace=SCALING_NAMESPACE, **policy)
        done.append(f"scaling policy {policy['PolicyName']}: {'put' if apply else 'would put'}")
    return done
