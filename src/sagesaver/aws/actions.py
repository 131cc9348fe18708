"""Actions that change AWS resources. Each call is one API request; callers guard them."""

from __future__ import annotations

from sagesaver.aws.session import Aws


def start_notebook(aws: Aws, region: str, name: str) -> None:
    """StartNotebookInstance."""
    aws.sagemaker(region).start_notebook_instance(NotebookInstanceName=name)


def stop_notebook(aws: Aws, region: str, name: str) -> None:
    """StopNotebookInstance."""
    aws.sagemaker(region).stop_notebook_instance(NotebookInstanceName=name)


def notebook_now(aws: Aws, region: str, name: str, arn: str) -> tuple[str, dict[str, str]]:
    """A notebook instance's state and tags, read again just before it is stopped
    (``DescribeNotebookInstance``, ``ListTags``). Raises on a failed read."""
    client = aws.sagemaker(region)
    status = str(
        client.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
    )
    found: dict[str, str] = {}
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        found.update({t["Key"]: t["Value"] for t in page["Tags"]})
    return status, found
