"""Model objects for the pure tests: one way to make a resource, so a field added to
:class:`~sagesaver.core.model.Resource` is added once."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sagesaver.core.model import Kind, Resource

ACCOUNT = "123456789012"


def resource(
    name: str,
    now: datetime,
    kind: Kind = Kind.ENDPOINT,
    region: str = "us-east-1",
    age: timedelta = timedelta(days=9),
    **fields: Any,
) -> Resource:
    """An ``InService`` resource of ``kind``, created and last changed ``age`` before ``now``,
    with its ARN in the region's partition; ``fields`` set any other field."""
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    noun = "notebook-instance" if kind is Kind.NOTEBOOK else kind.value
    made = Resource(
        kind=kind,
        name=name,
        arn=f"arn:{partition}:sagemaker:{region}:{ACCOUNT}:{noun}/{name}",
        region=region,
        account=ACCOUNT,
        status="InService",
        created=now - age,
        modified=now - age,
    )
    return replace(made, **fields)
