"""Tags in bulk through the Resource Groups Tagging API (one paginated call per region)."""

from __future__ import annotations

from sagesaver.aws.session import Aws
from sagesaver.model import Resource

ENDPOINT_TYPE = "sagemaker:endpoint"
NOTEBOOK_TYPE = "sagemaker:notebook-instance"


def tags_by_arn(aws: Aws, region: str, resource_types: list[str]) -> dict[str, dict[str, str]]:
    """Tags of every tagged resource of the given types in ``region``, keyed by ARN.

    A resource that was never tagged is absent: it has no tags.
    """
    paginator = aws.tagging(region).get_paginator("get_resources")
    result: dict[str, dict[str, str]] = {}
    for page in paginator.paginate(
        ResourceTypeFilters=resource_types, PaginationConfig={"PageSize": 100}
    ):
        for mapping in page["ResourceTagMappingList"]:
            tags = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
            result[mapping["ResourceARN"]] = tags
    return result


def set_tag(aws: Aws, resource: Resource, key: str, value: str) -> None:
    """Add (or replace) one tag on a SageMaker resource."""
    aws.sagemaker(resource.region).add_tags(
        ResourceArn=resource.arn, Tags=[{"Key": key, "Value": value}]
    )


def remove_tag(aws: Aws, resource: Resource, key: str) -> None:
    """Remove one tag from a SageMaker resource."""
    aws.sagemaker(resource.region).delete_tags(ResourceArn=resource.arn, TagKeys=[key])
