"""AWS partitions: ``aws``, ``aws-cn`` and ``aws-us-gov``, and what differs between them.

An account, its credentials, its ARNs and its IAM principals belong to one partition; a role
in one partition cannot be assumed from another, so SageSaver never mixes them: the regions it
scans, the topic it notifies and the ledger table it records in are of one partition.

What differs, as used here:

* the partition field of every ARN (``arn:aws-cn:sagemaker:cn-north-1:...``);
* the DNS suffix of the endpoints (``amazonaws.com.cn`` in China; botocore resolves the
  endpoints itself, the on-instance agent builds its own);
* the Price List API endpoint of the partition (``us-east-1`` for ``aws``, ``cn-northwest-1``
  for ``aws-cn``, as botocore's endpoint data lists them; none for ``aws-us-gov``) and the
  currency it quotes (USD, CNY);
* not the service principals: ``<service>.amazonaws.com`` is the principal of a service in
  every partition (the AWS CDK dropped its per-partition principals for that reason).

Pure: no AWS calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sagesaver.core.errors import InputError


@dataclass(frozen=True)
class Partition:
    """One AWS partition."""

    name: str
    dns_suffix: str
    price_list_region: str | None  # where its Price List API answers; None: it has none
    currency: str  # the currency its prices are quoted in


PARTITIONS: dict[str, Partition] = {
    "aws": Partition("aws", "amazonaws.com", "us-east-1", "USD"),
    "aws-cn": Partition("aws-cn", "amazonaws.com.cn", "cn-northwest-1", "CNY"),
    "aws-us-gov": Partition("aws-us-gov", "amazonaws.com", None, "USD"),
}

_ARN_RE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):")


def partition_of(region: str) -> str:
    """The partition of ``region`` (``cn-north-1`` -> ``aws-cn``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def partition_info(name: str) -> Partition:
    """The :class:`Partition` called ``name``; an unknown name is ``aws``'s look-alike."""
    return PARTITIONS.get(name) or Partition(name, "amazonaws.com", None, "USD")


def currency_of(region: str) -> str:
    """The currency prices are quoted in for ``region`` (its partition's)."""
    return partition_info(partition_of(region)).currency


def partition_of_arn(arn: str) -> str | None:
    """The partition field of ``arn``, or None when it is not an ARN."""
    match = _ARN_RE.match(arn)
    return match.group("partition") if match else None


def arn(partition: str, service: str, region: str, account: str, resource: str) -> str:
    """An ARN: ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`` (region empty for IAM)."""
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def role_arn(partition: str, account: str, role_name: str) -> str:
    """The ARN of the IAM role ``role_name`` in ``account``."""
    return arn(partition, "iam", "", account, f"role/{role_name}")


def service_principal(service: str) -> str:
    """The IAM principal of an AWS service, the same in every partition
    (``lambda`` -> ``lambda.amazonaws.com``, in China too)."""
    return f"{service}.amazonaws.com"


def endpoint_host(service: str, region: str) -> str:
    """The standard host name of ``service`` in ``region`` (``amazonaws.com.cn`` in China)."""
    return f"{service}.{region}.{partition_info(partition_of(region)).dns_suffix}"


def one_partition(named: Mapping[str, Iterable[str]], what: str = "") -> str | None:
    """The one partition of every region in ``named`` (a label -> its regions), or None when
    there is no region. Raises :class:`InputError` naming each label's partition when they
    differ: one set of credentials reaches only one partition."""
    found: dict[str, set[str]] = {}
    for label, regions in named.items():
        for region in regions:
            found.setdefault(partition_of(region), set()).add(f"{label} {region}")
    if len(found) > 1:
        parts = "; ".join(f"{p}: {', '.join(sorted(found[p]))}" for p in sorted(found))
        prefix = f"{what}: " if what else ""
        raise InputError(
            f"{prefix}regions of several partitions ({parts}); "
            "use the regions of one partition (aws, aws-cn or aws-us-gov)"
        )
    return next(iter(found), None)
