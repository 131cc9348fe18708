"""Render a scan result as JSON, CSV or a rich table. Pure: no AWS, no clock."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only to print: the Lambda package does without it
    from rich.console import Console

from sagesaver.core.digest import cost_by_currency
from sagesaver.core.formats import HOURS_PER_30_DAYS, iso, money, money_by_currency
from sagesaver.core.model import (
    Action,
    Decision,
    Recommendation,
    Resource,
    ScanError,
    ScanResult,
    Variant,
)
from sagesaver.core.pricing import bundled_table

CSV_FIELDS = [
    "kind",
    "name",
    "region",
    "account",
    "status",
    "instance_type",
    "instance_count",
    "hourly_cost",
    "currency",
    "price_source",
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
        "hourly_cost": decision.hourly_cost,
        "currency": decision.cost_currency,
        "price_source": decision.price_source,
        "hourly_cost_usd": decision.hourly_cost_usd,  # USD prices only; null for CNY
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
        item["variants"] = [_variant_dict(v) for v in r.variants]
    if decision.price_note:
        item["price_note"] = decision.price_note
    if r.asynchronous:
        item["asynchronous"] = True
    if decision.recommendations:
        item["recommendations"] = [recommendation_dict(x) for x in decision.recommendations]
    if r.kind.value == "notebook":
        item["lifecycle_config"] = r.lifecycle_config
    if r.parent is not None:
        item["endpoint"] = r.parent
    return item


def _variant_dict(variant: Variant) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": variant.name,
        "instance_type": variant.instance_type,
        "instance_count": variant.instance_count,
        "serverless": variant.serverless,
    }
    if variant.serverless:
        item["provisioned_concurrency"] = variant.provisioned_concurrency
        item["memory_mb"] = variant.memory_mb
    return item


def recommendation_dict(recommendation: Recommendation) -> dict[str, Any]:
    """The JSON object of one recommendation: kind, to, hourly_saving_usd, evidence."""
    return {
        "kind": recommendation.kind,
        "to": recommendation.to,
        "hourly_saving_usd": recommendation.hourly_saving_usd,
        "evidence": recommendation.evidence,
    }


def instances_text(resource: Resource) -> str:
    """What a resource runs on, for people: ``2 x ml.m5.large``, ``serverless, 2 provisioned
    x 4096 MB``, with ``(async)`` for an asynchronous endpoint; ``-`` when unknown."""
    parts = []
    for variant in resource.variants:
        if variant.serverless:
            parts.append(
                f"serverless, {variant.provisioned_concurrency} provisioned x "
                f"{variant.memory_mb or '?'} MB"
                if variant.provisioned_concurrency
                else "serverless (on demand)"
            )
    if resource.kind.value == "inference-component":
        copies = "?" if resource.instance_count is None else resource.instance_count
        parts.append(f"{copies} copies on {resource.parent}")
    if resource.instance_type and resource.instance_count is not None:
        parts.insert(0, f"{resource.instance_count} x {resource.instance_type}")
    text = "; ".join(parts) or "-"
    return f"{text} (async)" if resource.asynchronous else text


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


def _sums(decisions: Sequence[Decision]) -> dict[str, float]:
    return {c: round(v, 4) for c, v in cost_by_currency(decisions).items()}


def summary(decisions: Sequence[Decision], errors: Sequence[ScanError]) -> dict[str, Any]:
    """Counts and money: what is idle, what it costs, what will be acted on.

    Money is per currency (``costs``: USD for ``aws``, CNY for ``aws-cn``), never added across
    currencies; the ``*_usd`` keys add up the USD prices only.
    """
    idle = [d for d in decisions if d.idle]
    acting = [d for d in decisions if d.action is not Action.KEEP]
    running_nb = [
        d for d in decisions if d.resource.kind.value == "notebook" and d.rule == "no-auto-stop"
    ]
    idle_hourly, acting_hourly, nb_hourly = _sums(idle), _sums(acting), _sums(running_nb)
    currencies = sorted({*idle_hourly, *acting_hourly, *nb_hourly})
    costs = {
        c: {
            "idle_hourly": idle_hourly.get(c, 0.0),
            "idle_30_day": round(idle_hourly.get(c, 0.0) * HOURS_PER_30_DAYS, 2),
            "actionable_hourly": acting_hourly.get(c, 0.0),
            "actionable_30_day": round(acting_hourly.get(c, 0.0) * HOURS_PER_30_DAYS, 2),
            "notebooks_without_auto_stop_hourly": nb_hourly.get(c, 0.0),
        }
        for c in currencies
    }
    table = bundled_table()
    sources = {d.price_source for d in decisions if d.hourly_cost is not None}
    return {
        "resources": len(decisions),
        "endpoints": sum(1 for d in decisions if d.resource.kind.value == "endpoint"),
        "notebooks": sum(1 for d in decisions if d.resource.kind.value == "notebook"),
        "inference_components": sum(
            1 for d in decisions if d.resource.kind.value == "inference-component"
        ),
        "idle": len(idle),
        "actions": {
            a.value: sum(1 for d in acting if d.action is a) for a in Action if a is not Action.KEEP
        },
        "costs": costs,
        "idle_hourly_cost_usd": idle_hourly.get("USD", 0.0),
        "idle_30_day_cost_usd": round(idle_hourly.get("USD", 0.0) * HOURS_PER_30_DAYS, 2),
        "idle_with_unknown_cost": sum(1 for d in idle if d.hourly_cost is None),
        "actionable_hourly_cost_usd": acting_hourly.get("USD", 0.0),
        "actionable_30_day_cost_usd": round(acting_hourly.get("USD", 0.0) * HOURS_PER_30_DAYS, 2),
        "notebooks_without_auto_stop": len(running_nb),
        "notebooks_without_auto_stop_hourly_cost_usd": nb_hourly.get("USD", 0.0),
        "errors": len(errors),
        "price_sources": sorted(sources),
        "bundled_prices": f"{table.source} ({table.retrieved})",
    }


def _sort_key(decision: Decision) -> tuple[Any, ...]:
    return (
        decision.resource.kind.value,
        not decision.idle,
        decision.cost_currency,
        -(decision.hourly_cost or 0.0),
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


def _per_30_days(totals: dict[str, Any], key: str) -> str:
    hourly = {c: v[f"{key}_hourly"] for c, v in totals["costs"].items()}
    monthly = {c: v[f"{key}_30_day"] for c, v in totals["costs"].items()}
    return f"{money_by_currency(hourly, unit='/h')} = {money_by_currency(monthly)} per 30 days"


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Flat rows as CSV, the columns in the order of the first row (empty: no output)."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def print_table(result: ScanResult, console: Console) -> None:
    """A table per resource kind, totals, then the errors."""
    from rich.table import Table

    decisions = sorted(result.decisions, key=_sort_key)
    for kind, title in (
        ("endpoint", "Real-time endpoints"),
        ("inference-component", "Inference components"),
        ("notebook", "Notebook instances"),
        ("training-job", "Training jobs (warm pools, long runs)"),
        ("processing-job", "Processing jobs (long runs)"),
        ("hyperpod-cluster", "HyperPod clusters"),
    ):
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
        table.add_column("Cost/h", justify="right", no_wrap=True)
        table.add_column("Idle", justify="right", no_wrap=True)
        table.add_column("Decision", no_wrap=True)
        table.add_column("Reason", ratio=1, min_width=30)
        for d in rows:
            r = d.resource
            instances = instances_text(r)
            cost = (
                money(d.hourly_cost, d.cost_currency)
                if d.idle or d.hourly_cost is not None
                else "-"
            )
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
        f"wasting {_per_30_days(totals, 'idle')}"
        + (
            f" ({totals['idle_with_unknown_cost']} with unknown price)"
            if totals["idle_with_unknown_cost"]
            else ""
        )
    )
    console.print(
        f"[bold]To act on:[/bold] {sum(totals['actions'].values())} resources, "
        f"{_per_30_days(totals, 'actionable')}"
    )
    for d in decisions:
        for rec in d.recommendations:
            saving = (
                f", saves ${rec.hourly_saving_usd:,.2f}/h"
                if rec.hourly_saving_usd is not None
                else ""
            )
            target = f" to {rec.to}" if rec.to else ""
            console.print(
                f"[bold]Recommendation[/bold] {d.resource.name} ({d.resource.region}): "
                f"{rec.kind}{target}{saving}: {rec.evidence}",
                highlight=False,
            )
    if totals["notebooks_without_auto_stop"]:
        console.print(
            f"[bold]No auto-stop guard:[/bold] {totals['notebooks_without_auto_stop']} running "
            "notebook instance(s), "
            + money_by_currency(
                {c: v["notebooks_without_auto_stop_hourly"] for c, v in totals["costs"].items()},
                unit="/h",
            )
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
