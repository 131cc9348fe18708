"""List SageMaker endpoints and notebook instances, and describe endpoints' instances."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagesaver.aws.session import Aws
from sagesaver.core.model import Kind, Resource, Variant

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import EndpointSummaryTypeDef

PAGE_SIZE = 100


def account_of(arn: str) -> str:
    """The account id field of an ARN (``arn:aws:svc:region:ACCOUNT:...``)."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _endpoint(summary: EndpointSummaryTypeDef, region: str) -> Resource:
    arn = summary["EndpointArn"]
    return Resource(
        kind=Kind.ENDPOINT,
        name=summary["EndpointName"],
        arn=arn,
        region=region,
        account=account_of(arn),
        status=summary["EndpointStatus"],
        created=summary["CreationTime"],
        modified=summary["LastModifiedTime"],
    )


def list_in_service_endpoints(aws: Aws, region: str) -> list[Resource]:
    """Every ``InService`` endpoint of the region, all pages."""
    paginator = aws.sagemaker(region).get_paginator("list_endpoints")
    pages = paginator.paginate(StatusEquals="InService", PaginationConfig={"PageSize": PAGE_SIZE})
    return [_endpoint(s, region) for page in pages for s in page["Endpoints"]]


def list_notebook_instances(aws: Aws, region: str) -> list[Resource]:
    """Every notebook instance of the region, whatever its status, all pages."""
    paginator = aws.sagemaker(region).get_paginator("list_notebook_instances")
    resources = []
    for page in paginator.paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
        for summary in page["NotebookInstances"]:
            arn = summary["NotebookInstanceArn"]
            resources.append(
                Resource(
                    kind=Kind.NOTEBOOK,
                    name=summary["NotebookInstanceName"],
                    arn=arn,
                    region=region,
                    account=account_of(arn),
                    status=summary.get("NotebookInstanceStatus", "Unknown"),
                    created=summary["CreationTime"],
                    modified=summary.get("LastModifiedTime", summary["CreationTime"]),
                    instance_type=summary.get("InstanceType"),
                    instance_count=1,
                    lifecycle_config=summary.get("NotebookInstanceLifecycleConfigName"),
                )
            )
    return resources


@dataclass(frozen=True)
class _ConfigVariant:
    instance_type: str | None
    serverless: bool
    provisioned_concurrency: int
    memory_mb: int | None
    model: str | None = None


@dataclass(frozen=True)
class _Config:
    variants: dict[str, _ConfigVariant]
    asynchronous: bool


def _serverless_facts(config: Mapping[str, Any] | None) -> tuple[int, int | None]:
    """(ProvisionedConcurrency, MemorySizeInMB) of a ``ServerlessConfig`` (0, None if absent)."""
    if not config:
        return 0, None
    memory = config.get("MemorySizeInMB")
    return int(config.get("ProvisionedConcurrency") or 0), None if memory is None else int(memory)


class EndpointDescriber:
    """Reads an endpoint's variants: instance type from its configuration, count from the
    endpoint. Endpoint configurations shared by several endpoints are read once."""

    def __init__(self, aws: Aws, region: str) -> None:
        self.client = aws.sagemaker(region)
        self._configs: dict[str, _Config] = {}
        self._config_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _config(self, name: str) -> _Config:
        with self._lock:
            config_lock = self._config_locks.setdefault(name, threading.Lock())
        with config_lock:  # concurrent describes of endpoints sharing it wait for one read
            cached = self._configs.get(name)
            if cached is None:
                described = self.client.describe_endpoint_config(EndpointConfigName=name)
                variants = {}
                for v in described["ProductionVariants"]:
                    serverless = v.get("ServerlessConfig")
                    concurrency, memory = _serverless_facts(serverless)
                    variants[v["VariantName"]] = _ConfigVariant(
                        v.get("InstanceType"),
                        serverless is not None,
                        concurrency,
                        memory,
                        v.get("ModelName"),
                    )
                cached = _Config(variants, bool(described.get("AsyncInferenceConfig")))
                self._configs[name] = cached
        return cached

    def describe(self, endpoint_name: str) -> tuple[tuple[Variant, ...], bool]:
        """The endpoint's variants (instance type, *current* instance count, serverless
        provisioned concurrency, model) and whether it is asynchronous
        (``AsyncInferenceConfig``)."""
        endpoint = self.client.describe_endpoint(EndpointName=endpoint_name)
        config = self._config(endpoint["EndpointConfigName"])
        variants = []
        for live in endpoint.get("ProductionVariants", []):
            name = live["VariantName"]
            configured = config.variants.get(name, _ConfigVariant(None, False, 0, None))
            current = live.get("CurrentServerlessConfig")
            serverless = configured.serverless or current is not None
            concurrency, memory = (
                _serverless_facts(current)
                if current is not None
                else (configured.provisioned_concurrency, configured.memory_mb)
            )
            count = live.get("CurrentInstanceCount", live.get("DesiredInstanceCount", 0))
            variants.append(
                Variant(
                    name=name,
                    instance_type=configured.instance_type,
                    instance_count=0 if serverless else int(count or 0),
                    serverless=serverless,
                    provisioned_concurrency=concurrency if serverless else 0,
                    memory_mb=memory if serverless else None,
                    model=configured.model,
                )
            )
        return tuple(variants), config.asynchronous

    def variants(self, endpoint_name: str) -> tuple[Variant, ...]:
        """The endpoint's variants with instance type and *current* instance count."""
        return self.describe(endpoint_name)[0]
