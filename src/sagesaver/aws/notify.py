"""Publish notifications to SNS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sagesaver.aws.session import Aws
from sagesaver.core.digest import Message

if TYPE_CHECKING:
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef


def publish(
    aws: Aws,
    topic_arn: str,
    messages: list[Message],
    attributes: Mapping[str, str] | None = None,
) -> list[str]:
    """Publish each message to the topic (in the topic's own region); return message ids.

    ``attributes`` become String message attributes, which subscription filter policies match.
    """
    region = topic_arn.split(":")[3]
    client = aws.sns(region)
    tagged: dict[str, MessageAttributeValueTypeDef] = {
        name: {"DataType": "String", "StringValue": value}
        for name, value in (attributes or {}).items()
    }
    ids = []
    for m in messages:
        if tagged:
            answer = client.publish(
                TopicArn=topic_arn, Subject=m.subject, Message=m.body, MessageAttributes=tagged
            )
        else:
            answer = client.publish(TopicArn=topic_arn, Subject=m.subject, Message=m.body)
        ids.append(answer["MessageId"])
    return ids
