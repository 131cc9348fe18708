"""``sagesaver lifecycle``: the lifecycle configuration that installs the auto-stop agent."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from sagesaver.cli.common import (
    EXIT_FAILURES,
    EXIT_OK,
    ChangesApplyOpt,
    Output,
    OutputOpt,
    PolicyOpt,
    ProfileOpt,
    RegionOpt,
    VerboseOpt,
    app,
    fail,
    prepare,
)
from sagesaver.core.errors import InputError
from sagesaver.core.lifecycle import (
    AgentOptions,
    check_name,
    encoded_content,
    parse_tag_filters,
    render_on_start,
)
from sagesaver.render.commands import render_install

lifecycle_app = typer.Typer(
    short_help="The on-instance auto-stop agent.",
    help="The on-instance auto-stop agent, installed by lifecycle configuration.",
    no_args_is_help=True,
)
app.add_typer(lifecycle_app, name="lifecycle")

IdleTimeOpt = Annotated[
    int,
    typer.Option(
        "--idle-time", metavar="SECONDS", help="Seconds without use before the instance stops."
    ),
]
IgnoreConnectionsOpt = Annotated[
    bool,
    typer.Option(
        "--ignore-connections",
        help="The default (open browser connections do not count as use); kept for old scripts.",
    ),
]
CountConnectionsOpt = Annotated[
    bool,
    typer.Option("--count-connections", help="Open browser connections to a kernel count as use."),
]
MaxBusyHoursOpt = Annotated[
    float,
    typer.Option(
        "--max-busy-hours",
        metavar="HOURS",
        help="A kernel busy this long with no output and idle CPU no longer counts as use.",
    ),
]
CpuOpt = Annotated[
    float,
    typer.Option("--cpu-threshold", metavar="PERCENT", help="CPU % that counts as use (0: off)."),
]
GpuOpt = Annotated[
    float,
    typer.Option("--gpu-threshold", metavar="PERCENT", help="GPU % that counts as use (0: off)."),
]
WarnOpt = Annotated[
    int,
    typer.Option(
        "--warn-minutes",
        metavar="MINUTES",
        help="Leave a notice in Jupyter and warn the terminals this long before a stop (0: off).",
    ),
]
IntervalOpt = Annotated[
    int,
    typer.Option("--interval-minutes", metavar="MINUTES", help="How often cron runs the agent."),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--jupyter-url", metavar="URL", help="Jupyter server URL (default: the agent's)."),
]
MetadataOpt = Annotated[
    str | None,
    typer.Option(
        "--metadata-file", metavar="FILE", help="Instance metadata file (default: the agent's)."
    ),
]


def _agent_options(
    idle_time: int,
    count_connections: bool,
    max_busy_hours: float,
    cpu_threshold: float,
    gpu_threshold: float,
    interval_minutes: int,
    jupyter_url: str | None,
    metadata_file: str | None,
    warn_minutes: int,
) -> AgentOptions:
    try:
        return AgentOptions(
            idle_time=idle_time,
            count_connections=count_connections,
            max_busy_hours=max_busy_hours,
            cpu_threshold=cpu_threshold,
            gpu_threshold=gpu_threshold,
            interval_minutes=interval_minutes,
            jupyter_url=jupyter_url,
            metadata_file=metadata_file,
            warn_minutes=warn_minutes,
        ).validate()
    except InputError as exc:
        raise fail(str(exc)) from exc


@lifecycle_app.command("render", short_help="Print the lifecycle script (or its base64).")
def lifecycle_render_command(
    idle_time: IdleTimeOpt = 3600,
    ignore_connections: IgnoreConnectionsOpt = False,
    count_connections: CountConnectionsOpt = False,
    max_busy_hours: MaxBusyHoursOpt = 24.0,
    cpu_threshold: CpuOpt = 10.0,
    gpu_threshold: GpuOpt = 10.0,
    interval_minutes: IntervalOpt = 5,
    jupyter_url: UrlOpt = None,
    metadata_file: MetadataOpt = None,
    warn_minutes: WarnOpt = 10,
    base64_output: Annotated[
        bool, typer.Option("--base64", help="Print the content as the API takes it (base64).")
    ] = False,
) -> None:
    """Print the on-start script that installs the auto-stop agent (no network needed)."""
    options = _agent_options(
        idle_time,
        count_connections,
        max_busy_hours,
        cpu_threshold,
        gpu_threshold,
        interval_minutes,
        jupyter_url,
        metadata_file,
        warn_minutes,
    )
    script = render_on_start(options)
    try:
        content = encoded_content(script)
    except InputError as exc:
        raise fail(str(exc)) from exc
    sys.stdout.write(content + "\n" if base64_output else script)


@lifecycle_app.command("install", short_help="Create the configuration and attach it to instances.")
def lifecycle_install_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Lifecycle configuration name.")],
    idle_time: IdleTimeOpt = 3600,
    ignore_connections: IgnoreConnectionsOpt = False,
    count_connections: CountConnectionsOpt = False,
    max_busy_hours: MaxBusyHoursOpt = 24.0,
    cpu_threshold: CpuOpt = 10.0,
    gpu_threshold: GpuOpt = 10.0,
    interval_minutes: IntervalOpt = 5,
    jupyter_url: UrlOpt = None,
    metadata_file: MetadataOpt = None,
    warn_minutes: WarnOpt = 10,
    attach: Annotated[
        list[str] | None,
        typer.Option(
            "--attach",
            metavar="GLOB",
            help="Attach to instances whose name matches (glob; repeat: any of them). "
            "With --attach-tag, an instance must match both (AND).",
        ),
    ] = None,
    attach_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--attach-tag",
            metavar="KEY=VALUE",
            help="Attach to instances with this tag (KEY=VALUE; repeat: all of them). "
            "With --attach, an instance must match both (AND).",
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Stop, attach and start InService instances.")
    ] = False,
    restart_timeout: Annotated[
        int,
        typer.Option(
            "--restart-timeout", metavar="SECONDS", help="Seconds to wait for an instance to stop."
        ),
    ] = 900,
    policy_file: PolicyOpt = None,
    region: RegionOpt = None,
    apply: ChangesApplyOpt = False,
    output: OutputOpt = Output.table,
    profile: ProfileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Create or update the configuration and attach it to matching notebook instances."""
    from sagesaver.pipelines.lifecycle import install_lifecycle

    try:
        check_name(name)
        filters = parse_tag_filters(attach_tag or [])
    except InputError as exc:
        raise fail(str(exc)) from exc
    options = _agent_options(
        idle_time,
        count_connections,
        max_busy_hours,
        cpu_threshold,
        gpu_threshold,
        interval_minutes,
        jupyter_url,
        metadata_file,
        warn_minutes,
    )
    if restart_timeout <= 0:
        raise fail(f"--restart-timeout {restart_timeout}: must be more than 0 seconds")
    try:
        content = encoded_content(render_on_start(options))
    except InputError as exc:
        raise fail(str(exc)) from exc
    aws, policy, regions = prepare(policy_file, region, False, profile, verbose)
    result = install_lifecycle(
        aws, regions, policy, name, content, attach or [], filters, restart, restart_timeout, apply
    )
    render_install(result.document(), output.value)
    raise typer.Exit(EXIT_FAILURES if result.errors else EXIT_OK)
