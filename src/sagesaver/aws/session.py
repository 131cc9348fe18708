"""AWS sessions and clients, configured in one place.

Credentials, profile, default region and endpoint URL come from the standard boto3 chain
(``AWS_PROFILE``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``...), so SageSaver runs unchanged
against AWS, moto or LocalStack. Every client uses botocore's *standard* retry mode with
bounded attempts and timeouts (*adaptive* mode: throttling also slows the
client down), and is created once per (service, region) and reused.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ProfileNotFound
from botocore.utils import parse_timestamp

from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.core.accounts import caller_session_name
from sagesaver.core.errors import InputError
from sagesaver.core.partitions import partition_of, partition_of_arn, role_arn
from sagesaver.core.policy import check_region

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_pricing import PricingClient
    from mypy_boto3_resourcegroupstaggingapi import ResourceGroupsTaggingAPIClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sns import SNSClient

RETRY_MAX_ATTEMPTS = 6
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
# The Price List has a fallback (the bundled table) and may sit behind a proxy or firewall that
# never answers: one attempt, short time-outs, whatever SAGESAVER_* say for the other clients.
PRICE_LIST_CONNECT_TIMEOUT_S = 3
PRICE_LIST_READ_TIMEOUT_S = 5
# A region's scan runs SAGESAVER_WORKERS (32) reads at once, and its Search slices alongside:
# more connections than the pool keeps would be opened and dropped for each call.
MAX_POOL_CONNECTIONS = 64
# A region to call a partition's regional services from when no region is configured.
PARTITION_HOME = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}

# ``-v/--verbose`` shows this logger's records: one line per AWS call.
call_log = logging.getLogger("sagesaver.aws.calls")


def env_number(name: str, default: float, low: float, high: float) -> float:
    """A number from the environment, or ``default``; out-of-range values are bad input."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r}: not a number") from None
    if not low <= value <= high:
        raise InputError(f"{name}={raw!r}: must be from {low:g} to {high:g}")
    return value


def client_config() -> Config:
    """The botocore configuration of every client: adaptive retries, bounded timeouts.

    ``SAGESAVER_MAX_ATTEMPTS``, ``SAGESAVER_CONNECT_TIMEOUT`` and ``SAGESAVER_READ_TIMEOUT``
    (seconds) override the defaults.
    """
    return Config(
        retries={
            "mode": "adaptive",
            "total_max_attempts": int(
                env_number("SAGESAVER_MAX_ATTEMPTS", RETRY_MAX_ATTEMPTS, 1, 20)
            ),
        },
        connect_timeout=env_number("SAGESAVER_CONNECT_TIMEOUT", CONNECT_TIMEOUT_S, 0.1, 300),
        read_timeout=env_number("SAGESAVER_READ_TIMEOUT", READ_TIMEOUT_S, 0.1, 900),
        max_pool_connections=MAX_POOL_CONNECTIONS,
        user_agent_extra="sagesaver",
    )


def utc_timestamp(value: Any) -> datetime:
    """A timestamp of an AWS answer as an aware UTC datetime.

    botocore's default parser returns local-time datetimes through dateutil's ``tzlocal``,
    whose conversion costs more than the rest of parsing a page of ``Search`` records or
    ``GetMetricData`` values; epoch numbers and ISO 8601 strings are parsed directly here,
    anything else by botocore."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return parse_timestamp(value).astimezone(timezone.utc)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _fast_timestamps(session: boto3.Session) -> None:
    factory = session._session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=utc_timestamp)


def offered_regions(service: str) -> set[str]:
    """Every region botocore's own data says offers ``service``, in every partition (no call,
    no credentials needed)."""
    session = botocore.session.get_session()
    return {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions(service, partition_name=partition)
    }


def open_session(profile: str | None = None) -> boto3.Session:
    """The boto3 session of ``profile`` (else ``AWS_PROFILE``, else the default chain), checked
    before any call: an unknown profile, no credentials at all, or a default region that is not
    a region are :class:`InputError`, named in one line."""
    setting = f"--profile {profile}" if profile else f"AWS_PROFILE={os.environ.get('AWS_PROFILE')}"
    try:
        session = boto3.Session(profile_name=profile)
        credentials = session.get_credentials()
        region = session.region_name
    except ProfileNotFound:
        known = ", ".join(sorted(botocore.session.get_session().available_profiles))
        raise InputError(
            f"{setting}: no such profile in the AWS config or credentials files "
            f"(known: {known or 'none'})"
        ) from None
    except BotoCoreError as exc:  # a profile whose credential settings cannot be used
        raise InputError(f"AWS credentials: {exc}") from None
    if credentials is None:
        raise InputError(
            "no AWS credentials found: pass --profile NAME, set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure` / `aws sso login`"
        )
    if region:
        where = f"the region of profile {profile}" if profile else "AWS_DEFAULT_REGION"
        try:
            check_region(region)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        regions = {
            r
            for partition in session.get_available_partitions()
            for r in session.get_available_regions("sts", partition_name=partition)
        }
        if region not in regions:
            raise InputError(f"{where}: {region} is not an AWS region this botocore knows")
    return session


def _log_start(region: str, model: Any, context: dict[str, Any], **_: Any) -> None:
    context.update(
        sagesaver_started=time.perf_counter(),
        sagesaver_region=region,
        sagesaver_call=f"{model.service_model.service_name}.{model.name}",
    )


def _elapsed(context: dict[str, Any]) -> str:
    started = context.get("sagesaver_started")
    return f" in {(time.perf_counter() - started) * 1000:.0f} ms" if started else ""


def _log_call(
    http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
) -> None:
    elapsed = _elapsed(context)
    error = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    retries = (parsed.get("ResponseMetadata") or {}).get("RetryAttempts", 0)
    call_log.info(
        "%s %s.%s -> %s%s%s%s",
        context.get("sagesaver_region", "-"),
        model.service_model.service_name,
        model.name,
        getattr(http_response, "status_code", "-"),
        f" {error}" if error else "",
        elapsed,
        f" after {retries} retries" if retries else "",
    )


def _log_failed_call(exception: Exception, context: dict[str, Any], **_: Any) -> None:
    """A call that got no answer (a time-out, a connection error), after its retries."""
    call_log.info(
        "%s %s -> %s%s",
        context.get("sagesaver_region", "-"),
        context.get("sagesaver_call", "-"),
        type(exception).__name__,
        _elapsed(context),
    )


class Aws:
    """A boto3 session plus a cache of configured clients and a count of API calls made.

    The roles it assumes (:meth:`assume`) are asked for with ``external_id`` (the member
    role's ``sts:ExternalId``) and under ``session_name`` (the Lambda's); without one, the
    session name says who the caller is (:meth:`role_session_name`)."""

    def __init__(
        self,
        session: boto3.Session | None = None,
        account: str | None = None,
        *,
        external_id: str | None = None,
        session_name: str | None = None,
        credentials: dict[str, str] | None = None,
        region: str | None = None,
    ) -> None:
        self.session = session or boto3.Session()
        _fast_timestamps(self.session)
        # An assumed role's: its keys go with each client it makes from ``session`` (the
        # caller's, whose loaded service models every account's clients share), and its home
        # region (the caller's session has its own).
        self._credentials = dict(credentials or {})
        self._region = region
        self.account = account
        self.external_id = external_id
        self.session_name = session_name
        self._caller_arn: str | None = None  # GetCallerIdentity's, once asked
        self._identity_lock = threading.Lock()
        self.config = client_config()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._partition: str | None = None

    @property
    def default_region(self) -> str | None:
        """The region the boto3 chain resolves (``AWS_DEFAULT_REGION``, profile...)."""
        return self._region or self.session.region_name

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def client(self, service: str, region: str, config: Config | None = None) -> Any:
        """A cached client of ``service`` in ``region`` (with ``config`` merged into the
        standard configuration, the first time it is made); every API call is counted."""
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self.session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    config=self.config.merge(config) if config is not None else self.config,
                    **self._credentials,
                )
                client.meta.events.register("before-call", self._count)
                if call_log.isEnabledFor(logging.INFO):
                    client.meta.events.register(
                        "before-call", functools.partial(_log_start, region)
                    )
                    client.meta.events.register("after-call", _log_call)
                    client.meta.events.register("after-call-error", _log_failed_call)
                self._clients[key] = client
        return client

    def sagemaker(self, region: str) -> SageMakerClient:
        """SageMaker client for ``region``."""
        client: SageMakerClient = self.client("sagemaker", region)
        return client

    def cloudwatch(self, region: str) -> CloudWatchClient:
        """CloudWatch client for ``region``, for reads only (``ListMetrics``,
        ``GetMetricData``), without botocore's check of each request's parameters: a
        ``GetMetricData`` of 500 queries spends more time in that check than in the rest of
        building and sending it. Every query is built by ``metrics.metric_query``; the tests
        check every CloudWatch request they make against the same model
        (``tests/conftest.py``, ``tests/pipelines/test_metric_requests.py``), and AWS checks
        them again."""
        unchecked = Config(parameter_validation=False)
        client: CloudWatchClient = self.client("cloudwatch", region, unchecked)
        return client

    def tagging(self, region: str) -> ResourceGroupsTaggingAPIClient:
        """Resource Groups Tagging API client for ``region``."""
        client: ResourceGroupsTaggingAPIClient = self.client("resourcegroupstaggingapi", region)
        return client

    def sns(self, region: str) -> SNSClient:
        """SNS client for ``region``."""
        client: SNSClient = self.client("sns", region)
        return client

    def ec2(self, region: str) -> EC2Client:
        """EC2 client for ``region`` (region discovery only)."""
        client: EC2Client = self.client("ec2", region)
        return client

    def pricing(self, region: str = "us-east-1") -> PricingClient:
        """Price List API client in ``region`` (its partition's: see
        :data:`sagesaver.core.partitions.PARTITIONS`). Prices have a fallback (the bundled
        table), so a Price List that does not answer is given up on quickly: one attempt, 3 s
        to connect, 5 s to answer (``SAGESAVER_MAX_ATTEMPTS`` and the ``SAGESAVER_*_TIMEOUT``
        settings are for the other clients)."""
        quick = Config(  # botocore's max_attempts counts retries; total_max_attempts, all
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=PRICE_LIST_CONNECT_TIMEOUT_S,
            read_timeout=PRICE_LIST_READ_TIMEOUT_S,
        )
        client: PricingClient = self.client("pricing", region, quick)
        return client

    def partition(self) -> str:
        """The caller's partition: the default region's, else the one whose STS accepts the
        credentials (``GetCallerIdentity``, which needs no permission; its ARN names the
        partition), else ``aws``."""
        with self._lock:
            known = self._partition
        if known is not None:
            return known
        found = partition_of(self.default_region) if self.default_region else None
        for home in PARTITION_HOME.values():
            if found is not None:
                break
            try:
                identity = self.client("sts", home).get_caller_identity()
            except AWS_ERRORS:
                continue  # credentials of another partition are unknown there
            self._caller_arn = str(identity.get("Arn", ""))
            found = partition_of_arn(self._caller_arn)
        found = found or "aws"
        with self._lock:
            self._partition = found
        return found

    def role_session_name(self, region: str) -> str:
        """The session name of the roles this caller assumes, so that each member's CloudTrail
        says who ran SageSaver: ``session_name`` when set (the Lambda's), else
        ``sagesaver-<the caller's user or session name>`` from ``GetCallerIdentity`` (asked in
        ``region``, once for the whole run, and not at all when :meth:`partition` asked it);
        ``sagesaver`` when it cannot be asked."""
        with self._identity_lock:
            if self.session_name is None:
                if self._caller_arn is None:
                    try:
                        identity = self.client("sts", region).get_caller_identity()
                        self._caller_arn = str(identity.get("Arn", ""))
                    except AWS_ERRORS:
                        self._caller_arn = ""  # AssumeRole will say what is wrong
                self.session_name = caller_session_name(self._caller_arn)
            return self.session_name

    def assume(self, account: str, role_name: str, region: str | None = None) -> Aws:
        """An :class:`Aws` acting in ``account`` through its role ``role_name`` (STS AssumeRole),
        in the partition of ``region`` (else the caller's), under :meth:`role_session_name`
        and with ``external_id`` when there is one."""
        home = region or self.default_region
        partition = partition_of(home) if home else self.partition()
        home = home or PARTITION_HOME[partition]
        sts = self.client("sts", home)
        request: dict[str, Any] = {
            "RoleArn": role_arn(partition, account, role_name),
            "RoleSessionName": self.role_session_name(home),
            "DurationSeconds": 3600,
        }
        if self.external_id:
            request["ExternalId"] = self.external_id
        credentials = sts.assume_role(**request)["Credentials"]
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        # The caller's session makes the member's clients (with the member's keys): a boto3
        # session of its own would load every service model again, for every account.
        assumed = Aws(self.session, account=account, credentials=keys, region=home)
        assumed.calls = self.calls  # one count of calls for the whole run...
        assumed._lock = self._lock  # ...kept under one lock (it guards the shared session too)
        return assumed

    def organization_accounts(self) -> list[str]:
        """The ids of the organisation's ACTIVE accounts (from the management account)."""
        home = self.default_region or PARTITION_HOME.get(self.partition(), "us-east-1")
        client = self.client("organizations", home)
        accounts = []
        for page in client.get_paginator("list_accounts").paginate():
            accounts += [a["Id"] for a in page["Accounts"] if a.get("Status") == "ACTIVE"]
        return sorted(accounts)

    def unit_accounts(self, units: Sequence[str]) -> list[str]:
        """The ids of the ACTIVE accounts in the organisational units ``units`` and in every
        unit under them (ListAccountsForParent, ListOrganizationalUnitsForParent)."""
        home = self.default_region or PARTITION_HOME.get(self.partition(), "us-east-1")
        client = self.client("organizations", home)
        accounts: set[str] = set()
        pending, done = list(units), set()
        while pending:
            unit = pending.pop()
            if unit in done:
                continue
            done.add(unit)
            for page in client.get_paginator("list_accounts_for_parent").paginate(ParentId=unit):
                accounts |= {a["Id"] for a in page["Accounts"] if a.get("Status") == "ACTIVE"}
            children = client.get_paginator("list_organizational_units_for_parent")
            for page in children.paginate(ParentId=unit):
                pending += [child["Id"] for child in page["OrganizationalUnits"]]
        return sorted(accounts)

    def known_regions(self, service: str) -> set[str]:
        """Every region botocore knows to offer ``service``, in every partition."""
        return {
            region
            for partition in self.session.get_available_partitions()
            for region in self.session.get_available_regions(service, partition_name=partition)
        }

    def sagemaker_regions(self) -> list[str]:
        """Regions of the caller's partition that are enabled for this account and offer
        SageMaker (never another partition's: its credentials would not work there)."""
        partition = self.partition()
        offered = set(self.session.get_available_regions("sagemaker", partition_name=partition))
        home = self.default_region
        if home is None or partition_of(home) != partition:
            home = PARTITION_HOME.get(partition, "us-east-1")
        enabled = self.ec2(home).describe_regions(AllRegions=False)["Regions"]
        return sorted(r["RegionName"] for r in enabled if r["RegionName"] in offered)


def caller_account(aws: Aws, region: str | None) -> str:
    """The account of the caller's credentials (STS ``GetCallerIdentity``, which needs no
    permission), asked in ``region`` or else the caller's default region."""
    home = region or aws.default_region or "us-east-1"
    return str(aws.client("sts", home).get_caller_identity()["Account"])
