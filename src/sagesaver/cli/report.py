"""``sagesaver report`` and ``backtest``: the HTML or Markdown report, and what-if replays."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from sagesaver.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    AllRegionsOpt,
    FailOnCostOpt,
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
    cost_limit,
    err,
    exit_code,
    fail,
    make_pricer,
    open_ledger_or_fail,
    prepare,
    remembered_configs,
    show_progress,
)
from sagesaver.core.errors import InputError
from sagesaver.core.policy import load_policy
from sagesaver.files import write_private
from sagesaver.pipelines.scan import scan
from sagesaver.render import scan as report
from sagesaver.render.commands import render_backtest


class ReportFormat(str, Enum):
    """Formats of ``sagesaver report``."""

    html = "html"
    markdown = "markdown"


@app.command("report", short_help="A Markdown or HTML report: idle cost and savings.")
def report_command(
    html_file: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the self-contained HTML report here.",
            dir_okay=False,
        ),
    ] = None,
    output: Annotated[
        ReportFormat,
        typer.Option(
            "--output",
            "-o",
            metavar="[markdown|html]",
            help="Without --html: the format on stdout.",
        ),
    ] = ReportFormat.markdown,
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    ledger_path: LedgerOpt = None,
    owner_tag: Annotated[
        str,
        typer.Option("--owner-tag", metavar="KEY", help="The tag that names a resource's owner."),
    ] = "owner",
    backtest_days: Annotated[
        int | None,
        typer.Option("--backtest-days", metavar="DAYS", help="Add a backtest over this many days."),
    ] = None,
    offline_prices: OfflinePricesOpt = False,
    prices: PricesOpt = None,
    fail_on_cost: FailOnCostOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Where the money goes and what was saved: current idle cost by kind, region and owner,
    the most expensive idle resources, actions and savings over time, and a backtest; with a
    ledger an organisation run wrote to, that run's idle cost, acts and errors per account."""
    from sagesaver.render.report import render_html, render_markdown

    limit = cost_limit(fail_on_cost)
    if backtest_days is not None and not 1 <= backtest_days <= MAX_BACKTEST_DAYS:
        raise fail(f"--backtest-days {backtest_days}: must be from 1 to {MAX_BACKTEST_DAYS}")
    chosen = PriceChoice(prices)
    aws, policy, regions = prepare(policy_file, region, all_regions, profile, verbose, chosen)
    ledger = open_ledger_or_fail(ledger_path, read_only=True, policy=policy, aws=aws)
    entries, seen = ledger.entries(), ledger.seen()
    # The newest organisation run's summary, when the ledger holds one: its own section.
    organisation = next(iter(ledger.run_summaries(limit=1)), None)
    now = datetime.now(timezone.utc)
    with remembered_configs() as memory:  # the same configurations as `scan` remembers
        pricer = make_pricer(aws, offline_prices, chosen.file)
        result = scan(aws, regions, policy, now, pricer, show_progress, memory)
    backtest = None
    if backtest_days is not None:
        from sagesaver.pipelines.backtest import read_history, replay_history

        history = read_history(aws, regions, now, backtest_days, pricer, show_progress)
        replayed = replay_history(history, policy.endpoints)
        result.errors.extend(replayed.errors)
        backtest = replayed.to_document()
    if html_file is not None:
        page = render_html(result, entries, now, backtest, owner_tag, seen, organisation)
        try:
            write_private(html_file, page.encode("utf-8"))
        except OSError as exc:
            raise fail(f"--html {html_file}: cannot write: {exc}") from exc
        err.print(f"Report written to {html_file} ({len(page.encode()) / 1024:.0f} KB)")
    elif output is ReportFormat.html:
        sys.stdout.write(render_html(result, entries, now, backtest, owner_tag, seen, organisation))
    else:
        sys.stdout.write(
            render_markdown(result, entries, now, backtest, owner_tag, seen, organisation)
        )
    report.print_errors(result.errors)
    raise typer.Exit(exit_code(result, limit))


MAX_BACKTEST_DAYS = 455  # CloudWatch keeps hourly datapoints for 455 days


@app.command("backtest", short_help="Replay the endpoint policy over past metrics.")
def backtest_command(
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    all_regions: AllRegionsOpt = False,
    days: Annotated[
        int, typer.Option("--days", metavar="DAYS", help="How many days of history to replay.")
    ] = 30,
    compare_file: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            metavar="FILE",
            help="Replay this second policy too, side by side.",
            dir_okay=False,
        ),
    ] = None,
    output: OutputOpt = Output.table,
    offline_prices: OfflinePricesOpt = False,
    prices: PricesOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """What-if: replay the endpoint policy hour by hour over the Invocations history. Read-only.

    Which endpoints it would have flagged, deleted or spared, the instance-hours and dollars it
    would have saved, and how often it would have deleted an endpoint called again later.
    """
    from sagesaver.core.backtest import BacktestResult
    from sagesaver.pipelines.backtest import read_history, replay_history

    if not 1 <= days <= MAX_BACKTEST_DAYS:
        raise fail(f"--days {days}: must be from 1 to {MAX_BACKTEST_DAYS} (CloudWatch's retention)")
    chosen = PriceChoice(prices)
    aws, policy, regions = prepare(policy_file, region, all_regions, profile, verbose, chosen)
    other = None
    if compare_file is not None:
        try:
            other = load_policy(compare_file)
        except InputError as exc:
            raise fail(str(exc)) from exc
    now = datetime.now(timezone.utc)
    pricer = make_pricer(aws, offline_prices, chosen.file)
    history = read_history(aws, regions, now, days, pricer, show_progress)
    results: dict[str, BacktestResult] = {"policy": replay_history(history, policy.endpoints)}
    if other is not None:
        results["compare"] = replay_history(history, other.endpoints)
    labels = {"policy": str(policy_file or "default policy"), "compare": str(compare_file)}
    render_backtest(results, labels, days, len(regions), output.value)
    raise typer.Exit(EXIT_FAILURES if results["policy"].errors else EXIT_OK)
