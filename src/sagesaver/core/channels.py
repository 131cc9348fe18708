"""Chat channels of the digest: the policy's ``notify.channels`` and the references they hold.

A channel is a chat platform's incoming webhook (DingTalk, WeCom, Feishu/Lark, Slack,
Microsoft Teams). Its URL and its signing secret are secrets: the policy names where they are
kept (``ssm:/PATH`` in SSM Parameter Store, ``secretsmanager:NAME`` in Secrets Manager), never
the values. :mod:`sagesaver.core.chat` renders the digest for each platform;
:mod:`sagesaver.aws.chat` reads the references and posts.

Pure: no AWS, no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ChannelType = Literal["dingtalk", "wecom", "feishu", "slack", "teams"]
# The platforms whose webhooks can be signed with a secret of their own.
SIGNING_TYPES = frozenset({"dingtalk", "feishu"})
# SSM parameter names: letters, digits and ``_.-/``, a hierarchy starting with ``/``.
SSM_NAME_RE = re.compile(r"^(/[A-Za-z0-9_.\-]+)+$|^[A-Za-z0-9_.\-]+$")
SSM_NAME_MAX = 1011
# Secrets Manager names: letters, digits and ``/_+=.@-``.
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@\-]{1,512}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
STORE_HINT = (
    "store it in SSM Parameter Store as a SecureString and write ssm:/PATH, or in Secrets "
    "Manager and write secretsmanager:NAME"
)


@dataclass(frozen=True)
class Reference:
    """Where a secret value is kept: ``ssm`` (a parameter name) or ``secretsmanager``."""

    service: Literal["ssm", "secretsmanager"]
    name: str

    def __str__(self) -> str:
        return f"{self.service}:{self.name}"

    def arn(self, partition: str, region: str, account: str) -> str:
        """The IAM resource of this value (:func:`reference_arn`)."""
        return reference_arn(self.service, self.name, partition, region, account)


def reference_arn(service: str, name: str, partition: str, region: str, account: str) -> str:
    """The IAM resource of a reference: the parameter's ARN, or the secret's with the
    ``-??????`` suffix Secrets Manager adds to every secret's ARN."""
    if service == "ssm":
        return f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}"
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-??????"


def parse_reference(value: str) -> Reference:
    """``ssm:/PATH`` or ``secretsmanager:NAME`` as a :class:`Reference`. Raises ValueError
    (without repeating the value, which may be a secret written in clear by mistake)."""
    text = value.strip()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise ValueError(f"a URL in clear in the policy is refused: {STORE_HINT}")
    service, _, name = text.partition(":")
    if service == "ssm":
        if len(name) > SSM_NAME_MAX or not SSM_NAME_RE.match(name):
            raise ValueError(
                "ssm: needs a parameter name such as ssm:/sagesaver/slack (letters, digits "
                "and _.-, a path of segments each starting with /)"
            )
        return Reference("ssm", name)
    if service == "secretsmanager":
        if not SECRET_NAME_RE.match(name):
            raise ValueError(
                "secretsmanager: needs a secret name such as secretsmanager:sagesaver/dingtalk "
                "(letters, digits and /_+=.@-, up to 512)"
            )
        return Reference("secretsmanager", name)
    raise ValueError(f"not a reference: {STORE_HINT}")


class ChannelSpec(BaseModel):
    """One chat channel: ``{type: slack, webhook: "ssm:/sagesaver/slack", required: true}``.

    ``webhook`` and ``secret`` are references (:func:`parse_reference`); ``secret`` only for
    the platforms that sign (DingTalk, Feishu). ``required``: a digest counts as delivered
    (and anything is deleted) only if this channel took it. ``owner``: a value of
    ``notify.owner_tag``; the channel then gets that owner's digest instead of the admin's.
    ``region``: where the references are read (default: the run's own region, the Lambda's
    or the CLI's default region)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    type: ChannelType
    webhook: str = Field(min_length=1, max_length=2100)
    secret: str | None = Field(default=None, min_length=1, max_length=2100)
    required: bool = False
    owner: str | None = Field(default=None, min_length=1, max_length=256)
    region: str | None = None

    @field_validator("webhook", "secret")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None:
            parse_reference(value)
        return value.strip() if value is not None else None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not REGION_RE.match(value):
            raise ValueError(f"{value!r} is not a region name (such as cn-north-1)")
        return value

    @model_validator(mode="after")
    def _signing(self) -> ChannelSpec:
        if self.secret is not None and self.type not in SIGNING_TYPES:
            raise ValueError(
                f"secret: {self.type} webhooks are not signed (only dingtalk and feishu are); "
                "remove it"
            )
        return self

    @property
    def webhook_ref(self) -> Reference:
        """Where the webhook URL is kept."""
        return parse_reference(self.webhook)

    @property
    def secret_ref(self) -> Reference | None:
        """Where the signing secret is kept, if the channel signs."""
        return parse_reference(self.secret) if self.secret is not None else None

    @property
    def label(self) -> str:
        """How errors and output name the channel: its type and reference, never the URL
        (``slack (ssm:/sagesaver/slack)``)."""
        return f"{self.type} ({self.webhook_ref})"

    def references(self) -> list[Reference]:
        """The webhook's reference, then the secret's."""
        found = [self.webhook_ref]
        if self.secret_ref is not None:
            found.append(self.secret_ref)
        return found


def channel_references(channels: list[ChannelSpec]) -> dict[str, list[tuple[str | None, str]]]:
    """What the channels read, by service (``ssm``, ``secretsmanager``): (region or None for
    the run's own, name) pairs, each once, sorted."""
    found: dict[str, set[tuple[str | None, str]]] = {"ssm": set(), "secretsmanager": set()}
    for channel in channels:
        for ref in channel.references():
            found[ref.service].add((channel.region, ref.name))
    return {
        service: sorted(pairs, key=lambda p: (p[0] or "", p[1]))
        for service, pairs in found.items()
        if pairs
    }


def owner_problems(channels: list[ChannelSpec], owner_tag: str | None) -> list[str]:
    """Why the channels' ``owner`` cannot be honoured: an owner without ``notify.owner_tag``."""
    if owner_tag is not None:
        return []
    return [
        f"channels.{index}.owner: needs notify.owner_tag (the tag whose value names the owner)"
        for index, channel in enumerate(channels)
        if channel.owner is not None
    ]
