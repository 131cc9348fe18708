"""The agent stops its own notebook instance through the simulated SageMaker API (moto),
with requests it signs itself (SigV4), credentials from the environment or IMDSv2."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sagesaver.agent import autostop
from sagesaver.demo.simulator import Fault, Fleet, Simulator
from tests.agent_fakes import ARN, NOW, Agent, AgentRun, FakeJupyter, iso

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


# These tests are about the stop itself: no notice first (tests/agent/test_notice.py is).
NO_NOTICE = ("--warn-minutes", "0")


def run_against(sim: Simulator, agent: Agent, server: FakeJupyter, *args: str) -> AgentRun:
    return agent(*NO_NOTICE, *args, url=server.url, env=agent.env(aws=sim.env("us-east-1")))


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


# ------------------------------------------------------- the standard library alone: SigV4


def test_stops_with_the_standard_library_alone(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter, tmp_path: Path
) -> None:
    """No site-packages (so no boto3) and nothing on PATH (so no aws command line)."""
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    seen: list[dict[str, Any]] = []
    sim.middleware.fault = lambda operation, region, environ: seen.append(dict(environ))
    empty = tmp_path / "empty"
    empty.mkdir()
    env = agent.env(aws=sim.env("us-east-1"), PATH=str(empty))
    run = agent(*NO_NOTICE, url=idle_server.url, env=env, python=[sys.executable, "-I", "-S"])
    assert run.code == 0, run.stderr
    assert run.result["action"] == "stop"
    assert aws_calls(sim) == {"DescribeNotebookInstance": 1, "StopNotebookInstance": 1}
    assert len(seen) == 2, [e.get("HTTP_X_AMZ_TARGET") for e in seen]
    sim.middleware.fault = None
    assert status_of(sim) == "Stopped"
    for environ in seen:
        assert environ["HTTP_AUTHORIZATION"].startswith("AWS4-HMAC-SHA256 Credential=testing/"), (
            environ["HTTP_AUTHORIZATION"]
        )
        assert "/us-east-1/sagemaker/aws4_request, SignedHeaders=" in environ["HTTP_AUTHORIZATION"]
        assert environ["CONTENT_TYPE"] == "application/x-amz-json-1.1"
        assert environ["HTTP_X_AMZ_SECURITY_TOKEN"] == "testing"
    assert [e["HTTP_X_AMZ_TARGET"] for e in seen] == [
        "SageMaker.DescribeNotebookInstance",
        "SageMaker.StopNotebookInstance",
    ]


def test_the_shipped_compact_agent_stops_too(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter, tmp_path: Path
) -> None:
    """What the lifecycle script installs (compacted, short names) stops like the source."""
    from sagesaver.core.lifecycle import agent_source, compact_source

    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    shipped = tmp_path / "autostop.py"
    shipped.write_text(compact_source(agent_source()), encoding="utf-8")
    command = [sys.executable, "-I", "-S", str(shipped), "--time", "3600", "--cpu-threshold", "0"]
    command += ["--gpu-threshold", "0", "--url", idle_server.url, *NO_NOTICE]
    command += ["--state-file", str(agent.state_file), "--metadata-file", str(agent.metadata)]
    done = subprocess.run(
        command, env=agent.env(aws=sim.env("us-east-1")), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["action"] == "stop"
    assert aws_calls(sim) == {"DescribeNotebookInstance": 1, "StopNotebookInstance": 1}
    assert status_of(sim) == "Stopped"


def test_signature_equals_botocore_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    moment = datetime(2031, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    monkeypatch.setattr(auth, "get_current_datetime", lambda: moment.replace(tzinfo=None))
    body = b'{"NotebookInstanceName": "nb-1"}'
    for url, region, token in [
        ("https://api.sagemaker.eu-west-1.amazonaws.com/", "eu-west-1", None),
        ("http://127.0.0.1:5000/", "us-east-1", "IQoJb3JpZ2luX2VjE+/token=="),
        ("https://api.sagemaker.cn-north-1.amazonaws.com.cn/", "cn-north-1", "t"),
    ]:
        for target in ("DescribeNotebookInstance", "StopNotebookInstance"):
            keys = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
            ours = autostop.sign(url, region, target, body, keys, moment)
            request = AWSRequest(
                method="POST",
                url=url,
                data=body,
                headers={
                    "Content-Type": "application/x-amz-json-1.1",
                    "X-Amz-Target": "SageMaker." + target,
                },
            )
            auth.SigV4Auth(Credentials(keys[0], keys[1], token), "sagemaker", region).add_auth(
                request
            )
            assert ours["authorization"] == request.headers["Authorization"]
            assert ours["x-amz-date"] == request.headers["X-Amz-Date"] == "20310203T040506Z"
            assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")
    other = autostop.sign(url, region, target, body + b" ", keys, moment)["authorization"]
    assert other != ours["authorization"]  # the body is signed


@pytest.mark.parametrize(
    ("env", "region", "expected"),
    [
        ({}, "us-east-1", "https://api.sagemaker.us-east-1.amazonaws.com/"),
        ({}, "cn-northwest-1", "https://api.sagemaker.cn-northwest-1.amazonaws.com.cn/"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:7"}, "us-east-1", "http://127.0.0.1:7/"),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:7", "AWS_ENDPOINT_URL_SAGEMAKER": "http://h:8/"},
            "us-east-1",
            "http://h:8/",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://h:7", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "TRUE"},
            "eu-west-1",
            "https://api.sagemaker.eu-west-1.amazonaws.com/",
        ),
    ],
)
def test_sagemaker_endpoint(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], region: str, expected: str
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert autostop.sagemaker_endpoint(region) == expected


# ----------------------------------------------------------------------- IMDSv2 credentials


class FakeImds:
    """An instance metadata service (IMDSv2 only) on 127.0.0.1 that checks its token."""

    TOKEN = "imds-token-123"

    def __init__(self, expiration: str) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.accepted = FakeImds.TOKEN  # the token GET requests must carry
        self.credentials = {
            "Code": "Success",
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIAFROMIMDS",
            "SecretAccessKey": "secret-from-imds",
            "Token": "session-from-imds",
            "Expiration": expiration,
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                fake.requests.append(("PUT", self.path, dict(self.headers)))
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if self.path != "/latest/api/token" or not ttl.isdigit():
                    return self.answer(400, b"bad token request")
                self.answer(200, FakeImds.TOKEN.encode())

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, dict(self.headers)))
                if self.headers.get("X-aws-ec2-metadata-token") != fake.accepted:
                    return self.answer(401, b"")
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    return self.answer(200, b"notebook-role")
                if self.path == base + "notebook-role":
                    return self.answer(200, json.dumps(fake.credentials).encode())
                self.answer(404, b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    fake = FakeImds(iso(NOW + timedelta(hours=6), digits=0))
    yield fake
    fake.close()


def imds_env(sim: Simulator, agent: Agent, imds: FakeImds) -> dict[str, str]:
    """The simulator's endpoint and region, but no credentials in the environment."""
    aws = {k: v for k, v in sim.env("us-east-1").items() if "KEY" not in k and "TOKEN" not in k}
    return agent.env(aws=aws, SAGESAVER_AGENT_IMDS_URL=imds.url)


def test_credentials_from_imdsv2(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter, imds: FakeImds
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    seen: list[dict[str, Any]] = []
    sim.middleware.fault = lambda operation, region, environ: seen.append(dict(environ))
    run = agent(*NO_NOTICE, url=idle_server.url, env=imds_env(sim, agent, imds))
    assert run.code == 0, run.stderr
    assert run.result["action"] == "stop"
    assert len(seen) == 2, [e.get("HTTP_X_AMZ_TARGET") for e in seen]
    sim.middleware.fault = None
    assert status_of(sim) == "Stopped"
    assert [(method, path) for method, path, _ in imds.requests] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/meta-data/iam/security-credentials/"),
        ("GET", "/latest/meta-data/iam/security-credentials/notebook-role"),
    ]
    for environ in seen:
        assert "Credential=ASIAFROMIMDS/" in environ["HTTP_AUTHORIZATION"]
        assert environ["HTTP_X_AMZ_SECURITY_TOKEN"] == "session-from-imds"
    assert "secret-from-imds" not in run.stdout + run.stderr


def test_expired_imds_credentials_make_no_call(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter, imds: FakeImds
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    imds.credentials["Expiration"] = iso(NOW - timedelta(minutes=1), digits=0)
    run = agent(*NO_NOTICE, url=idle_server.url, env=imds_env(sim, agent, imds))
    assert run.code == 1
    assert run.result["action"] == "none"
    assert "credentials expired at 2030-06-01T11:59:00Z" in run.reasons
    assert aws_calls(sim) == {}
    assert status_of(sim) == "InService"


def test_imds_refusing_the_token_makes_no_call(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter, imds: FakeImds
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    imds.accepted = "another-token"  # the token the agent gets is not accepted
    run = agent(*NO_NOTICE, url=idle_server.url, env=imds_env(sim, agent, imds))
    assert run.code == 1
    assert "no credentials from IMDS: HTTP 401" in run.reasons
    assert len(imds.requests) == 2  # one token, one refused question: no retry
    assert aws_calls(sim) == {}


def test_unreachable_imds_makes_no_call(
    sim: Simulator, fleet: Fleet, agent: Agent, idle_server: FakeJupyter, imds: FakeImds
) -> None:
    fleet.notebook("us-east-1", "nb-1")
    sim.middleware.counts.clear()
    env = {**imds_env(sim, agent, imds), "SAGESAVER_AGENT_IMDS_URL": "http://127.0.0.1:9"}
    run = agent(*NO_NOTICE, url=idle_server.url, env=env)
    assert run.code == 1
    assert "DescribeNotebookInstance nb-1 failed: no credentials from IMDS" in run.reasons
    assert aws_calls(sim) == {}
