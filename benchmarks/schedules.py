"""Benchmark: ``schedule run --apply`` starting 1,000 stopped notebook instances at once.

Run from the repository root: ``python -m benchmarks.schedules [--before REV]``. Seeds
``--size`` stopped ``dev-`` instances in the embedded simulator, adds ``--latency-ms`` to every
request, and times ``sagesaver schedule run --apply`` at a Monday 07:05 UTC start boundary in
its own process (and, with ``--before``, the same command of an earlier revision). Prints the
wall time, the API calls and how many instances were started.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.endpoints import REGION, log
from benchmarks.fast_moto.simulator import FastSimulator
from benchmarks.scale import ROOT, _checkout
from sagesaver.demo.simulator import Fleet

POLICY = """
schedules:
  office-hours:
    start: cron(0 7 ? * MON-FRI *)
    stop: cron(0 21 ? * MON-FRI *)
    name_contains: dev-
"""
AT = "2026-11-30T07:05:00Z"
RUN = "from sagesaver.cli import app; app()"


def measure(
    sim: FastSimulator, label: str, source: Path | None, size: int, latency_ms: float
) -> dict[str, object]:
    """Seed, then time one ``schedule run --apply`` in a child process."""
    sim.reset()
    fleet = Fleet(sim)
    for i in range(size):
        fleet.notebook(REGION, f"dev-{i:04d}", status="Stopped")
    with tempfile.TemporaryDirectory() as scratch:
        policy = Path(scratch) / "policy.yaml"
        policy.write_text(POLICY, encoding="utf-8")
        env = {**os.environ, **sim.env(REGION)}
        env.pop("AWS_PROFILE", None)
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(source), str(ROOT)])
        command = [sys.executable, "-c", RUN, "schedule", "run", "--policy", str(policy)]
        command += ["--region", REGION, "--at", AT, "--apply", "--output", "json"]
        command += ["--ledger", str(Path(scratch) / "ledger.sqlite")]
        sim.middleware.counts.clear()
        sim.middleware.latency_s = latency_ms / 1000
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=False)
        seconds = time.perf_counter() - started
        sim.middleware.latency_s = 0.0
    calls = dict(sorted(sim.middleware.counts.items()))
    log(f"{label}: {seconds:.2f} s, exit {done.returncode}, {calls}")
    return {"label": label, "seconds": seconds, "exit": done.returncode, "calls": calls}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure this revision (and ``--before``); print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.schedules")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--before", metavar="REV")
    args = parser.parse_args(argv)
    sim = FastSimulator()
    try:
        runs = [measure(sim, "this revision", None, args.size, args.latency_ms)]
        if args.before:
            source = _checkout(args.before)
            runs.append(measure(sim, args.before, source, args.size, args.latency_ms))
    finally:
        sim.stop()
    print(f"| `schedule run --apply`, {args.size:,} starts, {args.latency_ms:g} ms | s | calls |")
    print("|---|--:|--:|")
    for run in runs:
        calls = run["calls"]
        assert isinstance(calls, dict)
        print(f"| {run['label']} | {run['seconds']:.2f} | {sum(calls.values())} |")
    return 0 if all(run["exit"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
