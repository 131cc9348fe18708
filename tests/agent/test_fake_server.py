"""The agent against a fake Jupyter server: odd timestamps, odd shapes, broken answers, TLS,
CPU, GPU, keep-alive files, time zones and secrets. Every run is a subprocess, as under cron."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.agent_fakes import (
    NOW,
    Agent,
    AgentRun,
    FakeJupyter,
    Reply,
    ago,
    iso,
    kernel,
    self_signed_cert,
    write_executable,
)


@pytest.fixture
def server() -> Iterator[FakeJupyter]:
    fake = FakeJupyter()
    fake.jupyter()
    yield fake
    fake.close()


def assert_idle(run: AgentRun, seconds: float | None = None) -> None:
    assert run.code == 0, run.stderr
    assert run.result["idle"] is True, run.reasons
    assert run.result["action"] == "would-stop"
    if seconds is not None:
        assert run.result["idle_seconds"] == seconds


def assert_not_idle(run: AgentRun, *fragments: str, code: int = 0) -> None:
    assert run.code == code, run.stderr
    assert run.result["idle"] is False
    assert run.result["action"] == "none"
    for fragment in fragments:
        assert fragment in run.reasons, run.reasons


# ----------------------------------------------------------------------- timestamps, shapes


def test_no_kernels_counts_from_the_server_start(server: FakeJupyter, agent: Agent) -> None:
    """Not from /api/status last_activity, which API polling keeps moving."""
    server.jupyter(started=iso(ago(5000)), last_activity=iso(ago(1)))
    run = agent("--dry-run", url=server.url)
    assert_idle(run, 5000.0)
    assert "Jupyter server started" in run.reasons
    assert run.result["instance"] == "nb-1"
    assert "would stop notebook instance nb-1" in run.reasons


def test_recent_start_is_not_idle(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(started=iso(ago(600)))
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run, "last activity 600 s ago, less than --time 3600 s")
    assert run.result["idle_seconds"] == 600.0


@pytest.mark.parametrize(
    ("digits", "offset"),
    [(0, None), (3, None), (6, None), (9, None), (0, "+02:00"), (9, "+05:30"), (6, "-08:00")],
)
def test_timestamp_formats(server: FakeJupyter, agent: Agent, digits: int, offset: str) -> None:
    active = ago(1800)
    server.jupyter(
        started=iso(ago(9000), digits, offset),
        kernels=[kernel(last_activity=iso(active, digits, offset))],
        terminals=[{"name": "1", "last_activity": iso(ago(2000), digits, offset)}],
    )
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run, "kernel k-1 (python3) (idle)")
    assert run.result["idle_seconds"] == 1800.0
    assert_idle(agent("--dry-run", url=server.url, time=1800), 1800.0)


def test_busy_kernel_keeps_it_up(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(kernels=[kernel(state="busy", last_activity=iso(ago(86400)))])
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run, "kernel k-1 (python3) is busy")
    assert run.result["idle_seconds"] == 0


def test_kernel_stuck_starting_does_not_block(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(kernels=[kernel(state="starting", last_activity=iso(ago(4000)))])
    run = agent("--dry-run", url=server.url)
    assert_idle(run, 4000.0)
    assert "(starting)" in run.reasons


def test_kernel_starting_recently_blocks(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(kernels=[kernel(state="starting", last_activity=iso(ago(20)))])
    assert_not_idle(agent("--dry-run", url=server.url), "(starting)")


@pytest.mark.parametrize("state", ["weird", None])
def test_unknown_execution_state_counts_as_busy(
    server: FakeJupyter, agent: Agent, state: str | None
) -> None:
    server.jupyter(kernels=[kernel(state=state, last_activity=iso(ago(86400)))])
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run, "unknown execution state", "counted as busy")


def test_dead_kernel_counts_by_its_last_activity(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(kernels=[kernel(state="dead", last_activity=iso(ago(7000)))])
    assert_idle(agent("--dry-run", url=server.url), 7000.0)


def test_session_with_null_kernel(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(
        sessions=[
            {"id": "s1", "path": "a.ipynb", "type": "notebook", "kernel": None},
            {"id": "s2", "path": "b.ipynb", "type": "notebook", "kernel": kernel("k-2")},
        ]
    )
    assert_idle(agent("--dry-run", url=server.url), 7200.0)


def test_session_kernel_busy_and_session_activity(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(sessions=[{"id": "s", "path": "a.ipynb", "kernel": kernel(state="busy")}])
    assert_not_idle(agent("--dry-run", url=server.url), "is busy")
    agent.state_file.unlink()  # forget that busy kernel
    server.jupyter(
        sessions=[{"id": "s", "path": "a.ipynb", "last_activity": iso(ago(30)), "kernel": None}]
    )
    assert_not_idle(agent("--dry-run", url=server.url), "session a.ipynb")


def test_open_connections_count_only_with_count_connections(
    server: FakeJupyter, agent: Agent
) -> None:
    server.jupyter(kernels=[kernel(connections=2)])
    assert_idle(agent("--dry-run", url=server.url), 7200.0)  # a forgotten tab: ignored
    assert_idle(agent("--dry-run", "--ignore-connections", url=server.url), 7200.0)  # accepted
    counted = agent("--dry-run", "--count-connections", url=server.url)
    assert_not_idle(counted, "2 open connections (--count-connections)")


def test_busy_kernel_without_output_for_max_busy_hours_no_longer_holds(
    server: FakeJupyter, agent: Agent
) -> None:
    silent = kernel(state="busy", last_activity=iso(ago(25 * 3600)))
    server.jupyter(kernels=[silent], started=iso(ago(26 * 3600)))
    run = agent("--dry-run", url=server.url)
    assert_idle(run, 25 * 3600.0)  # idle since the kernel's last output
    assert "k-1 (python3) busy with no output for over --max-busy-hours 24 h" in run.reasons
    agent.state_file.unlink()
    assert_not_idle(agent("--dry-run", "--max-busy-hours", "26", url=server.url), "is busy")
    server.jupyter(kernels=[kernel(state="busy", last_activity=iso(ago(23 * 3600)))])
    agent.state_file.unlink()
    assert_not_idle(agent("--dry-run", url=server.url), "k-1 (python3) is busy")


def test_a_long_silent_busy_kernel_with_busy_cpu_still_holds(
    server: FakeJupyter, agent: Agent, tmp_path: Path
) -> None:
    """The CPU rule still applies: a silent kernel that computes keeps the instance up."""
    server.jupyter(kernels=[kernel(state="busy", last_activity=iso(ago(30 * 3600)))])
    stat = tmp_path / "stat"
    write_stat(stat, busy=1000, idle=100000)
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
    agent("--dry-run", url=server.url, cpu=10, env=env)
    write_stat(stat, busy=1000 + 3000, idle=100000 + 100)  # the kernel's process computes
    later = {**env, **agent.env(now=NOW + timedelta(minutes=5))}
    run = agent("--dry-run", url=server.url, cpu=10, env=later)
    assert_not_idle(run, "CPU use 96.8% on the busiest core")


def test_terminal_activity(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(terminals=[{"name": "1", "last_activity": iso(ago(60))}])
    assert_not_idle(agent("--dry-run", url=server.url), "terminal 1")
    agent.state_file.unlink()  # forget that terminal activity
    server.jupyter(terminals=[{"name": "1", "last_activity": iso(ago(4000))}])
    assert_idle(agent("--dry-run", url=server.url), 4000.0)


def test_terminals_disabled(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(terminals=None)
    run = agent("--dry-run", url=server.url)
    assert_idle(run, 86400.0)
    assert "no /api/terminals" in run.stderr


def test_remembers_the_latest_activity(server: FakeJupyter, agent: Agent) -> None:
    """A kernel shut down since the previous run still counts: the state file remembers it."""
    server.jupyter(kernels=[kernel(last_activity=iso(ago(600)))])
    assert_not_idle(agent("--dry-run", url=server.url))
    server.jupyter()  # the kernel is gone; the server started a day ago
    later = NOW + timedelta(minutes=20)
    run = agent("--dry-run", url=server.url, env=agent.env(now=later))
    assert_not_idle(run, "kernel k-1")
    assert run.result["idle_seconds"] == 1800.0
    run = agent("--dry-run", url=server.url, env=agent.env(now=NOW + timedelta(hours=1)))
    assert_idle(run, 4200.0)


def test_timestamps_in_the_future_count_as_now(server: FakeJupyter, agent: Agent) -> None:
    server.jupyter(kernels=[kernel(last_activity=iso(NOW + timedelta(hours=5)))])
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run)
    assert run.result["idle_seconds"] == 0
    state = json.loads(agent.state_file.read_text(encoding="utf-8"))
    assert state["last_activity"][0] == iso(NOW)


def test_corrupt_state_counts_as_activity(server: FakeJupyter, agent: Agent) -> None:
    agent.state_file.parent.mkdir(parents=True)
    agent.state_file.write_text("{garbage", encoding="utf-8")
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run, "is corrupt")
    assert "is corrupt" in run.stderr
    assert_idle(agent("--dry-run", url=server.url, env=agent.env(now=NOW + timedelta(hours=2))))


# ------------------------------------------------------------------------- broken answers


BROKEN = {
    "http-500": ("/api/kernels", Reply(500, b'{"message": "oops"}'), "HTTP 500"),
    "http-403": ("/api/status", Reply(403, b"{}"), "not authorised"),
    "malformed-json": ("/api/kernels", Reply(200, b"{not json"), "malformed JSON"),
    "truncated-body": ("/api/sessions", Reply(200, b'[{"id": "s", "ker', 40), "truncated"),
    "truncated-json": ("/api/sessions", Reply(200, b'[{"id": "s", "ker'), "malformed JSON"),
    "html": ("/api/status", Reply(200, b"<html>login</html>"), "malformed JSON"),
    "kernels-object": ("/api/kernels", Reply.json({"k": 1}), "not a list"),
    "kernel-string": ("/api/kernels", Reply.json(["k-1"]), "not an object"),
    "no-last-activity": (
        "/api/kernels",
        Reply.json([{"id": "k", "execution_state": "idle"}]),
        "bad last_activity: missing",
    ),
    "bad-last-activity": (
        "/api/kernels",
        Reply.json([kernel(last_activity="last tuesday")]),
        "bad last_activity",
    ),
    "bad-connections": ("/api/kernels", Reply.json([{**kernel(), "connections": "2"}]), "bad"),
    "status-list": ("/api/status", Reply.json([]), "not an object"),
    "no-started": ("/api/status", Reply.json({"last_activity": iso(NOW)}), "bad started"),
    "terminal-no-time": ("/api/terminals", Reply.json([{"name": "1"}]), "bad last_activity"),
    "session-kernel-list": (
        "/api/sessions",
        Reply.json([{"id": "s", "kernel": []}]),
        "not an object",
    ),
    "empty-body": ("/api/kernels", Reply(200, b""), "malformed JSON"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_answers_never_stop(server: FakeJupyter, agent: Agent, case: str) -> None:
    path, reply, fragment = BROKEN[case]
    server.routes[path] = reply
    run = agent(url=server.url)  # not a dry run: it must not even try
    assert_not_idle(run, fragment, code=1)
    assert fragment in run.stderr


def test_connection_refused(agent: Agent) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = agent(url=f"http://127.0.0.1:{port}")
    assert_not_idle(run, "cannot reach Jupyter", code=1)
    assert run.result["idle_seconds"] == 0


def test_server_that_never_answers_times_out(agent: Agent) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        env = agent.env(SAGESAVER_AGENT_REQUEST_TIMEOUT="0.5")
        run = agent(url=f"http://127.0.0.1:{port}", env=env)
    assert_not_idle(run, "Jupyter /api/status: no complete answer in time", code=1)


def test_sends_the_token_and_never_prints_it(server: FakeJupyter, agent: Agent) -> None:
    token = "s3cr3t-T0KEN-value"
    run = agent("--token", token, "--dry-run", url=server.url)
    assert_idle(run)
    assert all(seen.headers.get("authorization") == f"token {token}" for seen in server.seen)
    assert all("no_track_activity=1" in seen.query for seen in server.seen)
    server.routes["/api/kernels"] = Reply(403, b'{"message": "Forbidden"}')
    denied = agent("--token", token, url=server.url)
    assert_not_idle(denied, "check --token", code=1)
    from_env = agent(url=server.url, env=agent.env(JUPYTER_TOKEN=token))
    assert server.seen[-1].headers.get("authorization") == f"token {token}"
    for output in (run, denied, from_env):
        assert token not in output.stdout + output.stderr


def test_no_token_no_header(server: FakeJupyter, agent: Agent) -> None:
    agent("--dry-run", url=server.url)
    assert server.seen and all("authorization" not in seen.headers for seen in server.seen)


def test_base_path(server: FakeJupyter, agent: Agent) -> None:
    for path in ("/api/status", "/api/kernels", "/api/sessions", "/api/terminals"):
        server.routes["/jupyter/default" + path] = server.routes.pop(path)
    assert_idle(agent("--dry-run", url=server.url + "/jupyter/default"))


# ---------------------------------------------------------------------------------- TLS


def test_self_signed_certificate_accepted_on_localhost(tmp_path: Path, agent: Agent) -> None:
    cert = self_signed_cert(tmp_path, ["localhost", "127.0.0.1", "127.0.0.2"])
    for host, url_host in (("127.0.0.1", "127.0.0.1"), ("127.0.0.1", "localhost")):
        tls = FakeJupyter(host, cert=cert)
        try:
            tls.jupyter()
            run = agent("--dry-run", url=f"https://{url_host}:{tls.port}")
        finally:
            tls.close()
        assert_idle(run)


def test_self_signed_certificate_accepted_on_ipv6_loopback(tmp_path: Path, agent: Agent) -> None:
    tls = FakeJupyter("::1", cert=self_signed_cert(tmp_path, ["::1"]))
    try:
        tls.jupyter()
        run = agent("--dry-run", url=tls.url)
    finally:
        tls.close()
    assert_idle(run)


def test_self_signed_certificate_rejected_elsewhere(tmp_path: Path, agent: Agent) -> None:
    """127.0.0.2 is this machine too, but not a name the agent trusts blindly: it verifies."""
    tls = FakeJupyter("127.0.0.2", cert=self_signed_cert(tmp_path, ["127.0.0.2"]))
    try:
        tls.jupyter()
        run = agent("--dry-run", url=tls.url)
    finally:
        tls.close()
    assert_not_idle(run, "CERTIFICATE_VERIFY_FAILED", code=1)


# ------------------------------------------------------------------------------- CPU, GPU


def write_stat(path: Path, busy: int, idle: int) -> None:
    """A /proc/stat whose cpu line adds up to these busy and idle jiffies."""
    user, system = busy // 2, busy - busy // 2
    path.write_text(
        f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 {user} 0 {system} {idle} 0 0 0 0 0 0\n",
        encoding="utf-8",
    )


def test_high_cpu_since_the_previous_run_keeps_it_up(
    server: FakeJupyter, agent: Agent, tmp_path: Path
) -> None:
    stat = tmp_path / "stat"
    write_stat(stat, busy=1000, idle=100000)
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
    first = agent("--dry-run", url=server.url, cpu=10, env=env)
    assert_idle(first)  # no previous sample: a (here empty) short sample, below the threshold
    assert "cpu" in json.loads(agent.state_file.read_text(encoding="utf-8"))

    write_stat(stat, busy=1000 + 85000, idle=100000 + 15000)  # 85 % busy since then
    later = NOW + timedelta(minutes=5)
    busy = agent("--dry-run", url=server.url, cpu=10, env={**env, **agent.env(now=later)})
    assert_not_idle(
        busy, "CPU use 85.0% on the busiest core since the previous run", ">= --cpu-threshold 10%"
    )

    write_stat(stat, busy=86000 + 500, idle=115000 + 29500)  # then 1.7 %
    quiet = NOW + timedelta(minutes=10)
    run = agent("--dry-run", url=server.url, cpu=10, env={**env, **agent.env(now=quiet)})
    assert_not_idle(run, "CPU use 85.0%")  # remembered as the latest activity
    assert run.result["idle_seconds"] == 300.0
    run = agent("--dry-run", url=server.url, cpu=10, time=300, env={**env, **agent.env(now=quiet)})
    assert_idle(run, 300.0)


def test_low_cpu_allows_idle(server: FakeJupyter, agent: Agent, tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    write_stat(stat, busy=1000, idle=100000)
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
    agent("--dry-run", url=server.url, cpu=10, env=env)
    write_stat(stat, busy=1000 + 900, idle=100000 + 9100)  # 9 %
    run = agent("--dry-run", url=server.url, cpu=10, env=env)
    assert_idle(run, 86400.0)
    busy = agent("--dry-run", url=server.url, cpu=5, env=env)  # 0 % since the previous run
    assert_idle(busy)


def test_cpu_counters_going_back_take_a_fresh_sample(
    server: FakeJupyter, agent: Agent, tmp_path: Path
) -> None:
    stat = tmp_path / "stat"
    write_stat(stat, busy=900000, idle=100000)
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
    agent("--dry-run", url=server.url, cpu=10, env=env)
    write_stat(stat, busy=10, idle=100)  # rebooted: counters restarted
    run = agent("--dry-run", url=server.url, cpu=10, env=env)
    assert_idle(run)


def test_first_run_samples_the_real_cpu(server: FakeJupyter, agent: Agent) -> None:
    assert Path("/proc/stat").exists()  # Linux, like every notebook instance
    env = agent.env(SAGESAVER_AGENT_CPU_SAMPLE_SECONDS="0.2")
    run = agent("--dry-run", url=server.url, cpu=100, env=env)
    assert run.code == 0, run.stderr
    state = json.loads(agent.state_file.read_text(encoding="utf-8"))
    assert len(state["cpu"][0]) == os.cpu_count()
    assert all(total > 0 for _, total in state["cpu"][0])


def write_cores(path: Path, cores: list[tuple[int, int]]) -> None:
    """A /proc/stat with one cpuN line per (busy, idle) pair and their sum on the cpu line."""
    lines = [f"cpu{i} {busy} 0 0 {idle} 0 0 0 0 0 0" for i, (busy, idle) in enumerate(cores)]
    total = f"cpu  {sum(b for b, _ in cores)} 0 0 {sum(i for _, i in cores)} 0 0 0 0 0 0"
    path.write_text("\n".join([total, *lines, "intr 1 2 3", "ctxt 9"]) + "\n", encoding="utf-8")


def test_one_busy_core_keeps_it_up_though_the_machine_average_is_low(
    server: FakeJupyter, agent: Agent, tmp_path: Path
) -> None:
    """A single-threaded job on 8 cores: 12.5 % of the machine, 100 % of one core."""
    stat = tmp_path / "stat"
    write_cores(stat, [(1000, 9000)] * 8)
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
    assert_idle(agent("--dry-run", url=server.url, cpu=20, env=env))
    write_cores(stat, [(1000 + 30000, 9000)] + [(1000, 9000 + 30000)] * 7)
    later = {**env, **agent.env(now=NOW + timedelta(minutes=5))}
    run = agent("--dry-run", url=server.url, cpu=20, env=later)
    assert_not_idle(run, "CPU use 100.0% on the busiest core", ">= --cpu-threshold 20%")


def test_all_cores_below_the_threshold_allow_idle(
    server: FakeJupyter, agent: Agent, tmp_path: Path
) -> None:
    stat = tmp_path / "stat"
    write_cores(stat, [(1000, 9000)] * 4)
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
    agent("--dry-run", url=server.url, cpu=20, env=env)
    write_cores(stat, [(1000 + 1900, 9000 + 8100), (1000 + 100, 9000 + 9900)] * 2)  # 19 %, 1 %
    assert_idle(agent("--dry-run", url=server.url, cpu=20, env=env))


def test_a_changed_number_of_cores_takes_a_fresh_sample(
    server: FakeJupyter, agent: Agent, tmp_path: Path
) -> None:
    stat = tmp_path / "stat"
    write_cores(stat, [(0, 1000)] * 4)
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(stat))
    agent("--dry-run", url=server.url, cpu=20, env=env)
    write_cores(stat, [(99000, 1000)] * 2)  # 2 cores now: no comparison with 4 old ones
    run = agent("--dry-run", url=server.url, cpu=20, env=env)
    assert_idle(run)  # compared core by core with the old 4, cpu0 and cpu1 would be 99 % busy


def test_unreadable_proc_stat(server: FakeJupyter, agent: Agent, tmp_path: Path) -> None:
    env = agent.env(SAGESAVER_AGENT_PROC_STAT=str(tmp_path / "missing"))
    run = agent("--dry-run", url=server.url, cpu=10, env=env)
    assert_not_idle(run, "cannot read CPU use", "--cpu-threshold 0", code=1)


def fake_nvidia_smi(directory: Path, output: str, code: int = 0) -> dict[str, str]:
    """A fake nvidia-smi first on PATH; returns the PATH setting."""
    directory.mkdir(exist_ok=True)
    write_executable(
        directory / "nvidia-smi",
        f"#!/bin/sh\nprintf '%s' '{output}'\nexit {code}\n",
    )
    return {"PATH": f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_busy_gpu_keeps_it_up(server: FakeJupyter, agent: Agent, tmp_path: Path) -> None:
    env = agent.env(**fake_nvidia_smi(tmp_path / "bin", "85\n"))
    run = agent("--dry-run", url=server.url, gpu=10, env=env)
    assert_not_idle(run, "GPU use 85% >= --gpu-threshold 10%")


def test_quiet_gpus_allow_idle(server: FakeJupyter, agent: Agent, tmp_path: Path) -> None:
    env = agent.env(**fake_nvidia_smi(tmp_path / "bin", "3\n0\n"))
    assert_idle(agent("--dry-run", url=server.url, gpu=10, env=env))
    busy = agent("--dry-run", url=server.url, gpu=2, env=env)
    assert_not_idle(busy, "GPU use 3%")


def test_gpu_check_disabled(server: FakeJupyter, agent: Agent, tmp_path: Path) -> None:
    env = agent.env(**fake_nvidia_smi(tmp_path / "bin", "99\n"))
    assert_idle(agent("--dry-run", url=server.url, gpu=0, env=env))


@pytest.mark.parametrize(
    ("output", "code", "fragment"),
    [
        ("NVIDIA-SMI has failed", 9, "nvidia-smi: exit 9: NVIDIA-SMI has failed"),
        ("[N/A]\n", 0, "nvidia-smi: could not convert"),
        ("", 0, "nvidia-smi: no GPU utilisation"),
        ("120\n", 0, "nvidia-smi: no GPU utilisation"),
    ],
)
def test_broken_nvidia_smi_keeps_it_up(
    server: FakeJupyter, agent: Agent, tmp_path: Path, output: str, code: int, fragment: str
) -> None:
    env = agent.env(**fake_nvidia_smi(tmp_path / "bin", output, code))
    run = agent("--dry-run", url=server.url, gpu=10, env=env)
    assert_not_idle(run, fragment, "--gpu-threshold 0", code=1)


# ---------------------------------------------------------------------------- keep-alive


def keep_alive(agent: Agent, content: str, beside_state: bool = False) -> Path:
    if beside_state:
        path = agent.state_file.parent / "keep-alive"
    else:
        path = agent.home / "SageMaker" / ".sagesaver-keep-alive"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "content",
    [
        iso(NOW + timedelta(hours=1)),
        iso(NOW + timedelta(hours=1), digits=0, offset="+09:00") + "\n",
        str(int((NOW + timedelta(hours=1)).timestamp())) + "\n",
        "2030-06-01 13:30",
    ],
)
def test_keep_alive_in_the_future_keeps_it_up(
    server: FakeJupyter, agent: Agent, content: str
) -> None:
    keep_alive(agent, content)
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run, ".sagesaver-keep-alive holds the instance until 2030-06-01T1")
    assert run.result["idle_seconds"] == 86400.0


def test_keep_alive_beside_the_state_file(server: FakeJupyter, agent: Agent) -> None:
    keep_alive(agent, str(int((NOW + timedelta(minutes=5)).timestamp())), beside_state=True)
    assert_not_idle(agent("--dry-run", url=server.url), "keep-alive holds the instance")


@pytest.mark.parametrize(
    "content", [iso(NOW - timedelta(minutes=1)), str(int((NOW - timedelta(days=1)).timestamp()))]
)
def test_keep_alive_in_the_past_is_ignored(server: FakeJupyter, agent: Agent, content: str) -> None:
    keep_alive(agent, content)
    run = agent("--dry-run", url=server.url)
    assert_idle(run)
    assert "expired" in run.reasons


@pytest.mark.parametrize("content", ["tomorrow", "", "2030-99-99", "\x00\xff"])
def test_unparseable_keep_alive_keeps_it_up(
    server: FakeJupyter, agent: Agent, content: str
) -> None:
    keep_alive(agent, content)
    run = agent("--dry-run", url=server.url)
    assert_not_idle(run, "holds no time", "keeping the instance up")


def test_unreadable_keep_alive_keeps_it_up(server: FakeJupyter, agent: Agent) -> None:
    path = agent.home / "SageMaker" / ".sagesaver-keep-alive"
    path.mkdir(parents=True)  # a directory cannot be read as a file, even by root
    assert_not_idle(agent("--dry-run", url=server.url), "cannot be read", "keeping the instance up")


def test_a_fifo_as_keep_alive_never_hangs_the_agent(server: FakeJupyter, agent: Agent) -> None:
    path = agent.home / "SageMaker" / ".sagesaver-keep-alive"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)  # no writer: a blocking open would wait for ever
    started = time.monotonic()
    run = agent("--dry-run", url=server.url)
    assert time.monotonic() - started < 10
    assert_not_idle(run, "cannot be read (not a regular file)", "keeping the instance up")


def test_a_huge_keep_alive_file_is_read_no_further_than_4_kib(
    server: FakeJupyter, agent: Agent
) -> None:
    path = keep_alive(agent, iso(NOW + timedelta(hours=1)) + "\n")
    with path.open("r+b") as handle:
        handle.seek(0, os.SEEK_END)
        handle.write(b" " * 4000)
        handle.truncate(16 * 2**30)  # 16 GiB (sparse): zero bytes after the first 4 KiB
    started = time.monotonic()
    run = agent("--dry-run", url=server.url)
    assert time.monotonic() - started < 10
    assert_not_idle(run, "holds no time", "keeping the instance up")
    with path.open("r+b") as handle:
        handle.truncate(4096)  # blank padding up to 4 KiB: still one readable time
        handle.seek(len(iso(NOW)) + 1)
        handle.write(b" " * (4096 - len(iso(NOW)) - 1))
    assert_not_idle(agent("--dry-run", url=server.url), "holds the instance until 2030-06-01T13")


# ---------------------------------------------------------------------------- time zones


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/Los_Angeles", "Pacific/Chatham"])
def test_same_result_in_any_time_zone(server: FakeJupyter, agent: Agent, zone: str) -> None:
    server.jupyter(
        started=iso(ago(90000), 0, "+05:30"),
        kernels=[kernel(last_activity=iso(ago(4000), 9, "-07:00"))],
        terminals=[{"name": "t", "last_activity": iso(ago(3900), 3)}],
    )
    keep_alive(agent, iso(NOW - timedelta(seconds=1), 0, "+05:30"))
    utc = agent("--dry-run", url=server.url, env=agent.env(TZ="UTC"))
    agent.state_file.unlink()
    local = agent("--dry-run", url=server.url, env=agent.env(TZ=zone))
    assert_idle(utc, 3900.0)
    assert local.result == utc.result


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/Los_Angeles"])
def test_real_clock_in_any_time_zone(server: FakeJupyter, agent: Agent, zone: str) -> None:
    """Without the NOW seam: a kernel active a minute ago (real clock) is never idle."""
    from datetime import datetime, timezone

    real_now = datetime.now(timezone.utc)
    server.jupyter(
        started=iso(real_now - timedelta(days=1)),
        kernels=[kernel(last_activity=iso(real_now - timedelta(seconds=60), 0))],
    )
    run = agent("--dry-run", url=server.url, time=600, env=agent.env(now=None, TZ=zone))
    assert_not_idle(run)
    assert 55 <= run.result["idle_seconds"] <= 120
    run = agent("--dry-run", url=server.url, time=30, env=agent.env(now=None, TZ=zone))
    assert_idle(run)


# ------------------------------------------------------------------------------ metadata


def test_missing_metadata_file(server: FakeJupyter, agent: Agent) -> None:
    agent.metadata.unlink()
    run = agent(url=server.url)
    assert run.code == 1
    assert run.result["idle"] is True
    assert run.result["action"] == "none"
    assert run.result["instance"] is None
    assert "metadata file" in run.reasons and "is missing" in run.reasons
    assert "metadata file" in run.stderr


@pytest.mark.parametrize(
    "content",
    [
        "{",
        "[]",
        '{"ResourceArn": "arn:aws:sagemaker:us-east-1:1:x/y"}',
        '{"ResourceName": "bad name"}',
    ],
)
def test_invalid_metadata_file(server: FakeJupyter, agent: Agent, content: str) -> None:
    agent.metadata.write_text(content, encoding="utf-8")
    run = agent("--dry-run", url=server.url)
    assert run.code == 1
    assert run.result["action"] == "none"
    assert "metadata file" in run.reasons


def test_stderr_lines_start_with_a_utc_time(agent: Agent) -> None:
    run = agent(url="http://127.0.0.1:9")
    lines = run.stderr.strip().splitlines()
    assert lines
    for line in lines:
        stamp = line.split(" ", 1)[0]
        assert stamp.endswith("Z") and "T" in stamp, line
