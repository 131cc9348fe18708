"""Read the history of every region once, then replay one or more policies over it.

The CLI calls :func:`run_backtest`; ``--compare`` reads once with :func:`read_history` and
replays each policy with :func:`replay_history`, then :func:`sagesaver.core.backtest.compare`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sagesaver.aws.history import RegionHistory, history_window, read_region
from sagesaver.aws.session import Aws
from sagesaver.core.backtest import BacktestResult, merge_all, replay
from sagesaver.core.formats import plural
from sagesaver.core.model import ScanError
from sagesaver.core.policy import EndpointPolicy, Policy
from sagesaver.core.pricing import Pricer

REGION_WORKERS = 8


@dataclass
class FleetHistory:
    """The history of every region over one window."""

    start: datetime
    hours: int
    regions: list[RegionHistory] = field(default_factory=list)

    @property
    def errors(self) -> list[ScanError]:
        """Every error met while reading."""
        return [e for r in self.regions for e in r.errors]


def read_history(
    aws: Aws,
    regions: Sequence[str],
    now: datetime,
    days: int,
    pricer: Pricer | None = None,
    progress: Callable[[str], None] | None = None,
) -> FleetHistory:
    """Read the last ``days`` of every region (bounded parallelism); never raises for AWS
    errors, which are in each region's ``errors``. ``progress`` hears of each region read."""
    if days < 1:
        raise ValueError("days must be at least 1")
    pricer = pricer or Pricer()
    start, _ = history_window(now, days)
    fleet = FleetHistory(start=start, hours=days * 24)
    workers = max(1, min(REGION_WORKERS, len(regions)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        finished = itertools.count(1)  # next() on a count is atomic: threads share it

        def one(region: str) -> RegionHistory:
            history = read_region(aws, region, days, now, pricer)
            if progress is not None:
                progress(
                    f"{region}: {plural(days, 'day')} of "
                    f"{plural(len(history.endpoints), 'endpoint')} read "
                    f"({next(finished)}/{len(regions)} regions)"
                )
            return history

        fleet.regions = list(pool.map(one, regions))
    return fleet


def replay_history(fleet: FleetHistory, policy: EndpointPolicy) -> BacktestResult:
    """Replay ``policy`` over every region of ``fleet`` and merge the results."""
    parts = [
        replay(
            history={e.name: region.history[e.name] for e in region.endpoints},
            created=region.created,
            hourly_cost=region.hourly_cost,
            tags=region.tags,
            policy=policy,
            start=fleet.start,
            instances=region.instances,
            region=region.region,
            hours=fleet.hours,
        )
        for region in fleet.regions
    ]
    result = merge_all(parts, fleet.start, fleet.hours, policy)
    result.errors = fleet.errors
    return result


def run_backtest(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy | EndpointPolicy,
    now: datetime,
    days: int = 30,
    pricer: Pricer | None = None,
) -> BacktestResult:
    """Read the last ``days`` of every region and replay the endpoint policy over them."""
    rules = policy.endpoints if isinstance(policy, Policy) else policy
    return replay_history(read_history(aws, regions, now, days, pricer), rules)
