"""The simulator pages SageMaker ``Search`` for endpoints as AWS does; the records are moto's."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sagesaver.demo.simulator import Fleet, Simulator, _sagemaker_backend


def test_search_pages_hold_moto_records_newest_first(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    for i in range(25):
        fleet.endpoint("us-east-1", f"ep-{i:02d}", changed=now - timedelta(hours=i))
    _sagemaker_backend("us-east-1").endpoints["ep-03"].endpoint_status = "Updating"
    client = sim.client("sagemaker", "us-east-1")
    expression = {
        "Filters": [{"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"}]
    }
    pages = list(
        client.get_paginator("search").paginate(
            Resource="Endpoint", SearchExpression=expression, PaginationConfig={"PageSize": 10}
        )
    )
    assert [len(p["Results"]) for p in pages] == [10, 10, 4]
    names = [r["Endpoint"]["EndpointName"] for p in pages for r in p["Results"]]
    assert names == [f"ep-{i:02d}" for i in range(25) if i != 3]  # newest modification first
    moto = _sagemaker_backend("us-east-1").search("Endpoint", expression)["Results"]
    by_name = {r["Endpoint"]["EndpointName"]: r["Endpoint"] for r in moto}
    for page in pages:
        for record in page["Results"]:
            found = record["Endpoint"]
            expected = by_name[found["EndpointName"]]
            assert found["EndpointConfigName"] == expected["EndpointConfigName"]
            assert found["ProductionVariants"] == expected["ProductionVariants"]
            assert found["Tags"] == expected["Tags"]
    assert client.search(Resource="Endpoint", SearchExpression=expression)["NextToken"]


@pytest.mark.parametrize("apart", [timedelta(0), timedelta(milliseconds=1), timedelta(hours=1)])
def test_two_chains_of_search_pages_find_every_endpoint_once(
    sim: Simulator, fleet: Fleet, now: datetime, apart: timedelta
) -> None:
    from sagesaver.aws.endpoint_search import search_in_service_endpoints
    from sagesaver.aws.session import Aws

    for i in range(250):
        fleet.endpoint("us-east-1", f"ep-{i:03d}", changed=now - timedelta(days=3) - i * apart)
    aws = Aws()
    listing = search_in_service_endpoints(aws, "us-east-1")
    assert [e.name for e in listing.everything] == [f"ep-{i:03d}" for i in range(250)]
    assert set(listing.configs) == set(listing.live) == {e.name for e in listing.everything}
    if apart:  # the chains meet in the middle: at most one page more than one chain reads
        assert aws.calls["Search"] <= 3 + 1
    else:  # created at the same instant: no meeting; a chain stops when the other ends
        assert aws.calls["Search"] <= 2 * 3
