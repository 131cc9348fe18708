"""``sagesaver deploy``: the Lambda package and the CloudFormation stack."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from sagesaver.cli.common import (
    DEFAULT_ROLE_NAME,
    EXIT_FAILURES,
    EXIT_OK,
    ExternalIdOpt,
    PolicyOpt,
    ProfileOpt,
    RoleNameOpt,
    VerboseOpt,
    app,
    connect,
    err,
    fail,
    show_progress,
)
from sagesaver.core.errors import InputError
from sagesaver.core.formats import plural
from sagesaver.core.policy import check_region, load_policy
from sagesaver.render import scan as report

deploy_app = typer.Typer(
    short_help="Run SageSaver serverless (Lambda, CloudFormation).",
    help="Run SageSaver serverless: Lambda package and CloudFormation stack.",
    no_args_is_help=True,
)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("package", short_help="Build the Lambda deployment package (zip).")
def deploy_package_command(
    zip_file: Annotated[
        Path,
        typer.Option("--zip", metavar="FILE", help="Where to write the zip.", dir_okay=False),
    ] = Path("sagesaver-lambda.zip"),
    architecture: Annotated[
        str,
        typer.Option(
            "--architecture", metavar="[x86_64|arm64]", help="x86_64 or arm64 (Lambda's)."
        ),
    ] = "x86_64",
) -> None:
    """Build the Lambda deployment package (Python 3.13): SageSaver and the wheels the
    runtime lacks, for the chosen architecture. Reproducible: the same input gives the same
    bytes."""
    from sagesaver.deploy.package import build_package

    try:
        info = build_package(zip_file, architecture, progress=show_progress)
    except InputError as exc:
        raise fail(str(exc)) from exc
    except RuntimeError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILURES) from exc
    typer.echo(
        f"{info.path}: {info.size_bytes / 1e6:.1f} MB, {info.files} files, sha256 {info.sha256}"
    )


CodeBucketOpt = Annotated[
    str,
    typer.Option("--code-bucket", metavar="BUCKET", help="S3 bucket holding the Lambda package."),
]
CodeKeyOpt = Annotated[
    str, typer.Option("--code-key", metavar="KEY", help="S3 key of the Lambda package.")
]
EmailOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--email", metavar="ADDRESS", help="Subscribe this address to notifications (repeatable)."
    ),
]
ArchitectureOpt = Annotated[
    str | None,
    typer.Option(
        "--architecture",
        metavar="[x86_64|arm64]",
        help="x86_64 or arm64 (default: the package's, else x86_64).",
    ),
]
PackageOpt = Annotated[
    Path | None,
    typer.Option(
        "--package",
        metavar="FILE",
        help="The zip from 'deploy package': the template takes its architecture and runtime.",
        dir_okay=False,
    ),
]


CodeVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--code-version",
        metavar="VERSION_ID",
        help="Pin the package's S3 object version (a versioned bucket): a later upload under "
        "the same key changes nothing until the stack is updated.",
    ),
]
SigningOpt = Annotated[
    str | None,
    typer.Option(
        "--code-signing-config",
        metavar="ARN",
        help="Lambda code signing configuration: only packages signed by its profiles deploy.",
    ),
]
ReservedOpt = Annotated[
    int | None,
    typer.Option(
        "--reserved-concurrency",
        metavar="N",
        help="Reserve N executions per function (default: none; the ledger's leases already "
        "keep runs apart, and reserving fails where unreserved concurrency is at its minimum).",
    ),
]
OperatorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--operator",
        metavar="ARN",
        help="An IAM role or user ARN (ArnLike '*' allowed) who may read the ledger's key, "
        "to run backups and restore from a laptop (repeatable).",
    ),
]


MemberRoleOpt = Annotated[
    bool,
    typer.Option(
        "--member-role",
        help="Print instead the template of the role each member account needs for "
        "--accounts/--organization (--role-name): trusting --caller-role alone, from --org-id, "
        "with --external-id; granted what a run does there under the policy.",
    ),
]
CallerRoleOpt = Annotated[
    str | None,
    typer.Option(
        "--caller-role",
        metavar="ARN",
        help="--member-role: the role that runs SageSaver and assumes the member role.",
    ),
]
OrgIdOpt = Annotated[
    str | None,
    typer.Option(
        "--org-id",
        metavar="ORG_ID",
        help="--member-role: the caller's organisation (o-...); no other may assume the role. "
        "--organization: the stack's OrganizationId (else asked at deployment).",
    ),
]
OrganizationOpt = Annotated[
    bool,
    typer.Option(
        "--organization",
        help="Print instead the organisation stack: a Step Functions state machine that plans, "
        "announces and acts in every account of the organisation through its member roles "
        "(--member-role-name, --org-id); see docs/ORGANISATION.md.",
    ),
]
MemberRoleNameOpt = Annotated[
    str | None,
    typer.Option(
        "--member-role-name",
        metavar="NAME",
        help="--organization: the member roles' name, the stack's MemberRoleName "
        "(default SageSaverExecution).",
    ),
]


def _render_member(
    policy_file: Path | None,
    caller_role: str | None,
    org_id: str | None,
    external_id: str | None,
    role_name: str,
    region: str | None,
    stack_only: dict[str, Any],
) -> dict[str, Any]:
    """The member role's template (``--member-role``); exit 2 naming what is wrong."""
    from sagesaver.deploy.member import member_role_template

    given = [name for name, value in stack_only.items() if value is not None]
    if given:
        raise fail(f"--member-role prints the member role alone: {', '.join(given)} is not for it")
    if caller_role is None:
        raise fail("--member-role needs --caller-role ARN (the role that runs SageSaver)")
    if org_id is None:
        raise fail("--member-role needs --org-id (the organisation the caller is in, o-...)")
    try:
        if region is not None:
            check_region(region)
        return member_role_template(
            load_policy(policy_file),
            caller_role,
            org_id,
            role_name=role_name,
            external_id=external_id,
            region=region,
        )
    except ValueError as exc:  # a region name of the wrong shape
        raise fail(f"--region: {exc}") from exc
    except InputError as exc:
        raise fail(str(exc)) from exc


def _options(
    code_version: str | None,
    signing: str | None,
    reserved: int | None,
    operators: list[str] | None,
) -> Any:
    from sagesaver.deploy.resources import StackOptions

    return StackOptions(code_version, signing, reserved, tuple(operators or ()))


def _render(
    policy_file: Path | None,
    code_bucket: str,
    code_key: str,
    email: list[str] | None,
    architecture: str | None,
    package: Path | None,
    region: str | None = None,
    options: Any = None,
    organisation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The single-account template, or with ``organisation`` (the organisation stack's
    member role name and organisation id) the organisation stack; exit 2 naming what is
    wrong."""
    from sagesaver.deploy.organisation import organisation_template
    from sagesaver.deploy.package import RUNTIME, read_manifest
    from sagesaver.deploy.resources import StackOptions
    from sagesaver.deploy.template import deployment_gaps, render_template

    try:
        runtime = RUNTIME
        if package is not None:
            built = read_manifest(package)
            if architecture is not None and architecture != built["architecture"]:
                raise InputError(
                    f"--architecture {architecture}: the package {package} was built for "
                    f"{built['architecture']}; leave --architecture out, or build it again"
                )
            architecture, runtime = built["architecture"], built["runtime"]
        policy = load_policy(policy_file)
        if region is not None:
            check_region(region)
        for gap in deployment_gaps(policy, region):
            typer.echo(f"note: {gap.message}", err=True)
        if organisation is not None:
            return organisation_template(
                policy,
                code_bucket,
                code_key,
                email or [],
                architecture or "x86_64",
                runtime=runtime,
                region=region,
                options=options or StackOptions(),
                **organisation,
            )
        return render_template(
            policy,
            code_bucket,
            code_key,
            email or [],
            architecture or "x86_64",
            runtime=runtime,
            region=region,
            options=options or StackOptions(),
        )
    except ValueError as exc:  # a region name of the wrong shape
        raise fail(f"--region: {exc}") from exc
    except InputError as exc:
        raise fail(str(exc)) from exc


@deploy_app.command("render", short_help="Print the CloudFormation template.")
def deploy_render_command(
    policy_file: PolicyOpt = None,
    code_bucket: CodeBucketOpt = "sagesaver-artifacts",
    code_key: CodeKeyOpt = "sagesaver-lambda.zip",
    email: EmailOpt = None,
    architecture: ArchitectureOpt = None,
    package: PackageOpt = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            "-r",
            metavar="REGION",
            help="The stack's region (default: the boto3 default region): its partition must "
            "be the policy's; what CloudFormation lacks there is left out or refused.",
        ),
    ] = None,
    code_version: CodeVersionOpt = None,
    code_signing_config: SigningOpt = None,
    reserved_concurrency: ReservedOpt = None,
    operator: OperatorOpt = None,
    member_role: MemberRoleOpt = False,
    caller_role: CallerRoleOpt = None,
    org_id: OrgIdOpt = None,
    external_id: ExternalIdOpt = None,
    role_name: RoleNameOpt = DEFAULT_ROLE_NAME,
    organization: OrganizationOpt = False,
    member_role_name: MemberRoleNameOpt = None,
) -> None:
    """Print the CloudFormation template (JSON): functions, schedules in their time zones,
    topic, ledger table, lifecycle configuration, logs, least-privilege roles. With
    --member-role, the template of the role a fan-out assumes in each member account; with
    --organization, the organisation stack (Step Functions)."""
    from sagesaver.aws.session import Aws

    if organization:
        template = _render_organisation_stack(
            policy_file,
            code_bucket,
            code_key,
            email,
            architecture,
            package,
            region,
            _options(code_version, code_signing_config, reserved_concurrency, operator),
            {
                "--member-role": member_role or None,
                "--caller-role": caller_role,
                "--external-id": external_id,
                "--role-name": None if role_name == DEFAULT_ROLE_NAME else role_name,
            },
            member_role_name,
            org_id,
        )
        typer.echo(json.dumps(template, indent=2))
        return
    if member_role_name is not None:
        raise fail("--member-role-name goes with --organization (--member-role takes --role-name)")
    if member_role:
        stack_only = {
            "--email": email,
            "--architecture": architecture,
            "--package": package,
            "--code-version": code_version,
            "--code-signing-config": code_signing_config,
            "--reserved-concurrency": reserved_concurrency,
            "--operator": operator,
        }
        member = _render_member(
            policy_file, caller_role, org_id, external_id, role_name, region, stack_only
        )
        typer.echo(json.dumps(member, indent=2))
        return
    for name, value in (
        ("--caller-role", caller_role),
        ("--org-id", org_id),
        ("--external-id", external_id),
    ):
        if value is not None:
            raise fail(f"{name} goes with --member-role (--org-id also with --organization)")
    where = region or Aws().default_region  # reads the configuration only: no AWS call
    options = _options(code_version, code_signing_config, reserved_concurrency, operator)
    template = _render(
        policy_file, code_bucket, code_key, email, architecture, package, where, options
    )
    typer.echo(json.dumps(template, indent=2))


def _render_organisation_stack(
    policy_file: Path | None,
    code_bucket: str,
    code_key: str,
    email: list[str] | None,
    architecture: str | None,
    package: Path | None,
    region: str | None,
    options: Any,
    not_for_it: dict[str, Any],
    member_role_name: str | None,
    org_id: str | None,
) -> dict[str, Any]:
    """The organisation stack's template (``--organization``); exit 2 naming what is wrong:
    ``not_for_it`` are the options given that belong to the member role."""
    from sagesaver.aws.session import Aws

    reasons = {
        "--member-role": "render the member role and the organisation stack one at a time",
        "--caller-role": "the member roles trust the stack's FanOutRoleArn output; give it "
        "to --member-role --caller-role",
        "--external-id": "give it as the stack's ExternalId parameter when you deploy it "
        "(NoEcho there, never in the template)",
        "--role-name": "name the member roles with --member-role-name",
    }
    for name, value in not_for_it.items():
        if value is not None:
            raise fail(f"--organization does not take {name}: {reasons[name]}")
    where = region or Aws().default_region  # reads the configuration only: no AWS call
    organisation: dict[str, Any] = {"org_id": org_id}
    if member_role_name is not None:
        organisation["member_role_name"] = member_role_name
    return _render(
        policy_file,
        code_bucket,
        code_key,
        email,
        architecture,
        package,
        where,
        options,
        organisation=organisation,
    )


StackOpt = Annotated[
    str, typer.Option("--stack-name", metavar="NAME", help="CloudFormation stack name.")
]


def _check_stack_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,49}", name):
        raise fail(
            f"--stack-name {name!r}: a letter, then letters, digits and '-', at most 50 "
            "characters (the function names add a suffix)"
        )


@deploy_app.command("apply", short_help="Create or update the stack through a change set.")
def deploy_apply_command(
    stack_name: StackOpt = "sagesaver",
    template_file: Annotated[
        Path | None,
        typer.Option(
            "--template",
            metavar="FILE",
            help="Apply this template instead of rendering one.",
            dir_okay=False,
        ),
    ] = None,
    policy_file: PolicyOpt = None,
    code_bucket: CodeBucketOpt = "sagesaver-artifacts",
    code_key: CodeKeyOpt = "sagesaver-lambda.zip",
    email: EmailOpt = None,
    architecture: ArchitectureOpt = None,
    package: PackageOpt = None,
    region: Annotated[
        str | None, typer.Option("--region", "-r", metavar="REGION", help="Stack region.")
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Execute the change set.")] = False,
    code_version: CodeVersionOpt = None,
    code_signing_config: SigningOpt = None,
    reserved_concurrency: ReservedOpt = None,
    operator: OperatorOpt = None,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the change set that creates or updates the stack; execute it with --apply."""
    from sagesaver.aws.deploy import discard, execute, preview
    from sagesaver.aws.errors import AWS_ERRORS, scan_error

    _check_stack_name(stack_name)
    if template_file is not None:
        try:
            template = json.loads(template_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise fail(f"{template_file}: cannot read the template: {exc}") from exc
    aws = connect(profile, verbose)
    where = region or aws.default_region
    if not where:
        raise fail("no region: pass --region or set AWS_DEFAULT_REGION")
    if template_file is None:
        options = _options(code_version, code_signing_config, reserved_concurrency, operator)
        template = _render(
            policy_file, code_bucket, code_key, email, architecture, package, where, options
        )
    console = report.stdout_console()
    try:
        change_set = preview(aws, where, stack_name, template, {})
        console.print(
            f"{change_set.change_set_type} stack {stack_name} ({where}): "
            f"{plural(len(change_set.changes), 'change')}",
            markup=False,
        )
        for change in change_set.changes:
            console.print(
                f"  {change['action']:<7} {change['logical_id']} ({change['type']})", markup=False
            )
        if change_set.status_reason:
            console.print(f"  {change_set.status_reason}", markup=False)
        if not apply:
            discard(aws, where, change_set)
            console.print("Dry run: add --apply to execute this change set.")
            return
        status = execute(aws, where, change_set)
    except AWS_ERRORS as exc:
        report.print_errors([scan_error(exc, where, "CloudFormation", stack_name)])
        raise typer.Exit(EXIT_FAILURES) from exc
    console.print(f"Stack {stack_name}: {status}", markup=False)
    raise typer.Exit(
        EXIT_OK if status.endswith("_COMPLETE") and "ROLLBACK" not in status else EXIT_FAILURES
    )


@deploy_app.command("delete", short_help="Delete the stack (its ledger table is kept).")
def deploy_delete_command(
    stack_name: StackOpt = "sagesaver",
    region: Annotated[
        str | None, typer.Option("--region", "-r", metavar="REGION", help="Stack region.")
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Delete the stack.")] = False,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Delete the stack (its ledger table is retained: it holds the backups)."""
    from sagesaver.aws.deploy import delete_stack
    from sagesaver.aws.errors import AWS_ERRORS, scan_error

    _check_stack_name(stack_name)
    aws = connect(profile, verbose)
    where = region or aws.default_region
    if not where:
        raise fail("no region: pass --region or set AWS_DEFAULT_REGION")
    console = report.stdout_console()
    if not apply:
        console.print(f"Dry run: would delete stack {stack_name} in {where}; add --apply.")
        return
    try:
        status = delete_stack(aws, where, stack_name)
    except AWS_ERRORS as exc:
        report.print_errors([scan_error(exc, where, "DeleteStack", stack_name)])
        raise typer.Exit(EXIT_FAILURES) from exc
    console.print(f"Stack {stack_name}: {status}", markup=False)
    raise typer.Exit(EXIT_OK if status in ("DELETE_COMPLETE", "DOES_NOT_EXIST") else EXIT_FAILURES)
