"""``sagesaver backups``, ``restore`` and ``savings``: what the ledger holds."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Annotated

import typer

from sagesaver.aws.session import Aws
from sagesaver.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    LedgerOpt,
    Output,
    OutputOpt,
    app,
    fail,
    open_ledger_or_fail,
    parse_at,
)
from sagesaver.core.formats import iso
from sagesaver.render import scan as report


@app.command("backups")
def backups_command(
    name: Annotated[str | None, typer.Argument(help="Only backups of this endpoint.")] = None,
    ledger_path: LedgerOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """List the backups taken before deletions."""
    found = open_ledger_or_fail(ledger_path, read_only=True).backups(name)
    rows = [
        {
            "id": b.id,
            "at": iso(b.at),
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
    from sagesaver.core.model import ScanError
    from sagesaver.ledger import Entry

    ledger = open_ledger_or_fail(ledger_path, read_only=not apply)
    found = [b for b in ledger.backups(name, region) if backup_id in (None, b.id)]
    if not found:
        where = f" in {region}" if region else ""
        raise fail(
            f"no backup of endpoint {name!r}{where} in {ledger.location}" + _hints(name, region)
        )
    regions = sorted({b.region for b in found})
    if backup_id is None and len(regions) > 1:
        raise fail(f"{name!r} has backups in {', '.join(regions)}: pass --region")
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
        console.print(f"Backup {chosen.id} ({chosen.region}, {iso(chosen.at)}):", markup=False)
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
    from sagesaver.core.savings import off_intervals, totals_by

    start = parse_at(since) if since else None
    now = datetime.now(timezone.utc)
    intervals = off_intervals(
        open_ledger_or_fail(ledger_path, read_only=True).entries(), now, start
    )
    groups = {"kind": "kind", "region": "region", f"tag:{by}": f"tag:{by}"}
    totals = {label: totals_by(intervals, key) for label, key in groups.items()}
    saved = round(sum(i.saved_usd or 0.0 for i in intervals), 2)
    hours = round(sum(i.hours for i in intervals), 2)
    if output is Output.json:
        document = {
            "since": iso(start) if start else None,
            "until": iso(now),
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
                    "from": iso(i.start),
                    "to": iso(i.end),
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
