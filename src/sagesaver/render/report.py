"""A self-contained HTML report (and a compact Markdown digest) of a scan and the ledger.

Pure: no AWS, no clock (``now`` is passed in), no JavaScript, nothing fetched over the network.
The HTML is one file: inline CSS (light and dark colour schemes, print rules) and inline SVG
charts, each with a ``<figcaption>``, an accessible name (``role="img"``, ``<title>``,
``<desc>``) and a table of the same numbers. Every string that comes from the data is escaped.
The same inputs always give the same output.

The figures are computed in :mod:`sagesaver.render.report_data`, the charts drawn in
:mod:`sagesaver.render.charts`; this module assembles the page and the digest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import Any

from sagesaver.core.formats import (
    HOURS_PER_30_DAYS,
    fmt_idle,
    iso,
    money,
    money_by_currency,
    plural,
)
from sagesaver.core.model import Decision, ScanResult
from sagesaver.core.records import Entry
from sagesaver.render.charts import (
    CSS,
    _e,
    _Ids,
    _num,
    _table,
    bar_chart,
    nice_ticks,
    tick_decimals,
    time_chart,
)
from sagesaver.render.report_data import (
    _CURRENCY,
    Day,
    _code,
    _in_currency,
    _owner,
    _usd,
    headline,
    idle_cost_by,
    parked_hours,
    recommendations,
    report_currency,
    savings_by_day,
    top_idle,
    with_unknown,
)
from sagesaver.render.report_organisation import (
    SummaryRecord,
    organisation_html,
    organisation_markdown,
)
from sagesaver.render.scan import instances_text

# Day, _Ids, headline, idle_cost_by, nice_ticks, savings_by_day, tick_decimals and time_chart
# live in report_data.py and charts.py: re-exported for the tests that import them from here.
__all__ = [
    "Day",
    "_Ids",
    "headline",
    "idle_cost_by",
    "nice_ticks",
    "render_html",
    "render_markdown",
    "savings_by_day",
    "tick_decimals",
    "time_chart",
]

# --------------------------------------------------------------------------- HTML pieces


def _other_currencies(h: dict[str, Any]) -> str:
    """What the ledger saved in currencies other than the report's (never added to it)."""
    others = {c: v for c, v in h["saved_by_currency"].items() if c != h["currency"]}
    return money_by_currency(others) if others else ""


def _own(amount: float | None, currency: str) -> str:
    """An amount in its own currency (``unknown`` for None)."""
    return money(amount, currency, unknown="unknown")


def _instances(decision: Decision) -> str:
    return instances_text(decision.resource).replace(" x ", " × ")


def _recommendations_table(scan: ScanResult) -> str:
    found = recommendations(scan)
    if not found:
        return '<p class="note">No recommendations.</p>'
    head = "".join(
        f'<th scope="col" class="num">{_e(h)}</th>'
        if h.startswith("Saves")
        else f'<th scope="col">{_e(h)}</th>'
        for h in (
            "Name",
            "Region",
            "Now",
            "Recommendation",
            "Saves per hour",
            "Saves per 30 days",
            "Evidence",
        )
    )
    rows = []
    for d, rec in found:
        saving = rec.hourly_saving_usd  # in the resource's currency
        month = None if saving is None else saving * HOURS_PER_30_DAYS
        currency = d.cost_currency
        what = rec.kind + (f" to {rec.to}" if rec.to else "")
        rows.append(
            f'<tr data-name="{_e(d.resource.name)}" data-kind="{_e(rec.kind)}">'
            f'<th scope="row">{_e(d.resource.name)}</th>'
            f'<td class="nowrap">{_e(d.resource.region)}</td>'
            f"<td>{_e(_instances(d))}</td><td>{_e(what)}</td>"
            f'<td class="num">{_e(_own(saving, currency))}</td>'
            f'<td class="num">{_e(_own(month, currency))}</td>'
            f'<td class="reason">{_e(rec.evidence)}</td></tr>'
        )
    return (
        f'<div class="wrap"><table id="recommendations"><caption>{len(found)} '
        "recommendations, the largest saving first</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _top_table(scan: ScanResult, owner_tag: str) -> str:
    top = top_idle(scan)
    if not top:
        return '<p class="note">No idle resources.</p>'
    accounts = len({d.resource.account for d in top}) > 1
    headers = ["#", "Name", "Kind", "Region", *(["Account"] if accounts else [])]
    per_hour, per_month = f"{_code()}/h", f"{_code()}/30 days"
    headers += [f"Owner ({owner_tag})", "Instances", per_hour, per_month, "Idle for"]
    headers += ["Decision", "Reason"]
    numeric = {"#", per_hour, per_month, "Idle for"}
    head = "".join(
        f'<th scope="col" class="num">{_e(h)}</th>'
        if h in numeric
        else f'<th scope="col">{_e(h)}</th>'
        for h in headers
    )
    rows = []
    for rank, d in enumerate(top, 1):
        r = d.resource
        cost = _in_currency(d)
        cells = [
            f'<td class="num">{rank}</td>',
            f'<th scope="row">{_e(r.name)}</th>',
            f'<td class="nowrap">{_e(r.kind.value)}</td>',
            f'<td class="nowrap">{_e(r.region)}</td>',
            *([f"<td>{_e(r.account)}</td>"] if accounts else []),
            f"<td>{_e(_owner(d, owner_tag))}</td>",
            f"<td>{_e(_instances(d))}</td>",
            f'<td class="num" data-column="hourly">{_e(_cost(d))}</td>',
            f'<td class="num" data-column="30-days">{_e(_cost(d, HOURS_PER_30_DAYS))}</td>',
            f'<td class="num">{"-" if d.idle_hours is None else fmt_idle(d.idle_hours)}</td>',
            f"<td>{_e(d.action.value)}</td>",
            f'<td class="reason">{_e(d.reason)}</td>',
        ]
        hourly = "" if cost is None else _num(cost)
        rows.append(f'<tr data-name="{_e(r.name)}" data-hourly="{hourly}">{"".join(cells)}</tr>')
    return (
        f'<div class="wrap"><table id="top-idle"><caption>The {len(top)} most expensive idle '
        f"resources, most expensive first</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _parked_table(entries: list[Entry], now: datetime, seen: Mapping[str, datetime] | None) -> str:
    """The endpoints schedules parked: parks, hours parked and what they saved."""
    rows = parked_hours(entries, now, seen)
    if not rows:
        return "<p>No endpoint has been parked by a schedule.</p>"
    body = [
        [
            (_e(r.name), False),
            (_e(r.region), False),
            (_e(r.schedule), False),
            (str(r.parks), True),
            (f"{r.hours:,.1f}", True),
            (_e(_own(r.saved, r.currency)), True),
        ]
        for r in rows
    ]
    headers = ["Endpoint", "Region", "Schedule", "Parks", "Hours parked", "Saved"]
    return _table(headers, body, caption="Parked outside working hours (confirmed parks)")


def _cost(decision: Decision, hours: float = 1.0) -> str:
    """A resource's cost for ``hours`` in its own currency (the report's, but for a resource
    of another partition); ``unknown`` when its price is."""
    cost = decision.hourly_cost
    return _own(None if cost is None else cost * hours, decision.cost_currency)


def _cell(value: Any) -> tuple[str, bool]:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return _e(_plain(value)), numeric


def _rows_table(rows: list[dict[str, Any]], caption: str) -> str:
    """A table of objects: one column per key, in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    body = [[_cell(row.get(c)) for c in columns] for row in rows]
    return _table([_e(c) for c in columns], body, caption=caption)


def _backtest(backtest: dict[str, Any]) -> str:
    """Any JSON-ready backtest document: its ``totals`` (numbers, or dicts of numbers such as
    ``{"a": .., "b": .., "difference": ..}``), lists of objects as tables (``endpoints``,
    ``errors``), and everything else as parameters."""
    parts = ['<section id="backtest"><h2>Backtest</h2>']
    totals = backtest.get("totals")
    if isinstance(totals, dict) and totals:
        if all(isinstance(v, dict) for v in totals.values()):
            rows = [{"total": k, **v} for k, v in totals.items()]
            parts.append(_rows_table(rows, "Backtest totals"))
        else:
            body = [[(_e(k), False), _cell(v)] for k, v in totals.items()]
            parts.append(_table(["Total", "Value"], body, caption="Backtest totals"))
    parameters: list[tuple[str, Any]] = []
    tables: list[str] = []
    for key, value in backtest.items():
        if key == "totals":
            continue
        if isinstance(value, dict):
            parameters.extend((f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append(_rows_table(value, f"Backtest {key}"))
        elif not (isinstance(value, list) and not value):
            parameters.append((key, value))
    if parameters:
        body = [[(_e(k), False), _cell(v)] for k, v in parameters]
        parts.append(_table(["Parameter", "Value"], body, caption="Backtest parameters"))
    parts.extend(tables)
    parts.append("</section>")
    return "".join(parts)


def _metric(name: str, label: str, value: float | None, shown: str, note: str = "") -> str:
    """A totals card; an unknown amount (None) has no ``data-value``, never 0."""
    extra = f'<div class="note">{_e(note)}</div>' if note else ""
    data = "" if value is None else f' data-value="{_num(value)}"'
    return f'<div><dt>{_e(label)}</dt><dd data-metric="{name}"{data}>{_e(shown)}</dd>{extra}</div>'


def _saved(h: dict[str, Any]) -> str:
    """What the ledger saved: ``nothing yet`` before any applied action, else the known amount
    in the report's currency (``unknown`` when no price is known)."""
    return "nothing yet" if not h["actions_applied"] else _usd(h["saved"])


def _wasting_metric(h: dict[str, Any]) -> str:
    """The card of what SageSaver would act on: how many, and their known cost per hour."""
    count, hourly, unknown = h["wasting"], h["wasting_hourly_cost"], h["wasting_with_unknown_cost"]
    if count == 0:
        shown = "nothing"
    elif hourly is None:
        shown = f"{plural(count, 'resource')}, an unknown amount"
    else:
        shown = f"{plural(count, 'resource')}, {_usd(hourly)}/h"
    note = f"{unknown} with an unknown price" if unknown and hourly is not None else ""
    return _metric("wasting", "Wasting (SageSaver would act on)", count, shown, note)


def render_html(
    scan: ScanResult,
    entries: list[Entry],
    now: datetime,
    backtest: dict[str, Any] | None = None,
    owner_tag: str = "owner",
    seen: Mapping[str, datetime] | None = None,
    organisation: SummaryRecord | None = None,
) -> str:
    """One self-contained HTML5 document: totals, charts, top idle resources, savings, in the
    scan's currency; with ``organisation`` (the ledger's newest run summary), its section."""
    token = _CURRENCY.set(report_currency(scan, entries))
    try:
        return _render_html(scan, entries, now, backtest, owner_tag, seen, organisation)
    finally:
        _CURRENCY.reset(token)


def _render_html(
    scan: ScanResult,
    entries: list[Entry],
    now: datetime,
    backtest: dict[str, Any] | None,
    owner_tag: str,
    seen: Mapping[str, datetime] | None = None,
    organisation: SummaryRecord | None = None,
) -> str:
    ids = _Ids()
    code = _code()
    h = headline(scan, entries, now, seen)
    unknown = h["idle_with_unknown_cost"]
    unknown_note = f"{unknown} idle with unknown price" if unknown else ""
    saved_note = f"{plural(h['actions_applied'], 'action')} applied, {h['saved_hours']:,.1f} h off"
    if h["saved_with_unknown_cost"]:
        saved_note += f", {h['saved_with_unknown_cost']} with unknown price"
    elsewhere = _other_currencies(h)
    if elsewhere:
        saved_note += f"; also {elsewhere} in another partition's currency"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f"<title>SageSaver report {_e(iso(now))}</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>SageSaver report</h1>",
        f'<p class="meta">Generated {_e(iso(now))}; scan of {_e(iso(scan.generated_at))} '
        f"in {_e(', '.join(scan.regions) or '-')}: {plural(h['resources'], 'resource')}, "
        f"{plural(h['errors'], 'error')}. Prices in {_e(h['currency'])}: "
        f"{_e(', '.join(h['price_sources']) or 'none known')}; bundled table: "
        f"{_e(h['bundled_prices'])}.</p></header><main>",
        '<section id="totals"><h2>Totals</h2><dl class="totals">',
        _wasting_metric(h),
        _metric(
            "left_alone",
            "Idle, left alone",
            h["left_alone"],
            f"{h['left_alone']}",
            h["left_alone_text"] or "",
        ),
        _metric(
            "idle_hourly_cost",
            "Idle cost per hour (all idle)",
            h["idle_hourly_cost"],
            _usd(h["idle_hourly_cost"]),
            unknown_note,
        ),
        _metric(
            "idle_30_day_cost",
            "Idle cost per 30 days (all idle)",
            h["idle_30_day_cost"],
            _usd(h["idle_30_day_cost"]),
        ),
        _metric("idle", "Idle resources", h["idle"], f"{h['idle']} of {h['resources']}"),
        _metric("saved", "Saved so far", h["saved"], _saved(h), saved_note),
        "</dl></section>",
        '<section id="idle-cost"><h2>Current idle cost</h2>',
        bar_chart(
            ids, "kind", f"Idle {code} per hour by resource kind", idle_cost_by(scan, "kind"), "/h"
        ),
        bar_chart(
            ids, "region", f"Idle {code} per hour by region", idle_cost_by(scan, "region"), "/h"
        ),
        bar_chart(
            ids,
            "owner",
            f"Idle {code} per hour by owner (tag {owner_tag})",
            idle_cost_by(scan, "owner", owner_tag),
            "/h",
        ),
        "</section>",
        '<section id="top"><h2>Most expensive idle resources</h2>',
        _top_table(scan, owner_tag),
        "</section>",
        '<section id="recommendations-section"><h2>Recommendations</h2>',
        _recommendations_table(scan),
        "</section>",
        '<section id="savings"><h2>Actions and savings over time</h2>',
        time_chart(ids, savings_by_day(entries, now, seen)),
        "</section>",
        '<section id="parked"><h2>Endpoints parked by schedules</h2>',
        _parked_table(entries, now, seen),
        "</section>",
    ]
    if organisation is not None:
        out.append(organisation_html(organisation))
    if backtest is not None:
        out.append(_backtest(backtest))
    out.append("</main></body></html>\n")
    return "\n".join(out)


# --------------------------------------------------------------------------- Markdown


def _md(value: object) -> str:
    """Text safe in a Markdown table cell: HTML-escaped, Markdown specials backslashed."""
    text = escape(str(value).replace("\n", " "), quote=False)
    return "".join("\\" + c if c in "\\`*_[]|#" else c for c in text)


def render_markdown(
    scan: ScanResult,
    entries: list[Entry],
    now: datetime,
    backtest: dict[str, Any] | None = None,
    owner_tag: str = "owner",
    seen: Mapping[str, datetime] | None = None,
    organisation: SummaryRecord | None = None,
) -> str:
    """A compact Markdown digest: totals, the top idle resources, and what was saved; with
    ``organisation`` (the ledger's newest run summary), its section."""
    token = _CURRENCY.set(report_currency(scan, entries))
    try:
        return _render_markdown(scan, entries, now, backtest, owner_tag, seen, organisation)
    finally:
        _CURRENCY.reset(token)


def _render_markdown(
    scan: ScanResult,
    entries: list[Entry],
    now: datetime,
    backtest: dict[str, Any] | None,
    owner_tag: str,
    seen: Mapping[str, datetime] | None = None,
    organisation: SummaryRecord | None = None,
) -> str:
    h = headline(scan, entries, now, seen)
    no_price = h["idle_hourly_cost"] is None
    idle_cost = (
        "an unknown amount"
        if no_price
        else f"{_usd(h['idle_hourly_cost'])}/h = {_usd(h['idle_30_day_cost'])} per 30 days"
    )
    lines = [
        f"## SageSaver report ({iso(now)})",
        "",
        f"- **Wasting:** {h['wasting_text']}",
        *([f"- **Idle, left alone:** {h['left_alone_text']}"] if h["left_alone_text"] else []),
        f"- **Idle:** {h['idle']} of {plural(h['resources'], 'resource')}, {idle_cost}"
        + (
            f" ({h['idle_with_unknown_cost']} with unknown price)"
            if h["idle_with_unknown_cost"] and not no_price
            else ""
        ),
        f"- **Saved so far:** {_saved(h)} "
        f"({plural(h['actions_applied'], 'action')} applied, {h['saved_hours']:,.1f} h off"
        + (
            f", {h['saved_with_unknown_cost']} with unknown price"
            if h["saved_with_unknown_cost"]
            else ""
        )
        + (f"; also {_other_currencies(h)}" if _other_currencies(h) else "")
        + ")",
    ]
    if h["errors"]:
        lines.append(f"- **Errors:** {h['errors']} (see the full report)")
    top = top_idle(scan)
    if top:
        lines += [
            "",
            f"### Top {plural(len(top), 'idle resource')}",
            "",
            f"| # | Name | Kind | Region | Owner ({_md(owner_tag)}) | {_code()}/h | "
            f"{_code()}/30 days |",
            "|---:|---|---|---|---|---:|---:|",
        ]
        for rank, d in enumerate(top, 1):
            r = d.resource
            lines.append(
                f"| {rank} | {_md(r.name)} | {_md(r.kind.value)} | {_md(r.region)} | "
                f"{_md(_owner(d, owner_tag))} | {_cost(d)} | {_cost(d, HOURS_PER_30_DAYS)} |"
            )
    found = recommendations(scan)
    if found:
        lines += [
            "",
            f"### Recommendations ({len(found)})",
            "",
            "| Name | Region | Recommendation | Saves per hour | Evidence |",
            "|---|---|---|---:|---|",
        ]
        for d, rec in found:
            what = rec.kind + (f" to {rec.to}" if rec.to else "")
            lines.append(
                f"| {_md(d.resource.name)} | {_md(d.resource.region)} | {_md(what)} | "
                f"{_own(rec.hourly_saving_usd, d.cost_currency)} | {_md(rec.evidence)} |"
            )
    days = [d for d in savings_by_day(entries, now, seen) if d.actions]
    if days:
        lines += ["", "### Actions applied", "", "| Day (UTC) | Actions | Saved so far |"]
        lines.append("|---|---:|---:|")
        lines += [
            f"| {d.day.isoformat()} | {d.actions} | {with_unknown(d.cumulative, d.unknown)} |"
            for d in days[-7:]
        ]
    parked = parked_hours(entries, now, seen)
    if parked:
        lines += ["", "### Endpoints parked by schedules", ""]
        lines += ["| Endpoint | Region | Schedule | Parks | Hours parked | Saved |"]
        lines.append("|---|---|---|---:|---:|---:|")
        lines += [
            f"| {_md(r.name)} | {_md(r.region)} | {_md(r.schedule)} | {r.parks} | "
            f"{r.hours:,.1f} | {_own(r.saved, r.currency)} |"
            for r in parked
        ]
    lines += organisation_markdown(organisation)
    if backtest is not None and isinstance(backtest.get("totals"), dict):
        lines += ["", "### Backtest", ""]
        for key, value in backtest["totals"].items():
            lines.append(f"- {_md(key)}: {_md(_plain(value))}")
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> str:
    """A scalar, or a short list, as text."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        shown = ", ".join(_plain(v) for v in value[:5])
        return shown + (f" … (+{len(value) - 5} more)" if len(value) > 5 else "")
    return json.dumps(value, sort_keys=True, default=str)
