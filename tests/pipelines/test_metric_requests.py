"""CloudWatch requests skip botocore's client-side check (speed); the tests check them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from sagesaver.aws import metrics
from sagesaver.aws.session import Aws
from sagesaver.demo.simulator import Simulator


def test_the_cloudwatch_client_skips_the_check_and_the_other_clients_keep_it(
    sim: Simulator,
) -> None:
    from botocore.validate import ParamValidationDecorator

    aws: Any = Aws()
    # botocore wraps the serializer of a client that checks parameters (meta.config does not say)
    assert not isinstance(aws.cloudwatch("us-east-1")._serializer, ParamValidationDecorator)
    assert isinstance(aws.sagemaker("us-east-1")._serializer, ParamValidationDecorator)
    assert aws.cloudwatch("us-east-1").meta.config.retries["mode"] == "adaptive"


def test_a_malformed_query_fails_the_test_that_sends_it(sim: Simulator, now: datetime) -> None:
    query = metrics.invocations_query("q0", "ep", "AllTraffic", 3600)
    query["MetricStat"]["Period"] = "an hour"  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match=r"GetMetricData: .*Period"):
        metrics.read_metric_data(Aws(), "us-east-1", [query], now - timedelta(hours=1), now)


def test_the_queries_of_a_scan_are_well_formed(sim: Simulator, now: datetime) -> None:
    sums = metrics.invocation_sums(
        Aws(), "us-east-1", [("ep-a", "AllTraffic"), ("ep-b", "v2")], now - timedelta(days=1), now
    )
    assert sums.total([("ep-a", "AllTraffic"), ("ep-b", "v2")]) == 0.0
