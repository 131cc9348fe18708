"""Create, update or delete the SageSaver stack, always through a change set that is shown
before anything is executed."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from sagesaver.aws.session import Aws

CAPABILITIES = ["CAPABILITY_NAMED_IAM"]


@dataclass
class ChangeSetPreview:
    """The changes a change set would make."""

    stack_name: str
    change_set_name: str
    change_set_type: str  # CREATE or UPDATE
    changes: list[dict[str, str]] = field(default_factory=list)
    status_reason: str | None = None


def _stack_exists(client: Any, stack_name: str) -> bool:
    try:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return False
        raise
    return bool(stacks) and stacks[0]["StackStatus"] != "REVIEW_IN_PROGRESS"


def preview(
    aws: Aws, region: str, stack_name: str, template: dict[str, Any], parameters: dict[str, str]
) -> ChangeSetPreview:
    """Create a change set and describe what it would change."""
    client = aws.client("cloudformation", region)
    change_type = "UPDATE" if _stack_exists(client, stack_name) else "CREATE"
    name = f"sagesaver-{int(time.time())}"
    client.create_change_set(
        StackName=stack_name,
        ChangeSetName=name,
        ChangeSetType=change_type,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
    )
    result = ChangeSetPreview(stack_name, name, change_type)
    try:
        client.get_waiter("change_set_create_complete").wait(
            StackName=stack_name, ChangeSetName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150}
        )
    except WaiterError as exc:
        result.status_reason = str(exc.last_response.get("StatusReason", exc))
    described = client.describe_change_set(StackName=stack_name, ChangeSetName=name)
    for change in described.get("Changes", []):
        resource = change.get("ResourceChange", {})
        result.changes.append(
            {
                "action": str(resource.get("Action", "")),
                "logical_id": str(resource.get("LogicalResourceId", "")),
                "type": str(resource.get("ResourceType", "")),
                "replacement": str(resource.get("Replacement", "")),
            }
        )
    return result


def execute(aws: Aws, region: str, change_set: ChangeSetPreview) -> str:
    """Execute a previewed change set and wait for the stack; return its final status."""
    client = aws.client("cloudformation", region)
    client.execute_change_set(
        StackName=change_set.stack_name, ChangeSetName=change_set.change_set_name
    )
    waiter = (
        "stack_create_complete"
        if change_set.change_set_type == "CREATE"
        else ("stack_update_complete")
    )
    with contextlib.suppress(WaiterError):  # the status below says what happened
        client.get_waiter(waiter).wait(
            StackName=change_set.stack_name, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
        )
    status: str = client.describe_stacks(StackName=change_set.stack_name)["Stacks"][0][
        "StackStatus"
    ]
    return status


def discard(aws: Aws, region: str, change_set: ChangeSetPreview) -> None:
    """Delete a change set that was only previewed (and the empty stack a CREATE leaves)."""
    client = aws.client("cloudformation", region)
    client.delete_change_set(
        StackName=change_set.stack_name, ChangeSetName=change_set.change_set_name
    )
    if change_set.change_set_type == "CREATE":
        client.delete_stack(StackName=change_set.stack_name)


def stack_outputs(aws: Aws, region: str, stack_name: str) -> dict[str, str]:
    """The outputs of a stack, by key."""
    client = aws.client("cloudformation", region)
    stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = stacks[0].get("Outputs", []) if stacks else []
    return {o["OutputKey"]: o["OutputValue"] for o in outputs if "OutputValue" in o}


def delete_stack(aws: Aws, region: str, stack_name: str) -> str:
    """Delete the stack and wait; return DELETE_COMPLETE or the last status seen."""
    client = aws.client("cloudformation", region)
    if not _stack_exists(client, stack_name):
        return "DOES_NOT_EXIST"
    client.delete_stack(StackName=stack_name)
    try:
        client.get_waiter("stack_delete_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
        )
    except WaiterError:
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
        return str(stacks[0]["StackStatus"]) if stacks else "UNKNOWN"
    return "DELETE_COMPLETE"
