"""A digest's chat channels: which channels take which digest, each post sent once per run,
and when a digest counts as delivered (the gate before any deletion).

The admin digest goes to the channels without an ``owner``; an owner's digest to the channels
with that ``owner``. A digest counts as delivered when the topic (if the policy names one)
took it and every ``required`` channel did; without a topic, when the required channels took
it, or, none being required, when at least one channel did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime

from sagesaver.aws import notify as aws_notify
from sagesaver.aws.chat import ChannelResult, SecretReader, deliver
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.channels import ChannelSpec
from sagesaver.core.digest import Message
from sagesaver.core.model import ScanError, ScanResult
from sagesaver.core.policy import Policy
from sagesaver.ledger.base import Ledger
from sagesaver.ledger.errors import LEDGER_ERRORS

OPERATION = "ChatWebhook"


def channels_for(policy: Policy, owner: str | None) -> list[ChannelSpec]:
    """The channels of the admin digest (``owner`` None) or of one owner's."""
    return [c for c in policy.notify.channels if c.owner == owner]


def reader_for(aws: Aws, policy: Policy) -> SecretReader:
    """Reads the channels' references in the run's own region (the topic's, without one)."""
    return SecretReader(aws, aws.default_region or policy.notify.topic_region)


def _claim_key(once: str, channel: ChannelSpec) -> str:
    return f"{once}|chat={channel.type}:{channel.webhook_ref}"


def send_to_channels(
    reader: SecretReader,
    channels: Sequence[ChannelSpec],
    messages: Sequence[Message],
    now: datetime,
    errors: list[ScanError],
    once: str | None = None,
    ledger: Ledger | None = None,
) -> list[ChannelResult]:
    """Post ``messages`` to each of ``channels``; a failure is added to ``errors`` and never
    stops the others. With ``once`` (the run's claim of this digest) and a ledger, a channel
    that took the digest in an earlier attempt of the same run is not posted to again."""
    results = []
    for channel in channels:
        key = _claim_key(once, channel) if once is not None and ledger is not None else None
        if key is not None and ledger is not None and ledger.is_claimed(key):
            results.append(ChannelResult(channel, sent_before=True))
            continue
        result = deliver(reader, channel, messages, now)
        results.append(result)
        if result.error is not None:
            errors.append(
                ScanError(
                    "-",
                    OPERATION,
                    result.error + ("" if channel.required else " (optional channel)"),
                    code="ChatNotDelivered",
                )
            )
        elif key is not None and ledger is not None and result.ok:
            # posted all the same when it cannot be recorded: a retry may post it again
            with contextlib.suppress(*LEDGER_ERRORS):
                ledger.claim(key, now)
    return results


def publish_once(
    aws: Aws,
    topic: str,
    messages: Sequence[Message],
    attributes: Mapping[str, str] | None,
    once: str | None,
    ledger: Ledger | None,
    result: ScanResult,
) -> tuple[bool, list[str]]:
    """Publish a digest to the topic, once per run (``once``, with a ledger): (taken, message
    ids). A failure is added to ``result.errors``."""
    key = f"{once}|sns" if once is not None and ledger is not None else None
    if key is not None and ledger is not None and ledger.is_claimed(key):
        return True, []  # the topic took it in an earlier attempt of this run
    try:
        ids = aws_notify.publish(aws, topic, list(messages), attributes)
    except AWS_ERRORS as exc:
        region = topic.split(":")[3] if topic.count(":") >= 5 else ""
        result.errors.append(scan_error(exc, region, "Publish", topic))
        return False, []
    if key is not None and ledger is not None:
        # recorded with the digest, or published again by a retry when it cannot be
        with contextlib.suppress(*LEDGER_ERRORS):
            ledger.claim(key, result.generated_at)
    return True, ids


def delivered(topic_ok: bool | None, results: Sequence[ChannelResult]) -> bool:
    """Whether a digest counts as delivered: the topic's answer (None: no topic) and the
    channels' (module docstring)."""
    if topic_ok is False:
        return False
    if any(r.channel.required and not r.ok for r in results):
        return False
    if topic_ok is None:
        return any(r.ok for r in results)
    return True


def delivery_ids(results: Sequence[ChannelResult]) -> list[str]:
    """What the ledger records of the channels that took a digest (never a URL)."""
    return [f"chat:{r.channel.type}:{r.channel.webhook_ref}" for r in results if r.ok]
