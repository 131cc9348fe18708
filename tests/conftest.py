"""Shared fixtures: one moto server per test session, reset before each test that uses it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sagesaver.cli import app
from sagesaver.demo.simulator import Fleet, Simulator
from tests.agent_fakes import Agent

# `pytest --shift-clock=DAYS` runs everything with the clock moved ahead (see the plugin).
pytest_plugins = ["tests.shifted_clock"]


# What makes a test slow: a server (moto, Jupyter, a fake Jupyter or metadata service), a
# browser, or a child process. A test says so with ``@pytest.mark.slow`` (or its module with
# ``pytestmark``), or by asking for one of these fixtures, which start such a thing; the rest
# run in ``make test-fast`` (``pytest -m "not slow"``). A test not marked slow that binds a
# socket or starts a process fails at once (``_fast_tests_stay_fast``), so the mark cannot drift
# from what the test does.
SLOW_FIXTURES = frozenset({"simulator", "sim", "fleet", "agent", "package", "chromium"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark slow every test that asks for a fixture that starts a server or a process."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tests_stay_fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked slow may not open a listening socket or start a child process."""
    if request.node.get_closest_marker("slow") is not None:
        return
    import socket
    import subprocess

    def refused(what: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(
                f"{request.node.nodeid} {what}: mark it @pytest.mark.slow (tests/conftest.py)"
            )

        return refuse

    monkeypatch.setattr(socket.socket, "bind", refused("binds a socket (a server)"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refused("starts a child process"))


@pytest.fixture(autouse=True)
def _own_price_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test has its own user cache directory: live prices cached by one test (on disk,
    7 days) never answer another's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True)
def _piped_width_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output piped to a test is 160 columns wide whatever the shell running the tests has
    in ``COLUMNS`` (which the CLI follows); a test that wants a width sets it."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(autouse=True)
def config_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test remembers endpoint configurations in its own directory, never the user's."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("SAGESAVER_CACHE_DIR", str(path))
    return path


def check_against_model(params: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore's own check of a request's parameters against the operation's model."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, model.input_shape)
    if report.has_errors():
        raise AssertionError(f"{model.name}: {report.generate_report()}")


@pytest.fixture(autouse=True)
def _cloudwatch_requests_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """SageSaver's CloudWatch clients skip botocore's check of each request's parameters
    (``Aws.cloudwatch``); in the tests every CloudWatch request is checked against the model
    as botocore would, so a malformed ``GetMetricData`` query fails the test that made it."""
    from sagesaver.aws.session import Aws

    unchecked = Aws.cloudwatch

    def checked(self: Aws, region: str) -> Any:
        client: Any = unchecked(self, region)
        if not getattr(client, "_checked_by_tests", False):
            client.meta.events.register("provide-client-params.cloudwatch", check_against_model)
            client._checked_by_tests = True
        return client

    monkeypatch.setattr(Aws, "cloudwatch", checked)


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    sim = Simulator()
    yield sim
    sim.stop()


def reset_and_point(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reset the simulator and point this test's boto3 chain at it."""
    simulator.reset()
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in simulator.env("us-east-1").items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def sim(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """A freshly reset simulator, with the boto3 chain pointed at it."""
    reset_and_point(simulator, monkeypatch)
    return simulator


@pytest.fixture
def fleet(sim: Simulator) -> Fleet:
    return Fleet(sim)


@pytest.fixture
def now() -> datetime:
    return datetime.now(timezone.utc)


class Cli:
    """Runs the ``sagesaver`` command in-process and keeps stdout and stderr apart."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(app, list(args))

    def json(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = self(*args, "--output", "json")
        assert result.stdout.strip(), result.stderr
        return result.exit_code, json.loads(result.stdout)


def run_at(moment: str) -> Any:
    """Run the block as if it were ``moment`` (ISO 8601), the clock ticking from there: how a
    test acts at a given time, since ``--at`` (a what-if) refuses ``--apply``."""
    import time_machine

    return time_machine.travel(datetime.fromisoformat(moment.replace("Z", "+00:00")))


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    """The auto-stop agent, run as a subprocess with its state in ``tmp_path``."""
    return Agent(tmp_path)
