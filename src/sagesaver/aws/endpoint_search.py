"""Endpoints in bulk through SageMaker ``Search`` (``Resource=Endpoint``), 100 per page.

One page carries, per endpoint, what a scan otherwise reads with ``ListEndpoints``,
``GetResources`` and a ``DescribeEndpoint`` each: its configuration name, its variants with
their instance counts, and its tags. When ``Search`` is denied (a role without
``sagemaker:Search``) or fails, :func:`read_endpoints` falls back to ``ListEndpoints`` +
``GetResources``.

What AWS documents, and what it does not (checked against the SageMaker API Reference,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_Search.html, and the SDK
references generated from the same model):

- ``Endpoint`` is one of the resources ``Search`` accepts, and its ``SearchRecord`` carries
  an ``Endpoint`` object (``API_SearchRecord``, ``API_Endpoint``).
- Sorting: "You can sort the search results by any resource property in a ascending or
  descending order"; ``SortBy`` is "the name of the resource property used to sort the
  SearchResults. The default is LastModifiedTime"; ``SortOrder``: "Valid values are
  Ascending or Descending. The default is Descending". Nothing there is specific to
  ``Resource=Endpoint``: sorting endpoints by ``CreationTime`` (the two chains below) rests
  on that general statement and on ``CreationTime`` being an ``Endpoint`` property; not
  confirmed for endpoints in particular.
- Paging: ``NextToken`` "can be passed to the next SearchRequest to continue retrieving
  results"; whether pages read a snapshot or the live set is not said.
- Freshness: no AWS page found says how soon a created, updated or deleted endpoint shows in
  ``Search`` (nor that it is immediate): **not confirmed**. So ``Search`` is taken as possibly
  behind: a scan uses it to find candidates and estimate cost, and every action is preceded by
  its own fresh ``DescribeEndpoint`` (``aws.endpoints.fresh_check``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws import inventory, tags
from sagesaver.aws.endpoint_configs import ConfigVariant, RegionConfigs
from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.inventory import _serverless_facts
from sagesaver.aws.session import Aws
from sagesaver.core.model import Kind, Resource, ScanError, Variant

SEARCH_PAGE_SIZE = 100


@dataclass(frozen=True)
class LiveVariant:
    """A production variant as the endpoint runs it: name, instance count, serverless (with
    its ``CurrentServerlessConfig``'s provisioned concurrency and memory, when it has one)."""

    name: str
    instance_count: int
    serverless: bool = False
    # (ProvisionedConcurrency, MemorySizeInMB) of CurrentServerlessConfig; None without one.
    current_serverless: tuple[int, int | None] | None = None


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
        current = variant.get("CurrentServerlessConfig")
        serverless = current is not None
        count = variant.get("CurrentInstanceCount", variant.get("DesiredInstanceCount", 0))
        live.append(
            LiveVariant(
                name=str(variant["VariantName"]),
                instance_count=0 if serverless else int(count or 0),
                serverless=serverless,
                current_serverless=_serverless_facts(current) if serverless else None,
            )
        )
    return tuple(live)


IN_SERVICE = {"Filters": [{"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"}]}


class _Meeting:
    """Two chains of ``Search`` pages reading the same list, sorted by ``CreationTime``, from
    both ends. The ascending chain has seen every endpoint created before the newest time it
    has seen (``low``); the descending one every endpoint created after the oldest it has seen
    (``high``). Once ``low > high`` every endpoint has been seen by one or the other."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.low: datetime | None = None
        self.high: datetime | None = None
        self.complete = False  # one chain reached the end of the list
        self.records: dict[str, Any] = {}

    def add(self, results: list[Any], ascending: bool, last: bool) -> bool:
        """Keep a page's records; True when no more page is needed."""
        with self.lock:
            times = []
            for record in results:
                found = record.get("Endpoint")
                if found:
                    self.records.setdefault(str(found["EndpointName"]), found)
                    times.append(found["CreationTime"])
            if times and ascending:
                self.low = max([*times, *([self.low] if self.low else [])])
            elif times:
                self.high = min([*times, *([self.high] if self.high else [])])
            self.complete = self.complete or last
            return self.complete or (
                self.low is not None and self.high is not None and self.low > self.high
            )


def _chain(aws: Aws, region: str, meeting: _Meeting, ascending: bool) -> None:
    client = aws.sagemaker(region)
    token: str | None = None
    while True:
        request: dict[str, Any] = {
            "Resource": "Endpoint",
            "SearchExpression": IN_SERVICE,
            "SortBy": "CreationTime",
            "SortOrder": "Ascending" if ascending else "Descending",
            "MaxResults": SEARCH_PAGE_SIZE,
        }
        if token:
            request["NextToken"] = token
        page: Any = client.search(**request)
        token = page.get("NextToken")
        if meeting.add(page.get("Results", []), ascending, last=not token) or not token:
            return


def search_in_service_endpoints(aws: Aws, region: str) -> EndpointListing:
    """Every ``InService`` endpoint of the region with its tags, configuration name and live
    variants, through ``Search``: two chains of pages at once, from the oldest and from the
    newest endpoint, until they meet (about half the wall time of one chain, at most a page
    more). Raises on a failed call."""
    meeting = _Meeting()
    with ThreadPoolExecutor(max_workers=2) as pool:
        chains = [pool.submit(_chain, aws, region, meeting, up) for up in (True, False)]
        for chain in chains:
            chain.result()
    listing = EndpointListing(searched=True)
    for name, found in sorted(meeting.records.items()):  # reported in the order of names
        if found.get("EndpointStatus") != "InService":
            continue
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
) -> tuple[tuple[Variant, ...], bool]:
    """The endpoint's variants with instance type (from its configuration), instance count
    (as it runs) and serverless provisioned concurrency and memory (as it runs, else as
    configured), and whether it is asynchronous (its configuration's ``AsyncInferenceConfig``),
    as :meth:`inventory.EndpointDescriber.describe` answers. Without ``config_name`` and
    ``live`` (the listing had no ``Search``), one ``DescribeEndpoint`` reads them."""
    if not config_name or live is None:
        described = aws.sagemaker(region).describe_endpoint(EndpointName=name)
        config_name = described["EndpointConfigName"]
        live = _live_variants(described.get("ProductionVariants", []))
    config = configs.config(config_name)
    variants = []
    for variant in live:
        configured = config.variants.get(variant.name, ConfigVariant(None))
        serverless = configured.serverless or variant.serverless
        concurrency, memory = (
            variant.current_serverless
            if variant.current_serverless is not None
            else (configured.provisioned_concurrency, configured.memory_mb)
        )
        variants.append(
            Variant(
                name=variant.name,
                instance_type=configured.instance_type,
                instance_count=0 if serverless else variant.instance_count,
                serverless=serverless,
                provisioned_concurrency=concurrency if serverless else 0,
                memory_mb=memory if serverless else None,
            )
        )
    return tuple(variants), config.asynchronous
