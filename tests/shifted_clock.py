"""pytest plugin: run the suite with the clock moved ahead, to prove no test depends on the date.

``pytest --shift-clock=DAYS`` moves this process's clock ``DAYS`` days ahead with time-machine
before any test module is imported, and lets it tick from there. The Python child processes the
tests start (the Jupyter servers, the agent, ``sagesaver demo``) are moved by the same offset:
the offset travels in ``TEST_CLOCK_OFFSET_SECONDS`` and ``tests/shifted_site/sitecustomize.py``,
put on ``PYTHONPATH``, applies it at their start. A child that builds its environment from
scratch gets both through :func:`child_env`. A child started with ``-I`` or ``-E`` ignores them;
such a child must be given its time explicitly (the agent's ``SAGESAVER_AGENT_NOW``).

The seam is in the tests only: the package itself has no clock override.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import pytest
import time_machine

OFFSET_VARIABLE = "TEST_CLOCK_OFFSET_SECONDS"
SHIFTED_PID_VARIABLE = "TEST_CLOCK_SHIFTED_PID"  # set by sitecustomize in the process it moved
SITE_DIR = Path(__file__).resolve().parent / "shifted_site"
_TRAVELLER = pytest.StashKey[time_machine.travel]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shift-clock",
        type=float,
        default=0.0,
        metavar="DAYS",
        help="run every test (and its Python child processes) with the clock DAYS days ahead",
    )


def pytest_configure(config: pytest.Config) -> None:
    days = float(config.getoption("--shift-clock"))
    if not days:
        return
    offset = days * 86400.0
    os.environ.update(child_env({}, offset))
    if os.environ.get(SHIFTED_PID_VARIABLE) == str(os.getpid()):
        return  # an xdist worker, started with the offset: sitecustomize has moved it
    traveller = time_machine.travel(time.time() + offset, tick=True)
    traveller.start()
    config.stash[_TRAVELLER] = traveller


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_TRAVELLER, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    days = float(config.getoption("--shift-clock"))
    if not days:
        return None
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"clock shifted {days:g} days ahead: the tests run at {now}"


def child_env(env: Mapping[str, str], offset: float | None = None) -> dict[str, str]:
    """``env`` plus what a Python child needs to share this run's shifted clock (if any)."""
    result = dict(env)
    if offset is None:
        text = os.environ.get(OFFSET_VARIABLE)
        if not text:
            return result
        offset = float(text)
    paths = [str(SITE_DIR), *filter(None, result.get("PYTHONPATH", "").split(os.pathsep))]
    result["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    result[OFFSET_VARIABLE] = repr(offset)
    return result
