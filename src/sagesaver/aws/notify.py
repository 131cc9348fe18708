"""Publish notifications to SNS."""

from __future__ import annotations

from sagesaver.aws.session import Aws
from sagesaver.core.digest import Message


def publish(aws: Aws, topic_arn: str, messages: list[Message]) -> list[str]:
    """Publish each message to the topic (in the topic's own region); return message ids."""
    region = topic_arn.split(":")[3]
    client = aws.sns(region)
    return [
        client.publish(TopicArn=topic_arn, Subject=m.subject, Message=m.body)["MessageId"]
        for m in messages
    ]
