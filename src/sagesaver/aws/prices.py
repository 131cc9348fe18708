"""Live on-demand prices from the AWS Price List API of the region's own partition, cached.

Each partition has its own Price List endpoint (``us-east-1`` for ``aws``, ``cn-northwest-1``
for ``aws-cn``; ``aws-us-gov`` has none) and quotes in its own currency (USD, CNY).
``GetProducts`` on ``AmazonSageMaker`` is filtered by ``regionCode``, ``instanceName``
(``ml.m5.large``) and ``component`` (``Hosting``, ``Notebook``). A lookup that fails (denied,
unreachable, no such product) returns None, and the bundled table answers.

Answers are cached for 7 days: in a JSON file (the user cache directory) on a laptop, in the
ledger's DynamoDB table in Lambda (:class:`TableCache`), so a scheduled run does not ask again
every hour.

A Price List may sit behind a proxy or a firewall that accepts the connection and never
answers, so it is never waited on for long: one attempt a call, 3 s to connect and 5 s to
answer (``Aws.pricing``); the first call of a run goes alone, the others wait for its outcome;
a failure (time-out, connection error, denied) ends the asking for the rest of the run and is
remembered in the cache for an hour (:data:`FAILURE_TTL_S`), so the runs of that hour do not
ask; a run starts no call that could end after :data:`PRICE_BUDGET_S` of asking. What happened
is told once per run (``on_trouble``, a :class:`PriceListTrouble`).

An answer stays in the cache after its 7 days, with the time it was read: when the Price List
cannot be reached (a failure, remembered or new, or the budget spent), the last good answer
is given instead, as a ``cached`` quote with that day (:func:`~sagesaver.core.pricing.
cached_quote`: past 30 days it says it may be stale).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from botocore.exceptions import ConnectionError as NoConnection

from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.session import PRICE_LIST_CONNECT_TIMEOUT_S, PRICE_LIST_READ_TIMEOUT_S, Aws
from sagesaver.core.formats import minute
from sagesaver.core.offers import parse_get_products
from sagesaver.core.partitions import partition_info, partition_of
from sagesaver.core.pricing import Component, Quote, cached_quote
from sagesaver.files import write_private

SERVICE_CODE = "AmazonSageMaker"
COMPONENTS: dict[Component, str] = {"hosting": "Hosting", "notebook": "Notebook"}
CACHE_TTL_S = 7 * 24 * 3600
TABLE_CACHE_PK = "price-cache"
# A Price List that failed is not asked again for this long (by any run sharing the cache).
FAILURE_TTL_S = 3600
# A run's whole time asking the Price List, from its first call: no call starts that could
# end later (one call takes at most CALL_LIMIT_S: one attempt, connect then answer).
PRICE_BUDGET_S = 15.0
CALL_LIMIT_S = PRICE_LIST_CONNECT_TIMEOUT_S + PRICE_LIST_READ_TIMEOUT_S
# Refusals that say "not so fast", not "never": the run stops asking, later runs ask again.
THROTTLED = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)


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
                text = json.dumps(self._data, sort_keys=True)
                write_private(self.path, text.encode("utf-8"), own_folder=True)
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


@dataclass(frozen=True)
class PriceListTrouble:
    """Why a run gets no (more) prices from a Price List, told once per run.

    ``host``: the Price List's host; ``what``: what it did (``did not answer within 5 s``);
    ``seen_at``: when an earlier run saw it (epoch s), if this run only remembers it.
    """

    host: str
    what: str
    seen_at: float | None = None

    def describe(self) -> str:
        """``the Price List (HOST) did not answer within 5 s`` (and when, if remembered)."""
        text = f"the Price List ({self.host}) {self.what}"
        if self.seen_at is None:
            return text
        seen = datetime.fromtimestamp(self.seen_at, timezone.utc)
        again = seen + timedelta(seconds=FAILURE_TTL_S)
        return f"{text} at {minute(seen)} (asked again after {minute(again)})"


def what_failed(exc: Exception) -> tuple[str, bool]:
    """What a failed ``GetProducts`` says of the Price List, and whether later runs should
    remember it (all but throttling: the endpoint answers, just not now)."""
    if isinstance(exc, ConnectTimeoutError):
        return f"could not be reached within {PRICE_LIST_CONNECT_TIMEOUT_S} s", True
    if isinstance(exc, ReadTimeoutError):
        return f"did not answer within {PRICE_LIST_READ_TIMEOUT_S} s", True
    if isinstance(exc, NoConnection):
        return f"could not be reached ({type(exc).__name__})", True
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or "error")
        if code in THROTTLED:
            return f"throttled GetProducts ({code})", False
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return f"{'failed' if status >= 500 else 'refused'} GetProducts ({code})", True
    return f"failed ({type(exc).__name__})", True


class _Unreached(Enum):
    """The Price List was not reached (failed, remembered failing, or the budget spent)."""

    UNREACHED = "unreached"


UNREACHED = _Unreached.UNREACHED
Answer = tuple[float, str] | None


@dataclass
class _Gate:
    """One partition's Price List in one run: its first lookup asks alone (a Price List that
    hangs is waited on once, not once per price); the others wait for its outcome."""

    asked: threading.Event = field(default_factory=threading.Event)
    probing: bool = False
    failed: bool = False


class LivePrices:
    """A :data:`~sagesaver.core.pricing.LiveLookup` on the partition's Price List API.

    One instance is one run: what failed is not asked again in it, and ``on_trouble`` hears
    of the first trouble (a failure, remembered or new, or the budget spent), once.
    ``clock`` (monotonic seconds) measures the budget; ``now`` (epoch seconds) dates the
    cache's records.
    """

    def __init__(
        self,
        aws: Aws,
        cache: PriceCache | Path | None,
        now: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_trouble: Callable[[PriceListTrouble], None] | None = None,
    ) -> None:
        self.aws = aws
        self.cache: PriceCache | None = FileCache(cache) if isinstance(cache, Path) else cache
        self._now = time.time() if now is None else now
        self._clock = clock
        self.on_trouble = on_trouble
        self.trouble: PriceListTrouble | None = None  # the first of this run, if any
        self._gates: dict[str, _Gate] = {}
        self._first_call: float | None = None
        self._lock = threading.Lock()

    def __call__(
        self, region: str, component: Component, instance_type: str
    ) -> tuple[float, str] | Quote | None:
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
        found = self._lookup(partition, endpoint, key, region, component, instance_type)
        return self._kept(hit) if found is UNREACHED else found

    def _kept(self, hit: dict[str, Any] | None) -> Quote | None:
        """The last good answer the cache holds, past its 7 days, as a ``cached`` quote."""
        if hit is None or hit.get("amount") is None or hit.get("currency") is None:
            return None
        read = datetime.fromtimestamp(float(hit.get("at", 0)), timezone.utc)
        now = datetime.fromtimestamp(self._now, timezone.utc)
        return cached_quote(float(hit["amount"]), str(hit["currency"]), read, now)

    def _lookup(
        self, partition: str, endpoint: str, key: str, region: str, component: Component, kind: str
    ) -> Answer | _Unreached:
        """Ask the Price List (its first call alone, the others after it), or UNREACHED."""
        with self._lock:
            gate = self._gates.setdefault(partition, _Gate())
            first = not gate.probing
            gate.probing = True
        if first:
            try:
                if self._remembered_failure(partition, endpoint):
                    return UNREACHED
                return self._ask(partition, endpoint, key, region, component, kind)
            finally:
                gate.asked.set()
        # A first call that hangs ends by its time-outs; this wait is only a backstop.
        gate.asked.wait(PRICE_BUDGET_S)
        with self._lock:
            if gate.failed or not gate.asked.is_set():
                return UNREACHED  # denied or unreachable this run: do not wait on it again
        return self._ask(partition, endpoint, key, region, component, kind)

    def _ask(
        self, partition: str, endpoint: str, key: str, region: str, component: Component, kind: str
    ) -> Answer | _Unreached:
        client = self.aws.pricing(endpoint)
        host = urlparse(client.meta.endpoint_url).netloc or client.meta.endpoint_url
        with self._lock:
            if self._gates[partition].failed:
                return UNREACHED
            if self._first_call is None:
                self._first_call = self._clock()
            late = self._clock() - self._first_call + CALL_LIMIT_S > PRICE_BUDGET_S
        if late:
            spent = f"answered too slowly: this run's {PRICE_BUDGET_S:g} s for prices are spent"
            self._tell(PriceListTrouble(host, spent))
            return UNREACHED
        try:
            response = client.get_products(
                ServiceCode=SERVICE_CODE,
                Filters=[
                    {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
                    {"Type": "TERM_MATCH", "Field": "instanceName", "Value": kind},
                    {"Type": "TERM_MATCH", "Field": "component", "Value": COMPONENTS[component]},
                ],
                MaxResults=10,
            )
        except AWS_ERRORS as exc:
            what, remember = what_failed(exc)
            with self._lock:
                self._gates[partition].failed = True
            if remember and self.cache is not None:
                record = {"failed": what, "host": host, "at": self._now}
                self.cache.put(failure_key(partition), record)
            self._tell(PriceListTrouble(host, what))
            return UNREACHED
        found = parse_get_products(response.get("PriceList", []))
        if self.cache is not None:
            amount, currency = found if found is not None else (None, None)
            self.cache.put(key, {"amount": amount, "currency": currency, "at": self._now})
        return found

    def _remembered_failure(self, partition: str, endpoint: str) -> bool:
        """True when a run of the last hour found this Price List failing (and told so)."""
        record = self.cache.get(failure_key(partition)) if self.cache is not None else None
        if record is None or "failed" not in record:
            return False
        at = float(record.get("at", 0))
        if not 0 <= self._now - at < FAILURE_TTL_S:
            return False
        with self._lock:
            self._gates[partition].failed = True
        host = str(record.get("host") or endpoint)
        self._tell(PriceListTrouble(host, str(record["failed"]), seen_at=at))
        return True

    def _tell(self, trouble: PriceListTrouble) -> None:
        with self._lock:
            if self.trouble is not None:
                return
            self.trouble = trouble
        if self.on_trouble is not None:
            self.on_trouble(trouble)


def failure_key(partition: str) -> str:
    """The cache key of a partition's Price List failure (no region key looks like it)."""
    return f"price-list-failure/{partition}"
