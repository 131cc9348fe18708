"""``sagesaver prices fetch``: a price file for a host without internet, from the Price List
bulk API, written where there is internet."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from sagesaver.cli.common import EXIT_FAILURES, EXIT_OK, app, err, fail
from sagesaver.core.errors import InputError
from sagesaver.files import write_private

prices_app = typer.Typer(
    short_help="Price files for hosts without internet.",
    help="Price files: SageMaker's on-demand prices from the Price List bulk API, for "
    "--prices on a host that cannot reach the Price List.",
    no_args_is_help=True,
)
app.add_typer(prices_app, name="prices")


class PartitionName(str, Enum):
    """The partitions that publish Price List bulk files."""

    aws = "aws"
    aws_cn = "aws-cn"


@prices_app.command("fetch", short_help="Download SageMaker's prices into one price file.")
def fetch_command(
    out: Annotated[
        Path,
        typer.Option("--out", metavar="FILE", help="Write the price file here.", dir_okay=False),
    ],
    partition: Annotated[
        PartitionName,
        typer.Option("--partition", metavar="[aws|aws-cn]", help="Whose prices (and currency)."),
    ] = PartitionName.aws,
    region: Annotated[
        list[str] | None,
        typer.Option(
            "--region",
            "-r",
            metavar="REGION",
            help="A region whose prices to fetch; repeat for several (default: every region "
            "the partition's SageMaker offer lists).",
        ),
    ] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", hidden=True)] = None,
) -> None:
    """Download the partition's AmazonSageMaker offer files from the Price List bulk API (its
    region index, then each region's current file; no AWS credentials needed) and write one
    compact price file: each region's on-demand Hosting and Notebook prices per instance type,
    in the partition's currency, with the offers' publication dates and URLs. Give it to
    --prices (or SAGESAVER_PRICES, or the policy's prices) where there is no internet.

    Nothing is written unless every download succeeds (exit 1 otherwise)."""
    from sagesaver.aws.price_files import FetchError, fetch_offers
    from sagesaver.core.partitions import partition_of
    from sagesaver.core.policy import check_region
    from sagesaver.core.price_file import compact_document

    name = partition.value
    regions = sorted(set(region or []))
    for code in regions:
        try:
            check_region(code)
        except ValueError as exc:
            raise fail(f"--region {exc}") from exc
        if partition_of(code) != name:
            raise fail(f"--region {code}: {code} is in {partition_of(code)}, not {name}")
    if not out.parent.is_dir():
        raise fail(f"--out {out}: the directory {out.parent} does not exist")
    try:
        files = fetch_offers(name, regions, base_url)
        document = compact_document(name, files, datetime.now(timezone.utc))
    except InputError as exc:
        raise fail(str(exc)) from exc
    except (FetchError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        raise typer.Exit(EXIT_FAILURES) from exc
    _write_atomically(out, json.dumps(document, indent=1) + "\n")
    count = sum(
        len(entry["hosting"]) + len(entry["notebook"]) for entry in document["regions"].values()
    )
    currencies = sorted({e["currency"] for e in document["regions"].values()})
    typer.echo(
        f"{out}: {count} prices in {len(document['regions'])} regions of {name} "
        f"({', '.join(currencies) or 'none'}), published {document['publication_date']}"
    )
    raise typer.Exit(EXIT_OK)


def _write_atomically(out: Path, text: str) -> None:
    """``text`` to ``out`` through a temporary file beside it: all of it or nothing."""
    try:
        write_private(out, text.encode("utf-8"))
    except OSError as exc:
        raise fail(f"--out {out}: cannot write: {exc.strerror or exc}") from exc
