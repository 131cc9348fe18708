"""The size of ``ml.*`` instance types: vCPUs, memory (GiB) and GPUs, for right-sizing.

Transcribed from the Amazon EC2 instance type specifications of the same families (SageMaker's
``ml.`` types run on them), for the families of the bundled price table. A type not listed has
no size: nothing is recommended for it. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceSize:
    """What an instance type offers."""

    vcpus: int
    memory_gib: float
    gpus: int = 0


_SIZES: dict[str, dict[str, InstanceSize]] = {
    "t2": {
        "medium": InstanceSize(2, 4),
        "large": InstanceSize(2, 8),
        "xlarge": InstanceSize(4, 16),
        "2xlarge": InstanceSize(8, 32),
    },
    "m5": {
        "large": InstanceSize(2, 8),
        "xlarge": InstanceSize(4, 16),
        "2xlarge": InstanceSize(8, 32),
        "4xlarge": InstanceSize(16, 64),
        "12xlarge": InstanceSize(48, 192),
        "24xlarge": InstanceSize(96, 384),
    },
    "c5": {
        "large": InstanceSize(2, 4),
        "xlarge": InstanceSize(4, 8),
        "2xlarge": InstanceSize(8, 16),
        "4xlarge": InstanceSize(16, 32),
        "9xlarge": InstanceSize(36, 72),
        "18xlarge": InstanceSize(72, 144),
    },
    "r5": {
        "large": InstanceSize(2, 16),
        "xlarge": InstanceSize(4, 32),
        "2xlarge": InstanceSize(8, 64),
        "4xlarge": InstanceSize(16, 128),
        "12xlarge": InstanceSize(48, 384),
        "24xlarge": InstanceSize(96, 768),
    },
    "g4dn": {
        "xlarge": InstanceSize(4, 16, 1),
        "2xlarge": InstanceSize(8, 32, 1),
        "4xlarge": InstanceSize(16, 64, 1),
        "8xlarge": InstanceSize(32, 128, 1),
        "12xlarge": InstanceSize(48, 192, 4),
        "16xlarge": InstanceSize(64, 256, 1),
    },
    "g5": {
        "xlarge": InstanceSize(4, 16, 1),
        "2xlarge": InstanceSize(8, 32, 1),
        "4xlarge": InstanceSize(16, 64, 1),
        "8xlarge": InstanceSize(32, 128, 1),
        "12xlarge": InstanceSize(48, 192, 4),
        "16xlarge": InstanceSize(64, 256, 1),
        "24xlarge": InstanceSize(96, 384, 4),
        "48xlarge": InstanceSize(192, 768, 8),
    },
    "p3": {
        "2xlarge": InstanceSize(8, 61, 1),
        "8xlarge": InstanceSize(32, 244, 4),
        "16xlarge": InstanceSize(64, 488, 8),
    },
}


def size_of(instance_type: str) -> InstanceSize | None:
    """The size of ``ml.FAMILY.SIZE``, or None when it is not known."""
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[0] != "ml":
        return None
    return _SIZES.get(parts[1], {}).get(parts[2])


def same_family(instance_type: str) -> dict[str, InstanceSize]:
    """Every known type of the family of ``instance_type`` (``ml.m5.xlarge`` -> ``ml.m5.*``)."""
    parts = instance_type.split(".")
    if len(parts) != 3:
        return {}
    return {f"ml.{parts[1]}.{size}": spec for size, spec in _SIZES.get(parts[1], {}).items()}
