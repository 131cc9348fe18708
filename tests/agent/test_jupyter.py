"""The agent against a real Jupyter server on loopback, with real kernels and terminals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.agent_fakes import Agent, AgentRun

TOKEN = "jupyter-test-token-0123456789"
LATER = timedelta(hours=2)  # with --time 3600, anything seen now is idle by then


class RealJupyter:
    """A ``jupyter_server`` process and a small client for its REST API."""

    def __init__(self, root: Path) -> None:
        self.runtime_dir = root / "runtime"
        self.notebooks = root / "notebooks"
        self.notebooks.mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
        env.update(
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTER_CONFIG_DIR=str(root / "config"),
            JUPYTER_DATA_DIR=str(root / "data"),
        )
        self.log = (root / "server.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1",
                "--ServerApp.open_browser=False",
                f"--ServerApp.root_dir={self.notebooks}",
                *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        self.log_path = root / "server.log"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                self.api("GET", "/api/status")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        pytest.fail("Jupyter did not start:\n" + self.log_path.read_text(encoding="utf-8"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self.log.close()

    def api(self, method: str, path: str, body: object = None) -> Any:
        """Call the REST API with the token (and without counting as activity)."""
        data = None if body is None else json.dumps(body).encode()
        separator = "&" if "?" in path else "?"
        request = urllib.request.Request(
            f"{self.url}{path}{separator}no_track_activity=1",
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        pytest.fail(f"timed out waiting for {what}")

    def kernel_state(self, kernel_id: str) -> str:
        return str(self.api("GET", f"/api/kernels/{kernel_id}")["execution_state"])

    def start_kernel(self, ready: bool = True) -> str:
        """Start a kernel; with ``ready``, talk to it until the server sees it idle.

        jupyter_server reports a new kernel as ``starting`` until it sees the kernel's answer
        to a client on the IOPub channel; now and then its IOPub subscription misses them all
        (the kernel then stays "starting" for good), so such a kernel is replaced, as is one
        the client gave up on while it started ("Kernel died before replying to kernel_info":
        on a loaded machine a starting kernel can miss heartbeats for seconds).
        """
        for _attempt in range(3):
            kernel_id = str(self.api("POST", "/api/kernels", {"name": "python3"})["id"])
            if not ready:
                return kernel_id
            with self.client(kernel_id) as client:
                try:
                    client.wait_for_ready(timeout=60)
                except RuntimeError:
                    self.api("DELETE", f"/api/kernels/{kernel_id}")
                    continue
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if self.kernel_state(kernel_id) == "idle":
                        return kernel_id
                    client.kernel_info()
                    time.sleep(0.3)
            self.api("DELETE", f"/api/kernels/{kernel_id}")
        pytest.fail("Jupyter never saw a kernel become idle")

    @contextmanager
    def client(self, kernel_id: str) -> Iterator[Any]:
        """A jupyter_client talking to the kernel directly (not a server connection)."""
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(
            connection_file=str(self.runtime_dir / f"kernel-{kernel_id}.json")
        )
        client.load_connection_file()
        client.start_channels()
        try:
            yield client
        finally:
            client.stop_channels()

    def clean(self) -> None:
        """Shut down every session, kernel and terminal."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")
        for terminal in self.api("GET", "/api/terminals"):
            self.api("DELETE", f"/api/terminals/{terminal['name']}")


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealJupyter]:
    server = RealJupyter(tmp_path_factory.mktemp("jupyter"))
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture
def server(jupyter: RealJupyter) -> Iterator[RealJupyter]:
    """The module's Jupyter server, emptied after each test."""
    yield jupyter
    jupyter.clean()


def run(agent: Agent, server: RealJupyter, *args: str, later: bool = False) -> AgentRun:
    """Run the agent against the real server: now, or two hours from now (``later``)."""
    now = datetime.now(timezone.utc) + LATER if later else None
    return agent(
        "--dry-run", "--token", TOKEN, *args, url=server.url, env=agent.env(now=now), time=3600
    )


def assert_idle(result: AgentRun) -> None:
    assert result.code == 0, result.stderr
    assert result.result["idle"] is True, result.reasons
    assert result.result["action"] == "would-stop"


def assert_not_idle(result: AgentRun, *fragments: str) -> None:
    assert result.code == 0, result.stderr
    assert result.result["idle"] is False
    assert result.result["action"] == "none"
    for fragment in fragments:
        assert fragment in result.reasons, result.reasons


def test_no_kernels(server: RealJupyter, agent: Agent) -> None:
    now = run(agent, server)
    assert_not_idle(now, "Jupyter server started")
    assert now.result["idle_seconds"] < 600
    later = run(agent, server, later=True)
    assert_idle(later)
    assert "Jupyter server started" in later.reasons
    assert later.result["idle_seconds"] >= 7200 - 600


def test_idle_kernel(server: RealJupyter, agent: Agent) -> None:
    kernel_id = server.start_kernel()
    assert_not_idle(run(agent, server), f"kernel {kernel_id[:8]} (python3) (idle)")
    later = run(agent, server, later=True)
    assert_idle(later)
    assert f"last: kernel {kernel_id[:8]}" in later.reasons


def test_idle_kernel_with_a_short_time(server: RealJupyter, agent: Agent) -> None:
    """No seam: a real kernel, a real clock and a 2-second --time."""
    server.start_kernel()
    time.sleep(2.5)
    result = agent("--dry-run", "--token", TOKEN, url=server.url, env=agent.env(now=None), time=2)
    assert_idle(result)


def test_kernel_running_a_long_cell(server: RealJupyter, agent: Agent) -> None:
    kernel_id = server.start_kernel()
    with server.client(kernel_id) as client:
        client.execute("import time; time.sleep(60)")
        server.wait_for(lambda: server.kernel_state(kernel_id) == "busy", "a busy kernel")
        busy = run(agent, server, later=True)
        server.api("POST", f"/api/kernels/{kernel_id}/interrupt")
    assert_not_idle(busy, f"kernel {kernel_id[:8]} (python3) is busy")


def test_kernel_left_starting(server: RealJupyter, agent: Agent) -> None:
    """A kernel no client ever talked to stays "starting": it must not block stopping."""
    kernel_id = server.start_kernel(ready=False)
    assert server.kernel_state(kernel_id) == "starting"
    assert_not_idle(run(agent, server), f"kernel {kernel_id[:8]} (python3) (starting)")
    later = run(agent, server, later=True)
    assert_idle(later)
    assert f"kernel {kernel_id[:8]} (python3) (starting)" in later.reasons


def test_open_connection(server: RealJupyter, agent: Agent) -> None:
    import websocket

    kernel_id = server.start_kernel()
    address = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels"
    connection = websocket.create_connection(address, header=[f"Authorization: token {TOKEN}"])
    try:
        server.wait_for(
            lambda: server.api("GET", f"/api/kernels/{kernel_id}")["connections"] == 1,
            "a kernel connection",
        )
        assert_idle(run(agent, server, later=True))  # by default a connection alone is not use
        assert_not_idle(
            run(agent, server, "--count-connections", later=True),
            "1 open connection (--count-connections)",
        )
    finally:
        connection.close()


def test_notebook_session(server: RealJupyter, agent: Agent) -> None:
    (server.notebooks / "a.ipynb").write_text("{}", encoding="utf-8")
    session = server.api(
        "POST",
        "/api/sessions",
        {"path": "a.ipynb", "name": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    kernel_id = session["kernel"]["id"]
    assert_not_idle(run(agent, server), f"kernel {kernel_id[:8]}")
    assert_idle(run(agent, server, later=True))


def test_terminal_in_use(server: RealJupyter, agent: Agent) -> None:
    terminal = server.api("POST", "/api/terminals")
    assert_not_idle(run(agent, server), f"terminal {terminal['name']}")
    later = run(agent, server, later=True)
    assert_idle(later)
    assert f"last: terminal {terminal['name']}" in later.reasons


def test_polling_is_not_activity(server: RealJupyter, agent: Agent) -> None:
    before = server.api("GET", "/api/status")["last_activity"]
    run(agent, server)
    assert server.api("GET", "/api/status")["last_activity"] == before


def test_token(server: RealJupyter, agent: Agent) -> None:
    wrong = agent("--token", "not-the-token", url=server.url)
    assert wrong.code == 1
    assert "check --token" in wrong.reasons
    missing = agent(url=server.url)
    assert missing.code == 1
    right = run(agent, server, later=True)
    for result in (wrong, missing, right):
        assert TOKEN not in result.stdout + result.stderr
        assert "not-the-token" not in result.stdout + result.stderr
