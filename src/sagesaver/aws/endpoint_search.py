"""Endpoints in bulk through SageMaker ``Search`` (``Resource=Endpoint``), 100 per page.

One page carries, per endpoint, what a scan otherwise reads with ``ListEndpoints``,
``GetResources`` and a ``DescribeEndpoint`` each: its configuration name, its variants with
their instance counts, and its tags. The API reference describes ``Search`` as finding the
resources that match a query and promises nothing about how soon a change shows in it, so it is
taken as possibly behind: a scan uses it to find candidates and to estimate cost, and every
action is preceded by its own fresh ``DescribeEndpoint`` (``aws.endpoints.fresh_check``). When
``Search`` is denied (a role without ``sagemaker:Search``) or fails, :func:`read_endpoints`
falls back to ``ListEndpoints`` + ``GetResources``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sagesaver.aws import inventory, tags
from sagesaver.aws.endpoint_configs import RegionConfigs
from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.session import Aws
from sagesaver.core.model import Kind, Resource, ScanError, Variant

SEARCH_PAGE_SIZE = 100


@dataclass(frozen=True)
class LiveVariant:
    """A production variant as the endpoint runs it: name, instance count, serverless."""

    name: str
    instance_count: int
    serverless: bool = False


@dataclass
class EndpointListing(tags.Listing):
    """A region's ``InService`` endpoints; with ``Search``, also each one's configuration
    name and live variants (by endpoint name). ``searched`` says which path was taken."""

    searched: bool = False
    configs: dict[str, str] = field(default_factory=dict)
    live: dict[str, tuple[LiveVariant, ...]] = field(default_factory=dict)


def _live_variants(variants: Sequence[Mapping[str, Any]]) -> tuple[LiveVariant, ...]:
    live = []
    for variant in variants:
        serverless = "CurrentServerlessConfig" in variant
        count = variant.get("CurrentInstanceCount", variant.get("DesiredInstanceCount", 0))
        live.append(
            LiveVariant(
                name=str(variant["VariantName"]),
                instance_count=0 if serverless else int(count or 0),
                serverless=serverless,
            )
        )
    return tuple(live)


def search_in_service_endpoints(aws: Aws, region: str) -> EndpointListing:
    """Every ``InService`` endpoint of the region with its tags, configuration name and live
    variants, through ``Search`` (all pages). Raises on a failed call."""
    paginator = aws.sagemaker(region).get_paginator("search")
    listing = EndpointListing(searched=True)
    seen: set[str] = set()
    for page in paginator.paginate(
        Resource="Endpoint",
        SearchExpression={
            "Filters": [{"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"}]
        },
        PaginationConfig={"PageSize": SEARCH_PAGE_SIZE},
    ):
        for record in page.get("Results", []):
            found: Any = record.get("Endpoint")
            if not found or found.get("EndpointStatus") != "InService":
                continue
            name = str(found["EndpointName"])
            if name in seen:  # an endpoint modified while paging can come back twice
                continue
            seen.add(name)
            arn = str(found["EndpointArn"])
            resource = Resource(
                kind=Kind.ENDPOINT,
                name=name,
                arn=arn,
                region=region,
                account=inventory.account_of(arn),
                status="InService",
                created=found["CreationTime"],
                modified=found.get("LastModifiedTime", found["CreationTime"]),
                tags={str(t["Key"]): str(t["Value"]) for t in found.get("Tags", [])},
            )
            listing.tagged.append(resource)
            listing.everything.append(resource)
            listing.configs[name] = str(found.get("EndpointConfigName", ""))
            listing.live[name] = _live_variants(found.get("ProductionVariants", []))
    # Search orders by last modification, which changes: report in the order of names.
    listing.tagged.sort(key=lambda r: r.name)
    listing.everything.sort(key=lambda r: r.name)
    return listing


def read_endpoints(aws: Aws, region: str, errors: list[ScanError]) -> EndpointListing:
    """The region's ``InService`` endpoints with their tags: ``Search`` when allowed, else
    ``ListEndpoints`` + ``GetResources`` (as :func:`tags.list_with_tags`). A failed ``Search``
    (denied, or failing after retries) falls back the same way; the fallback's own failures
    are added to ``errors``."""
    try:
        return search_in_service_endpoints(aws, region)
    except AWS_ERRORS:
        pass  # denied or failing: the listing below reads the same facts, in more calls
    listed = tags.list_with_tags(
        aws, region, inventory.list_in_service_endpoints, tags.ENDPOINT_TYPE, errors
    )
    return EndpointListing(
        tagged=listed.tagged,
        untagged=listed.untagged,
        listed=listed.listed,
        tags_read=listed.tags_read,
        everything=listed.everything,
    )


def endpoint_variants(
    aws: Aws,
    region: str,
    configs: RegionConfigs,
    name: str,
    config_name: str | None = None,
    live: tuple[LiveVariant, ...] | None = None,
) -> tuple[Variant, ...]:
    """The endpoint's variants with instance type (from its configuration) and instance count
    (as it runs). Without ``config_name`` and ``live`` (the listing had no ``Search``), one
    ``DescribeEndpoint`` reads them."""
    if not config_name or live is None:
        described = aws.sagemaker(region).describe_endpoint(EndpointName=name)
        config_name = described["EndpointConfigName"]
        live = _live_variants(described.get("ProductionVariants", []))
    config = configs.variants(config_name)
    variants = []
    for variant in live:
        instance_type, serverless = config.get(variant.name, (None, False))
        serverless = serverless or variant.serverless
        variants.append(
            Variant(
                name=variant.name,
                instance_type=instance_type,
                instance_count=0 if serverless else variant.instance_count,
                serverless=serverless,
            )
        )
    return tuple(variants)
