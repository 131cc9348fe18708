"""``sagesaver scan``, ``run`` and ``demo``: find idle resources, act on them, or watch it all
on a simulator."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from sagesaver.cli.common import (
    DEFAULT_ROLE_NAME,
    EXIT_FAILURES,
    EXIT_OK,
    AccountsOpt,
    AllRegionsOpt,
    ExternalIdOpt,
    FailOnCostOpt,
    LedgerOpt,
    ListOutputOpt,
    LivePricesOpt,
    OfflinePricesOpt,
    OrganizationOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    PriceChoice,
    PricesOpt,
    ProfileOpt,
    RegionOpt,
    RoleNameOpt,
    VerboseOpt,
    app,
    cost_limit,
    exit_code,
    fail,
    fan_out_requested,
    make_pricer,
    open_ledger_or_fail,
    prepare,
    print_result,
    run_fan_out,
    scan_with_fan_out,
    told_if_cut,
)


@app.command("scan", short_help="Find idle resources and what they cost (read-only).")
def scan_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    output: ListOutputOpt = Output.table,
    offline_prices: OfflinePricesOpt = False,
    prices: PricesOpt = None,
    live_prices: LivePricesOpt = False,
    accounts: AccountsOpt = None,
    organization: OrganizationOpt = False,
    role_name: RoleNameOpt = DEFAULT_ROLE_NAME,
    external_id: ExternalIdOpt = None,
    fail_on_cost: FailOnCostOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Find idle endpoints and unguarded notebook instances, and what they cost. Read-only."""
    limit = cost_limit(fail_on_cost)
    fan_out_requested(accounts, organization, role_name, external_id)
    chosen = PriceChoice(prices)
    aws, policy, regions = prepare(
        policy_file, region, all_regions, profile, verbose, chosen, external_id
    )
    now = datetime.now(timezone.utc)
    result = scan_with_fan_out(
        aws,
        regions,
        policy,
        now,
        make_pricer(aws, offline_prices, chosen.file),
        accounts,
        organization,
        role_name,
    )
    print_result(result, output)
    raise typer.Exit(exit_code(result, limit))


@app.command("run", short_help="Scan, notify, and act on idle endpoints (--apply).")
def run_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Carry the decisions out (default: dry run).")
    ] = False,
    output: ListOutputOpt = Output.table,
    offline_prices: OfflinePricesOpt = False,
    prices: PricesOpt = None,
    live_prices: LivePricesOpt = False,
    ledger_path: LedgerOpt = None,
    accounts: AccountsOpt = None,
    organization: OrganizationOpt = False,
    role_name: RoleNameOpt = DEFAULT_ROLE_NAME,
    external_id: ExternalIdOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Scan, then carry out the decisions: one SNS digest of the idle endpoints, and with
    action 'delete', grace-period tags and deletion with a backup; with
    jobs.warm_pools.action 'release', idle warm pools of training jobs are ended.

    Without --apply nothing is changed or sent: the digest is printed instead.
    """
    from sagesaver.pipelines.enforce import enforce_and_notify, run_document
    from sagesaver.pipelines.kinds import acting_problem
    from sagesaver.render.commands import render_run

    fan_out = fan_out_requested(accounts, organization, role_name, external_id)
    chosen = PriceChoice(prices)
    aws, policy, regions = prepare(
        policy_file, region, all_regions, profile, verbose, chosen, external_id
    )
    # the CLI always has a ledger (--ledger, the policy's, else the default file)
    problem = acting_problem(policy, apply, ledger_path or policy.ledger or "default")
    if problem:
        raise fail(problem)
    # The ledger keeps the announcements and which digest went out last (an unchanged idle set
    # is not re-sent every run). A dry run reads it, but never creates one.
    ledger = open_ledger_or_fail(ledger_path, read_only=not apply, policy=policy, aws=aws)
    now = datetime.now(timezone.utc)
    pricer = make_pricer(aws, offline_prices, chosen.file)
    if fan_out:  # the organisation run's own stages (the organisation stack runs them too)
        result, done = run_fan_out(
            aws, regions, policy, now, pricer, apply, ledger, accounts, organization, role_name
        )
    else:
        result = scan_with_fan_out(aws, regions, policy, now, pricer, None, False, role_name)
        done = enforce_and_notify(aws, result, policy, now, apply, ledger)
    with told_if_cut(result):
        render_run(result, run_document(done, apply), output.value)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


@app.command("demo", short_help="Run the whole job on an embedded AWS simulator.")
def demo_command(
    output: OutputOpt = Output.table,
) -> None:
    """Run scan and run against an embedded AWS simulator (moto) seeded with a sample fleet."""
    try:
        from sagesaver.demo.run import run_demo
    except ImportError as exc:  # moto is an optional dependency
        raise fail(
            f"the demo needs the simulator: pip install 'sagesaver[demo]' ({exc.name} missing)"
        ) from exc
    raise typer.Exit(run_demo(output.value))
