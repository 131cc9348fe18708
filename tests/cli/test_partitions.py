"""Partitions end to end: --all-regions stays in the caller's partition, ARNs carry it, and
regions, topics and ledgers of different partitions are refused before any AWS call."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sagesaver.aws.session import Aws
from sagesaver.demo.simulator import Fault, Fleet, Simulator, VariantSpec
from tests.conftest import Cli

BEIJING, NINGXIA = "cn-north-1", "cn-northwest-1"
OLD = timedelta(days=3)


def test_all_regions_from_china_scans_the_china_regions_only(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", BEIJING)
    fleet.endpoint(NINGXIA, "ningxia-idle", changed=now - OLD)
    fleet.endpoint("us-east-1", "virginia-idle", changed=now - OLD)
    code, doc = cli.json("scan", "--all-regions")
    assert code == 0, doc["errors"]
    assert doc["regions"] == [BEIJING, NINGXIA]
    [found] = doc["resources"]
    assert found["name"] == "ningxia-idle"
    assert found["arn"].startswith(f"arn:aws-cn:sagemaker:{NINGXIA}:")


def test_all_regions_from_the_commercial_partition_never_lists_china(
    cli: Cli, sim: Simulator, fleet: Fleet
) -> None:
    code, doc = cli.json("scan", "--all-regions")
    assert code == 0
    assert "us-east-1" in doc["regions"]
    assert not [r for r in doc["regions"] if r.startswith(("cn-", "us-gov-"))]


def _stubbed_identity(arn: str) -> Aws:
    """An Aws without a default region whose credentials only the STS of ``arn``'s partition
    accepts (the others answer InvalidClientTokenId, as AWS does)."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=None
    )
    aws = Aws(session)
    home = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}
    partition = arn.split(":")[1]
    for name, region in home.items():
        stubber = Stubber(aws.client("sts", region))
        if name == partition:
            identity = {"UserId": "AIDA", "Account": "123456789012", "Arn": arn}
            stubber.add_response("get_caller_identity", identity)
        elif list(home).index(name) < list(home).index(partition):
            stubber.add_client_error(
                "get_caller_identity", "InvalidClientTokenId", "not valid here"
            )
        stubber.activate()
    return aws


def test_without_a_default_region_the_caller_identity_names_the_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    aws = _stubbed_identity("arn:aws-cn:iam::123456789012:user/ops")
    assert aws.default_region is None
    assert aws.partition() == "aws-cn"
    assert aws.partition() == "aws-cn"  # asked once (one stubbed answer), remembered
    assert _stubbed_identity("arn:aws-us-gov:iam::123456789012:user/ops").partition() == (
        "aws-us-gov"
    )


@pytest.mark.parametrize(
    ("args", "policy", "message"),
    [
        (["--region", BEIJING, "--region", "us-east-1"], None, "several partitions"),
        (
            ["--region", BEIJING],
            "notify:\n  sns_topic_arn: arn:aws:sns:us-east-1:123456789012:admins\n",
            "several partitions",
        ),
        (["--region", BEIJING], "regions: [us-east-1, cn-north-1]\n", "several partitions"),
        (
            [],
            "ledger: dynamodb://cn-north-1/team-ledger\nregions: [eu-west-1]\n",
            "several partitions",
        ),
    ],
)
def test_mixed_partitions_exit_2_before_any_call(
    cli: Cli,
    sim: Simulator,
    tmp_path: Path,
    args: list[str],
    policy: str | None,
    message: str,
) -> None:
    extra: list[str] = []
    if policy is not None:
        path = tmp_path / "p.yaml"
        path.write_text(policy)
        extra = ["--policy", str(path)]
    sim.middleware.counts.clear()
    result = cli("run", *args, *extra, "--apply")
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sum(sim.middleware.counts.values()) == 0


def test_a_denied_role_in_china_is_named_by_its_china_arn(
    cli: Cli, sim: Simulator, tmp_path: Path
) -> None:
    def deny(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation != "AssumeRole":
            return None
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        assert b"arn%3Aaws-cn%3Aiam%3A%3A111111111111%3Arole%2FSageSaverExecution" in body
        return Fault(403, "AccessDenied", "not authorized to perform sts:AssumeRole")

    accounts = tmp_path / "accounts.txt"
    accounts.write_text("111111111111\n")
    sim.middleware.fault = deny
    code, doc = cli.json("scan", "--accounts", str(accounts), "--region", BEIJING)
    assert code == 1
    [error] = doc["errors"]
    assert error["operation"] == "AssumeRole"
    assert error["resource"] == "arn:aws-cn:iam::111111111111:role/SageSaverExecution"


def test_an_idle_gpu_in_ireland_has_its_own_live_price(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    """eu-west-1 is priced from the Price List (us-east-1 endpoint) with Ireland's own rate,
    not us-east-1's and not nothing."""
    from sagesaver.core.offers import table_from_offer

    fleet.endpoint(
        "eu-west-1",
        "dublin-gpu",
        [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 1)],
        changed=now - OLD,
    )
    code, doc = cli.json("scan", "--region", "eu-west-1")
    assert code == 0, doc["errors"]
    [gpu] = doc["resources"]
    regions, _ = table_from_offer(sim.behaviours.price_list.offer("aws"))
    ireland = regions["eu-west-1"]["hosting"]["ml.g4dn.xlarge"]
    assert ireland != regions["us-east-1"]["hosting"]["ml.g4dn.xlarge"]
    assert (gpu["hourly_cost"], gpu["currency"], gpu["price_source"]) == (ireland, "USD", "live")
    assert gpu["hourly_cost_usd"] == ireland
