"""Right-sizing a busy endpoint variant from its utilisation peaks. Pure.

The peaks are the ``Maximum`` over the look-back (14 days by default) of the endpoint instance
metrics of namespace ``/aws/sagemaker/Endpoints`` (AWS: "Amazon SageMaker AI metrics in Amazon
CloudWatch", endpoint instance metrics,
https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html):
``CPUUtilization`` is the *sum* over the instance's cores (0-100 % each, so 0-400 % on 4
vCPUs), ``MemoryUtilization`` is 0-100 %, ``GPUUtilization`` and ``GPUMemoryUtilization`` are
summed over the GPUs (0-100 % each).

A smaller type of the same family is recommended when, with the same instance count, each peak
scaled to it stays at or under ``target_peak_percent`` of what it offers, and it costs less. The
cheapest such type wins. Missing CPU or memory data, or missing GPU data on a GPU type, means
no recommendation (unknown is never "low").
"""

from __future__ import annotations

from dataclasses import dataclass

from sagesaver.core.instances import InstanceSize, same_family, size_of
from sagesaver.core.model import Recommendation


@dataclass(frozen=True)
class Peaks:
    """Utilisation peaks of one variant over the look-back, as CloudWatch reports them."""

    cpu: float | None
    memory: float | None
    gpu: float | None = None
    gpu_memory: float | None = None


def _projected(peaks: Peaks, now: InstanceSize, to: InstanceSize) -> dict[str, float] | None:
    """Each peak as a share (%) of what ``to`` offers, or None when it cannot be said."""
    if peaks.cpu is None or peaks.memory is None:
        return None
    shares = {
        "CPU": peaks.cpu / to.vcpus,  # cores' sum / cores = per-core average peak
        "memory": peaks.memory * now.memory_gib / to.memory_gib,
    }
    if now.gpus:
        if to.gpus == 0 or peaks.gpu is None or peaks.gpu_memory is None:
            return None
        shares["GPU"] = peaks.gpu / to.gpus
        shares["GPU memory"] = peaks.gpu_memory / to.gpus
    elif to.gpus:
        return None
    return shares


def recommend(
    instance_type: str,
    instance_count: int,
    peaks: Peaks,
    prices: dict[str, float | None],
    target_peak_percent: float,
    days: float,
) -> Recommendation | None:
    """The cheapest smaller type of the family that the peaks fit, or None.

    ``prices`` maps instance types to USD per hour (None: unknown, never recommended).
    """
    now = size_of(instance_type)
    price_now = prices.get(instance_type)
    if now is None or price_now is None or instance_count < 1:
        return None
    best: tuple[float, str, dict[str, float]] | None = None
    for candidate, size in same_family(instance_type).items():
        price = prices.get(candidate)
        if candidate == instance_type or price is None or price >= price_now:
            continue
        shares = _projected(peaks, now, size)
        if shares is None or max(shares.values()) > target_peak_percent:
            continue
        if best is None or price < best[0]:
            best = (price, candidate, shares)
    if best is None:
        return None
    price, target, shares = best
    observed = _projected(peaks, now, now) or {}
    seen = ", ".join(f"{k} {v:.0f}%" for k, v in observed.items())
    after = ", ".join(f"{k} {v:.0f}%" for k, v in shares.items())
    return Recommendation(
        kind="rightsize",
        to=target,
        hourly_saving_usd=round((price_now - price) * instance_count, 6),
        evidence=(
            f"{days:g}-day peaks on {instance_type}: {seen}; on {target} they would be "
            f"{after} (target at most {target_peak_percent:g}%)"
        ),
    )
