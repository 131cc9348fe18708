"""Price files: reading one (a path, or ``s3://BUCKET/KEY``), and downloading a partition's
SageMaker offer files from the Price List bulk API for ``sagesaver prices fetch``.

The bulk files need no credentials: each partition publishes them on its own host
(:data:`~sagesaver.core.offers.BULK_HOSTS`: ``pricing.us-east-1.amazonaws.com`` for ``aws``,
``pricing.cn-north-1.amazonaws.com.cn`` for ``aws-cn``). SageMaker's region index
(``/offers/v1.0/{aws|cn}/AmazonSageMaker/current/region_index.json``) names each region's
current offer file (``currentVersionUrl``, relative to the host). Every request has a time-out
(:data:`FETCH_TIMEOUT_S`, to connect and for each read); ``HTTPS_PROXY`` is honoured.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sagesaver.aws.errors import AWS_ERRORS
from sagesaver.aws.session import Aws
from sagesaver.core.errors import InputError
from sagesaver.core.offers import BULK_CODES, BULK_HOSTS, REGION_INDEX
from sagesaver.core.policy import PRICES_S3_RE
from sagesaver.core.price_file import PriceFile, parse_price_file

FETCH_TIMEOUT_S = 60.0


class FetchError(Exception):
    """A download failed (unreachable, an HTTP error, not what was expected): exit code 1."""


def read_price_file(location: str, aws: Aws | None = None, region: str | None = None) -> PriceFile:
    """The price file at ``location``: a path, or ``s3://BUCKET/KEY`` (read with ``aws``'s
    credentials through ``region``'s S3 endpoint). Raises :class:`InputError` naming the file
    and the problem."""
    match = PRICES_S3_RE.match(location)
    if match is not None:
        if aws is None or region is None:
            raise InputError(f"{location}: an S3 location needs AWS credentials and a region")
        data = _s3_object(aws, region, location, match.group("bucket"), match.group("key"))
        return parse_price_file(data, location)
    if "://" in location:
        raise InputError(f"{location}: use a file path or s3://BUCKET/KEY")
    path = Path(location).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{location}: price file not found") from None
    except OSError as exc:
        raise InputError(f"{location}: cannot read the price file: {exc.strerror or exc}") from None
    return parse_price_file(data, location)


def _s3_object(aws: Aws, region: str, location: str, bucket: str, key: str) -> bytes:
    try:
        body = aws.client("s3", region).get_object(Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read()
    except AWS_ERRORS as exc:
        error = getattr(exc, "response", {}).get("Error", {})
        why = f"{error.get('Code')}: {error.get('Message')}" if error else str(exc)
        raise InputError(f"{location}: cannot read the price file from S3 ({why})") from None
    return data


def region_index_url(partition: str, base: str | None = None) -> str:
    """The URL of ``partition``'s SageMaker region index (on ``base`` instead of its host)."""
    return (base or BULK_HOSTS[partition]).rstrip("/") + REGION_INDEX.format(
        code=BULK_CODES[partition]
    )


def fetch_offers(
    partition: str,
    regions: list[str],
    base: str | None = None,
    timeout: float = FETCH_TIMEOUT_S,
) -> list[tuple[str, dict[str, Any]]]:
    """The current SageMaker offer file of each of ``regions`` (all the index lists when
    empty), in region order: (URL, document). Raises :class:`InputError` when a region is
    not in the index, :class:`FetchError` when a download fails."""
    host = (base or BULK_HOSTS[partition]).rstrip("/")
    index_url = region_index_url(partition, base)
    index = _get_json(index_url, timeout)
    listed = index.get("regions") if isinstance(index, dict) else None
    if not isinstance(listed, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("currentVersionUrl"), str) for e in listed.values()
    ):
        raise FetchError(f"{index_url}: not a region index (regions -> currentVersionUrl)")
    unknown = sorted(set(regions) - set(listed))
    if unknown:
        raise InputError(
            f"--region {', '.join(unknown)}: not in the {partition} SageMaker offer "
            f"(it lists {', '.join(sorted(listed))})"
        )
    files = []
    for region in sorted(regions or listed):
        url = host + listed[region]["currentVersionUrl"]
        document = _get_json(url, timeout)
        if not isinstance(document, dict):
            raise FetchError(f"{url}: not an offer file")
        files.append((url, document))
    return files


def _get_json(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "sagesaver-prices-fetch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise FetchError(f"{url}: no answer within {timeout:g} s") from None
        raise FetchError(f"{url}: cannot be reached ({reason})") from None
    except TimeoutError:
        raise FetchError(f"{url}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise FetchError(f"{url}: the download failed ({exc})") from None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise FetchError(f"{url}: not JSON ({exc})") from None
