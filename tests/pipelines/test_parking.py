"""Development endpoints parked outside working hours, on the simulator: a team in Beijing under
the 07:00-21:00 weekday schedule with ``calendar: CN`` and ``resources: [notebooks, endpoints]``,
replayed on fixed dates of 2026 (an ordinary Tuesday, the eve of Golden Week)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.core.pricing import Pricer, table_from_document
from sagesaver.core.records import Outcome
from sagesaver.core.rules.parking import parked
from sagesaver.core.savings import off_intervals
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, Simulator, VariantSpec
from sagesaver.ledger import SqliteLedger
from sagesaver.pipelines.schedules import ScheduleRunResult, schedule_run

BEIJING = "cn-north-1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = """
regions: [cn-north-1]
schedules:
  office-beijing:
    timezone: Asia/Shanghai
    calendar: CN
    periods:
      - {weekdays: mon-fri, begin: "07:00", end: "21:00"}
    name_contains: dev-
    resources: [notebooks, endpoints]
"""
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
# Test figures (CNY an hour), not AWS prices: dev-alpha's 2 x ml.m5.large + 1 x ml.g4dn.xlarge.
PRICES = {"cn-north-1": {"currency": "CNY", "hosting": {"ml.m5.large": 0.8, "ml.g4dn.xlarge": 5.0}}}
ALPHA_HOURLY = 2 * 0.8 + 5.0
TUESDAY = date(2026, 3, 10)  # an ordinary working day
EVE = date(2026, 9, 30)  # the last working day before Golden Week (1-7 October)


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


def seed(fleet: Fleet, sim: Simulator, day: date) -> None:
    """dev-alpha (two variants, auto scaling on one), dev-busy (invoked at 20:50), dev-kept
    (protected), prod-api (not targeted); all created that morning, Beijing time."""
    with time_machine.travel(at(day, 9), tick=False):
        fleet.endpoint(
            BEIJING,
            "dev-alpha",
            variants=[
                VariantSpec("blue", "ml.m5.large", 2),
                VariantSpec("green", "ml.g4dn.xlarge"),
            ],
            tags={"team": "search"},
        )
        fleet.endpoint(BEIJING, "dev-busy")
        fleet.endpoint(BEIJING, "dev-kept", tags={"sagesaver:protect": "true"})
        fleet.endpoint(BEIJING, "prod-api")
        scaling = sim.client("application-autoscaling", BEIJING)
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId="endpoint/dev-alpha/variant/blue",
            ScalableDimension=DIMENSION,
            MinCapacity=1,
            MaxCapacity=4,
        )
        scaling.put_scaling_policy(
            PolicyName="per-instance",
            ServiceNamespace="sagemaker",
            ResourceId="endpoint/dev-alpha/variant/blue",
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 70.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
            },
        )
    fleet.invocations(BEIJING, "dev-busy", "AllTraffic", [(at(day, 20, 50), 3.0)])


def run(
    policy: Policy, ledger: SqliteLedger | None, moment: datetime, apply: bool = True
) -> ScheduleRunResult:
    with time_machine.travel(moment, tick=False):
        pricer = Pricer(table=table_from_document({"regions": PRICES}))
        return schedule_run(Aws(), [BEIJING], policy, moment, apply, ledger, None, pricer)


def endpoints(sim: Simulator) -> dict[str, str]:
    sm = sim.client("sagemaker", BEIJING)
    return {e["EndpointName"]: e["EndpointStatus"] for e in sm.list_endpoints()["Endpoints"]}


def rows(result: ScheduleRunResult) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.name, r.action): r.__dict__ for r in result.parking.rows}


def shape(sim: Simulator, name: str) -> dict[str, Any]:
    """What a restore must bring back: configuration, models, variants' types and counts,
    auto scaling."""
    sm = sim.client("sagemaker", BEIJING)
    endpoint = sm.describe_endpoint(EndpointName=name)
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    scaling = sim.client("application-autoscaling", BEIJING)
    targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return {
        "config": endpoint["EndpointConfigName"],
        "variants": sorted(
            (v["VariantName"], v["ModelName"], v["InstanceType"])
            for v in config["ProductionVariants"]
        ),
        "counts": sorted(
            (v["VariantName"], v.get("CurrentInstanceCount"))
            for v in endpoint["ProductionVariants"]
        ),
        "targets": sorted(
            (t["ResourceId"], t["MinCapacity"], t["MaxCapacity"])
            for t in targets
            if name in t["ResourceId"]
        ),
        "policies": sorted(p["PolicyName"] for p in policies if name in p["ResourceId"]),
    }


@pytest.fixture
def team(fleet: Fleet, sim: Simulator) -> Iterator[Simulator]:
    seed(fleet, sim, TUESDAY)
    yield sim


def test_parked_at_the_stop_and_back_before_the_start(
    team: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    before = shape(team, "dev-alpha")
    parking = run(policy, ledger, at(TUESDAY, 21))
    assert not parking.errors, parking.errors
    done = rows(parking)
    assert done[("dev-alpha", "park")]["applied"], done
    assert endpoints(team) == {
        "dev-busy": "InService",
        "dev-kept": "InService",
        "prod-api": "InService",
    }
    # invoked at 20:50, within the 30 quiet minutes: it stays up and the run says why
    busy = done[("dev-busy", "park")]
    assert not busy["applied"] and "3 invocations in the last 30 minutes" in busy["outcome"]
    assert "protected" in done[("dev-kept", "skip")]["reason"]
    assert not any(name == "prod-api" for name, _ in done)
    entry = next(e for e in ledger.entries() if e.action == "park")
    assert entry.rule == "schedule:office-beijing" and entry.status is Outcome.DONE
    assert entry.backup_ref and entry.hourly_cost == pytest.approx(ALPHA_HOURLY)

    # through the night nothing comes back; 20 minutes before 07:00 it does
    quiet_night = run(policy, ledger, at(TUESDAY + timedelta(days=1), 3))
    assert not quiet_night.parking.rows or all(r.action == "skip" for r in quiet_night.parking.rows)
    assert "dev-alpha" not in endpoints(team)
    morning = run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    assert not morning.errors, morning.errors
    back = rows(morning)[("dev-alpha", "unpark")]
    assert back["applied"] and "InService" in back["outcome"], back
    assert endpoints(team)["dev-alpha"] == "InService"
    assert shape(team, "dev-alpha") == before
    assert parked(ledger.entries()) == {}

    # savings: 9 h 40 min at the price recorded with the park, from confirmed records only
    (interval,) = [
        i
        for i in off_intervals(ledger.entries(), at(TUESDAY + timedelta(days=2), 0))
        if i.entry.resource == "dev-alpha"
    ]
    assert interval.hours == pytest.approx(9 + 40 / 60)
    assert interval.saved == pytest.approx((9 + 40 / 60) * ALPHA_HOURLY)


def test_stays_parked_over_a_holiday(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    seed(fleet, sim, EVE)
    assert rows(run(policy, ledger, at(EVE, 21)))[("dev-alpha", "park")]["applied"]
    for day in (date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 5), date(2026, 10, 7)):
        holiday = run(policy, ledger, at(day, 6, 45))
        assert ("dev-alpha", "unpark") not in rows(holiday), day
        assert "dev-alpha" not in endpoints(sim)
    workday = run(policy, ledger, at(date(2026, 10, 8), 6, 45))
    assert rows(workday)[("dev-alpha", "unpark")]["applied"]
    assert endpoints(sim)["dev-alpha"] == "InService"


def test_comes_back_on_a_make_up_saturday_and_not_on_an_ordinary_one(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    """China's 调休: Saturday 10 October 2026 is a workday. Parked on Friday evening, the
    endpoint is back for that Saturday and parked again that evening; over the next, ordinary,
    Saturday and Sunday it stays parked until Monday."""
    friday = date(2026, 10, 9)
    seed(fleet, sim, friday)
    assert rows(run(policy, ledger, at(friday, 21)))[("dev-alpha", "park")]["applied"]
    saturday = date(2026, 10, 10)
    assert rows(run(policy, ledger, at(saturday, 6, 40)))[("dev-alpha", "unpark")]["applied"]
    assert endpoints(sim)["dev-alpha"] == "InService"
    assert rows(run(policy, ledger, at(saturday, 21)))[("dev-alpha", "park")]["applied"]
    sunday = date(2026, 10, 11)
    assert ("dev-alpha", "unpark") not in rows(run(policy, ledger, at(sunday, 6, 45)))
    monday = date(2026, 10, 12)
    assert rows(run(policy, ledger, at(monday, 6, 40)))[("dev-alpha", "unpark")]["applied"]
    assert endpoints(sim)["dev-alpha"] == "InService"
    # the next week's Saturday is an ordinary one: parked on Friday, back on Monday
    assert rows(run(policy, ledger, at(date(2026, 10, 16), 21)))[("dev-alpha", "park")]["applied"]
    for day in (date(2026, 10, 17), date(2026, 10, 18)):
        assert ("dev-alpha", "unpark") not in rows(run(policy, ledger, at(day, 6, 45))), day
    assert "dev-alpha" not in endpoints(sim)
    back = run(policy, ledger, at(date(2026, 10, 19), 6, 40))
    assert rows(back)[("dev-alpha", "unpark")]["applied"]


def test_a_name_reused_in_the_night_is_not_overwritten(
    team: Simulator, fleet: Fleet, policy: Policy, ledger: SqliteLedger
) -> None:
    run(policy, ledger, at(TUESDAY, 21))
    with time_machine.travel(at(TUESDAY, 23), tick=False):
        fleet.endpoint(BEIJING, "dev-alpha", variants=[VariantSpec("other", "ml.m5.large")])
    intruder = team.client("sagemaker", BEIJING).describe_endpoint(EndpointName="dev-alpha")
    morning = run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    failed = rows(morning)[("dev-alpha", "unpark")]
    assert not failed["applied"] and "an endpoint named dev-alpha exists" in failed["error"]
    assert any(e.resource == "dev-alpha" and e.operation == "unpark" for e in morning.errors)
    now = team.client("sagemaker", BEIJING).describe_endpoint(EndpointName="dev-alpha")
    assert now["EndpointArn"] == intruder["EndpointArn"]
    assert now["CreationTime"] == intruder["CreationTime"]
    assert now["EndpointConfigName"] == intruder["EndpointConfigName"]
    unpark = [e for e in ledger.entries() if e.action == "unpark"]
    assert [e.status for e in unpark] == [Outcome.FAILED]


def test_the_dry_run_changes_and_records_nothing(
    team: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    plan = run(policy, ledger, at(TUESDAY, 21), apply=False)
    assert rows(plan)[("dev-alpha", "park")]["applied"] is False
    assert "would be backed up and deleted" in rows(plan)[("dev-alpha", "park")]["outcome"]
    assert set(endpoints(team)) == {"dev-alpha", "dev-busy", "dev-kept", "prod-api"}
    assert ledger.entries() == [] and ledger.backups() == [] and ledger.open_leases() == []


def test_changed_since_its_last_unpark_is_not_parked(
    team: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    run(policy, ledger, at(TUESDAY, 21))
    run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    sm = team.client("sagemaker", BEIJING)
    with time_machine.travel(at(TUESDAY + timedelta(days=1), 12), tick=False):
        sm.create_endpoint_config(
            EndpointConfigName="dev-alpha-v2",
            ProductionVariants=[
                {
                    "VariantName": "blue",
                    "ModelName": "demo-model",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        from moto.sagemaker.models import sagemaker_backends

        sagemaker_backends[ACCOUNT_ID][BEIJING].endpoints[
            "dev-alpha"
        ].endpoint_config_name = "dev-alpha-v2"
    evening = run(policy, ledger, at(TUESDAY + timedelta(days=1), 21))
    kept = rows(evening)[("dev-alpha", "park")]
    assert not kept["applied"] and "changed since its last unpark" in kept["outcome"]
    assert "dev-alpha" in endpoints(team)


def test_an_unpark_cut_short_is_reported_and_resumed_by_the_next_run(
    team: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    from sagesaver.demo.simulator import Fault

    def refuse(op: str, region: str, environ: Any) -> Fault | None:
        if op == "PutScalingPolicy":
            return Fault(400, "AccessDeniedException", f"{op} is not allowed")
        return None

    before = shape(team, "dev-alpha")
    run(policy, ledger, at(TUESDAY, 21))
    team.middleware.fault = refuse
    first = run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    cut = rows(first)[("dev-alpha", "unpark")]
    assert not cut["applied"] and "PutScalingPolicy is not allowed" in cut["error"], cut
    assert any(e.resource == "dev-alpha" and e.operation == "unpark" for e in first.errors)
    assert set(parked(ledger.entries())) == {(ACCOUNT_ID, BEIJING, "dev-alpha")}
    team.middleware.fault = None
    second = run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 50))
    assert not second.errors, second.errors
    assert rows(second)[("dev-alpha", "unpark")]["applied"]
    assert shape(team, "dev-alpha") == before
    assert parked(ledger.entries()) == {}
    # one endpoint created: the second run resumed the first one's restore
    creations = [e for e in ledger.entries() if e.action == "restore"]
    assert len(creations) == 1


def test_an_endpoint_still_creating_is_coming_back_not_a_failure(
    team: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    """AWS takes minutes to make a restored endpoint InService and refuses its auto scaling
    until then; the Lambda tick waits one minute at most. That is no failure: the row says
    it is coming back, and the next run finishes the restore."""
    from moto.sagemaker.models import sagemaker_backends

    from sagesaver.demo.simulator import Fault
    from sagesaver.pipelines.schedules import schedule_run

    def creating(op: str, region: str, environ: Any) -> Fault | None:
        endpoint = sagemaker_backends[ACCOUNT_ID][BEIJING].endpoints.get("dev-alpha")
        if endpoint is not None:
            endpoint.endpoint_status = "Creating"
        if op == "RegisterScalableTarget":
            return Fault(400, "ValidationException", "the endpoint is not InService")
        return None

    before = shape(team, "dev-alpha")
    run(policy, ledger, at(TUESDAY, 21))
    team.middleware.fault = creating
    morning = at(TUESDAY + timedelta(days=1), 6, 40)
    with time_machine.travel(morning, tick=False):
        pricer = Pricer(table=table_from_document({"regions": PRICES}))
        first = schedule_run(Aws(), [BEIJING], policy, morning, True, ledger, None, pricer, 0.01)
    row = rows(first)[("dev-alpha", "unpark")]
    assert not row["applied"] and row["error"] is None, row
    assert row["outcome"].startswith("coming back (Creating): the next run finishes"), row
    assert first.errors == []
    team.middleware.fault = None
    sagemaker_backends[ACCOUNT_ID][BEIJING].endpoints["dev-alpha"].endpoint_status = "InService"
    second = run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 50))
    assert not second.errors, second.errors
    assert rows(second)[("dev-alpha", "unpark")]["applied"]
    assert shape(team, "dev-alpha") == before
    assert len([e for e in ledger.entries() if e.action == "restore"]) == 1


def test_a_host_of_inference_components_is_never_parked(
    team: Simulator, fleet: Fleet, policy: Policy, ledger: SqliteLedger
) -> None:
    """A backup holds the endpoint, its configuration and models, not its inference
    components: parked, they would not come back. So the host stays up and the run says why;
    where the components cannot be listed, it stays up too."""
    from sagesaver.demo.simulator import Fault

    fleet.inference_component(BEIJING, "dev-alpha", "dev-alpha-llm")
    hosting = run(policy, ledger, at(TUESDAY, 21))
    kept = rows(hosting)[("dev-alpha", "park")]
    assert not kept["applied"], kept
    assert "it hosts inference components (dev-alpha-llm)" in kept["outcome"], kept
    assert endpoints(team)["dev-alpha"] == "InService"
    assert [e for e in ledger.entries() if e.action == "park"] == []

    def denied(op: str, region: str, environ: Any) -> Fault | None:
        if op == "ListInferenceComponents":
            return Fault(400, "AccessDeniedException", f"{op} is not allowed")
        return None

    team.middleware.fault = denied
    unreadable = run(policy, ledger, at(TUESDAY + timedelta(days=1), 21))
    team.middleware.fault = None
    kept = rows(unreadable)[("dev-alpha", "park")]
    assert not kept["applied"], kept
    assert "could not be listed (AccessDeniedException)" in kept["outcome"], kept
    assert endpoints(team)["dev-alpha"] == "InService"


def test_the_digest_says_what_was_parked_kept_up_and_not_back(
    team: Simulator, fleet: Fleet, ledger: SqliteLedger
) -> None:
    """A parking run that acts tells people where the idle digest goes: parked, kept up and
    why, back, and NOT back with the error; a run with nothing to tell sends nothing."""
    topic = fleet.topic(BEIJING, "admins")
    told = parse_policy(POLICY + f"notify: {{sns_topic_arn: '{topic}'}}\n")
    run(told, ledger, at(TUESDAY, 21))
    [evening] = fleet.published(topic)
    assert evening["Subject"] == "SageSaver: endpoints parked by schedules: 1 parked, 1 kept up"
    body = evening["Message"]
    assert "- dev-alpha (cn-north-1, schedule office-beijing)" in body
    assert "- dev-busy (cn-north-1, schedule office-beijing): " in body
    assert "3 invocations in the last 30 minutes" in body
    assert evening["MessageAttributes"]["digest"] == "parking"
    run(told, ledger, at(TUESDAY, 23))  # nothing due at 23:00: nothing said
    assert len(fleet.published(topic)) == 1
    with time_machine.travel(at(TUESDAY, 23, 30), tick=False):
        fleet.endpoint(BEIJING, "dev-alpha", variants=[VariantSpec("other", "ml.m5.large")])
    run(told, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    morning = fleet.published(topic)[-1]
    assert morning["Subject"] == "SageSaver: endpoints parked by schedules: 1 NOT back"
    assert (
        "NOT back" in morning["Message"]
        and "an endpoint named dev-alpha exists" in (morning["Message"])
    )


def test_an_asynchronous_endpoint_with_a_backlog_is_not_parked(
    fleet: Fleet, sim: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    """An asynchronous endpoint publishes no Invocations: the park's quiet check reads its
    own metrics, so a queue that waits keeps it up; a quiet one is parked and comes back with
    its asynchronous configuration."""
    with time_machine.travel(at(TUESDAY, 9), tick=False):
        fleet.endpoint(BEIJING, "dev-queue", asynchronous=True)
        fleet.endpoint(BEIJING, "dev-batch", asynchronous=True)
    fleet.metric(
        BEIJING, "ApproximateBacklogSize", {"EndpointName": "dev-queue"}, [(at(TUESDAY, 20, 45), 7)]
    )
    config = sim.client("sagemaker", BEIJING).describe_endpoint(EndpointName="dev-batch")
    parking = run(policy, ledger, at(TUESDAY, 21))
    done = rows(parking)
    assert not done[("dev-queue", "park")]["applied"], done[("dev-queue", "park")]
    assert "in use" in done[("dev-queue", "park")]["outcome"]
    assert done[("dev-batch", "park")]["applied"], done[("dev-batch", "park")]
    assert endpoints(sim) == {"dev-queue": "InService"}
    run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    back = sim.client("sagemaker", BEIJING).describe_endpoint(EndpointName="dev-batch")
    assert back["EndpointConfigName"] == config["EndpointConfigName"]
    described = sim.client("sagemaker", BEIJING).describe_endpoint_config(
        EndpointConfigName=back["EndpointConfigName"]
    )
    assert "AsyncInferenceConfig" in described


def lose_the_delete_answer(team: Simulator) -> None:
    """DeleteEndpoint deletes dev-alpha but its answer is lost, and the endpoint cannot be
    read after it."""
    from moto.sagemaker.models import sagemaker_backends

    from sagesaver.demo.simulator import Fault

    sent: list[str] = []

    def lost(op: str, region: str, environ: Any) -> Fault | None:
        if op == "DeleteEndpoint":
            sagemaker_backends[ACCOUNT_ID][BEIJING].endpoints.pop("dev-alpha", None)
            sent.append(op)
            return Fault(500, "InternalFailure", "the answer was lost")
        if op == "DescribeEndpoint" and sent:
            return Fault(500, "InternalFailure", "unreachable")
        return None

    team.middleware.fault = lost


def test_a_park_whose_delete_was_not_confirmed_is_confirmed_by_a_later_run(
    team: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    """The park is unconfirmed (counts nothing); a run after its lease expired finds it gone
    and records the park, and the endpoint comes back in the morning."""
    lose_the_delete_answer(team)
    first = run(policy, ledger, at(TUESDAY, 21))
    team.middleware.fault = None
    unsure = rows(first)[("dev-alpha", "park")]
    assert not unsure["applied"] and "not confirmed" in unsure["outcome"], unsure
    assert parked(ledger.entries()) == {}  # nothing counted for an unconfirmed park
    assert off_intervals(ledger.entries(), at(TUESDAY, 22)) == []
    later = run(policy, ledger, at(TUESDAY, 21, 20))
    assert not later.errors, later.errors
    (confirmed,) = [e for e in ledger.entries() if e.action == "park"]
    assert confirmed.status is Outcome.CONFIRMED and confirmed.rule == "schedule:office-beijing"
    assert set(parked(ledger.entries())) == {(ACCOUNT_ID, BEIJING, "dev-alpha")}
    morning = run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    assert rows(morning)[("dev-alpha", "unpark")]["applied"]
    assert endpoints(team)["dev-alpha"] == "InService"


def test_a_park_left_unconfirmed_and_resolved_by_an_idle_scan_run_stays_a_park(
    team: Simulator, policy: Policy, ledger: SqliteLedger
) -> None:
    """The idle-endpoint run (another function, the same ledger) may meet the expired park
    lease first: it records what the lease was, a park of its schedule, never a deletion,
    so the endpoint still comes back in the morning."""
    from sagesaver.core.model import Kind
    from sagesaver.pipelines.acts import RunContext
    from sagesaver.pipelines.recovery import recover, resolve_endpoint

    lose_the_delete_answer(team)
    run(policy, ledger, at(TUESDAY, 21))
    team.middleware.fault = None
    later = at(TUESDAY, 21, 20)
    with time_machine.travel(later, tick=False):
        ctx = RunContext("idle-scan-run", later, policy, ledger, lambda: later)
        entries, errors = recover(
            lambda account: Aws(), ledger, [BEIJING], ctx, {Kind.ENDPOINT: resolve_endpoint}
        )
    assert errors == []
    [entry] = entries
    assert (entry.action, entry.rule, entry.status) == (
        "park",
        "schedule:office-beijing",
        Outcome.CONFIRMED,
    )
    assert [e for e in ledger.entries() if e.action == "delete"] == []
    assert set(parked(ledger.entries())) == {(ACCOUNT_ID, BEIJING, "dev-alpha")}
    morning = run(policy, ledger, at(TUESDAY + timedelta(days=1), 6, 40))
    assert rows(morning)[("dev-alpha", "unpark")]["applied"]
    assert endpoints(team)["dev-alpha"] == "InService"
