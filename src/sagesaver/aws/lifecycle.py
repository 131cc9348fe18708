"""Create or update a lifecycle configuration and attach it to notebook instances.

A configuration can only be attached to a stopped instance. An ``InService`` instance is
attached only when the caller allows a restart: stop, wait until ``Stopped`` (botocore's
waiter, with a timeout), attach, start again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

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

    The caller has already decided that the instance may be changed. An instance this stops
    (``restart``) is never left stopped: if attaching fails, it is started again, and a
    failure to start it again is an error that says so.
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
            try:
                client.update_notebook_instance(
                    NotebookInstanceName=name, LifecycleConfigName=config
                )
            except AWS_ERRORS as exc:
                error = scan_error(exc, instance.region, step, name)
                return _start_again(aws, instance, "not attached", error)
            step = "StartNotebookInstance"
            client.start_notebook_instance(NotebookInstanceName=name)
            return "attached (stopped, attached, started again)", None
        client.update_notebook_instance(NotebookInstanceName=name, LifecycleConfigName=config)
        return "attached", None
    except WaiterError as exc:
        status = exc.last_response.get("NotebookInstanceStatus", "unknown state")
        message = (
            f"did not stop within {timeout_s:g} s (last state: {status}); SageSaver stopped it: "
            "start it again once it is Stopped, or rerun with a longer --restart-timeout"
        )
        return f"failed at {step}", scan_error(RuntimeError(message), instance.region, step, name)
    except AWS_ERRORS as exc:
        error = scan_error(exc, instance.region, step, name)
        if step == "StartNotebookInstance":  # attached, but stopped by us and not started
            message = "attached, but SageSaver stopped it and could not start it again: "
            error = replace(error, message=message + error.message)
        return f"failed at {step}", error


def _start_again(
    aws: Aws, instance: Resource, done: str, error: ScanError
) -> tuple[str, ScanError]:
    """Start an instance SageSaver stopped after attaching failed; say what became of it."""
    try:
        aws.sagemaker(instance.region).start_notebook_instance(NotebookInstanceName=instance.name)
    except AWS_ERRORS as exc:
        again = scan_error(exc, instance.region, "StartNotebookInstance", instance.name)
        message = f"{error.message}; SageSaver stopped it and could not start it again: "
        return f"{done}; left stopped", replace(error, message=message + again.message)
    return f"{done}; started again", error


def notebook_state(aws: Aws, region: str, name: str) -> str:
    """The instance's state now (``unknown`` when it cannot be read)."""
    try:
        found = aws.sagemaker(region).describe_notebook_instance(NotebookInstanceName=name)
    except AWS_ERRORS:
        return "unknown"
    return str(found["NotebookInstanceStatus"])


def decode_content(content_b64: str) -> str:
    """The script inside a configuration's base64 content."""
    return base64.b64decode(content_b64).decode("utf-8")
