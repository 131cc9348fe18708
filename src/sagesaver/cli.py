"""The ``sagesaver`` command.

Exit codes: 0 success, 1 some resources or regions failed, 2 bad input (nothing changed).
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from platformdirs import user_cache_dir
from rich.console import Console

from sagesaver import __version__, report
from sagesaver.aws.session import Aws
from sagesaver.errors import InputError
from sagesaver.ledger import Ledger
from sagesaver.lifecycle import (
    AgentOptions,
    check_name,
    encoded_content,
    parse_tag_filters,
    plan_attach,
    render_on_start,
)
from sagesaver.policy import Policy, load_policy
from sagesaver.pricing import Pricer
from sagesaver.run import ScanResult, resolve_regions, scan

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT = 0, 1, 2

app = typer.Typer(
    name="sagesaver",
    help="Find idle Amazon SageMaker resources, show what they cost, and stop them safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain, one-line usage errors
)
err = Console(stderr=True, highlight=False)


class Output(str, Enum):
    """Output formats."""

    table = "table"
    json = "json"
    csv = "csv"


PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy", "-p", help="Policy YAML file (default: built-in defaults).", dir_okay=False
    ),
]
RegionOpt = Annotated[
    list[str] | None,
    typer.Option("--region", "-r", help="Region to scan; repeat for several."),
]
AllRegionsOpt = Annotated[
    bool, typer.Option("--all-regions", help="Scan every enabled region that offers SageMaker.")
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]
AccountsOpt = Annotated[
    Path | None,
    typer.Option("--accounts", help="File of account ids to scan (one per line).", dir_okay=False),
]
OrganizationOpt = Annotated[
    bool, typer.Option("--organization", help="Scan every active account of the organisation.")
]
RoleNameOpt = Annotated[
    str, typer.Option("--role-name", help="Role assumed in each account of a fan-out.")
]
DEFAULT_ROLE_NAME = "SageSaverExecution"
LedgerOpt = Annotated[
    str | None,
    typer.Option("--ledger", help="Ledger file (default: in the user's data directory)."),
]
LivePricesOpt = Annotated[
    bool,
    typer.Option("--live-prices", help="Look prices up in the AWS Price List API (cached 7 days)."),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _pricer(aws: Aws, live: bool) -> Pricer:
    if not live:
        return Pricer()
    from sagesaver.aws.prices import LivePrices

    cache = Path(user_cache_dir("sagesaver")) / "prices.json"
    return Pricer(live=LivePrices(aws, cache))


def _progress(message: str) -> None:
    if err.is_terminal:
        err.print(f"[dim]{message}[/dim]")


def _prepare(
    policy_file: Path | None, regions: list[str] | None, all_regions: bool
) -> tuple[Aws, Policy, list[str]]:
    """Everything that can be wrong with the input is checked here, before any AWS write."""
    try:
        policy = load_policy(policy_file)
        aws = Aws()
        source = str(policy_file) if policy_file else "policy"
        chosen = resolve_regions(aws, regions or [], all_regions, policy, source)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    return aws, policy, chosen


def _fan_out_accounts(accounts_file: Path | None, organization: bool, role_name: str) -> bool:
    """Check the fan-out options; True when a fan-out over accounts was asked for."""
    from sagesaver.accounts import check_role_name

    if accounts_file is not None and organization:
        raise _fail("--accounts and --organization cannot be used together")
    try:
        check_role_name(role_name)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    return accounts_file is not None or organization


def _scan(
    aws: Aws,
    regions: list[str],
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    accounts_file: Path | None,
    organization: bool,
    role_name: str,
) -> ScanResult:
    """One account (the caller's), or a fan-out over accounts with an assumed role."""
    from sagesaver.accounts import load_accounts
    from sagesaver.aws.errors import AWS_ERRORS, scan_error
    from sagesaver.run import scan_accounts

    if accounts_file is None and not organization:
        return scan(aws, regions, policy, now, pricer, _progress)
    if accounts_file is not None:
        try:
            accounts = load_accounts(accounts_file)
        except InputError as exc:
            raise _fail(str(exc)) from exc
    else:
        try:
            accounts = aws.organization_accounts()
        except AWS_ERRORS as exc:
            error = scan_error(exc, aws.default_region or "-", "ListAccounts")
            return ScanResult(generated_at=now, regions=regions, errors=[error])
    return scan_accounts(aws, accounts, role_name, regions, policy, now, pricer, _progress)


def _print_result(
    result: ScanResult, output: Output, extra: dict[str, object] | None = None
) -> None:
    if output is Output.json:
        sys.stdout.write(report.to_json(result, extra) + "\n")
    elif output is Output.csv:
        sys.stdout.write(report.to_csv(result))
    else:
        report.print_table(result, report.stdout_console())


@app.command("scan")
def scan_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    output: OutputOpt = Output.table,
    live_prices: LivePricesOpt = False,
    accounts: AccountsOpt = None,
    organization: OrganizationOpt = False,
    role_name: RoleNameOpt = DEFAULT_ROLE_NAME,
) -> None:
    """Find idle endpoints and unguarded notebook instances, and what they cost. Read-only."""
    _fan_out_accounts(accounts, organization, role_name)
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    now = datetime.now(timezone.utc)
    result = _scan(
        aws, regions, policy, now, _pricer(aws, live_prices), accounts, organization, role_name
    )
    _print_result(result, output)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


@app.command("run")
def run_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Carry the decisions out (default: dry run).")
    ] = False,
    output: OutputOpt = Output.table,
    live_prices: LivePricesOpt = False,
    ledger_path: LedgerOpt = None,
    accounts: AccountsOpt = None,
    organization: OrganizationOpt = False,
    role_name: RoleNameOpt = DEFAULT_ROLE_NAME,
) -> None:
    """Scan, then carry out the decisions: one SNS digest of the idle endpoints, and with
    action 'delete', grace-period tags and deletion with a backup.

    Without --apply nothing is changed or sent: the digest is printed instead.
    """
    from sagesaver.enforce import enforce_and_notify, step_dict

    _fan_out_accounts(accounts, organization, role_name)
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    action = policy.endpoints.action
    if apply and policy.notify.sns_topic_arn is None:
        raise _fail(
            f"--apply with action '{action}' needs notify.sns_topic_arn in the policy "
            "(people are told before anything is deleted)"
        )
    ledger = None
    if action == "delete":
        # A dry run reads the announcements in the ledger, but never creates one.
        ledger = _open_ledger(ledger_path, read_only=not apply)
    now = datetime.now(timezone.utc)
    result = _scan(
        aws, regions, policy, now, _pricer(aws, live_prices), accounts, organization, role_name
    )
    done = enforce_and_notify(aws, result, policy, now, apply, ledger)
    outcome = done.notified
    assert outcome is not None
    enforcement = [step_dict(s) for s in done.steps]
    if output is Output.json:
        notifications = [
            {"subject": m.subject, "body": m.body, "bytes": len(m.body.encode())}
            for m in outcome.messages
        ]
        _print_result(
            result,
            output,
            {
                "applied": outcome.applied,
                "dry_run": not apply,
                "sns_topic_arn": outcome.topic_arn,
                "enforcement": enforcement,
                "notifications": notifications,
                "message_ids": outcome.message_ids,
            },
        )
    else:
        _print_result(result, output)
        console = report.stdout_console()
        for item in enforcement:
            console.print(
                f"{item['stage']:>8} {item['name']} ({item['region']}): {item['outcome']}",
                markup=False,
            )
        if not outcome.messages:
            console.print("No idle endpoint to notify about.")
        for message in outcome.messages:
            if outcome.applied:
                verb = f"Sent to {outcome.topic_arn}"
            elif not apply:
                target = outcome.topic_arn or "(no notify.sns_topic_arn set)"
                verb = f"Dry run: would send to {target}"
            else:
                verb = "Not sent (see errors)"
            console.rule(f"{verb}")
            console.print(f"Subject: {message.subject}\n", markup=False)
            console.print(message.body, markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


@app.command("demo")
def demo_command(
    output: OutputOpt = Output.table,
) -> None:
    """Run scan and run against an embedded AWS simulator (moto) seeded with a sample fleet."""
    try:
        from sagesaver.demo import run_demo
    except ImportError as exc:  # moto is an optional dependency
        raise _fail(
            f"the demo needs the simulator: pip install 'sagesaver[demo]' ({exc.name} missing)"
        ) from exc
    raise typer.Exit(run_demo(output.value))


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
            raise _fail("the policy defines no schedules (see the README's schedules section)")
        return None
    unknown = [n for n in names if n not in policy.schedules]
    if unknown:
        known = ", ".join(sorted(policy.schedules)) or "none"
        raise _fail(f"--schedule: unknown schedule {', '.join(unknown)} (known: {known})")
    return frozenset(names)


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(f"--at {text!r}: not an ISO 8601 time (like 2026-11-30T07:05:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
    from sagesaver.scheduler import schedule_show

    now = _parse_at(at)
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    only = _only_schedules(policy, schedule)
    rows, errors = schedule_show(aws, regions, policy, now, only)
    if output is Output.json:
        document = {
            "at": report.iso(now),
            "instances": [
                {
                    "name": r.resource.name,
                    "region": r.resource.region,
                    "state": r.resource.status,
                    "schedule": r.schedule,
                    "reason": r.reason,
                    "wanted": r.wanted,
                    "timezone": r.timezone,
                    "next_start": report.iso(r.next_start) if r.next_start else None,
                    "next_stop": report.iso(r.next_stop) if r.next_stop else None,
                }
                for r in rows
            ],
            "errors": [report.error_dict(e) for e in errors],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        from rich.table import Table

        table = Table(
            title=f"Scheduled notebook instances at {report.iso(now)}", title_justify="left"
        )
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
) -> None:
    """Start and stop the instances whose schedule boundaries fell since the previous run."""
    from sagesaver.ledger import open_ledger
    from sagesaver.scheduler import run_document, schedule_run

    moment = _parse_at(at)
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    only = _only_schedules(policy, schedule)
    try:
        ledger = open_ledger(ledger_path, read_only=not apply) if (apply or ledger_path) else None
    except InputError as exc:
        raise _fail(str(exc)) from exc
    result = schedule_run(aws, regions, policy, moment, apply, ledger, only)
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
        str,
        typer.Option("--target-arn", help="ARN of the function the schedules invoke."),
    ] = "arn:aws:lambda:REGION:ACCOUNT_ID:function:sagesaver-schedule-tick",
) -> None:
    """The equivalent EventBridge Scheduler definitions (JSON), with their time zones."""
    from sagesaver.schedule import ScheduleError
    from sagesaver.scheduler import eventbridge_rules

    try:
        policy = load_policy(policy_file)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    only = _only_schedules(policy, schedule)
    if only is not None:  # each rule belongs to one schedule: narrowing is safe here
        policy = policy.model_copy(update={"schedules": {n: policy.schedules[n] for n in only}})
    try:
        rules = eventbridge_rules(policy, target_arn)
    except ScheduleError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(rules, indent=2))


lifecycle_app = typer.Typer(
    help="Lifecycle configurations that install the on-instance auto-stop agent.",
    no_args_is_help=True,
)
app.add_typer(lifecycle_app, name="lifecycle")

IdleTimeOpt = Annotated[
    int, typer.Option("--idle-time", help="Seconds without use before the instance stops.")
]
IgnoreConnectionsOpt = Annotated[
    bool,
    typer.Option("--ignore-connections", help="Open browser connections do not count as use."),
]
CpuOpt = Annotated[
    float, typer.Option("--cpu-threshold", help="CPU %% that counts as use (0: off).")
]
GpuOpt = Annotated[
    float, typer.Option("--gpu-threshold", help="GPU %% that counts as use (0: off).")
]
IntervalOpt = Annotated[
    int, typer.Option("--interval-minutes", help="How often cron runs the agent.")
]
UrlOpt = Annotated[
    str | None, typer.Option("--jupyter-url", help="Jupyter server URL (default: the agent's).")
]
MetadataOpt = Annotated[
    str | None,
    typer.Option("--metadata-file", help="Instance metadata file (default: the agent's)."),
]


def _agent_options(
    idle_time: int,
    ignore_connections: bool,
    cpu_threshold: float,
    gpu_threshold: float,
    interval_minutes: int,
    jupyter_url: str | None,
    metadata_file: str | None,
) -> AgentOptions:
    try:
        return AgentOptions(
            idle_time=idle_time,
            ignore_connections=ignore_connections,
            cpu_threshold=cpu_threshold,
            gpu_threshold=gpu_threshold,
            interval_minutes=interval_minutes,
            jupyter_url=jupyter_url,
            metadata_file=metadata_file,
        ).validate()
    except InputError as exc:
        raise _fail(str(exc)) from exc


@lifecycle_app.command("render")
def lifecycle_render_command(
    idle_time: IdleTimeOpt = 3600,
    ignore_connections: IgnoreConnectionsOpt = False,
    cpu_threshold: CpuOpt = 10.0,
    gpu_threshold: GpuOpt = 10.0,
    interval_minutes: IntervalOpt = 5,
    jupyter_url: UrlOpt = None,
    metadata_file: MetadataOpt = None,
    base64_output: Annotated[
        bool, typer.Option("--base64", help="Print the content as the API takes it (base64).")
    ] = False,
) -> None:
    """Print the on-start script that installs the auto-stop agent (no network needed)."""
    options = _agent_options(
        idle_time,
        ignore_connections,
        cpu_threshold,
        gpu_threshold,
        interval_minutes,
        jupyter_url,
        metadata_file,
    )
    script = render_on_start(options)
    try:
        content = encoded_content(script)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    sys.stdout.write(content + "\n" if base64_output else script)


@lifecycle_app.command("install")
def lifecycle_install_command(
    name: Annotated[str, typer.Argument(help="Lifecycle configuration name.")],
    idle_time: IdleTimeOpt = 3600,
    ignore_connections: IgnoreConnectionsOpt = False,
    cpu_threshold: CpuOpt = 10.0,
    gpu_threshold: GpuOpt = 10.0,
    interval_minutes: IntervalOpt = 5,
    jupyter_url: UrlOpt = None,
    metadata_file: MetadataOpt = None,
    attach: Annotated[
        list[str] | None,
        typer.Option("--attach", help="Attach to instances whose name matches (glob, repeatable)."),
    ] = None,
    attach_tag: Annotated[
        list[str] | None,
        typer.Option("--attach-tag", help="Attach to instances with this tag (KEY=VALUE)."),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Stop, attach and start InService instances.")
    ] = False,
    restart_timeout: Annotated[
        int, typer.Option("--restart-timeout", help="Seconds to wait for an instance to stop.")
    ] = 900,
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Make the changes (default: dry run).")
    ] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Create or update the configuration and attach it to matching notebook instances."""
    from sagesaver.aws import inventory, tags
    from sagesaver.aws.errors import AWS_ERRORS, scan_error
    from sagesaver.aws.lifecycle import attach as attach_config
    from sagesaver.aws.lifecycle import ensure_config

    try:
        check_name(name)
        filters = parse_tag_filters(attach_tag or [])
    except InputError as exc:
        raise _fail(str(exc)) from exc
    options = _agent_options(
        idle_time,
        ignore_connections,
        cpu_threshold,
        gpu_threshold,
        interval_minutes,
        jupyter_url,
        metadata_file,
    )
    if restart_timeout <= 0:
        raise _fail(f"--restart-timeout {restart_timeout}: must be more than 0 seconds")
    try:
        content = encoded_content(render_on_start(options))
    except InputError as exc:
        raise _fail(str(exc)) from exc
    aws, policy, regions = _prepare(policy_file, region, False)
    errors = []
    configs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for where in regions:
        try:
            outcome = ensure_config(aws, where, name, content, apply)
        except AWS_ERRORS as exc:
            errors.append(scan_error(exc, where, "CreateOrUpdateLifecycleConfig", name))
            continue
        configs.append(
            {"region": where, "name": name, "action": outcome.action, "applied": outcome.applied}
        )
        if not (attach or filters):
            continue
        try:
            listed = inventory.list_notebook_instances(aws, where)
            instances, unknown = tags.with_tags(aws, where, listed, tags.NOTEBOOK_TYPE)
        except AWS_ERRORS as exc:
            errors.append(scan_error(exc, where, "ListNotebookInstances"))
            continue
        errors.extend(tags.unmatched_error(i) for i in unknown)
        for item in plan_attach(
            instances, attach or [], filters, name, restart, policy.notebooks.protect_tag
        ):
            result = "dry run" if item.action != "skip" else item.reason
            if apply and item.action != "skip":
                result, error = attach_config(aws, item.instance, name, restart, restart_timeout)
                if error is not None:
                    errors.append(error)
            rows.append(
                {
                    "name": item.instance.name,
                    "region": where,
                    "state": item.instance.status,
                    "action": item.action,
                    "reason": item.reason,
                    "result": result,
                }
            )
    if output is Output.json:
        document = {
            "dry_run": not apply,
            "configurations": configs,
            "instances": rows,
            "errors": [report.error_dict(e) for e in errors],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        console = report.stdout_console()
        for config in configs:
            verb = (
                config["action"]
                if config["applied"] or config["action"] == "unchanged"
                else (f"would {config['action']}")
            )
            console.print(f"lifecycle configuration {name} ({config['region']}): {verb}")
        for row in rows:
            console.print(
                f"{row['name']} ({row['region']}, {row['state']}): {row['action']}: {row['result']}"
            )
        if not apply:
            console.print("Dry run: add --apply to make these changes.")
        report.print_errors(errors, console)
    raise typer.Exit(EXIT_FAILURES if errors else EXIT_OK)


@app.command("studio")
def studio_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Delete idle apps (default: dry run).")
    ] = False,
    ledger_path: LedgerOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Idle SageMaker Studio apps (JupyterLab, Code Editor, KernelGateway, JupyterServer), and
    domains and spaces without built-in idle shutdown. Deletes idle apps with --apply and
    studio_apps.action: delete (the space's storage is kept)."""
    from sagesaver.studio import studio_run

    aws, policy, regions = _prepare(policy_file, region, all_regions)
    ledger = None
    if policy.studio_apps.action == "delete":
        ledger = _open_ledger(ledger_path, read_only=not apply)
    if apply and policy.notify.sns_topic_arn is None:
        raise _fail("--apply needs notify.sns_topic_arn in the policy (people are told first)")
    now = datetime.now(timezone.utc)
    result = studio_run(aws, regions, policy, now, apply, ledger)
    notified = result.notified
    assert notified is not None
    apps = [
        {**report.resource_dict(a.decision), "outcome": a.outcome, "applied": a.applied}
        for a in result.apps
    ]
    gaps = [
        {"region": g.region, "domain_id": g.domain_id, "space": g.space, "detail": g.detail}
        for g in result.gaps
    ]
    if output is Output.json:
        document = {
            "generated_at": report.iso(now),
            "dry_run": not apply,
            "apps": apps,
            "idle_shutdown_gaps": gaps,
            "notifications": [{"subject": m.subject, "body": m.body} for m in notified.messages],
            "notified": notified.applied,
            "errors": [report.error_dict(e) for e in result.errors],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        console = report.stdout_console()
        for item in apps:
            cost = "?" if item["hourly_cost_usd"] is None else f"${item['hourly_cost_usd']:.3f}/h"
            console.print(
                f"{item['name']} ({item['region']}, {item['instance_type'] or '-'}, {cost}): "
                f"{item['reason']} -> {item['outcome']}",
                markup=False,
            )
        for gap in gaps:
            where = f"space {gap['space']}" if gap["space"] else "domain default"
            console.print(
                f"{gap['domain_id']} {where} ({gap['region']}): {gap['detail']}", markup=False
            )
        if not apps and not gaps:
            console.print("No Studio apps in service.")
        report.print_errors(result.errors, console)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


class ReportFormat(str, Enum):
    """Formats of ``sagesaver report``."""

    html = "html"
    markdown = "markdown"


@app.command("report")
def report_command(
    html_file: Annotated[
        Path | None,
        typer.Option("--html", help="Write the self-contained HTML report here.", dir_okay=False),
    ] = None,
    output: Annotated[
        ReportFormat, typer.Option("--output", "-o", help="Without --html: markdown on stdout.")
    ] = ReportFormat.markdown,
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    ledger_path: LedgerOpt = None,
    owner_tag: Annotated[
        str, typer.Option("--owner-tag", help="The tag that names a resource's owner.")
    ] = "owner",
    backtest_days: Annotated[
        int | None, typer.Option("--backtest-days", help="Add a backtest over this many days.")
    ] = None,
) -> None:
    """Where the money goes and what was saved: current idle cost by kind, region and owner,
    the most expensive idle resources, actions and savings over time, and a backtest."""
    from sagesaver.html_report import render_html, render_markdown

    if backtest_days is not None and not 1 <= backtest_days <= MAX_BACKTEST_DAYS:
        raise _fail(f"--backtest-days {backtest_days}: must be from 1 to {MAX_BACKTEST_DAYS}")
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    entries = _open_ledger(ledger_path, read_only=True).entries()
    now = datetime.now(timezone.utc)
    result = scan(aws, regions, policy, now, Pricer(), _progress)
    backtest = None
    if backtest_days is not None:
        from sagesaver.backtest_run import read_history, replay_history

        replayed = replay_history(read_history(aws, regions, now, backtest_days), policy.endpoints)
        result.errors.extend(replayed.errors)
        backtest = replayed.to_document()
    if html_file is not None:
        page = render_html(result, entries, now, backtest, owner_tag)
        try:
            html_file.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise _fail(f"--html {html_file}: cannot write: {exc}") from exc
        err.print(f"Report written to {html_file} ({len(page.encode()) / 1024:.0f} KB)")
    elif output is ReportFormat.html:
        sys.stdout.write(render_html(result, entries, now, backtest, owner_tag))
    else:
        sys.stdout.write(render_markdown(result, entries, now, backtest, owner_tag))
    report.print_errors(result.errors, err)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


MAX_BACKTEST_DAYS = 455  # CloudWatch keeps hourly datapoints for 455 days


@app.command("backtest")
def backtest_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    days: Annotated[int, typer.Option("--days", help="How many days of history to replay.")] = 30,
    compare_file: Annotated[
        Path | None,
        typer.Option(
            "--compare", help="Replay this second policy too, side by side.", dir_okay=False
        ),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """What-if: replay the endpoint policy hour by hour over the Invocations history. Read-only.

    Which endpoints it would have flagged, deleted or spared, the instance-hours and dollars it
    would have saved, and how often it would have deleted an endpoint called again later.
    """
    from sagesaver.backtest import BacktestResult, compare
    from sagesaver.backtest_run import read_history, replay_history

    if not 1 <= days <= MAX_BACKTEST_DAYS:
        raise _fail(
            f"--days {days}: must be from 1 to {MAX_BACKTEST_DAYS} (CloudWatch's retention)"
        )
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    other = None
    if compare_file is not None:
        try:
            other = load_policy(compare_file)
        except InputError as exc:
            raise _fail(str(exc)) from exc
    now = datetime.now(timezone.utc)
    history = read_history(aws, regions, now, days)
    results: dict[str, BacktestResult] = {"policy": replay_history(history, policy.endpoints)}
    if other is not None:
        results["compare"] = replay_history(history, other.endpoints)
    errors = results["policy"].errors
    if output is Output.json:
        document: dict[str, Any] = {k: v.to_document() for k, v in results.items()}
        if other is not None:
            document["difference"] = compare(results["policy"], results["compare"])
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    else:
        console = report.stdout_console()
        names = list(results)
        totals = {name: results[name].totals.to_document() for name in names}
        console.print(
            f"Backtest over {days} days, {len(regions)} region(s): "
            + " vs ".join(
                str(policy_file or "default policy") if n == "policy" else str(compare_file)
                for n in names
            ),
            markup=False,
        )
        for key in totals["policy"]:
            values = "  ".join(f"{totals[n][key]!s:>14}" for n in names)
            console.print(f"  {key:<26}{values}", markup=False)
        for timeline in results["policy"].timelines:
            if timeline.deleted_at is not None:
                mistake = (
                    f"; called again {timeline.mistake_at:%Y-%m-%d %H:%M}"
                    if timeline.mistake_at
                    else ""
                )
                console.print(
                    f"  would delete {timeline.name} ({timeline.region}) at "
                    f"{timeline.deleted_at:%Y-%m-%d %H:%M} UTC{mistake}",
                    markup=False,
                )
        report.print_errors(errors, console)
    raise typer.Exit(EXIT_FAILURES if errors else EXIT_OK)


deploy_app = typer.Typer(
    help="Run SageSaver serverless: Lambda package, CloudFormation template.",
    no_args_is_help=True,
)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("package")
def deploy_package_command(
    output_file: Annotated[
        Path, typer.Option("--output", help="Where to write the zip.", dir_okay=False)
    ] = Path("sagesaver-lambda.zip"),
    architecture: Annotated[
        str, typer.Option("--architecture", help="x86_64 or arm64 (Lambda's).")
    ] = "x86_64",
) -> None:
    """Build the Lambda deployment package (Python 3.12): SageSaver and the wheels the
    runtime lacks, for the chosen architecture. Reproducible: the same input gives the same
    bytes."""
    from sagesaver.deploy.package import build_package

    try:
        info = build_package(output_file, architecture)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    except RuntimeError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILURES) from exc
    typer.echo(
        f"{info.path}: {info.size_bytes / 1e6:.1f} MB, {info.files} files, sha256 {info.sha256}"
    )


CodeBucketOpt = Annotated[
    str, typer.Option("--code-bucket", help="S3 bucket holding the Lambda package.")
]
CodeKeyOpt = Annotated[str, typer.Option("--code-key", help="S3 key of the Lambda package.")]
EmailOpt = Annotated[
    list[str] | None,
    typer.Option("--email", help="Subscribe this address to notifications (repeatable)."),
]
ArchitectureOpt = Annotated[str, typer.Option("--architecture", help="x86_64 or arm64.")]


def _render(
    policy_file: Path | None,
    code_bucket: str,
    code_key: str,
    email: list[str] | None,
    architecture: str,
) -> dict[str, Any]:
    from sagesaver.deploy.template import render_template

    try:
        policy = load_policy(policy_file)
        return render_template(policy, code_bucket, code_key, email or [], architecture)
    except InputError as exc:
        raise _fail(str(exc)) from exc


@deploy_app.command("render")
def deploy_render_command(
    policy_file: PolicyOpt = None,
    code_bucket: CodeBucketOpt = "sagesaver-artifacts",
    code_key: CodeKeyOpt = "sagesaver-lambda.zip",
    email: EmailOpt = None,
    architecture: ArchitectureOpt = "x86_64",
) -> None:
    """Print the CloudFormation template (JSON): functions, schedules in their time zones,
    topic, ledger table, lifecycle configuration, logs, least-privilege roles."""
    template = _render(policy_file, code_bucket, code_key, email, architecture)
    typer.echo(json.dumps(template, indent=2))


StackOpt = Annotated[str, typer.Option("--stack-name", help="CloudFormation stack name.")]


def _check_stack_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,49}", name):
        raise _fail(
            f"--stack-name {name!r}: a letter, then letters, digits and '-', at most 50 "
            "characters (the function names add a suffix)"
        )


@deploy_app.command("apply")
def deploy_apply_command(
    stack_name: StackOpt = "sagesaver",
    template_file: Annotated[
        Path | None,
        typer.Option(
            "--template", help="Apply this template instead of rendering one.", dir_okay=False
        ),
    ] = None,
    policy_file: PolicyOpt = None,
    code_bucket: CodeBucketOpt = "sagesaver-artifacts",
    code_key: CodeKeyOpt = "sagesaver-lambda.zip",
    email: EmailOpt = None,
    architecture: ArchitectureOpt = "x86_64",
    region: Annotated[str | None, typer.Option("--region", "-r", help="Stack region.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Execute the change set.")] = False,
) -> None:
    """Show the change set that creates or updates the stack; execute it with --apply."""
    from sagesaver.aws.deploy import discard, execute, preview
    from sagesaver.aws.errors import AWS_ERRORS, scan_error

    _check_stack_name(stack_name)
    if template_file is not None:
        try:
            template = json.loads(template_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _fail(f"{template_file}: cannot read the template: {exc}") from exc
    else:
        template = _render(policy_file, code_bucket, code_key, email, architecture)
    aws = Aws()
    where = region or aws.default_region
    if not where:
        raise _fail("no region: pass --region or set AWS_DEFAULT_REGION")
    console = report.stdout_console()
    try:
        change_set = preview(aws, where, stack_name, template, {})
        console.print(
            f"{change_set.change_set_type} stack {stack_name} ({where}): "
            f"{len(change_set.changes)} change(s)",
            markup=False,
        )
        for change in change_set.changes:
            console.print(
                f"  {change['action']:<7} {change['logical_id']} ({change['type']})", markup=False
            )
        if change_set.status_reason:
            console.print(f"  {change_set.status_reason}", markup=False)
        if not apply:
            discard(aws, where, change_set)
            console.print("Dry run: add --apply to execute this change set.")
            return
        status = execute(aws, where, change_set)
    except AWS_ERRORS as exc:
        report.print_errors([scan_error(exc, where, "CloudFormation", stack_name)], console)
        raise typer.Exit(EXIT_FAILURES) from exc
    console.print(f"Stack {stack_name}: {status}", markup=False)
    raise typer.Exit(
        EXIT_OK if status.endswith("_COMPLETE") and "ROLLBACK" not in status else EXIT_FAILURES
    )


@deploy_app.command("delete")
def deploy_delete_command(
    stack_name: StackOpt = "sagesaver",
    region: Annotated[str | None, typer.Option("--region", "-r", help="Stack region.")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Delete the stack.")] = False,
) -> None:
    """Delete the stack (its ledger table is retained: it holds the backups)."""
    from sagesaver.aws.deploy import delete_stack
    from sagesaver.aws.errors import AWS_ERRORS, scan_error

    _check_stack_name(stack_name)
    aws = Aws()
    where = region or aws.default_region
    if not where:
        raise _fail("no region: pass --region or set AWS_DEFAULT_REGION")
    console = report.stdout_console()
    if not apply:
        console.print(f"Dry run: would delete stack {stack_name} in {where}; add --apply.")
        return
    try:
        status = delete_stack(aws, where, stack_name)
    except AWS_ERRORS as exc:
        report.print_errors([scan_error(exc, where, "DeleteStack", stack_name)], console)
        raise typer.Exit(EXIT_FAILURES) from exc
    console.print(f"Stack {stack_name}: {status}", markup=False)
    raise typer.Exit(EXIT_OK if status in ("DELETE_COMPLETE", "DOES_NOT_EXIST") else EXIT_FAILURES)


def _open_ledger(spec: str | None, read_only: bool = False) -> Ledger:
    """The ledger of ``--ledger``; with ``read_only``, a missing one reads as empty and no file
    is created."""
    from sagesaver.ledger import open_ledger

    try:
        return open_ledger(spec, read_only=read_only)
    except InputError as exc:
        raise _fail(str(exc)) from exc


@app.command("backups")
def backups_command(
    name: Annotated[str | None, typer.Argument(help="Only backups of this endpoint.")] = None,
    ledger_path: LedgerOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """List the backups taken before deletions."""
    found = _open_ledger(ledger_path, read_only=True).backups(name)
    rows = [
        {
            "id": b.id,
            "at": report.iso(b.at),
            "account": b.account,
            "region": b.region,
            "name": b.name,
            "models": len(b.document.get("models", [])),
            "scaling_policies": len(b.document.get("scaling", {}).get("policies", [])),
        }
        for b in found
    ]
    if output is Output.json:
        sys.stdout.write(json.dumps({"backups": rows}, indent=2) + "\n")
        return
    console = report.stdout_console()
    if not rows:
        console.print("No backups.")
    for row in rows:
        console.print(
            f"{row['at']}  {row['name']} ({row['region']}, {row['account']})  id {row['id']}  "
            f"{row['models']} model(s), {row['scaling_policies']} scaling polic(ies)",
            markup=False,
        )


def _hints(name: str, region: str | None) -> str:
    """Where SageSaver said it kept backups of ``name`` (tags on its endpoint configuration)."""
    from sagesaver.aws.endpoints import backup_hints
    from sagesaver.aws.errors import AWS_ERRORS

    aws = Aws()
    where = region or aws.default_region
    if where is None:
        return ""
    try:
        hints = backup_hints(aws, where, name)
    except AWS_ERRORS:
        return ""
    if not hints:
        return ""
    return "; SageSaver kept its backup in " + ", ".join(hints) + " (pass that --ledger)"


@app.command("restore")
def restore_command(
    name: Annotated[str, typer.Argument(help="The deleted endpoint's name.")],
    region: Annotated[str | None, typer.Option("--region", "-r", help="Its region.")] = None,
    backup_id: Annotated[
        str | None, typer.Option("--backup", help="A backup id (default: the newest).")
    ] = None,
    ledger_path: LedgerOpt = None,
    apply: Annotated[bool, typer.Option("--apply", help="Recreate (default: dry run).")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Recreate a deleted endpoint from its backup: models, configuration, endpoint with its
    tags, and auto scaling; whatever still exists is left as it is."""
    from sagesaver.aws.endpoints import RestoreRefused, restore
    from sagesaver.aws.errors import AWS_ERRORS, scan_error
    from sagesaver.ledger import Entry
    from sagesaver.model import ScanError

    ledger = _open_ledger(ledger_path, read_only=not apply)
    found = [b for b in ledger.backups(name, region) if backup_id in (None, b.id)]
    if not found:
        where = f" in {region}" if region else ""
        raise _fail(
            f"no backup of endpoint {name!r}{where} in {ledger.location}" + _hints(name, region)
        )
    regions = sorted({b.region for b in found})
    if backup_id is None and len(regions) > 1:
        raise _fail(f"{name!r} has backups in {', '.join(regions)}: pass --region")
    chosen = found[0]
    aws = Aws()
    errors = []
    try:
        done = restore(aws, chosen.document, apply)
    except RestoreRefused as exc:
        errors.append(ScanError(chosen.region, "restore", str(exc), name, "Refused"))
        done = []
    except AWS_ERRORS as exc:
        errors.append(scan_error(exc, chosen.region, "restore", name))
        done = []
    if apply and not errors:
        ledger.record(
            Entry(
                at=datetime.now(timezone.utc),
                account=chosen.account,
                region=chosen.region,
                kind="endpoint",
                resource=name,
                action="restore",
                rule="restore",
                reason=f"from backup {chosen.id}",
                hourly_cost_usd=None,
                dry_run=False,
                outcome="restored",
                backup_ref=chosen.id,
            )
        )
    if output is Output.json:
        document = {
            "backup": chosen.id,
            "region": chosen.region,
            "dry_run": not apply,
            "steps": done,
            "errors": [report.error_dict(e) for e in errors],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        console = report.stdout_console()
        console.print(
            f"Backup {chosen.id} ({chosen.region}, {report.iso(chosen.at)}):", markup=False
        )
        for line in done:
            console.print(f"  {line}", markup=False)
        if not apply:
            console.print("Dry run: add --apply to recreate.")
        report.print_errors(errors, console)
    raise typer.Exit(EXIT_FAILURES if errors else EXIT_OK)


@app.command("savings")
def savings_command(
    since: Annotated[
        str | None, typer.Option("--since", help="Count from this date (ISO 8601).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Also total by this tag (e.g. team).")] = "team",
    ledger_path: LedgerOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Hours each stopped or deleted resource stayed off, times its price, from the ledger."""
    from sagesaver.savings import off_intervals, totals_by

    start = _parse_at(since) if since else None
    now = datetime.now(timezone.utc)
    intervals = off_intervals(_open_ledger(ledger_path, read_only=True).entries(), now, start)
    groups = {"kind": "kind", "region": "region", f"tag:{by}": f"tag:{by}"}
    totals = {label: totals_by(intervals, key) for label, key in groups.items()}
    saved = round(sum(i.saved_usd or 0.0 for i in intervals), 2)
    hours = round(sum(i.hours for i in intervals), 2)
    if output is Output.json:
        document = {
            "since": report.iso(start) if start else None,
            "until": report.iso(now),
            "hours_off": hours,
            "saved_usd": saved,
            "unknown_price": sum(1 for i in intervals if i.saved_usd is None),
            "by": {
                label: {k: vars(v) for k, v in table.items()} for label, table in totals.items()
            },
            "resources": [
                {
                    "name": i.entry.resource,
                    "kind": i.entry.kind,
                    "region": i.entry.region,
                    "action": i.entry.action,
                    "from": report.iso(i.start),
                    "to": report.iso(i.end),
                    "hours": i.hours,
                    "saved_usd": i.saved_usd,
                }
                for i in intervals
            ],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console = report.stdout_console()
    console.print(f"Saved ${saved:,.2f} over {hours:,.1f} resource-hours off.")
    for label, table in totals.items():
        for key, value in table.items():
            unknown = f" ({value.unknown} without a price)" if value.unknown else ""
            console.print(
                f"  {label:<12} {key:<20} {value.hours:>10.1f} h  ${value.saved_usd:,.2f}{unknown}",
                markup=False,
            )


@app.command("permissions")
def permissions_command(
    capability: Annotated[
        list[str] | None,
        typer.Option(
            "--capability",
            "-c",
            help="scan, notify, schedule, lifecycle, enforce, restore, all-regions, "
            "live-prices (repeatable; default: all).",
        ),
    ] = None,
) -> None:
    """Print the IAM policy SageSaver needs (least privilege, read-only but sns:Publish)."""
    from sagesaver.permissions import CAPABILITIES, policy_document

    chosen = capability or list(CAPABILITIES)
    unknown = [c for c in chosen if c not in CAPABILITIES]
    if unknown:
        raise _fail(f"--capability: unknown {', '.join(unknown)}; known: {', '.join(CAPABILITIES)}")
    typer.echo(policy_document(chosen))


@app.command("version")
def version_command() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
