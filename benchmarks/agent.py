"""Benchmark: the cost of one auto-stop agent run on a notebook instance (it runs every 5 min).

Run from the repository root: ``python -m benchmarks.agent`` (``make bench``). A small
Jupyter-like server on 127.0.0.1 answers ``/api/status``, ``/api/kernels`` (one idle kernel),
``/api/sessions`` and ``/api/terminals`` (one terminal), all recently active, so the agent never
stops anything. The benchmark times N agent runs (``python autostop.py``, as cron starts it, with
the CPU check on and a previous CPU sample in its state file) against N starts of a bare
interpreter (``python -S -I -c pass``), interleaved, as subprocesses of the same interpreter.
It reports the median wall times and their ratio, and the agent's peak memory (the maximum RSS of
the child, from ``os.wait4`` in a small launcher process); it checks the targets (ratio at most
8, peak at most 25 MB), writes
``benchmarks/results/agent.json`` and exits non-zero when a target fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "src" / "sagesaver" / "agent" / "autostop.py"
RESULTS = Path(__file__).resolve().parent / "results" / "agent.json"
RATIO_TARGET = 8.0
PEAK_MB_TARGET = 25.0


def log(message: str) -> None:
    """Progress on stderr (stdout carries the table)."""
    print(message, file=sys.stderr, flush=True)


def jupyter_time(moment: datetime) -> str:
    """A time the way Jupyter writes it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def answers() -> dict[str, bytes]:
    """The fake Jupyter server's answers, with activity a minute ago."""
    now = datetime.now(timezone.utc)
    recent = jupyter_time(now - timedelta(seconds=60))
    kernel = {
        "id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "name": "python3",
        "last_activity": recent,
        "execution_state": "idle",
        "connections": 0,
    }
    documents: dict[str, Any] = {
        "/api/status": {
            "started": jupyter_time(now - timedelta(hours=1)),
            "last_activity": recent,
            "kernels": 1,
            "connections": 0,
        },
        "/api/kernels": [kernel],
        "/api/sessions": [
            {"id": "s-1", "path": "train.ipynb", "type": "notebook", "kernel": kernel}
        ],
        "/api/terminals": [{"name": "1", "last_activity": recent}],
    }
    return {path: json.dumps(document).encode() for path, document in documents.items()}


@contextmanager
def fake_jupyter() -> Iterator[str]:
    """Serve :func:`answers` on a free loopback port; yield the base URL."""
    replies = answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = replies.get(self.path.partition("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Sample:
    """One child process: wall time, peak memory, exit code and output."""

    seconds: float
    peak_mb: float
    code: int
    stdout: str


# A small launcher forks the measured command, waits for it with os.wait4 and writes its wall
# time and peak RSS to the file named first. Measured from this (larger) process directly, a
# child's peak RSS would include this process's own: Linux keeps the pre-exec high-water mark.
LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    json.dump({"seconds": seconds, "maxrss": usage.ru_maxrss, "status": status}, out)
"""


def measure(command: Sequence[str], env: dict[str, str], scratch: Path) -> Sample:
    """Run ``command`` under the launcher; its wall time and peak RSS (``os.wait4``)."""
    report = scratch / "measure.json"
    launcher = [sys.executable, "-S", "-I", "-c", LAUNCHER, str(report), *command]
    process = subprocess.run(launcher, capture_output=True, env=env, check=True)
    measured = json.loads(report.read_text(encoding="utf-8"))
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    peak = measured["maxrss"] / (1024 * 1024 if sys.platform == "darwin" else 1024)
    code = os.waitstatus_to_exitcode(measured["status"])
    return Sample(measured["seconds"], peak, code, process.stdout.decode())


@dataclass
class Summary:
    """Statistics of one kind of run."""

    runs: int
    median_ms: float
    p90_ms: float
    min_ms: float
    peak_mb: float


def summarise(samples: Sequence[Sample]) -> Summary:
    """Median, 90th percentile and minimum wall time; the highest peak memory."""
    times = sorted(sample.seconds * 1000 for sample in samples)
    p90 = times[min(len(times) - 1, round(0.9 * (len(times) - 1)))]
    return Summary(
        runs=len(samples),
        median_ms=round(statistics.median(times), 2),
        p90_ms=round(p90, 2),
        min_ms=round(times[0], 2),
        peak_mb=round(max(sample.peak_mb for sample in samples), 2),
    )


def check_agent_answer(sample: Sample) -> None:
    """The agent decided (exit 0) that the instance is not idle, and did nothing."""
    if sample.code != 0:
        raise SystemExit(f"agent run failed (exit {sample.code}): {sample.stdout}")
    result = json.loads(sample.stdout)
    if result["idle"] or result["action"] != "none":
        raise SystemExit(f"agent run was not a 'not idle' run: {sample.stdout}")


def run(runs: int) -> dict[str, Any]:
    """Time ``runs`` agent runs and ``runs`` bare interpreter starts, interleaved."""
    with tempfile.TemporaryDirectory(prefix="sagesaver-bench-") as scratch, fake_jupyter() as url:
        work = Path(scratch)
        metadata = work / "resource-metadata.json"
        metadata.write_text(
            json.dumps(
                {
                    "ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:notebook-instance/nb",
                    "ResourceName": "nb",
                }
            ),
            encoding="utf-8",
        )
        (work / "home").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAGESAVER_AGENT_")}
        env["SAGESAVER_AGENT_HOME"] = str(work / "home")
        agent = [
            sys.executable,
            str(AGENT),
            "--time",
            "3600",
            "--url",
            url,
            "--state-file",
            str(work / "state" / "autostop-state.json"),
            "--metadata-file",
            str(metadata),
        ]
        bare = [sys.executable, "-S", "-I", "-c", "pass"]
        log("warm-up (the agent's first run takes its 1-second CPU sample)")
        check_agent_answer(measure(agent, env, work))
        measure(bare, env, work)
        agent_samples, bare_samples = [], []
        for index in range(runs):
            bare_samples.append(measure(bare, env, work))
            sample = measure(agent, env, work)
            check_agent_answer(sample)
            agent_samples.append(sample)
            log(f"run {index + 1}/{runs}: agent {sample.seconds * 1000:.1f} ms")
    agent_summary, bare_summary = summarise(agent_samples), summarise(bare_samples)
    ratio = agent_summary.median_ms / bare_summary.median_ms
    return {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "runs": runs,
        "bare": asdict(bare_summary),
        "agent": asdict(agent_summary),
        "ratio": round(ratio, 2),
        "targets": {"ratio_max": RATIO_TARGET, "peak_mb_max": PEAK_MB_TARGET},
        "passed": {
            "ratio": ratio <= RATIO_TARGET,
            "peak_mb": agent_summary.peak_mb <= PEAK_MB_TARGET,
        },
    }


def table(report: dict[str, Any]) -> str:
    """The report as a readable table."""
    rows = [
        f"SageSaver auto-stop agent: {report['runs']} runs each, Python {report['python']}",
        f"{'':34}{'median ms':>10}{'p90 ms':>10}{'min ms':>10}{'peak MB':>10}",
    ]
    for label, key in (
        ("bare interpreter (-S -I -c pass)", "bare"),
        ("agent run (not idle)", "agent"),
    ):
        item = report[key]
        rows.append(
            f"{label:34}{item['median_ms']:>10.1f}{item['p90_ms']:>10.1f}"
            f"{item['min_ms']:>10.1f}{item['peak_mb']:>10.1f}"
        )
    verdict = {True: "ok", False: "FAILED"}
    rows.append(
        f"ratio agent/bare (medians): {report['ratio']:.1f}x, target <= {RATIO_TARGET:g}x: "
        f"{verdict[report['passed']['ratio']]}"
    )
    rows.append(
        f"agent peak memory: {report['agent']['peak_mb']:.1f} MB, target <= "
        f"{PEAK_MB_TARGET:g} MB: {verdict[report['passed']['peak_mb']]}"
    )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the results; 1 if a target fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="runs of each kind (20)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results JSON file")
    options = parser.parse_args(argv)
    report = run(max(1, options.runs))
    print(table(report))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = options.output.with_name(options.output.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    temporary.replace(options.output)
    log(f"results written to {options.output}")
    return 0 if all(report["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
