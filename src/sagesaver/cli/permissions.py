"""``sagesaver permissions`` and ``version``."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

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
from sagesaver.core.permissions import CAPABILITIES, LIFECYCLE_CONFIG_NAME
from sagesaver.core.policy import load_policy

# A notebook instance lifecycle configuration's name (CreateNotebookInstanceLifecycleConfig).
LIFECYCLE_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


@app.command("permissions", short_help="Print the least-privilege IAM policies.")
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
    union: Annotated[
        bool,
        typer.Option(
            "--union",
            help="One policy for all the chosen capabilities together (default: one each).",
        ),
    ] = False,
    pass_role: Annotated[
        list[str] | None,
        typer.Option(
            "--pass-role",
            metavar="ARN|PATH",
            help="restore: the models' execution role (an ARN), or the path of their roles "
            "(/sagemaker/), that iam:PassRole may pass to SageMaker (repeatable; none given: no "
            "iam:PassRole, and AWS refuses a restore that must create a model).",
        ),
    ] = None,
    lifecycle_config: Annotated[
        list[str] | None,
        typer.Option(
            "--lifecycle-config",
            metavar="NAME",
            help=f"lifecycle: the configuration install writes (repeatable; default: "
            f"{LIFECYCLE_CONFIG_NAME}); no other is written.",
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
    """Print one least-privilege IAM policy per capability (a JSON object: capability ->
    policy), or with --union one policy for all of them.

    Each action is scoped to what it acts on, in the policy's (or --region's) regions and
    partition: SageMaker changes on endpoint/*, notebook-instance/* (etc.) ARNs, lifecycle
    configurations only under --lifecycle-config, sns:Publish on the policy's topic,
    sts:AssumeRole on the member role, iam:PassRole only on --pass-role and only to SageMaker;
    only reads that support no resource-level permissions are on "*". Explicit Deny
    statements refuse what SageSaver refuses: acting on resources carrying the protect tag or
    matching exclude, and changing the protect tag. What can change something: notify
    (publishes), schedule (starts, stops), lifecycle (configurations, attaching), enforce
    (tags, deletes endpoints), restore (creates), studio (deletes apps), release-warm-pools
    (ends warm pools)."""
    from sagesaver.core.partitions import one_partition
    from sagesaver.core.permissions import (
        capability_documents,
        left_to_code,
        role_resources,
        scoped_document,
    )

    chosen = list(dict.fromkeys(capability or CAPABILITIES))
    unknown = [c for c in chosen if c not in CAPABILITIES]
    if unknown:
        raise fail(f"--capability: unknown {', '.join(unknown)}; known: {', '.join(CAPABILITIES)}")
    if account != "*" and not re.fullmatch(r"\d{12}", account):
        raise fail(f"--account {account}: an account id is 12 digits")
    configs = lifecycle_config or [LIFECYCLE_CONFIG_NAME]
    bad = [n for n in configs if not LIFECYCLE_NAME_RE.fullmatch(n)]
    if bad:
        raise fail(f"--lifecycle-config {bad[0]}: letters, digits and '-', up to 63")
    if union and pass_role and "restore" in chosen and "lifecycle" in chosen:
        raise fail(
            "--union with --pass-role: restore's iam:PassRole cannot share a policy with "
            "lifecycle's UpdateNotebookInstance (it could give a notebook the models' role); "
            "print them apart (without --union)"
        )
    try:
        policy = load_policy(policy_file)
    except InputError as exc:
        raise fail(str(exc)) from exc
    regions = list(region or policy.regions) or ["*"]
    topic_region = policy.notify.topic_region
    try:
        partition = (
            one_partition(
                {
                    "--region" if region else "regions": [r for r in regions if r != "*"],
                    "notify.sns_topic_arn": [topic_region] if topic_region else [],
                }
            )
            or "aws"
        )
        roles = role_resources(pass_role or [], partition, account)
    except InputError as exc:
        raise fail(str(exc)) from exc
    options: dict[str, Any] = {
        "regions": regions,
        "account": account,
        "partition": partition,
        "topic_arn": policy.notify.sns_topic_arn,
        "role_name": role_name,
        "delete_config": policy.endpoints.delete_config,
        "tags": policy.endpoints.tags,
        "policy": policy,
        "pass_roles": roles,
        "lifecycle_configs": configs,
    }
    if "restore" in chosen and not roles:
        typer.echo(
            "restore: no iam:PassRole without --pass-role (the models' roles): AWS refuses a "
            "restore that must create a model",
            err=True,
        )
    for line in left_to_code(chosen, policy):
        typer.echo(line, err=True)
    document: dict[str, Any] = (
        scoped_document(chosen, **options) if union else capability_documents(chosen, **options)
    )
    typer.echo(json.dumps(document, indent=2))


@app.command("version", short_help="Print the version.")
def version_command() -> None:
    """Print the version."""
    typer.echo(__version__)
