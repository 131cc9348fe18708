"""Chat channels in the policy, the digest as each platform's payload within its limit, the
signatures, and the IAM grants on exactly the references the channels name."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from datetime import datetime, timezone
from typing import Any

import pytest

from sagesaver.core.channels import ChannelSpec, channel_references
from sagesaver.core.chat import (
    LIMITS,
    MAX_POSTS,
    chat_posts,
    dingtalk_sign,
    dingtalk_url,
    encode,
    feishu_sign,
    payload,
)
from sagesaver.core.digest import Message
from sagesaver.core.errors import PolicyError
from sagesaver.core.permissions import capability_documents, scoped_document
from sagesaver.core.policy import parse_policy
from sagesaver.deploy.iam import FUNCTIONS
from sagesaver.deploy.names import IDLE_SCAN, SCHEDULE_TICK
from sagesaver.deploy.template import render_template

NOW = datetime(2026, 3, 2, 8, 30, 15, 250000, tzinfo=timezone.utc)
TYPES = ("dingtalk", "wecom", "feishu", "slack", "teams")
CHANNELS = """
notify:
  owner_tag: team
  channels:
    - {type: slack, webhook: "ssm:/sagesaver/slack", required: true}
    - type: dingtalk
      webhook: "secretsmanager:sagesaver/dingtalk"
      secret: "ssm:/sagesaver/ding-sign"
    - {type: wecom, webhook: "ssm:/sagesaver/wecom", owner: "team-a"}
    - type: feishu
      webhook: "ssm:/sagesaver/feishu"
      secret: "secretsmanager:sagesaver/feishu-sign"
      region: eu-west-1
"""


def problem(text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    return str(caught.value)


# --- the policy --------------------------------------------------------------------------


def test_the_issue_s_channels_are_read_with_their_defaults() -> None:
    channels = parse_policy(CHANNELS).notify.channels
    assert [c.type for c in channels] == ["slack", "dingtalk", "wecom", "feishu"]
    assert [c.required for c in channels] == [True, False, False, False]
    assert channels[1].label == "dingtalk (secretsmanager:sagesaver/dingtalk)"
    assert str(channels[1].secret_ref) == "ssm:/sagesaver/ding-sign"
    assert channels[2].owner == "team-a" and channels[3].region == "eu-west-1"
    assert parse_policy(CHANNELS).notify.can_announce
    assert not parse_policy("notify: {}").notify.can_announce


def test_a_webhook_url_in_clear_is_refused_without_repeating_it() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc123SECRETTOKEN"
    text = f'notify:\n  channels:\n    - {{type: dingtalk, webhook: "{url}"}}\n'
    message = problem(text)
    assert message.startswith("policy.yaml:3: notify.channels.0.webhook:")
    assert "SSM Parameter Store as a SecureString" in message and "Secrets Manager" in message
    assert "abc123SECRETTOKEN" not in message and "dingtalk.com" not in message


@pytest.mark.parametrize(
    ("channel", "where", "words"),
    [
        ('{type: slack, webhook: "ssm:/a", secret: "ssm:/b"}', "notify.channels.0", "not signed"),
        ('{type: irc, webhook: "ssm:/a"}', "notify.channels.0.type", "'dingtalk'"),
        ('{type: teams, webhook: "ssm:a b"}', "notify.channels.0.webhook", "parameter name"),
        ('{type: teams, webhook: "vault:x"}', "notify.channels.0.webhook", "not a reference"),
        ('{type: teams, webhook: "ssm:/a", colour: red}', "notify.channels.0.colour", "unknown"),
        (
            '{type: feishu, webhook: "ssm:/a", secret: "s3cr3t"}',
            "notify.channels.0.secret",
            "reference",
        ),
        ('{type: teams, webhook: "ssm:/a", owner: x}', "notify", "needs notify.owner_tag"),
        ('{type: teams, webhook: "ssm:/a", region: Mars}', "notify.channels.0.region", "region"),
    ],
)
def test_bad_channels_name_the_key_and_the_line(channel: str, where: str, words: str) -> None:
    message = problem(f"notify:\n  channels:\n    - {channel}\n")
    assert f": {where}" in message and words in message, message
    assert "s3cr3t" not in message


def test_references_are_listed_once_per_service_and_region() -> None:
    channels = parse_policy(CHANNELS).notify.channels
    assert channel_references(channels) == {
        "ssm": [
            (None, "/sagesaver/ding-sign"),
            (None, "/sagesaver/slack"),
            (None, "/sagesaver/wecom"),
            ("eu-west-1", "/sagesaver/feishu"),
        ],
        "secretsmanager": [
            (None, "sagesaver/dingtalk"),
            ("eu-west-1", "sagesaver/feishu-sign"),
        ],
    }


# --- the posts ---------------------------------------------------------------------------


def digest(lines: list[str], parts: int = 1) -> list[Message]:
    """A digest as core/digest builds it (header, resource lines, footer), in ``parts``."""
    header = [
        "SageSaver found 3 idle SageMaker endpoints in cn-north-1",
        "at 2026-03-02 08:30.",
        "",
    ]
    footer = ["", "Protect a resource from SageSaver with the tag sagesaver:protect=true."]
    size = -(-len(lines) // parts)
    return [
        Message(
            f"SageSaver: {len(lines)} idle endpoints"
            + (f" (part {i + 1}/{parts})" if parts > 1 else ""),
            "\n".join(header + lines[i * size : (i + 1) * size] + footer),
        )
        for i in range(parts)
    ]


def chinese_lines(count: int, width: int = 60) -> list[str]:
    return [
        f"- 端点-{i:04d} (cn-north-1): 空闲 {'推理服务' * width} 每小时 ¥12.50"
        for i in range(count)
    ]


@pytest.mark.parametrize("kind", TYPES)
def test_a_long_chinese_digest_is_split_within_each_limit_and_nothing_is_lost(kind: str) -> None:
    lines = chinese_lines(40, width=10)
    posts = chat_posts(digest(lines, parts=2), kind)
    limit = LIMITS[kind]
    shown = [line for post in posts for line in post.text.split("\n") if line.startswith("- ")]
    assert shown == lines  # every resource, once, in order, none cut
    if kind == "wecom":
        assert len(posts) > 1
    for index, post in enumerate(posts, start=1):
        assert limit.measure(post.text) <= limit.size
        assert len(encode(payload(kind, post, NOW, "sec"))) <= limit.body
        assert "SageSaver found 3 idle" in post.text and "sagesaver:protect=true" in post.text
        assert post.title.endswith(f" ({index}/{len(posts)})") or len(posts) == 1
        assert "(part " not in post.title
        assert post.left_out == 0


def test_beyond_the_posts_allowed_it_says_how_many_were_left_out_and_where_to_see_them() -> None:
    lines = chinese_lines(200, width=20)
    posts = chat_posts(digest(lines), "wecom")
    assert len(posts) == MAX_POSTS
    shown = [line for post in posts for line in post.text.split("\n") if line.startswith("- ")]
    assert shown == lines[: len(shown)]
    left = len(lines) - len(shown)
    assert left > 0 and posts[-1].left_out == left
    assert f"{left} more idle resources not shown here" in posts[-1].text
    assert "sagesaver scan" in posts[-1].text
    assert all(len(p.text.encode()) <= 4096 for p in posts)


def test_a_line_longer_than_a_post_is_cut_between_characters() -> None:
    line = "- " + "数据" * 3000  # 18,002 bytes: more than a WeCom post
    posts = chat_posts(digest([line]), "wecom")
    assert len(posts) == 1
    text = posts[0].text
    assert len(text.encode()) <= 4096
    cut_line = next(li for li in text.split("\n") if li.startswith("- "))
    assert cut_line.endswith("...") and set(cut_line[2:-3]) == {"数", "据"}
    text.encode().decode("utf-8", errors="strict")  # whole characters only


def test_nothing_to_tell_is_no_post() -> None:
    assert chat_posts([], "slack") == []


def test_payload_shapes() -> None:
    post = chat_posts(digest(["- ep-1 (us-east-1): idle 26 h"]), "slack")[0]
    assert payload("slack", post, NOW) == {
        "text": f"*{post.title}*\n\n{post.text}",
        "mrkdwn": True,
    }
    ding = payload("dingtalk", post, NOW)
    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"] == post.title
    assert ding["markdown"]["text"].endswith(post.text)
    assert payload("wecom", post, NOW) == {
        "msgtype": "markdown",
        "markdown": {"content": post.text},
    }
    feishu = payload("feishu", post, NOW)
    assert "sign" not in feishu and feishu["msg_type"] == "interactive"
    assert feishu["card"]["elements"][0]["text"] == {"tag": "lark_md", "content": post.text}
    teams = payload("teams", post, NOW)
    card = teams["attachments"][0]["content"]
    assert teams["type"] == "message" and card["type"] == "AdaptiveCard"
    assert [b["text"] for b in card["body"]] == [post.title, post.text]
    assert json.loads(encode(teams)) == teams


# --- signatures --------------------------------------------------------------------------


def test_dingtalk_signs_the_timestamp_and_secret_at_the_time_given() -> None:
    secret = "SEC0123456789abcdef"
    timestamp, sign = dingtalk_sign(secret, NOW)
    assert timestamp == "1772440215250"  # milliseconds of NOW
    expected = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    assert sign == base64.b64encode(expected.digest()).decode()
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=t", secret, NOW)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query == {"access_token": "t", "timestamp": timestamp, "sign": sign}
    assert "+" not in url.split("sign=")[1] or "%2B" in url  # url-encoded
    assert dingtalk_sign(secret, NOW.replace(second=16))[1] != sign


def test_feishu_signs_with_the_timestamp_and_secret_as_the_key() -> None:
    secret = "feishu-secret"
    timestamp, sign = feishu_sign(secret, NOW)
    assert timestamp == "1772440215"  # seconds
    key = f"{timestamp}\n{secret}".encode()
    assert sign == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    post = chat_posts(digest(["- x"]), "feishu")[0]
    body = payload("feishu", post, NOW, secret)
    assert (body["timestamp"], body["sign"]) == (timestamp, sign)


# --- IAM -----------------------------------------------------------------------------------


def grants(document: dict[str, Any]) -> dict[str, Any]:
    return {s["Sid"]: s for s in document["Statement"]}


def test_permissions_grant_exactly_the_named_references_for_notify() -> None:
    policy = parse_policy(CHANNELS)
    docs = capability_documents(
        ["notify", "scan"],
        regions=["cn-north-1"],
        account="123456789012",
        partition="aws-cn",
        policy=policy,
    )
    notify = grants(docs["notify"])
    assert notify["ChatWebhookParameters"]["Action"] == ["ssm:GetParameter"]
    assert notify["ChatWebhookParameters"]["Resource"] == [
        "arn:aws-cn:ssm:*:123456789012:parameter/sagesaver/ding-sign",
        "arn:aws-cn:ssm:*:123456789012:parameter/sagesaver/slack",
        "arn:aws-cn:ssm:*:123456789012:parameter/sagesaver/wecom",
        "arn:aws-cn:ssm:eu-west-1:123456789012:parameter/sagesaver/feishu",
    ]
    assert notify["ChatWebhookSecrets"]["Resource"] == [
        "arn:aws-cn:secretsmanager:*:123456789012:secret:sagesaver/dingtalk-??????",
        "arn:aws-cn:secretsmanager:eu-west-1:123456789012:secret:sagesaver/feishu-sign-??????",
    ]
    scan_actions = {a for s in docs["scan"]["Statement"] for a in s["Action"]}
    assert not scan_actions & {"ssm:GetParameter", "secretsmanager:GetSecretValue"}
    plain = scoped_document(["notify"], policy=parse_policy("notify: {}"))
    assert {s["Sid"] for s in plain["Statement"]} == {"Notify"}


def test_the_stack_grants_exactly_the_named_references_in_its_partition() -> None:
    policy = parse_policy(CHANNELS)
    spec = FUNCTIONS[IDLE_SCAN]
    assert {"ssm:GetParameter", "secretsmanager:GetSecretValue"} <= set(spec.actions_for(policy))
    template = render_template(policy, "code-bucket", "sagesaver.zip", [])
    role = template["Resources"][f"{IDLE_SCAN}Role"]["Properties"]
    statements = grants(role["Policies"][0]["PolicyDocument"])
    tick = template["Resources"].get(f"{SCHEDULE_TICK}Role")
    assert tick is None or "ChatWebhookParameters" not in json.dumps(tick)
    parameters = [r["Fn::Sub"] for r in statements["ChatWebhookParameters"]["Resource"]]
    assert parameters == [
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/sagesaver/ding-sign",
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/sagesaver/slack",
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/sagesaver/wecom",
        "arn:${AWS::Partition}:ssm:eu-west-1:${AWS::AccountId}:parameter/sagesaver/feishu",
    ]
    secrets = [r["Fn::Sub"] for r in statements["ChatWebhookSecrets"]["Resource"]]
    assert secrets == [
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:sagesaver/dingtalk-??????",
        "arn:${AWS::Partition}:secretsmanager:eu-west-1:${AWS::AccountId}:secret:sagesaver/feishu-sign-??????",
    ]
    without = parse_policy("notify: {}")
    assert not {"ssm:GetParameter", "secretsmanager:GetSecretValue"} & set(
        spec.actions_for(without)
    )


def test_a_channel_spec_never_shows_its_secret_reference_as_a_value() -> None:
    channel = ChannelSpec(type="feishu", webhook="ssm:/x/hook", secret="ssm:/x/sign")
    assert channel.label == "feishu (ssm:/x/hook)"
