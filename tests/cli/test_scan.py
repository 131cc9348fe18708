"""End-to-end: the ``sagesaver`` command against a moto server over real HTTP."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine

from sagesaver.core.permissions import CAPABILITIES
from sagesaver.demo.simulator import Fault, Fleet, Simulator, VariantSpec
from tests.conftest import Cli

EAST, WEST = "us-east-1", "us-west-2"
OLD = timedelta(days=10)


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in document["resources"]}


def hourly(now: datetime, values: list[float]) -> list[tuple[datetime, float]]:
    return [(now - timedelta(hours=i + 1), v) for i, v in enumerate(values)]


def seed_traps(fleet: Fleet, now: datetime) -> None:
    """Every trap of the foundation issue, in one region."""
    fleet.endpoint(
        EAST, "second-variant-traffic", [VariantSpec("a"), VariantSpec("b")], changed=now - OLD
    )
    fleet.invocations(EAST, "second-variant-traffic", "a", hourly(now, [0, 0, 0]))
    fleet.invocations(EAST, "second-variant-traffic", "b", hourly(now, [0, 4, 0]))
    fleet.endpoint(EAST, "published-zeros", changed=now - OLD)
    fleet.invocations(EAST, "published-zeros", "AllTraffic", hourly(now, [0.0] * 20))
    fleet.endpoint(
        EAST,
        "no-metrics-at-all",
        [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)],
        changed=now - OLD,
    )
    fleet.endpoint(EAST, "created-an-hour-ago", changed=now - timedelta(hours=1))
    fleet.endpoint(EAST, "protected", tags={"sagesaver:protect": "true"}, changed=now - OLD)
    fleet.endpoint(EAST, "zero-instances", [VariantSpec("AllTraffic", count=0)], changed=now - OLD)
    fleet.endpoint(EAST, "old-traffic-only", changed=now - OLD)
    fleet.invocations(EAST, "old-traffic-only", "AllTraffic", [(now - timedelta(hours=30), 500)])
    fleet.endpoint(EAST, "busy", changed=now - OLD)
    fleet.invocations(EAST, "busy", "AllTraffic", hourly(now, [10, 20]))


def test_every_trap_is_judged_right(cli: Cli, fleet: Fleet, now: datetime) -> None:
    seed_traps(fleet, now)
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0, doc["errors"]
    got = by_name(doc)
    expected = {
        "second-variant-traffic": (False, "keep"),
        "published-zeros": (True, "notify"),
        "no-metrics-at-all": (True, "notify"),
        "created-an-hour-ago": (False, "keep"),
        "protected": (True, "keep"),
        "zero-instances": (True, "keep"),
        "old-traffic-only": (True, "notify"),
        "busy": (False, "keep"),
    }
    assert {
        n: (r["idle"], r["decision"]) for n, r in got.items() if r["kind"] == "endpoint"
    } == expected
    assert "4 invocations" in got["second-variant-traffic"]["reason"]
    assert "min_age_hours" in got["created-an-hour-ago"]["reason"]
    assert "protected by tag sagesaver:protect" in got["protected"]["reason"]
    assert got["zero-instances"]["hourly_cost_usd"] == 0
    assert "0 instances" in got["zero-instances"]["reason"]
    big = got["no-metrics-at-all"]
    assert (big["instance_type"], big["instance_count"]) == ("ml.g4dn.xlarge", 2)
    assert big["hourly_cost_usd"] == pytest.approx(2 * 0.736)
    assert got["busy"]["instance_type"] is None  # active endpoints are not described


def test_json_document_shape(cli: Cli, fleet: Fleet, now: datetime) -> None:
    seed_traps(fleet, now)
    result = cli("scan", "--region", EAST, "--output", "json")
    import json

    doc = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert set(doc) == {"generated_at", "regions", "resources", "summary", "errors"}
    assert doc["generated_at"].endswith("Z")
    required = {
        "kind",
        "name",
        "arn",
        "region",
        "status",
        "instance_type",
        "instance_count",
        "hourly_cost_usd",
        "idle",
        "idle_hours",
        "decision",
        "reason",
    }
    for resource in doc["resources"]:
        assert required <= set(resource)
        assert isinstance(resource["idle"], bool)
    summary = doc["summary"]
    assert summary["idle"] == 5
    assert summary["actions"] == {"notify": 3, "delete": 0, "release": 0}
    notified = [r for r in doc["resources"] if r["decision"] == "notify"]
    assert summary["actionable_hourly_cost_usd"] == pytest.approx(
        sum(r["hourly_cost_usd"] for r in notified)
    )
    assert summary["actionable_30_day_cost_usd"] == pytest.approx(
        summary["actionable_hourly_cost_usd"] * 720, abs=0.01
    )


def test_pagination_and_two_regions(cli: Cli, fleet: Fleet, now: datetime) -> None:
    idle_east = set()
    for i in range(130):
        name = f"ep-{i:03d}"
        fleet.endpoint(EAST, name, changed=now - OLD)
        if i % 2:
            fleet.invocations(EAST, name, "AllTraffic", hourly(now, [1]))
        else:
            idle_east.add(name)
    fleet.endpoint(WEST, "west-idle", changed=now - OLD)
    fleet.endpoint(WEST, "west-busy", changed=now - OLD)
    fleet.invocations(WEST, "west-busy", "AllTraffic", hourly(now, [7]))

    code, doc = cli.json("scan", "--region", EAST, "--region", WEST)
    assert code == 0
    endpoints = [r for r in doc["resources"] if r["kind"] == "endpoint"]
    assert len(endpoints) == 132
    idle = {r["name"] for r in endpoints if r["idle"]}
    assert idle == idle_east | {"west-idle"}
    assert {r["region"] for r in endpoints if r["name"].startswith("west")} == {WEST}


def seed_calls_fleet(fleet: Fleet, now: datetime, total: int = 230) -> tuple[int, int]:
    """``total`` endpoints, a third with two variants, half idle; returns (idle, variants)."""
    idle, listed_variants = 0, 0
    for i in range(total):
        name = f"ep-{i:03d}"
        variants = [VariantSpec("a"), VariantSpec("b")] if i % 3 == 0 else [VariantSpec("a")]
        # Created a second apart, as endpoints are: Search pages meet in the middle.
        fleet.endpoint(EAST, name, variants, changed=now - OLD - timedelta(seconds=i))
        listed_variants += len(variants)
        if i % 2:
            fleet.invocations(EAST, name, variants[-1].name, hourly(now, [3]))
            fleet.invocations(EAST, name, variants[0].name, hourly(now, [0]))
        else:
            idle += 1
            for variant in variants:
                fleet.invocations(EAST, name, variant.name, hourly(now, [0, 0]))
    return idle, listed_variants


def idle_variant_count(total: int) -> int:
    """How many variants the idle endpoints of :func:`seed_calls_fleet` have."""
    return sum(2 if i % 3 == 0 else 1 for i in range(total) if i % 2 == 0)


def deny(*operations: str) -> Any:
    def rule(operation: str, region: str, _: object) -> Fault | None:
        if operation in operations:
            return Fault(400, "AccessDeniedException", f"not authorized to {operation}")
        return None

    return rule


def test_api_calls_per_operation(cli: Cli, sim: Simulator, fleet: Fleet, now: datetime) -> None:
    total = 230
    idle, listed_variants = seed_calls_fleet(fleet, now, total)
    sim.middleware.counts.clear()

    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0 and doc["summary"]["idle"] == idle
    counts = dict(sim.middleware.counts)
    # Search reads endpoints, their tags, configuration names and instance counts in bulk:
    # from both ends at once, so the two chains may each read one page past their meeting.
    assert math.ceil(total / 100) <= counts["Search"] <= math.ceil(total / 100) + 1
    assert len(doc["resources"]) == total
    assert "ListEndpoints" not in counts and "DescribeEndpoint" not in counts
    assert "GetResources" not in counts  # endpoint tags came with Search; no notebook
    assert counts["DescribeEndpointConfig"] == idle
    # The window's sums for every variant, then the daily sums for the idle ones (how long idle)
    idle_variants = idle_variant_count(total)
    assert counts["GetMetricData"] == math.ceil(listed_variants / 500) + math.ceil(
        idle_variants / 500
    )
    assert counts["ListNotebookInstances"] == 1
    assert "ListTags" not in counts and "GetMetricStatistics" not in counts
    # The region's other reads, one listing each, whatever the fleet: inference components,
    # parked compute (warm pools and long training runs, processing jobs, HyperPod) and the
    # Price List for the one instance type.
    others = {
        "ListInferenceComponents": 1,
        "ListTrainingJobs": 2,
        "ListProcessingJobs": 1,
        "ListClusters": 1,
        "GetProducts": 1,
    }
    assert {op: counts.get(op, 0) for op in others} == others
    endpoint_calls = sum(counts.values()) - counts["ListNotebookInstances"] - sum(others.values())
    budget = counts["Search"] + counts["ListMetrics"] + counts["GetMetricData"] + idle
    assert endpoint_calls == budget
    costs = {r["name"]: r["hourly_cost_usd"] for r in doc["resources"] if r["idle"]}
    assert all(cost and cost > 0 for cost in costs.values())


def test_without_search_the_scan_lists_and_describes(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    total = 230
    idle, listed_variants = seed_calls_fleet(fleet, now, total)
    code, searched = cli.json("scan", "--region", EAST)
    assert code == 0
    sim.middleware.counts.clear()
    sim.middleware.fault = deny("Search")
    code, listed = cli.json("scan", "--region", EAST, "--output", "json")
    assert code == 0, listed["errors"]
    counts = dict(sim.middleware.counts)
    assert counts["Search"] <= 2  # each chain's first page, denied: the older reads follow
    assert counts["ListEndpoints"] == math.ceil(total / 100)
    assert counts["GetResources"] == 1
    assert counts["DescribeEndpoint"] == idle
    # Its configurations were remembered by the first scan: not described again; nor are
    # the daily sums of the endpoints idle since (how long they have been idle).
    assert "DescribeEndpointConfig" not in counts
    assert counts["GetMetricData"] == math.ceil(listed_variants / 500)

    def decisions(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
        keys = ("name", "idle", "action", "reason", "instance_type", "hourly_cost_usd")
        return sorted(tuple(r.get(k) for k in keys) for r in doc["resources"])

    assert decisions(listed) == decisions(searched)


def test_a_repeat_scan_costs_at_most_one_call_per_25_endpoints(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    total = 230
    idle, listed_variants = seed_calls_fleet(fleet, now, total)
    with time_machine.travel(now + timedelta(minutes=1), tick=False):  # one moment: same output
        code, first = cli.json("scan", "--region", EAST)
        assert code == 0
        sim.middleware.counts.clear()
        code, again = cli.json("scan", "--region", EAST)
    assert code == 0
    counts = dict(sim.middleware.counts)
    assert "DescribeEndpointConfig" not in counts
    assert counts["ListEndpointConfigs"] == 1  # nothing created since the last check
    # Reads a region costs whatever its fleet (issues 17 and 13): inference components, parked
    # compute (warm pools and long training runs, processing jobs, HyperPod), and the one
    # ListMetrics page of the busy endpoints' utilisation (right-sizing). The rest is per
    # endpoint.
    per_region = {
        "ListInferenceComponents": 1,
        "ListTrainingJobs": 2,
        "ListProcessingJobs": 1,
        "ListClusters": 1,
    }
    assert {op: counts.get(op, 0) for op in per_region} == per_region
    utilisation_listing = 1
    # How long the idle endpoints have been idle (issue 14): their daily Invocations sums,
    # read by the first scan, are remembered for the endpoints still idle since.
    fixed = sum(per_region.values()) + utilisation_listing
    assert sum(counts.values()) - fixed <= total / 25
    assert counts["GetMetricData"] == math.ceil(listed_variants / 500)  # the window's only
    assert again["resources"] == first["resources"]
    assert again["summary"]["idle"] == idle


def test_a_configuration_created_again_under_its_name_is_read_again(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "reused", changed=now - OLD)
    fleet.endpoint(EAST, "kept", changed=now - OLD)
    code, first = cli.json("scan", "--region", EAST)
    assert code == 0
    assert {r["name"]: r["instance_type"] for r in first["resources"]} == {
        "reused": "ml.m5.large",
        "kept": "ml.m5.large",
    }
    client = sim.client("sagemaker", EAST)
    client.delete_endpoint_config(EndpointConfigName="reused-config")
    client.create_endpoint_config(
        EndpointConfigName="reused-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "demo-model",
                "InstanceType": "ml.g4dn.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sim.middleware.counts.clear()
    code, second = cli.json("scan", "--region", EAST)
    assert code == 0
    assert {r["name"]: r["instance_type"] for r in second["resources"]} == {
        "reused": "ml.g4dn.xlarge",
        "kept": "ml.m5.large",
    }
    assert sim.middleware.counts["DescribeEndpointConfig"] == 1  # the new one only


def test_an_unreadable_cache_is_rebuilt(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, config_cache_dir: Path
) -> None:
    fleet.endpoint(EAST, "idle-one", changed=now - OLD)
    (config_cache_dir / "endpoint-configs.json.gz").write_bytes(b"not gzip at all")
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0 and doc["summary"]["idle"] == 1
    assert sim.middleware.counts["DescribeEndpointConfig"] == 1
    sim.middleware.counts.clear()
    code, _ = cli.json("scan", "--region", EAST)
    assert code == 0 and "DescribeEndpointConfig" not in sim.middleware.counts


def test_shared_endpoint_config_is_described_once(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "first", changed=now - OLD)
    client = sim.client("sagemaker", EAST)
    for name in ("second", "third"):
        client.create_endpoint(EndpointName=name, EndpointConfigName="first-config")
    from sagesaver.demo import simulator as simmod

    backend = simmod._sagemaker_backend(EAST)
    for name in ("second", "third"):
        backend.endpoints[name].creation_time = backend.endpoints[name].last_modified_time = (
            simmod._naive_utc(now - OLD)
        )
    sim.middleware.counts.clear()
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0 and doc["summary"]["idle"] == 3
    assert "DescribeEndpoint" not in sim.middleware.counts  # Search named its configuration
    assert sim.middleware.counts["DescribeEndpointConfig"] == 1


def test_a_denied_region_does_not_stop_the_others(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "east-idle", changed=now - OLD)
    fleet.endpoint(WEST, "west-idle", changed=now - OLD)

    def deny_west(operation: str, region: str, _: object) -> Fault | None:
        if region == WEST and operation in ("Search", "ListEndpoints"):
            return Fault(400, "AccessDeniedException", "User is not authorized")
        return None

    sim.middleware.fault = deny_west
    code, doc = cli.json("scan", "--region", EAST, "--region", WEST)
    assert code == 1
    assert [r["name"] for r in doc["resources"] if r["kind"] == "endpoint"] == ["east-idle"]
    assert doc["errors"] == [
        {
            "account": None,  # the caller's own account: not fanned out
            "region": WEST,
            "operation": "ListEndpoints",
            "resource": None,
            "code": "AccessDeniedException",
            "message": "User is not authorized",
        }
    ]


def test_a_failed_describe_affects_only_its_endpoint(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    for name in ("a-idle", "b-idle", "c-idle"):
        fleet.endpoint(EAST, name, changed=now - OLD)

    def break_b(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation not in ("DescribeEndpoint", "DescribeEndpointConfig"):
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        if b"b-idle" in body:
            return Fault(400, "ValidationException", "Could not find endpoint b-idle")
        return None

    sim.middleware.fault = break_b
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 1
    got = by_name(doc)
    assert got["a-idle"]["decision"] == got["c-idle"]["decision"] == "notify"
    assert got["b-idle"]["decision"] == "keep"
    assert got["b-idle"]["rule"] == "details-unknown"
    assert [(e["operation"], e["resource"]) for e in doc["errors"]] == [
        ("DescribeEndpointConfig", "b-idle")
    ]


def test_failed_metrics_never_make_an_endpoint_idle(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(EAST, "x", changed=now - OLD)
    sim.middleware.fault = lambda op, region, env: (
        Fault(400, "AccessDeniedException", "no cloudwatch") if op == "ListMetrics" else None
    )
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 1
    assert by_name(doc)["x"]["idle"] is False
    assert by_name(doc)["x"]["rule"] == "activity-unknown"
    assert doc["errors"][0]["operation"] == "ListMetrics"


def test_notebooks_are_inventoried(cli: Cli, fleet: Fleet, now: datetime) -> None:
    fleet.notebook(EAST, "dev-unguarded", "ml.t3.medium", tags={"owner": "ana"})
    fleet.notebook(EAST, "dev-guarded", "ml.m5.xlarge", lifecycle_config="autostop")
    fleet.notebook(EAST, "stopped", "ml.p3.2xlarge", status="Stopped")
    code, doc = cli.json("scan", "--region", EAST)
    assert code == 0
    got = by_name(doc)
    assert got["dev-unguarded"]["rule"] == "no-auto-stop"
    assert "no auto-stop guard" in got["dev-unguarded"]["reason"]
    assert got["dev-unguarded"]["tags"] == {"owner": "ana"}
    assert got["dev-unguarded"]["hourly_cost_usd"] == 0.05
    assert got["dev-guarded"]["lifecycle_config"] == "autostop"
    assert got["dev-guarded"]["rule"] == "auto-stop-guard"
    stopped = got["stopped"]  # no instance cost, but its 5 GB ML storage volume bills
    assert stopped["status"] == "Stopped" and stopped["rule"] == "stopped-storage"
    # The shipped table has no figures (generated offline): the storage price is unknown.
    assert stopped["hourly_cost_usd"] is None and stopped["price_source"] == "unknown"
    assert "bundled table" in stopped["price_note"]
    assert "5 GB ML storage volume bills an unknown amount" in stopped["reason"]
    assert stopped["decision"] == "keep" and stopped["idle"] is True
    assert doc["summary"]["notebooks_without_auto_stop"] == 1


def test_policy_scope_and_tags(cli: Cli, fleet: Fleet, now: datetime, tmp_path: Path) -> None:
    fleet.endpoint(EAST, "prod-api", tags={"team": "ml"}, changed=now - OLD)
    fleet.endpoint(EAST, "ml-demo", tags={"team": "ml"}, changed=now - OLD)
    fleet.endpoint(EAST, "other-team", tags={"team": "web"}, changed=now - OLD)
    policy = tmp_path / "p.yaml"
    policy.write_text("endpoints:\n  exclude: ['prod-*']\n  tags: {team: ml}\n")
    code, doc = cli.json("scan", "--region", EAST, "--policy", str(policy))
    assert code == 0
    decisions = {n: r["decision"] for n, r in by_name(doc).items()}
    assert decisions == {"prod-api": "keep", "ml-demo": "notify", "other-team": "keep"}
    assert "exclude 'prod-*'" in by_name(doc)["prod-api"]["reason"]


def test_csv_and_table_outputs(cli: Cli, fleet: Fleet, now: datetime) -> None:
    seed_traps(fleet, now)
    result = cli("scan", "--region", EAST, "--output", "csv")
    lines = result.stdout.strip().splitlines()
    assert result.exit_code == 0
    assert lines[0].startswith("kind,name,region")
    assert len(lines) == 1 + 8
    table = cli("scan", "--region", EAST)
    assert table.exit_code == 0
    assert "no-metrics-at-all" in table.stdout
    assert "per 30 days" in table.stdout


def test_bad_policy_exits_2_and_calls_nothing(cli: Cli, sim: Simulator, tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("endpoints:\n  idle_hours: -5\n")
    result = cli("scan", "--policy", str(policy), "--region", EAST)
    assert result.exit_code == 2
    assert f"{policy}:2: endpoints.idle_hours" in result.stderr
    assert result.stdout == ""
    assert sum(sim.middleware.counts.values()) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "--region", "moon-1"], "'moon-1' is not an AWS region name"),
        (["scan", "--region", EAST, "--all-regions"], "cannot be used together"),
        (["scan", "--output", "xml"], "Invalid value"),
        (["run", "--region", EAST, "--apply"], "needs notify.sns_topic_arn"),
    ],
)
def test_bad_options_exit_2(cli: Cli, sim: Simulator, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert sum(sim.middleware.counts.values()) == 0


def test_no_region_anywhere_is_bad_input(
    cli: Cli, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    result = cli("scan")
    assert result.exit_code == 2
    assert "no region" in result.stderr


def test_all_regions(cli: Cli, fleet: Fleet, now: datetime) -> None:
    fleet.endpoint("eu-west-1", "dublin-idle", changed=now - OLD)
    code, doc = cli.json("scan", "--all-regions")
    assert code == 0
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(doc["regions"])
    assert [r["region"] for r in doc["resources"]] == ["eu-west-1"]


def test_run_dry_run_prints_and_sends_nothing(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    seed_traps(fleet, now)
    policy = tmp_path / "p.yaml"
    policy.write_text(f"notify:\n  sns_topic_arn: {topic}\n")
    result = cli("run", "--region", EAST, "--policy", str(policy))
    assert result.exit_code == 0
    assert "Dry run: would send to" in result.stdout
    assert "no-metrics-at-all (us-east-1)" in result.stdout
    assert "Publish" not in sim.middleware.counts
    assert fleet.published(topic) == []


def test_run_apply_publishes_one_digest(
    cli: Cli, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(WEST, "admins")  # a topic in another region than the scan
    seed_traps(fleet, now)
    policy = tmp_path / "p.yaml"
    policy.write_text(f"notify:\n  sns_topic_arn: {topic}\n")
    code, doc = cli.json("run", "--region", EAST, "--policy", str(policy), "--apply")
    assert code == 0
    assert doc["applied"] is True and len(doc["message_ids"]) == 1
    sent = fleet.published(topic)
    assert len(sent) == 1
    assert sent[0]["Subject"].startswith("SageSaver: 3 idle endpoints,")
    body = sent[0]["Message"]
    for name in ("published-zeros", "no-metrics-at-all", "old-traffic-only"):
        assert name in body
    for name in ("protected", "zero-instances", "busy", "created-an-hour-ago"):
        assert f"- {name} " not in body
    assert "2 x ml.g4dn.xlarge; $1.47/h, $1,059.84 per 30 days" in body


def test_run_apply_with_nothing_idle_sends_nothing(
    cli: Cli, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    fleet.endpoint(EAST, "busy", changed=now - OLD)
    fleet.invocations(EAST, "busy", "AllTraffic", hourly(now, [1]))
    policy = tmp_path / "p.yaml"
    policy.write_text(f"notify:\n  sns_topic_arn: {topic}\n")
    result = cli("run", "--region", EAST, "--policy", str(policy), "--apply")
    assert result.exit_code == 0
    assert "No idle endpoint" in result.stdout
    assert fleet.published(topic) == []


def test_a_failed_publish_is_an_error_not_a_crash(
    cli: Cli, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    fleet.endpoint(EAST, "idle", changed=now - OLD)
    policy = tmp_path / "p.yaml"
    policy.write_text("notify:\n  sns_topic_arn: arn:aws:sns:us-east-1:123456789012:missing\n")
    code, doc = cli.json("run", "--region", EAST, "--policy", str(policy), "--apply")
    assert code == 1
    assert doc["applied"] is False
    assert doc["errors"][0]["operation"] == "Publish"


def test_every_operation_is_a_declared_permission(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    topic = fleet.topic(EAST, "admins")
    seed_traps(fleet, now)
    fleet.notebook(EAST, "nb")
    policy = tmp_path / "p.yaml"
    policy.write_text(f"notify:\n  sns_topic_arn: {topic}\n")
    sim.middleware.counts.clear()
    assert cli("run", "--region", EAST, "--policy", str(policy), "--apply").exit_code == 0
    assert cli("scan", "--all-regions").exit_code == 0
    declared = {a.split(":", 1)[1] for actions in CAPABILITIES.values() for a in actions}
    assert set(sim.middleware.counts) <= declared
    assert {"Search", "GetMetricData", "Publish", "DescribeRegions"} <= set(sim.middleware.counts)


def test_long_windows_read_variants_listmetrics_no_longer_lists(
    cli: Cli,
    sim: Simulator,
    fleet: Fleet,
    now: datetime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CloudWatch's ListMetrics forgets metrics without data for 14 days; a 30-day window
    must still see a monthly job's traffic from 20 days ago."""
    from sagesaver.pipelines import scan as run

    fleet.endpoint(EAST, "monthly-job", changed=now - timedelta(days=40))
    fleet.invocations(EAST, "monthly-job", "AllTraffic", [(now - timedelta(days=20), 900)])
    fleet.endpoint(EAST, "really-idle", changed=now - timedelta(days=40))
    monkeypatch.setattr(run.metrics, "variant_dimensions", lambda aws, region: {})
    policy = tmp_path / "p.yaml"
    policy.write_text("endpoints: {idle_hours: 720}\n")
    code, doc = cli.json("scan", "--region", EAST, "--policy", str(policy))
    assert code == 0
    got = by_name(doc)
    assert got["monthly-job"]["idle"] is False
    assert "900 invocations" in got["monthly-job"]["reason"]
    assert got["really-idle"]["idle"] is True
    # only the re-check (nothing was listed), then the daily sums of the idle one
    assert sim.middleware.counts["GetMetricData"] == 2


def test_fail_on_cost_exits_3_over_the_limit_0_under_and_2_on_a_bad_currency(
    cli: Cli, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(
        EAST, "idle-gpu", [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)], changed=now - OLD
    )
    fleet.invocations(EAST, "idle-gpu", "AllTraffic", hourly(now, [0.0] * 20))
    code, doc = cli.json("scan", "--region", EAST, "--fail-on-cost", "1")
    assert code == 3 and by_name(doc)["idle-gpu"]["decision"] == "notify"  # the output is whole
    result = cli("scan", "--region", EAST, "--fail-on-cost", "1USD")
    assert result.exit_code == 3 and "idle-gpu" in result.stdout
    assert "exceeds --fail-on-cost 1 USD" in result.stderr
    assert cli("scan", "--region", EAST, "--fail-on-cost", "5").exit_code == 0
    result = cli("scan", "--region", EAST, "--fail-on-cost", "30CNY")
    assert result.exit_code == 2 and "the scan's costs are in USD" in result.stderr
    result = cli("scan", "--region", EAST, "--fail-on-cost", "5 dollars")
    assert result.exit_code == 2 and "--fail-on-cost" in result.stderr
    result = cli("report", "--region", EAST, "--fail-on-cost", "1")
    assert result.exit_code == 3 and "idle-gpu" in result.stdout


def test_a_region_failure_wins_over_fail_on_cost(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime
) -> None:
    fleet.endpoint(
        EAST, "idle-gpu", [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)], changed=now - OLD
    )
    sim.middleware.fault = deny("ListNotebookInstances")
    result = cli("scan", "--region", EAST, "--fail-on-cost", "1")
    assert result.exit_code == 1 and "idle-gpu" in result.stdout
    assert "exceeds --fail-on-cost 1 USD" in result.stderr  # still said


def test_below_min_hourly_cost_is_reported_as_kept(
    cli: Cli, fleet: Fleet, now: datetime, tmp_path: Path
) -> None:
    fleet.endpoint(
        EAST, "idle-cheap", [VariantSpec("AllTraffic", "ml.m5.large", 1)], changed=now - OLD
    )
    fleet.endpoint(
        EAST, "idle-gpu", [VariantSpec("AllTraffic", "ml.g4dn.xlarge", 2)], changed=now - OLD
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text("min_hourly_cost: 0.5\n")
    code, doc = cli.json("scan", "--region", EAST, "--policy", str(policy))
    assert code == 0, doc["errors"]
    cheap, gpu = by_name(doc)["idle-cheap"], by_name(doc)["idle-gpu"]
    assert (cheap["decision"], cheap["rule"], cheap["idle"]) == ("keep", "below-min-cost", True)
    assert "below min_hourly_cost 0.5" in cheap["reason"]
    assert gpu["decision"] == "notify"
    code, doc = cli.json("scan", "--region", EAST, "--policy", str(policy), "--fail-on-cost", "1")
    assert code == 3  # the GPU's 1.47 USD; the cheap one never counts
