"""The benchmarks' simulator, checked against moto: one per test session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from benchmarks.fast_moto.simulator import FastSimulator
from sagesaver.demo.simulator import Fleet


@pytest.fixture(scope="session")
def simulator() -> Iterator[FastSimulator]:
    sim = FastSimulator()
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator: FastSimulator, monkeypatch: pytest.MonkeyPatch) -> FastSimulator:
    """A freshly reset simulator (speed-ups off), with the boto3 chain pointed at it."""
    simulator.reset()
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in simulator.env("us-east-1").items():
        monkeypatch.setenv(key, value)
    return simulator


@pytest.fixture
def fleet(sim: FastSimulator) -> Fleet:
    return Fleet(sim)


@pytest.fixture
def now() -> datetime:
    return datetime.now(timezone.utc)
