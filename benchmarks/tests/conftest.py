"""The benchmarks' simulator, checked against moto: one per test session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.fast_moto.simulator import FastSimulator
from tests.conftest import fleet, now, reset_and_point

__all__ = ["fleet", "now"]  # the shared fixtures, on the benchmarks' simulator


@pytest.fixture(scope="session")
def simulator() -> Iterator[FastSimulator]:
    sim = FastSimulator()
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator: FastSimulator, monkeypatch: pytest.MonkeyPatch) -> FastSimulator:
    """A freshly reset simulator (speed-ups off), with the boto3 chain pointed at it."""
    reset_and_point(simulator, monkeypatch)
    return simulator
