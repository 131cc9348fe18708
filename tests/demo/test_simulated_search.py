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


def _range(name: str, operator: str, value: str) -> dict[str, str]:
    return {"Name": name, "Operator": operator, "Value": value}


def test_search_narrows_by_creation_time_with_the_range_operators(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    """Range operators compare a timestamp property with a ``YYYY-mm-ddTHH:MM:SS`` value (the
    documented format, read as UTC), at the endpoint's own precision, page by page."""
    base = datetime(2026, 3, 1, 12, 0, 0, tzinfo=now.tzinfo)
    for i in range(30):  # ep-00 at 12:00:00.000, ep-01 at 12:00:00.500, ep-02 at 12:00:01...
        fleet.endpoint("us-east-1", f"ep-{i:02d}", changed=base + i * timedelta(milliseconds=500))
    client = sim.client("sagemaker", "us-east-1")

    def names(*filters: dict[str, str]) -> list[str]:
        pages = client.get_paginator("search").paginate(
            Resource="Endpoint",
            SearchExpression={"Filters": list(filters)},
            SortBy="CreationTime",
            SortOrder="Ascending",
            PaginationConfig={"PageSize": 4},
        )
        return [r["Endpoint"]["EndpointName"] for p in pages for r in p["Results"]]

    assert names(
        _range("CreationTime", "GreaterThanOrEqualTo", "2026-03-01T12:00:05"),
        _range("CreationTime", "LessThan", "2026-03-01T12:00:08"),
    ) == [f"ep-{i:02d}" for i in range(10, 16)]
    assert names(_range("CreationTime", "GreaterThan", "2026-03-01T12:00:13")) == [
        "ep-27",
        "ep-28",
        "ep-29",
    ]  # 12:00:13.500 and later: 12:00:13.000 itself is not greater
    assert names(_range("LastModifiedTime", "LessThanOrEqualTo", "2026-03-01T12:00:01")) == [
        "ep-00",
        "ep-01",
        "ep-02",
    ]
    every = names(
        {"Name": "EndpointStatus", "Operator": "Equals", "Value": "InService"},
        _range("CreationTime", "GreaterThanOrEqualTo", "2026-03-01T11:00:00"),
    )
    assert every == [f"ep-{i:02d}" for i in range(30)]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("CreationTime", "2026-03-01T12:00:05Z", "YYYY-mm-ddTHH:MM:SS"),
        ("CreationTime", "2026-03-01 12:00:05", "YYYY-mm-ddTHH:MM:SS"),
        ("CreationTime", "2026-03-01T12:00:05.250", "YYYY-mm-ddTHH:MM:SS"),
        ("CreationTime", "yesterday", "YYYY-mm-ddTHH:MM:SS"),
        ("EndpointName", "ep-05", "text"),
    ],
)
def test_search_refuses_a_range_it_cannot_read(
    sim: Simulator, fleet: Fleet, now: datetime, name: str, value: str, problem: str
) -> None:
    from botocore.exceptions import ClientError

    fleet.endpoint("us-east-1", "ep-00", changed=now - timedelta(days=1))
    client = sim.client("sagemaker", "us-east-1")
    with pytest.raises(ClientError) as refused:
        client.search(
            Resource="Endpoint",
            SearchExpression={"Filters": [_range(name, "GreaterThanOrEqualTo", value)]},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert problem in refused.value.response["Error"]["Message"]


def _searches(aws: object, region: str) -> list[dict[str, object]]:
    """The parameters of every ``Search`` call the client of ``aws`` makes from now on."""
    seen: list[dict[str, object]] = []

    def record(params: dict[str, object], **_: object) -> None:
        seen.append(dict(params))

    aws.sagemaker(region).meta.events.register(  # type: ignore[attr-defined]
        "provide-client-params.sagemaker.Search", record
    )
    return seen


def _ranged(params: dict[str, object]) -> bool:
    expression = params["SearchExpression"]
    assert isinstance(expression, dict)
    return any(f["Name"] == "CreationTime" for f in expression["Filters"])


LONG = [f"ep-{i:03d}" for i in range(450)]


def _search_long_list(
    fleet: Fleet, now: datetime, apart: timedelta
) -> tuple[list[str], list[dict[str, object]]]:
    """:data:`LONG` created ``apart`` from one another, read through ``Search`` with a slice
    per 50 endpoints: the names found, and every ``Search`` call's parameters."""
    from sagesaver.aws.endpoint_search import search_in_service_endpoints
    from sagesaver.aws.session import Aws

    start = (now - timedelta(days=3)).replace(microsecond=0)
    for i, name in enumerate(LONG):
        fleet.endpoint("us-east-1", name, changed=start + i * apart)
    aws = Aws()
    searches = _searches(aws, "us-east-1")
    listing = search_in_service_endpoints(aws, "us-east-1", slice_endpoints=50)
    return [e.name for e in listing.everything], searches


@pytest.mark.parametrize("offset_hours", [0, 8, -8])
def test_a_long_list_is_read_in_time_slices_at_once_and_whole(
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    offset_hours: int,
) -> None:
    """The middle of the list is read in slices of CreationTime; the outer slices are open,
    so a service reading the bounds in another time zone still returns every endpoint."""
    from sagesaver.aws.endpoint_search import SEARCH_SLICES
    from sagesaver.demo import search

    if offset_hours:  # the service reads a bound as a time in a zone offset_hours from UTC
        utc = search.search_time_value
        monkeypatch.setattr(
            search,
            "search_time_value",
            lambda value: utc(value) - timedelta(hours=offset_hours),
        )
    names, searches = _search_long_list(fleet, now, timedelta(seconds=7))
    assert names == LONG
    ranged = [s for s in searches if _ranged(s)]
    first_pages = [s for s in ranged if "NextToken" not in s]
    assert 2 <= len(first_pages) <= SEARCH_SLICES  # slices, read at once
    # The two first pages, then the slices: a page more per slice at most, and less than
    # one chain of pages would make (the calls of the slices run at once).
    assert len(searches) <= 2 + 5 + len(first_pages)
    assert len(searches) - len(ranged) == 2


def test_a_refused_range_reads_the_list_from_both_ends(
    sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagesaver.demo import search

    def refused(value: str) -> datetime:
        raise search.SearchRefused(f"Unsupported filter value {value}")

    monkeypatch.setattr(search, "search_time_value", refused)
    names, searches = _search_long_list(fleet, now, timedelta(seconds=7))
    assert names == LONG
    unranged = [s for s in searches if not _ranged(s)]
    assert len(unranged) <= 5 + 1  # both ends went on until they met
    assert len(searches) - len(unranged) >= 1  # the slices were tried first


def test_endpoints_created_in_one_second_are_read_from_both_ends(
    sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    names, searches = _search_long_list(fleet, now, timedelta(milliseconds=2))
    assert names == LONG
    assert not [s for s in searches if _ranged(s)]  # no whole second to cut the list on
    assert len(searches) <= 5 + 1


def test_slices_that_miss_endpoints_are_not_trusted(
    sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that answered the range filters with nothing (as moto's own Search does,
    reading any operator as Equals): fewer endpoints than TotalHits counted, so the list is
    read from both ends after all."""
    from sagesaver.demo import search

    monkeypatch.setitem(search.SEARCH_RANGES, "GreaterThanOrEqualTo", lambda a, b: a == b)
    monkeypatch.setitem(search.SEARCH_RANGES, "LessThan", lambda a, b: a == b)
    names, searches = _search_long_list(fleet, now, timedelta(seconds=7))
    assert names == LONG
    assert [s for s in searches if _ranged(s)]  # tried, found wanting
