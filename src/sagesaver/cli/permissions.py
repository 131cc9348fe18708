"""``sagesaver permissions`` and ``version``."""

from __future__ import annotations

from typing import Annotated

import typer

from sagesaver import __version__
from sagesaver.cli.common import (
    app,
    fail,
)


@app.command("permissions")
def permissions_command(
    capability: Annotated[
        list[str] | None,
        typer.Option(
            "--capability",
            "-c",
            help="scan, notify, schedule, lifecycle, enforce, restore, all-regions, "
            "live-prices (repeatable; default: all).",
        ),
    ] = None,
) -> None:
    """Print the IAM policy SageSaver needs (least privilege, read-only but sns:Publish)."""
    from sagesaver.core.permissions import CAPABILITIES, policy_document

    chosen = capability or list(CAPABILITIES)
    unknown = [c for c in chosen if c not in CAPABILITIES]
    if unknown:
        raise fail(f"--capability: unknown {', '.join(unknown)}; known: {', '.join(CAPABILITIES)}")
    typer.echo(policy_document(chosen))


@app.command("version")
def version_command() -> None:
    """Print the version."""
    typer.echo(__version__)
