"""Endpoint configurations, read once and remembered across runs.

An endpoint configuration cannot be modified, only deleted and created again, possibly under
the same name. So what ``DescribeEndpointConfig`` said about it (each variant's instance type,
serverless or not with its provisioned concurrency and memory, the model it names, and whether
the endpoint is asynchronous) stays true for as long as that *same* configuration exists, and
is kept in a :class:`ConfigStore` (a file for the CLI, the ledger table for Lambda), keyed by
its ARN and its ``CreationTime``.

Before serving a remembered configuration, a run asks ``ListEndpointConfigs`` for the
configurations created since the last check (``CreationTimeAfter``, one page when nothing is
new): one created again under a remembered name has a new creation time and is forgotten, so
it is read again. The check time is the server's own clock (the HTTP ``Date`` of its answers),
minus a margin, never the run's ``now`` (which a what-if run may move).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.inventory import _serverless_facts
from sagesaver.aws.session import Aws
from sagesaver.files import write_private

# 2: serverless provisioned concurrency and memory, the asynchronous flag; 3: each variant's
# ModelName (an older document is forgotten: it cannot say which endpoints can host components)
FORMAT = 3
CHECK_MARGIN = timedelta(minutes=15)  # clock skew and the Date header's 1 s resolution
CACHE_DIR_ENV = "SAGESAVER_CACHE_DIR"


@dataclass(frozen=True)
class ConfigVariant:
    """One production variant as its configuration declares it."""

    instance_type: str | None
    serverless: bool = False
    provisioned_concurrency: int = 0  # ServerlessConfig's ProvisionedConcurrency
    memory_mb: int | None = None  # ServerlessConfig's MemorySizeInMB
    model: str | None = None  # ModelName; None in a configuration made for inference components


ConfigVariants = dict[str, ConfigVariant]  # by variant name


@dataclass(frozen=True)
class EndpointConfig:
    """What a scan needs of one endpoint configuration: its variants, and whether endpoints
    using it are asynchronous (``AsyncInferenceConfig``)."""

    variants: ConfigVariants
    asynchronous: bool = False


def _variant_json(variant: ConfigVariant) -> list[Any]:
    return [
        variant.instance_type,
        variant.serverless,
        variant.provisioned_concurrency,
        variant.memory_mb,
        variant.model,
    ]


def _variant_of(raw: Sequence[Any]) -> ConfigVariant:
    memory, model = raw[3], raw[4]
    return ConfigVariant(
        None if raw[0] is None else str(raw[0]),
        bool(raw[1]),
        int(raw[2] or 0),
        None if memory is None else int(memory),
        None if model is None else str(model),
    )


class ConfigStore(Protocol):
    """Where remembered configurations live between runs: bytes in, bytes out."""

    def load(self) -> bytes | None:
        """The last saved document, or None."""

    def save(self, data: bytes) -> None:
        """Replace the saved document."""


class FileConfigStore:
    """The CLI's store: one gzip'd JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> bytes | None:
        """The file's bytes, or None when there is no readable file."""
        try:
            return self.path.read_bytes()
        except OSError:
            return None

    def save(self, data: bytes) -> None:
        """Write through a sibling temporary file; a failure leaves the old file."""
        with contextlib.suppress(OSError):  # a cache not written only costs calls next time
            write_private(self.path, data, own_folder=True)


def default_file_store() -> FileConfigStore:
    """``endpoint-configs.json.gz`` in ``$SAGESAVER_CACHE_DIR`` or the user's cache directory."""
    from platformdirs import user_cache_dir

    base = os.environ.get(CACHE_DIR_ENV) or user_cache_dir("sagesaver")
    return FileConfigStore(Path(base) / "endpoint-configs.json.gz")


@dataclass
class _Entry:
    arn: str
    created: str  # ISO 8601, UTC
    config: EndpointConfig


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _server_time(response: Mapping[str, Any]) -> datetime | None:
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return _utc(parsedate_to_datetime(date)) if date else None
    except (TypeError, ValueError):
        return None


class ConfigMemory:
    """Every region's remembered configurations, loaded from and saved to one store."""

    def __init__(self, store: ConfigStore | None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._scopes: dict[str, dict[str, Any]] = {}
        self._changed = False
        data = store.load() if store is not None else None
        if data:
            try:
                document = json.loads(gzip.decompress(data))
                if document.get("format") == FORMAT:
                    self._scopes = dict(document.get("scopes", {}))
            except (OSError, ValueError, AttributeError):
                self._scopes = {}  # unreadable: start afresh

    def region(self, aws: Aws, region: str, account: str) -> RegionConfigs:
        """The configurations of one account and region."""
        return RegionConfigs(aws, region, self, f"{account}|{region}")

    def scope(self, key: str) -> dict[str, Any]:
        """The raw document of one scope (``checked`` and ``entries``)."""
        with self._lock:
            return dict(self._scopes.get(key, {}))

    def update(self, key: str, checked: datetime | None, entries: dict[str, _Entry]) -> None:
        """Replace one scope; without a ``checked`` time nothing can be trusted later."""
        with self._lock:
            if checked is None:
                self._scopes.pop(key, None)
            else:
                self._scopes[key] = {
                    "checked": checked.isoformat(),
                    "entries": {
                        name: {
                            "arn": e.arn,
                            "created": e.created,
                            "variants": {
                                k: _variant_json(v) for k, v in sorted(e.config.variants.items())
                            },
                            "asynchronous": e.config.asynchronous,
                        }
                        for name, e in sorted(entries.items())
                    },
                }
            self._changed = True

    def put(self, key: str, document: dict[str, Any]) -> None:
        """Replace the raw document of one scope (other kinds of facts than configurations
        keep theirs under keys of their own)."""
        with self._lock:
            self._scopes[key] = document
            self._changed = True

    def save(self) -> None:
        """Write every scope back to the store (when anything changed)."""
        if self.store is None or not self._changed:
            return
        with self._lock:
            document = {"format": FORMAT, "scopes": self._scopes}
            data = gzip.compress(json.dumps(document, sort_keys=True).encode(), mtime=0)
        self.store.save(data)


class RegionConfigs:
    """Instance types of one region's endpoint configurations: remembered ones after one
    check for configurations created again, the rest through ``DescribeEndpointConfig``
    (each read once, even when several endpoints share it and threads ask at once)."""

    def __init__(self, aws: Aws, region: str, memory: ConfigMemory | None, key: str) -> None:
        self.client = aws.sagemaker(region)
        self.memory = memory
        self.key = key
        self._lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, _Entry] = {}
        self._checked: datetime | None = None  # earliest server time of this run's reads
        self._validate_lock = threading.Lock()
        self._validated = False
        self.described = 0
        self.remembered = 0

    def _note_time(self, response: Mapping[str, Any]) -> None:
        moment = _server_time(response)
        if moment is None:
            return
        with self._lock:
            if self._checked is None or moment < self._checked:
                self._checked = moment

    def validate(self) -> None:
        """Load what this scope remembers and forget configurations created again since it
        was last checked (once; later calls wait for the first). When the check fails,
        nothing remembered is used: every configuration is described again."""
        with self._validate_lock:
            if self._validated:
                return
            try:
                self._load_checked()
            except AWS_ERRORS:
                pass
            finally:
                self._validated = True

    def _load_checked(self) -> None:
        scope = self.memory.scope(self.key) if self.memory is not None else {}
        entries = {
            name: _Entry(
                str(raw["arn"]),
                str(raw["created"]),
                EndpointConfig(
                    {k: _variant_of(v) for k, v in raw["variants"].items()},
                    bool(raw.get("asynchronous", False)),
                ),
            )
            for name, raw in scope.get("entries", {}).items()
        }
        if entries:
            since = datetime.fromisoformat(scope["checked"]) - CHECK_MARGIN
            paginator = self.client.get_paginator("list_endpoint_configs")
            for page in paginator.paginate(
                CreationTimeAfter=since, PaginationConfig={"PageSize": 100}
            ):
                self._note_time(page)
                for summary in page["EndpointConfigs"]:
                    entry = entries.get(summary["EndpointConfigName"])
                    created = _utc(summary["CreationTime"]).isoformat()
                    if entry is not None and entry.created != created:
                        del entries[summary["EndpointConfigName"]]  # created again
            with self._lock:
                self._entries.update(entries)

    def ready(self, name: str) -> bool:
        """Whether :meth:`config` answers ``name`` without a call: the check of remembered
        configurations is done and ``name`` is among them (or was read already)."""
        with self._lock:
            return self._validated and name in self._entries

    def variants(self, name: str) -> ConfigVariants:
        """Each variant of configuration ``name``, by variant name."""
        return self.config(name).variants

    def config(self, name: str) -> EndpointConfig:
        """Configuration ``name``: its variants and whether it is asynchronous."""
        self.validate()
        with self._lock:
            found = self._entries.get(name)
            if found is not None:
                self.remembered += 1
                return found.config
            name_lock = self._name_locks.setdefault(name, threading.Lock())
        with name_lock:  # endpoints sharing a configuration wait for one read
            with self._lock:
                found = self._entries.get(name)
            if found is not None:
                return found.config
            described = self.client.describe_endpoint_config(EndpointConfigName=name)
            self._note_time(described)
            variants: ConfigVariants = {}
            for v in described["ProductionVariants"]:
                serverless = v.get("ServerlessConfig")
                concurrency, memory = _serverless_facts(serverless)
                variants[v["VariantName"]] = ConfigVariant(
                    v.get("InstanceType"),
                    serverless is not None,
                    concurrency,
                    memory,
                    v.get("ModelName"),
                )
            config = EndpointConfig(variants, bool(described.get("AsyncInferenceConfig")))
            entry = _Entry(
                described["EndpointConfigArn"],
                _utc(described["CreationTime"]).isoformat(),
                config,
            )
            with self._lock:
                self._entries[name] = entry
                self.described += 1
            return config

    def remember(self) -> None:
        """Hand this run's configurations back to the memory (saved by its owner)."""
        if self.memory is None:
            return
        with self._lock:
            if not self.described and not self.remembered:
                return
            self.memory.update(self.key, self._checked, dict(self._entries))
