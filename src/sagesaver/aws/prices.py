"""Live on-demand prices from the AWS Price List API of the region's own partition, cached.

Each partition has its own Price List endpoint (``us-east-1`` for ``aws``, ``cn-northwest-1``
for ``aws-cn``; ``aws-us-gov`` has none) and quotes in its own currency (USD, CNY).
``GetProducts`` on ``AmazonSageMaker`` is filtered by ``regionCode``, ``instanceName``
(``ml.m5.large``) and ``component`` (``Hosting``, ``Notebook``). A lookup that fails (denied,
unreachable, no such product) returns None, and the bundled table answers.

Answers are cached for 7 days: in a JSON file (the user cache directory) on a laptop, in the
ledger's DynamoDB table in Lambda (:class:`TableCache`), so a scheduled run does not ask again
every hour. A failure is remembered for the run only: the next run asks again.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.session import Aws
from sagesaver.core.offers import parse_get_products
from sagesaver.core.partitions import partition_info, partition_of
from sagesaver.core.pricing import Component

SERVICE_CODE = "AmazonSageMaker"
COMPONENTS: dict[Component, str] = {"hosting": "Hosting", "notebook": "Notebook"}
CACHE_TTL_S = 7 * 24 * 3600
TABLE_CACHE_PK = "price-cache"


class PriceCache(Protocol):
    """Where live answers are kept between runs: key -> {"amount", "currency", "at"}."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer for ``key``, or None."""

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` for ``key`` (a failure to write only costs a lookup later)."""


class FileCache:
    """A JSON file of answers (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer for ``key``, or None."""
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` and rewrite the file."""
        with self._lock:
            self._data[key] = value
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._data, sort_keys=True), encoding="utf-8")
                tmp.replace(self.path)
            except OSError:
                pass  # a cache that cannot be written only costs a lookup next time


class TableCache:
    """Answers kept in the ledger's DynamoDB table (keys ``pk``/``sk``), for Lambda."""

    def __init__(self, aws: Aws, region: str, table: str) -> None:
        self.client = aws.client("dynamodb", region)
        self.table = table

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer for ``key``, or None (also when the table cannot be read)."""
        try:
            item = self.client.get_item(
                TableName=self.table, Key={"pk": {"S": TABLE_CACHE_PK}, "sk": {"S": key}}
            ).get("Item")
        except AWS_ERRORS:
            return None
        if not item or "doc" not in item:
            return None
        try:
            found: dict[str, Any] = json.loads(item["doc"]["S"])
        except ValueError:
            return None
        return found

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Keep ``value`` for ``key``."""
        with contextlib.suppress(*AWS_ERRORS):  # a lost write only costs a lookup next time
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": TABLE_CACHE_PK},
                    "sk": {"S": key},
                    "doc": {"S": json.dumps(value, sort_keys=True)},
                },
            )


class LivePrices:
    """A :data:`~sagesaver.core.pricing.LiveLookup` on the partition's Price List API."""

    def __init__(self, aws: Aws, cache: PriceCache | Path | None, now: float | None = None) -> None:
        self.aws = aws
        self.cache: PriceCache | None = FileCache(cache) if isinstance(cache, Path) else cache
        self._now = time.time() if now is None else now
        self._failed: set[str] = set()  # partitions whose Price List did not answer this run
        self._lock = threading.Lock()

    def __call__(
        self, region: str, component: Component, instance_type: str
    ) -> tuple[float, str] | None:
        partition = partition_of(region)
        endpoint = partition_info(partition).price_list_region
        if endpoint is None:
            return None  # the partition has no Price List API
        key = f"{region}/{component}/{instance_type}"
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None and self._now - float(hit.get("at", 0)) < CACHE_TTL_S:
            amount, currency = hit.get("amount"), hit.get("currency")
            if amount is None or currency is None:
                return None  # known not to be listed
            return float(amount), str(currency)
        with self._lock:
            if partition in self._failed:
                return None  # denied or unreachable once this run: do not wait on it again
        try:
            response = self.aws.pricing(endpoint).get_products(
                ServiceCode=SERVICE_CODE,
                Filters=[
                    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
                    {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
                    {"Type": "TERM_MATCH", "Field": "component", "Value": COMPONENTS[component]},
                ],
                MaxResults=10,
            )
        except AWS_ERRORS:
            with self._lock:
                self._failed.add(partition)
            return None
        found = parse_get_products(response.get("PriceList", []))
        if self.cache is not None:
            amount, currency = found if found is not None else (None, None)
            self.cache.put(key, {"amount": amount, "currency": currency, "at": self._now})
        return found
