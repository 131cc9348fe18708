"""``sagesaver schedule``: time-zone-aware start/stop of notebook instances, and parking of
endpoints (backed up and deleted at a stop, restored before a start)."""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sagesaver.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    AllRegionsOpt,
    LedgerOpt,
    ListOutputOpt,
    OfflinePricesOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    PriceChoice,
    PricesOpt,
    ProfileOpt,
    RegionOpt,
    VerboseOpt,
    app,
    connect,
    fail,
    load_policy_or_fail,
    make_pricer,
    parse_at,
    prepare,
)
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso
from sagesaver.core.policy import Policy
from sagesaver.render import scan as report

if TYPE_CHECKING:
    from rich.console import Console

    from sagesaver.aws.session import Aws
    from sagesaver.ledger import Ledger

schedule_app = typer.Typer(
    short_help="Start and stop notebook instances (and park endpoints) on schedules.",
    help="Start and stop notebook instances, and park endpoints outside working hours, on "
    "time-zone-aware schedules.",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")

ScheduleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--schedule", "-s", metavar="NAME", help="Only this schedule (repeatable; default: all)."
    ),
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


def _local_and_utc(moment: datetime | None, tz_name: str | None, day: str | None = None) -> str:
    if moment is None or tz_name is None:
        return "-"
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(tz_name))
    text = f"{local:%a %Y-%m-%d %H:%M %Z} ({moment.astimezone(timezone.utc):%H:%M} UTC)"
    return f"{text}, {day}" if day else text


def _parks(policy: Policy, only: frozenset[str] | None) -> bool:
    """Whether a schedule of the command parks endpoints (its ledger says which are parked)."""
    from sagesaver.core.rules.parking import parking_schedules

    return bool(parking_schedules(policy, only))


def _open_ledger(
    spec: str | None, setting: str, read_only: bool, aws: Aws, needed: bool
) -> Ledger | None:
    """The command's ledger (None when it needs none); bad input exits 2."""
    from sagesaver.ledger import open_ledger

    if not (needed or spec):
        return None
    try:
        return open_ledger(spec, read_only=read_only, setting=setting, aws=aws)
    except InputError as exc:
        raise fail(str(exc)) from exc


def _warn(warnings: list[str]) -> None:
    """Each warning once on stderr (the JSON on stdout has them too)."""
    for warning in warnings:
        sys.stderr.write(f"sagesaver: warning: {warning}\n")


@schedule_app.command("show", short_help="Each instance's schedule and next transitions.")
def schedule_show_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    schedule: ScheduleOpt = None,
    at: Annotated[
        str | None, typer.Option("--at", metavar="TIME", help="Evaluate at this ISO 8601 time.")
    ] = None,
    output: ListOutputOpt = Output.table,
    ledger_path: LedgerOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Each targeted instance: its schedule, current and wanted state, next transitions; and
    the endpoints parked now (from the ledger) with the time each comes back."""
    from sagesaver.pipelines.parking import parked_document, parked_now
    from sagesaver.pipelines.schedules import schedule_show

    now = parse_at(at)
    aws, policy, regions = prepare(policy_file, region, all_regions, profile, verbose)
    only = _only_schedules(policy, schedule)
    spec = ledger_path or policy.ledger
    setting = "--ledger" if ledger_path else "policy: ledger"
    parks = _parks(policy, only)  # only then is the ledger read (which endpoints are parked)
    ledger = _open_ledger(spec, setting, True, aws, True) if parks else None
    rows, errors, warnings = schedule_show(aws, regions, policy, now, only)
    parked_rows = parked_now(ledger, regions, policy, now, only) if ledger is not None else []
    _warn(warnings)
    if output is not Output.table:
        instances: list[dict[str, Any]] = [
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
                "next_start_day": r.next_start_day,
                "next_stop_day": r.next_stop_day,
                "skipped_starts": list(r.skipped_starts),
            }
            for r in rows
        ]
        if output is Output.csv:
            flat = [{**i, "skipped_starts": "; ".join(i["skipped_starts"])} for i in instances]
            sys.stdout.write(report.rows_to_csv(flat))
            report.print_errors(errors)
        else:
            document = {
                "at": iso(now),
                "instances": instances,
                "parked_endpoints": parked_document(parked_rows),
                "errors": [report.error_dict(e) for e in errors],
                "warnings": warnings,
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
                _local_and_utc(r.next_start, r.timezone, r.next_start_day),
                _local_and_utc(r.next_stop, r.timezone, r.next_stop_day),
            )
        console = report.stdout_console()
        console.print(table)
        skipping = {r.schedule: r.skipped_starts for r in rows if r.schedule and r.skipped_starts}
        for name, days in sorted(skipping.items()):
            console.print(f"{name}: no start on {', '.join(days)}", markup=False, soft_wrap=True)
        if parked_rows:
            parked_table = Table(title="Parked endpoints", title_justify="left")
            for column in ("Name", "Region", "Schedule", "Parked since", "Comes back"):
                parked_table.add_column(column, overflow="fold")
            for p in parked_rows:
                back = _local_and_utc(p.comes_back, p.timezone) if p.comes_back else p.note
                parked_table.add_row(p.name, p.region, p.schedule, iso(p.since), back)
            console.print(parked_table)
        report.print_errors(errors)
    raise typer.Exit(EXIT_FAILURES if errors else EXIT_OK)


@schedule_app.command("run", short_help="Start and stop instances at schedule boundaries.")
def schedule_run_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    schedule: ScheduleOpt = None,
    at: Annotated[
        str | None,
        typer.Option("--at", metavar="TIME", help="Evaluate as if it were this ISO 8601 time."),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Start and stop instances (default: dry run).")
    ] = False,
    ledger_path: LedgerOpt = None,
    output: OutputOpt = Output.table,
    offline_prices: OfflinePricesOpt = False,
    prices: PricesOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Start and stop the instances whose schedule boundaries fell since the previous run
    (the ledger records each with its price, for `sagesaver savings`).

    With --at it is a what-if: nothing is changed and nothing recorded, so the next real run
    is not affected (--at with --apply is refused)."""
    from sagesaver.pipelines.schedules import run_document, schedule_run

    if at is not None and apply:
        raise fail(
            "--at with --apply: a what-if at another time never acts or records anything "
            "(it would change what the next real run does); drop one of them"
        )
    moment = parse_at(at)
    chosen = PriceChoice(prices)
    aws, policy, regions = prepare(policy_file, region, all_regions, profile, verbose, chosen)
    only = _only_schedules(policy, schedule)
    spec = ledger_path or policy.ledger
    setting = "--ledger" if ledger_path else "policy: ledger"
    # a dry run that parks endpoints reads the ledger too: it says which are parked
    ledger = _open_ledger(spec, setting, not apply, aws, apply or _parks(policy, only))
    pricer = make_pricer(aws, offline_prices, chosen.file) if apply and ledger is not None else None
    with _sigterm_exits() if apply else nullcontext():
        result = schedule_run(aws, regions, policy, moment, apply, ledger, only, pricer)
    document = run_document(result, apply)
    _warn(result.warnings)
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
        _print_parking(console, document["parking"], apply)
        if not document["actions"] and not document["parking"]:
            _why_nothing(console, document)
        if not apply and (document["actions"] or _acts(document["parking"])):
            console.print("Dry run: add --apply to act.")
        report.print_errors(result.errors)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM (a scheduler's or a container's stop) ends the run as an exception would: no
    further start or stop is sent, and those in flight finish and are recorded
    (:func:`~sagesaver.pipelines.schedules.schedule_run`); exit code 143."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _acts(parking: list[dict[str, Any]]) -> bool:
    return any(item["action"] != "skip" for item in parking)


def _print_parking(console: Console, parking: list[dict[str, Any]], apply: bool) -> None:
    """One line per endpoint parked, brought back, kept up or left alone."""
    for item in parking:
        where = f"{item['name']} ({item['region']}, schedule {item['schedule'] or '-'})"
        if item["action"] == "skip":
            console.print(f"skipped endpoint {where}: {item['reason']}", markup=False, style="dim")
            continue
        verb = item["action"] if apply else f"would {item['action']}"
        line = f"{verb} endpoint {where}: {item['reason']}; {item['outcome']}"
        console.print(line, markup=False, style=None if item["error"] is None else "red")


def _why_nothing(console: Console, document: dict[str, Any]) -> None:
    """ "Nothing to start or stop", and why, schedule by schedule."""
    if not document["quiet"] and not document["skipped"]:
        console.print(
            "Nothing to start or stop: no notebook instance is targeted (tag sagesaver:schedule"
            "=<name>, or the schedule's name_contains/include/tags).",
            markup=False,
        )
        return
    console.print("Nothing to start or stop.", markup=False)
    for item in document["quiet"]:
        console.print(f"  {item['schedule']} ({item['region']}): {item['reason']}", markup=False)


@schedule_app.command("rules", short_help="The schedules as EventBridge Scheduler definitions.")
def schedule_rules_command(
    policy_file: PolicyOpt = None,
    schedule: ScheduleOpt = None,
    target_arn: Annotated[
        str | None,
        typer.Option(
            "--target-arn",
            metavar="ARN",
            help="The schedule tick function the schedules invoke (or --stack-name).",
        ),
    ] = None,
    role_arn: Annotated[
        str | None,
        typer.Option(
            "--role-arn",
            metavar="ARN",
            help="The role EventBridge Scheduler assumes to invoke it (or --stack-name).",
        ),
    ] = None,
    stack_name: Annotated[
        str | None,
        typer.Option(
            "--stack-name",
            metavar="NAME",
            help="Take the function and role from this deployed SageSaver stack.",
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option("--group", metavar="NAME", help="Schedule group (default: default)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", "-r", metavar="REGION", help="The stack's region.")
    ] = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """The CreateSchedule requests (JSON) that run the schedule tick at each start and stop,
    in each schedule's time zone: the same schedules the deployed stack makes. Each one is
    accepted as it is by `aws scheduler create-schedule --cli-input-json`."""
    from sagesaver.core.cron import ScheduleError
    from sagesaver.pipelines.schedules import eventbridge_rules

    policy = load_policy_or_fail(policy_file)
    only = _only_schedules(policy, schedule)
    if only is not None:  # each rule belongs to one schedule: narrowing is safe here
        policy = policy.model_copy(update={"schedules": {n: policy.schedules[n] for n in only}})
    if stack_name is not None:
        target_arn, role_arn = _stack_targets(stack_name, region, profile, verbose)
    if target_arn is None or role_arn is None:
        raise fail("pass --target-arn and --role-arn, or --stack-name of a deployed stack")
    for option, value, service in (
        ("--target-arn", target_arn, "lambda"),
        ("--role-arn", role_arn, "iam"),
    ):
        if not re.fullmatch(rf"arn:aws(?:-cn|-us-gov)?:{service}:[^\s]+", value):
            raise fail(f"{option} {value!r}: not an ARN of {service}")
    try:
        rules = eventbridge_rules(policy, target_arn, role_arn, group)
    except ScheduleError as exc:
        raise fail(str(exc)) from exc
    typer.echo(json.dumps(rules, indent=2))


def _stack_targets(
    stack_name: str, region: str | None, profile: str | None, verbose: bool
) -> tuple[str, str]:
    """The schedule tick function and the Scheduler role of a deployed stack."""
    from sagesaver.aws.deploy import stack_outputs
    from sagesaver.aws.errors import AWS_ERRORS, scan_error

    aws = connect(profile, verbose)
    where = region or aws.default_region
    if not where:
        raise fail("no region: pass --region or set AWS_DEFAULT_REGION")
    try:
        outputs = stack_outputs(aws, where, stack_name)
    except AWS_ERRORS as exc:
        error = scan_error(exc, where, "DescribeStacks", stack_name)
        raise fail(f"--stack-name {stack_name}: {error.message}") from exc
    target, role = outputs.get("ScheduleTickFunctionArn"), outputs.get("SchedulerRoleArn")
    if target is None or role is None:
        raise fail(
            f"--stack-name {stack_name}: the stack has no schedule tick (deploy it with a "
            "policy that has schedules, with this version of SageSaver)"
        )
    return target, role
