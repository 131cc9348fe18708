"""Post digests to chat webhooks: read each channel's URL and signing secret (SSM Parameter
Store with decryption, or Secrets Manager), then POST the platform's payload
(:mod:`sagesaver.core.chat`) with the standard library.

A webhook URL carries its own credential (a token, a key): it is never logged, printed or put
in an error. Errors name the channel by its type and reference
(``slack (ssm:/sagesaver/slack)``). Only ``https://`` URLs are posted to, and
``http://127.0.0.1`` or ``http://localhost`` (tests, the demo).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.channels import ChannelSpec, Reference
from sagesaver.core.chat import chat_posts, dingtalk_url, encode, payload
from sagesaver.core.digest import Message

TIMEOUT_S = 5.0
RETRY_PAUSE_S = 0.5
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Answers are read up to this size (a platform's answer is a few bytes of JSON).
MAX_ANSWER_BYTES = 64 * 1024


class ChannelError(Exception):
    """A channel could not take the digest; the message names no URL and no secret."""


@dataclass
class ChannelResult:
    """What became of one digest on one channel."""

    channel: ChannelSpec
    posts: int = 0  # posts the channel took
    error: str | None = None
    left_out: int = 0  # resources the last post left out (over the platform's limit)
    sent_before: bool = False  # taken by an earlier attempt of the same run

    @property
    def ok(self) -> bool:
        """Every post was taken (in this attempt or an earlier one of the same run)."""
        return self.error is None and (self.posts > 0 or self.sent_before)

    def document(self) -> dict[str, Any]:
        """The result as JSON (no URL, no secret)."""
        return {
            "channel": self.channel.label,
            "type": self.channel.type,
            "owner": self.channel.owner,
            "required": self.channel.required,
            "ok": self.ok,
            "posts": self.posts,
            "left_out": self.left_out,
            "sent_before": self.sent_before,
            "error": self.error,
        }


@dataclass
class SecretReader:
    """Reads references once per run (a digest and its owners' share them)."""

    aws: Aws
    home_region: str | None
    _values: dict[tuple[str, str], str] = field(default_factory=dict)

    def read(self, ref: Reference, region: str | None, label: str) -> str:
        """The value ``ref`` names, in ``region`` (else the run's own). Raises
        :class:`ChannelError` naming the reference (never the value)."""
        where = region or self.home_region
        if where is None:
            raise ChannelError(
                f"{label}: no region to read {ref} in: set the channel's region, or "
                "AWS_DEFAULT_REGION"
            )
        key = (where, str(ref))
        if key in self._values:
            return self._values[key]
        try:
            if ref.service == "ssm":
                answer = self.aws.client("ssm", where).get_parameter(
                    Name=ref.name, WithDecryption=True
                )
                value = str(answer["Parameter"]["Value"])
            else:
                answer = self.aws.client("secretsmanager", where).get_secret_value(
                    SecretId=ref.name
                )
                value = str(answer.get("SecretString") or "")
        except AWS_ERRORS as exc:
            operation = "GetParameter" if ref.service == "ssm" else "GetSecretValue"
            error = scan_error(exc, where, operation)
            raise ChannelError(
                f"{label}: cannot read {ref} in {where}: {error.code}: {error.message}"
            ) from None
        value = value.strip()
        if not value:
            raise ChannelError(f"{label}: {ref} is empty")
        self._values[key] = value
        return value


def check_url(url: str, label: str) -> None:
    """Refuse a webhook URL that is neither ``https://`` nor loopback ``http://`` (the error
    names the channel, not the URL)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ChannelError(f"{label}: the value stored is not a URL") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return
    raise ChannelError(
        f"{label}: the webhook stored is not an https:// URL (only https:// is posted to, "
        "and http://127.0.0.1 or http://localhost for tests)"
    )


def _accepted(channel_type: str, status: int, body: bytes) -> str | None:
    """None when the platform's answer says it took the post, else why not."""
    text = body.decode(errors="replace").strip()
    if channel_type == "teams":
        return None if 200 <= status < 300 else f"HTTP {status}"
    if channel_type == "slack":
        return None if text == "ok" else f"Slack answered {text[:100]!r}"
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        return f"the answer is not JSON (HTTP {status})"
    if not isinstance(answer, dict):
        return f"the answer is not a JSON object (HTTP {status})"
    if channel_type in ("dingtalk", "wecom"):
        code, why = answer.get("errcode"), answer.get("errmsg")
    else:  # feishu: code (StatusCode in its older answers)
        code = answer.get("code", answer.get("StatusCode"))
        why = answer.get("msg", answer.get("StatusMessage"))
    if code == 0:
        return None
    return f"errcode {code}: {str(why)[:200]}"


Opener = Callable[[urllib.request.Request, float], Any]


def _open(request: urllib.request.Request, timeout: float) -> Any:
    host = urllib.parse.urlsplit(request.full_url).hostname
    if host in LOOPBACK_HOSTS:  # never through a proxy
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return opener.open(request, timeout=timeout)
    return urllib.request.urlopen(request, timeout=timeout)  # https, checked


def post_json(
    url: str,
    body: bytes,
    channel_type: str,
    label: str,
    opener: Opener = _open,
    pause: float = RETRY_PAUSE_S,
) -> None:
    """POST ``body`` to ``url``; one retry on a 5xx answer or a failed connection. Raises
    :class:`ChannelError` (naming ``label``, never the URL) when the post was not taken."""
    check_url(url, label)
    problem = "not sent"
    for attempt in range(2):
        if attempt:
            time.sleep(pause)
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with opener(request, TIMEOUT_S) as answer:
                status = int(answer.status)
                text = answer.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            if status >= 500:
                problem = f"HTTP {status}"
                continue
            raise ChannelError(f"{label}: HTTP {status}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            kind = "time-out" if isinstance(reason, socket.timeout | TimeoutError) else None
            problem = kind or f"connection failed ({type(reason).__name__})"
            continue
        if status >= 500:
            problem = f"HTTP {status}"
            continue
        refused = _accepted(channel_type, status, text)
        if refused is not None:
            raise ChannelError(f"{label}: {refused}")
        return
    raise ChannelError(f"{label}: {problem}, after a retry")


def deliver(
    reader: SecretReader,
    channel: ChannelSpec,
    messages: Sequence[Message],
    now: datetime,
    opener: Opener = _open,
    pause: float = RETRY_PAUSE_S,
) -> ChannelResult:
    """Post the digest ``messages`` to ``channel`` (split or cut to its platform's limit),
    signed at ``now`` when it has a secret. Never raises for the channel's failure: the
    result says it."""
    result = ChannelResult(channel)
    posts = chat_posts(messages, channel.type)
    if not posts:
        return result
    try:
        url = reader.read(channel.webhook_ref, channel.region, channel.label)
        secret_ref = channel.secret_ref
        secret = reader.read(secret_ref, channel.region, channel.label) if secret_ref else None
        check_url(url, channel.label)
        for post in posts:
            target = url
            if channel.type == "dingtalk" and secret is not None:
                target = dingtalk_url(url, secret, now)
            body = encode(payload(channel.type, post, now, secret))
            post_json(target, body, channel.type, channel.label, opener, pause)
            result.posts += 1
            result.left_out = post.left_out
    except ChannelError as exc:
        result.error = str(exc)
    return result
