"""The benchmarks' Search, paged inside moto, gives the pages the shipped simulator gives."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from benchmarks.fast_moto.simulator import FastSimulator
from sagesaver.demo.simulator import Fleet

STAMP = "%Y-%m-%dT%H:%M:%S"


def _pages(sim: FastSimulator, **search: Any) -> list[list[tuple[str, str, list[Any]]]]:
    client = sim.client("sagemaker", "us-east-1")
    pages = client.get_paginator("search").paginate(
        Resource="Endpoint", PaginationConfig={"PageSize": 7}, **search
    )
    return [
        [
            (
                r["Endpoint"]["EndpointName"],
                r["Endpoint"]["EndpointConfigName"],
                r["Endpoint"].get("Tags", []),
            )
            for r in page["Results"]
        ]
        + [("TotalHits", str(page["TotalHits"]["Value"]), [])]
        for page in pages
    ]


@pytest.mark.parametrize(
    ("search", "hits"),
    [
        ({}, 30),
        ({"SortBy": "CreationTime", "SortOrder": "Ascending"}, 30),
        ({"SearchExpression": {"Filters": [{"Name": "EndpointStatus", "Value": "InService"}]}}, 30),
        ("changed in the last 12.5 hours", 13),
    ],
)
def test_the_pages_are_the_shipped_simulators(
    sim: FastSimulator, fleet: Fleet, now: datetime, search: Any, hits: int
) -> None:
    for i in range(30):
        fleet.endpoint("us-east-1", f"ep-{i:02d}", changed=now - timedelta(hours=i))
    if isinstance(search, str):
        bound = (now - timedelta(hours=12, minutes=30)).strftime(STAMP)
        ranged = {"Name": "LastModifiedTime", "Operator": "GreaterThan", "Value": bound}
        search = {"SearchExpression": {"Filters": [ranged]}}
    sim.behaviours.page_endpoint_search = False  # paged inside moto (FastSimulator's default)
    fast = _pages(sim, **search)
    sim.behaviours.page_endpoint_search = True  # paged by the shipped simulator, at the wire
    try:
        shipped = _pages(sim, **search)
    finally:
        sim.behaviours.page_endpoint_search = False
    assert fast == shipped
    assert sum(len(page) - 1 for page in fast) == hits
    assert len(fast) == -(-hits // 7)
