"""The agent stops its own notebook instance through the simulated SageMaker API (moto)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.agent_fakes import ARN, Agent, AgentRun, FakeJupyter, write_executable

pytestmark = pytest.mark.slow


@pytest.fixture
def idle_server() -> Iterator[FakeJupyter]:
    """A Jupyter server with nothing in it, started a day before the agent's NOW."""
    fake = FakeJupyter()
    fake.jupyter()
    yield fake
    fake.close()


def status_of(sim: Simulator, name: str = "nb-1") -> str:
    described = sim.client("sagemaker", "us-east-1").describe_notebook_instance(
        NotebookInstanceName=name
    )
    return str(described["NotebookInstanceStatus"])


def run_against(sim: Simulator, agent: Agent, server: FakeJupyter, *args: str) -> AgentRun:
    return agent(*args, url=server.url, env=agent.env(aws=sim.env("us-east-1")))


def aws_calls(sim: Simulator) -> dict[str, int]:
    return {
        operation: count
        for operation, count in sim.middleware.counts.items()
        if operation in {"DescribeNotebookInstance", "StopNotebookInstance"}
    }


def test_stops_an_idle_instance_once(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    fleet.notebook("us-east-1", "nb-2")  # another instance: never touched
    sim.middleware.counts.clear()
    run = run_against(sim, agent, idle_server)
    assert run.code == 0, run.stderr
    assert run.result["idle"] is True
    assert run.result["action"] == "stop"
    assert run.result["instance"] == "nb-1"
    assert "stopped notebook instance nb-1" in "\n".join(run.result["reasons"])
    assert aws_calls(sim) == {"DescribeNotebookInstance": 1, "StopNotebookInstance": 1}
    assert status_of(sim) == "Stopped"
    assert status_of(sim, "nb-2") == "InService"
    assert "stopping nb-1" in run.stderr


def test_region_comes_from_the_arn(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("eu-west-1", "nb-1")
    agent.metadata.write_text(
        json.dumps({"ResourceArn": ARN.replace("us-east-1", "eu-west-1"), "ResourceName": "nb-1"}),
        encoding="utf-8",
    )
    run = run_against(sim, agent, idle_server)  # AWS_DEFAULT_REGION says us-east-1
    assert run.result["action"] == "stop", run.reasons
    described = sim.client("sagemaker", "eu-west-1").describe_notebook_instance(
        NotebookInstanceName="nb-1"
    )
    assert described["NotebookInstanceStatus"] == "Stopped"


def test_already_stopped_instance_is_left_alone(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1", status="Stopped")
    sim.middleware.counts.clear()
    run = run_against(sim, agent, idle_server)
    assert run.code == 0, run.stderr
    assert run.result["action"] == "none"
    assert "is Stopped, not InService" in run.reasons
    assert aws_calls(sim) == {"DescribeNotebookInstance": 1}


def test_denied_stop_is_reported_not_retried(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    sim.middleware.fault = lambda operation, region, environ: (
        Fault(400, "AccessDeniedException", "not authorized to perform StopNotebookInstance")
        if operation == "StopNotebookInstance"
        else None
    )
    run = run_against(sim, agent, idle_server)
    assert run.code == 1
    assert run.result["action"] == "none"
    assert "StopNotebookInstance nb-1 failed" in run.reasons
    assert "AccessDeniedException" in run.reasons
    assert "AccessDeniedException" in run.stderr
    assert aws_calls(sim) == {"DescribeNotebookInstance": 1, "StopNotebookInstance": 1}
    sim.middleware.fault = None
    assert status_of(sim) == "InService"


def test_failed_describe_does_not_stop(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    sim.middleware.fault = lambda operation, region, environ: (
        Fault(400, "AccessDeniedException", "no describe")
        if operation == "DescribeNotebookInstance"
        else None
    )
    run = run_against(sim, agent, idle_server)
    assert run.code == 1
    assert "DescribeNotebookInstance nb-1 failed" in run.reasons
    assert aws_calls(sim) == {"DescribeNotebookInstance": 1}


def test_dry_run_makes_no_stop_call(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    run = run_against(sim, agent, idle_server, "--dry-run")
    assert run.code == 0
    assert run.result["action"] == "would-stop"
    assert aws_calls(sim) == {}
    assert status_of(sim) == "InService"


def test_not_idle_makes_no_call(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    run = agent(url=idle_server.url, time=10**6, env=agent.env(aws=sim.env("us-east-1")))
    assert run.result["idle"] is False
    assert aws_calls(sim) == {}


def test_missing_metadata_makes_no_call(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    agent.metadata.unlink()
    run = run_against(sim, agent, idle_server)
    assert run.code == 1
    assert run.result["action"] == "none"
    assert "is missing" in run.reasons
    assert sum(sim.middleware.counts.values()) == 0
    assert status_of(sim) == "InService"


def test_broken_jupyter_makes_no_call(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    idle_server.routes.pop("/api/kernels")
    run = run_against(sim, agent, idle_server)
    assert run.code == 1
    assert "HTTP 404" in run.reasons
    assert sum(sim.middleware.counts.values()) == 0


# --------------------------------------------------------------------- the aws CLI fallback

FAKE_AWS = """#!/bin/sh
echo "$*" >> "$FAKE_AWS_LOG"
case "$2" in
  describe-notebook-instance)
    printf '{"NotebookInstanceName": "nb-1", "NotebookInstanceStatus": "%s"}\\n' "$FAKE_STATUS";;
  stop-notebook-instance)
    if [ -n "$FAKE_STOP_ERROR" ]; then echo "$FAKE_STOP_ERROR" >&2; exit 254; fi;;
esac
"""


def cli_run(agent: Agent, server: FakeJupyter, tmp_path: Path, **extra: str) -> AgentRun:
    """Run the agent without site-packages (no boto3) and a fake ``aws`` alone on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    write_executable(bin_dir / "aws", FAKE_AWS)
    settings = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "FAKE_AWS_LOG": str(tmp_path / "aws.log"),
        "FAKE_STATUS": "InService",
        **extra,
    }
    env = agent.env(**settings)
    return agent(url=server.url, env=env, python=[sys.executable, "-I", "-S"])


def aws_log(tmp_path: Path) -> list[str]:
    log = tmp_path / "aws.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_falls_back_to_the_aws_cli_without_boto3(
    agent: Agent, idle_server: FakeJupyter, tmp_path: Path
) -> None:
    run = cli_run(agent, idle_server, tmp_path)
    assert run.code == 0, run.stderr
    assert run.result["action"] == "stop"
    assert "boto3 unavailable" in run.stderr
    options = "--notebook-instance-name nb-1 --region us-east-1 --endpoint-url http://127.0.0.1:9"
    assert aws_log(tmp_path) == [
        f"sagemaker describe-notebook-instance {options} --output json",
        f"sagemaker stop-notebook-instance {options}",
    ]


def test_aws_cli_honours_the_sagemaker_endpoint_and_its_opt_out(
    agent: Agent, idle_server: FakeJupyter, tmp_path: Path
) -> None:
    cli_run(agent, idle_server, tmp_path, AWS_ENDPOINT_URL_SAGEMAKER="http://127.0.0.1:7")
    assert all("--endpoint-url http://127.0.0.1:7" in line for line in aws_log(tmp_path))
    (tmp_path / "aws.log").unlink()
    agent.state_file.unlink()
    cli_run(agent, idle_server, tmp_path, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true")
    assert aws_log(tmp_path) and all("--endpoint-url" not in line for line in aws_log(tmp_path))


def test_aws_cli_stopped_instance_is_left_alone(
    agent: Agent, idle_server: FakeJupyter, tmp_path: Path
) -> None:
    run = cli_run(agent, idle_server, tmp_path, FAKE_STATUS="Stopping")
    assert run.code == 0
    assert run.result["action"] == "none"
    assert len(aws_log(tmp_path)) == 1


def test_aws_cli_denied_stop(agent: Agent, idle_server: FakeJupyter, tmp_path: Path) -> None:
    denied = "An error occurred (AccessDeniedException) when calling the StopNotebookInstance"
    run = cli_run(agent, idle_server, tmp_path, FAKE_STOP_ERROR=denied)
    assert run.code == 1
    assert run.result["action"] == "none"
    assert "AccessDeniedException" in run.reasons
    assert len(aws_log(tmp_path)) == 2


def test_neither_boto3_nor_aws_cli(agent: Agent, idle_server: FakeJupyter, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = agent.env(PATH=str(empty))
    run = agent(url=idle_server.url, env=env, python=[sys.executable, "-I", "-S"])
    assert run.code == 1
    assert "neither boto3 nor the aws command line" in run.reasons
