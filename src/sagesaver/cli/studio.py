"""``sagesaver studio``: idle Studio apps, and domains and spaces without idle shutdown;
``sagesaver studio configure``: Studio's own idle shutdown set where it is missing."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from sagesaver.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    AllRegionsOpt,
    ChangesApplyOpt,
    LedgerOpt,
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
    fail,
    load_policy_or_fail,
    make_pricer,
    open_ledger_or_fail,
    prepare,
)
from sagesaver.core.errors import InputError
from sagesaver.render.commands import render_studio, render_studio_configure

# A group whose own run is ``sagesaver studio [options]`` (as before it had subcommands).
studio_app = typer.Typer(no_args_is_help=False)
app.add_typer(
    studio_app,
    name="studio",
    short_help="Find and delete idle SageMaker Studio apps.",
    invoke_without_command=True,
)


@studio_app.callback(invoke_without_command=True)
def studio_command(
    ctx: typer.Context,
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Delete idle apps (default: dry run).")
    ] = False,
    ledger_path: LedgerOpt = None,
    output: OutputOpt = Output.table,
    offline_prices: OfflinePricesOpt = False,
    prices: PricesOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Idle SageMaker Studio apps (JupyterLab, Code Editor, KernelGateway, JupyterServer), and
    domains and spaces without built-in idle shutdown. Deletes idle apps with --apply and
    studio_apps.action: delete (the space's storage is kept). `studio configure` sets
    Studio's own idle shutdown where it is missing."""
    if ctx.invoked_subcommand is not None:
        return
    from sagesaver.pipelines.studio import studio_run

    chosen = PriceChoice(prices)
    aws, policy, regions = prepare(policy_file, region, all_regions, profile, verbose, chosen)
    ledger = None
    if policy.studio_apps.action == "delete":
        ledger = open_ledger_or_fail(ledger_path, read_only=not apply, policy=policy)
    if apply and not policy.notify.can_announce:
        raise fail(
            "--apply needs notify.sns_topic_arn or notify.channels in the policy "
            "(people are told first)"
        )
    now = datetime.now(timezone.utc)
    pricer = make_pricer(aws, offline_prices, chosen.file)
    result = studio_run(aws, regions, policy, now, apply, ledger, pricer)
    render_studio(result.document(), output.value)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


@studio_app.command(
    "configure", short_help="Set Studio's built-in idle shutdown where it is missing."
)
def studio_configure_command(
    idle_minutes: Annotated[
        int,
        typer.Option(
            "--idle-minutes",
            metavar="N",
            help="Idle time-out to set, in minutes (60 to 525600).",
        ),
    ],
    min_minutes: Annotated[
        int | None,
        typer.Option(
            "--min-minutes",
            metavar="N",
            help="Shortest time-out users may choose (domains only).",
        ),
    ] = None,
    max_minutes: Annotated[
        int | None,
        typer.Option(
            "--max-minutes",
            metavar="N",
            help="Longest time-out users may choose (domains only).",
        ),
    ] = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            metavar="[domains|profiles|spaces|all]",
            help="Which resources to configure.",
        ),
    ] = "all",
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    apply: ChangesApplyOpt = False,
    output: OutputOpt = Output.table,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Set SageMaker Studio's built-in idle shutdown (AppLifecycleManagement.IdleSettings)
    on the domains, user profiles and spaces that lack it, for the JupyterLab and Code
    Editor apps studio_apps.app_types selects. A resource that has it, or whose domain's
    default has it, is kept; profiles and spaces studio_apps leaves out, and resources with
    its protect tag, are not touched. Dry run by default; --apply makes the changes."""
    from sagesaver.pipelines.studio_configure import (
        check_request,
        chosen_app_types,
        studio_configure,
    )

    try:
        request = check_request(idle_minutes, min_minutes, max_minutes, scope)
    except InputError as exc:
        raise fail(str(exc)) from exc
    try:  # the policy's app types, before any AWS call
        chosen_app_types(load_policy_or_fail(policy_file))
    except InputError as exc:
        raise fail(str(exc)) from exc
    aws, policy, regions = prepare(policy_file, region, all_regions, profile, verbose)
    now = datetime.now(timezone.utc)
    result = studio_configure(aws, regions, policy, request, now, apply)
    render_studio_configure(result.document(), output.value)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)
