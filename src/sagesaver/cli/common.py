"""What every command shares: the app, the options defined once, input checks, output."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from platformdirs import user_cache_dir
from rich.console import Console
from typer.core import TyperGroup

from sagesaver.aws.endpoint_configs import ConfigMemory
from sagesaver.aws.session import Aws, call_log, open_session
from sagesaver.core.errors import InputError
from sagesaver.core.model import ScanError, ScanResult
from sagesaver.core.policy import Policy, load_policy
from sagesaver.core.pricing import Pricer
from sagesaver.core.thresholds import CostLimit, CostLimitError, check_cost_limit, parse_cost_limit
from sagesaver.ledger import Ledger
from sagesaver.pipelines.scan import resolve_regions, scan

if TYPE_CHECKING:
    from sagesaver.aws.prices import PriceListTrouble
    from sagesaver.core.price_file import PriceFile
    from sagesaver.pipelines.enforce import EnforcementRun

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT, EXIT_OVER_COST = 0, 1, 2, 3


class ClosedPipe:
    """What a command ends with when its reader closes stdout before it is written
    (``sagesaver scan | head -1``): quietly, exit 0, unless a failure it already knew of
    (:meth:`fails`) makes it 1."""

    code = EXIT_OK

    @classmethod
    def fails(cls, failed: bool) -> None:
        """Known before the output is written: whether the command failed (exit 1)."""
        cls.code = EXIT_FAILURES if failed else EXIT_OK


class _Group(TyperGroup):
    """The ``sagesaver`` command: a closed pipe ends a command as :class:`ClosedPipe` says,
    where click would exit 1 (the code of a region that failed)."""

    def invoke(self, ctx: Any) -> Any:
        ClosedPipe.code = EXIT_OK
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise typer.Exit(ClosedPipe.code) from None


app = typer.Typer(
    name="sagesaver",
    cls=_Group,
    help="Find idle Amazon SageMaker resources, show what they cost, and stop them safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain, one-line usage errors
)
err = Console(stderr=True, highlight=False)


def _print_version(value: bool) -> None:
    if value:
        from sagesaver import __version__

        typer.echo(f"sagesaver {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _top(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Find idle Amazon SageMaker resources, show what they cost, and stop them safely."""


class Output(str, Enum):
    """Output formats."""

    table = "table"
    json = "json"
    csv = "csv"


def _output_option(*formats: Output) -> Any:
    """``-o/--output`` offering only ``formats``, in the help and when parsed: another one is
    bad input (exit 2) naming the choices, as every other option with choices does."""
    choices = ", ".join(repr(f.value) for f in formats)

    def parse(value: str | Output) -> Output:
        text = value.value if isinstance(value, Output) else value
        for chosen in formats:
            if chosen.value == text:
                return chosen
        raise typer.BadParameter(f"{text!r} is not one of {choices}.")

    metavar = "[" + "|".join(f.value for f in formats) + "]"
    return typer.Option("--output", "-o", metavar=metavar, help="Output format.", parser=parse)


PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        "-p",
        metavar="FILE",
        help="Policy YAML file (default: built-in defaults).",
        dir_okay=False,
    ),
]
RegionOpt = Annotated[
    list[str] | None,
    typer.Option("--region", "-r", metavar="REGION", help="Region to scan; repeat for several."),
]
AllRegionsOpt = Annotated[
    bool, typer.Option("--all-regions", help="Scan every enabled region that offers SageMaker.")
]
# Every command prints a table or JSON; those whose result is a list print CSV too.
OutputOpt = Annotated[Output, _output_option(Output.table, Output.json)]
ListOutputOpt = Annotated[Output, _output_option(Output.table, Output.json, Output.csv)]
AccountsOpt = Annotated[
    Path | None,
    typer.Option(
        "--accounts",
        metavar="FILE",
        help="File of account ids to scan (one per line).",
        dir_okay=False,
    ),
]
OrganizationOpt = Annotated[
    bool, typer.Option("--organization", help="Scan every active account of the organisation.")
]
RoleNameOpt = Annotated[
    str,
    typer.Option("--role-name", metavar="NAME", help="Role assumed in each account of a fan-out."),
]
DEFAULT_ROLE_NAME = "SageSaverExecution"
ExternalIdOpt = Annotated[
    str | None,
    typer.Option(
        "--external-id",
        metavar="ID",
        help="The external id the member roles require (sts:ExternalId), sent with each "
        "AssumeRole of a fan-out.",
    ),
]
LedgerOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        metavar="LEDGER",
        help="Where runs, announcements and backups are kept: a file path, or "
        "dynamodb://REGION/TABLE (default: the policy's ledger, else a file in the user's data "
        "directory). A named file must exist for commands that only read it.",
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="AWS profile (credentials, region, endpoint) from the AWS config files; "
        "default: AWS_PROFILE or the standard chain.",
    ),
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log every AWS call to stderr (one line each).")
]
# A command that changes configuration (not a deletion): a plan unless --apply.
ChangesApplyOpt = Annotated[
    bool, typer.Option("--apply", help="Make the changes (default: dry run).")
]
FailOnCostOpt = Annotated[
    str | None,
    typer.Option(
        "--fail-on-cost",
        metavar="AMOUNT[CUR]",
        help="Exit 3 when the known idle cost per hour exceeds AMOUNT (5, 5USD, 30CNY; without "
        "a currency: the scan's one currency), after the normal output. A failed read (exit 1) "
        "wins over it.",
    ),
]
OfflinePricesOpt = Annotated[
    bool,
    typer.Option(
        "--offline-prices",
        help="Use only the bundled price table (default: the AWS Price List API of the "
        "region's partition, cached 7 days, with the table as fallback).",
    ),
]
# Kept so that scripts written for it still run: live prices are the default now.
LivePricesOpt = Annotated[bool, typer.Option("--live-prices", hidden=True)]
PricesOpt = Annotated[
    str | None,
    typer.Option(
        "--prices",
        metavar="FILE",
        help="Prices from this file (`sagesaver prices fetch`'s, or an AWS offer file of "
        "AmazonSageMaker, JSON or CSV; a path or s3://BUCKET/KEY), before the Price List "
        "(default: SAGESAVER_PRICES, else the policy's prices).",
    ),
]
PRICES_ENV = "SAGESAVER_PRICES"


@dataclass
class PriceChoice:
    """The price file of a command: ``--prices``, else ``SAGESAVER_PRICES``, else the policy's
    ``prices``; :func:`prepare` reads it (a local file before any AWS call) into ``file``."""

    option: str | None = None
    file: PriceFile | None = None

    def location(self, policy: Policy) -> tuple[str, str] | None:
        """Where the file is and which setting named it, or None when none did."""
        if self.option:
            return self.option, "--prices"
        if os.environ.get(PRICES_ENV):
            return os.environ[PRICES_ENV], PRICES_ENV
        if policy.prices:
            return policy.prices, "policy: prices"
        return None

    def read(self, policy: Policy, aws: Aws | None = None, region: str | None = None) -> None:
        """Read the file when it is local, or in S3 once ``aws`` is given (exit 2 naming the
        setting, the file and the problem)."""
        from sagesaver.aws.price_files import read_price_file
        from sagesaver.core.policy import PRICES_S3_RE

        found = self.location(policy)
        if found is None or self.file is not None:
            return
        location, setting = found
        if PRICES_S3_RE.match(location) and aws is None:
            return  # read once connected
        try:
            self.file = read_price_file(location, aws, region)
        except InputError as exc:
            raise fail(f"{setting} {exc}") from exc


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error on stderr (as written: brackets in it are not markup) and
    return the exit of bad input (2) to raise."""
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}", markup=True, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (not the one at creation), so stdout stays clean."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"aws: {self.format(record)}\n")


_CALL_HANDLER = _StderrHandler()


def connect(
    profile: str | None = None, verbose: bool = False, external_id: str | None = None
) -> Aws:
    """The AWS connection of a command: its profile's session, checked before any call
    (exit 2 on an unknown profile, no credentials or a bad default region); with ``verbose``,
    each AWS call is logged to stderr. The roles it assumes are asked for with
    ``external_id``, under a session name that says who ran it."""
    call_log.setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose and _CALL_HANDLER not in call_log.handlers:
        call_log.addHandler(_CALL_HANDLER)
        call_log.propagate = False
    try:
        return Aws(open_session(profile), external_id=external_id)
    except InputError as exc:
        raise fail(str(exc)) from exc


def make_pricer(aws: Aws, offline: bool, prices: PriceFile | None = None) -> Pricer:
    """Prices from the price file first (``prices``: :class:`PriceChoice`), then live (the
    partition's Price List API, cached in the user cache directory), falling back to the
    bundled table; no live prices with ``offline``. A Price List that fails is told once on
    stderr (:func:`say_price_list_trouble`)."""
    if offline:
        return Pricer(live_note="--offline-prices", file=prices)
    from sagesaver.aws.prices import LivePrices

    cache = Path(user_cache_dir("sagesaver")) / "prices.json"
    live = LivePrices(aws, cache, on_trouble=say_price_list_trouble)
    return Pricer(live=live, file=prices)


def say_price_list_trouble(trouble: PriceListTrouble) -> None:
    """One line on stderr (never stdout: JSON and CSV stay clean): what the Price List did,
    what the prices are instead, and how to give them or not ask it."""
    sys.stderr.write(
        f"sagesaver: {trouble.describe()}; using cached and bundled prices (unknown where "
        "there are none). Pass --prices FILE to use a price file (`sagesaver prices fetch` "
        "where there is internet), or --offline-prices to skip the Price List.\n"
    )


def show_progress(message: str) -> None:
    if err.is_terminal:
        err.print(f"[dim]{message}[/dim]")


def prepare(
    policy_file: Path | None,
    regions: list[str] | None,
    all_regions: bool,
    profile: str | None = None,
    verbose: bool = False,
    prices: PriceChoice | None = None,
    external_id: str | None = None,
) -> tuple[Aws, Policy, list[str]]:
    """Everything that can be wrong with the input is checked here, before any AWS write;
    a local price file (``prices``) before any AWS call. A fan-out's roles are assumed with
    ``external_id``."""
    policy = load_policy_or_fail(policy_file)
    if prices is not None:
        prices.read(policy)
    aws = connect(profile, verbose, external_id)
    try:
        source = str(policy_file) if policy_file else "policy"
        chosen = resolve_regions(aws, regions or [], all_regions, policy, source)
    except InputError as exc:
        raise fail(str(exc)) from exc
    if prices is not None:
        prices.read(policy, aws, (chosen or [aws.default_region or "us-east-1"])[0])
    return aws, policy, chosen


def fan_out_requested(
    accounts_file: Path | None,
    organization: bool,
    role_name: str,
    external_id: str | None = None,
) -> bool:
    """Check the fan-out options; True when a fan-out over accounts was asked for."""
    from sagesaver.core.accounts import check_external_id, check_role_name

    if accounts_file is not None and organization:
        raise fail("--accounts and --organization cannot be used together")
    try:
        check_role_name(role_name)
        if external_id is not None:
            check_external_id(external_id)
    except InputError as exc:
        raise fail(str(exc)) from exc
    return accounts_file is not None or organization


@contextmanager
def remembered_configs() -> Iterator[ConfigMemory]:
    """The endpoint configurations remembered across runs (every command that scans uses the
    same: ``endpoint-configs.json.gz`` in the user's cache directory, or in
    ``$SAGESAVER_CACHE_DIR``), saved when the block ends, even by an error."""
    from sagesaver.aws.endpoint_configs import default_file_store

    memory = ConfigMemory(default_file_store())
    try:
        yield memory
    finally:
        memory.save()


def scan_with_fan_out(
    aws: Aws,
    regions: list[str],
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    accounts_file: Path | None,
    organization: bool,
    role_name: str,
) -> ScanResult:
    """One account (the caller's), or a fan-out over accounts with an assumed role, with the
    remembered endpoint configurations (:func:`remembered_configs`)."""
    with remembered_configs() as memory:
        return _scan_with_fan_out(
            aws, regions, policy, now, pricer, accounts_file, organization, role_name, memory
        )


def _scan_with_fan_out(
    aws: Aws,
    regions: list[str],
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    accounts_file: Path | None,
    organization: bool,
    role_name: str,
    memory: ConfigMemory,
) -> ScanResult:
    from sagesaver.pipelines.scan import scan_accounts

    if accounts_file is None and not organization:
        return scan(aws, regions, policy, now, pricer, show_progress, memory)
    accounts, error = fan_out_accounts(aws, accounts_file, organization)
    if error is not None:
        return ScanResult(generated_at=now, regions=regions, errors=[error])
    return scan_accounts(
        aws, accounts, role_name, regions, policy, now, pricer, show_progress, memory
    )


def run_fan_out(
    aws: Aws,
    regions: list[str],
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    apply: bool,
    ledger: Ledger | None,
    accounts_file: Path | None,
    organization: bool,
    role_name: str,
) -> tuple[ScanResult, EnforcementRun]:
    """``run`` over accounts: the organisation run's stages in this process
    (:func:`~sagesaver.pipelines.organisation.run_organisation`)."""
    from sagesaver.pipelines.enforce import EnforcementRun, new_run_id
    from sagesaver.pipelines.organisation import run_organisation
    from sagesaver.pipelines.scan import notify_idle

    accounts, error = fan_out_accounts(aws, accounts_file, organization)
    if error is not None:
        result = ScanResult(generated_at=now, regions=regions, errors=[error])
        return result, EnforcementRun([], notify_idle(aws, result, policy, apply, None))
    with remembered_configs() as memory:
        done = run_organisation(
            aws,
            accounts,
            role_name,
            regions,
            policy,
            now,
            pricer,
            apply,
            ledger,
            new_run_id(),
            memory,
        )
    return done.result, done.done


def fan_out_accounts(
    aws: Aws, accounts_file: Path | None, organization: bool
) -> tuple[list[str], ScanError | None]:
    """The accounts of a fan-out: the file's (exit 2 naming the line when it is bad), or the
    organisation's active accounts (or the ListAccounts error)."""
    from sagesaver.core.accounts import load_accounts
    from sagesaver.pipelines.organisation import organisation_accounts

    if accounts_file is not None:
        try:
            return load_accounts(accounts_file), None
        except InputError as exc:
            raise fail(str(exc)) from exc
    return organisation_accounts(aws)


def print_result(result: ScanResult, output: Output) -> None:
    from sagesaver.render.commands import print_scan

    with told_if_cut(result):
        print_scan(result, output.value)


@contextmanager
def told_if_cut(result: ScanResult) -> Iterator[None]:
    """Print a scan's output in the block; when the reader closes the pipe first, its errors
    are still told on stderr, and its exit code is still 1 if there are any."""
    from sagesaver.render.scan import print_errors

    ClosedPipe.fails(bool(result.errors))
    try:
        yield
    except BrokenPipeError:
        print_errors(result.errors)
        raise


def parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise fail(f"--at {text!r}: not an ISO 8601 time (like 2026-11-30T07:05:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def open_ledger_or_fail(
    spec: str | None,
    read_only: bool = False,
    policy: Policy | None = None,
    aws: Aws | None = None,
    profile: str | None = None,
    verbose: bool = False,
) -> Ledger:
    """The ledger of ``--ledger``, else the policy's ``ledger``, else the default file; with
    ``read_only``, a missing file reads as empty and none is created. A DynamoDB ledger is
    reached through ``aws``, else through ``profile``."""
    from sagesaver.ledger import open_ledger

    setting = "--ledger"
    if spec is None and policy is not None and policy.ledger is not None:
        spec, setting = policy.ledger, "policy: ledger"
    if aws is None and spec is not None and spec.startswith("dynamodb://"):
        aws = connect(profile, verbose)
    try:
        return open_ledger(spec, read_only=read_only, setting=setting, aws=aws)
    except InputError as exc:
        raise fail(str(exc)) from exc


def load_policy_or_fail(policy_file: Path | None) -> Policy:
    """The policy file (no AWS call), or exit 2 naming what is wrong."""
    try:
        return load_policy(policy_file)
    except InputError as exc:
        raise fail(str(exc)) from exc


def cost_limit(text: str | None) -> CostLimit | None:
    """``--fail-on-cost`` read before any AWS call (bad input: exit 2)."""
    if text is None:
        return None
    try:
        return parse_cost_limit(text)
    except CostLimitError as exc:
        raise fail(str(exc)) from exc


def exit_code(result: ScanResult, limit: CostLimit | None) -> int:
    """A scan's exit code, its output printed: 2 when ``--fail-on-cost`` cannot be judged (its
    currency), else 1 when anything failed (the cost is then incomplete), else 3 when the idle
    cost exceeds the limit, else 0. The limit's verdict is told on stderr."""
    if limit is not None:
        try:
            over, text = check_cost_limit(result.decisions, result.regions, limit)
        except CostLimitError as exc:
            return fail(str(exc)).exit_code
        err.print(f"{'error: ' if over else ''}{text}", markup=False, soft_wrap=True)
        if over and not result.errors:
            return EXIT_OVER_COST
    return EXIT_FAILURES if result.errors else EXIT_OK
