"""The ``sagesaver`` command.

Exit codes: 0 success, 1 some resources or regions failed, 2 bad input (nothing changed).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_cache_dir
from rich.console import Console

from sagesaver import __version__, report
from sagesaver.aws.session import Aws
from sagesaver.errors import InputError
from sagesaver.policy import Policy, load_policy
from sagesaver.pricing import Pricer
from sagesaver.run import ScanResult, notify_idle, resolve_regions, scan

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT = 0, 1, 2

app = typer.Typer(
    name="sagesaver",
    help="Find idle Amazon SageMaker resources, show what they cost, and stop them safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
        chosen = resolve_regions(aws, regions or [], all_regions, policy)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    return aws, policy, chosen


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
) -> None:
    """Find idle endpoints and unguarded notebook instances, and what they cost. Read-only."""
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    now = datetime.now(timezone.utc)
    result = scan(aws, regions, policy, now, _pricer(aws, live_prices), _progress)
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
) -> None:
    """Scan, then carry out the decisions: one SNS digest of the idle endpoints.

    Without --apply nothing is sent: the digest is printed instead.
    """
    aws, policy, regions = _prepare(policy_file, region, all_regions)
    if apply and policy.endpoints.action == "notify" and policy.notify.sns_topic_arn is None:
        raise _fail("--apply with action 'notify' needs notify.sns_topic_arn in the policy")
    now = datetime.now(timezone.utc)
    result = scan(aws, regions, policy, now, _pricer(aws, live_prices), _progress)
    outcome = notify_idle(aws, result, policy, apply)
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
                "notifications": notifications,
                "message_ids": outcome.message_ids,
            },
        )
    else:
        _print_result(result, output)
        console = report.stdout_console()
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


@app.command("permissions")
def permissions_command(
    capability: Annotated[
        list[str] | None,
        typer.Option(
            "--capability",
            "-c",
            help="scan, notify, all-regions, live-prices (repeatable; default: all).",
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
