"""Right-sizing rules: the cheapest smaller type of the family that every peak fits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagesaver.core.instances import same_family, size_of
from sagesaver.core.rules.rightsize import Peaks, recommend

# Test figures, not AWS prices (the rules only compare them): per instance-hour.
TEST_PRICES = {
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.m5.4xlarge": 0.922,
    "ml.m5.12xlarge": 2.765,
    "ml.m5.24xlarge": 5.53,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g5.4xlarge": 2.03,
    "ml.g5.8xlarge": 3.06,
    "ml.g5.12xlarge": 7.09,
    "ml.g5.16xlarge": 5.12,
    "ml.g5.24xlarge": 10.18,
    "ml.g5.48xlarge": 20.36,
}


def prices(instance_type: str) -> dict[str, float | None]:
    return {t: TEST_PRICES.get(t) for t in same_family(instance_type)}


def test_low_cpu_and_memory_move_to_the_cheapest_type_that_fits() -> None:
    # 4 vCPUs, CPU summed over cores: 60% = 0.6 of a core; memory 20% of 16 GiB = 3.2 GiB
    advice = recommend("ml.m5.xlarge", 2, Peaks(cpu=60, memory=20), prices("ml.m5.xlarge"), 60, 14)
    assert advice is not None and advice.kind == "rightsize"
    assert advice.to == "ml.m5.large"  # 2 vCPUs: CPU 30%, memory 40%
    assert advice.hourly_saving_usd == pytest.approx(2 * (0.23 - 0.115))
    assert "14-day peaks on ml.m5.xlarge" in advice.evidence and "ml.m5.large" in advice.evidence


def test_several_sizes_down_when_the_peaks_allow() -> None:
    advice = recommend("ml.m5.4xlarge", 1, Peaks(cpu=50, memory=5), prices("ml.m5.4xlarge"), 60, 14)
    assert advice is not None and advice.to == "ml.m5.large"


@pytest.mark.parametrize(
    ("peaks", "why"),
    [
        (Peaks(cpu=300, memory=10), "CPU: 3 of 4 cores busy at peak"),
        (Peaks(cpu=20, memory=45), "memory: 90% once halved"),
        (Peaks(cpu=None, memory=10), "no CPU data"),
        (Peaks(cpu=20, memory=None), "no memory data"),
    ],
)
def test_no_advice_when_a_peak_would_not_fit_or_is_unknown(peaks: Peaks, why: str) -> None:
    assert recommend("ml.m5.xlarge", 1, peaks, prices("ml.m5.xlarge"), 60, 14) is None, why


def test_gpu_types_need_gpu_data_and_keep_a_gpu() -> None:
    family = prices("ml.g5.2xlarge")
    assert recommend("ml.g5.2xlarge", 1, Peaks(cpu=50, memory=10), family, 60, 14) is None
    advice = recommend(
        "ml.g5.2xlarge", 1, Peaks(cpu=50, memory=10, gpu=30, gpu_memory=40), family, 60, 14
    )
    assert advice is not None and advice.to == "ml.g5.xlarge"
    busy_gpu = Peaks(cpu=50, memory=10, gpu=95, gpu_memory=40)
    assert recommend("ml.g5.2xlarge", 1, busy_gpu, family, 60, 14) is None


def test_unknown_types_and_prices_give_nothing() -> None:
    low = Peaks(cpu=1, memory=1)
    assert recommend("ml.x9.large", 1, low, {}, 60, 14) is None
    assert (
        recommend("ml.m5.xlarge", 1, low, {"ml.m5.xlarge": 0.23, "ml.m5.large": None}, 60, 14)
        is None
    )
    assert size_of("ml.m5.xlarge") is not None and size_of("m5.xlarge") is None


@given(
    cpu=st.floats(0, 400),
    memory=st.floats(0, 100),
    target=st.floats(1, 100),
    count=st.integers(1, 8),
)
def test_a_recommendation_always_saves_and_fits(
    cpu: float, memory: float, target: float, count: int
) -> None:
    advice = recommend(
        "ml.m5.xlarge", count, Peaks(cpu, memory), prices("ml.m5.xlarge"), target, 14
    )
    if advice is None:
        return
    assert advice.hourly_saving_usd is not None and advice.hourly_saving_usd > 0
    to = size_of(advice.to or "")
    assert to is not None
    assert cpu / to.vcpus <= target and memory * 16 / to.memory_gib <= target
