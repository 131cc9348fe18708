"""``sagesaver permissions`` and ``version``."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from sagesaver import __version__
from sagesaver.cli.common import (
    DEFAULT_ROLE_NAME,
    PolicyOpt,
    RegionOpt,
    RoleNameOpt,
    app,
    fail,
)
from sagesaver.core.errors import InputError
from sagesaver.core.permissions import CAPABILITIES
from sagesaver.core.policy import load_policy


@app.command("permissions", short_help="Print the least-privilege IAM policy.")
def permissions_command(
    capability: Annotated[
        list[str] | None,
        typer.Option(
            "--capability",
            "-c",
            metavar="CAPABILITY",
            help=f"One of {', '.join(CAPABILITIES)} (repeatable; default: all).",
        ),
    ] = None,
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    account: Annotated[
        str,
        typer.Option(
            "--account",
            metavar="ACCOUNT_ID",
            help="The account id the resources are in (default: *).",
        ),
    ] = "*",
    role_name: RoleNameOpt = DEFAULT_ROLE_NAME,
) -> None:
    """Print the least-privilege IAM policy for the chosen capabilities.

    Each action is scoped to what it acts on, in the policy's (or --region's) regions and
    partition: SageMaker changes on endpoint/*, notebook-instance/* (etc.) ARNs, sns:Publish on
    the policy's topic, sts:AssumeRole on the member role, iam:PassRole only to SageMaker;
    only reads that support no resource-level permissions are on "*". What can change
    something: notify (publishes), schedule (starts, stops), lifecycle (configurations,
    attaching), enforce (tags, deletes endpoints), restore (creates), studio (deletes apps)."""
    from sagesaver.core.permissions import partition_of, scoped_document

    chosen = capability or list(CAPABILITIES)
    unknown = [c for c in chosen if c not in CAPABILITIES]
    if unknown:
        raise fail(f"--capability: unknown {', '.join(unknown)}; known: {', '.join(CAPABILITIES)}")
    if account != "*" and not re.fullmatch(r"\d{12}", account):
        raise fail(f"--account {account}: an account id is 12 digits")
    try:
        policy = load_policy(policy_file)
    except InputError as exc:
        raise fail(str(exc)) from exc
    regions = list(region or policy.regions) or ["*"]
    partitions = {partition_of(r) for r in regions if r != "*"} or {"aws"}
    if len(partitions) > 1:
        raise fail(f"--region: regions of several partitions ({', '.join(sorted(partitions))})")
    document = scoped_document(
        chosen,
        regions,
        account,
        partitions.pop(),
        policy.notify.sns_topic_arn,
        role_name,
        policy.endpoints.delete_config,
        policy.endpoints.tags,
    )
    typer.echo(json.dumps(document, indent=2))


@app.command("version", short_help="Print the version.")
def version_command() -> None:
    """Print the version."""
    typer.echo(__version__)
