"""Tags in bulk through the Resource Groups Tagging API (one paginated call per region)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sagesaver.aws.session import Aws
from sagesaver.core.model import Resource, ScanError

ENDPOINT_TYPE = "sagemaker:endpoint"
NOTEBOOK_TYPE = "sagemaker:notebook-instance"


class TagIndex:
    """Tags by ARN, joined case-insensitively.

    AWS has answered with SageMaker ARNs in lower case from the tagging API while the
    SageMaker API keeps the name's case, so ARNs are compared without case. When two answers
    fold to the same ARN with different tags, neither can be matched for certain.
    """

    def __init__(self) -> None:
        self._tags: dict[str, dict[str, str]] = {}
        self._ambiguous: set[str] = set()

    def add(self, arn: str, tags: dict[str, str]) -> None:
        """Record the tags the tagging API gave for ``arn``."""
        key = arn.lower()
        if key in self._tags and self._tags[key] != tags:
            self._ambiguous.add(key)
        self._tags[key] = tags

    def tags_of(self, arn: str) -> dict[str, str] | None:
        """The tags of ``arn`` ({} when it has none), or None when they cannot be known."""
        key = arn.lower()
        if key in self._ambiguous:
            return None
        return dict(self._tags.get(key, {}))


def tags_by_arn(aws: Aws, region: str, resource_types: list[str]) -> TagIndex:
    """Tags of every tagged resource of the given types in ``region``.

    A resource that was never tagged is absent: it has no tags.
    """
    paginator = aws.tagging(region).get_paginator("get_resources")
    index = TagIndex()
    for page in paginator.paginate(
        ResourceTypeFilters=resource_types, PaginationConfig={"PageSize": 100}
    ):
        for mapping in page["ResourceTagMappingList"]:
            index.add(
                mapping["ResourceARN"], {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
            )
    return index


def with_tags(
    aws: Aws, region: str, resources: Sequence[Resource], resource_type: str
) -> tuple[list[Resource], list[Resource]]:
    """``resources`` with their tags, and apart those whose tags cannot be matched for certain
    (unknown: never treat them as untagged, so never as unprotected). One paginated read;
    raises on a failed call."""
    if not resources:
        return [], []
    index = tags_by_arn(aws, region, [resource_type])
    known, unknown = [], []
    for resource in resources:
        found = index.tags_of(resource.arn)
        if found is None:
            unknown.append(resource)
        else:
            known.append(replace(resource, tags=found))
    return known, unknown


def unmatched_error(resource: Resource) -> ScanError:
    """The error for a resource whose tags could not be matched to it for certain."""
    return ScanError(
        resource.region,
        "GetResources",
        "its tags cannot be matched to it for certain (ARNs differing only in case): "
        "nothing is done to it",
        resource.name,
        "TagsUnknown",
    )


def set_tag(aws: Aws, resource: Resource, key: str, value: str) -> None:
    """Add (or replace) one tag on a SageMaker resource."""
    aws.sagemaker(resource.region).add_tags(
        ResourceArn=resource.arn, Tags=[{"Key": key, "Value": value}]
    )


def remove_tag(aws: Aws, resource: Resource, key: str) -> None:
    """Remove one tag from a SageMaker resource."""
    aws.sagemaker(resource.region).delete_tags(ResourceArn=resource.arn, TagKeys=[key])
