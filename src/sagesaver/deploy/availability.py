"""Which resource types of the template CloudFormation offers in which region.

The facts come from cfn-lint's per-region resource specifications (cfn-lint 1.58.0), for every
region that offers SageMaker in the ``aws``, ``aws-cn`` and ``aws-us-gov`` partitions by
botocore's endpoint data; ``tests/deploy/test_availability.py`` recomputes them from the
installed cfn-lint and fails when they differ. In short: in the China regions (``cn-north-1``,
``cn-northwest-1``) every type the template uses is offered, EventBridge Scheduler included;
``me-central-1`` and ``us-gov-east-1`` lack the notebook lifecycle configuration type; cfn-lint
has no specification for ``me-south-1``.

Pure: no AWS calls.
"""

from __future__ import annotations

from dataclasses import dataclass

LIFECYCLE_TYPE = "AWS::SageMaker::NotebookInstanceLifecycleConfig"
SCHEDULE_TYPE = "AWS::Scheduler::Schedule"

# Resource type -> the SageMaker regions where CloudFormation does not offer it.
NOT_OFFERED: dict[str, frozenset[str]] = {
    LIFECYCLE_TYPE: frozenset({"me-central-1", "us-gov-east-1"}),
}
# SageMaker regions for which cfn-lint has no specification: availability is not known.
NOT_KNOWN: frozenset[str] = frozenset({"me-south-1"})

# What to use instead, per resource type.
ALTERNATIVES: dict[str, str] = {
    LIFECYCLE_TYPE: (
        "the template leaves the auto-stop lifecycle configuration out; create and attach it "
        "with `sagesaver lifecycle install --region {region}`"
    ),
    SCHEDULE_TYPE: (
        "the template runs the functions from EventBridge rules (AWS::Events::Rule) instead: "
        "the idle scan at its expression in UTC, the schedule tick at a rate (rules have no "
        "time zone; SageSaver applies the schedules' own)"
    ),
}


@dataclass(frozen=True)
class Gap:
    """A resource type the template would use that ``region`` does not offer."""

    resource_type: str
    region: str

    @property
    def message(self) -> str:
        """One line: what is missing and what to use instead."""
        alternative = ALTERNATIVES.get(self.resource_type, "no alternative is known")
        return (
            f"{self.resource_type} is not offered by CloudFormation in {self.region}: "
            + alternative.format(region=self.region)
        )


def gaps(region: str, resource_types: set[str]) -> list[Gap]:
    """The types of ``resource_types`` CloudFormation does not offer in ``region``."""
    return [
        Gap(kind, region)
        for kind in sorted(resource_types)
        if region in NOT_OFFERED.get(kind, frozenset())
    ]
