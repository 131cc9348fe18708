"""How the acting commands show what they did: ``run``, ``studio`` and ``lifecycle install``,
as JSON or as lines for a terminal. They take the documents the pipelines build."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sagesaver.core.backtest import BacktestResult, compare
from sagesaver.core.formats import iso, money, money_by_currency, plural
from sagesaver.core.model import ScanError, ScanResult
from sagesaver.core.savings import OffInterval, saved_by_currency, totals_by

if TYPE_CHECKING:
    from rich.console import Console

from sagesaver.render.scan import (
    print_errors,
    print_table,
    stderr_console,
    stdout_console,
    to_csv,
    to_json,
)


def print_scan(result: ScanResult, output: str, extra: dict[str, Any] | None = None) -> None:
    """A scan as JSON (with ``extra`` keys), CSV or a table."""
    if output == "json":
        sys.stdout.write(to_json(result, extra) + "\n")
    elif output == "csv":
        sys.stdout.write(to_csv(result))
        print_errors(result.errors)  # on stderr: the CSV holds resources only
    else:
        print_table(result, stdout_console())


def render_run(result: ScanResult, run: dict[str, Any], output: str) -> None:
    """``sagesaver run``: the scan, each enforcement step, and the digest (sent or not); with
    ``csv``, only the scan's rows on stdout, the rest on stderr."""
    if output == "json":
        print_scan(result, output, run)
        return
    print_scan(result, output)
    # A CSV holds the resources only: what the run did goes to stderr, as the errors do.
    console = stderr_console() if output == "csv" else stdout_console()
    for item in run["enforcement"]:
        console.print(
            f"{item['stage']:>8} {item['name']} ({item['region']}): {item['outcome']}",
            markup=False,
        )
    if not run["notifications"]:
        console.print("No idle endpoint to notify about.")
    elif run.get("digest_held"):
        console.print(f"Digest not sent again: {run['digest_held']}.", markup=False)
    else:
        _print_messages(console, run, run["notifications"], run["applied"], "")
    for digest in run.get("owner_notifications", []):
        if digest["held"]:
            console.print(
                f"Digest for owner {digest['owner']} not sent again: {digest['held']}.",
                markup=False,
            )
            continue
        owner = f" (owner {digest['owner']})"
        _print_messages(console, run, digest["messages"], digest["applied"], owner)


def _print_messages(
    console: Console, run: dict[str, Any], messages: list[dict[str, Any]], sent: bool, who: str
) -> None:
    for message in messages:
        if sent:
            verb = f"Sent to {run['sns_topic_arn']}{who}"
        elif run["dry_run"]:
            target = run["sns_topic_arn"] or "(no notify.sns_topic_arn set)"
            verb = f"Dry run: would send to {target}{who}"
        else:
            verb = f"Not sent{who} (see errors)"
        console.rule(f"{verb}")
        console.print(f"Subject: {message['subject']}\n", markup=False)
        console.print(message["body"], markup=False, soft_wrap=True)


def _print_errors(errors: list[dict[str, Any]]) -> None:
    print_errors([ScanError(**error) for error in errors])


def render_studio(document: dict[str, Any], output: str) -> None:
    """``sagesaver studio``: each app's decision and fate, and the idle-shutdown gaps."""
    if output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console = stdout_console()
    for item in document["apps"]:
        currency = item.get("currency") or "USD"
        hourly = item.get("hourly_cost")
        cost = "cost unknown" if hourly is None else money(hourly, currency) + "/h"
        console.print(
            f"{item['name']} ({item['region']}, {item['instance_type'] or '-'}, {cost}): "
            f"{item['reason']} -> {item['outcome']}",
            markup=False,
        )
    for gap in document["idle_shutdown_gaps"]:
        where = f"space {gap['space']}" if gap["space"] else "domain default"
        console.print(
            f"{gap['domain_id']} {where} ({gap['region']}): {gap['detail']}", markup=False
        )
    for unread in document["unread"]:
        console.print(unread_line(unread), markup=False)
    apps_unread = any(u["scope"] in ("apps", "app") for u in document["unread"])
    if not document["apps"] and not apps_unread:  # said only when known
        console.print("No Studio apps in service.")
    _print_errors(document["errors"])


def unread_line(unread: dict[str, Any]) -> str:
    """What a Studio run could not read (an item of its document's ``unread``), for people:
    ``Studio apps in us-east-1 could not be read: ListApps: AccessDeniedException ...``."""
    where, resource = unread["region"], unread["resource"]
    if unread.get("account"):
        where = f"{unread['account']} {where}"
    if unread["scope"] == "apps":
        what = "Studio apps"
    elif unread["scope"] == "app":
        what = f"Studio app {resource}"
    elif resource:
        what = f"Idle shutdown of Studio domain {resource}"
    else:
        what = "Idle shutdown of the Studio domains"
    code = f"{unread['code']} " if unread["code"] else ""
    return f"{what} in {where} could not be read: {unread['operation']}: {code}{unread['message']}"


def render_install(document: dict[str, Any], output: str) -> None:
    """``sagesaver lifecycle install``: the configuration per region, then each instance."""
    if output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console = stdout_console()
    for config in document["configurations"]:
        verb = (
            config["action"]
            if config["applied"] or config["action"] == "unchanged"
            else (f"would {config['action']}")
        )
        console.print(f"lifecycle configuration {config['name']} ({config['region']}): {verb}")
    for row in document["instances"]:
        now = "" if row["final_state"] == row["state"] else f"; now {row['final_state']}"
        console.print(
            f"{row['name']} ({row['region']}, {row['state']}): {row['action']}: "
            f"{row['result']}{now}",
            markup=False,
        )
    if document["dry_run"]:
        console.print("Dry run: add --apply to make these changes.")
    _print_errors(document["errors"])


def render_restore(document: dict[str, Any], output: str) -> None:
    """``sagesaver restore``: the backup used, then each step done or planned."""
    if output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console = stdout_console()
    console.print(
        f"Backup {document['backup']} ({document['region']}, {document['at']}):", markup=False
    )
    for line in document["steps"]:
        console.print(f"  {line}", markup=False)
    if document["dry_run"]:
        console.print("Dry run: add --apply to recreate.")
    elif document.get("remaining"):
        console.print("Still to do (run the same restore again to finish):", markup=False)
        for line in document["remaining"]:
            console.print(f"  {line}", markup=False)
    _print_errors(document["errors"])


# In the JSON for compatibility; the table shows ``saved`` in its currency instead.
_BACKTEST_COMPAT = frozenset({"currency", "usd_saved", "usd_saved_unknown_count"})


def _backtest_value(totals: dict[str, Any], key: str) -> str:
    """One total for the table: ``saved`` as money in its currency (``unknown``: no price)."""
    if key == "saved":
        return money(totals["saved"], totals["currency"], unknown="unknown")
    return str(totals[key])


def render_backtest(
    results: dict[str, BacktestResult],
    labels: dict[str, str],
    days: int,
    regions: int,
    output: str,
    console: Console | None = None,
) -> None:
    """``sagesaver backtest``: the totals of each policy side by side (``saved`` in its
    currency), then the deletions."""
    if output == "json":
        document: dict[str, Any] = {k: v.to_document() for k, v in results.items()}
        if "compare" in results:
            document["difference"] = compare(results["policy"], results["compare"])
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        return
    console = console or stdout_console()
    names = list(results)
    totals = {name: results[name].totals.to_document() for name in names}
    console.print(
        f"Backtest over {plural(days, 'day')}, {plural(regions, 'region')}: "
        + " vs ".join(labels[n] for n in names),
        markup=False,
    )
    for key in totals["policy"]:
        if key in _BACKTEST_COMPAT:
            continue
        values = "  ".join(f"{_backtest_value(totals[n], key):>14}" for n in names)
        console.print(f"  {key:<26}{values}", markup=False)
    for timeline in results["policy"].timelines:
        if timeline.deleted_at is not None:
            mistake = (
                f"; called again {timeline.mistake_at:%Y-%m-%d %H:%M}"
                if timeline.mistake_at
                else ""
            )
            console.print(
                f"  would delete {timeline.name} ({timeline.region}) at "
                f"{timeline.deleted_at:%Y-%m-%d %H:%M} UTC{mistake}",
                markup=False,
            )
    print_errors(results["policy"].errors)


def render_savings(
    intervals: Sequence[OffInterval],
    since: datetime | None,
    now: datetime,
    by: str,
    output: str,
    console: Console | None = None,
) -> None:
    """``sagesaver savings``: hours off and money saved, in all and by kind, region and the
    tag ``by``."""
    groups = {"kind": "kind", "region": "region", f"tag:{by}": f"tag:{by}"}
    totals = {label: totals_by(intervals, key) for label, key in groups.items()}
    saved = saved_by_currency(intervals)  # never added across currencies, known amounts only
    hours = round(sum(i.hours for i in intervals), 2)
    unknown = sum(1 for i in intervals if i.saved is None)
    currencies = {i.currency for i in intervals}
    currency = currencies.pop() if len(currencies) == 1 else None
    if output == "json":
        document = {
            "since": iso(since) if since else None,
            "until": iso(now),
            "hours_off": hours,
            "saved": saved,
            # The one currency of what was saved (null: none yet, or several: see ``saved``).
            "currency": currency,
            "unknown_price": unknown,
            # USD only (kept for compatibility): null in any other currency or when unknown.
            "saved_usd": _saved_usd(saved, currency, bool(intervals)),
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
                    "saved": i.saved,
                    "currency": i.currency,
                    "saved_usd": i.saved if i.currency == "USD" else None,
                }
                for i in intervals
            ],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console = console or stdout_console()
    console.print(savings_line(saved, hours, unknown, len(intervals), since), markup=False)
    for label, table in totals.items():
        for key, value in table.items():
            missing = f" ({value.unknown} without a price)" if value.unknown else ""
            console.print(
                f"  {label:<12} {key:<20} {value.hours:>10.1f} h  "
                f"{money_by_currency(value.saved)}{missing}",
                markup=False,
            )


def _saved_usd(saved: dict[str, float], currency: str | None, any_off: bool) -> float | None:
    if not any_off:
        return 0.0  # nothing off yet: nothing saved, in any currency
    return saved.get("USD") if currency == "USD" else None


def savings_line(
    saved: dict[str, float], hours: float, unknown: int, count: int, since: datetime | None
) -> str:
    """The first line of ``savings``: what was saved (known amounts per currency), over how
    many hours off, and how many resources have an unknown price."""
    if not count:
        start = f" since {iso(since)}" if since else ""
        return f"Saved nothing yet: the ledger has no stop, delete or release carried out{start}."
    off = f"{plural(hours, 'resource-hour')} off"
    if not saved:
        return f"Saved an unknown amount over {off}: no price is known for any of the {count}."
    plus = f", plus {unknown} with an unknown price" if unknown else ""
    return f"Saved {money_by_currency(saved)} over {off}{plus}."


def render_studio_configure(document: dict[str, Any], output: str) -> None:
    """``sagesaver studio configure``: each domain, user profile and space, what idle shutdown
    it has, what was (or would be) set, and the count of each outcome."""
    if output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    console = stdout_console()
    for item in document["resources"]:
        name = item["name"] if item["level"] == "domain" else f"{item['domain_id']}/{item['name']}"
        sets = f" {item['sets']}" if item["sets"] else ""
        console.print(
            f"{item['level']} {name} ({item['region']}): has {item['has']} -> "
            f"{item['outcome']}{sets} ({item['reason']})",
            markup=False,
        )
    counts = document["counts"]
    if not document["resources"] and not document["errors"]:
        console.print("No Studio domains.")
    elif counts:
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        dry = " (dry run: nothing changed; --apply to make the changes)"
        console.print(summary + (dry if document["dry_run"] else ""), markup=False)
    _print_errors(document["errors"])
