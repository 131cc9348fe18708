"""The idle-endpoint digest: text for SNS (e-mail, SMS, chat), split to fit SNS limits.

Pure: builds messages from decisions; :mod:`sagesaver.aws.notify` publishes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sagesaver.core.formats import (
    HOURS_PER_30_DAYS,
    fmt_idle,
    minute,
    money,
    money_by_currency,
    plural,
    reasons_text,
)
from sagesaver.core.model import Action, Decision, Kind, instances_text

# SNS limits: a message body of at most 256 KiB (UTF-8 bytes), a subject of at most
# 100 printable ASCII characters with no line break.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_SUBJECT_CHARS = 100


@dataclass(frozen=True)
class Message:
    """One SNS message."""

    subject: str
    body: str


def _money(value: float | None, currency: str) -> str:
    return money(value, currency, unknown="unknown")


def cost_by_currency(decisions: Sequence[Decision]) -> dict[str, float]:
    """The known hourly costs of ``decisions``, per currency (never added across); a currency
    none of whose prices is known is left out (its total is unknown, never 0)."""
    sums: dict[str, float] = {}
    for d in decisions:
        if d.hourly_cost is not None:
            sums[d.cost_currency] = sums.get(d.cost_currency, 0.0) + d.hourly_cost
    return sums


def unknown_price_reasons(decisions: Sequence[Decision]) -> dict[str, int]:
    """Why the prices of ``decisions`` that have none are unknown, and how many each reason
    covers, the commonest first."""
    unknown = [d.price_note or "no price known" for d in decisions if d.hourly_cost is None]
    return dict(Counter(unknown).most_common())


def total_text(decisions: Sequence[Decision]) -> str:
    """The digest's total of ``decisions``: the known amounts per hour and per 30 days, and how
    many have an unknown price, with why; ``unknown`` when no price is known."""
    hourly = cost_by_currency(decisions)
    unknown = sum(1 for d in decisions if d.hourly_cost is None)
    why = f" ({reasons_text(unknown_price_reasons(decisions))})" if unknown else ""
    if not hourly:
        return f"unknown: no price is known for any of the {unknown}{why}"
    monthly = {c: v * HOURS_PER_30_DAYS for c, v in hourly.items()}
    text = (
        f"{money_by_currency(hourly, unit=' per hour')}, "
        f"{money_by_currency(monthly, unit=' per 30 days')}"
    )
    return text + (f", plus {unknown} with an unknown price{why}" if unknown else "")


def subject_cost(decisions: Sequence[Decision]) -> str:
    """What ``decisions`` waste, for a subject (ASCII): ``CNY 2.50/h wasted + 2 unknown``, or
    ``cost unknown (no price known)``."""
    hourly = cost_by_currency(decisions)
    if not hourly:
        return "cost unknown (no price known)"
    unknown = sum(1 for d in decisions if d.hourly_cost is None)
    known = money_by_currency(hourly, unit="/h", ascii_only=True)
    return f"{known} wasted" + (f" + {unknown} unknown" if unknown else "")


def clean_subject(text: str) -> str:
    """A subject SNS accepts: printable ASCII, one line, at most 100 characters."""
    ascii_only = "".join(c if 32 <= ord(c) < 127 else " " for c in text)
    single = " ".join(ascii_only.split())
    if len(single) > MAX_SUBJECT_CHARS:
        single = single[: MAX_SUBJECT_CHARS - 3].rstrip() + "..."
    return single


REPORTED = (Action.NOTIFY, Action.DELETE, Action.RELEASE)


def digest_lines(
    decisions: Sequence[Decision], notes: Mapping[str, str] | None = None
) -> list[str]:
    """One line per endpoint to report, most expensive first, with its note (by ARN)."""
    chosen = [d for d in decisions if d.action in REPORTED]
    chosen.sort(
        key=lambda d: (d.cost_currency, -(d.hourly_cost or 0.0), d.resource.region, d.resource.name)
    )
    lines = []
    for d in chosen:
        r = d.resource
        types = instances_text(r) or "instances unknown"
        monthly = None if d.hourly_cost is None else d.hourly_cost * HOURS_PER_30_DAYS
        currency = d.cost_currency
        lines.append(
            f"- {r.name} ({r.region}): {fmt_idle(d.idle_hours or 0)}; {types}; "
            f"{_money(d.hourly_cost, currency)}/h, {_money(monthly, currency)} per 30 days. "
            f"{r.arn}" + (f" -- {notes[r.arn]}" if notes and r.arn in notes else "")
        )
    return lines


def digest_keys(decisions: Sequence[Decision]) -> list[str]:
    """What a digest is about: each reported resource (not another later given its name)."""
    return sorted(
        f"{d.resource.arn.lower()}|{d.resource.created.isoformat()}"
        for d in decisions
        if d.action in REPORTED
    )


def digest_is_due(
    keys: Sequence[str],
    news: bool,
    last: tuple[datetime, Sequence[str]] | None,
    repeat_hours: float,
    now: datetime,
) -> tuple[bool, str]:
    """Whether to send this run's digest, and why: it tells of something new (an announcement,
    an action, a resource idle since the last digest), or the last one is ``repeat_hours`` old.
    """
    if news:
        return True, "announces or acts"
    if last is None:
        return True, "first digest"
    sent_at, sent_keys = last
    new = set(keys) - set(sent_keys)
    if new:
        return True, f"{len(new)} newly idle"
    if now - sent_at >= timedelta(hours=repeat_hours):
        return True, "reminder"
    return False, (
        f"unchanged since the digest of {minute(sent_at)}; the next reminder goes out after "
        f"{minute(sent_at + timedelta(hours=repeat_hours))}"
    )


def account_lines(chosen: Sequence[Decision], unread: Sequence[str] = ()) -> list[str]:
    """Per-account totals of a digest over several accounts (most idle first), and the
    accounts that could not be read; nothing for a digest of one account read in full."""
    accounts: dict[str, list[Decision]] = {}
    for decision in chosen:
        accounts.setdefault(decision.resource.account, []).append(decision)
    if len(accounts) < 2 and not unread:
        return []
    lines = ["By account:"]
    for account, found in sorted(accounts.items(), key=lambda item: (-len(item[1]), item[0])):
        lines.append(f"- {account}: {len(found)} idle; {total_text(found)}")
    lines += [f"Not read: {why}" for why in unread]
    return lines


def build_digest(
    decisions: Sequence[Decision],
    now: datetime,
    prefix: str = "SageSaver",
    notes: Mapping[str, str] | None = None,
    unread: Sequence[str] = (),
) -> list[Message]:
    """The digest as one or more SNS messages (empty when nothing is to be reported).

    Over more than one account (or with accounts ``unread``: why each could not be read), the
    header also gives each account's count and total, and names the accounts not read.

    Each part stays under SNS's 256 KiB; every part repeats the header and totals.
    """
    lines = digest_lines(decisions, notes)
    if not lines:
        return []
    chosen = [d for d in decisions if d.action in REPORTED]
    deleting = any(d.action is Action.DELETE for d in chosen)
    releasing = any(d.action is Action.RELEASE for d in chosen)
    kinds = {d.resource.kind for d in chosen}
    noun = next(iter(kinds)).noun if len(kinds) == 1 else "resource"
    regions = sorted({d.resource.region for d in chosen})
    header = [
        f"SageSaver found {plural(len(chosen), 'idle SageMaker ' + noun)} in {', '.join(regions)}",
        f"at {minute(now)}.",
        f"Total: {total_text(chosen)}.",
        (
            "Each one is deleted when its grace period ends unless it is used again (endpoints "
            "are backed up first: sagesaver restore NAME). Postpone by editing its tag "
            "sagesaver:scheduled-action."
            if deleting
            else "Check each endpoint's Invocations graph before deleting it; nothing was deleted."
            if kinds & {Kind.ENDPOINT, Kind.INFERENCE_COMPONENT}
            else "Nothing was deleted."
        ),
        *(
            [
                "Warm pools to be released are ended in this run, after a fresh check that each "
                "is still unused (the training job and its model are kept)."
            ]
            if releasing
            else []
        ),
        "",
    ]
    header[-1:-1] = account_lines(chosen, unread)
    footer = ["", "Protect a resource from SageSaver with the tag sagesaver:protect=true."]
    budget = MAX_MESSAGE_BYTES - 1024  # room for the header, part marker and footer
    head_bytes = len("\n".join(header + footer).encode())
    parts: list[list[str]] = [[]]
    size = head_bytes
    for line in lines:
        line_bytes = len(line.encode()) + 1
        if parts[-1] and size + line_bytes > budget:
            parts.append([])
            size = head_bytes
        parts[-1].append(line)
        size += line_bytes
    total = len(parts)
    messages = []
    for index, part in enumerate(parts, start=1):
        marker = f" (part {index}/{total})" if total > 1 else ""
        subject = clean_subject(
            f"{prefix}: {plural(len(chosen), 'idle ' + noun)}, {subject_cost(chosen)}{marker}"
        )
        body = "\n".join([*header, *part, *footer])
        messages.append(Message(subject=subject, body=body))
    return messages
