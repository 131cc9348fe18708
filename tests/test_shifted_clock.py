"""The shifted clock moves each test process exactly once (xdist workers included)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.shifted_clock import OFFSET_VARIABLE


def test_the_clock_is_moved_by_the_offset_once(tmp_path: Path) -> None:
    """The kernel stamps a new file with the real time; this process's clock is ahead of it
    by the run's offset (0 without ``--shift-clock``), not by twice the offset."""
    stamp = tmp_path / "now"
    stamp.write_bytes(b"")
    real = stamp.stat().st_mtime
    offset = float(os.environ.get(OFFSET_VARIABLE) or 0)
    assert abs(time.time() - real - offset) < 120
