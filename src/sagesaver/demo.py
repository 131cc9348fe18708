"""``sagesaver demo``: the whole pipeline against an embedded AWS simulator.

Starts moto's server on a free loopback port, seeds a small but tricky fleet in two regions,
then runs ``scan`` and ``run --apply`` against it (publishing to a simulated SNS topic).
No AWS account and no network are needed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from rich.console import Console
from rich.rule import Rule

from sagesaver import report
from sagesaver.aws.session import Aws
from sagesaver.aws.simulator import Fleet, Simulator, VariantSpec
from sagesaver.policy import EndpointPolicy, NotifyPolicy, Policy
from sagesaver.run import notify_idle, scan

REGIONS = ("us-east-1", "us-west-2")


def seed_fleet(fleet: Fleet, now: datetime) -> str:
    """Seed the demo fleet; return the ARN of the administrators' SNS topic.

    The traps a naive scanner falls into are all here: traffic only on a second variant,
    published zeros, an endpoint created an hour ago, a protected one, one at 0 instances.
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
    return fleet.topic(east, "sagesaver-admins")


def run_demo(output: str = "table") -> int:
    """Run the demo; return the exit code (0 when every call succeeded)."""
    console = report.stdout_console()
    log = Console(stderr=True, highlight=False)
    sim = Simulator()
    try:
        with sim.environment(REGIONS[0]):
            now = datetime.now(timezone.utc)
            topic = seed_fleet(Fleet(sim), now)
            sim.middleware.counts.clear()
            log.print(
                f"[dim]Simulated AWS at {sim.url}, fleet seeded in {', '.join(REGIONS)}[/dim]"
            )
            policy = Policy(
                regions=list(REGIONS),
                endpoints=EndpointPolicy(idle_hours=24),
                notify=NotifyPolicy(sns_topic_arn=topic),
            )
            aws = Aws()
            result = scan(aws, REGIONS, policy, now)
            outcome = notify_idle(aws, result, policy, apply=True)
            if output == "json":
                extra = {
                    "notifications": [
                        {"subject": m.subject, "body": m.body} for m in outcome.messages
                    ],
                    "api_calls": dict(sorted(aws.calls.items())),
                }
                console.print_json(json.dumps(json.loads(report.to_json(result, extra))))
                return 1 if result.errors else 0
            console.print(Rule("sagesaver scan (2 regions, simulated)"))
            report.print_table(result, console)
            console.print(Rule(f"sagesaver run --apply: digest sent to {topic}"))
            for message in outcome.messages:
                console.print(f"Subject: {message.subject}\n", markup=False)
                console.print(message.body, markup=False, soft_wrap=True)
            calls = ", ".join(f"{op} {n}" for op, n in sorted(aws.calls.items()))
            console.print(Rule())
            console.print(f"AWS API calls made: {sum(aws.calls.values())} ({calls})")
            console.print(
                "Next: run `sagesaver scan --region us-east-1` with your own AWS credentials; "
                "it only reads."
            )
            return 1 if result.errors else 0
    finally:
        sim.stop()
