"""Which speed-ups act: both off until a benchmark (or its test) turns them on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SpeedUps:
    """The switches read by the patched moto code on each request."""

    # CloudWatch reads answered from an index (indexed_cloudwatch.py).
    indexed_metrics: bool = False
    # moto's answers serialized without most of its per-member lookups, the biggest ones by
    # a writer compiled from their shape (fast_serialization.py, answer_writer.py).
    fast_serialization: bool = False


SPEEDUPS = SpeedUps()
