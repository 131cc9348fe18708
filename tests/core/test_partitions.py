"""Partitions: ARNs, principals, endpoints and the refusal to mix partitions."""

from __future__ import annotations

import pytest

from sagesaver.core.errors import InputError, PolicyError
from sagesaver.core.partitions import (
    endpoint_host,
    one_partition,
    partition_info,
    partition_of,
    partition_of_arn,
    role_arn,
    service_principal,
)
from sagesaver.core.policy import parse_policy


@pytest.mark.parametrize(
    ("region", "partition", "host"),
    [
        ("us-east-1", "aws", "sagemaker.us-east-1.amazonaws.com"),
        ("eu-west-1", "aws", "sagemaker.eu-west-1.amazonaws.com"),
        ("cn-north-1", "aws-cn", "sagemaker.cn-north-1.amazonaws.com.cn"),
        ("cn-northwest-1", "aws-cn", "sagemaker.cn-northwest-1.amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "sagemaker.us-gov-west-1.amazonaws.com"),
    ],
)
def test_each_region_has_its_partition_and_endpoint(region: str, partition: str, host: str) -> None:
    assert partition_of(region) == partition
    assert endpoint_host("sagemaker", region) == host
    assert role_arn(partition, "123456789012", "R") == f"arn:{partition}:iam::123456789012:role/R"
    assert partition_of_arn(f"arn:{partition}:sns:{region}:123456789012:t") == partition


def test_price_list_endpoint_and_currency_per_partition() -> None:
    assert (partition_info("aws").price_list_region, partition_info("aws").currency) == (
        "us-east-1",
        "USD",
    )
    assert (partition_info("aws-cn").price_list_region, partition_info("aws-cn").currency) == (
        "cn-northwest-1",
        "CNY",
    )
    assert partition_info("aws-us-gov").price_list_region is None


def test_service_principals_are_the_same_in_every_partition() -> None:
    assert service_principal("lambda") == "lambda.amazonaws.com"
    assert service_principal("scheduler") == "scheduler.amazonaws.com"


def test_mixed_partitions_are_refused_with_each_source_named() -> None:
    assert one_partition({"a": ["cn-north-1"], "b": ["cn-northwest-1"]}) == "aws-cn"
    assert one_partition({"a": []}) is None
    with pytest.raises(InputError) as caught:
        one_partition({"--region": ["cn-north-1"], "topic": ["us-east-1"]})
    message = str(caught.value)
    assert "several partitions" in message
    assert "--region cn-north-1" in message and "topic us-east-1" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("regions: [cn-north-1, us-east-1]\n", "several partitions"),
        (
            "regions: [cn-north-1]\n"
            "notify:\n  sns_topic_arn: arn:aws:sns:us-east-1:123456789012:t\n",
            "several partitions",
        ),
        (
            "notify:\n  sns_topic_arn: arn:aws:sns:cn-north-1:123456789012:t\n",
            "partition aws with region cn-north-1",
        ),
        ("regions: [cn-north-1]\nledger: dynamodb://us-east-1/team-ledger\n", "ledger us-east-1"),
    ],
)
def test_a_policy_that_mixes_partitions_is_refused(text: str, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    assert problem in str(caught.value)


def test_a_china_policy_is_accepted() -> None:
    policy = parse_policy(
        "regions: [cn-north-1, cn-northwest-1]\n"
        "notify:\n  sns_topic_arn: arn:aws-cn:sns:cn-north-1:123456789012:admins\n"
        "ledger: dynamodb://cn-northwest-1/team-ledger\n",
        "p.yaml",
    )
    assert policy.regions == ["cn-north-1", "cn-northwest-1"]
