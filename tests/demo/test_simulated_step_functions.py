"""Step Functions executions on the simulator: Lambda tasks answered by Python handlers, and
each ASL behaviour the organisation run's state machine relies on, checked against what AWS
documents (toy definitions and toy handlers; the SageSaver pipeline is tested elsewhere)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sagesaver.demo.functions import Context
from sagesaver.demo.simulator import ACCOUNT_ID, Execution, Simulator

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/states"
INVOKE = "arn:aws:states:::lambda:invoke"
DISTRIBUTED = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


class Transient(Exception):
    """What the organisation run's handlers raise for a retryable error."""


@pytest.fixture
def executing(sim: Simulator) -> Iterator[Simulator]:
    sim.execute_state_machines()
    yield sim
    sim.execute_state_machines(False)


def fn(name: str, region: str = "us-east-1", partition: str = "aws") -> str:
    return f"arn:{partition}:lambda:{region}:{ACCOUNT_ID}:function:{name}"


def task(function: str, payload: Any = None, **fields: Any) -> dict[str, Any]:
    """A lambda:invoke Task state (the payload a template, or the whole input)."""
    parameters: dict[str, Any] = {"FunctionName": function}
    if payload is None:
        parameters["Payload.$"] = "$"
    else:
        parameters["Payload"] = payload
    state = {"Type": "Task", "Resource": INVOKE, "Parameters": parameters, "TimeoutSeconds": 900}
    state.update(fields)
    if "Next" not in state:
        state["End"] = True
    return state


def execute(
    sim: Simulator,
    definition: dict[str, Any],
    given: Any = None,
    region: str = "us-east-1",
    name: str = "run-1",
) -> Execution:
    sfn = sim.client("stepfunctions", region)
    machine = sfn.create_state_machine(
        name=f"toy-{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn=ROLE.replace("arn:aws:", "arn:aws-cn:") if region.startswith("cn-") else ROLE,
    )["stateMachineArn"]
    started = sfn.start_execution(
        stateMachineArn=machine, name=name, input=json.dumps(given or {})
    )["executionArn"]
    return sim.wait_for_execution(started, timeout_s=60)


def items_in_s3(sim: Simulator, items: list[Any], region: str = "us-east-1") -> dict[str, str]:
    s3 = sim.client("s3", region)
    config = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket="runs", **config)
    s3.put_object(Bucket="runs", Key="r/items.json", Body=json.dumps(items).encode())
    return {"bucket": "runs", "items_key": "r/items.json"}


def distributed_map(processor: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A Distributed Map over the JSON array at s3://$.run.bucket/$.run.items_key."""
    state = {
        "Type": "Map",
        "ItemProcessor": {"ProcessorConfig": DISTRIBUTED, **processor},
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.run.bucket", "Key.$": "$.run.items_key"},
        },
        "ItemSelector": {
            "account.$": "$$.Map.Item.Value.account",
            "run.$": "$.run",
        },
    }
    state.update(fields)
    if "Next" not in state:
        state["End"] = True
    return state


# ---- Lambda Invoke, answered by Python handlers


def test_invoke_answers_with_the_handlers_result_and_a_lambda_context(sim: Simulator) -> None:
    seen: list[Context] = []

    def handler(event: Any, context: Context) -> Any:
        seen.append(context)
        return {"doubled": event["n"] * 2}

    sim.functions.register("double", handler, timeout_s=60)
    answer = sim.client("lambda", "eu-west-1").invoke(
        FunctionName="double", Payload=json.dumps({"n": 21}).encode()
    )
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert answer["ExecutedVersion"] == "$LATEST"
    assert json.loads(answer["Payload"].read()) == {"doubled": 42}
    (context,) = seen
    assert context.function_name == "double"
    assert context.invoked_function_arn == fn("double", "eu-west-1")
    assert re.fullmatch(r"[0-9a-f-]{36}", context.aws_request_id)
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert sim.functions.invocations["double"] == 1
    assert sim.middleware.counts["Invoke"] == 1


def test_a_raising_handler_is_an_unhandled_function_error(sim: Simulator) -> None:
    def handler(event: Any, context: Context) -> Any:
        raise Transient("throttled by SageMaker")

    sim.functions.register(fn("plan"), handler)
    answer = sim.client("lambda", "us-east-1").invoke(FunctionName=fn("plan"), Payload=b"{}")
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "Transient"
    assert error["errorMessage"] == "throttled by SageMaker"
    assert any("raise Transient" in line for line in error["stackTrace"])
    assert sim.functions.errors["plan"] == 1


def test_unregistered_functions_are_not_found_and_reset_forgets_them(sim: Simulator) -> None:
    sim.functions.register(fn("known"), lambda event, context: {})
    client = sim.client("lambda", "us-east-1")
    with pytest.raises(ClientError) as other_region:
        client.invoke(FunctionName=fn("known", "us-west-2"), Payload=b"{}")
    assert other_region.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert other_region.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert client.invoke(FunctionName="known", Payload=b"{}")["StatusCode"] == 200
    sim.reset()
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.invoke(FunctionName="known", Payload=b"{}")


def test_a_china_function_is_invoked_by_its_qualified_arn(sim: Simulator) -> None:
    arns: list[str] = []
    sim.functions.register(
        fn("act", "cn-north-1", "aws-cn"),
        lambda event, context: arns.append(context.invoked_function_arn),
    )
    qualified = f"{fn('act', 'cn-north-1', 'aws-cn')}:live"
    answer = sim.client("lambda", "cn-north-1").invoke(FunctionName=qualified, Payload=b"{}")
    assert json.loads(answer["Payload"].read()) is None  # the handler returned None
    assert arns == [qualified]


# ---- executions


def test_lambda_invoke_wraps_the_result_as_the_optimised_integration_does(
    executing: Simulator,
) -> None:
    executing.functions.register(fn("list"), lambda event, context: {"items": 3, "got": event})
    definition = {
        "StartAt": "ListItems",
        "States": {"ListItems": task(fn("list"), {"input.$": "$"}, ResultPath="$.raw")},
    }
    done = execute(executing, definition, {"accounts": ["111122223333"]})
    assert done.status == "SUCCEEDED"
    raw = done.output["raw"]
    assert raw["StatusCode"] == 200 and raw["ExecutedVersion"] == "$LATEST"
    assert raw["Payload"] == {"items": 3, "got": {"input": {"accounts": ["111122223333"]}}}
    assert done.output["accounts"] == ["111122223333"]  # ResultPath kept the input


def test_a_function_error_is_caught_with_its_error_type_and_payload_as_cause(
    executing: Simulator,
) -> None:
    def broken(event: Any, context: Context) -> Any:
        raise ValueError("no such account")

    executing.functions.register(fn("plan"), broken)
    definition = {
        "StartAt": "Plan",
        "States": {
            "Plan": task(
                fn("plan"),
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}],
                Next="Never",
            ),
            "Never": {"Type": "Fail", "Error": "NotCaught"},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    done = execute(executing, definition, {"account": "111122223333"})
    assert done.status == "SUCCEEDED"
    assert done.output["account"] == "111122223333"
    assert done.output["error"]["Error"] == "ValueError"
    cause = json.loads(done.output["error"]["Cause"])
    assert cause["errorType"] == "ValueError" and cause["errorMessage"] == "no such account"


def test_retry_with_full_jitter_waits_at_most_interval_times_backoff(
    executing: Simulator,
) -> None:
    calls: dict[str, list[float]] = {}
    lock = threading.Lock()

    def flaky(event: Any, context: Context) -> Any:
        with lock:
            times = calls.setdefault(event["account"], [])
            times.append(time.monotonic())
            attempt = len(times)
        if event["account"] == "never" or attempt < 3:
            raise Transient("slow down")
        return {"ok": True}

    executing.functions.register(fn("plan"), flaky)
    retry = {
        "ErrorEquals": ["Transient"],
        "IntervalSeconds": 1,
        "MaxAttempts": 2,
        "BackoffRate": 2.0,
        "JitterStrategy": "FULL",
    }
    processor = {
        "StartAt": "Plan",
        "States": {
            "Plan": task(
                fn("plan"),
                Retry=[retry],
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Gave"}],
            ),
            "Gave": {"Type": "Pass", "End": True},
        },
    }
    accounts = ["a", "b", "c", "d", "never"]
    given = {"run": items_in_s3(executing, [{"account": a} for a in accounts])}
    definition = {"StartAt": "Map", "States": {"Map": distributed_map(processor)}}
    done = execute(executing, definition, given)
    assert done.status == "SUCCEEDED"
    assert {len(calls[a]) for a in accounts} == {3}  # the first attempt and 2 retries
    gaps = [t[1] - t[0] for t in calls.values()], [t[2] - t[1] for t in calls.values()]
    assert max(gaps[0]) < 1.0 + 0.3 and max(gaps[1]) < 2.0 + 0.3  # interval x backoff
    assert min(gaps[0] + gaps[1]) < 0.8  # jittered: some waits well below their ceiling
    never = done.output[accounts.index("never")]  # results in the items' order
    assert (
        never["account"] == "never" and never["error"]["Error"] == "Transient"
    )  # retries exhausted: caught


def test_item_reader_and_item_selector_give_each_item_its_value_and_the_run(
    executing: Simulator,
) -> None:
    executing.functions.register(
        fn("plan"), lambda event, context: {"account": event["account"], "run": event["run"]}
    )
    processor = {
        "StartAt": "Plan",
        "States": {"Plan": task(fn("plan"), ResultSelector={"planned.$": "$.Payload"})},
    }
    run = items_in_s3(executing, [{"account": a} for a in ("111", "222", "333")])
    definition = {"StartAt": "Map", "States": {"Map": distributed_map(processor)}}
    done = execute(executing, definition, {"run": run})
    assert done.status == "SUCCEEDED"
    assert done.output == [{"planned": {"account": a, "run": run}} for a in ("111", "222", "333")]


def test_max_concurrency_bounds_the_items_running_at_once(executing: Simulator) -> None:
    running, most = [0], [0]
    lock = threading.Lock()

    def slow(event: Any, context: Context) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return {}

    executing.functions.register(fn("plan"), slow)
    processor = {"StartAt": "Plan", "States": {"Plan": task(fn("plan"))}}
    run = items_in_s3(executing, [{"account": str(i)} for i in range(6)])
    definition = {"StartAt": "Map", "States": {"Map": distributed_map(processor, MaxConcurrency=2)}}
    assert execute(executing, definition, {"run": run}).status == "SUCCEEDED"
    assert most[0] == 2
    assert executing.functions.invocations["plan"] == 6


def _failing_items_machine(**threshold: Any) -> dict[str, Any]:
    """Items whose account starts with "bad" fail (caught, recorded, then a Fail state)."""

    def item(event: Any, context: Context) -> Any:
        if event["account"].startswith("bad"):
            raise ValueError(event["account"])
        return {"ok": True}

    processor = {
        "StartAt": "PlanItem",
        "States": {
            "PlanItem": task(
                fn("plan"),
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Record"}],
            ),
            "Record": task(fn("record"), {"error.$": "$.error"}, Next="PlanItemFailed"),
            "PlanItemFailed": {
                "Type": "Fail",
                "Error": "SageSaver.ItemFailed",
                "Cause": "recorded under failures/plan/",
            },
        },
    }
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.plan_failed", "Next": "Summarise"}]
    plan = distributed_map(processor, ResultPath=None, Catch=catch, Next="Announce", **threshold)
    machine = {
        "StartAt": "Plan",
        "States": {
            "Plan": plan,
            "Announce": {
                "Type": "Pass",
                "Result": True,
                "ResultPath": "$.announced",
                "Next": "Summarise",
            },
            "Summarise": {"Type": "Pass", "End": True},
        },
    }
    machine["handler"] = item  # taken out by _run_items
    return machine


def _run_items(sim: Simulator, accounts: list[str], **threshold: Any) -> Execution:
    machine = _failing_items_machine(**threshold)
    sim.functions.register(fn("plan"), machine.pop("handler"))
    recorded: list[Any] = []
    sim.functions.register(fn("record"), lambda event, context: recorded.append(event))
    run = items_in_s3(sim, [{"account": a} for a in accounts])
    done = execute(sim, machine, {"run": run})
    assert len(recorded) == sum(a.startswith("bad") for a in accounts)  # each failure recorded
    return done


def test_a_map_at_its_tolerated_failure_percentage_succeeds(executing: Simulator) -> None:
    done = _run_items(executing, ["a", "b", "c", "bad"], ToleratedFailurePercentage=25)
    assert done.status == "SUCCEEDED"
    assert done.output == {"run": done.output["run"], "announced": True}  # ResultPath: null


def test_a_map_above_its_tolerated_failure_percentage_fails_with_the_threshold_error(
    executing: Simulator,
) -> None:
    done = _run_items(executing, ["a", "b", "bad1", "bad2"], ToleratedFailurePercentage=25)
    assert done.status == "SUCCEEDED"  # the Map's Catch took it to Summarise
    assert "announced" not in done.output
    failed = done.output["plan_failed"]
    assert failed["Error"] == "States.ExceedToleratedFailureThreshold"
    assert "2 of 4" in failed["Cause"]


def test_a_map_without_a_threshold_fails_on_its_first_failed_item(executing: Simulator) -> None:
    done = _run_items(executing, ["a", "b", "c", "d", "bad"])
    assert done.output["plan_failed"]["Error"] == "States.ExceedToleratedFailureThreshold"


def test_an_uncaught_threshold_error_fails_the_execution(executing: Simulator) -> None:
    machine = _failing_items_machine(ToleratedFailureCount=0)
    machine["States"]["Plan"].pop("Catch")
    executing.functions.register(fn("plan"), machine.pop("handler"))
    executing.functions.register(fn("record"), lambda event, context: {})
    run = items_in_s3(executing, [{"account": a} for a in ("a", "bad")])
    done = execute(executing, machine, {"run": run})
    assert done.status == "FAILED"
    # AWS names it States.ExceedToleratedFailureThreshold; moto refuses a Fail state's
    # States.* error, so the simulator's carries its own prefix (executions.py)
    assert done.error == "SageSaver.Simulator.ExceedToleratedFailureThreshold"
    assert done.cause is not None and "1 of 2" in done.cause


def test_the_definition_is_described_as_it_was_given(executing: Simulator) -> None:
    machine = _failing_items_machine(ToleratedFailurePercentage=10)
    machine.pop("handler")
    sfn = executing.client("stepfunctions", "us-east-1")
    arn = sfn.create_state_machine(name="given", definition=json.dumps(machine), roleArn=ROLE)[
        "stateMachineArn"
    ]
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == machine


def test_choice_numeric_greater_than_and_output_path(executing: Simulator) -> None:
    executing.functions.register(
        fn("summarise"), lambda event, context: {"acts": event["acts"], "acted": "act" in event}
    )
    definition = {
        "StartAt": "AnyActs",
        "States": {
            "AnyActs": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.acts", "NumericGreaterThan": 0, "Next": "Act"}],
                "Default": "Summarise",
            },
            "Act": {"Type": "Pass", "Result": "acted", "ResultPath": "$.act", "Next": "Summarise"},
            "Summarise": task(
                fn("summarise"),
                ResultSelector={"acts.$": "$.Payload.acts", "acted.$": "$.Payload.acted"},
                ResultPath="$.summary",
                OutputPath="$.summary",
            ),
        },
    }
    none = execute(executing, definition, {"acts": 0, "other": 1}, name="none")
    assert none.output == {"acts": 0, "acted": False}
    two = execute(executing, definition, {"acts": 2, "other": 1}, name="two")
    assert two.output == {"acts": 2, "acted": True}


def test_execution_name_and_start_time_reach_the_payload(executing: Simulator) -> None:
    executing.functions.register(fn("list"), lambda event, context: event)
    definition = {
        "StartAt": "ListItems",
        "States": {
            "ListItems": task(
                fn("list"),
                {"execution.$": "$$.Execution.Name", "started.$": "$$.Execution.StartTime"},
                OutputPath="$.Payload",
            )
        },
    }
    done = execute(executing, definition, name="org-run-7")
    assert done.output["execution"] == "org-run-7"
    # AWS writes "2019-03-26T20:14:13.192Z", moto "2019-03-26T20:14:13.192337+00:00"
    # (executions.py): both are what datetime.fromisoformat reads, the same instant
    stated = datetime.fromisoformat(done.output["started"])
    sfn = executing.client("stepfunctions", "us-east-1")
    started = sfn.describe_execution(executionArn=done.arn)["startDate"]
    assert stated.utcoffset() == timedelta(0)
    assert abs(stated - started) < timedelta(milliseconds=1)


def test_a_china_state_machine_invokes_china_functions_and_reads_china_s3(
    executing: Simulator,
) -> None:
    region = "cn-north-1"
    executing.functions.register(
        fn("plan", region, "aws-cn"), lambda event, context: {"arn": context.invoked_function_arn}
    )
    processor = {
        "StartAt": "Plan",
        "States": {
            "Plan": {
                **task(fn("plan", region, "aws-cn"), OutputPath="$.Payload"),
                "Resource": "arn:aws-cn:states:::lambda:invoke",
            }
        },
    }
    plan = distributed_map(processor)
    plan["ItemReader"]["Resource"] = "arn:aws-cn:states:::s3:getObject"
    run = items_in_s3(executing, [{"account": "111"}], region)
    done = execute(executing, {"StartAt": "Plan", "States": {"Plan": plan}}, {"run": run}, region)
    assert done.status == "SUCCEEDED", done.cause
    assert done.arn.startswith("arn:aws-cn:states:cn-north-1:")
    assert done.output == [{"arn": fn("plan", region, "aws-cn")}]


def test_an_unnamed_execution_gets_a_fresh_name_as_on_aws(sim: Simulator) -> None:
    """AWS names an execution started without ``name`` with a UUID; moto would name every one
    "None" and refuse the second as a duplicate."""
    states = sim.client("stepfunctions", "us-east-1")
    machine = states.create_state_machine(
        name="unnamed-runs",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/states",
    )["stateMachineArn"]
    first = states.start_execution(stateMachineArn=machine)["executionArn"]
    second = states.start_execution(stateMachineArn=machine)["executionArn"]
    names = {arn.rsplit(":", 1)[1] for arn in (first, second)}
    assert len(names) == 2
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", n)
        for n in names
    )
    named = states.start_execution(stateMachineArn=machine, name="nightly")["executionArn"]
    assert named.endswith(":nightly")
