"""Benchmark: SageSaver's batched idle-endpoint scan against a naive per-endpoint scan.

Run from the repository root: ``python -m benchmarks.endpoints`` (``make bench``). Both
algorithms read the same fleet from the same embedded simulator (moto's server on 127.0.0.1).
For each case it reports the wall time, the API calls by operation as the server saw them, the
false positives and negatives against the seeded ground truth, the speed-up and SageSaver's
call budget, checks the targets, writes ``benchmarks/results/latest.json`` and exits non-zero
when a target fails. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import naive
from benchmarks.fast_moto.simulator import FastSimulator
from sagesaver.aws.session import Aws
from sagesaver.core.policy import Policy
from sagesaver.demo.simulator import Fleet, VariantSpec
from sagesaver.pipelines.scan import scan

REGION = "us-east-1"
AGE = timedelta(days=10)
TEAMS = ("risk", "growth", "search", "research", "support")
PUT_BATCH = 1000  # datapoints per PutMetricData call while seeding
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"

NOTEBOOK_OPERATIONS = frozenset({"ListNotebookInstances"})
BUDGET_FACTOR = 1.2
LATENCY_SPEEDUP = 5.0
NO_LATENCY_SPEEDUP = 2.0
NO_LATENCY_SPEEDUP_MIN_SIZE = 5000

HOUR = timedelta(hours=1)


def log(message: str) -> None:
    """Progress on stderr (stdout carries the results)."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------- the fleet


Point = tuple[str, timedelta, float]  # (variant, how long ago, Invocations)
ONE = ("AllTraffic",)
TWO = ("model-a", "model-b")


@dataclass(frozen=True)
class Pattern:
    """A kind of endpoint in the fleet: its variants, its datapoints, and the truth."""

    description: str
    variants: tuple[str, ...]
    idle: bool
    points: tuple[Point, ...] = ()


def _same(pattern: Pattern) -> tuple[Pattern, Pattern]:
    return pattern, pattern


# Endpoint i follows SLOTS[i % 8][(i // 8) % 2]: a quarter have two variants, half are idle.
SLOTS: tuple[tuple[Pattern, Pattern], ...] = (
    (
        Pattern(
            "2 variants, traffic on the 2nd only (0 on the 1st)",
            TWO,
            False,
            (
                ("model-a", 2 * HOUR, 0.0),
                ("model-b", 1 * HOUR, 5.0),
            ),
        ),
        Pattern(
            "2 variants, traffic on both",
            TWO,
            False,
            (
                ("model-a", 2 * HOUR, 12.0),
                ("model-b", 3 * HOUR, 7.0),
            ),
        ),
    ),
    (
        Pattern(
            "2 variants, zeros on both",
            TWO,
            True,
            (
                ("model-a", 2 * HOUR, 0.0),
                ("model-b", 4 * HOUR, 0.0),
            ),
        ),
        Pattern(
            "2 variants, zeros on the 1st, no metrics on the 2nd",
            TWO,
            True,
            (("model-a", 2 * HOUR, 0.0),),
        ),
    ),
    _same(Pattern("traffic 1 h ago", ONE, False, (("AllTraffic", 1 * HOUR, 40.0),))),
    _same(Pattern("published zeros", ONE, True, (("AllTraffic", 3 * HOUR, 0.0),))),
    _same(Pattern("one invocation 23 h ago", ONE, False, (("AllTraffic", 23 * HOUR, 1.0),))),
    _same(Pattern("no metrics at all", ONE, True)),
    _same(Pattern("traffic 12 h ago", ONE, False, (("AllTraffic", 12 * HOUR, 3.0),))),
    _same(
        Pattern(
            "last traffic 30 h ago, outside the window",
            ONE,
            True,
            (("AllTraffic", 30 * HOUR, 50.0),),
        )
    ),
)


def pattern_of(index: int) -> Pattern:
    """The pattern of endpoint number ``index``.

    Each (endpoint, variant) metric gets at most one datapoint (``benchmarks/README.md``).
    """
    return SLOTS[index % len(SLOTS)][(index // len(SLOTS)) % 2]


def endpoint_name(index: int) -> str:
    """The name of endpoint number ``index``."""
    return f"bench-{index:05d}"


@dataclass(frozen=True)
class Seeded:
    """A seeded fleet: its size, ground truth and how long seeding took."""

    size: int
    now: datetime
    idle: frozenset[str]
    variants: int
    datapoints: int
    patterns: dict[str, int]
    seconds: float


def seed(sim: FastSimulator, size: int, now: datetime) -> Seeded:
    """Reset the simulator and seed ``size`` endpoints in ``REGION``, all ``AGE`` old.

    Endpoints go through the API (``Fleet.endpoint``: two calls each, then backdated);
    datapoints go in ``PutMetricData`` batches of ``PUT_BATCH`` across endpoints.
    """
    started = time.perf_counter()
    sim.reset()
    sim.speedups.indexed_metrics = True  # CloudWatch as AWS scales it, not moto's scans
    sim.speedups.fast_serialization = True  # moto's answers, without its per-member lookups
    fleet = Fleet(sim)
    patterns = [pattern_of(i) for i in range(size)]
    data: list[dict[str, Any]] = []
    for i, pattern in enumerate(patterns):
        name = endpoint_name(i)
        fleet.endpoint(
            REGION,
            name,
            [VariantSpec(v) for v in pattern.variants],
            tags={"team": TEAMS[i % len(TEAMS)]},
            changed=now - AGE - timedelta(seconds=i),  # created a second apart
        )
        data.extend(
            {
                "MetricName": naive.METRIC,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": name},
                    {"Name": "VariantName", "Value": variant},
                ],
                "Timestamp": now - ago,
                "Value": value,
                "Unit": "None",
            }
            for variant, ago, value in pattern.points
        )
        if (i + 1) % 1000 == 0:
            log(f"  seeded {i + 1:,}/{size:,} endpoints")
    cloudwatch = sim.client("cloudwatch", REGION)
    for offset in range(0, len(data), PUT_BATCH):
        cloudwatch.put_metric_data(
            Namespace=naive.NAMESPACE, MetricData=data[offset : offset + PUT_BATCH]
        )
    return Seeded(
        size=size,
        now=now,
        idle=frozenset(endpoint_name(i) for i, p in enumerate(patterns) if p.idle),
        variants=sum(len(p.variants) for p in patterns),
        datapoints=len(data),
        patterns=dict(Counter(p.description for p in patterns)),
        seconds=time.perf_counter() - started,
    )


# ------------------------------------------------------------------------------ measurement


@dataclass
class Run:
    """One measured run of one algorithm."""

    seconds: float
    calls: dict[str, int]
    found: int
    false_positives: list[str]
    false_negatives: list[str]
    errors: list[str] = field(default_factory=list)
    client_calls: dict[str, int] | None = None
    samples: list[float] = field(default_factory=list)  # wall times of every repetition

    @property
    def exact(self) -> bool:
        """No false positive, no false negative, no scan error."""
        return not (self.false_positives or self.false_negatives or self.errors)

    @property
    def total_calls(self) -> int:
        """Every API call the server saw during the run."""
        return sum(self.calls.values())

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view (FP/FN lists cut to 20 names)."""
        data = asdict(self)
        data["total_calls"] = self.total_calls
        data["false_positive_count"] = len(self.false_positives)
        data["false_negative_count"] = len(self.false_negatives)
        data["false_positives"] = self.false_positives[:20]
        data["false_negatives"] = self.false_negatives[:20]
        return data


def _measure(
    sim: FastSimulator,
    seeded: Seeded,
    algorithm: Callable[[], tuple[set[str], list[str], dict[str, int] | None]],
) -> Run:
    gc.collect()  # the seeding's garbage is not the algorithm's to collect
    with sim.environment(REGION):
        sim.middleware.counts.clear()
        started = time.perf_counter()
        found, errors, client_calls = algorithm()
        seconds = time.perf_counter() - started
        calls = dict(sorted(sim.middleware.counts.items()))
    return Run(
        seconds=seconds,
        calls=calls,
        found=len(found),
        false_positives=sorted(found - seeded.idle),
        false_negatives=sorted(seeded.idle - found),
        errors=errors,
        client_calls=client_calls,
    )


def measure_sagesaver(sim: FastSimulator, seeded: Seeded) -> Run:
    """Time ``sagesaver.pipelines.scan.scan`` with default policy, a new ``Aws()`` per run."""

    def algorithm() -> tuple[set[str], list[str], dict[str, int] | None]:
        aws = Aws()
        result = scan(aws, [REGION], Policy(), seeded.now)
        idle = {
            d.resource.name
            for d in result.decisions
            if d.resource.kind.value == "endpoint" and d.idle
        }
        errors = [f"{e.operation} {e.resource or ''}: {e.code} {e.message}" for e in result.errors]
        return idle, errors, dict(sorted(aws.calls.items()))

    return _measure(sim, seeded, algorithm)


def measure_naive(sim: FastSimulator, seeded: Seeded) -> Run:
    """Time the naive per-endpoint scan (``benchmarks.naive``) on the same data."""

    def algorithm() -> tuple[set[str], list[str], dict[str, int] | None]:
        return naive.idle_endpoints(REGION, seeded.now), [], None

    return _measure(sim, seeded, algorithm)


# ---------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """A checked target: PASS/FAIL and the numbers behind it."""

    name: str
    passed: bool
    detail: str


def budget(run: Run, idle: int) -> tuple[int, float]:
    """SageSaver's calls (notebook calls aside) and the most it may make."""
    used = sum(n for op, n in run.calls.items() if op not in NOTEBOOK_OPERATIONS)
    base = sum(run.calls.get(op, 0) for op in ("ListEndpoints", "ListMetrics", "GetMetricData"))
    return used, BUDGET_FACTOR * (base + 2 * idle)


@dataclass
class CaseResult:
    """Everything measured for one case."""

    name: str
    endpoints: int
    latency_ms: float
    seeded: Seeded
    sagesaver: Run
    naive: Run
    targets: list[Target]
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after

    @property
    def speedup(self) -> float:
        """Naive wall time over SageSaver's."""
        return self.naive.seconds / self.sagesaver.seconds

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view."""
        used, allowed = budget(self.sagesaver, len(self.seeded.idle))
        return {
            "name": self.name,
            "endpoints": self.endpoints,
            "latency_ms": self.latency_ms,
            "load_average_1m": {"before": self.load[0], "after": self.load[1]},
            "fleet": {
                "idle": len(self.seeded.idle),
                "variants": self.seeded.variants,
                "datapoints": self.seeded.datapoints,
                "patterns": self.seeded.patterns,
                "seed_seconds": round(self.seeded.seconds, 2),
            },
            "sagesaver": self.sagesaver.summary(),
            "naive": self.naive.summary(),
            "speedup": round(self.speedup, 2),
            "call_budget": {"used": used, "allowed": round(allowed, 1)},
            "targets": [asdict(t) for t in self.targets],
        }


def median_run(runs: Sequence[Run]) -> Run:
    """The run with the median wall time (the lower one for an even count), with every
    repetition's wall time in ``samples``."""
    chosen = sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]
    chosen.samples = [r.seconds for r in runs]
    return chosen


def check(
    seeded: Seeded, latency_ms: float, ours: Run, theirs: Run, inexact: Sequence[Run] = ()
) -> list[Target]:
    """The targets of one case (``ours`` and ``theirs`` are the median runs; ``inexact``
    lists SageSaver's repetitions that were not exact, if any)."""
    worst = inexact[0] if inexact else ours
    repetitions = len(ours.samples) or 1
    targets = [
        Target(
            "SageSaver exact (0 FP, 0 FN, 0 scan errors)",
            worst.exact,
            f"{len(worst.false_positives)} FP, {len(worst.false_negatives)} FN, "
            f"{len(worst.errors)} errors"
            + (f" (inexact in {len(inexact)} of {repetitions} runs)" if inexact else ""),
        )
    ]
    used, allowed = budget(ours, len(seeded.idle))
    targets.append(
        Target(
            f"call budget (<= {BUDGET_FACTOR} x (ListEndpoints + ListMetrics + GetMetricData"
            " + 2 x idle))",
            used <= allowed,
            f"{used} calls (ListNotebookInstances aside) vs {allowed:.1f} allowed",
        )
    )
    speedup = theirs.seconds / ours.seconds
    if latency_ms > 0:
        targets.append(
            Target(
                f"speed-up >= {LATENCY_SPEEDUP:g}x with latency",
                speedup >= LATENCY_SPEEDUP,
                f"{speedup:.2f}x ({theirs.seconds:.2f} s / {ours.seconds:.2f} s)",
            )
        )
    elif seeded.size >= NO_LATENCY_SPEEDUP_MIN_SIZE:
        targets.append(
            Target(
                f"speed-up >= {NO_LATENCY_SPEEDUP:g}x without latency at"
                f" >= {NO_LATENCY_SPEEDUP_MIN_SIZE:,} endpoints",
                speedup >= NO_LATENCY_SPEEDUP,
                f"{speedup:.2f}x ({theirs.seconds:.2f} s / {ours.seconds:.2f} s)",
            )
        )
    return targets


def run_case(sim: FastSimulator, seeded: Seeded, latency_ms: float, repeat: int = 1) -> CaseResult:
    """Measure SageSaver then the naive scan on ``seeded`` with ``latency_ms`` per request,
    ``repeat`` times in turn; report each algorithm's median run."""
    name = f"{seeded.size:,} endpoints, " + (
        f"{latency_ms:g} ms latency" if latency_ms else "no added latency"
    )
    ours_runs: list[Run] = []
    theirs_runs: list[Run] = []
    load_before = os.getloadavg()[0]
    sim.middleware.latency_s = latency_ms / 1000.0
    try:
        for k in range(1, repeat + 1):
            run = f"{name} (run {k}/{repeat})" if repeat > 1 else name
            log(f"{run}: SageSaver...")
            ours_runs.append(measure_sagesaver(sim, seeded))
            log(f"{run}: SageSaver {ours_runs[-1].seconds:.2f} s; naive...")
            theirs_runs.append(measure_naive(sim, seeded))
            log(f"{run}: naive {theirs_runs[-1].seconds:.2f} s")
    finally:
        sim.middleware.latency_s = 0.0
    ours, theirs = median_run(ours_runs), median_run(theirs_runs)
    inexact = [r for r in ours_runs if not r.exact]
    return CaseResult(
        name=name,
        endpoints=seeded.size,
        latency_ms=latency_ms,
        seeded=seeded,
        sagesaver=ours,
        naive=theirs,
        targets=check(seeded, latency_ms, ours, theirs, inexact),
        load=(round(load_before, 2), round(os.getloadavg()[0], 2)),
    )


# ---------------------------------------------------------------------------------- report


def render(case: CaseResult) -> str:
    """One case as a Markdown table (readable as plain text too)."""
    ours, theirs = case.sagesaver, case.naive
    operations = sorted(set(ours.calls) | set(theirs.calls))
    repeated = len(ours.samples) > 1
    rows: list[tuple[str, str, str]] = [
        (
            f"wall time (s){', median' if repeated else ''}",
            f"{ours.seconds:.2f}",
            f"{theirs.seconds:.2f}",
        ),
        ("API calls, total", str(ours.total_calls), str(theirs.total_calls)),
        *(
            (f"  {op}", str(ours.calls.get(op, 0)), str(theirs.calls.get(op, 0)))
            for op in operations
        ),
        ("idle found", str(ours.found), str(theirs.found)),
        ("false positives", str(len(ours.false_positives)), str(len(theirs.false_positives))),
        ("false negatives", str(len(ours.false_negatives)), str(len(theirs.false_negatives))),
        ("scan errors", str(len(ours.errors)), "-"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [
        f"### {case.name}",
        "",
        f"{case.seeded.size:,} endpoints ({len(case.seeded.idle):,} idle, "
        f"{case.seeded.variants:,} variants, {case.seeded.datapoints:,} datapoints), "
        f"seeded in {case.seeded.seconds:.1f} s (not measured). 1-minute load average "
        f"{case.load[0]:.2f} before, {case.load[1]:.2f} after (2 CPUs; the benchmark itself "
        "accounts for about 1).",
        "",
        f"| {'':<{width}} | SageSaver |  naive |",
        f"|{'-' * (width + 2)}|----------:|-------:|",
        *(f"| {label:<{width}} | {a:>9} | {b:>6} |" for label, a, b in rows),
        "",
        f"Speed-up (naive / SageSaver): **{case.speedup:.2f}x**",
        "",
        *(
            [
                f"Wall times of the {len(ours.samples)} runs: SageSaver "
                f"{', '.join(f'{x:.2f}' for x in ours.samples)} s; naive "
                f"{', '.join(f'{x:.2f}' for x in theirs.samples)} s.",
                "",
            ]
            if repeated
            else []
        ),
        *(f"- {'PASS' if t.passed else 'FAIL'} {t.name}: {t.detail}" for t in case.targets),
        "",
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: version(p) for p in ("sagesaver", "boto3", "botocore", "moto")},
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically (through a ``.tmp`` sibling)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# ------------------------------------------------------------------------------------ main


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of sizes: {text!r}") from exc
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers: {text!r}")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.endpoints", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1000, 5000],
        help="fleet sizes measured without added latency (default: 1000,5000)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=25.0,
        help="latency added to every request in the latency case; 0 skips it (default: 25)",
    )
    parser.add_argument(
        "--latency-size",
        type=_sizes,
        default=None,
        help="fleet sizes of the latency case, comma-separated (default: the smallest of --sizes)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each case N times (alternating) and report the median (default: 1)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: --sizes 200 --latency-size 200"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"JSON results (default: {RESULTS})"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.latency_size = [200], [200]
    if args.latency_size is None:
        args.latency_size = [min(args.sizes)]
    if args.latency_ms < 0 or args.repeat < 1:
        parser.error("--latency-ms must be >= 0, --latency-size and --repeat >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case, print the tables, write the JSON; 0 when every target passes."""
    args = parse_args(argv)
    started = time.perf_counter()
    plan: dict[int, list[float]] = {}
    for size in args.sizes:
        plan.setdefault(size, []).append(0.0)
    if args.latency_ms > 0:
        for size in args.latency_size:
            plan.setdefault(size, []).append(args.latency_ms)

    cases: list[CaseResult] = []
    sim = FastSimulator()
    try:
        for size, latencies in plan.items():
            now = datetime.now(timezone.utc)
            log(f"seeding {size:,} endpoints...")
            seeded = seed(sim, size, now)
            log(f"seeded {size:,} endpoints in {seeded.seconds:.1f} s")
            cases.extend(run_case(sim, seeded, latency, args.repeat) for latency in latencies)
    finally:
        sim.stop()
    elapsed = time.perf_counter() - started

    cases.sort(key=lambda c: (c.latency_ms > 0, c.endpoints))
    passed = all(t.passed for case in cases for t in case.targets)
    print("## SageSaver vs naive idle-endpoint scan\n")
    for case in cases:
        print(render(case))
    print(f"Whole run: {elapsed:.1f} s. Targets: {'ALL PASS' if passed else 'SOME FAIL'}.")
    write_json(
        args.output,
        {
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python -m benchmarks.endpoints", *sys.argv[1:]]),
            "machine": machine(),
            "options": {
                "sizes": args.sizes,
                "latency_ms": args.latency_ms,
                "latency_size": args.latency_size,
                "repeat": args.repeat,
                "quick": args.quick,
            },
            "cases": [case.summary() for case in cases],
            "passed": passed,
            "total_seconds": round(elapsed, 1),
        },
    )
    log(f"results written to {args.output}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
