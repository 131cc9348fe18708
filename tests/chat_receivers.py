"""Local stand-ins for the chat platforms' incoming webhooks, one per format.

Each :class:`Receiver` is an ``http.server`` on 127.0.0.1 (port 0) in a thread. It checks a
post the way its platform does (the payload's shape, its size limit, the signature with the
secret the test gave it) and answers as the platform answers: DingTalk and WeCom
``{"errcode": 0}``, Feishu ``{"code": 0}``, Slack ``ok``, Teams an empty 200. A refused post
gets the platform's error answer. ``fail_with`` makes it answer an HTTP status instead (a
number of times, or always), to test failures and retries.

A test that starts one binds a socket: mark it ``@pytest.mark.slow``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TYPES = ("dingtalk", "wecom", "feishu", "slack", "teams")


@dataclass
class Received:
    """One post as the receiver saw it."""

    path: str
    query: dict[str, str]
    body: Any
    size: int


def _dingtalk_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _feishu_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Receiver:
    """One platform's webhook on loopback."""

    kind: str
    secret: str | None = None
    now: datetime | None = None  # the time a signature must carry, when given
    fail_with: int | None = None  # answer this HTTP status...
    fail_times: int = 10**6  # ...this many times
    refuse: str | None = None  # answer the platform's own refusal (bad token...)
    posts: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The webhook URL, with a token in it as the platforms' have."""
        assert self._server is not None
        port = self._server.server_address[1]
        token = f"token-{self.kind}-0123456789abcdef"
        paths = {
            "dingtalk": f"/robot/send?access_token={token}",
            "wecom": f"/cgi-bin/webhook/send?key={token}",
            "feishu": f"/open-apis/bot/v2/hook/{token}",
            "slack": f"/services/T000/B000/{token}",
            "teams": f"/webhookb2/{token}",
        }
        return f"http://127.0.0.1:{port}{paths[self.kind]}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer = receiver.handle(self.path, raw)
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- the platform's checks and answers ---------------------------------------------

    def _error(self, problem: str) -> tuple[int, str]:
        self.problems.append(problem)
        if self.kind in ("dingtalk", "wecom"):
            return 200, json.dumps({"errcode": 310000, "errmsg": problem})
        if self.kind == "feishu":
            return 200, json.dumps({"code": 19021, "msg": problem})
        if self.kind == "slack":
            return 400, "invalid_payload"
        return 400, problem

    def handle(self, path: str, raw: bytes) -> tuple[int, str]:
        self.attempts += 1
        if self.fail_with is not None and self.fail_times > 0:
            self.fail_times -= 1
            return self.fail_with, "failing as told"
        parts = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return self._error("not JSON in UTF-8")
        self.posts.append(Received(parts.path, query, body, len(raw)))
        if self.refuse is not None:
            return self._error(self.refuse)
        problem = getattr(self, f"_check_{self.kind}")(query, body, len(raw))
        if problem:
            return self._error(problem)
        answers = {
            "dingtalk": (200, json.dumps({"errcode": 0, "errmsg": "ok"})),
            "wecom": (200, json.dumps({"errcode": 0, "errmsg": "ok"})),
            "feishu": (200, json.dumps({"code": 0, "msg": "success", "data": {}})),
            "slack": (200, "ok"),
            "teams": (200, ""),
        }
        return answers[self.kind]

    def _timestamp_problem(self, timestamp: str, scale: int) -> str | None:
        if self.now is not None and timestamp != str(int(self.now.timestamp() * scale)):
            return f"timestamp {timestamp} is not the run's time"
        return None

    def _check_dingtalk(self, query: dict[str, str], body: Any, size: int) -> str | None:
        if body.get("msgtype") != "markdown":
            return "msgtype must be markdown"
        markdown = body.get("markdown") or {}
        if not markdown.get("title") or not markdown.get("text"):
            return "markdown needs title and text"
        if size > 20_000:
            return "message too long"
        if self.secret is not None:
            timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
            if sign != _dingtalk_sign(self.secret, timestamp):
                return "sign not match"
            return self._timestamp_problem(timestamp, 1000)
        return None

    def _check_wecom(self, query: dict[str, str], body: Any, size: int) -> str | None:
        if body.get("msgtype") != "markdown":
            return "msgtype must be markdown"
        content = (body.get("markdown") or {}).get("content") or ""
        if not content:
            return "markdown.content missing"
        if len(content.encode()) > 4096:
            return "markdown.content exceed max length 4096"
        return None

    def _check_feishu(self, query: dict[str, str], body: Any, size: int) -> str | None:
        if size > 20 * 1024:
            return "request body too large"
        if body.get("msg_type") != "interactive":
            return "msg_type must be interactive"
        card = body.get("card") or {}
        elements = card.get("elements") or []
        if not card.get("header", {}).get("title", {}).get("content") or not elements:
            return "card needs a header title and elements"
        if self.secret is not None:
            timestamp, sign = str(body.get("timestamp", "")), body.get("sign", "")
            if sign != _feishu_sign(self.secret, timestamp):
                return "sign match fail or timestamp is not within one hour from current time"
            return self._timestamp_problem(timestamp, 1)
        return None

    def _check_slack(self, query: dict[str, str], body: Any, size: int) -> str | None:
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return "no_text"
        if len(text) > 40_000:
            return "msg_too_long"
        return None

    def _check_teams(self, query: dict[str, str], body: Any, size: int) -> str | None:
        if size > 28 * 1024:
            return "request entity too large"
        if body.get("type") != "message":
            return "type must be message"
        attachments = body.get("attachments") or []
        if len(attachments) != 1:
            return "one attachment expected"
        attachment = attachments[0]
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return "not an Adaptive Card"
        card = attachment.get("content") or {}
        if card.get("type") != "AdaptiveCard" or not card.get("body"):
            return "the card needs type AdaptiveCard and a body"
        return None

    # --- what tests read -------------------------------------------------------------

    def texts(self) -> list[str]:
        """The text of each post, wherever its format keeps it."""
        found = []
        for post in self.posts:
            body = post.body
            if self.kind == "dingtalk":
                found.append(body["markdown"]["text"])
            elif self.kind == "wecom":
                found.append(body["markdown"]["content"])
            elif self.kind == "feishu":
                found.append(body["card"]["elements"][0]["text"]["content"])
            elif self.kind == "slack":
                found.append(body["text"])
            else:
                blocks = body["attachments"][0]["content"]["body"]
                found.append("\n".join(b["text"] for b in blocks))
        return found


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    """One started receiver per platform (no secret, no failure: set them before posting)."""
    started = {kind: Receiver(kind).start() for kind in TYPES}
    yield started
    for receiver in started.values():
        receiver.stop()
