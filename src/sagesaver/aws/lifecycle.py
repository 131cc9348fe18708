"""Create or update a lifecycle configuration and attach it to notebook instances.

A configuration can only be attached to a stopped instance. An ``InService`` instance is
attached only when the caller allows a restart: stop, wait until ``Stopped`` (botocore's
waiter, with a timeout), attach, start again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from botocore.exceptions import WaiterError

from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.model import Resource, ScanError

WAIT_DELAY_S = 15


@dataclass(frozen=True)
class ConfigOutcome:
    """What happened to the configuration itself."""

    name: str
    action: str  # "create", "update", "unchanged"
    applied: bool


def ensure_config(aws: Aws, region: str, name: str, content_b64: str, apply: bool) -> ConfigOutcome:
    """Create the configuration, or update its on-start script when it differs."""
    client = aws.sagemaker(region)
    try:
        current = client.describe_notebook_instance_lifecycle_config(
            NotebookInstanceLifecycleConfigName=name
        )
    except AWS_ERRORS as exc:
        error = scan_error(exc, region, "DescribeNotebookInstanceLifecycleConfig", name)
        if error.code != "ValidationException":
            raise
        if apply:
            client.create_notebook_instance_lifecycle_config(
                NotebookInstanceLifecycleConfigName=name, OnStart=[{"Content": content_b64}]
            )
        return ConfigOutcome(name, "create", apply)
    existing = [hook.get("Content", "") for hook in current.get("OnStart", [])]
    if existing == [content_b64]:
        return ConfigOutcome(name, "unchanged", False)
    if apply:
        client.update_notebook_instance_lifecycle_config(
            NotebookInstanceLifecycleConfigName=name, OnStart=[{"Content": content_b64}]
        )
    return ConfigOutcome(name, "update", apply)


def attach(
    aws: Aws, instance: Resource, config: str, restart: bool, timeout_s: float
) -> tuple[str, ScanError | None]:
    """Attach ``config`` to ``instance``; return what was done and any error.

    The caller has already decided that the instance may be changed.
    """
    client = aws.sagemaker(instance.region)
    name = instance.name
    step = "UpdateNotebookInstance"
    try:
        if instance.status == "InService":
            if not restart:
                return "skipped: InService (attach with --restart, or when it is stopped)", None
            step = "StopNotebookInstance"
            client.stop_notebook_instance(NotebookInstanceName=name)
            step = "wait for Stopped"
            client.get_waiter("notebook_instance_stopped").wait(
                NotebookInstanceName=name,
                WaiterConfig={
                    "Delay": WAIT_DELAY_S,
                    "MaxAttempts": max(1, int(timeout_s // WAIT_DELAY_S)),
                },
            )
            step = "UpdateNotebookInstance"
            client.update_notebook_instance(NotebookInstanceName=name, LifecycleConfigName=config)
            step = "StartNotebookInstance"
            client.start_notebook_instance(NotebookInstanceName=name)
            return "attached (stopped, attached, started again)", None
        client.update_notebook_instance(NotebookInstanceName=name, LifecycleConfigName=config)
        return "attached", None
    except WaiterError as exc:
        status = exc.last_response.get("NotebookInstanceStatus", "unknown state")
        message = f"did not stop within {timeout_s:g} s (last state: {status})"
        return f"failed at {step}", scan_error(RuntimeError(message), instance.region, step, name)
    except AWS_ERRORS as exc:
        return f"failed at {step}", scan_error(exc, instance.region, step, name)


def decode_content(content_b64: str) -> str:
    """The script inside a configuration's base64 content."""
    return base64.b64decode(content_b64).decode("utf-8")
