"""Benchmark: ``run --accounts`` over many member accounts (the CLI's organisation run).

Run from the repository root: ``python -m benchmarks.fanout [--accounts N] [--before REV]``.
Seeds one idle endpoint in each of ``--accounts`` member accounts and 2 regions of the embedded
simulator, then runs ``sagesaver run --accounts FILE --role-name ... --offline-prices`` (a dry
run: every stage but the acts) in its own process, with ``--latency-ms`` added to every
request; with ``--before``, the same command of an earlier revision. Prints the wall time, the
child's CPU time and peak memory, the API calls, and the items planned.

What it watches: each member account's clients. A boto3 session per assumed role loads every
service model again (tens of MB and a tenth of a second of CPU per client); the member's
clients made from the caller's session share them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.fast_moto.simulator import FastSimulator
from benchmarks.scale import ROOT, _checkout
from sagesaver.demo.simulator import Fleet

REGIONS = ("us-east-1", "eu-west-1")
# The command, which tells its own CPU time and peak memory on the way out.
RUN = (
    "import atexit, resource, sys\n"
    "def told():\n"
    "    used = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    print('USAGE', used.ru_utime + used.ru_stime, used.ru_maxrss, file=sys.stderr)\n"
    "atexit.register(told)\n"
    "from sagesaver.cli import app\n"
    "app()\n"
)


def measure(
    sim: FastSimulator, label: str, source: Path | None, accounts: int, latency_ms: float
) -> dict[str, object]:
    """Seed, then time one ``run --accounts`` in a child process."""
    sim.reset()
    members = [f"{200000000000 + i}" for i in range(accounts)]
    for account in members:
        fleet = Fleet(sim, account)
        for region in REGIONS:
            fleet.endpoint(region, f"idle-{account[-4:]}", changed=_days_ago(5))
    with tempfile.TemporaryDirectory() as scratch:
        listed = Path(scratch) / "accounts.txt"
        listed.write_text("\n".join(members) + "\n", encoding="utf-8")
        env = {**os.environ, **sim.env(REGIONS[0]), "SAGESAVER_CACHE_DIR": scratch}
        env.pop("AWS_PROFILE", None)
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(source), str(ROOT)])
        command = [sys.executable, "-c", RUN, "run", "--accounts", str(listed)]
        command += ["--role-name", "SageSaverExecution", "--offline-prices", "--output", "json"]
        for region in REGIONS:
            command += ["--region", region]
        sim.middleware.counts.clear()
        sim.middleware.latency_s = latency_ms / 1000
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=False)
        seconds = time.perf_counter() - started
        sim.middleware.latency_s = 0.0
    usage = [line.split() for line in done.stderr.decode().splitlines() if line.startswith("USAGE")]
    cpu, peak_kb = (float(usage[-1][1]), int(usage[-1][2])) if usage else (0.0, 0)
    calls = dict(sorted(sim.middleware.counts.items()))
    found = len(json.loads(done.stdout or "{}").get("resources", []))
    result = {
        "label": label,
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu, 2),
        "peak_mb": peak_kb // 1024,  # ru_maxrss: KiB on Linux
        "exit": done.returncode,
        "calls": calls,
        "found": found,
    }
    print(json.dumps(result), file=sys.stderr)
    return result


def _days_ago(days: float) -> object:
    from datetime import datetime, timedelta, timezone

    return datetime.now(timezone.utc) - timedelta(days=days)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure ``--before`` (if given) and this revision; print a Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout")
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--before", metavar="REV")
    args = parser.parse_args(argv)
    sim = FastSimulator()
    runs = []
    try:
        if args.before:
            source = _checkout(args.before)
            runs.append(measure(sim, args.before, source, args.accounts, args.latency_ms))
        runs.append(measure(sim, "this revision", None, args.accounts, args.latency_ms))
    finally:
        sim.stop()
    print(
        f"| `run --accounts`, {args.accounts} accounts x {len(REGIONS)} regions, "
        f"{args.latency_ms:g} ms | wall s | CPU s | peak MB | calls | found |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    for run in runs:
        calls = run["calls"]
        assert isinstance(calls, dict)
        print(
            f"| {run['label']} | {run['seconds']} | {run['cpu_s']} | {run['peak_mb']} | "
            f"{sum(calls.values())} | {run['found']} |"
        )
    expected = args.accounts * len(REGIONS)  # one idle endpoint per account and region
    return 0 if all(run["exit"] == 0 and run["found"] == expected for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
