"""The agent warns before it stops: a notice in the notebook home and a line to the terminals
(``--warn-minutes``), then a stop only if nothing changed. One clock: the agent's NOW."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sagesaver.core.errors import InputError
from sagesaver.core.lifecycle import (
    MAX_CONTENT_CHARS,
    AgentOptions,
    agent_source,
    compact_source,
    encoded_content,
    render_on_start,
)
from sagesaver.demo.simulator import Fleet, Simulator
from tests.agent.test_source import PYTHON37
from tests.agent_fakes import NOW, Agent, AgentRun, FakeJupyter, iso, kernel, write_metadata
from tests.conftest import Cli

pytestmark = pytest.mark.slow  # child processes and the simulator

# A zone 8 hours east of UTC that every libc knows without zone files: the notice speaks in it.
ZONE = "XST-8"
# With --time 3600 and the default 10 minutes of warning, the notice is due at NOW (50 minutes
# after this last activity) and the stop at NOW + 10 minutes: 12:10 UTC, 20:10 in ZONE.
LAST = NOW - timedelta(minutes=50)


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


@dataclass
class Scene:
    sim: Simulator
    agent: Agent
    server: FakeJupyter

    @property
    def home(self) -> Path:
        return self.agent.home / "SageMaker"

    @property
    def keep_alive(self) -> Path:
        return self.home / ".sagesaver-keep-alive"

    @property
    def terminal(self) -> Path:
        return self.agent.directory / "dev" / "pts" / "0"

    def run(self, when: datetime, *args: str, agent: Agent | None = None) -> AgentRun:
        agent = agent or self.agent
        env = agent.env(now=when, aws=self.sim.env("us-east-1"), TZ=ZONE)
        return agent(*args, url=self.server.url, env=env)

    def notices(self, home: Path | None = None) -> list[str]:
        return sorted(p.name for p in (home or self.home).glob("SAGESAVER-STOPS-AT-*"))

    def status(self, name: str = "nb-1") -> str:
        client = self.sim.client("sagemaker", "us-east-1")
        return str(client.describe_notebook_instance(NotebookInstanceName=name)[STATUS])

    def calls(self) -> dict[str, int]:
        wanted = {"DescribeNotebookInstance", "StopNotebookInstance"}
        return {op: n for op, n in self.sim.middleware.counts.items() if op in wanted}


STATUS = "NotebookInstanceStatus"


@pytest.fixture
def scene(sim: Simulator, fleet: Fleet, agent: Agent) -> Iterator[Scene]:
    fleet.notebook("us-east-1", "nb-1")
    server = FakeJupyter()
    server.jupyter(kernels=[kernel(last_activity=iso(LAST))])
    (agent.home / "SageMaker").mkdir()
    pts = agent.directory / "dev" / "pts"
    pts.mkdir(parents=True)
    (pts / "0").write_text("")
    sim.middleware.counts.clear()
    yield Scene(sim, agent, server)
    server.close()


def test_the_notice_comes_at_time_minus_n_and_the_stop_at_the_time(scene: Scene) -> None:
    early = scene.run(at(-5))
    assert early.code == 0, early.stderr
    assert early.result["action"] == "none"
    assert scene.notices() == [] and scene.terminal.read_text() == ""

    warned = scene.run(at(0))
    assert warned.code == 0, warned.stderr
    assert warned.result["action"] == "none" and warned.result["idle"] is False
    assert scene.notices() == ["SAGESAVER-STOPS-AT-20-10.txt"]
    text = (scene.home / "SAGESAVER-STOPS-AT-20-10.txt").read_text(encoding="utf-8")
    assert "STOP this notebook instance (nb-1) at 2030-06-01 20:10 XST (UTC+0800)" in text
    assert "no activity since 2030-06-01 19:10 (kernel k-1 (python3) (idle))" in text
    assert "--time is 60 min" in text
    assert f"touch {scene.keep_alive}" in text
    line = scene.terminal.read_text(encoding="utf-8")
    assert "stops this instance at 2030-06-01 20:10 XST" in line and str(scene.keep_alive) in line
    assert scene.calls() == {}

    waiting = scene.run(at(5))
    assert waiting.result["action"] == "none"
    assert "stopping at 2030-06-01T12:10:00Z if still idle" in waiting.reasons
    assert scene.notices() == ["SAGESAVER-STOPS-AT-20-10.txt"]
    assert scene.calls() == {}

    stopped = scene.run(at(10))
    assert stopped.code == 0, stopped.stderr
    assert stopped.result["action"] == "stop"
    assert "stopped notebook instance nb-1" in stopped.reasons
    assert scene.status() == "Stopped"
    assert scene.notices() == []  # the notice does not outlive the stop


@pytest.mark.parametrize("kind", ["kernel", "terminal", "session"])
def test_activity_after_the_notice_cancels_the_stop(scene: Scene, kind: str) -> None:
    assert scene.run(at(0)).result["action"] == "none"
    assert scene.notices() == ["SAGESAVER-STOPS-AT-20-10.txt"]
    used = iso(at(2))
    kernels = [kernel(last_activity=used if kind == "kernel" else iso(LAST))]
    terminals = [{"name": "1", "last_activity": used}] if kind == "terminal" else []
    sessions = [{"id": "s", "path": "a.ipynb", "last_activity": used, "kernel": None}]
    scene.server.jupyter(kernels, sessions if kind == "session" else [], terminals)

    run = scene.run(at(10))
    assert run.code == 0, run.stderr
    assert run.result["action"] == "none" and run.result["idle"] is False
    assert scene.notices() == []
    assert scene.calls() == {} and scene.status() == "InService"


def test_touching_the_keep_alive_file_cancels_and_a_new_notice_replaces_none(
    scene: Scene,
) -> None:
    scene.keep_alive.write_text(iso(NOW - timedelta(hours=1)))  # an expired time holds nothing
    before = (NOW - timedelta(hours=1)).timestamp()
    os.utime(scene.keep_alive, (before, before))
    assert scene.run(at(0)).result["action"] == "none"
    assert scene.notices() == ["SAGESAVER-STOPS-AT-20-10.txt"]

    touched = at(3).timestamp()  # `touch` after the notice
    os.utime(scene.keep_alive, (touched, touched))
    run = scene.run(at(10))
    assert run.result["action"] == "none" and run.result["idle"] is False
    assert f"keep-alive file {scene.keep_alive} touched" in run.reasons
    assert scene.notices() == []
    assert scene.calls() == {}

    # Idle again from the touch: the next notice is due 50 minutes later, for 13:03 UTC.
    again = scene.run(at(53))
    assert again.result["action"] == "none"
    assert scene.notices() == ["SAGESAVER-STOPS-AT-21-03.txt"]
    assert scene.run(at(63)).result["action"] == "stop"


def test_a_later_stop_time_replaces_the_notice(scene: Scene) -> None:
    """--warn-minutes over --time: the notice comes as soon as the instance is idle."""
    # Seen first 50 minutes into idleness: a full --time (60 minutes) of notice, to 13:00 UTC.
    assert scene.run(at(0), "--warn-minutes", "90").result["action"] == "none"
    assert scene.notices() == ["SAGESAVER-STOPS-AT-21-00.txt"]
    scene.server.jupyter(kernels=[kernel(last_activity=iso(at(2)))])
    run = scene.run(at(5), "--warn-minutes", "90")  # used at 12:02: noticed at once, anew
    assert run.result["action"] == "none"
    assert scene.notices() == ["SAGESAVER-STOPS-AT-21-05.txt"]  # replaced, not added
    assert scene.calls() == {}


def test_idle_too_long_at_first_sight_still_warns_first(scene: Scene) -> None:
    scene.server.jupyter(kernels=[kernel(last_activity=iso(NOW - timedelta(hours=2)))])
    first = scene.run(at(0))
    assert first.result["idle"] is True and first.result["action"] == "none"
    assert scene.notices() == ["SAGESAVER-STOPS-AT-20-10.txt"]  # 10 minutes from now
    assert scene.run(at(5)).result["action"] == "none"
    assert scene.run(at(10)).result["action"] == "stop"
    assert scene.status() == "Stopped"


@pytest.mark.parametrize(("warn", "offset"), [(10, 0), (10, 3), (45, 1), (90, 2)])
def test_never_stops_earlier_than_without_the_notice(
    scene: Scene, fleet: Fleet, tmp_path: Path, warn: int, offset: int
) -> None:
    """Cron every 5 minutes from the start of idleness: the same run stops, with or without."""
    fleet.notebook("us-east-1", "nb-2")
    (tmp_path / "plain").mkdir()
    plain = Agent(tmp_path / "plain")
    write_metadata(plain.metadata, name="nb-2")
    runs = [LAST + timedelta(minutes=offset + 5 * i) for i in range(15)]

    def first_stop(agent: Agent, *args: str) -> tuple[datetime | None, bool]:
        warned = False
        for when in runs:
            if scene.run(when, *args, agent=agent).result["action"] == "stop":
                return when, warned
            warned = warned or bool(scene.notices(agent.home / "SageMaker"))
        return None, warned

    with_notice, warned = first_stop(scene.agent, "--warn-minutes", str(warn))
    without, _ = first_stop(plain, "--warn-minutes", "0")
    assert without is not None and without >= LAST + timedelta(minutes=60)
    assert with_notice == without
    assert warned  # a notice was there before the stop


def test_failing_to_warn_never_prevents_the_stop(scene: Scene, tmp_path: Path) -> None:
    pts = scene.terminal.parent
    scene.terminal.unlink()
    os.mkfifo(pts / "0")  # no reader: opening it for writing fails at once
    (pts / "1").mkdir()  # not writable as a terminal
    (pts / "2").write_text("")
    missing = str(tmp_path / "no-such-home")
    warned = scene.run(at(0), "--notice-dir", missing)
    assert warned.code == 0, warned.stderr
    assert "cannot write the stop notice" in warned.stderr
    assert "20:10 XST" in (pts / "2").read_text(encoding="utf-8")  # the others still hear it
    stopped = scene.run(at(10), "--notice-dir", missing)
    assert stopped.code == 0, stopped.stderr
    assert stopped.result["action"] == "stop"
    assert scene.status() == "Stopped"


def test_dry_run_leaves_no_notice(scene: Scene) -> None:
    run = scene.run(at(10), "--dry-run")
    assert run.result["action"] == "would-stop"
    assert scene.notices() == [] and scene.terminal.read_text() == ""
    assert scene.calls() == {}


def test_no_notice_with_zero_minutes_and_an_old_notice_is_removed(scene: Scene) -> None:
    (scene.home / "SAGESAVER-STOPS-AT-01-00.txt").write_text("left over")
    (scene.home / "SAGESAVER-STOPS-AT-notes.txt").write_text("not the agent's")
    assert scene.run(at(0), "--warn-minutes", "0").result["action"] == "none"
    assert scene.notices() == ["SAGESAVER-STOPS-AT-notes.txt"]
    assert scene.terminal.read_text() == ""
    assert scene.run(at(10), "--warn-minutes", "0").result["action"] == "stop"


@pytest.mark.parametrize("python", ["current", "3.7"])
def test_the_shipped_compact_agent_leaves_the_notice_too(
    scene: Scene, tmp_path: Path, python: str
) -> None:
    """What the lifecycle script installs, on this Python and on the oldest it supports."""
    interpreter = sys.executable if python == "current" else PYTHON37
    assert interpreter is not None, "a Python 3.7 interpreter is needed (pyenv ships 3.7.16)"
    shipped = tmp_path / "autostop.py"
    shipped.write_text(compact_source(agent_source()), encoding="utf-8")
    agent = scene.agent
    command = [interpreter, "-I", "-S", str(shipped), "--time", "3600", "--url", scene.server.url]
    command += ["--cpu-threshold", "0", "--gpu-threshold", "0"]
    command += ["--state-file", str(agent.state_file), "--metadata-file", str(agent.metadata)]
    env = agent.env(now=at(0), aws=scene.sim.env("us-east-1"), TZ=ZONE)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert scene.notices() == ["SAGESAVER-STOPS-AT-20-10.txt"]
    assert "20:10 XST" in scene.terminal.read_text(encoding="utf-8")


@pytest.mark.parametrize("value", ["-1", "1441", "nan", "ten"])
def test_bad_warn_minutes_exit_2(agent: Agent, value: str) -> None:
    run = agent("--warn-minutes", value)
    assert run.code == 2
    assert "--warn-minutes" in run.stderr and run.stdout == ""


# ------------------------------------------------------------------ the lifecycle configuration


def test_lifecycle_passes_warn_minutes_and_checks_it(cli: Cli) -> None:
    default = cli("lifecycle", "render")
    assert default.exit_code == 0
    assert "--warn-minutes" not in default.stdout.split("ENTRY=")[1]  # 10: the agent's own
    chosen = cli("lifecycle", "render", "--warn-minutes", "30")
    assert "--warn-minutes 30" in chosen.stdout.split("ENTRY=")[1].splitlines()[0]
    for bad in ("-1", "1441"):
        refused = cli("lifecycle", "render", "--warn-minutes", bad)
        assert refused.exit_code == 2
        assert f"--warn-minutes {bad}: must be from 0" in refused.stderr
    with pytest.raises(InputError, match="--warn-minutes 2000"):
        AgentOptions(warn_minutes=2000).validate()


def test_the_script_with_every_option_at_its_longest_fits_the_api_limit() -> None:
    largest = AgentOptions(
        idle_time=86400 * 30,
        count_connections=True,
        cpu_threshold=99.5,
        gpu_threshold=99.5,
        interval_minutes=59,
        jupyter_url="https://localhost:8443/some/long/base/path",
        metadata_file="/opt/ml/metadata/resource-metadata.json",
        max_busy_hours=8760.5,
        warn_minutes=1440,
    )
    content = encoded_content(render_on_start(largest))
    assert len(content) <= MAX_CONTENT_CHARS - 500
    script = base64.b64decode(content).decode()
    assert "--warn-minutes 1440" in script
