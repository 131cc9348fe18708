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
- Ranges (``API_Filter``): ``GreaterThanOrEqualTo`` and ``LessThan`` compare a property with
  the filter's ``Value``, "not supported for text-based properties"; "for timestamp
  properties, Value must be an ISO 8601 date-time string of the following format:
  YYYY-mm-dd'T'HH:MM:SS". The time zone of that string is not said: the slices below are
  open at both outer ends, so every endpoint is in one slice whatever zone AWS reads it
  in (only the balance between slices would suffer). A refused range
  (``ValidationException``) makes the scan read the list from its two ends instead.
- ``TotalHits`` (``API_Search``, ``API_TotalHits``): "the total number of matching results",
  exact or a lower bound (``Relation`` ``EqualTo`` or ``GreaterThanOrEqualTo``). The slices
  are used only when it is given, and their endpoints are checked against it: fewer than
  it counts and the list is read from its two ends after all.
- Freshness: no AWS page found says how soon a created, updated or deleted endpoint shows in
  ``Search`` (nor that it is immediate): **not confirmed**. So ``Search`` is taken as possibly
  behind: a scan uses it to find candidates and estimate cost, and every action is preceded by
  its own fresh ``DescribeEndpoint`` (``aws.endpoints.read_for_guard``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from sagesaver.aws import inventory, tags
from sagesaver.aws.endpoint_configs import ConfigVariant, RegionConfigs
from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.inventory import _serverless_facts
from sagesaver.aws.session import Aws
from sagesaver.core.model import Kind, Resource, ScanError, Variant

SEARCH_PAGE_SIZE = 100
# The middle of a large list is read in at most this many slices of CreationTime at once...
SEARCH_SLICES = 8
# ...of about this many endpoints each, at least (a slice costs up to one page more than
# its share of the list; fewer endpoints: the two ends are read until they meet).
SLICE_ENDPOINTS = 1000


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


IN_SERVICE_FILTER = {"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"}
IN_SERVICE = {"Filters": [IN_SERVICE_FILTER]}
SEARCH_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # the format API_Filter documents for timestamps


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

    def keep(self, results: list[Any]) -> None:
        """Keep the records of a page of a slice."""
        with self.lock:
            for record in results:
                found = record.get("Endpoint")
                if found:
                    self.records.setdefault(str(found["EndpointName"]), found)


def _request(ascending: bool, token: str | None, *ranges: dict[str, str]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Resource": "Endpoint",
        "SearchExpression": {"Filters": [IN_SERVICE_FILTER, *ranges]},
        "SortBy": "CreationTime",
        "SortOrder": "Ascending" if ascending else "Descending",
        "MaxResults": SEARCH_PAGE_SIZE,
    }
    if token:
        request["NextToken"] = token
    return request


def _chain(aws: Aws, region: str, meeting: _Meeting, ascending: bool, token: str | None) -> None:
    """The pages of one end from ``token`` on, until the two ends meet."""
    client = aws.sagemaker(region)
    while token:
        page: Any = client.search(**_request(ascending, token))
        token = page.get("NextToken")
        if meeting.add(page.get("Results", []), ascending, last=not token):
            return


def _slice(aws: Aws, region: str, meeting: _Meeting, ranges: list[dict[str, str]]) -> None:
    """Every page of one slice of ``CreationTime``."""
    client = aws.sagemaker(region)
    token: str | None = None
    while True:
        page: Any = client.search(**_request(True, token, *ranges))
        meeting.keep(page.get("Results", []))
        token = page.get("NextToken")
        if not token:
            return


def _bound(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(SEARCH_TIME_FORMAT)


def slices(
    meeting: _Meeting, total: int, slice_endpoints: int = SLICE_ENDPOINTS
) -> list[list[dict[str, str]]]:
    """The range filters of the slices the middle of a list of ``total`` endpoints is read
    in, once both ends' first pages are read: one per ``slice_endpoints`` endpoints, at most
    :data:`SEARCH_SLICES`, cut in equal spans of time on whole seconds (the filters'
    precision); none when fewer than two would do. The first slice is open below and the
    last above."""
    low, high = meeting.low, meeting.high
    if low is None or high is None:
        return []
    low = low.replace(microsecond=0)
    middle = (high - low).total_seconds()
    count = int(min(SEARCH_SLICES, total / slice_endpoints, middle))
    if count < 2:
        return []
    cuts = sorted({low + timedelta(seconds=round(i * middle / count)) for i in range(1, count)})
    filters: list[list[dict[str, str]]] = []
    previous: str | None = None
    for cut in [*cuts, None]:
        ranges = []
        if previous is not None:
            ranges.append(
                {"Name": "CreationTime", "Operator": "GreaterThanOrEqualTo", "Value": previous}
            )
        if cut is not None:
            previous = _bound(cut)
            ranges.append({"Name": "CreationTime", "Operator": "LessThan", "Value": previous})
        filters.append(ranges)
    return filters


def _refused(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ValidationException"


def search_in_service_endpoints(
    aws: Aws, region: str, slice_endpoints: int = SLICE_ENDPOINTS
) -> EndpointListing:
    """Every ``InService`` endpoint of the region with its tags, configuration name and live
    variants, through ``Search``, sorted by ``CreationTime``. The first page from the oldest
    and from the newest endpoint are read at once. When their ``TotalHits`` says the list is
    long, its middle is then read in time slices at once (:func:`slices`); and when it is
    shorter, created within too short a time, of an unknown length, when AWS refuses the
    range filters, or when the slices found fewer endpoints than ``TotalHits`` counted, by
    going on from both ends until they meet (about half the wall time of one chain, at most
    a page more). Raises on a failed call."""
    meeting = _Meeting()
    client = aws.sagemaker(region)
    with ThreadPoolExecutor(max_workers=SEARCH_SLICES) as pool:
        ends = {up: pool.submit(client.search, **_request(up, None)) for up in (True, False)}
        tokens: dict[bool, str | None] = {}
        done, total = False, 0
        for up, first in ends.items():
            page: Any = first.result()
            tokens[up] = page.get("NextToken")
            done = meeting.add(page.get("Results", []), up, last=not tokens[up]) or done
            total = max(total, int((page.get("TotalHits") or {}).get("Value", 0)))
        parts = [] if done else slices(meeting, total, slice_endpoints)
        try:
            for part in [pool.submit(_slice, aws, region, meeting, ranges) for ranges in parts]:
                part.result()
        except ClientError as exc:
            if not _refused(exc):
                raise
            parts = []
        if parts and len(meeting.records) < total:
            parts = []  # the slices missed some: a range filter not read as documented
        if not done and not parts:
            chains = [pool.submit(_chain, aws, region, meeting, up, tokens[up]) for up in ends]
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
    """The endpoint's variants with instance type and model (from its configuration),
    instance count (as it runs), serverless provisioned concurrency and memory (as it runs,
    else as configured), and whether it is asynchronous (its configuration's
    ``AsyncInferenceConfig``), as :meth:`inventory.EndpointDescriber.describe` answers.
    Without ``config_name`` and ``live`` (the listing had no ``Search``), one
    ``DescribeEndpoint`` reads them."""
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
                model=configured.model,
            )
        )
    return tuple(variants), config.asynchronous
