"""The report's "Organisation" section: the newest organisation run's summary, from the ledger.

The summary (:func:`~sagesaver.pipelines.organisation.summary_document`, kept by the stack's
``summarise`` and by ``run --accounts/--organization --apply``) has rows per account, region
and kind; the section adds them up per account, the largest idle cost first: idle resources,
their known cost per hour and per 30 days in each currency (never added across currencies),
how many have no known price (said, never counted as 0), the acts carried out and failed, the
errors, and the items the run missed. Pure: no AWS, no clock; every string escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any, Protocol

from sagesaver.core.formats import HOURS_PER_30_DAYS, iso, money_by_currency, plural
from sagesaver.render.charts import _e

# The Markdown digest lists this many accounts and missed items (the HTML lists every account).
MD_ACCOUNTS = 20
MISSED_SHOWN = 50


class SummaryRecord(Protocol):
    """A run summary as the ledger gives it back (:class:`sagesaver.ledger.RunSummary`)."""

    @property
    def run_id(self) -> str: ...

    @property
    def at(self) -> datetime: ...

    @property
    def document(self) -> Mapping[str, Any]: ...


@dataclass
class AccountLine:
    """One account's part of the run (or the whole organisation's, as ``account`` "all")."""

    account: str
    resources: int = 0
    idle: int = 0
    hourly: dict[str, float] = field(default_factory=dict)  # known idle cost, by currency
    unknown: int = 0  # idle resources without a known price
    acted: int = 0
    failed: int = 0
    errors: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.resources += int(row.get("resources", 0))
        self.idle += int(row.get("idle", 0))
        self.unknown += int(row.get("unknown_cost", 0))
        self.acted += int(row.get("acted", 0))
        self.failed += int(row.get("failed", 0))
        for currency, amount in (row.get("idle_hourly_cost") or {}).items():
            self.hourly[str(currency)] = round(self.hourly.get(str(currency), 0.0) + amount, 6)


@dataclass(frozen=True)
class OrganisationView:
    """What the section shows of one run summary."""

    run_id: str
    at: datetime
    applied: bool | None
    complete: bool
    accounts: int
    lines: list[AccountLine]
    total: AccountLine
    other_errors: int  # errors not of one account (the digest, the ledger)
    missed: list[Mapping[str, Any]]


def organisation_view(record: SummaryRecord) -> OrganisationView:
    """The per-account lines of a run summary, the largest known idle cost first (in the
    currency most accounts are priced in, then the others), then the most idle."""
    document = record.document
    lines: dict[str, AccountLine] = {}
    total = AccountLine("all")
    for row in document.get("rows") or []:
        account = str(row.get("account", "-"))
        lines.setdefault(account, AccountLine(account)).add(row)
        total.add(row)
    other = 0
    for place in document.get("errors") or []:
        account, count = str(place.get("account", "-")), int(place.get("errors", 0))
        total.errors += count
        if account == "-":
            other += count
        else:
            lines.setdefault(account, AccountLine(account)).errors += count
    # Amounts of two currencies are never compared: accounts are ordered by the currency most
    # of them are priced in, then by the next one.
    priced = {c: sum(1 for line in lines.values() if c in line.hourly) for c in total.hourly}
    currencies = sorted(priced, key=lambda c: (-priced[c], c))

    def order(line: AccountLine) -> tuple[Any, ...]:
        costs = tuple(-line.hourly.get(c, 0.0) for c in currencies)
        return (*costs, -line.unknown, -line.idle, line.account)

    applied = document.get("applied")
    return OrganisationView(
        run_id=record.run_id,
        at=record.at,
        applied=applied if isinstance(applied, bool) else None,
        complete=bool(document.get("complete")),
        accounts=int(document.get("accounts") or len(lines)),
        lines=sorted(lines.values(), key=order),
        total=total,
        other_errors=other,
        missed=list(document.get("missed") or []),
    )


def cost_text(line: AccountLine, hours: float, unit: str = "") -> str:
    """The known idle cost for ``hours`` in each currency, and how many idle resources have
    no known price: ``$1.20/h + 2 unknown``; ``unknown`` when none is known; ``-`` when
    nothing is idle."""
    if not line.idle:
        return "-"
    known = {c: v * hours for c, v in line.hourly.items()}
    shown = money_by_currency(known, unit=unit)
    return shown + (f" + {line.unknown} unknown" if known and line.unknown else "")


def _how(view: OrganisationView) -> str:
    """``applied`` / ``dry run``, complete or what it missed, and the errors."""
    mode = {True: "applied", False: "dry run", None: "run"}[view.applied]
    state = "complete" if view.complete else "incomplete"
    if view.missed:
        state += f": {len(view.missed)} missed"
    return (
        f"{mode}, {plural(view.accounts, 'account')}, {state}, {plural(view.total.errors, 'error')}"
    )


# --------------------------------------------------------------------------- HTML

_HEADERS = (
    ("Account", False),
    ("Resources", True),
    ("Idle", True),
    ("Idle cost per hour", True),
    ("Idle cost per 30 days", True),
    ("Without a price", True),
    ("Acts carried out", True),
    ("Acts failed", True),
    ("Errors", True),
)


def _cells(line: AccountLine, head: str) -> str:
    values = [
        (str(line.resources), "resources"),
        (str(line.idle), "idle"),
        (cost_text(line, 1.0, "/h"), "hourly"),
        (cost_text(line, HOURS_PER_30_DAYS), "30-days"),
        (str(line.unknown), "unknown"),
        (str(line.acted), "acted"),
        (str(line.failed), "failed"),
        (str(line.errors), "errors"),
    ]
    cells = "".join(f'<td class="num" data-column="{c}">{_e(v)}</td>' for v, c in values)
    return f'<th scope="row">{_e(head)}</th>{cells}'


def organisation_html(record: SummaryRecord | None) -> str:
    """The section, or nothing when the ledger holds no run summary."""
    if record is None:
        return ""
    view = organisation_view(record)
    head = "".join(
        f'<th scope="col" class="num">{_e(h)}</th>' if num else f'<th scope="col">{_e(h)}</th>'
        for h, num in _HEADERS
    )
    rows = "".join(
        f'<tr data-account="{_e(line.account)}">{_cells(line, line.account)}</tr>'
        for line in view.lines
    )
    foot = f'<tr data-account="all">{_cells(view.total, "All accounts")}</tr>'
    out = [
        '<section id="organisation"><h2>Organisation</h2>',
        f'<p class="meta" data-run="{_e(view.run_id)}">Run {_e(view.run_id)} of '
        f"{_e(iso(view.at))}: {_e(_how(view))}.</p>",
        f'<div class="wrap"><table id="organisation-accounts"><caption>'
        f"{_e(plural(len(view.lines), 'account'))}, the largest idle cost first</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
        f"<tfoot>{foot}</tfoot></table></div>",
    ]
    if view.other_errors:
        out.append(
            f'<p class="note">{_e(plural(view.other_errors, "error"))} not of one account '
            "(the digest, the ledger).</p>"
        )
    out.append(_missed_html(view.missed))
    out.append("</section>")
    return "".join(out)


def _missed_html(missed: list[Mapping[str, Any]]) -> str:
    if not missed:
        return '<p class="note" id="organisation-missed">Nothing missed.</p>'
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_e(str(m.get(k, '-')))}</td>" for k in ("stage", "account", "region"))
        + f'<td class="reason">{_e(str(m.get("error", "")))}</td></tr>'
        for m in missed[:MISSED_SHOWN]
    )
    more = len(missed) - MISSED_SHOWN
    caption = f"Missed: {plural(len(missed), 'item')} the run could not finish" + (
        f" (the first {MISSED_SHOWN}; {more} more in its summary.json)" if more > 0 else ""
    )
    head = "".join(f'<th scope="col">{h}</th>' for h in ("Stage", "Account", "Region", "Error"))
    return (
        f'<div class="wrap"><table id="organisation-missed"><caption>{_e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


# --------------------------------------------------------------------------- Markdown


def _md(value: object) -> str:
    """Text safe in a Markdown table cell (as the report's own cells are escaped)."""
    text = escape(str(value).replace("\n", " "), quote=False)
    return "".join("\\" + c if c in "\\`*_[]|#" else c for c in text)


def _md_row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def _idle_md(total: AccountLine) -> str:
    if not total.idle:
        return f"none of {plural(total.resources, 'resource')}"
    return (
        f"{total.idle} of {plural(total.resources, 'resource')}, "
        f"{_md(cost_text(total, 1.0, '/h'))} = {_md(cost_text(total, HOURS_PER_30_DAYS))} "
        "per 30 days" + (f" ({total.unknown} without a price)" if total.unknown else "")
    )


def organisation_markdown(record: SummaryRecord | None) -> list[str]:
    """The section's lines, or none when the ledger holds no run summary."""
    if record is None:
        return []
    view = organisation_view(record)
    total = view.total
    lines = [
        "",
        f"### Organisation (run {_md(view.run_id)}, {iso(view.at)})",
        "",
        f"- **Run:** {_md(_how(view))}",
        f"- **Idle:** {_idle_md(total)}",
        f"- **Acts carried out:** {total.acted}"
        + (f" ({total.failed} failed)" if total.failed else ""),
        "",
        "| Account | Idle | Idle cost per hour | Idle cost per 30 days | Without a price "
        "| Acts | Failed | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for line in view.lines[:MD_ACCOUNTS]:
        lines.append(
            _md_row(
                (
                    line.account,
                    f"{line.idle} of {line.resources}",
                    cost_text(line, 1.0, "/h"),
                    cost_text(line, HOURS_PER_30_DAYS),
                    line.unknown,
                    line.acted,
                    line.failed,
                    line.errors,
                )
            )
        )
    if len(view.lines) > MD_ACCOUNTS:
        rest = len(view.lines) - MD_ACCOUNTS
        lines += ["", f"… and {plural(rest, 'more account')} (the HTML report lists them all)"]
    if view.other_errors:
        lines += ["", f"{plural(view.other_errors, 'error')} not of one account."]
    if view.missed:
        lines += ["", f"#### Missed ({len(view.missed)})", ""]
        lines += ["| Stage | Account | Region | Error |", "|---|---|---|---|"]
        lines += [
            _md_row(m.get(k, "-") for k in ("stage", "account", "region", "error"))
            for m in view.missed[:MD_ACCOUNTS]
        ]
        if len(view.missed) > MD_ACCOUNTS:
            lines += ["", f"… and {len(view.missed) - MD_ACCOUNTS} more."]
    return lines
