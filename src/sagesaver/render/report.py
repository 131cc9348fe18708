"""A self-contained HTML report (and a compact Markdown digest) of a scan and the ledger.

Pure: no AWS, no clock (``now`` is passed in), no JavaScript, nothing fetched over the network.
The HTML is one file: inline CSS (light and dark colour schemes, print rules) and inline SVG
charts, each with a ``<figcaption>``, an accessible name (``role="img"``, ``<title>``,
``<desc>``) and a table of the same numbers. Every string that comes from the data is escaped.
The same inputs always give the same output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from html import escape
from typing import Any

from sagesaver.core.formats import HOURS_PER_30_DAYS, fmt_idle, iso, money, money_by_currency
from sagesaver.core.model import Decision, Recommendation, ScanResult
from sagesaver.core.partitions import currency_of
from sagesaver.core.records import Entry
from sagesaver.core.savings import DONE_PREFIXES, OffInterval, off_intervals, saved_by_currency
from sagesaver.render.scan import instances_text, left_alone_text, summary, wasting_text

TOP_N = 10
NONE_LABEL = "(none)"
# The savings-over-time chart shows at most this many days (the latest ones); the cumulative
# figure still counts everything saved before them.
MAX_DAYS = 90
LABEL_CHARS = 28


# --------------------------------------------------------------------------- the numbers


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a label and its value."""

    label: str
    value: float


@dataclass(frozen=True)
class Day:
    """One day of the ledger: applied actions, saved that day (in the report's currency),
    and saved up to its end."""

    day: date
    actions: int
    saved: float
    cumulative: float


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float, places: int = 4) -> str:
    """A plain, locale-free number for ``data-value`` attributes."""
    text = f"{round(value, places):.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# The currency of the report being rendered: a scan covers one partition, so one currency
# (USD, or CNY in China); amounts in any other currency are left out of its sums.
_CURRENCY: ContextVar[str] = ContextVar("report_currency", default="USD")


def nice_ticks(peak: float, integer: bool = False, most: int = 5) -> list[float]:
    """0 and evenly spaced round values (steps of 1, 2 or 5 x 10^k; whole steps with
    ``integer``) up to the first at or above ``peak``: at most ``most`` ticks."""
    if peak <= 0:
        return [0.0, 1.0]
    raw = peak / (most - 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = float(max(1, math.ceil(step)))
    count = max(1, math.ceil(peak / step))
    while count * step < peak:  # float rounding: the top tick must not fall short
        count += 1
    return [i * step for i in range(count + 1)]


def tick_decimals(ticks: Sequence[float]) -> int:
    """Enough decimals that no two ticks read the same."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _usd(value: float | None, places: int = 2) -> str:
    """An amount in the report's currency (``$`` or ``¥``)."""
    return money(value, _CURRENCY.get(), places)


def _code() -> str:
    return _CURRENCY.get()


def _other_currencies(h: dict[str, Any]) -> str:
    """What the ledger saved in currencies other than the report's (never added to it)."""
    others = {c: v for c, v in h["saved_by_currency"].items() if c != h["currency"]}
    return money_by_currency(others) if others else ""


def report_currency(scan: ScanResult, entries: Sequence[Entry] = ()) -> str:
    """The currency of a report: its scan's (one partition), else its entries', else USD."""
    found = {d.cost_currency for d in scan.decisions}
    found |= {currency_of(r) for r in scan.regions}
    if not found:
        found = {e.currency for e in entries}
    return sorted(found)[0] if len(found) == 1 else "USD"


def _in_currency(decision: Decision) -> float | None:
    return decision.hourly_cost if decision.cost_currency == _CURRENCY.get() else None


def _applied(entry: Entry) -> bool:
    return not entry.dry_run and entry.outcome.startswith(DONE_PREFIXES)


def _idle(scan: ScanResult) -> list[Decision]:
    return [d for d in scan.decisions if d.idle]


def _owner(decision: Decision, owner_tag: str) -> str:
    return decision.resource.tags.get(owner_tag) or NONE_LABEL


def idle_cost_by(scan: ScanResult, group: str, owner_tag: str = "owner") -> list[Bar]:
    """Current idle cost per hour (the report's currency) by ``kind``, ``region`` or
    ``owner``, largest first."""
    sums: dict[str, float] = {}
    for decision in _idle(scan):
        if group == "kind":
            label = decision.resource.kind.value
        elif group == "region":
            label = decision.resource.region
        else:
            label = _owner(decision, owner_tag)
        sums[label] = sums.get(label, 0.0) + (_in_currency(decision) or 0.0)
    bars = [Bar(label, round(value, 4)) for label, value in sums.items()]
    return sorted(bars, key=lambda b: (-b.value, b.label))


def top_idle(scan: ScanResult, n: int = TOP_N) -> list[Decision]:
    """The ``n`` most expensive idle resources (unknown prices last)."""

    def key(d: Decision) -> tuple[Any, ...]:
        r = d.resource
        cost = _in_currency(d)
        return (cost is None, -(cost or 0.0), r.account, r.region, r.kind.value, r.name)

    return sorted(_idle(scan), key=key)[:n]


def _saved_until(intervals: Sequence[OffInterval], moment: datetime) -> float:
    total = 0.0
    for interval in intervals:
        cost = interval.entry.hourly_cost
        if cost is None or interval.currency != _CURRENCY.get() or interval.start >= moment:
            continue
        end = min(interval.end, moment)
        total += (end - interval.start).total_seconds() / 3600 * cost
    return total


def savings_by_day(entries: Sequence[Entry], now: datetime) -> list[Day]:
    """Per UTC day, from the first applied action to ``now``: actions applied, money saved.

    At most the last :data:`MAX_DAYS` days; ``cumulative`` of the last day is the total
    saved so far.
    """
    applied = [e for e in entries if _applied(e) and e.at <= now]
    if not applied:
        return []
    intervals = off_intervals(entries, now)
    counts: dict[date, int] = {}
    for entry in applied:
        day = entry.at.astimezone(timezone.utc).date()
        counts[day] = counts.get(day, 0) + 1
    first = min(counts)
    last = now.astimezone(timezone.utc).date()
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    days: list[Day] = []
    day = first
    previous = _saved_until(intervals, datetime.combine(first, time(), timezone.utc))
    while day <= last:
        end = min(datetime.combine(day + timedelta(days=1), time(), timezone.utc), now)
        cumulative = _saved_until(intervals, end)
        days.append(
            Day(day, counts.get(day, 0), round(cumulative - previous, 2), round(cumulative, 2))
        )
        previous = cumulative
        day += timedelta(days=1)
    return days


def headline(scan: ScanResult, entries: Sequence[Entry], now: datetime) -> dict[str, Any]:
    """The headline numbers: idle cost now, idle count, and what the ledger says was saved,
    in the report's currency (``saved_by_currency`` lists every currency the ledger has)."""
    totals = summary(scan.decisions, scan.errors)
    intervals = off_intervals(entries, now)
    currency = _CURRENCY.get()
    costs = totals["costs"].get(currency, {})
    saved_by = saved_by_currency(intervals)
    return {
        "currency": currency,
        "idle_hourly_cost": costs.get("idle_hourly", 0.0),
        "idle_30_day_cost": costs.get("idle_30_day", 0.0),
        "idle": totals["idle"],
        "resources": totals["resources"],
        "idle_with_unknown_cost": totals["idle_with_unknown_cost"],
        # What SageSaver would act on, and the idle resources it leaves alone (as the scan).
        "wasting": totals["wasting"]["resources"],
        "wasting_hourly_cost": totals["wasting"]["hourly"].get(currency),
        "wasting_with_unknown_cost": totals["wasting"]["unknown_price"],
        "wasting_text": wasting_text(totals),
        "left_alone": sum(totals["idle_left_alone"][k] for k in ("protected", "zero_cost", "kept")),
        "left_alone_text": left_alone_text(totals),
        "saved": saved_by.get(currency, 0.0),
        "saved_by_currency": saved_by,
        "saved_hours": round(sum(i.hours for i in intervals), 2),
        "saved_with_unknown_cost": sum(1 for i in intervals if i.saved is None),
        "actions_applied": sum(1 for e in entries if _applied(e)),
        "errors": totals["errors"],
        "price_sources": totals["price_sources"],
        "bundled_prices": totals["bundled_prices"],
    }


# --------------------------------------------------------------------------- HTML pieces

CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1f24; --muted: #4a5260;
  --card: #f3f5f8; --line: #c9ced6; --bar: #1f5fa8; --bar2: #a3410f; --grid: #dde1e7; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111418; --fg: #e9edf2; --muted: #b4bcc8; --card: #1c2128;
    --line: #3b4350; --bar: #7cb4ff; --bar2: #ffa66b; --grid: #2c333d; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 70rem; padding: 1.5rem; background: var(--bg);
  color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; border-bottom: 1px solid var(--line); }
p.meta, figcaption, .note { color: var(--muted); }
dl.totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(13rem, 1fr));
  gap: .75rem; margin: 1rem 0; }
dl.totals > div { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  padding: .75rem 1rem; }
dl.totals dt { color: var(--muted); font-size: .85rem; }
dl.totals dd { margin: 0; font-size: 1.5rem; font-weight: 650; }
dl.totals .note { font-size: .85rem; }
figure { margin: 1rem 0 1.5rem; }
figcaption { font-weight: 600; margin-bottom: .4rem; }
svg { display: block; width: 100%; max-width: 56rem; height: auto; }
svg text { fill: var(--fg); font-size: 12px; font-family: inherit; }
svg .bar { fill: var(--bar); }
svg .line { stroke: var(--bar2); fill: none; stroke-width: 2; }
svg .dot { fill: var(--bar2); }
svg .axis { stroke: var(--line); }
svg .grid { stroke: var(--grid); }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left;
  vertical-align: top; }
th { background: var(--card); }
td.num, th.num { text-align: right; white-space: nowrap; }
#top-idle { font-size: .9rem; }
#top-idle th[scope=row] { font-weight: 600; background: none; }
.nowrap { white-space: nowrap; }
td.reason { min-width: 12rem; }
caption { text-align: left; color: var(--muted); padding: .25rem 0; }
details summary { cursor: pointer; color: var(--muted); }
.wrap { overflow-x: auto; }
@media print {
  :root { --bg: #ffffff; --fg: #000000; --muted: #333333; --card: #ffffff; --line: #888888;
    --bar: #333333; --bar2: #000000; --grid: #cccccc; }
  body { background: none; color: #000; max-width: none; padding: 0; }
  dl.totals > div, th { background: none; }
  figure, table, dl.totals, tr { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  details summary { display: none; }
}
"""


class _Ids:
    """Deterministic element ids, numbered in document order."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count}"


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[tuple[str, bool]]], caption: str = ""
) -> str:
    """A table; each cell is (escaped HTML, numeric?)."""
    out = ['<div class="wrap"><table>']
    if caption:
        out.append(f"<caption>{caption}</caption>")
    out.append("<thead><tr>")
    out.extend(f'<th scope="col">{h}</th>' for h in headers)
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        out.extend(f'<td class="num">{c}</td>' if num else f"<td>{c}</td>" for c, num in row)
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def bar_chart(ids: _Ids, name: str, caption: str, bars: Sequence[Bar], unit: str) -> str:
    """A horizontal bar chart in a figure, with its data table."""
    fig_id = ids("chart")
    width, label_w, value_w, row_h, top = 720, 200, 110, 26, 8
    plot_w = width - label_w - value_w
    height = top * 2 + max(1, len(bars)) * row_h
    peak = max((b.value for b in bars), default=0.0)
    total = sum(b.value for b in bars)
    parts = [
        f'<figure id="{fig_id}" data-chart="{_e(name)}" data-total="{_num(total)}">',
        f'<figcaption id="{fig_id}-cap">{_e(caption)}</figcaption>',
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{fig_id}-title {fig_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{fig_id}-title">{_e(caption)}</title>',
        f'<desc id="{fig_id}-desc">{_e(_describe(bars, unit))}</desc>',
        f'<line class="axis" x1="{label_w}" y1="{top - 4}" x2="{label_w}" '
        f'y2="{height - top + 4}"/>',
    ]
    if not bars:
        parts.append(f'<text x="{label_w + 8}" y="{top + 17}">Nothing idle</text>')
    for index, bar in enumerate(bars):
        y = top + index * row_h
        w = 0.0 if peak <= 0 else bar.value / peak * plot_w
        parts.append(
            f'<g data-label="{_e(bar.label)}" data-value="{_num(bar.value)}">'
            f"<title>{_e(bar.label)}: {_e(_usd(bar.value))}{_e(unit)}</title>"
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{_e(_short(bar.label))}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{w:.2f}" height="{row_h - 8}" '
            f'data-label="{_e(bar.label)}" data-value="{_num(bar.value)}"/>'
            f'<text x="{label_w + w + 6:.2f}" y="{y + 17}">{_e(_usd(bar.value))}</text></g>'
        )
    parts.append("</svg>")
    rows = [
        [(_e(b.label), False), (_e(_usd(b.value)), True), (_e(_share(b.value, total)), True)]
        for b in bars
    ]
    rows.append([("<strong>Total</strong>", False), (_e(_usd(total)), True), ("100%", True)])
    parts.append("<details><summary>Data table</summary>")
    parts.append(_table(["Group", f"{_code()}{_e(unit)}", "Share"], rows))
    parts.append("</details></figure>")
    return "".join(parts)


def _share(value: float, total: float) -> str:
    return "-" if total <= 0 else f"{value / total:.0%}"


def _describe(bars: Sequence[Bar], unit: str) -> str:
    if not bars:
        return "No idle cost."
    listed = "; ".join(f"{b.label}: {_usd(b.value)}{unit}" for b in bars)
    return f"{len(bars)} groups, total {_usd(sum(b.value for b in bars))}{unit}. {listed}."


def time_chart(ids: _Ids, days: Sequence[Day]) -> str:
    """Applied actions per day (bars) and cumulative money saved (line), with the data table."""
    fig_id = ids("chart")
    caption = f"Actions applied per day (bars) and cumulative {_code()} saved (line)"
    width, left, right, top, plot_h, bottom = 720, 56, 72, 30, 180, 36
    plot_w = width - left - right
    height = top + plot_h + bottom
    n = max(1, len(days))
    slot = plot_w / n
    action_ticks = nice_ticks(max((d.actions for d in days), default=0), integer=True)
    saved_ticks = nice_ticks(max((d.cumulative for d in days), default=0.0))
    peak_actions, peak_saved = action_ticks[-1], saved_ticks[-1]
    base = top + plot_h
    total_actions = sum(d.actions for d in days)
    final = days[-1].cumulative if days else 0.0
    desc = (
        f"{len(days)} days from {days[0].day.isoformat()} to {days[-1].day.isoformat()}: "
        f"{total_actions} actions applied, {_usd(final)} saved in all."
        if days
        else "No applied actions in the ledger."
    )
    parts = [
        f'<figure id="{fig_id}" data-chart="savings-over-time" '
        f'data-total-actions="{total_actions}" data-total-saved="{_num(final, 2)}">',
        f'<figcaption id="{fig_id}-cap">{_e(caption)}</figcaption>',
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{fig_id}-title {fig_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{fig_id}-title">{_e(caption)}</title>',
        f'<desc id="{fig_id}-desc">{_e(desc)}</desc>',
    ]
    for tick in action_ticks:  # whole actions, none repeated, with their grid lines
        y = base - tick / peak_actions * plot_h
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y:.2f}" x2="{left + plot_w}" y2="{y:.2f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.2f}" text-anchor="end">'
            f"{tick:,.0f}</text>"
        )
    places = tick_decimals(saved_ticks)
    for tick in saved_ticks:
        y = base - tick / peak_saved * plot_h
        parts.append(
            f'<text class="tick" x="{left + plot_w + 6}" y="{y + 4:.2f}">'
            f"{_e(_usd(tick, places))}</text>"
        )
    parts.append(
        f'<text x="{left - 6}" y="{top - 14}" text-anchor="end">actions</text>'
        f'<text x="{left + plot_w + 6}" y="{top - 14}">{_code()} saved</text>'
    )
    points: list[str] = []
    for index, d in enumerate(days):
        x = left + index * slot
        h = d.actions / peak_actions * plot_h
        label = d.day.isoformat()
        bar_w = min(slot * 0.7, 40.0)
        parts.append(
            f'<rect class="bar" x="{x + (slot - bar_w) / 2:.2f}" y="{base - h:.2f}" '
            f'width="{bar_w:.2f}" height="{h:.2f}" data-series="actions" '
            f'data-label="{label}" data-value="{d.actions}">'
            f"<title>{label}: {d.actions} actions</title></rect>"
        )
        cx = x + slot / 2
        cy = base - d.cumulative / peak_saved * plot_h
        points.append(f"{cx:.2f},{cy:.2f}")
    if points:
        parts.append(f'<polyline class="line" points="{" ".join(points)}"/>')
    for point, d in zip(points, days, strict=True):
        dot_x, dot_y = point.split(",")
        label = d.day.isoformat()
        parts.append(
            f'<circle class="dot" cx="{dot_x}" cy="{dot_y}" r="3" data-series="cumulative-saved" '
            f'data-label="{label}" data-value="{_num(d.cumulative, 2)}">'
            f"<title>{label}: {_e(_usd(d.cumulative))} saved so far</title></circle>"
        )
    parts.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}"/>')
    if days:
        parts.append(
            f'<text x="{left}" y="{base + 18}">{days[0].day.isoformat()}</text>'
            f'<text x="{left + plot_w}" y="{base + 18}" text-anchor="end">'
            f"{days[-1].day.isoformat()}</text>"
        )
    else:
        parts.append(f'<text x="{left + 8}" y="{top + 20}">No applied actions yet</text>')
    parts.append("</svg>")
    rows = [
        [
            (d.day.isoformat(), False),
            (str(d.actions), True),
            (_e(_usd(d.saved)), True),
            (_e(_usd(d.cumulative)), True),
        ]
        for d in days
    ]
    parts.append("<details><summary>Data table</summary>")
    code = _code()
    parts.append(
        _table(["Day (UTC)", "Actions applied", f"{code} saved", f"Cumulative {code}"], rows)
    )
    parts.append("</details></figure>")
    return "".join(parts)


def _instances(decision: Decision) -> str:
    return instances_text(decision.resource).replace(" x ", " × ")


def recommendations(scan: ScanResult) -> list[tuple[Decision, Recommendation]]:
    """Every recommendation of the scan, the largest hourly saving first (unknown last)."""
    found = [(d, r) for d in scan.decisions for r in d.recommendations]
    found.sort(
        key=lambda pair: (
            pair[1].hourly_saving_usd is None,
            -(pair[1].hourly_saving_usd or 0.0),
            pair[0].resource.region,
            pair[0].resource.name,
        )
    )
    return found


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
            "Saves USD/h",
            "Saves USD/30 days",
            "Evidence",
        )
    )
    rows = []
    for d, rec in found:
        saving = rec.hourly_saving_usd
        month = None if saving is None else saving * HOURS_PER_30_DAYS
        what = rec.kind + (f" to {rec.to}" if rec.to else "")
        rows.append(
            f'<tr data-name="{_e(d.resource.name)}" data-kind="{_e(rec.kind)}">'
            f'<th scope="row">{_e(d.resource.name)}</th>'
            f'<td class="nowrap">{_e(d.resource.region)}</td>'
            f"<td>{_e(_instances(d))}</td><td>{_e(what)}</td>"
            f'<td class="num">{_e(_usd(saving))}</td><td class="num">{_e(_usd(month))}</td>'
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
        month = None if cost is None else cost * HOURS_PER_30_DAYS
        cells = [
            f'<td class="num">{rank}</td>',
            f'<th scope="row">{_e(r.name)}</th>',
            f'<td class="nowrap">{_e(r.kind.value)}</td>',
            f'<td class="nowrap">{_e(r.region)}</td>',
            *([f"<td>{_e(r.account)}</td>"] if accounts else []),
            f"<td>{_e(_owner(d, owner_tag))}</td>",
            f"<td>{_e(_instances(d))}</td>",
            f'<td class="num" data-column="hourly">{_e(_usd(cost))}</td>',
            f'<td class="num" data-column="30-days">{_e(_usd(month))}</td>',
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


def _metric(name: str, label: str, value: float | int, shown: str, note: str = "") -> str:
    extra = f'<div class="note">{_e(note)}</div>' if note else ""
    return (
        f'<div><dt>{_e(label)}</dt><dd data-metric="{name}" data-value="{_num(value)}">'
        f"{_e(shown)}</dd>{extra}</div>"
    )


def _wasting_metric(h: dict[str, Any]) -> str:
    """The card of what SageSaver would act on: how many, and their known cost per hour."""
    count, hourly, unknown = h["wasting"], h["wasting_hourly_cost"], h["wasting_with_unknown_cost"]
    if count == 0:
        shown = "nothing"
    elif hourly is None:
        shown = f"{count} resources, an unknown amount"
    else:
        shown = f"{count} resources, {_usd(hourly)}/h"
    note = f"{unknown} with an unknown price" if unknown and hourly is not None else ""
    return _metric("wasting", "Wasting (SageSaver would act on)", count, shown, note)


def render_html(
    scan: ScanResult,
    entries: list[Entry],
    now: datetime,
    backtest: dict[str, Any] | None = None,
    owner_tag: str = "owner",
) -> str:
    """One self-contained HTML5 document: totals, charts, top idle resources, savings, in the
    scan's currency."""
    token = _CURRENCY.set(report_currency(scan, entries))
    try:
        return _render_html(scan, entries, now, backtest, owner_tag)
    finally:
        _CURRENCY.reset(token)


def _render_html(
    scan: ScanResult,
    entries: list[Entry],
    now: datetime,
    backtest: dict[str, Any] | None,
    owner_tag: str,
) -> str:
    ids = _Ids()
    code = _code()
    h = headline(scan, entries, now)
    unknown = h["idle_with_unknown_cost"]
    unknown_note = f"{unknown} idle with unknown price" if unknown else ""
    # Idle resources, none with a known price: the amount is unknown, never 0.
    no_price = bool(h["idle"]) and unknown == h["idle"]
    saved_note = f"{h['actions_applied']} actions applied, {h['saved_hours']:,.1f} h off"
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
        f"in {_e(', '.join(scan.regions) or '-')}: {h['resources']} resources, "
        f"{h['errors']} errors. Prices in {_e(h['currency'])}: "
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
            "unknown" if no_price else _usd(h["idle_hourly_cost"]),
            unknown_note,
        ),
        _metric(
            "idle_30_day_cost",
            "Idle cost per 30 days (all idle)",
            h["idle_30_day_cost"],
            "unknown" if no_price else _usd(h["idle_30_day_cost"]),
        ),
        _metric("idle", "Idle resources", h["idle"], f"{h['idle']} of {h['resources']}"),
        _metric("saved", "Saved so far", h["saved"], _usd(h["saved"]), saved_note),
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
        time_chart(ids, savings_by_day(entries, now)),
        "</section>",
    ]
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
) -> str:
    """A compact Markdown digest: totals, the top idle resources, and what was saved."""
    token = _CURRENCY.set(report_currency(scan, entries))
    try:
        return _render_markdown(scan, entries, now, backtest, owner_tag)
    finally:
        _CURRENCY.reset(token)


def _render_markdown(
    scan: ScanResult,
    entries: list[Entry],
    now: datetime,
    backtest: dict[str, Any] | None,
    owner_tag: str,
) -> str:
    h = headline(scan, entries, now)
    no_price = bool(h["idle"]) and h["idle_with_unknown_cost"] == h["idle"]
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
        f"- **Idle:** {h['idle']} of {h['resources']} resources, {idle_cost}"
        + (
            f" ({h['idle_with_unknown_cost']} with unknown price)"
            if h["idle_with_unknown_cost"] and not no_price
            else ""
        ),
        f"- **Saved so far:** {_usd(h['saved'])} "
        f"({h['actions_applied']} actions applied, {h['saved_hours']:,.1f} h off"
        + (f"; also {_other_currencies(h)}" if _other_currencies(h) else "")
        + ")",
    ]
    if h["errors"]:
        lines.append(f"- **Errors:** {h['errors']} (see the full report)")
    top = top_idle(scan)
    if top:
        lines += [
            "",
            f"### Top {len(top)} idle resources",
            "",
            f"| # | Name | Kind | Region | Owner ({_md(owner_tag)}) | {_code()}/h | "
            f"{_code()}/30 days |",
            "|---:|---|---|---|---|---:|---:|",
        ]
        for rank, d in enumerate(top, 1):
            r = d.resource
            cost = _in_currency(d)
            month = None if cost is None else cost * HOURS_PER_30_DAYS
            lines.append(
                f"| {rank} | {_md(r.name)} | {_md(r.kind.value)} | {_md(r.region)} | "
                f"{_md(_owner(d, owner_tag))} | {_usd(cost)} | {_usd(month)} |"
            )
    found = recommendations(scan)
    if found:
        lines += [
            "",
            f"### Recommendations ({len(found)})",
            "",
            "| Name | Region | Recommendation | Saves USD/h | Evidence |",
            "|---|---|---|---:|---|",
        ]
        for d, rec in found:
            what = rec.kind + (f" to {rec.to}" if rec.to else "")
            lines.append(
                f"| {_md(d.resource.name)} | {_md(d.resource.region)} | {_md(what)} | "
                f"{_usd(rec.hourly_saving_usd)} | {_md(rec.evidence)} |"
            )
    days = [d for d in savings_by_day(entries, now) if d.actions]
    if days:
        lines += ["", "### Actions applied", "", "| Day (UTC) | Actions | Saved so far |"]
        lines.append("|---|---:|---:|")
        lines += [
            f"| {d.day.isoformat()} | {d.actions} | {_usd(d.cumulative)} |" for d in days[-7:]
        ]
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
