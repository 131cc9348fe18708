"""``sagesaver studio``: idle Studio apps, and domains and spaces without idle shutdown."""

from __future__ import annotations

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
    PriceChoice,
    PricesOpt,
    ProfileOpt,
    RegionOpt,
    VerboseOpt,
    app,
    fail,
    make_pricer,
    open_ledger_or_fail,
    prepare,
)
from sagesaver.render.commands import render_studio


@app.command("studio", short_help="Find and delete idle SageMaker Studio apps.")
def studio_command(
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
    studio_apps.action: delete (the space's storage is kept)."""
    from sagesaver.pipelines.studio import studio_run

    chosen = PriceChoice(prices)
    aws, policy, regions = prepare(policy_file, region, all_regions, profile, verbose, chosen)
    ledger = None
    if policy.studio_apps.action == "delete":
        ledger = open_ledger_or_fail(ledger_path, read_only=not apply, policy=policy)
    if apply and policy.notify.sns_topic_arn is None:
        raise fail("--apply needs notify.sns_topic_arn in the policy (people are told first)")
    now = datetime.now(timezone.utc)
    pricer = make_pricer(aws, offline_prices, chosen.file)
    result = studio_run(aws, regions, policy, now, apply, ledger, pricer)
    render_studio(result.document(), output.value)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)
