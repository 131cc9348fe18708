"""``sagesaver schedule``: time-zone-aware start/stop of notebook instances."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Annotated

import typer

from sagesaver.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    AllRegionsOpt,
    LedgerOpt,
    OfflinePricesOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    RegionOpt,
    app,
    fail,
    make_pricer,
    parse_at,
    prepare,
)
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso
from sagesaver.core.policy import Policy, load_policy
from sagesaver.render import scan as report

schedule_app = typer.Typer(
    help="Time-zone-aware start/stop schedules for notebook instances.", no_args_is_help=True
)
app.add_typer(schedule_app, name="schedule")

ScheduleOpt = Annotated[
    list[str] | None,
    typer.Option("--schedule", "-s", help="Only this schedule (repeatable; default: all)."),
]


def _only_schedules(policy: Policy, names: list[str] | None) -> frozenset[str] | None:
    """The schedules a command is limited to (None: all); unknown names are bad input."""
    if not names:
        if not policy.schedules:
            raise fail("the policy defines no schedules (see the README's schedules section)")
        return None
    unknown = [n for n in names if n not in policy.schedules]
    if unknown:
        known = ", ".join(sorted(policy.schedules)) or "none"
        raise fail(f"--schedule: unknown schedule {', '.join(unknown)} (known: {known})")
    return frozenset(names)


def _local_and_utc(moment: datetime | None, tz_name: str | None) -> str:
    if moment is None or tz_name is None:
        return "-"
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(tz_name))
    return f"{local:%a %Y-%m-%d %H:%M %Z} ({moment.astimezone(timezone.utc):%H:%M} UTC)"


@schedule_app.command("show")
def schedule_show_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    schedule: ScheduleOpt = None,
    at: Annotated[str | None, typer.Option("--at", help="Evaluate at this ISO 8601 time.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Each targeted instance: its schedule, current and wanted state, next transitions."""
    from sagesaver.pipelines.schedules import schedule_show

    now = parse_at(at)
    aws, policy, regions = prepare(policy_file, region, all_regions)
    only = _only_schedules(policy, schedule)
    rows, errors = schedule_show(aws, regions, policy, now, only)
    if output is Output.json:
        document = {
            "at": iso(now),
            "instances": [
                {
                    "name": r.resource.name,
                    "region": r.resource.region,
                    "state": r.resource.status,
                    "schedule": r.schedule,
                    "reason": r.reason,
                    "wanted": r.wanted,
                    "timezone": r.timezone,
                    "next_start": iso(r.next_start) if r.next_start else None,
                    "next_stop": iso(r.next_stop) if r.next_stop else None,
                }
                for r in rows
            ],
            "errors": [report.error_dict(e) for e in errors],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        from rich.table import Table

        table = Table(title=f"Scheduled notebook instances at {iso(now)}", title_justify="left")
        for column in ("Name", "Region", "Schedule", "State", "Wanted", "Next start", "Next stop"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(
                r.resource.name,
                r.resource.region,
                r.schedule or f"- ({r.reason})",
                r.resource.status,
                r.wanted or "-",
                _local_and_utc(r.next_start, r.timezone),
                _local_and_utc(r.next_stop, r.timezone),
            )
        console = report.stdout_console()
        console.print(table)
        report.print_errors(errors, console)
    raise typer.Exit(EXIT_FAILURES if errors else EXIT_OK)


@schedule_app.command("run")
def schedule_run_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    schedule: ScheduleOpt = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate as if it were this ISO 8601 time.")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Start and stop instances (default: dry run).")
    ] = False,
    ledger_path: LedgerOpt = None,
    output: OutputOpt = Output.table,
    offline_prices: OfflinePricesOpt = False,
) -> None:
    """Start and stop the instances whose schedule boundaries fell since the previous run
    (the ledger records each with its price, for `sagesaver savings`)."""
    from sagesaver.ledger import open_ledger
    from sagesaver.pipelines.schedules import run_document, schedule_run

    moment = parse_at(at)
    aws, policy, regions = prepare(policy_file, region, all_regions)
    only = _only_schedules(policy, schedule)
    try:
        spec = ledger_path or policy.ledger
        setting = "--ledger" if ledger_path else "policy: ledger"
        ledger = (
            open_ledger(spec, read_only=not apply, setting=setting) if (apply or spec) else None
        )
    except InputError as exc:
        raise fail(str(exc)) from exc
    pricer = make_pricer(aws, offline_prices) if apply and ledger is not None else None
    result = schedule_run(aws, regions, policy, moment, apply, ledger, only, pricer)
    document = run_document(result, apply)
    if output is Output.json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        console = report.stdout_console()
        verb = "" if apply else "would "
        for item in document["actions"]:
            done = "" if item["applied"] or not apply else " [red](failed)[/red]"
            console.print(
                f"{verb}{item['action']} {item['name']} ({item['region']}, schedule "
                f"{item['schedule']}): {item['reason']}{done}"
            )
        for item in document["skipped"]:
            console.print(f"[dim]skipped {item['name']} ({item['region']}): {item['reason']}[/dim]")
        if not document["actions"]:
            console.print("Nothing to start or stop.")
        if not apply and document["actions"]:
            console.print("Dry run: add --apply to act.")
        report.print_errors(result.errors, console)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


@schedule_app.command("rules")
def schedule_rules_command(
    policy_file: PolicyOpt = None,
    schedule: ScheduleOpt = None,
    target_arn: Annotated[
        str | None,
        typer.Option(
            "--target-arn",
            help="ARN of the function the schedules invoke (default: a placeholder in the "
            "partition of the policy's regions, e.g. arn:aws-cn:lambda:... in China).",
        ),
    ] = None,
) -> None:
    """The equivalent EventBridge Scheduler definitions (JSON), with their time zones."""
    from sagesaver.core.cron import ScheduleError
    from sagesaver.core.partitions import partition_of
    from sagesaver.pipelines.schedules import eventbridge_rules

    try:
        policy = load_policy(policy_file)
    except InputError as exc:
        raise fail(str(exc)) from exc
    if target_arn is None:
        partition = partition_of(policy.regions[0]) if policy.regions else "aws"
        target_arn = f"arn:{partition}:lambda:REGION:ACCOUNT_ID:function:sagesaver-schedule-tick"
    only = _only_schedules(policy, schedule)
    if only is not None:  # each rule belongs to one schedule: narrowing is safe here
        policy = policy.model_copy(update={"schedules": {n: policy.schedules[n] for n in only}})
    try:
        rules = eventbridge_rules(policy, target_arn)
    except ScheduleError as exc:
        raise fail(str(exc)) from exc
    typer.echo(json.dumps(rules, indent=2))
