"""The organisation run's state machine (Amazon States Language, JSONPath), state by state as
the organisation contract (issue 32) lays it out: ``ListItems`` -> ``Plan`` (a Distributed Map
over the accounts and regions the list wrote to the run bucket) -> ``Announce`` -> ``AnyActs``
-> ``Act`` (a Distributed Map over the items with due acts) -> ``Summarise``. An item that
fails after its retries is recorded and fails its child execution alone; a Map that fails
(beyond its tolerated failure percentage), or a failed announcement, goes to ``Summarise``,
which runs in every case and says what was missed.

:func:`state_machine_definition` is rendered into the organisation stack
(:mod:`sagesaver.deploy.organisation`) with intrinsics, and registered on the simulator with
plain ARNs.

Pure: no AWS calls, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagesaver.deploy.names import Json

HANDLER_MODULE = "sagesaver.organisation_handlers"
# The keys of ``functions`` in :func:`state_machine_definition`, and each one's handler.
HANDLERS: dict[str, str] = {
    "list": "list_items",
    "plan": "plan_item",
    "announce": "announce",
    "act": "act_item",
    "record_failure": "record_failure",
    "summarise": "summarise",
}
TASK_TIMEOUT_S = 900  # the functions' own time-out: Lambda's longest
DEFAULT_MAX_CONCURRENCY = 20
DEFAULT_TOLERATED_FAILURE_PERCENTAGE = 10
# Lambda's errors worth another attempt (the integration's own), a task's time-out, and the
# errorType the handlers raise for throttling and other retryable AWS errors.
RETRYABLE: tuple[tuple[str, ...], ...] = (
    (
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "States.Timeout",
    ),
    ("Transient",),
)
ITEM_FAILED = "SageSaver.ItemFailed"


def _retry() -> list[Json]:
    return [
        {
            "ErrorEquals": list(errors),
            "IntervalSeconds": 2,
            "MaxAttempts": 3,
            "BackoffRate": 2.0,
            "JitterStrategy": "FULL",
        }
        for errors in RETRYABLE
    ]


def _invoke(partition: str, function: Any, payload: Any, **fields: Any) -> Json:
    """A Task invoking ``function`` (Lambda's optimised integration) with ``payload`` (an
    object of JSONPath parameters, or ``"$"``: the whole state input), retried."""
    parameters: Json = {"FunctionName": function}
    if payload == "$":
        parameters["Payload.$"] = "$"
    else:
        parameters["Payload"] = payload
    return {
        "Type": "Task",
        "Resource": f"arn:{partition}:states:::lambda:invoke",
        "Parameters": parameters,
        "TimeoutSeconds": TASK_TIMEOUT_S,
        "Retry": _retry(),
        **fields,
    }


def _selector(*names: str) -> Json:
    """A ResultSelector taking ``names`` from the function's answer (its ``Payload``)."""
    return {f"{name}.$": f"$.Payload.{name}" for name in names}


def _catch_all(result_path: str, next_state: str) -> list[Json]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state}]


def _item_processor(
    partition: str, functions: Mapping[str, Any], stage: str, kept: tuple[str, ...]
) -> Json:
    """One item's child workflow: the item's function; on a failure after its retries, the
    failure recorded, then the child fails (the Map counts it against its tolerance)."""
    item = f"{stage.capitalize()}Item"
    record = f"Record{stage.capitalize()}Failure"
    failed = f"{stage.capitalize()}ItemFailed"
    return {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": item,
        "States": {
            item: _invoke(
                partition,
                functions[stage],
                "$",
                ResultSelector=_selector(*kept),
                Catch=_catch_all("$.error", record),
                End=True,
            ),
            record: _invoke(
                partition,
                functions["record_failure"],
                {
                    "stage": stage,
                    "account.$": "$.account",
                    "region.$": "$.region",
                    "run.$": "$.run",
                    "error.$": "$.error",
                },
                Next=failed,
            ),
            failed: {
                "Type": "Fail",
                "Error": ITEM_FAILED,
                "Cause": f"recorded under failures/{stage}/",
            },
        },
    }


def _distributed_map(
    partition: str,
    functions: Mapping[str, Any],
    stage: str,
    key_path: str,
    kept: tuple[str, ...],
    max_concurrency: Any,
    tolerated_failure_percentage: Any,
    next_state: str,
) -> Json:
    """A Distributed Map over the JSON array at ``key_path`` in the run bucket. Its children's
    outputs (``kept``) are gathered before ``ResultPath: null`` drops them, and a state holds
    256 KiB at most: each child keeps a few bytes (``{"ok":true}``: some 12 bytes, room for
    20,000 items), the item's documents are in the bucket."""
    return {
        "Type": "Map",
        "ItemReader": {
            "Resource": f"arn:{partition}:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.run.bucket", "Key.$": key_path},
        },
        "ItemSelector": {
            "account.$": "$$.Map.Item.Value.account",
            "region.$": "$$.Map.Item.Value.region",
            "run.$": "$.run",
        },
        "ItemProcessor": _item_processor(partition, functions, stage, kept),
        "MaxConcurrency": max_concurrency,
        "ToleratedFailurePercentage": tolerated_failure_percentage,
        "ResultPath": None,
        "Catch": _catch_all(f"$.{stage}_failed", "Summarise"),
        "Next": next_state,
    }


def state_machine_definition(
    partition: str,
    functions: Mapping[str, Any],
    max_concurrency: Any,
    tolerated_failure_percentage: Any,
) -> dict[str, Any]:
    """The organisation run's state machine (a dict of Amazon States Language, JSONPath):
    ``functions`` maps ``list``, ``plan``, ``announce``, ``act``, ``record_failure`` and
    ``summarise`` to their function ARNs (or intrinsics, or placeholders); ``partition`` names
    the integrations' partition; ``max_concurrency`` and ``tolerated_failure_percentage`` are
    both Maps' (integers, or placeholders)."""
    missing = sorted(set(HANDLERS) - set(functions))
    if missing:
        raise ValueError(f"no function for {', '.join(missing)}")
    states: Json = {
        "ListItems": _invoke(
            partition,
            functions["list"],
            {
                "execution.$": "$$.Execution.Name",
                "started.$": "$$.Execution.StartTime",
                "input.$": "$",
            },
            ResultSelector=_selector("run_id", "now", "bucket", "prefix", "items_key", "items"),
            ResultPath="$.run",
            Next="Plan",
        ),
        "Plan": _distributed_map(
            partition,
            functions,
            "plan",
            "$.run.items_key",
            ("ok",),
            max_concurrency,
            tolerated_failure_percentage,
            "Announce",
        ),
        "Announce": _invoke(
            partition,
            functions["announce"],
            {"run.$": "$.run"},
            ResultSelector=_selector("act_key", "acts", "notified"),
            ResultPath="$.announce",
            Catch=_catch_all("$.announce_failed", "Summarise"),
            Next="AnyActs",
        ),
        "AnyActs": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.announce.acts", "NumericGreaterThan": 0, "Next": "Act"}],
            "Default": "Summarise",
        },
        "Act": _distributed_map(
            partition,
            functions,
            "act",
            "$.announce.act_key",
            ("acted", "failed"),
            max_concurrency,
            tolerated_failure_percentage,
            "Summarise",
        ),
        "Summarise": _invoke(
            partition,
            functions["summarise"],
            "$",
            ResultSelector=_selector(
                "summary_key", "complete", "missed", "missed_count", "actions", "errors"
            ),
            ResultPath="$.summary",
            OutputPath="$.summary",
            End=True,
        ),
    }
    return {
        "Comment": "SageSaver: plan, announce and act for every account and region of the "
        "organisation",
        "StartAt": "ListItems",
        "States": states,
    }
