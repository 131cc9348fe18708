"""Issue 28: a Price List that accepts the connection and never answers (a proxy, a firewall)
stalls no run. One attempt with short time-outs; the failure is remembered for the run and
for an hour in the price cache (the file for the CLI, the ledger table for Lambda); one line on
stderr says so; prices fall back to the bundled table (unknown where it has none); a run never
waits more than its budget on prices."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sagesaver.aws.prices import PRICE_BUDGET_S, LivePrices, PriceListTrouble
from sagesaver.aws.session import Aws
from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from tests.conftest import Cli, run_at

BEIJING = "cn-north-1"
OLD = timedelta(days=3)
SCAN = ("scan", "--region", BEIJING, "--output", "json")


@pytest.fixture
def beijing(sim: Simulator, fleet: Fleet, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two idle endpoints of two instance types and a notebook in Beijing: three prices."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", BEIJING)
    fleet.endpoint(
        BEIJING, "gpu-idle", [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)], changed=now - OLD
    )
    fleet.endpoint(BEIJING, "cpu-idle", changed=now - OLD)
    fleet.notebook(BEIJING, "dev-notebook")


def price_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Price List" in line]


def scan_at(cli: Cli, sim: Simulator, moment: datetime, *extra: str) -> tuple[Any, float, int]:
    """The scan's result, how long it took (s) and how many GetProducts it sent."""
    sim.middleware.counts.clear()
    with run_at(moment.isoformat()):
        started = time.monotonic()
        result = cli(*SCAN, *extra)
        elapsed = time.monotonic() - started
    return result, elapsed, sim.middleware.counts["GetProducts"]


def test_a_hanging_price_list_is_asked_once_then_not_for_an_hour(
    cli: Cli, sim: Simulator, beijing: None, now: datetime
) -> None:
    sim.behaviours.price_list.mode = "hang"
    first, elapsed, asked = scan_at(cli, sim, now + timedelta(minutes=1), "-v")
    assert first.exit_code == 0, first.stderr
    assert elapsed < PRICE_BUDGET_S  # was ~91 s: 3 attempts of 30 s (max_attempts 2 = retries)
    assert asked == 1  # one attempt, for the first price; none for the other two
    # -v logs the call that failed like any other AWS call
    assert "cn-northwest-1 pricing.GetProducts -> ReadTimeoutError" in first.stderr
    [line] = price_lines(first.stderr)  # once per run, not per price
    assert line.startswith("sagesaver: the Price List (")
    assert "did not answer within 5 s" in line
    assert "--offline-prices" in line
    doc = json.loads(first.stdout)  # the line never reaches stdout: the JSON parses
    assert line not in first.stdout and "did not answer within" not in first.stdout
    sources = {r["name"]: r["price_source"] for r in doc["resources"]}
    assert sources == {"gpu-idle": "unknown", "cpu-idle": "unknown", "dev-notebook": "unknown"}
    assert all("Price List" in r["price_note"] for r in doc["resources"])
    assert doc["summary"]["idle_with_unknown_cost"] >= 2

    # Within the hour: not asked again (the file cache remembers), said again, no wait.
    second, elapsed, asked = scan_at(cli, sim, now + timedelta(minutes=40))
    assert second.exit_code == 0, second.stderr
    assert asked == 0
    assert elapsed < PRICE_BUDGET_S
    [line] = price_lines(second.stderr)
    assert "did not answer within 5 s" in line and "asked again after" in line
    assert json.loads(second.stdout)["resources"][0]["price_source"] == "unknown"

    # After the hour it is asked again; it answers now: live prices, nothing to say.
    sim.behaviours.price_list.mode = "answer"
    third, _, asked = scan_at(cli, sim, now + timedelta(minutes=62))
    assert third.exit_code == 0, third.stderr
    assert asked == 3  # one per price, none remembered as unlisted
    assert price_lines(third.stderr) == []
    assert {r["price_source"] for r in json.loads(third.stdout)["resources"]} == {"live"}


def test_a_denied_price_list_is_remembered_an_hour_in_the_lambda_ledger_table(
    sim: Simulator, beijing: None, now: datetime, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from sagesaver.lambda_handlers import idle_endpoints
    from sagesaver.ledger.dynamodb import create_table

    create_table(Aws(), BEIJING, "ledger")
    monkeypatch.setenv("SAGESAVER_REGIONS", BEIJING)
    monkeypatch.setenv("SAGESAVER_LEDGER", "dynamodb://ledger")
    monkeypatch.setenv("AWS_REGION", BEIJING)
    sim.behaviours.price_list.mode = "denied"

    def invoke(minutes: int) -> tuple[dict[str, Any], int, list[str]]:
        sim.middleware.counts.clear()
        capsys.readouterr()
        with run_at((now + timedelta(minutes=minutes)).isoformat()):
            result = idle_endpoints({"apply": False}, None)
        logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        warnings = [r["message"] for r in logged if r.get("event") == "warning"]
        return result, sim.middleware.counts["GetProducts"], warnings

    result, asked, warnings = invoke(1)
    assert asked == 1
    [warning] = warnings
    assert "refused GetProducts (AccessDeniedException)" in warning
    assert {e["price_source"] for e in result["idle_endpoints"]} == {"unknown"}
    # the next invocations within the hour read the failure from the table: no call
    assert invoke(30)[1] == 0
    assert len(invoke(59)[2]) == 1
    # after the hour the Price List is asked again
    assert invoke(62)[1] == 1


class SlowClock:
    """A clock that only moves when a Price List call is made: each takes ``call_s``."""

    def __init__(self, call_s: float) -> None:
        self.now = 1000.0
        self.call_s = call_s
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def tick(self, **_: Any) -> None:
        self.now += self.call_s
        self.calls += 1


def test_a_slow_price_list_never_holds_a_run_past_its_budget() -> None:
    """Each answer takes 4 s (on a clock the calls move): no call starts that could end past
    the budget, however many prices are still wanted, and it is said once."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    aws = Aws(session)
    client = aws.pricing("us-east-1")
    clock = SlowClock(4.0)
    client.meta.events.register("provide-client-params.pricing.GetProducts", clock.tick)
    troubles: list[PriceListTrouble] = []
    live = LivePrices(aws, None, now=0.0, clock=clock, on_trouble=troubles.append)
    types = [f"ml.m5.{size}" for size in ("large", "xlarge", "2xlarge", "4xlarge", "12xlarge")]
    with Stubber(client) as stub:
        for _ in types:
            stub.add_response("get_products", {"PriceList": [], "FormatVersion": "aws_v1"})
        started = clock()
        answers = [live("us-east-1", "hosting", t) for t in types]
    assert answers == [None] * len(types)
    assert clock() - started <= PRICE_BUDGET_S
    assert clock.calls == 2  # at 0 s and 4 s; one at 8 s could end past 15 s
    [trouble] = troubles
    assert "15 s" in trouble.what


@pytest.mark.parametrize(
    ("code", "status", "said", "remembered"),
    [
        ("AccessDeniedException", 400, "refused GetProducts (AccessDeniedException)", True),
        ("ServiceUnavailable", 503, "failed GetProducts (ServiceUnavailable)", True),
        ("ThrottlingException", 400, "throttled GetProducts (ThrottlingException)", False),
    ],
)
def test_a_failure_ends_the_run_and_is_remembered_unless_throttled(
    tmp_path: Any, code: str, status: int, said: str, remembered: bool
) -> None:
    """One failed call and no other that run; the next run (a new LivePrices on the same
    file cache, 10 minutes later) asks again only after throttling."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    aws = Aws(session)
    client = aws.pricing("us-east-1")
    clock = SlowClock(0.1)
    client.meta.events.register("provide-client-params.pricing.GetProducts", clock.tick)
    cache = tmp_path / "prices.json"
    troubles: list[PriceListTrouble] = []
    with Stubber(client) as stub:
        stub.add_client_error("get_products", code, "no", http_status_code=status)
        stub.add_response("get_products", {"PriceList": [], "FormatVersion": "aws_v1"})
        run = LivePrices(aws, cache, now=0.0, clock=clock, on_trouble=troubles.append)
        assert run("us-east-1", "hosting", "ml.m5.large") is None
        assert run("eu-west-1", "notebook", "ml.t3.medium") is None
        assert clock.calls == 1
        [trouble] = troubles
        assert trouble.what == said and trouble.seen_at is None
        later = LivePrices(aws, cache, now=600.0, clock=clock, on_trouble=troubles.append)
        assert later("us-east-1", "hosting", "ml.m5.large") is None
    assert clock.calls == (1 if remembered else 2)
    if remembered:
        assert troubles[1] == PriceListTrouble(trouble.host, said, seen_at=0.0)
        assert "at 1970-01-01 00:00 UTC (asked again after 1970-01-01 01:00 UTC)" in (
            troubles[1].describe()
        )
