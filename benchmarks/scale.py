"""Benchmark at fleet scale: SageSaver's first and repeat scans against the per-endpoint scan.

Run from the repository root: ``python -m benchmarks.scale`` (``make bench``). Each scan runs
in its own process (``benchmarks.child``) against the embedded simulator of this process, with
CloudWatch answered from an index (``benchmarks.fast_moto``). For each fleet size and
added latency it measures SageSaver's first scan (nothing remembered) and its repeat scan
(endpoint configurations remembered on disk), and the naive per-endpoint scan: wall time, API
calls by operation as the simulator saw them, the calls against SageSaver's lower bound, peak
resident memory, false positives and negatives. It also measures the first scan with 8, 16
and 32 threads on the largest fleet at the largest latency. Results go to stdout (Markdown)
and ``benchmarks/results/scale.json``; the exit code is 1 when a target fails.
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.endpoints import REGION, Seeded, log, machine, pattern_of, seed, write_json
from benchmarks.fast_moto.simulator import FastSimulator
from sagesaver.pipelines.scan import DEFAULT_WORKERS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
REPEAT_CALLS_PER_ENDPOINT = 1 / 25
REPEAT_TARGET_MIN_SIZE = 500
FIRST_SCAN_TARGET_S = 30.0
REPEAT_SCAN_TARGET_S = 10.0
TARGET_SIZE, TARGET_LATENCY_MS = 20000, 25.0


@dataclass
class Measured:
    """One scan, run in its own process."""

    tool: str
    label: str
    seconds: float  # the scan itself, as the child timed it (imports aside)
    process_seconds: float  # the child process from start to exit
    peak_rss_mb: float
    calls: dict[str, int]
    found: int
    false_positives: int
    false_negatives: int
    errors: list[str] = field(default_factory=list)
    workers: int | None = None
    lower_bound: int | None = None
    # CPU time of the scan itself (the child's process_time around it), and of the whole
    # child process (user + system, from os.wait4's rusage: imports included).
    cpu_seconds: float = 0.0
    process_cpu_seconds: float = 0.0
    # The simulator's process (this one) meanwhile: its CPU time (user + system, every
    # thread: HTTP server, moto, the harness waiting), and per operation what serving the
    # scan's requests cost it (Served: service, latency added on purpose, whole request).
    simulator_cpu_seconds: float = 0.0
    served: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def total_calls(self) -> int:
        """Every API call the simulator served during the scan."""
        return sum(self.calls.values())

    def served_total(self, what: str) -> float:
        """One figure of :class:`Served` summed over every operation."""
        return sum(figures[what] for figures in self.served.values())

    @property
    def exact(self) -> bool:
        """No false positive, no false negative, no scan error."""
        return not (self.false_positives or self.false_negatives or self.errors)


def run_child(
    sim: FastSimulator,
    tool: str,
    label: str,
    seeded: Seeded,
    cache_dir: Path,
    workers: int = DEFAULT_WORKERS,
    source: Path | None = None,
) -> Measured:
    """Run ``benchmarks.child`` for ``tool`` and measure it (``source``: the ``src`` of an
    earlier revision, put first on ``PYTHONPATH``)."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "out.json"
        env = {**os.environ, **sim.env(REGION)}
        env.pop("AWS_PROFILE", None)
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(source), str(ROOT)])
        env["SAGESAVER_CACHE_DIR"] = str(cache_dir)
        env["SAGESAVER_WORKERS"] = str(workers)
        command = [sys.executable, "-m", "benchmarks.child", tool, "--region", REGION]
        command += ["--now", seeded.now.isoformat(), "--output", str(output)]
        sim.middleware.clear()
        ours = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        process_seconds = time.perf_counter() - started
        sim.middleware.settle()  # the last answers' request threads have finished
        after = resource.getrusage(resource.RUSAGE_SELF)
        calls = dict(sorted(sim.middleware.counts.items()))
        served = {op: asdict(f) for op, f in sorted(sim.middleware.served.items())}
        if child.returncode != 0:
            raise SystemExit(f"{tool} child failed with exit code {child.returncode}")
        data = json.loads(output.read_text(encoding="utf-8"))
    found = set(data["idle"])
    return Measured(
        tool=tool,
        label=label,
        seconds=float(data["seconds"]),
        process_seconds=process_seconds,
        # the child's own peak; ru_maxrss (KiB on Linux) carries this process's size over
        peak_rss_mb=float(data.get("peak_rss_mb") or usage.ru_maxrss / 1024),
        calls=calls,
        found=len(found),
        false_positives=len(found - seeded.idle),
        false_negatives=len(seeded.idle - found),
        errors=list(data["errors"]),
        workers=workers if tool == "sagesaver" else None,
        cpu_seconds=float(data.get("cpu_seconds", 0.0)),
        process_cpu_seconds=usage.ru_utime + usage.ru_stime,
        simulator_cpu_seconds=(after.ru_utime + after.ru_stime) - (ours.ru_utime + ours.ru_stime),
        served=served,
    )


def _brief(run: Measured) -> str:
    return (
        f"{run.seconds:.2f} s, {run.total_calls} calls; scan CPU {run.cpu_seconds:.2f} s; "
        f"simulator CPU {run.simulator_cpu_seconds:.2f} s "
        f"(service {run.served_total('service_s'):.2f} s wall, "
        f"{run.served_total('service_cpu_s'):.2f} s CPU)"
    )


# What a scan reads once per region whatever its fleet (issues 13, 14, 17): inference
# components, warm pools and long training runs, processing jobs, HyperPod clusters, and the
# one ListMetrics page of the busy endpoints' utilisation (right-sizing).
REGION_READS = {
    "ListInferenceComponents": 1,
    "ListTrainingJobs": 2,
    "ListProcessingJobs": 1,
    "ListClusters": 1,
    "ListMetrics": 1,
}


def idle_variants(seeded: Seeded) -> int:
    """The variants of the seeded idle endpoints."""
    return sum(len(pattern_of(i).variants) for i in range(seeded.size) if pattern_of(i).idle)


def lower_bound(seeded: Seeded, repeat: bool) -> int:
    """The fewest calls a scan of this fleet can make with the APIs SageSaver uses: every
    ``Search`` page (100 endpoints), every ``ListMetrics`` page and ``GetMetricData`` call
    (500 metrics each; one datapoint per metric here), ``ListNotebookInstances``, the reads
    of :data:`REGION_READS`; then, on a first scan, the daily sums of the idle endpoints'
    variants (how long they have been idle: one ``GetMetricData`` call per 500) and one
    ``DescribeEndpointConfig`` per idle endpoint (each has its own configuration), or, on a
    repeat, one ``ListEndpointConfigs`` page (configurations and daily sums remembered)."""
    metric_pages = max(1, math.ceil(seeded.datapoints / 500))
    base = math.ceil(seeded.size / 100) + 2 * metric_pages + 1
    base += sum(REGION_READS.values())
    if repeat:
        return base + 1
    return base + math.ceil(idle_variants(seeded) / 500) + len(seeded.idle)


def todays_calls(seeded: Seeded) -> int:
    """What the scan before bulk reads made on this fleet: ListEndpoints and GetResources
    pages, ListMetrics, GetMetricData, DescribeEndpoint + DescribeEndpointConfig per idle
    endpoint, ListNotebookInstances (``benchmarks/README.md``, first results)."""
    metric_pages = max(1, math.ceil(seeded.datapoints / 500))
    pages = math.ceil(seeded.size / 100)
    return 2 * pages + 1 + 2 * metric_pages + 2 * len(seeded.idle) + 1


def naive_floor_seconds(seeded: Seeded, latency_ms: float) -> float:
    """The least time the naive scan can take at ``latency_ms``: its calls, one at a time."""
    calls = math.ceil(seeded.size / 100) + seeded.size + seeded.variants
    return calls * latency_ms / 1000


@dataclass
class Case:
    """One fleet size at one added latency."""

    size: int
    latency_ms: float
    seeded: Seeded
    first: Measured
    repeat: Measured
    naive: Measured | None
    naive_floor_s: float
    sweep: list[Measured] = field(default_factory=list)
    before: Measured | None = None
    targets: list[tuple[str, bool, str]] = field(default_factory=list)


def check(case: Case) -> list[tuple[str, bool, str]]:
    """The targets of one case."""
    targets = []
    for run in [case.first, case.repeat, *case.sweep, *([case.before] if case.before else [])]:
        targets.append(
            (
                f"{run.label}: exact",
                run.exact,
                f"{run.false_positives} FP, {run.false_negatives} FN, {len(run.errors)} errors",
            )
        )
    today = todays_calls(case.seeded)
    targets.append(
        (
            "first scan within today's call budget",
            case.first.total_calls <= today,
            f"{case.first.total_calls} calls vs {today} before bulk reads",
        )
    )
    allowed = case.size * REPEAT_CALLS_PER_ENDPOINT
    # Below REPEAT_TARGET_MIN_SIZE the fixed calls (Search, ListMetrics, GetMetricData,
    # ListEndpointConfigs, ListNotebookInstances: 5) are more than one per 25 endpoints.
    if case.size >= REPEAT_TARGET_MIN_SIZE:
        targets.append(
            (
                "repeat scan: at most one call per 25 endpoints",
                case.repeat.total_calls <= allowed,
                f"{case.repeat.total_calls} calls vs {allowed:.0f} allowed",
            )
        )
    if case.size >= TARGET_SIZE and case.latency_ms >= TARGET_LATENCY_MS:
        targets.append(
            (
                f"first scan under {FIRST_SCAN_TARGET_S:g} s",
                case.first.seconds < FIRST_SCAN_TARGET_S,
                f"{case.first.seconds:.2f} s",
            )
        )
        targets.append(
            (
                f"repeat scan under {REPEAT_SCAN_TARGET_S:g} s",
                case.repeat.seconds < REPEAT_SCAN_TARGET_S,
                f"{case.repeat.seconds:.2f} s",
            )
        )
    if case.naive is not None:
        targets.append(
            (
                "naive scan exact (ground truth check)",
                case.naive.exact,
                f"{case.naive.false_positives} FP, {case.naive.false_negatives} FN",
            )
        )
    return targets


def run_case(
    sim: FastSimulator,
    seeded: Seeded,
    latency_ms: float,
    naive_max_s: float,
    sweep: Sequence[int],
    before: Path | None = None,
) -> Case:
    """First and repeat SageSaver scans, the naive scan (when its floor is under
    ``naive_max_s``) and the thread sweep, at ``latency_ms``."""
    name = f"{seeded.size:,} endpoints, {latency_ms:g} ms"
    sim.middleware.latency_s = latency_ms / 1000
    try:
        with tempfile.TemporaryDirectory() as cache:
            log(f"{name}: SageSaver first scan...")
            first = run_child(sim, "sagesaver", "first scan", seeded, Path(cache))
            log(f"{name}: first {_brief(first)}; repeat scan...")
            repeat = run_child(sim, "sagesaver", "repeat scan", seeded, Path(cache))
            log(f"{name}: repeat {_brief(repeat)}")
        first.lower_bound = lower_bound(seeded, repeat=False)
        repeat.lower_bound = lower_bound(seeded, repeat=True)
        swept = []
        for workers in sweep:
            if workers == DEFAULT_WORKERS:
                continue
            with tempfile.TemporaryDirectory() as cache:
                log(f"{name}: first scan with {workers} threads...")
                run = run_child(
                    sim, "sagesaver", f"first scan, {workers} threads", seeded, Path(cache), workers
                )
                run.lower_bound = first.lower_bound
                swept.append(run)
                log(f"{name}: {workers} threads {run.seconds:.2f} s")
        earlier = None
        if before is not None:
            with tempfile.TemporaryDirectory() as cache:
                log(f"{name}: the earlier revision's scan...")
                earlier = run_child(
                    sim, "before", "before", seeded, Path(cache), DEFAULT_WORKERS, before
                )
                log(f"{name}: before {earlier.seconds:.2f} s")
        floor = naive_floor_seconds(seeded, latency_ms)
        naive = None
        if floor <= naive_max_s:
            log(f"{name}: naive scan...")
            with tempfile.TemporaryDirectory() as cache:
                naive = run_child(sim, "naive", "naive", seeded, Path(cache))
            log(f"{name}: naive {naive.seconds:.2f} s")
        else:
            log(f"{name}: naive scan skipped (at least {floor:.0f} s)")
    finally:
        sim.middleware.latency_s = 0.0
    case = Case(seeded.size, latency_ms, seeded, first, repeat, naive, floor, swept, earlier)
    case.targets = check(case)
    return case


def render(case: Case) -> str:
    """One case as a Markdown table."""
    runs = [case.first, case.repeat, *case.sweep]
    runs += [r for r in (case.before, case.naive) if r is not None]
    operations = sorted({op for run in runs for op in run.calls})
    header = ["", *(r.label for r in runs)]
    rows = [
        ["scan time (s)", *(f"{r.seconds:.2f}" for r in runs)],
        ["process time (s)", *(f"{r.process_seconds:.2f}" for r in runs)],
        ["scan CPU (s)", *(f"{r.cpu_seconds:.2f}" for r in runs)],
        ["process CPU (s)", *(f"{r.process_cpu_seconds:.2f}" for r in runs)],
        ["simulator CPU (s)", *(f"{r.simulator_cpu_seconds:.2f}" for r in runs)],
        ["simulator service (s)", *(f"{r.served_total('service_s'):.2f}" for r in runs)],
        ["  of it CPU (s)", *(f"{r.served_total('service_cpu_s'):.2f}" for r in runs)],
        ["simulator requests (s)", *(f"{r.served_total('request_s'):.2f}" for r in runs)],
        ["added latency (s)", *(f"{r.served_total('latency_s'):.2f}" for r in runs)],
        ["peak RSS (MB)", *(f"{r.peak_rss_mb:.0f}" for r in runs)],
        ["API calls", *(str(r.total_calls) for r in runs)],
        ["lower bound", *(str(r.lower_bound) if r.lower_bound else "-" for r in runs)],
        *([f"  {op}", *(str(r.calls.get(op, 0)) for r in runs)] for op in operations),
        ["idle found", *(str(r.found) for r in runs)],
        ["false positives", *(str(r.false_positives) for r in runs)],
        ["false negatives", *(str(r.false_negatives) for r in runs)],
        ["scan errors", *(str(len(r.errors)) for r in runs)],
    ]
    lines = [
        f"### {case.size:,} endpoints, {case.latency_ms:g} ms added latency",
        "",
        f"{len(case.seeded.idle):,} idle, {case.seeded.variants:,} variants, "
        f"{case.seeded.datapoints:,} datapoints; seeded in {case.seeded.seconds:.0f} s.",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    if case.naive is None:
        lines += [
            f"Naive scan not run: its {case.seeded.size + case.seeded.variants:,} calls one at a "
            f"time take at least {case.naive_floor_s:.0f} s at this latency.",
            "",
        ]
    else:
        lines += [
            f"Speed-up over the naive scan: first {case.naive.seconds / case.first.seconds:.1f}x, "
            f"repeat {case.naive.seconds / case.repeat.seconds:.1f}x.",
            "",
        ]
    if case.before is not None:
        lines += [
            f"Against the earlier revision: first scan "
            f"{case.before.seconds / case.first.seconds:.1f}x faster with "
            f"{case.before.total_calls - case.first.total_calls} fewer calls; repeat scan "
            f"{case.before.seconds / case.repeat.seconds:.1f}x faster with "
            f"{case.before.total_calls - case.repeat.total_calls} fewer calls.",
            "",
        ]
    lines += [
        "Simulator time per operation, SageSaver's scans (requests; service wall / CPU, "
        "whole request wall, in seconds; latency aside):",
        "",
    ]
    for run in (case.first, case.repeat):
        parts = [
            f"{op} {f['requests']:.0f}: {f['service_s']:.2f} / {f['service_cpu_s']:.2f}, "
            f"{f['request_s'] - f['latency_s']:.2f}"
            for op, f in run.served.items()
        ]
        lines.append(f"- {run.label}: " + "; ".join(parts))
    lines.append("")
    lines += [f"- {'PASS' if ok else 'FAIL'} {name}: {detail}" for name, ok, detail in case.targets]
    return "\n".join(lines) + "\n"


def _checkout(revision: str) -> Path:
    """The ``src`` tree of ``revision``, extracted once into a temporary directory."""
    target = Path(tempfile.mkdtemp(prefix="sagesaver-before-"))
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def _numbers(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list: {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"values must be >= 0: {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case, print the tables, write the JSON; 0 when every target passes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--sizes", type=_numbers, default=[1000.0, 5000.0, 20000.0])
    parser.add_argument("--latencies-ms", type=_numbers, default=[0.0, 25.0])
    parser.add_argument(
        "--workers",
        type=_numbers,
        default=[8.0, 16.0, 32.0],
        help="thread counts measured on the largest fleet at the largest latency",
    )
    parser.add_argument(
        "--naive-max-s",
        type=float,
        default=120.0,
        help="skip the naive scan where its calls one at a time take longer (default 120)",
    )
    parser.add_argument(
        "--no-naive",
        action="store_true",
        help="never run the naive scan (with --workers 32: SageSaver's first and repeat only)",
    )
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also measure the scan of this git revision (e.g. main), from `git archive`",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    source = _checkout(args.before) if args.before else None
    sizes = [int(s) for s in args.sizes]
    started = time.perf_counter()
    cases: list[Case] = []
    sim = FastSimulator()
    try:
        for size in sizes:
            log(f"seeding {size:,} endpoints...")
            seeded = seed(sim, size, datetime.now(timezone.utc))
            log(f"seeded in {seeded.seconds:.0f} s")
            for latency in args.latencies_ms:
                sweep = (
                    [int(w) for w in args.workers]
                    if size == max(sizes) and latency == max(args.latencies_ms)
                    else []
                )
                naive_max_s = -1.0 if args.no_naive else args.naive_max_s
                cases.append(run_case(sim, seeded, latency, naive_max_s, sweep, source))
    finally:
        sim.stop()
    elapsed = time.perf_counter() - started
    passed = all(ok for case in cases for _, ok, _ in case.targets)
    print("## SageSaver at scale: first and repeat scans, and the naive scan\n")
    for case in cases:
        print(render(case))
    print(f"Whole run: {elapsed:.0f} s. Targets: {'ALL PASS' if passed else 'SOME FAIL'}.")

    def summary(run: Measured | None) -> dict[str, Any] | None:
        return None if run is None else {**asdict(run), "total_calls": run.total_calls}

    write_json(
        args.output,
        {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python -m benchmarks.scale", *sys.argv[1:]]),
            "machine": machine(),
            "load_average_1m_at_end": os.getloadavg()[0],
            "cases": [
                {
                    "endpoints": c.size,
                    "latency_ms": c.latency_ms,
                    "idle": len(c.seeded.idle),
                    "seed_seconds": round(c.seeded.seconds, 1),
                    "first": summary(c.first),
                    "repeat": summary(c.repeat),
                    "sweep": [summary(r) for r in c.sweep],
                    "naive": summary(c.naive),
                    "before": summary(c.before),
                    "before_revision": args.before,
                    "naive_floor_seconds": round(c.naive_floor_s, 1),
                    "targets": [{"name": n, "passed": ok, "detail": d} for n, ok, d in c.targets],
                }
                for c in cases
            ],
            "passed": passed,
            "total_seconds": round(elapsed, 1),
        },
    )
    log(f"results written to {args.output}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
