"""Tags in bulk through the Resource Groups Tagging API (one paginated call per region)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.model import Resource, ScanError

ENDPOINT_TYPE = "sagemaker:endpoint"
NOTEBOOK_TYPE = "sagemaker:notebook-instance"
LIST_OPERATIONS = {ENDPOINT_TYPE: "ListEndpoints", NOTEBOOK_TYPE: "ListNotebookInstances"}


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


@dataclass
class Listing:
    """The resources of one kind in one region, as far as they could be read.

    ``tagged`` have their tags; ``untagged`` were listed but their tags are unknown (the tag
    read failed, or their ARN matched ambiguously): they may be reported, never acted on.
    ``listed`` is False when the list itself failed; ``tags_read`` when the tag read did.
    """

    tagged: list[Resource] = field(default_factory=list)
    untagged: list[Resource] = field(default_factory=list)
    listed: bool = True
    tags_read: bool = True
    everything: list[Resource] = field(default_factory=list)  # in the listing's order


def list_with_tags(
    aws: Aws,
    region: str,
    lister: Callable[[Aws, str], list[Resource]],
    resource_type: str,
    errors: list[ScanError],
) -> Listing:
    """The one read of "list, then tag, then record what failed" that every pipeline uses:
    ``lister`` (all pages), then one paginated tag read; failures are added to ``errors``."""
    operation = LIST_OPERATIONS.get(resource_type, "List")
    try:
        resources = lister(aws, region)
    except AWS_ERRORS as exc:
        errors.append(scan_error(exc, region, operation))
        return Listing(listed=False)
    try:
        known, unknown = with_tags(aws, region, resources, resource_type)
    except AWS_ERRORS as exc:
        errors.append(scan_error(exc, region, "GetResources"))
        return Listing([], list(resources), tags_read=False, everything=list(resources))
    errors.extend(unmatched_error(resource) for resource in unknown)
    by_arn = {r.arn: r for r in known}
    everything = [by_arn.get(r.arn, r) for r in resources]
    return Listing(known, unknown, everything=everything)
