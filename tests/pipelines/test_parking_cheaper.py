"""Cheaper parks, on the simulator: an asynchronous endpoint's instances and a host's inference
component copies taken to 0 at the stop and put back before the start (the endpoint kept);
where AWS would refuse, or there is no scalable target, the endpoint is backed up and deleted
as before, or kept up, and the run says why. Beijing's 07:00-21:00 weekday schedule, on an
ordinary Tuesday of 2026."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from botocore.exceptions import ClientError

from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.core.pricing import Pricer, table_from_document
from sagesaver.core.records import Outcome
from sagesaver.core.rules.parking import parked
from sagesaver.core.savings import off_intervals
from sagesaver.demo.scaling import SCALING
from sagesaver.demo.simulator import ACCOUNT_ID, Fault, Fleet, Simulator, VariantSpec
from sagesaver.ledger import SqliteLedger
from sagesaver.pipelines import parking_scale
from sagesaver.pipelines.schedules import ScheduleRunResult, schedule_run

BEIJING = "cn-north-1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = """
regions: [cn-north-1]
schedules:
  office-beijing:
    timezone: Asia/Shanghai
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
    resources: [endpoints]
"""
VARIANTS = "sagemaker:variant:DesiredInstanceCount"
COPIES = "sagemaker:inference-component:DesiredCopyCount"
# Test figures (CNY an hour), not AWS prices.
PRICES = {"cn-north-1": {"currency": "CNY", "hosting": {"ml.m5.large": 0.8, "ml.g4dn.xlarge": 5.0}}}
TUESDAY = date(2026, 3, 10)
WEDNESDAY = TUESDAY + timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A Beijing wall-clock time as a UTC instant."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).astimezone(
        timezone.utc
    )


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY)


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "ledger.db")


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unpark polls every few milliseconds (AWS: every 15 s)."""
    monkeypatch.setattr(parking_scale, "POLL_SECONDS", 0.01)


@pytest.fixture
def updating(sim: Simulator) -> Iterator[None]:
    """Endpoints and components read ``Updating`` twice after an update, as AWS's take a
    while."""
    SCALING.updating_reads = 2
    yield
    SCALING.updating_reads = 0


def run(policy: Policy, ledger: SqliteLedger, moment: datetime) -> ScheduleRunResult:
    with time_machine.travel(moment, tick=False):
        pricer = Pricer(table=table_from_document({"regions": PRICES}))
        return schedule_run(Aws(), [BEIJING], policy, moment, True, ledger, None, pricer)


def rows(result: ScheduleRunResult) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.name, r.action): r.__dict__ for r in result.parking.rows}


def register(sim: Simulator, resource: str, dimension: str, low: int, high: int) -> None:
    sim.client("application-autoscaling", BEIJING).register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource,
        ScalableDimension=dimension,
        MinCapacity=low,
        MaxCapacity=high,
    )


def target(sim: Simulator, resource: str, dimension: str) -> tuple[int, int, bool]:
    """(min, max, scale-out suspended) of one scalable target."""
    (found,) = sim.client("application-autoscaling", BEIJING).describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource], ScalableDimension=dimension
    )["ScalableTargets"]
    suspended = bool((found.get("SuspendedState") or {}).get("DynamicScalingOutSuspended"))
    return found["MinCapacity"], found["MaxCapacity"], suspended


def instances(sim: Simulator, name: str) -> dict[str, int]:
    described = sim.client("sagemaker", BEIJING).describe_endpoint(EndpointName=name)
    return {v["VariantName"]: v["CurrentInstanceCount"] for v in described["ProductionVariants"]}


def copies(sim: Simulator, name: str) -> tuple[str, int]:
    described = sim.client("sagemaker", BEIJING).describe_inference_component(
        InferenceComponentName=name
    )
    return described["InferenceComponentStatus"], described["RuntimeConfig"]["CurrentCopyCount"]


def names(sim: Simulator) -> set[str]:
    listed = sim.client("sagemaker", BEIJING).list_endpoints()["Endpoints"]
    return {e["EndpointName"] for e in listed}


def queue(fleet: Fleet, sim: Simulator, name: str, count: int = 2) -> None:
    """An asynchronous endpoint of ``count`` ml.m5.large, auto scaled from 1 to 4."""
    with time_machine.travel(at(TUESDAY, 9), tick=False):
        fleet.endpoint(
            BEIJING,
            name,
            variants=[VariantSpec("AllTraffic", "ml.m5.large", count)],
            asynchronous=True,
        )
        register(sim, f"endpoint/{name}/variant/AllTraffic", VARIANTS, 1, 4)


def host(fleet: Fleet, sim: Simulator, name: str, minimum: int) -> None:
    """An endpoint of two ml.g4dn.xlarge under managed instance scaling (``minimum`` to 2)
    hosting two inference components: dev-llm-a (2 copies, auto scaled 1 to 3), dev-llm-b
    (1 copy)."""
    sagemaker = sim.client("sagemaker", BEIJING)
    with time_machine.travel(at(TUESDAY, 9), tick=False):
        sagemaker.create_model(
            ModelName="host-model",
            ExecutionRoleArn=f"arn:aws-cn:iam::{ACCOUNT_ID}:role/sagemaker",
            PrimaryContainer={"Image": "image"},
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "host-model",
                    "InstanceType": "ml.g4dn.xlarge",
                    "InitialInstanceCount": 2,
                    "ManagedInstanceScaling": {
                        "Status": "ENABLED",
                        "MinInstanceCount": minimum,
                        "MaxInstanceCount": 2,
                    },
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
        fleet.inference_component(BEIJING, name, f"{name}-a", copies=2)
        fleet.inference_component(BEIJING, name, f"{name}-b", copies=1)
        register(sim, f"inference-component/{name}-a", COPIES, 1, 3)


def test_an_asynchronous_endpoint_goes_to_zero_instances_and_comes_back_as_it_was(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger, updating: None
) -> None:
    queue(fleet, sim, "dev-queue")
    resource = "endpoint/dev-queue/variant/AllTraffic"
    config = sim.client("sagemaker", BEIJING).describe_endpoint(EndpointName="dev-queue")
    evening = run(policy, ledger, at(TUESDAY, 21))
    assert not evening.errors, evening.errors
    row = rows(evening)[("dev-queue", "park")]
    assert row["applied"] and "instances taken to 0 (were AllTraffic 2)" in row["outcome"], row
    assert "dev-queue" in names(sim)  # kept: no backup, no deletion
    assert instances(sim, "dev-queue") == {"AllTraffic": 0}
    assert target(sim, resource, VARIANTS) == (0, 4, True)
    (entry,) = [e for e in ledger.entries() if e.action == "park"]
    assert entry.status is Outcome.DONE and entry.hourly_cost == pytest.approx(1.6)
    assert "instances taken to 0" in entry.outcome
    (snapshot,) = [b for b in ledger.backups() if b.id == entry.backup_ref]
    assert snapshot.name == "dev-queue:scaled"
    assert snapshot.document["scaled_park"]["variants"] == {"AllTraffic": 2}
    assert ledger.open_leases() == []

    morning = run(policy, ledger, at(WEDNESDAY, 6, 40))
    assert not morning.errors, morning.errors
    back = rows(morning)[("dev-queue", "unpark")]
    assert back["applied"] and back["outcome"].startswith("back (InService)"), back
    assert instances(sim, "dev-queue") == {"AllTraffic": 2}
    assert target(sim, resource, VARIANTS) == (1, 4, False)
    now = sim.client("sagemaker", BEIJING).describe_endpoint(EndpointName="dev-queue")
    assert now["EndpointStatus"] == "InService"
    assert (now["EndpointArn"], now["EndpointConfigName"]) == (
        config["EndpointArn"],
        config["EndpointConfigName"],
    )
    described = sim.client("sagemaker", BEIJING).describe_endpoint_config(
        EndpointConfigName=now["EndpointConfigName"]
    )
    assert "AsyncInferenceConfig" in described
    assert parked(ledger.entries()) == {}
    # nothing restored: the endpoint was never deleted
    assert [e for e in ledger.entries() if e.action == "restore"] == []
    # instances at 0 bill nothing: 9 h 40 min at its price
    (interval,) = off_intervals(ledger.entries(), at(WEDNESDAY, 12))
    assert interval.hours == pytest.approx(9 + 40 / 60)
    assert interval.saved == pytest.approx((9 + 40 / 60) * 1.6)


def test_the_simulator_refuses_zero_instances_where_aws_does_and_shows_the_update(
    fleet: Fleet, sim: Simulator, updating: None
) -> None:
    """Only an asynchronous endpoint (or a host of inference components) may run 0 instances;
    an accepted update reads Updating, then InService with its count."""
    queue(fleet, sim, "dev-queue")
    fleet.endpoint(BEIJING, "dev-sync")
    sagemaker = sim.client("sagemaker", BEIJING)
    with pytest.raises(ClientError, match="cannot run 0 instances"):
        sagemaker.update_endpoint_weights_and_capacities(
            EndpointName="dev-sync",
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}],
        )
    with pytest.raises(ClientError, match="MinCapacity 0 is not allowed"):
        register(sim, "endpoint/dev-sync/variant/AllTraffic", VARIANTS, 0, 2)
    assert instances(sim, "dev-sync") == {"AllTraffic": 1}
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName="dev-queue",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}],
    )
    states = [
        sagemaker.describe_endpoint(EndpointName="dev-queue")["EndpointStatus"] for _ in range(3)
    ]
    assert states == ["Updating", "Updating", "InService"]
    assert instances(sim, "dev-queue") == {"AllTraffic": 0}


def test_without_a_scalable_target_or_when_aws_refuses_it_is_backed_up_and_deleted(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    with time_machine.travel(at(TUESDAY, 9), tick=False):
        fleet.endpoint(BEIJING, "dev-plain-queue", asynchronous=True)
    queue(fleet, sim, "dev-refused")

    def refuse(op: str, region: str, environ: Any) -> Fault | None:
        if op == "UpdateEndpointWeightsAndCapacities":
            return Fault(400, "ValidationException", "not now")
        return None

    sim.middleware.fault = refuse
    evening = run(policy, ledger, at(TUESDAY, 21))
    sim.middleware.fault = None
    done = rows(evening)
    plain = done[("dev-plain-queue", "park")]
    assert plain["applied"] and "has no scalable target" in plain["outcome"], plain
    refused = done[("dev-refused", "park")]
    assert refused["applied"], refused
    assert (
        "its instances could not go to 0: AWS refused it (ValidationException"
        in (refused["outcome"])
    )
    assert names(sim) == set()  # both backed up and deleted
    backups = {b.name for b in ledger.backups()}
    assert backups == {"dev-plain-queue", "dev-refused"}  # no snapshot left behind
    morning = run(policy, ledger, at(WEDNESDAY, 6, 40))
    assert not morning.errors, morning.errors
    assert names(sim) == {"dev-plain-queue", "dev-refused"}
    # the refused park was undone before the backup: it comes back with its own bounds
    assert target(sim, "endpoint/dev-refused/variant/AllTraffic", VARIANTS) == (1, 4, False)


def test_a_busy_or_protected_endpoint_is_never_touched(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    queue(fleet, sim, "dev-busy")
    queue(fleet, sim, "dev-kept")
    sagemaker = sim.client("sagemaker", BEIJING)
    arn = sagemaker.describe_endpoint(EndpointName="dev-kept")["EndpointArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "sagesaver:protect", "Value": "true"}])
    fleet.metric(
        BEIJING, "ApproximateBacklogSize", {"EndpointName": "dev-busy"}, [(at(TUESDAY, 20, 45), 3)]
    )
    evening = run(policy, ledger, at(TUESDAY, 21))
    done = rows(evening)
    assert not done[("dev-busy", "park")]["applied"]
    assert "in use" in done[("dev-busy", "park")]["outcome"]
    assert "protected" in done[("dev-kept", "skip")]["reason"]
    for name in ("dev-busy", "dev-kept"):
        assert instances(sim, name) == {"AllTraffic": 2}
        assert target(sim, f"endpoint/{name}/variant/AllTraffic", VARIANTS) == (1, 4, False)
    assert ledger.entries() == [] and ledger.backups() == [] and ledger.open_leases() == []


def test_a_host_whose_instances_may_go_to_zero_parks_by_its_copies(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger, updating: None
) -> None:
    host(fleet, sim, "dev-llm", minimum=0)
    evening = run(policy, ledger, at(TUESDAY, 21))
    assert not evening.errors, evening.errors
    row = rows(evening)[("dev-llm", "park")]
    assert row["applied"], row
    assert "copies taken to 0 (were dev-llm-a 2, dev-llm-b 1)" in row["outcome"]
    assert copies(sim, "dev-llm-a")[1] == 0 or copies(sim, "dev-llm-a")[0] == "Updating"
    assert target(sim, "inference-component/dev-llm-a", COPIES) == (0, 3, True)
    assert "dev-llm" in names(sim)
    (entry,) = [e for e in ledger.entries() if e.action == "park"]
    assert entry.hourly_cost == pytest.approx(2 * 5.0)

    morning = run(policy, ledger, at(WEDNESDAY, 6, 40))
    assert not morning.errors, morning.errors
    assert rows(morning)[("dev-llm", "unpark")]["applied"]
    assert copies(sim, "dev-llm-a") == ("InService", 2)
    assert copies(sim, "dev-llm-b") == ("InService", 1)
    assert target(sim, "inference-component/dev-llm-a", COPIES) == (1, 3, False)
    (interval,) = off_intervals(ledger.entries(), at(WEDNESDAY, 12))
    assert interval.saved == pytest.approx((9 + 40 / 60) * 10.0)


def test_a_host_that_keeps_instances_stays_up_saves_nothing_and_does_not_stop_the_others(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    """Copies at 0 on instances that MinInstanceCount keeps would save nothing: kept up, said
    why. A host AWS refuses to change is put back and reported; the queue is parked anyway."""
    host(fleet, sim, "dev-llm", minimum=1)
    queue(fleet, sim, "dev-queue")
    evening = run(policy, ledger, at(TUESDAY, 21))
    kept = rows(evening)[("dev-llm", "park")]
    assert not kept["applied"] and "keeps MinInstanceCount 1" in kept["outcome"], kept
    assert "saving nothing" in kept["outcome"]
    assert copies(sim, "dev-llm-a") == ("InService", 2)
    assert rows(evening)[("dev-queue", "park")]["applied"]
    assert {i.entry.resource for i in off_intervals(ledger.entries(), at(WEDNESDAY, 6))} == {
        "dev-queue"
    }


def test_a_refused_copy_change_is_undone_reported_and_the_others_still_park(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    host(fleet, sim, "dev-llm", minimum=0)
    queue(fleet, sim, "dev-queue")

    def denied(op: str, region: str, environ: Any) -> Fault | None:
        if op == "UpdateInferenceComponentRuntimeConfig":
            return Fault(400, "AccessDeniedException", f"{op} is not allowed")
        return None

    sim.middleware.fault = denied
    evening = run(policy, ledger, at(TUESDAY, 21))
    sim.middleware.fault = None
    failed = rows(evening)[("dev-llm", "park")]
    assert not failed["applied"] and "AccessDeniedException" in failed["outcome"], failed
    assert any(e.resource == "dev-llm" for e in evening.errors)
    assert target(sim, "inference-component/dev-llm-a", COPIES) == (1, 3, False)  # put back
    assert copies(sim, "dev-llm-a") == ("InService", 2)
    assert rows(evening)[("dev-queue", "park")]["applied"]
    assert instances(sim, "dev-queue") == {"AllTraffic": 0}
    assert {e.resource for e in ledger.entries() if e.action == "park"} == {"dev-queue"}
    assert {b.name for b in ledger.backups()} == {"dev-queue:scaled"}


def test_an_endpoint_protected_while_parked_is_left_at_zero_and_the_row_says_why(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    queue(fleet, sim, "dev-queue")
    run(policy, ledger, at(TUESDAY, 21))
    assert instances(sim, "dev-queue") == {"AllTraffic": 0}
    arn = sim.client("sagemaker", BEIJING).describe_endpoint(EndpointName="dev-queue")[
        "EndpointArn"
    ]
    sim.client("sagemaker", BEIJING).add_tags(
        ResourceArn=arn, Tags=[{"Key": "sagesaver:protect", "Value": "true"}]
    )
    sim.middleware.counts.clear()

    morning = run(policy, ledger, at(WEDNESDAY, 6, 40))

    back = rows(morning)[("dev-queue", "unpark")]
    assert not back["applied"]
    assert "protected while it was parked" in back["outcome"], back
    assert "AllTraffic 2" in back["outcome"]  # what it had, to put back by hand
    assert instances(sim, "dev-queue") == {"AllTraffic": 0}
    touched = {"UpdateEndpointWeightsAndCapacities", "RegisterScalableTarget"}
    assert not touched & set(sim.middleware.counts)
    # still parked in the ledger: the next run, once the tag is gone, brings it back
    assert {name for _, _, name in parked(ledger.entries())} == {"dev-queue"}
