"""The report's inline SVG charts (a bar chart, the savings over time), each in a figure with
its caption, an accessible name and a table of the same numbers; the CSS of the page and the
HTML helpers the report shares with them (escaping, plain numbers, tables, element ids).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

from sagesaver.core.formats import plural
from sagesaver.render.report_data import Bar, Day, _code, _usd, known_sum, with_unknown

LABEL_CHARS = 28


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float, places: int = 4) -> str:
    """A plain, locale-free number for ``data-value`` attributes."""
    text = f"{round(value, places):.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


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
    peak = max((b.value or 0.0 for b in bars), default=0.0)
    total = known_sum([b.value for b in bars])
    unknown = sum(b.unknown for b in bars)
    known_total = "" if total is None else f' data-total="{_num(total)}"'
    parts = [
        f'<figure id="{fig_id}" data-chart="{_e(name)}"{known_total}>',
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
        w = 0.0 if peak <= 0 or bar.value is None else bar.value / peak * plot_w
        # An unknown amount has no bar length and no data-value: it is never drawn as 0.
        value = "" if bar.value is None else f' data-value="{_num(bar.value)}"'
        value += f' data-unknown="{bar.unknown}"' if bar.unknown else ""
        parts.append(
            f'<g data-label="{_e(bar.label)}"{value}>'
            f"<title>{_e(bar.label)}: {_e(with_unknown(bar.value, bar.unknown, unit))}</title>"
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{_e(_short(bar.label))}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{w:.2f}" height="{row_h - 8}" '
            f'data-label="{_e(bar.label)}"{value}/>'
            f'<text x="{label_w + w + 6:.2f}" y="{y + 17}">'
            f"{_e(with_unknown(bar.value, bar.unknown))}</text></g>"
        )
    parts.append("</svg>")
    rows = [
        [
            (_e(b.label), False),
            (_e(with_unknown(b.value, b.unknown)), True),
            (_e(_share(b.value, total)), True),
        ]
        for b in bars
    ]
    rows.append(
        [
            ("<strong>Total</strong>", False),
            (_e(with_unknown(total, unknown)), True),
            ("100%" if total else "-", True),
        ]
    )
    parts.append("<details><summary>Data table</summary>")
    parts.append(_table(["Group", f"{_code()}{_e(unit)}", "Share"], rows))
    parts.append("</details></figure>")
    return "".join(parts)


def _share(value: float | None, total: float | None) -> str:
    return "-" if value is None or total is None or total <= 0 else f"{value / total:.0%}"


def _describe(bars: Sequence[Bar], unit: str) -> str:
    if not bars:
        return "No idle cost."
    listed = "; ".join(f"{b.label}: {with_unknown(b.value, b.unknown, unit)}" for b in bars)
    total = with_unknown(known_sum([b.value for b in bars]), sum(b.unknown for b in bars), unit)
    return f"{plural(len(bars), 'group')}, total {total}. {listed}."


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
    saved_ticks = nice_ticks(max((d.cumulative or 0.0 for d in days), default=0.0))
    peak_actions, peak_saved = action_ticks[-1], saved_ticks[-1]
    base = top + plot_h
    total_actions = sum(d.actions for d in days)
    final = days[-1].cumulative if days else 0.0
    final_unknown = days[-1].unknown if days else 0
    desc = (
        f"{plural(len(days), 'day')} from {days[0].day.isoformat()} to "
        f"{days[-1].day.isoformat()}: {plural(total_actions, 'action')} applied, "
        f"{with_unknown(final, final_unknown)} saved in all."
        if days
        else "No applied actions in the ledger."
    )
    saved_total = "" if final is None else f' data-total-saved="{_num(final, 2)}"'
    parts = [
        f'<figure id="{fig_id}" data-chart="savings-over-time" '
        f'data-total-actions="{total_actions}"{saved_total}>',
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
    known: list[tuple[Day, float]] = []
    for index, d in enumerate(days):
        x = left + index * slot
        h = d.actions / peak_actions * plot_h
        label = d.day.isoformat()
        bar_w = min(slot * 0.7, 40.0)
        parts.append(
            f'<rect class="bar" x="{x + (slot - bar_w) / 2:.2f}" y="{base - h:.2f}" '
            f'width="{bar_w:.2f}" height="{h:.2f}" data-series="actions" '
            f'data-label="{label}" data-value="{d.actions}">'
            f"<title>{label}: {plural(d.actions, 'action')}</title></rect>"
        )
        if d.cumulative is None:  # unknown: no point, never one at 0
            continue
        cx = x + slot / 2
        cy = base - d.cumulative / peak_saved * plot_h
        points.append(f"{cx:.2f},{cy:.2f}")
        known.append((d, d.cumulative))
    if points:
        parts.append(f'<polyline class="line" points="{" ".join(points)}"/>')
    for point, (d, cumulative) in zip(points, known, strict=True):
        dot_x, dot_y = point.split(",")
        label = d.day.isoformat()
        parts.append(
            f'<circle class="dot" cx="{dot_x}" cy="{dot_y}" r="3" data-series="cumulative-saved" '
            f'data-label="{label}" data-value="{_num(cumulative, 2)}">'
            f"<title>{label}: {_e(with_unknown(cumulative, d.unknown))} saved so far</title>"
            "</circle>"
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
            (_e(with_unknown(d.cumulative, d.unknown)), True),
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
