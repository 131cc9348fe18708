"""Render a scan result as JSON, CSV or a rich table. Pure: no AWS, no clock."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only to print: the Lambda package does without it
    from rich.console import Console, Group
    from rich.table import Table

from sagesaver.core import model
from sagesaver.core.digest import cost_by_currency, unknown_price_reasons
from sagesaver.core.formats import (
    HOURS_PER_30_DAYS,
    iso,
    money,
    money_by_currency,
    plural,
    reasons_text,
)
from sagesaver.core.model import (
    Action,
    Decision,
    Kind,
    Recommendation,
    Resource,
    ScanError,
    ScanResult,
    Variant,
)
from sagesaver.core.partitions import currency_of
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
    if decision.price_date:
        item["price_date"] = decision.price_date
    if decision.idle and r.kind.value == "endpoint":
        item["last_activity_at"] = (
            iso(decision.last_activity_at) if decision.last_activity_at else None
        )
    if r.asynchronous:
        item["asynchronous"] = True
    if decision.recommendations:
        item["recommendations"] = [
            recommendation_dict(x, decision.cost_currency) for x in decision.recommendations
        ]
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


def recommendation_dict(recommendation: Recommendation, currency: str = "USD") -> dict[str, Any]:
    """The JSON object of one recommendation: kind, to, its ``hourly_saving`` (null: unknown)
    in ``currency`` (its resource's), ``hourly_saving_usd`` (the same in USD only, else null),
    evidence."""
    saving = recommendation.hourly_saving_usd  # in the resource's currency (a historic name)
    return {
        "kind": recommendation.kind,
        "to": recommendation.to,
        "hourly_saving": saving,
        "currency": currency,
        "hourly_saving_usd": saving if currency == "USD" else None,
        "evidence": recommendation.evidence,
    }


def instances_text(resource: Resource) -> str:
    """What a resource runs on (:func:`sagesaver.core.model.instances_text`); ``-`` when
    unknown."""
    return model.instances_text(resource) or "-"


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
    """The known hourly costs per currency (a currency with none known is left out)."""
    return {c: round(v, 4) for c, v in cost_by_currency(decisions).items()}


def _total(decisions: Sequence[Decision], currency: str) -> float | None:
    """The known hourly cost of ``decisions`` priced in ``currency``: None when there are some
    and none of their prices is known (unknown, never 0); 0 when there are none."""
    chosen = [d for d in decisions if d.cost_currency == currency]
    known = [d.hourly_cost for d in chosen if d.hourly_cost is not None]
    if not known:
        return None if chosen else 0.0
    return round(sum(known), 4)


def _month(hourly: float | None) -> float | None:
    return None if hourly is None else round(hourly * HOURS_PER_30_DAYS, 2)


def _unknown(decisions: Sequence[Decision], currency: str | None = None) -> int:
    return sum(
        1
        for d in decisions
        if d.hourly_cost is None and (currency is None or d.cost_currency == currency)
    )


def scan_currency(decisions: Sequence[Decision], regions: Sequence[str] = ()) -> str | None:
    """The one currency of a scan (its partition's: USD, or CNY in China); None when its
    resources are priced in several (then see ``costs``)."""
    found = {d.cost_currency for d in decisions} | {currency_of(r) for r in regions}
    if not found:
        return "USD"
    return found.pop() if len(found) == 1 else None


def summary(
    decisions: Sequence[Decision], errors: Sequence[ScanError], regions: Sequence[str] = ()
) -> dict[str, Any]:
    """Counts and money: what is idle, what it costs, what will be acted on.

    Money is per currency (``costs``: USD for ``aws``, CNY for ``aws-cn``), never added across
    currencies, and sums only known prices: an amount is null when none of the prices it sums
    is known (never 0), and each has the count of unknown prices beside it. ``currency`` is
    the scan's (``regions`` tell it when nothing was found); the amounts beside it
    (``idle_hourly_cost``...) are in it, null when unknown or when the scan has several
    currencies; the ``*_usd`` keys are the same amounts when the currency is USD, else null.
    """
    idle = [d for d in decisions if d.idle]
    acting = [d for d in decisions if d.action is not Action.KEEP]
    running_nb = [
        d for d in decisions if d.resource.kind.value == "notebook" and d.rule == "no-auto-stop"
    ]
    groups = {"idle": idle, "actionable": acting, "notebooks_without_auto_stop": running_nb}
    currencies = sorted({d.cost_currency for d in (*idle, *acting, *running_nb)})
    costs = {c: _currency_costs(groups, c) for c in currencies}
    currency = scan_currency(decisions, regions)

    def amount(group: str, month: bool = False) -> float | None:
        if currency is None:
            return None
        hourly = _total(groups[group], currency)
        return _month(hourly) if month else hourly

    def usd(value: float | None) -> float | None:
        return value if currency == "USD" else None

    table = bundled_table()
    sources = {d.price_source for d in decisions if d.hourly_cost is not None}
    unpriced = [d for d in acting if d.hourly_cost is None]
    left_alone = [d for d in idle if d.action is Action.KEEP]
    protected = [d for d in left_alone if d.protected]
    free = [d for d in left_alone if not d.protected and d.hourly_cost == 0]
    kept = [d for d in left_alone if not d.protected and d.hourly_cost != 0]
    idle_hourly, acting_hourly = amount("idle"), amount("actionable")
    nb_hourly = amount("notebooks_without_auto_stop")
    return {
        # What "wasting" means: idle resources SageSaver would act on (notify or delete), their
        # known cost per currency, and how many have no known price, with why.
        "wasting": {
            "resources": len(acting),
            "hourly": _sums(acting),
            "unknown_price": len(unpriced),
            "unknown_price_reasons": unknown_price_reasons(unpriced),
        },
        # Idle, but left alone: protected, costing nothing, or kept for another reason.
        "idle_left_alone": {
            "protected": len(protected),
            "protected_hourly": _sums(protected),
            "protected_unknown_price": _unknown(protected),
            "zero_cost": len(free),
            "kept": len(kept),
            "kept_rules": dict(sorted(Counter(d.rule for d in kept).items())),
        },
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
        "currency": currency,
        "idle_hourly_cost": idle_hourly,
        "idle_30_day_cost": amount("idle", month=True),
        "idle_with_unknown_cost": _unknown(idle),
        "actionable_hourly_cost": acting_hourly,
        "actionable_30_day_cost": amount("actionable", month=True),
        "actionable_with_unknown_cost": len(unpriced),
        "notebooks_without_auto_stop": len(running_nb),
        "notebooks_without_auto_stop_hourly_cost": nb_hourly,
        "notebooks_without_auto_stop_with_unknown_cost": _unknown(running_nb),
        # The same amounts when the currency is USD; null in any other (kept for compatibility).
        "idle_hourly_cost_usd": usd(idle_hourly),
        "idle_30_day_cost_usd": usd(amount("idle", month=True)),
        "actionable_hourly_cost_usd": usd(acting_hourly),
        "actionable_30_day_cost_usd": usd(amount("actionable", month=True)),
        "notebooks_without_auto_stop_hourly_cost_usd": usd(nb_hourly),
        "errors": len(errors),
        "price_sources": sorted(sources),
        "bundled_prices": f"{table.source} ({table.retrieved})",
    }


def _currency_costs(groups: dict[str, list[Decision]], currency: str) -> dict[str, Any]:
    """One currency's amounts of each group (null: none known), and its unknown prices."""
    out: dict[str, Any] = {}
    for name, decisions in groups.items():
        hourly = _total(decisions, currency)
        out[f"{name}_hourly"] = hourly
        if name != "notebooks_without_auto_stop":
            out[f"{name}_30_day"] = _month(hourly)
        out[f"{name}_unknown_price"] = _unknown(decisions, currency)
    return out


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
        "summary": summary(decisions, result.errors, result.regions),
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


def wasting_text(totals: dict[str, Any]) -> str:
    """What SageSaver would act on and what it costs (a :func:`summary`'s ``wasting``); an
    unknown price is never shown as 0."""
    wasting = totals["wasting"]
    count, hourly, unknown = wasting["resources"], wasting["hourly"], wasting["unknown_price"]
    if count == 0:
        return "nothing SageSaver would act on"
    if hourly:
        monthly = {c: round(v * HOURS_PER_30_DAYS, 2) for c, v in hourly.items()}
        cost = f"{money_by_currency(hourly, unit='/h')} = {money_by_currency(monthly)} per 30 days"
        if unknown:
            cost += f", plus {unknown} with an unknown price"
    else:
        cost = "an unknown amount: no price is known for any of them"
    line = f"{plural(count, 'idle resource')} SageSaver would act on, {cost}"
    if unknown:
        line += f" (unknown: {reasons_text(wasting['unknown_price_reasons'])})"
    return line


def known_cost_text(decisions: Sequence[Decision], unit: str = "") -> str:
    """The known cost of ``decisions`` per currency, plus how many have an unknown price and
    why; ``cost unknown (why)`` when none is known."""
    known = _sums(decisions)
    unknown = _unknown(decisions)
    why = f"({reasons_text(unknown_price_reasons(decisions))})"
    if not known:
        return f"cost unknown {why}"
    text = money_by_currency(known, unit=unit)
    return text + (f", plus {unknown} with an unknown price {why}" if unknown else "")


def left_alone_text(totals: dict[str, Any]) -> str | None:
    """The idle resources SageSaver leaves alone, apart from the waste it acts on (None when
    there are none)."""
    alone = totals["idle_left_alone"]
    parts = []
    if alone["protected"]:
        known, unknown = alone["protected_hourly"], alone["protected_unknown_price"]
        cost = f", {money_by_currency(known, unit='/h', empty='cost unknown')}"
        if known and unknown:
            cost += f", plus {unknown} with an unknown price"
        parts.append(f"{alone['protected']} protected{cost}")
    if alone["zero_cost"]:
        parts.append(f"{alone['zero_cost']} costing nothing")
    if alone["kept"]:
        rules = ", ".join(f"{rule} {n}" for rule, n in alone["kept_rules"].items())
        parts.append(f"{alone['kept']} kept ({rules})")
    return "; ".join(parts) if parts else None


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Flat rows as CSV, the columns in the order of the first row (empty: no output)."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# The columns a narrow terminal goes without, in this order: Region first when every row has
# the same (the title then says which), never when the rows differ in region. Name, account,
# cost, decision and reason always stay, and Region with them when the regions differ: when
# they do not fit, each resource is printed as a block instead (its region beside it).
_OPTIONAL = ("Status", "Instances", "Idle")
REASON_MIN_WIDTH = 28  # the longest words of the reasons fit whole


def _cells(d: Decision) -> dict[str, str]:
    r = d.resource
    cost = (
        money(d.hourly_cost, d.cost_currency, unknown="unknown")
        if d.idle or d.hourly_cost is not None
        else "-"
    )
    return {
        "Account": r.account,
        "Name": r.name,
        "Region": r.region,
        "Status": r.status,
        "Instances": instances_text(r),
        "Cost/h": cost,
        "Idle": f"{d.idle_hours:.1f} h" if d.idle_hours is not None else "-",
        "Decision": d.action.value,
        "Reason": d.reason,
    }


def table_columns(rows: Sequence[dict[str, str]], width: int) -> list[str] | None:
    """The columns that fit ``width`` with every name whole and the reason at least
    :data:`REASON_MIN_WIDTH` wide, leaving out those of :data:`_OPTIONAL` in order (Region
    before them when every row has the same); None when not even name, region (when the rows
    differ in it), decision and reason fit (then each resource is printed as a block)."""
    order = ["Account", "Name", "Region", "Status", "Instances", "Cost/h", "Idle", "Decision"]
    shown = [c for c in order if c != "Account" or len({r["Account"] for r in rows}) > 1]
    shown.append("Reason")

    def needed(columns: list[str]) -> int:
        widths = [
            REASON_MIN_WIDTH if c == "Reason" else max(len(c), *(len(r[c]) for r in rows))
            for c in columns
        ]
        return sum(widths) + 3 * len(columns) + 1  # "│ " before each, " │" at the end

    one_region = len({r["Region"] for r in rows}) == 1
    for column in ("Region", *_OPTIONAL) if one_region else _OPTIONAL:
        if needed(shown) <= width:
            return shown
        if column in shown:
            shown.remove(column)
    return shown if needed(shown) <= width else None


def _kind_blocks(title: str, decisions: Sequence[Decision]) -> Group:
    """One kind as blocks, for a terminal too narrow for its table: each resource's name on
    its own line, then its facts and reason, indented and wrapped."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts: list[Text | Padding] = [Text(title, style="italic")]
    for d in decisions:
        cells = _cells(d)
        facts = " · ".join(
            [cells["Region"], cells["Decision"], f"{cells['Cost/h']}/h", f"idle {cells['Idle']}"]
        )
        style = "bold yellow" if d.action is not Action.KEEP else ("yellow" if d.idle else "")
        if cells["Account"] and len({x.resource.account for x in decisions}) > 1:
            facts = f"{cells['Account']} · {facts}"
        parts.append(Text(cells["Name"], style=style))
        details = Text(f"{facts}; {cells['Instances']}\n{cells['Reason']}")
        parts.append(Padding(details, (0, 0, 0, 2)))
    return Group(*parts)


def _kind_table(title: str, decisions: Sequence[Decision], width: int) -> Table | Group:
    """One kind's table, fitted to ``width``: names whole, reasons wrapped, never an
    ellipsis; the columns that say least are left out when it is narrow (the title says
    which), and below that each resource is a block."""
    from rich.table import Table

    rows = [_cells(d) for d in decisions]
    shown = table_columns(rows, width)
    if shown is None:
        return _kind_blocks(title, decisions)
    left_out = [c for c in ("Region", *_OPTIONAL) if c not in shown]
    if left_out:
        where = f"; all in {rows[0]['Region']}" if "Region" in left_out else ""
        title += f" (narrow terminal: without {', '.join(left_out).lower()}{where})"
    table = Table(title=title, title_justify="left", expand=False)
    for column in shown:
        if column == "Reason":
            table.add_column(column, ratio=1, min_width=REASON_MIN_WIDTH, overflow="fold")
        elif column == "Instances":
            table.add_column(column, overflow="fold")
        else:
            right = column in ("Cost/h", "Idle")
            table.add_column(column, no_wrap=True, justify="right" if right else "left")
    for d, cells in zip(decisions, rows, strict=True):
        style = "bold yellow" if d.action is not Action.KEEP else ("yellow" if d.idle else "")
        table.add_row(*(cells[c] for c in shown), style=style)
    return table


def print_table(result: ScanResult, console: Console) -> None:
    """A table per resource kind, totals, then the errors."""

    decisions = sorted(result.decisions, key=_sort_key)
    for kind in Kind:
        rows = [d for d in decisions if d.resource.kind is kind]
        if not rows:
            continue
        console.print(_kind_table(f"{kind.heading} ({len(rows)})", rows, console.width))
    totals = summary(decisions, result.errors, result.regions)
    console.print(f"Wasting: {wasting_text(totals)}", markup=False)
    alone = left_alone_text(totals)
    if alone is not None:
        console.print(f"Idle, left alone: {alone}", markup=False)
    for d in decisions:
        for rec in d.recommendations:
            saving = (
                f", saves {money(rec.hourly_saving_usd, d.cost_currency)}/h"
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
        running = [d for d in decisions if d.resource.kind is Kind.NOTEBOOK]
        running = [d for d in running if d.rule == "no-auto-stop"]
        from rich.markup import escape

        console.print(
            "[bold]No auto-stop guard:[/bold] "
            f"{plural(totals['notebooks_without_auto_stop'], 'running notebook instance')}, "
            f"{escape(known_cost_text(running, '/h'))}",
            highlight=False,
        )
    print_errors(result.errors)


def print_errors(errors: Sequence[ScanError]) -> None:
    """One red line per error on stderr (stdout holds only the result): region, resource,
    operation, code and message."""
    console = stderr_console()
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


PIPED_WIDTH = 160  # the width of output piped or redirected, unless COLUMNS says otherwise


def stdout_console() -> Console:
    """A console for stdout: the terminal's width; when output is piped, ``COLUMNS`` if set,
    else :data:`PIPED_WIDTH` columns."""
    import os

    from rich.console import Console

    class Stdout(Console):
        def on_broken_pipe(self) -> None:
            """Rich exits 1 when the reader closed the pipe; the command decides instead
            (``sagesaver.cli.common.ClosedPipe``)."""
            self.quiet = True
            raise BrokenPipeError

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:  # as rich reads it, for a terminal too
        return Stdout(highlight=False, width=int(columns))
    console = Stdout(highlight=False)
    if not console.is_terminal:
        console = Stdout(highlight=False, width=PIPED_WIDTH)
    return console


def stderr_console() -> Console:
    """A console for stderr, its lines never wrapped (messages, not tables)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)
