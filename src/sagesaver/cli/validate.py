"""``sagesaver validate``: check a policy file without calling AWS."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from sagesaver.aws.session import offered_regions
from sagesaver.cli.common import Output, OutputOpt, app, fail, load_policy_or_fail
from sagesaver.core.formats import iso
from sagesaver.core.partitions import partition_of
from sagesaver.core.policy import Policy, key_line, policy_error, policy_problem
from sagesaver.core.rules.schedules import upcoming


def _region_problems(policy: Policy, source: str, text: str) -> list[str]:
    """Every problem with the policy's regions and topic that botocore's own data can tell,
    each with its location."""
    problems = []

    def add(loc: tuple[str, ...], message: str) -> None:
        problems.append(policy_problem(source, key_line(text, loc), loc, message))

    sagemaker = offered_regions("sagemaker")
    missing = [r for r in policy.regions if r not in sagemaker]
    if missing:
        add(("regions",), f"SageMaker is not offered in {', '.join(missing)}")
    topic_region = policy.notify.topic_region
    if topic_region is not None and topic_region not in offered_regions("sns"):
        add(("notify", "sns_topic_arn"), f"{topic_region} is not a region that offers SNS")
    partitions = {partition_of(r) for r in policy.regions}
    if topic_region is not None:
        partitions.add(partition_of(topic_region))
    if len(partitions) > 1:
        add(
            ("regions",),
            f"with notify.sns_topic_arn, several partitions ({', '.join(sorted(partitions))}); "
            "one set of credentials reaches only one",
        )
    return problems


def summary(policy: Policy, now: datetime) -> dict[str, Any]:
    """What the policy will do, in the words the other commands use."""
    endpoints = policy.endpoints
    schedules: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for name, spec in policy.schedules.items():
        ahead = upcoming(spec.build(name), now)
        start, stop = ahead.next_start, ahead.next_stop
        schedules[name] = {
            "timezone": spec.timezone,
            "enforced": spec.enforced,
            "next_start": iso(start) if start else None,
            "next_stop": iso(stop) if stop else None,
            "resources": list(spec.resources),
        }
        if spec.targets("endpoints"):  # parked at a stop, back lead_minutes before a start
            schedules[name].update(quiet_minutes=spec.quiet_minutes, lead_minutes=spec.lead_minutes)
        if spec.work_days() is not None:
            schedules[name].update(
                calendar=spec.calendar,
                skip_dates=[d.isoformat() for d in spec.skip_dates],
                work_dates=[d.isoformat() for d in spec.work_dates],
                next_start_day=ahead.next_start_day,
                next_stop_day=ahead.next_stop_day,
                skipped_starts=list(ahead.skipped_starts),
            )
        warnings.extend(w for w in ahead.warnings if w not in warnings)
    return {
        "regions": policy.regions or None,
        "endpoints": {
            "idle_hours": endpoints.idle_hours,
            "action": endpoints.action,
            "grace_hours": endpoints.grace_hours if endpoints.action == "delete" else None,
            "max_actions_per_run": endpoints.max_actions_per_run,
            "protect_tag": endpoints.protect_tag,
        },
        "studio_apps": {
            "idle_hours": policy.studio_apps.idle_hours,
            "action": policy.studio_apps.action,
            "app_types": list(policy.studio_apps.app_types),
        },
        "warm_pools": {
            "action": policy.jobs.warm_pools.action if policy.jobs.enabled else "off",
            "idle_hours": policy.jobs.warm_pools.idle_hours,
            "max_actions_per_run": policy.jobs.warm_pools.max_actions_per_run,
            "protect_tag": policy.jobs.warm_pools.protect_tag,
        },
        "notify": {
            "sns_topic_arn": policy.notify.sns_topic_arn,
            "repeat_hours": policy.notify.repeat_hours,
        },
        "schedules": schedules,
        "ledger": policy.ledger,
        "warnings": warnings,
    }


def _lines(document: dict[str, Any]) -> list[str]:
    endpoints, studio, notify = document["endpoints"], document["studio_apps"], document["notify"]
    pools = document["warm_pools"]
    act = (
        f"delete after a {endpoints['grace_hours']:g} h notice"
        if endpoints["action"] == "delete"
        else "notify only"
    )
    lines = [
        "regions      "
        + (", ".join(document["regions"]) if document["regions"] else "from --region or AWS"),
        f"endpoints    idle after {endpoints['idle_hours']:g} h without invocations: {act}, "
        f"at most {endpoints['max_actions_per_run']} per run; tag {endpoints['protect_tag']} "
        "protects",
        f"studio apps  idle after {studio['idle_hours']:g} h: {studio['action']} "
        f"({', '.join(studio['app_types'])})",
        "warm pools   "
        + (
            f"released after {pools['idle_hours']:g} h unused, at most "
            f"{pools['max_actions_per_run']} per run; tag {pools['protect_tag']} protects"
            if pools["action"] == "release"
            else f"{'reported' if pools['action'] == 'notify' else 'not scanned'} "
            "(jobs.warm_pools.action: release ends idle ones)"
        ),
        "notify       "
        + (
            f"{notify['sns_topic_arn']}, the same digest again after {notify['repeat_hours']:g} h"
            if notify["sns_topic_arn"]
            else "no SNS topic: digests are printed, `run --apply` is refused"
        ),
    ]
    for name, schedule in document["schedules"].items():
        mode = "enforced" if schedule["enforced"] else "at boundaries only"
        if schedule.get("calendar"):
            mode += f", calendar {schedule['calendar']}"
        start, stop = (
            (schedule[f"next_{t}"] or "-")
            + (f" ({schedule[f'next_{t}_day']})" if schedule.get(f"next_{t}_day") else "")
            for t in ("start", "stop")
        )
        line = f"schedule     {name} ({schedule['timezone']}, {mode}): next start {start}, "
        line += f"next stop {stop}"
        if "lead_minutes" in schedule:
            line += (
                f"; acts on {' and '.join(schedule['resources'])}: endpoints parked at a stop "
                f"after {schedule['quiet_minutes']} min without invocations, back "
                f"{schedule['lead_minutes']} min before a start"
            )
        if schedule.get("skipped_starts"):
            line += f"; no start on {', '.join(schedule['skipped_starts'])}"
        lines.append(line)
    lines.append("ledger       " + (document["ledger"] or "--ledger, else the default file"))
    return lines


@app.command("validate", short_help="Check a policy file without calling AWS.")
def validate_command(
    policy_file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="The policy YAML file to check.", dir_okay=False),
    ],
    output: OutputOpt = Output.table,
) -> None:
    """Check a policy file without calling AWS: YAML, every key and value, regions, the topic,
    schedules and the ledger. Exit 0 and a summary when valid, exit 2 and every problem, each
    with its line and key, if not."""
    policy = load_policy_or_fail(policy_file)
    text = policy_file.read_text(encoding="utf-8")  # read and valid: load_policy said so
    problems = _region_problems(policy, str(policy_file), text)
    if problems:
        raise fail(str(policy_error(str(policy_file), problems)))
    document = summary(policy, datetime.now(timezone.utc))
    for warning in document["warnings"]:  # on stderr: the JSON on stdout has them too
        sys.stderr.write(f"sagesaver: warning: {warning}\n")
    if output is Output.json:
        sys.stdout.write(
            json.dumps({"file": str(policy_file), "valid": True, **document}, indent=2) + "\n"
        )
        return
    typer.echo(f"{policy_file}: valid")
    for line in _lines(document):
        typer.echo(f"  {line}")
