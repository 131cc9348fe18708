"""Render a scan result as JSON, CSV or a rich table. Pure: no AWS, no clock."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only to print: the Lambda package does without it
    from rich.console import Console

from sagesaver.core.formats import HOURS_PER_30_DAYS, iso
from sagesaver.core.model import Action, Decision, ScanError, ScanResult
from sagesaver.core.pricing import bundled_table

CSV_FIELDS = [
    "kind",
    "name",
    "region",
    "account",
    "status",
    "instance_type",
    "instance_count",
    "hourly_cost_usd",
    "idle",
    "idle_hours",
    "decision",
    "rule",
    "reason",
    "arn",
]


def resource_dict(decision: Decision) -> dict[str, Any]:
    """The JSON object of one scanned resource."""
    r = decision.resource
    item: dict[str, Any] = {
        "kind": r.kind.value,
        "name": r.name,
        "arn": r.arn,
        "region": r.region,
        "account": r.account,
        "status": r.status,
        "instance_type": r.instance_type,
        "instance_count": r.instance_count,
        "hourly_cost_usd": decision.hourly_cost_usd,
        "idle": decision.idle,
        "idle_hours": decision.idle_hours,
        "decision": decision.action.value,
        "rule": decision.rule,
        "reason": decision.reason,
        "protected": decision.protected,
        "created": iso(r.created),
        "last_modified": iso(r.modified),
        "tags": dict(sorted(r.tags.items())),
    }
    if r.variants:
        item["variants"] = [
            {
                "name": v.name,
                "instance_type": v.instance_type,
                "instance_count": v.instance_count,
                "serverless": v.serverless,
            }
            for v in r.variants
        ]
    if r.kind.value == "notebook":
        item["lifecycle_config"] = r.lifecycle_config
    return item


def error_dict(error: ScanError) -> dict[str, Any]:
    """The JSON object of one error."""
    return {
        "account": error.account,
        "region": error.region,
        "operation": error.operation,
        "resource": error.resource,
        "code": error.code,
        "message": error.message,
    }


def summary(decisions: Sequence[Decision], errors: Sequence[ScanError]) -> dict[str, Any]:
    """Counts and money: what is idle, what it costs, what will be acted on."""
    idle = [d for d in decisions if d.idle]
    acting = [d for d in decisions if d.action is not Action.KEEP]
    idle_hourly = round(sum(d.hourly_cost_usd or 0.0 for d in idle), 4)
    acting_hourly = round(sum(d.hourly_cost_usd or 0.0 for d in acting), 4)
    running_nb = [
        d for d in decisions if d.resource.kind.value == "notebook" and d.rule == "no-auto-stop"
    ]
    table = bundled_table()
    return {
        "resources": len(decisions),
        "endpoints": sum(1 for d in decisions if d.resource.kind.value == "endpoint"),
        "notebooks": sum(1 for d in decisions if d.resource.kind.value == "notebook"),
        "idle": len(idle),
        "actions": {
            a.value: sum(1 for d in acting if d.action is a) for a in Action if a is not Action.KEEP
        },
        "idle_hourly_cost_usd": idle_hourly,
        "idle_30_day_cost_usd": round(idle_hourly * HOURS_PER_30_DAYS, 2),
        "idle_with_unknown_cost": sum(1 for d in idle if d.hourly_cost_usd is None),
        "actionable_hourly_cost_usd": acting_hourly,
        "actionable_30_day_cost_usd": round(acting_hourly * HOURS_PER_30_DAYS, 2),
        "notebooks_without_auto_stop": len(running_nb),
        "notebooks_without_auto_stop_hourly_cost_usd": round(
            sum(d.hourly_cost_usd or 0.0 for d in running_nb), 4
        ),
        "errors": len(errors),
        "price_source": f"{table.source} ({table.retrieved})",
    }


def _sort_key(decision: Decision) -> tuple[Any, ...]:
    return (
        decision.resource.kind.value,
        not decision.idle,
        -(decision.hourly_cost_usd or 0.0),
        decision.resource.region,
        decision.resource.name,
    )


def to_document(result: ScanResult) -> dict[str, Any]:
    """The JSON document of a scan."""
    decisions = sorted(result.decisions, key=_sort_key)
    return {
        "generated_at": iso(result.generated_at),
        "regions": result.regions,
        "resources": [resource_dict(d) for d in decisions],
        "summary": summary(decisions, result.errors),
        "errors": [error_dict(e) for e in result.errors],
    }


def to_json(result: ScanResult, extra: dict[str, Any] | None = None) -> str:
    """One JSON document (pretty-printed), with optional extra top-level keys."""
    document = to_document(result)
    if extra:
        document.update(extra)
    return json.dumps(document, indent=2, sort_keys=False)


def to_csv(result: ScanResult) -> str:
    """One row per resource, the columns of :data:`CSV_FIELDS`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for decision in sorted(result.decisions, key=_sort_key):
        writer.writerow(resource_dict(decision))
    return buffer.getvalue()


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Flat rows as CSV, the columns in the order of the first row (empty: no output)."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:,.3f}"


def print_table(result: ScanResult, console: Console) -> None:
    """A table per resource kind, totals, then the errors."""
    from rich.table import Table

    decisions = sorted(result.decisions, key=_sort_key)
    for kind, title in (("endpoint", "Real-time endpoints"), ("notebook", "Notebook instances")):
        rows = [d for d in decisions if d.resource.kind.value == kind]
        if not rows:
            continue
        table = Table(title=f"{title} ({len(rows)})", title_justify="left", expand=False)
        several_accounts = len({d.resource.account for d in rows}) > 1
        if several_accounts:
            table.add_column("Account", no_wrap=True)
        table.add_column("Name", overflow="fold", min_width=12)
        table.add_column("Region", no_wrap=True)
        table.add_column("Status", no_wrap=True)
        table.add_column("Instances", overflow="fold")
        table.add_column("USD/h", justify="right", no_wrap=True)
        table.add_column("Idle", justify="right", no_wrap=True)
        table.add_column("Decision", no_wrap=True)
        table.add_column("Reason", ratio=1, min_width=30)
        for d in rows:
            r = d.resource
            instances = (
                f"{r.instance_count} x {r.instance_type}"
                if r.instance_type and r.instance_count is not None
                else "-"
            )
            cost = _money(d.hourly_cost_usd) if d.idle or d.hourly_cost_usd is not None else "-"
            style = "bold yellow" if d.action is not Action.KEEP else ("yellow" if d.idle else "")
            table.add_row(
                *([r.account] if several_accounts else []),
                r.name,
                r.region,
                r.status,
                instances,
                cost,
                f"{d.idle_hours:.1f} h" if d.idle_hours is not None else "-",
                d.action.value,
                d.reason,
                style=style,
            )
        console.print(table)
    totals = summary(decisions, result.errors)
    console.print(
        f"[bold]Idle:[/bold] {totals['idle']} of {totals['resources']} resources, "
        f"wasting ${totals['idle_hourly_cost_usd']:,.2f}/h = "
        f"${totals['idle_30_day_cost_usd']:,.2f} per 30 days"
        + (
            f" ({totals['idle_with_unknown_cost']} with unknown price)"
            if totals["idle_with_unknown_cost"]
            else ""
        )
    )
    console.print(
        f"[bold]To act on:[/bold] {sum(totals['actions'].values())} resources, "
        f"${totals['actionable_hourly_cost_usd']:,.2f}/h = "
        f"${totals['actionable_30_day_cost_usd']:,.2f} per 30 days"
    )
    if totals["notebooks_without_auto_stop"]:
        console.print(
            f"[bold]No auto-stop guard:[/bold] {totals['notebooks_without_auto_stop']} running "
            f"notebook instance(s), ${totals['notebooks_without_auto_stop_hourly_cost_usd']:,.2f}/h"
        )
    print_errors(result.errors)


def print_errors(errors: Sequence[ScanError]) -> None:
    """One red line per error on stderr (stdout holds only the result): region, resource,
    operation, code and message."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    for error in errors:
        where = f" {error.resource}" if error.resource else ""
        code = f"{error.code} " if error.code else ""
        account = f"{error.account} " if error.account else ""
        console.print(
            f"[red]error[/red] {account}{error.region}{where}: {error.operation}: "
            f"{code}{error.message}",
            markup=True,
            highlight=False,
        )


def stdout_console() -> Console:
    """A console for stdout: the terminal's width, or 160 columns when output is piped."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    return console
