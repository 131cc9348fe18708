"""``sagesaver demo``: the whole pipeline against an embedded AWS simulator.

Starts moto's server on a free loopback port, seeds a small but tricky fleet in two regions,
then runs ``scan`` and ``run --apply`` against it (publishing to a simulated SNS topic).
No AWS account and no network are needed.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from sagesaver.aws.prices import LivePrices
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso
from sagesaver.core.policy import (
    EndpointPolicy,
    JobsPolicy,
    NotifyPolicy,
    Policy,
    WarmPoolPolicy,
)
from sagesaver.core.pricing import Pricer
from sagesaver.demo.simulator import Fleet, Simulator, VariantSpec
from sagesaver.pipelines.enforce import enforce_and_notify, step_dict
from sagesaver.pipelines.scan import scan
from sagesaver.render import scan as report

REGIONS = ("us-east-1", "us-west-2")
ENDPOINT_METRICS = "/aws/sagemaker/Endpoints"


def seed_fleet(fleet: Fleet, now: datetime) -> str:
    """Seed the demo fleet; return the ARN of the administrators' SNS topic.

    The traps a naive scanner falls into are all here: traffic only on a second variant,
    published zeros, an endpoint created an hour ago, a protected one, one at 0 instances;
    serverless endpoints with and without provisioned concurrency, asynchronous ones (idle and
    busy), a busy endpoint too large for its peaks, an endpoint hosting a busy and an idle
    inference component, and owner tags for the owners' digests.
    """
    days = timedelta(days=1)
    hour = timedelta(hours=1)
    east, west = REGIONS

    def traffic(region: str, endpoint: str, variant: str, per_hour: list[float]) -> None:
        points = [(now - (i + 1) * hour, v) for i, v in enumerate(per_hour)]
        fleet.invocations(region, endpoint, variant, points)

    fleet.endpoint(
        east,
        "fraud-scoring",
        [VariantSpec("AllTraffic", "ml.m5.xlarge", 2)],
        tags={"team": "risk"},
        changed=now - 30 * days,
    )
    traffic(east, "fraud-scoring", "AllTraffic", [1200, 950, 1100])
    # busy, but two weeks of peaks fit an ml.m5.large: a right-sizing recommendation
    usage = {"EndpointName": "fraud-scoring", "VariantName": "AllTraffic"}
    peaks = [(now - (d + 1) * days, 40.0 + 5 * (d % 7)) for d in range(14)]
    fleet.metric(east, "CPUUtilization", usage, peaks, ENDPOINT_METRICS)
    fleet.metric(east, "MemoryUtilization", usage, [(t, 22.0) for t, _ in peaks], ENDPOINT_METRICS)

    fleet.endpoint(
        east,
        "churn-ab-test",
        [VariantSpec("model-a", "ml.m5.large"), VariantSpec("model-b", "ml.m5.large")],
        tags={"team": "growth"},
        changed=now - 9 * days,
    )
    traffic(east, "churn-ab-test", "model-a", [0, 0, 0, 0])  # published zeros...
    traffic(east, "churn-ab-test", "model-b", [0, 37, 0, 12])  # ...traffic on the 2nd variant

    fleet.endpoint(
        east,
        "recsys-demo-2025",
        [VariantSpec("AllTraffic", "ml.g4dn.xlarge")],
        tags={"team": "growth", "owner": "li.wei"},
        changed=now - 41 * days,
    )
    traffic(east, "recsys-demo-2025", "AllTraffic", [0.0] * 24)  # only published zeros

    fleet.endpoint(
        east,
        "llm-playground",
        [VariantSpec("AllTraffic", "ml.p3.2xlarge")],
        tags={"team": "research"},
        changed=now - 6 * days,
    )  # no metrics at all

    fleet.endpoint(
        east,
        "canary-new-model",
        [VariantSpec("AllTraffic", "ml.m5.large")],
        tags={"team": "risk"},
        changed=now - hour,
    )  # created an hour ago

    fleet.endpoint(
        east,
        "search-ranker-dr",
        [VariantSpec("AllTraffic", "ml.c5.2xlarge", 2)],
        tags={"team": "search", "sagesaver:protect": "true"},
        changed=now - 90 * days,
    )  # disaster-recovery standby, protected

    fleet.endpoint(
        east,
        "batch-features",
        [VariantSpec("AllTraffic", "ml.m5.large", 0)],
        tags={"team": "data"},
        changed=now - 12 * days,
    )  # scaled to 0 instances

    serverless = VariantSpec("AllTraffic", serverless_memory_mb=2048)
    fleet.endpoint(
        east, "faq-bot", [serverless], tags={"team": "support"}, changed=now - 15 * days
    )  # serverless, on demand: costs nothing while idle
    fleet.endpoint(
        east,
        "ocr-warm",
        [VariantSpec("AllTraffic", serverless_memory_mb=4096, provisioned_concurrency=2)],
        tags={"team": "data", "owner": "maria.garcia"},
        changed=now - 8 * days,
    )  # serverless with provisioned concurrency: bills by the hour, idle
    fleet.endpoint(
        east,
        "video-tagging-async",
        [VariantSpec("AllTraffic", "ml.g4dn.xlarge")],
        tags={"team": "research", "owner": "maria.garcia"},
        changed=now - 25 * days,
        asynchronous=True,
    )  # asynchronous, idle: no InvocationsProcessed, no backlog
    fleet.endpoint(
        east,
        "doc-summaries-async",
        [VariantSpec("AllTraffic", "ml.m5.xlarge")],
        tags={"team": "research"},
        changed=now - 25 * days,
        asynchronous=True,
    )  # asynchronous and busy: publishes no Invocations at all, only its own metrics
    fleet.metric(
        east,
        "InvocationsProcessed",
        {"EndpointName": "doc-summaries-async"},
        [(now - 2 * hour, 31.0)],
    )

    fleet.endpoint(
        east,
        "llm-shared-host",
        [VariantSpec("AllTraffic", "ml.g4dn.12xlarge")],
        tags={"team": "research", "owner": "li.wei"},
        changed=now - 20 * days,
    )  # hosts two inference components: one busy, one idle (the host is busy)
    fleet.inference_component(east, "llm-shared-host", "chat-assistant", 2, now - 20 * days)
    fleet.inference_component(east, "llm-shared-host", "legal-summarizer", 2, now - 20 * days)
    fleet.metric(
        east, "Invocations", {"InferenceComponentName": "chat-assistant"}, [(now - hour, 420.0)]
    )

    fleet.endpoint(
        west,
        "sentiment-api",
        [VariantSpec("AllTraffic", "ml.c5.xlarge")],
        tags={"team": "support"},
        changed=now - 20 * days,
    )
    traffic(west, "sentiment-api", "AllTraffic", [15, 22, 8])

    fleet.endpoint(
        west,
        "forgotten-poc",
        [VariantSpec("AllTraffic", "ml.m5.xlarge")],
        tags={"team": "support"},
        changed=now - 60 * days,
    )

    # A tuning job that ended 2 hours ago and keeps its warm pool (2 GPU instances) for 6.
    fleet.training_job(
        east,
        "tune-resnet-42",
        now - 2 * hour,
        "ml.g4dn.xlarge",
        2,
        keep_alive_s=6 * 3600,
        tags={"team": "vision", "owner": "li.wei"},
    )

    fleet.notebook(east, "dev-alice", "ml.t3.medium", changed=now - 3 * days)
    fleet.notebook(
        east,
        "dev-bob",
        "ml.m5.xlarge",
        lifecycle_config="sagesaver-autostop",
        changed=now - 5 * days,
    )
    fleet.notebook(
        east, "research-archive", "ml.p3.2xlarge", status="Stopped", changed=now - 100 * days
    )
    fleet.notebook(west, "dev-carol", "ml.c5.2xlarge", changed=now - 2 * days)
    fleet.notebook(east, "dev-dana", "ml.t3.medium", status="Stopped", changed=now - 7 * days)
    return fleet.topic(east, "sagesaver-admins")


def _next_monday(now: datetime, hour: int, minute: int) -> datetime:
    days_ahead = (7 - now.weekday()) % 7 or 7
    day = (now + timedelta(days=days_ahead)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)


def _escalation(
    aws: Aws, policy: Policy, now: datetime, workdir: Path
) -> tuple[list[dict[str, object]], list[str]]:
    """Part 2: delete the idle endpoints (no grace period, for the demo), release the idle
    warm pool, and restore one endpoint."""
    from sagesaver.ledger import SqliteLedger
    from sagesaver.pipelines.restore import restore_backup

    ledger = SqliteLedger(workdir / "ledger.sqlite")
    strict = policy.model_copy(
        update={
            "endpoints": EndpointPolicy(idle_hours=24, action="delete", grace_hours=0),
            "jobs": JobsPolicy(warm_pools=WarmPoolPolicy(action="release", idle_hours=1)),
        }
    )
    result = scan(aws, REGIONS, strict, now, Pricer(live=LivePrices(aws, None)))
    steps = [step_dict(s) for s in enforce_and_notify(aws, result, strict, now, True, ledger).steps]
    [backup] = ledger.backups("forgotten-poc")
    restore = restore_backup(aws, ledger, backup, True, now)
    restored = restore.steps + [f"error: {e.message}" for e in restore.errors]
    return steps, restored


def _schedules(aws: Aws, now: datetime, workdir: Path) -> list[dict[str, object]]:
    """Part 3: the seed article's weekday schedule, run at 07:05 and 21:05 UTC next Monday."""
    from sagesaver.core.policy import parse_policy
    from sagesaver.ledger import SqliteLedger
    from sagesaver.pipelines.schedules import schedule_run

    policy = parse_policy(
        "schedules:\n  seed-example:\n    start: cron(0 7 ? * MON-FRI *)\n"
        "    stop: cron(0 21 ? * MON-FRI *)\n    name_contains: dev-\n"
    )
    ledger = SqliteLedger(workdir / "ledger.sqlite")
    done: list[dict[str, object]] = []
    for hour in (7, 21):
        moment = _next_monday(now, hour, 5)
        result = schedule_run(aws, REGIONS, policy, moment, True, ledger)
        done += [
            {
                "at": iso(moment),
                "action": a.planned.transition.value,
                "name": a.planned.resource.name,
                "region": a.planned.resource.region,
                "applied": a.applied,
            }
            for a in result.actions
        ]
    return done


def run_demo(output: str = "table") -> int:
    """Run the demo; return the exit code (0 when every call succeeded)."""
    console = report.stdout_console()
    log = Console(stderr=True, highlight=False)
    sim = Simulator()
    try:
        with sim.environment(REGIONS[0]), tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            now = datetime.now(timezone.utc)
            topic = seed_fleet(Fleet(sim), now)
            sim.middleware.counts.clear()
            log.print(
                f"[dim]Simulated AWS at {sim.url}, fleet seeded in {', '.join(REGIONS)}[/dim]"
            )
            policy = Policy(
                regions=list(REGIONS),
                endpoints=EndpointPolicy(idle_hours=24),
                notify=NotifyPolicy(sns_topic_arn=topic, owner_tag="owner"),
            )
            aws = Aws()
            # Prices: the simulator's Price List stand-in answers (example figures, not AWS's).
            result = scan(aws, REGIONS, policy, now, Pricer(live=LivePrices(aws, None)))
            # The same scan -> enforce -> notify pipeline as `run --apply` and the Lambda.
            outcome = enforce_and_notify(aws, result, policy, now, True, None).notified
            if outcome is None:  # enforce_and_notify always notifies
                raise RuntimeError("the run ended without a notification outcome")
            calls = dict(sorted(aws.calls.items()))
            steps, restored = _escalation(Aws(), policy, now, workdir)
            scheduled = _schedules(Aws(), now, workdir)
            if output == "json":
                extra = {
                    "notifications": [
                        {"subject": m.subject, "body": m.body} for m in outcome.messages
                    ],
                    "owner_notifications": [
                        {"owner": d.owner, "subject": m.subject, "body": m.body}
                        for d in outcome.owners
                        for m in d.messages
                    ],
                    "api_calls": calls,
                    "enforcement": steps,
                    "restored": restored,
                    "schedule": scheduled,
                }
                console.print_json(json.dumps(json.loads(report.to_json(result, extra))))
                return 1 if result.errors else 0
            console.print(Rule("1. sagesaver scan (2 regions, simulated)"))
            console.print(
                "[dim]Prices come from the simulator's Price List: example figures, not AWS "
                "prices.[/dim]"
            )
            report.print_table(result, console)
            console.print(Rule(f"2. sagesaver run --apply: digest sent to {topic}"))
            for message in outcome.messages:
                console.print(f"Subject: {message.subject}\n", markup=False)
                console.print(message.body, markup=False, soft_wrap=True)
            for digest in outcome.owners:
                console.print(Rule(f"   and to owner {digest.owner} (message attribute owner)"))
                for message in digest.messages:
                    console.print(f"Subject: {message.subject}\n", markup=False)
                    console.print(message.body, markup=False, soft_wrap=True)
            summary = ", ".join(f"{op} {n}" for op, n in calls.items())
            console.print(f"\nAWS API calls for 1 and 2: {sum(calls.values())} ({summary})")
            console.print(
                Rule(
                    "3. endpoints.action: delete (grace_hours 0 for the demo), "
                    "jobs.warm_pools.action: release"
                )
            )
            for step in steps:
                console.print(
                    f"{step['stage']:>6} {step['name']} ({step['region']}): {step['outcome']}"
                    + (f", backup {step['backup_id']}" if step["backup_id"] else ""),
                    markup=False,
                )
            console.print("sagesaver restore forgotten-poc --apply:", markup=False)
            for line in restored:
                console.print(f"  {line}", markup=False)
            console.print(Rule("4. sagesaver schedule run: cron(0 7 ? * MON-FRI *) / 21:00"))
            for item in scheduled:
                console.print(
                    f"{item['at']}: {item['action']} {item['name']} ({item['region']})",
                    markup=False,
                )
            console.print(Rule())
            console.print(
                "Next: run `sagesaver scan --region us-east-1` with your own AWS credentials; "
                "it only reads."
            )
            return 1 if result.errors else 0
    finally:
        sim.stop()
