"""Actions that change AWS resources. Each call is one API request; callers guard them."""

from __future__ import annotations

from sagesaver.aws.session import Aws


def start_notebook(aws: Aws, region: str, name: str) -> None:
    """StartNotebookInstance."""
    aws.sagemaker(region).start_notebook_instance(NotebookInstanceName=name)


def stop_notebook(aws: Aws, region: str, name: str) -> None:
    """StopNotebookInstance."""
    aws.sagemaker(region).stop_notebook_instance(NotebookInstanceName=name)
