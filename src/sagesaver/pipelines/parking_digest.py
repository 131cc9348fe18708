"""The digest of a parking run (``schedule run --apply``, the Lambda's schedule tick): which
endpoints were parked, which stayed up and why, which came back, and which did not, with the
error. It goes where the idle digest goes (the SNS topic, the chat channels), and only when a
run did or refused something; an endpoint still ``Creating`` is said once it is back.

A parking digest gates nothing: a park is never announced (the schedule is the announcement);
a failed delivery is reported with the run's errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sagesaver.aws import notify as aws_notify
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.digest import Message
from sagesaver.core.formats import iso, plural
from sagesaver.core.model import ScanError
from sagesaver.core.policy import Policy
from sagesaver.pipelines.chat import channels_for, reader_for, send_to_channels
from sagesaver.pipelines.parking import ParkRow

PARK, UNPARK = "park", "unpark"


def _where(row: ParkRow) -> str:
    schedule = f", schedule {row.schedule}" if row.schedule else ""
    return f"{row.name} ({row.region}{schedule})"


def parking_digest(rows: Sequence[ParkRow], prefix: str, at: datetime) -> list[Message]:
    """The digest of what an applied parking run did (none when it parked, kept up, brought
    back and failed nothing)."""
    parked = [r for r in rows if r.action == PARK and r.applied]
    kept = [r for r in rows if r.action == PARK and not r.applied]
    back = [r for r in rows if r.action == UNPARK and r.applied]
    not_back = [r for r in rows if r.action == UNPARK and not r.applied and r.error is not None]
    if not (parked or kept or back or not_back):
        return []
    counts = [
        (len(parked), "parked"),
        (len(kept), "kept up"),
        (len(back), "back"),
        (len(not_back), "NOT back"),
    ]
    said = ", ".join(f"{n} {what}" for n, what in counts if n)
    subject = f"{prefix}: endpoints parked by schedules: {said}"[:100]
    lines = [f"SageSaver's schedules, {iso(at)}: {plural(len(rows), 'endpoint')} considered."]
    if not_back:
        lines += ["", "NOT back (the next run tries again; or: sagesaver restore NAME --apply):"]
        lines += [f"- {_where(r)}: {r.error}" for r in not_back]
    if kept:
        lines += ["", "Kept up (not parked):"]
        lines += [f"- {_where(r)}: {r.error or r.outcome or r.reason}" for r in kept]
    if parked:
        lines += ["", "Parked (backed up and deleted; back before the schedule's next start):"]
        lines += [f"- {_where(r)}" for r in parked]
    if back:
        lines += ["", "Back:"]
        lines += [f"- {_where(r)}: {r.outcome}" for r in back]
    return [Message(subject, "\n".join(lines) + "\n")]


def notify_parking(
    aws: Aws, policy: Policy, rows: Sequence[ParkRow], at: datetime, errors: list[ScanError]
) -> list[Message]:
    """Send the run's parking digest to the topic and the chat channels (the admin's: parking
    has no owner digests); a failure is added to ``errors`` and never raises. The messages
    sent (none: nothing to tell, or nowhere to tell it)."""
    messages = parking_digest(rows, policy.notify.subject_prefix, at)
    if not messages or not policy.notify.can_announce:
        return []
    topic = policy.notify.sns_topic_arn
    if topic is not None:
        try:
            aws_notify.publish(aws, topic, messages, {"digest": "parking"})
        except AWS_ERRORS as exc:
            errors.append(scan_error(exc, topic.split(":")[3], "Publish", topic))
    channels = channels_for(policy, None)
    if channels:
        send_to_channels(reader_for(aws, policy), channels, messages, at, errors)
    return messages
