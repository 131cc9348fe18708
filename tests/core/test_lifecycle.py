"""Lifecycle configurations: rendering (pure) and install/attach against a moto server."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.lifecycle import (
    MAX_CONTENT_CHARS,
    AgentOptions,
    agent_source,
    check_name,
    compact_source,
    encoded_content,
    pack,
    render_on_start,
    shrink,
    unpack,
)
from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.conftest import Cli
from tests.moto_extensions import sagemaker_update_operations

EAST = "us-east-1"
LARGEST = AgentOptions(
    idle_time=86400 * 30,
    count_connections=True,
    cpu_threshold=99.5,
    gpu_threshold=99.5,
    interval_minutes=59,
    jupyter_url="https://localhost:8443/some/long/base/path",
    metadata_file="/opt/ml/metadata/resource-metadata.json",
    max_busy_hours=8760.5,
)


def test_compact_agent_is_the_same_program() -> None:
    source = agent_source()
    compact = compact_source(source)
    assert len(compact) < 0.75 * len(source)
    assert '"""' not in compact and "# " not in compact
    ast.parse(compact, feature_version=(3, 7))
    # Statement for statement the original, less docstrings and annotations.
    assert ast.dump(ast.parse(compact)) == ast.dump(shrink(ast.parse(source)))
    assert "-> " not in compact and ") -> " not in compact


@pytest.mark.slow  # a child process
def test_compact_agent_compiles_and_runs_on_python_3_7(tmp_path: Path) -> None:
    import subprocess

    from tests.agent.test_source import PYTHON37

    assert PYTHON37 is not None, "a Python 3.7 interpreter is needed (pyenv ships 3.7.16)"
    shipped = tmp_path / "autostop.py"
    shipped.write_text(compact_source(agent_source()))
    done = subprocess.run(
        [PYTHON37, "-S", "-I", str(shipped), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--time" in done.stdout and "--ignore-connections" in done.stdout


def test_pack_round_trip() -> None:
    text = compact_source(agent_source())
    assert unpack(pack(text)) == text


@pytest.mark.parametrize("options", [AgentOptions(), LARGEST], ids=["defaults", "largest"])
def test_script_fits_the_api_limit(options: AgentOptions) -> None:
    content = encoded_content(render_on_start(options))
    assert len(content) <= MAX_CONTENT_CHARS - 500  # with room to spare
    assert base64.b64decode(content).decode().startswith("#!/bin/bash")


def test_script_needs_no_network() -> None:
    script = render_on_start(AgentOptions())
    for word in ("curl", "wget", "http://", "https://", "pip ", "git "):
        assert word not in script


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (AgentOptions(idle_time=0), "--idle-time 0"),
        (AgentOptions(cpu_threshold=101), "--cpu-threshold 101"),
        (AgentOptions(gpu_threshold=-1), "--gpu-threshold -1"),
        (AgentOptions(interval_minutes=0), "--interval-minutes 0"),
        (AgentOptions(max_busy_hours=0), "--max-busy-hours 0"),
        (AgentOptions(metadata_file="/a\n* * * * * rm -rf ~"), "--metadata-file: must not"),
        (AgentOptions(jupyter_url="http://h/\r"), "--jupyter-url: must not"),
    ],
)
def test_bad_agent_options(options: AgentOptions, message: str) -> None:
    with pytest.raises(InputError, match=message):
        render_on_start(options)


@pytest.mark.parametrize("name", ["Stop-Idle-Instance", "a", "A" * 63, "x1-2-3"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-lead", "has space", "under_score", "A" * 64, "dot.ted"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InputError, match="letters, digits and '-'"):
        check_name(name)


@pytest.fixture
def extended(sim: Simulator) -> Iterator[Simulator]:
    with sagemaker_update_operations():
        yield sim


def configs(sim: Simulator) -> dict[str, Any]:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends["123456789012"][EAST].notebook_instance_lifecycle_configurations


def instances(sim: Simulator) -> dict[str, Any]:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends["123456789012"][EAST].notebook_instances


def install(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    return cli.json("lifecycle", "install", "sagesaver-autostop", "--region", EAST, *args)


def test_install_dry_run_changes_nothing(cli: Cli, extended: Simulator, fleet: Fleet) -> None:
    fleet.notebook(EAST, "dev-a", status="Stopped")
    extended.middleware.counts.clear()
    code, doc = install(cli, "--attach", "dev-*")
    assert code == 0
    assert doc["configurations"] == [
        {"region": EAST, "name": "sagesaver-autostop", "action": "create", "applied": False}
    ]
    assert [(r["name"], r["action"], r["result"]) for r in doc["instances"]] == [
        ("dev-a", "attach", "dry run")
    ]
    assert configs(extended) == {}
    assert instances(extended)["dev-a"].lifecycle_config_name is None
    mutating = {
        "CreateNotebookInstanceLifecycleConfig",
        "UpdateNotebookInstance",
        "StopNotebookInstance",
    }
    assert not mutating & set(extended.middleware.counts)


def test_install_creates_then_updates_then_is_unchanged(
    cli: Cli, extended: Simulator, tmp_path: Path
) -> None:
    code, doc = install(cli, "--apply")
    assert code == 0 and doc["configurations"][0]["action"] == "create"
    stored = configs(extended)["sagesaver-autostop"].on_start[0]["Content"]
    assert "--time 3600" in base64.b64decode(stored).decode()
    code, doc = install(cli, "--apply")
    assert doc["configurations"][0]["action"] == "unchanged"
    code, doc = install(cli, "--apply", "--idle-time", "7200")
    assert doc["configurations"][0]["action"] == "update"
    stored = configs(extended)["sagesaver-autostop"].on_start[0]["Content"]
    assert "--time 7200" in base64.b64decode(stored).decode()


def test_attach_stopped_directly_and_in_service_only_with_restart(
    cli: Cli, extended: Simulator, fleet: Fleet
) -> None:
    fleet.notebook(EAST, "dev-stopped", status="Stopped")
    fleet.notebook(EAST, "dev-running")
    fleet.notebook(EAST, "dev-protected", status="Stopped", tags={"sagesaver:protect": "true"})
    fleet.notebook(EAST, "team-other", status="Stopped")
    code, doc = install(cli, "--attach", "dev-*", "--apply")
    assert code == 0
    rows = {r["name"]: r for r in doc["instances"]}
    assert set(rows) == {"dev-stopped", "dev-running", "dev-protected"}
    assert rows["dev-stopped"]["result"] == "attached"
    assert "use --restart" in rows["dev-running"]["result"]
    assert "protected" in rows["dev-protected"]["result"]
    got = instances(extended)
    assert got["dev-stopped"].lifecycle_config_name == "sagesaver-autostop"
    assert got["dev-running"].lifecycle_config_name is None
    assert got["dev-protected"].lifecycle_config_name is None
    assert got["team-other"].lifecycle_config_name is None

    extended.middleware.counts.clear()
    code, doc = install(cli, "--attach", "dev-*", "--restart", "--apply")
    rows = {r["name"]: r for r in doc["instances"]}
    assert rows["dev-running"]["result"] == "attached (stopped, attached, started again)"
    assert "already has" in rows["dev-stopped"]["result"]
    assert got["dev-running"].lifecycle_config_name == "sagesaver-autostop"
    assert got["dev-running"].status == "InService"
    counts = extended.middleware.counts
    assert counts["StopNotebookInstance"] == counts["StartNotebookInstance"] == 1
    assert counts["UpdateNotebookInstance"] == 1
    from sagesaver.core.permissions import LIFECYCLE

    assert set(counts) <= {action.split(":")[1] for action in LIFECYCLE}


def test_attach_by_tag(cli: Cli, extended: Simulator, fleet: Fleet) -> None:
    fleet.notebook(EAST, "a", status="Stopped", tags={"team": "ml"})
    fleet.notebook(EAST, "b", status="Stopped", tags={"team": "web"})
    code, doc = install(cli, "--attach-tag", "team=ml", "--apply")
    assert code == 0
    assert [r["name"] for r in doc["instances"]] == ["a"]


def test_a_failed_attach_is_reported_and_the_others_go_on(
    cli: Cli, extended: Simulator, fleet: Fleet
) -> None:
    for name in ("dev-1", "dev-2", "dev-3"):
        fleet.notebook(EAST, name, status="Stopped")

    def deny_two(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        if operation != "UpdateNotebookInstance":
            return None
        import io

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        return Fault(400, "AccessDeniedException", "not allowed") if b"dev-2" in body else None

    extended.middleware.fault = deny_two
    code, doc = install(cli, "--attach", "dev-*", "--apply")
    assert code == 1
    rows = {r["name"]: r["result"] for r in doc["instances"]}
    assert rows == {
        "dev-1": "attached",
        "dev-2": "failed at UpdateNotebookInstance",
        "dev-3": "attached",
    }
    assert doc["errors"][0]["resource"] == "dev-2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lifecycle", "install", "bad_name"], "letters, digits and '-'"),
        (
            ["lifecycle", "install", "ok", "--attach-tag", "novalue"],
            "--attach-tag 'novalue': use KEY=VALUE",
        ),
        (["lifecycle", "install", "ok", "--idle-time", "0"], "--idle-time 0"),
        (["lifecycle", "render", "--cpu-threshold", "150"], "--cpu-threshold 150"),
    ],
)
def test_bad_lifecycle_input_exits_2(
    cli: Cli, sim: Simulator, args: list[str], message: str
) -> None:
    result = cli(*args, *(["--region", EAST] if args[1] == "install" else []))
    assert result.exit_code == 2
    assert message in result.stderr
    assert sum(sim.middleware.counts.values()) == 0


def test_render_prints_the_script_or_its_base64(cli: Cli) -> None:
    script = cli("lifecycle", "render", "--idle-time", "1800", "--ignore-connections")
    assert script.exit_code == 0
    assert script.stdout.startswith("#!/bin/bash")
    assert "--time 1800" in script.stdout
    assert "connections" not in script.stdout.split("ENTRY=")[1]  # ignored: the default
    counted = cli("lifecycle", "render", "--count-connections", "--max-busy-hours", "6")
    entry = counted.stdout.split("ENTRY=")[1].splitlines()[0]
    assert "--count-connections" in entry and "--max-busy-hours 6" in entry
    encoded = cli("lifecycle", "render", "--base64")
    assert base64.b64decode(encoded.stdout.strip()).decode().startswith("#!/bin/bash")
    json.dumps(script.stdout)


FAKE_CRONTAB = """#!/bin/sh
# A stand-in for crontab(1) that keeps the table in $CRONTAB_FILE.
if [ "$1" = "-l" ]; then
  [ -f "$CRONTAB_FILE" ] && exec cat "$CRONTAB_FILE"
  echo "no crontab for $(id -un)" >&2; exit 1
elif [ "$1" = "-" ]; then
  cat > "$CRONTAB_FILE"
else
  echo "unexpected crontab arguments: $*" >&2; exit 2
fi
"""


def cron_command(line: str) -> str:
    """What cron hands to ``sh -c`` for a crontab line: ``\\%`` is ``%``, a bare ``%`` ends it."""
    command = line.split(" ", 5)[5]
    parts = command.split("%")
    kept = parts[0]
    for part in parts[1:]:
        if not kept.endswith("\\"):
            break
        kept = kept[:-1] + "%" + part
    return kept


HOSTILE_NAME = 'm $(touch pwned1) `touch pwned2` $HOME ${IFS} "q" 50% it\'s;touch pwned3.json'


@pytest.mark.slow  # a child process
def test_hostile_option_values_reach_the_cron_entry_exactly(tmp_path: Path) -> None:
    """No command substitution, no expansion, no broken quotes; % escaped for cron."""
    import os
    import subprocess
    import sys

    from tests.agent_fakes import NOW, FakeJupyter, iso, write_executable, write_metadata

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_executable(bin_dir / "crontab", FAKE_CRONTAB)
    table = tmp_path / "crontab.txt"
    work = tmp_path / "work"
    work.mkdir()
    metadata = write_metadata(work / HOSTILE_NAME, name="nb-hostile")
    jupyter = FakeJupyter()
    try:
        jupyter.jupyter()
        options = AgentOptions(
            idle_time=200000,
            cpu_threshold=0,
            gpu_threshold=0,
            jupyter_url=jupyter.url,
            metadata_file=str(metadata),
        )
        script = tmp_path / "on-start.sh"
        script.write_text(render_on_start(options))
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "CRONTAB_FILE": str(table),
            "SAGESAVER_AGENT_DIR": str(tmp_path / "agent"),
            "SAGESAVER_LOG_FILE": str(tmp_path / "autostop.log"),
            "SAGESAVER_PYTHON": sys.executable,
            "HOME": "/nonexistent-home",
        }
        done = subprocess.run(
            ["bash", str(script)], env=env, cwd=work, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        (line,) = [x for x in table.read_text().splitlines() if "# sagesaver-autostop" in x]
        assert "50\\%" in line and "$(touch pwned1)" in line and "$HOME" in line
        command = cron_command(line)
        assert f"--metadata-file {shlex_quote(str(metadata))} --state-file" in command
        run_env = {**env, "SAGESAVER_AGENT_NOW": iso(NOW), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
        cron = subprocess.run(
            ["sh", "-c", command], env=run_env, cwd=work, capture_output=True, text=True, timeout=60
        )
        assert cron.returncode == 0, cron.stderr
        log = (tmp_path / "autostop.log").read_text().splitlines()
        outcome = json.loads(next(line for line in log if line.startswith("{")))
        assert outcome["instance"] == "nb-hostile"  # the metadata file was found: exact path
        assert outcome["action"] == "none"  # not idle: the server started a day ago
    finally:
        jupyter.close()
    assert sorted(p.name for p in work.iterdir()) == [HOSTILE_NAME]  # nothing injected ran
    assert not list(tmp_path.glob("pwned*"))


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@pytest.mark.slow  # a child process
def test_rendered_script_in_a_sandbox_installs_one_entry_that_runs(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from tests.agent_fakes import NOW, FakeJupyter, iso, kernel, write_executable, write_metadata

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_executable(bin_dir / "crontab", FAKE_CRONTAB)
    table = tmp_path / "crontab.txt"
    table.write_text("0 1 * * * /usr/local/bin/backup.sh\n")
    jupyter = FakeJupyter()
    try:
        jupyter.jupyter(kernels=[kernel(state="busy", last_activity=iso(NOW))])
        metadata = write_metadata(tmp_path / "resource-metadata.json")
        options = AgentOptions(
            idle_time=600,
            cpu_threshold=0,
            gpu_threshold=0,
            jupyter_url=jupyter.url,
            metadata_file=str(metadata),
        )
        script = tmp_path / "on-start.sh"
        script.write_text(render_on_start(options))
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "CRONTAB_FILE": str(table),
            "SAGESAVER_AGENT_DIR": str(tmp_path / "agent"),
            "SAGESAVER_LOG_FILE": str(tmp_path / "autostop.log"),
            "SAGESAVER_PYTHON": sys.executable,
        }
        for _ in range(2):  # as after two restarts of the instance
            started = time.monotonic()
            done = subprocess.run(
                ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            assert time.monotonic() - started < 10  # SageMaker kills on-start scripts after 5 min
            assert f"auto-stop installed ({sys.executable})" in done.stdout

        lines = table.read_text().splitlines()
        ours = [line for line in lines if "# sagesaver-autostop" in line]
        assert len(ours) == 1
        assert "0 1 * * * /usr/local/bin/backup.sh" in lines  # other entries are kept
        schedule, command = ours[0].split(" ", 5)[:5], ours[0].split(" ", 5)[5]
        assert schedule == ["*/5", "*", "*", "*", "*"]
        shipped = (tmp_path / "agent" / "autostop.py").read_text()
        assert shipped == compact_source(agent_source())

        run_env = {**env, "SAGESAVER_AGENT_NOW": iso(NOW)}
        cron = subprocess.run(
            ["sh", "-c", command], env=run_env, capture_output=True, text=True, timeout=60
        )
        assert cron.returncode == 0
        log = (tmp_path / "autostop.log").read_text().splitlines()
        outcome = json.loads(next(line for line in log if line.startswith("{")))
        assert outcome["idle"] is False and outcome["action"] == "none"
        assert any(seen.path == "/api/kernels" for seen in jupyter.seen)
    finally:
        jupyter.close()


def test_both_languages_docs_name_every_agent_option() -> None:
    """The README and the Chinese guide describe the same options and defaults."""
    root = Path(__file__).parents[2]
    english = (root / "README.md").read_text(encoding="utf-8")
    chinese = (root / "docs" / "autostop.zh-CN.md").read_text(encoding="utf-8")
    for option in (
        "--idle-time",
        "--cpu-threshold",
        "--gpu-threshold",
        "--count-connections",
        "--ignore-connections",
        "--max-busy-hours",
        ".sagesaver-keep-alive",
        "sagemaker:StopNotebookInstance",
    ):
        assert option in english and option in chinese, option


@pytest.mark.parametrize("start_fails", [False, True])
def test_restart_never_leaves_stopped_an_instance_it_stopped(
    cli: Cli, extended: Simulator, fleet: Fleet, start_fails: bool
) -> None:
    fleet.notebook(EAST, "dev-running")
    failing = {"UpdateNotebookInstance"} | ({"StartNotebookInstance"} if start_fails else set())

    def refuse(operation: str, region: str, environ: dict[str, Any]) -> Fault | None:
        return Fault(400, "ValidationException", "refused") if operation in failing else None

    extended.middleware.fault = refuse
    code, doc = install(cli, "--attach", "dev-*", "--restart", "--apply")
    assert code == 1
    [row] = doc["instances"]
    [error] = doc["errors"]
    assert error["operation"] == "UpdateNotebookInstance"
    assert extended.middleware.counts["StartNotebookInstance"] == 1
    if start_fails:
        assert row["result"] == "not attached; left stopped"
        assert row["final_state"] == "Stopped"
        assert "SageSaver stopped it and could not start it again" in error["message"]
    else:
        assert row["result"] == "not attached; started again"
        assert row["final_state"] == "InService"
        assert instances(extended)["dev-running"].status == "InService"
    extended.middleware.fault = None
    table = cli("lifecycle", "install", "sagesaver-autostop", "--attach", "dev-*", "--region", EAST)
    assert "dev-running" in table.stdout
