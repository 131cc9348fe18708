"""``sagesaver studio``: idle Studio apps, and domains and spaces without idle shutdown."""

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
    Output,
    OutputOpt,
    PolicyOpt,
    RegionOpt,
    app,
    fail,
    open_ledger_or_fail,
    prepare,
)
from sagesaver.core.formats import iso
from sagesaver.render import scan as report


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
    from sagesaver.pipelines.studio import studio_run

    aws, policy, regions = prepare(policy_file, region, all_regions)
    ledger = None
    if policy.studio_apps.action == "delete":
        ledger = open_ledger_or_fail(ledger_path, read_only=not apply)
    if apply and policy.notify.sns_topic_arn is None:
        raise fail("--apply needs notify.sns_topic_arn in the policy (people are told first)")
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
            "generated_at": iso(now),
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
