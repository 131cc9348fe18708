"""One measured scan in its own process: ``python -m benchmarks.child sagesaver|naive``.

The parent (``benchmarks.scale``) points the boto3 chain at its simulator through the
environment, waits for this process with ``os.wait4`` (for its peak resident memory) and reads
the JSON this process writes to ``--output``: the wall and CPU time of the scan itself
(imports aside), the idle endpoints found, the scan errors and the client's own count of calls.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path


def peak_rss_mb() -> float | None:
    """This process's own peak resident memory (Linux ``VmHWM``), or None where there is none.

    ``ru_maxrss`` from the parent's ``os.wait4`` cannot say it: Linux keeps, across ``exec``, the
    peak of the address space the child was forked from, so every child of the benchmark's
    process (the simulator, 200-400 MB) reported about that process's size, whatever the scan
    itself used."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one scan and write what it found."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child")
    parser.add_argument("tool", choices=("sagesaver", "before", "naive"))
    parser.add_argument("--region", required=True)
    parser.add_argument("--now", required=True, help="ISO 8601, the scan's now")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now)
    if args.tool == "sagesaver":
        from sagesaver.aws.endpoint_configs import ConfigMemory, default_file_store
        from sagesaver.aws.session import Aws
        from sagesaver.core.policy import Policy
        from sagesaver.pipelines.scan import scan

        started, cpu = time.perf_counter(), time.process_time()
        aws = Aws()
        memory = ConfigMemory(default_file_store())
        result = scan(aws, [args.region], Policy(), now, configs=memory)
        memory.save()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        idle = sorted(
            d.resource.name
            for d in result.decisions
            if d.resource.kind.value == "endpoint" and d.idle
        )
        errors = [f"{e.operation} {e.resource or ''}: {e.code} {e.message}" for e in result.errors]
        calls = dict(sorted(aws.calls.items()))
    elif args.tool == "before":  # an earlier revision's scan, put first on PYTHONPATH
        from sagesaver.aws.session import Aws
        from sagesaver.core.policy import Policy
        from sagesaver.pipelines.scan import scan

        started, cpu = time.perf_counter(), time.process_time()
        aws = Aws()
        result = scan(aws, [args.region], Policy(), now)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        idle = sorted(
            d.resource.name
            for d in result.decisions
            if d.resource.kind.value == "endpoint" and d.idle
        )
        errors = [f"{e.operation} {e.resource or ''}: {e.code} {e.message}" for e in result.errors]
        calls = dict(sorted(aws.calls.items()))
    else:
        from benchmarks import naive

        started, cpu = time.perf_counter(), time.process_time()
        idle = sorted(naive.idle_endpoints(args.region, now))
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        errors, calls = [], {}
    args.output.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "idle": idle,
                "errors": errors,
                "client_calls": calls,
                "peak_rss_mb": peak_rss_mb(),
            }
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
