"""The digest as each chat platform's incoming-webhook payload, within its size limit, and the
signatures of the platforms that sign.

Formats (each platform's documented webhook body):

- DingTalk custom robot: ``msgtype: markdown`` (``title``, ``text``); signed with
  ``timestamp`` (milliseconds) and ``sign`` query parameters.
- WeCom (企业微信) group robot: ``msgtype: markdown`` (``content``, at most 4,096 bytes).
- Feishu/Lark custom bot: ``msg_type: interactive``, a card with a header and one ``lark_md``
  block; signed with ``timestamp`` (seconds) and ``sign`` in the body.
- Slack incoming webhook: ``text`` in Slack's mrkdwn (kept under 4,000 characters).
- Microsoft Teams: a ``message`` with one Adaptive Card (1.4) attachment, the format both
  Teams' Workflows webhooks and its older incoming webhooks accept (under 28 KB).

A digest longer than a post is split into posts (each repeating the header and the footer);
beyond :data:`MAX_POSTS` the last post ends with a line saying how many resources were left out
and where to see them all. Text is never cut inside a character.

Pure: the time a signature carries is passed in (``now``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sagesaver.core.digest import Message

# At most this many posts per digest and channel (DingTalk and WeCom take 20 a minute).
MAX_POSTS = 5
ITEM_PREFIX = "- "


@dataclass(frozen=True)
class Limit:
    """How much text one post of a platform carries: ``size`` in ``unit`` (UTF-8 bytes or
    characters) of the text field, and ``body`` bytes of the whole JSON request."""

    size: int
    unit: str  # "bytes" | "chars"
    body: int

    def measure(self, text: str) -> int:
        """The size of ``text`` in this limit's unit."""
        return len(text.encode()) if self.unit == "bytes" else len(text)


# The text each platform's post carries, with room left for the JSON around it.
LIMITS: dict[str, Limit] = {
    "dingtalk": Limit(18_000, "bytes", 20_000),
    "wecom": Limit(4_096, "bytes", 6_000),
    "feishu": Limit(17_000, "bytes", 20_000),
    "slack": Limit(3_900, "chars", 40_000),
    "teams": Limit(24_000, "bytes", 28_000),
}


def cut(text: str, limit: int, measure: Callable[[str], int]) -> str:
    """The longest start of ``text`` within ``limit`` (never half a character)."""
    if measure(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


@dataclass(frozen=True)
class Post:
    """One post of a digest to a channel: its title and its text (the platform's markup)."""

    title: str
    text: str
    left_out: int = 0  # resources this post says were left out


def _parts(messages: Sequence[Message]) -> tuple[str, list[str], list[str], list[str]]:
    """The digest's subject, header lines, resource lines and footer lines (a digest split
    for SNS repeats its header and footer in each message: taken once)."""
    subject = messages[0].subject.split(" (part ")[0]
    header: list[str] = []
    items: list[str] = []
    footer: list[str] = []
    for index, message in enumerate(messages):
        lines = message.body.split("\n")
        first = next((i for i, line in enumerate(lines) if line.startswith(ITEM_PREFIX)), None)
        if first is None:
            if index == 0:
                header = lines
            continue
        last = max(i for i, line in enumerate(lines) if line.startswith(ITEM_PREFIX))
        if index == 0:
            header, footer = lines[:first], lines[last + 1 :]
        items += lines[first : last + 1]
    return subject, header, items, footer


def markdown(lines: Sequence[str]) -> str:
    """Lines as markdown: blocks apart (a blank line between), a run of resource lines as one
    list, other lines of a block one after the other."""
    blocks: list[list[str]] = []
    fresh = True
    for line in lines:
        if not line.strip():
            fresh = True
            continue
        item = line.startswith(ITEM_PREFIX)
        if fresh or item != blocks[-1][-1].startswith(ITEM_PREFIX):
            blocks.append([])
        blocks[-1].append(line)
        fresh = False
    return "\n\n".join("\n".join(block) for block in blocks)


def left_out_line(count: int) -> str:
    """What a truncated digest says of the resources it does not name."""
    noun = "resource" if count == 1 else "resources"
    return f"... and {count} more idle {noun} not shown here: run `sagesaver scan` to see them all."


def chat_posts(messages: Sequence[Message], channel_type: str) -> list[Post]:
    """The digest ``messages`` as posts to a channel of ``channel_type``, each within its
    limit (:data:`LIMITS`): as many posts as needed up to :data:`MAX_POSTS`, the last saying
    how many resources it left out. Empty when there is nothing to tell."""
    if not messages:
        return []
    limit = LIMITS[channel_type]
    subject, header, items, footer = _parts(messages)
    head = markdown(header)
    foot = markdown(footer)
    # the header, the footer, a line of resources left out and the blank lines between
    fixed = sum(limit.measure(t) for t in (head, foot, left_out_line(len(items)))) + 8
    budget = max(limit.size - fixed, limit.size // 4)
    groups: list[list[str]] = [[]]
    used = 0
    for item in items:
        size = limit.measure(item) + 1
        if size > budget:  # one resource longer than a post: its line is cut
            item = cut(item, budget - 4, limit.measure) + "..."
            size = limit.measure(item) + 1
        if groups[-1] and used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(item)
        used += size
    shown = groups[:MAX_POSTS]
    left = sum(len(g) for g in groups[MAX_POSTS:])
    posts = []
    for index, group in enumerate(shown, start=1):
        marker = f" ({index}/{len(shown)})" if len(shown) > 1 else ""
        blocks = [head, markdown(group)]
        last = index == len(shown)
        if last and left:
            blocks.append(left_out_line(left))
        blocks.append(foot)
        text = cut("\n\n".join(b for b in blocks if b), limit.size, limit.measure)
        posts.append(Post(subject + marker, text, left if last else 0))
    return posts


def dingtalk_sign(secret: str, now: datetime) -> tuple[str, str]:
    """DingTalk's signature at ``now``: (timestamp in milliseconds, sign), the sign being
    base64 of HMAC-SHA256 over ``timestamp + "\\n" + secret`` keyed with the secret."""
    timestamp = str(int(now.timestamp() * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return timestamp, base64.b64encode(digest).decode()


def dingtalk_url(url: str, secret: str, now: datetime) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign`` query parameters (url-encoded)."""
    timestamp, sign = dingtalk_sign(secret, now)
    query = urllib.parse.urlencode({"timestamp": timestamp, "sign": sign})
    return url + ("&" if urllib.parse.urlsplit(url).query else "?") + query


def feishu_sign(secret: str, now: datetime) -> tuple[str, str]:
    """Feishu's signature at ``now``: (timestamp in seconds, sign), the sign being base64 of
    HMAC-SHA256 keyed with ``timestamp + "\\n" + secret`` over an empty message."""
    timestamp = str(int(now.timestamp()))
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return timestamp, base64.b64encode(digest).decode()


def _slack_text(post: Post) -> str:
    return f"*{post.title}*\n\n{post.text}"


def payload(channel_type: str, post: Post, now: datetime, secret: str | None = None) -> Any:
    """The JSON body of ``post`` for a channel of ``channel_type`` (Feishu's signed with
    ``secret`` at ``now`` when it has one; DingTalk's signature goes in its URL)."""
    if channel_type == "dingtalk":
        return {
            "msgtype": "markdown",
            "markdown": {"title": post.title, "text": f"#### {post.title}\n\n{post.text}"},
        }
    if channel_type == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": post.text}}
    if channel_type == "feishu":
        body: dict[str, Any] = {}
        if secret is not None:
            timestamp, sign = feishu_sign(secret, now)
            body.update(timestamp=timestamp, sign=sign)
        body.update(
            msg_type="interactive",
            card={
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": post.title}},
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": post.text}}],
            },
        )
        return body
    if channel_type == "slack":
        return {"text": _slack_text(post), "mrkdwn": True}
    if channel_type == "teams":
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {
                    "type": "TextBlock",
                    "text": post.title,
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                },
                {"type": "TextBlock", "text": post.text, "wrap": True},
            ],
        }
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": card,
                }
            ],
        }
    raise ValueError(f"unknown channel type {channel_type!r}")


def encode(body: Any) -> bytes:
    """A payload as sent: JSON in UTF-8 (characters as they are, not escaped)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
