"""Restore of the endpoint kinds that carry more than instances: a serverless endpoint with
provisioned concurrency and an asynchronous endpoint. Each is deleted by a real ``run
--apply`` (backup first, configuration deleted too), then restored; the recreated
configuration must keep ``ServerlessConfig`` / ``AsyncInferenceConfig`` exactly."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from tests.conftest import Cli
from tests.pipelines.test_enforce import announced_and_due, backend

EAST = "us-east-1"
OLD = timedelta(days=5)


def config_of(sim: Simulator, name: str) -> dict[str, Any]:
    """The endpoint configuration as DescribeEndpointConfig answers, without what AWS sets."""
    found = sim.client("sagemaker", EAST).describe_endpoint_config(EndpointConfigName=name)
    return {
        k: v
        for k, v in found.items()
        if k not in ("ResponseMetadata", "EndpointConfigArn", "CreationTime")
    }


def delete_then_restore(
    cli: Cli, sim: Simulator, fleet: Fleet, tmp_path: Path, name: str, arn: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(configuration before, the restore's dry run, configuration after the restore)."""
    topic = fleet.topic(EAST, "admins")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "endpoints: {action: delete, grace_hours: 24, delete_config: true}\n"
        f"notify: {{sns_topic_arn: '{topic}'}}\n"
    )
    ledger = str(tmp_path / "ledger.sqlite")
    before = config_of(sim, f"{name}-config")
    announced_and_due(sim, ledger, arn)
    code, doc = cli.json(
        "run", "--region", EAST, "--policy", str(policy), "--ledger", ledger, "--apply"
    )
    assert code == 0, doc["errors"]
    [step] = [s for s in doc["enforcement"] if s["name"] == name]
    assert step["outcome"].startswith("deleted") and "with its configuration" in step["outcome"]
    assert name not in backend().endpoints
    assert f"{name}-config" not in backend().endpoint_configs  # restore must recreate it

    code, dry = cli.json("restore", name, "--ledger", ledger)
    assert code == 0 and dry["dry_run"], dry["errors"]
    code, done = cli.json("restore", name, "--ledger", ledger, "--apply")
    assert code == 0, done["errors"]
    assert name in backend().endpoints
    return before, dry, config_of(sim, f"{name}-config")


def test_a_serverless_endpoint_with_provisioned_concurrency_comes_back_as_it_was(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    spec = VariantSpec("AllTraffic", serverless_memory_mb=2048, provisioned_concurrency=2)
    arn = fleet.endpoint(EAST, "warm-serverless", [spec], changed=now - OLD)
    before, dry, after = delete_then_restore(cli, sim, fleet, tmp_path, "warm-serverless", arn)
    [variant] = before["ProductionVariants"]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 2,
        "ProvisionedConcurrency": 2,
    }
    assert "AllTraffic: serverless" in "\n".join(dry["steps"])
    assert [v["ServerlessConfig"] for v in after["ProductionVariants"]] == [
        variant["ServerlessConfig"]
    ]
    assert after == before


def test_an_asynchronous_endpoint_comes_back_with_its_async_configuration(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    arn = fleet.endpoint(EAST, "queue-reader", asynchronous=True, changed=now - OLD)
    before, _, after = delete_then_restore(cli, sim, fleet, tmp_path, "queue-reader", arn)
    assert before["AsyncInferenceConfig"] == {
        "OutputConfig": {"S3OutputPath": "s3://queue-reader-results/out/"}
    }
    assert after["AsyncInferenceConfig"] == before["AsyncInferenceConfig"]
    assert after == before


@pytest.mark.parametrize("kind", ["serverless", "asynchronous"])
def test_the_backup_holds_the_configuration_that_makes_the_kind(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path, kind: str
) -> None:
    """The ledger's backup itself keeps the fields (a restore from another machine reads only
    the ledger)."""
    from sagesaver.ledger import open_ledger

    if kind == "serverless":
        spec = VariantSpec("AllTraffic", serverless_memory_mb=1024, provisioned_concurrency=1)
        arn = fleet.endpoint(EAST, "kind-check", [spec], changed=now - OLD)
    else:
        arn = fleet.endpoint(EAST, "kind-check", asynchronous=True, changed=now - OLD)
    before, _, _ = delete_then_restore(cli, sim, fleet, tmp_path, "kind-check", arn)
    [saved] = open_ledger(str(tmp_path / "ledger.sqlite")).backups("kind-check", EAST)
    spec_saved = saved.document["endpoint_config"]["spec"]
    if kind == "serverless":
        assert (
            spec_saved["ProductionVariants"][0]["ServerlessConfig"]
            == (before["ProductionVariants"][0]["ServerlessConfig"])
        )
    else:
        assert spec_saved["AsyncInferenceConfig"] == before["AsyncInferenceConfig"]
