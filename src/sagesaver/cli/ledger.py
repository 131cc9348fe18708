"""``sagesaver backups``, ``restore`` and ``savings``: what the ledger holds."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Annotated

import typer

from sagesaver.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    LedgerOpt,
    ListOutputOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    ProfileOpt,
    VerboseOpt,
    app,
    connect,
    fail,
    load_policy_or_fail,
    open_ledger_or_fail,
    parse_at,
)
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso, plural
from sagesaver.render import scan as report
from sagesaver.render.commands import render_restore, render_savings


@app.command("backups", short_help="List the backups taken before deletions.")
def backups_command(
    name: Annotated[
        str | None, typer.Argument(metavar="ENDPOINT", help="Only backups of this endpoint.")
    ] = None,
    ledger_path: LedgerOpt = None,
    policy_file: PolicyOpt = None,
    output: ListOutputOpt = Output.table,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """List the backups taken before deletions (in --ledger, else the policy's ledger)."""
    policy = load_policy_or_fail(policy_file)
    ledger = open_ledger_or_fail(
        ledger_path, read_only=True, policy=policy, profile=profile, verbose=verbose
    )
    from sagesaver.pipelines.parking_scale import is_snapshot

    # A scaled park's snapshot (``<endpoint>:scaled``: counts and bounds to put back) is no
    # backup, and restore never picks it: left out, counted.
    everything = ledger.backups(name)
    found = [b for b in everything if not is_snapshot(b)]
    snapshots = len(everything) - len(found)
    # A backup is of a deletion once the ledger records that deletion; until then (a run
    # stopped between the backup and the delete) it is pending: the next run confirms it or
    # forgets it.
    since = min((b.at for b in found), default=None)
    recorded = {e.backup_ref for e in ledger.entries(since) if e.backup_ref} if found else set()
    rows = [
        {
            "id": b.id,
            "at": iso(b.at),
            "account": b.account,
            "region": b.region,
            "name": b.name,
            "deletion": "recorded" if b.id in recorded else "pending",
            "models": len(b.document.get("models", [])),
            "scaling_policies": len(b.document.get("scaling", {}).get("policies", [])),
            # How its environment values are kept (sealed, clear, names-only, none); unsealed:
            # written by an earlier version.
            "environment": (b.seal or {}).get("environment", "unsealed"),
            "expires": iso(b.expires) if b.expires else None,
        }
        for b in found
    ]
    if output is Output.json:
        listed = {"backups": rows, "scaling_snapshots_left_out": snapshots}
        sys.stdout.write(json.dumps(listed, indent=2) + "\n")
        return
    if output is Output.csv:
        sys.stdout.write(report.rows_to_csv(rows))
        return
    console = report.stdout_console()
    if not rows:
        console.print("No backups.")
    for row in rows:
        console.print(
            f"{row['at']}  {row['name']} ({row['region']}, {row['account']})  id {row['id']}  "
            f"{plural(int(row['models']), 'model')}, "
            f"{plural(int(row['scaling_policies']), 'scaling policy')}, "
            f"environment {row['environment']}"
            + (f", expires {row['expires']}" if row["expires"] else "")
            + ("" if row["deletion"] == "recorded" else "  (its deletion is not confirmed yet)"),
            markup=False,
        )
    if snapshots:
        console.print(
            f"{plural(snapshots, 'scaling snapshot')} of endpoints parked by a schedule (their "
            "instances or copies at 0) not listed: no backup, restore never uses one; "
            "sagesaver schedule show lists the parked endpoints.",
            markup=False,
        )


@app.command("restore", short_help="Recreate a deleted endpoint from its backup.")
def restore_command(
    name: Annotated[str, typer.Argument(metavar="ENDPOINT", help="The deleted endpoint's name.")],
    region: Annotated[
        str | None, typer.Option("--region", "-r", metavar="REGION", help="Its region.")
    ] = None,
    backup_id: Annotated[
        str | None,
        typer.Option("--backup", metavar="ID", help="A backup id (default: the newest)."),
    ] = None,
    ledger_path: LedgerOpt = None,
    policy_file: PolicyOpt = None,
    apply: Annotated[bool, typer.Option("--apply", help="Recreate (default: dry run).")] = False,
    accept_unsealed: Annotated[
        bool,
        typer.Option(
            "--accept-unsealed",
            help="Restore a backup whose seal cannot be checked (written by an earlier "
            "version, or not under the ledger's key), after reading its dry run.",
        ),
    ] = False,
    output: OutputOpt = Output.table,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Recreate a deleted endpoint from its backup: models, configuration, endpoint with its
    tags, and auto scaling; whatever still exists is left as it is. Each step is recorded:
    run again, a restore that stopped half-way goes on where it stopped. A backup whose seal
    does not verify is refused (exit 2) before anything is created."""
    from sagesaver.core.sealing import BackupRefused
    from sagesaver.pipelines.restore import choose_backup, restore_backup

    policy = load_policy_or_fail(policy_file)
    aws = connect(profile, verbose)
    ledger = open_ledger_or_fail(ledger_path, read_only=not apply, policy=policy, aws=aws)
    try:
        backup = choose_backup(aws, ledger, name, region, backup_id)
    except InputError as exc:
        raise fail(str(exc)) from exc
    try:
        result = restore_backup(
            aws,
            ledger,
            backup,
            apply,
            datetime.now(timezone.utc),
            lambda: datetime.now(timezone.utc),
            accept_unsealed=accept_unsealed,
        )
    except BackupRefused as exc:
        raise fail(str(exc)) from exc
    for warning in result.warnings:  # on stderr: the JSON on stdout has them too
        sys.stderr.write(f"sagesaver: warning: {warning}\n")
    render_restore(result.document(), output.value)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)


@app.command("savings", short_help="What stopping and deleting saved, from the ledger.")
def savings_command(
    since: Annotated[
        str | None, typer.Option("--since", metavar="DATE", help="Count from this date (ISO 8601).")
    ] = None,
    by: Annotated[
        str, typer.Option("--by", metavar="KEY", help="Also total by this tag (e.g. team).")
    ] = "team",
    ledger_path: LedgerOpt = None,
    policy_file: PolicyOpt = None,
    output: OutputOpt = Output.table,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Hours each stopped or deleted resource stayed off, times its price, from the ledger."""
    policy = load_policy_or_fail(policy_file)
    from sagesaver.core.savings import off_intervals

    start = parse_at(since) if since else None
    now = datetime.now(timezone.utc)
    ledger = open_ledger_or_fail(
        ledger_path, read_only=True, policy=policy, profile=profile, verbose=verbose
    )
    intervals = off_intervals(ledger.entries(), now, start, ledger.seen())
    render_savings(intervals, start, now, by, output.value)
