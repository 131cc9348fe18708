"""A Distributed Map's tolerated failure threshold, which moto's ASL interpreter ignores.

AWS fails a Distributed Map with ``States.ExceedToleratedFailureThreshold`` when its failed
(or timed out) items exceed ``ToleratedFailurePercentage`` of all items or
``ToleratedFailureCount``, and with neither given, when any item fails
(https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html). moto 5.2.6
parses both fields and leaves them without effect: its Distributed Map always succeeds, a
failed item's result null. Its grammar also refuses an integer ``ToleratedFailurePercentage``
(``25``; ``25.0`` parses), which AWS accepts.

Nothing of moto is patched: when the simulator executes state machines, the definition of
``CreateStateMachine`` and ``UpdateStateMachine`` is rewritten on its way to moto (and
``DescribeStateMachine`` answers with the definition as given). Each Distributed Map ``M`` is
followed by states of its own, in the same scope:

1. ``M``: the Map itself (with its ``Retry`` and ``Catch`` for its own errors), its result
   put under :data:`RESULTS_KEY` of its input;
2. ``M.SageSaverThresholdCheck``: a Lambda task on :data:`FUNCTION`, answered by the
   simulator (:func:`answer`): the Map Run's item counts (``DescribeMapRun``) against the
   threshold, and the route on: within it, M's output as AWS makes it (``ResultPath``,
   ``OutputPath``); over it, the first of M's catchers that takes
   ``States.ExceedToleratedFailureThreshold``, with the input and the error at its
   ``ResultPath``; no catcher, a Fail state;
3. ``M.SageSaverThresholdRoute``, a Choice, to a Pass state that carries the output on to M's
   ``Next`` (or ends), to a catcher's ``Next``, or to the Fail state.

Left as moto has it (documented in ``executions.py``): a Map with ``ResultSelector``,
``ItemsPath``, ``ResultWriter``, ``ItemBatcher``, ``Parameters``, a ``ResultPath`` (its own or
a catcher's) deeper than one key, ``OutputPath`` other than ``$`` or ``$.key``, or a threshold
given by a ``...Path`` field. The check's Lambda invocation is not counted in
``Functions.invocations``.
"""

from __future__ import annotations

import json
from typing import Any

from sagesaver.demo.wire import Answer, Environ, WsgiApp, call, json_answer, request_for

FUNCTION = "sagesaver-simulator-map-tolerance"
RESULTS_KEY = "sagesaver_map_results"
EXCEEDED = "States.ExceedToleratedFailureThreshold"
# moto refuses a Fail state's error named States.*: an uncaught threshold error ends the
# execution with this one instead.
UNCAUGHT = "SageSaver.Simulator.ExceedToleratedFailureThreshold"
CHECK, ROUTE, WITHIN, CAUGHT, EXCEEDED_STATE = (
    ".SageSaverThresholdCheck",
    ".SageSaverThresholdRoute",
    ".SageSaverWithinThreshold",
    ".SageSaverCaught",
    ".SageSaverOverThreshold",
)
_UNSUPPORTED = (
    "ResultSelector",
    "ItemsPath",
    "ResultWriter",
    "ItemBatcher",
    "Parameters",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCountPath",
)


def _simple_path(path: Any) -> bool:
    """``$`` or ``$.key`` (one key of letters, digits, ``_`` or ``-``), or null."""
    if path is None or path == "$":
        return True
    return (
        isinstance(path, str)
        and path.startswith("$.")
        and path[2:].replace("_", "a").replace("-", "a").isalnum()
    )


def _distributed(state: dict[str, Any]) -> bool:
    processor = state.get("ItemProcessor") or {}
    return (
        state.get("Type") == "Map"
        and (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
    )


def rewritten(definition: str, partition: str) -> str:
    """The definition with each Distributed Map that :func:`answer` can check wrapped (see
    the module docstring); the definition as it is when it is not JSON."""
    try:
        parsed = json.loads(definition)
    except ValueError:
        return definition
    if not isinstance(parsed, dict) or parsed.get("QueryLanguage") == "JSONata":
        return definition
    changed = _rewrite_states(parsed, partition)
    return json.dumps(parsed) if changed else definition


def _rewrite_states(machine: dict[str, Any], partition: str) -> bool:
    """Rewrite the Distributed Maps among ``machine``'s states (and in their processors and
    branches) in place; whether any was."""
    states = machine.get("States")
    if not isinstance(states, dict):
        return False
    changed = False
    for name, state in list(states.items()):
        if not isinstance(state, dict):
            continue
        for branch in state.get("Branches") or []:
            changed = _rewrite_states(branch, partition) or changed
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                changed = _rewrite_states(state[key], partition) or changed
        if not _distributed(state):
            continue
        percentage = state.get("ToleratedFailurePercentage")
        if isinstance(percentage, int):  # moto's grammar takes a float only
            state["ToleratedFailurePercentage"] = float(percentage)
            changed = True
        if _checkable(state):
            states.update(_checked(name, state, partition))
            changed = True
    return changed


def _checkable(state: dict[str, Any]) -> bool:
    """Whether :func:`answer` can make this Map's output and catch as AWS does."""
    paths = [state.get("ResultPath", "$"), state.get("OutputPath", "$")]
    paths += [c.get("ResultPath", "$") for c in state.get("Catch") or []]
    return (
        not any(k in state for k in _UNSUPPORTED)
        and state.get("QueryLanguage") != "JSONata"
        and state.get("OutputPath", "$") is not None
        and all(_simple_path(p) for p in paths)
    )


def _checked(name: str, state: dict[str, Any], partition: str) -> dict[str, dict[str, Any]]:
    """The states that replace Map ``name``: the Map, its check, and where each outcome goes."""
    catchers = state.get("Catch") or []
    inner = {
        k: v
        for k, v in state.items()
        if k not in ("Next", "End", "ResultPath", "OutputPath")
        and not k.startswith("ToleratedFailure")
    }
    inner.update(ResultPath=f"$.{RESULTS_KEY}", Next=f"{name}{CHECK}")
    check = {
        "state": name,
        "execution.$": "$$.Execution.Id",
        "input.$": "$",
        "percentage": state.get("ToleratedFailurePercentage"),
        "count": state.get("ToleratedFailureCount"),
        "result_path": state.get("ResultPath", "$"),
        "output_path": state.get("OutputPath", "$"),
        "catchers": [
            {"errors": c.get("ErrorEquals", []), "result_path": c.get("ResultPath", "$")}
            for c in catchers
        ],
    }
    onward = {"Next": state["Next"]} if "Next" in state else {"End": True}
    routes = [
        {"Variable": "$.route", "StringEquals": f"catch-{i}", "Next": f"{name}{CAUGHT}{i}"}
        for i in range(len(catchers))
    ]
    routes.append(
        {"Variable": "$.route", "StringEquals": "fail", "Next": f"{name}{EXCEEDED_STATE}"}
    )
    replaced: dict[str, dict[str, Any]] = {
        name: inner,
        f"{name}{CHECK}": {
            "Type": "Task",
            "Resource": f"arn:{partition}:states:::lambda:invoke",
            "Parameters": {"FunctionName": FUNCTION, "Payload": check},
            "OutputPath": "$.Payload",
            "Next": f"{name}{ROUTE}",
        },
        f"{name}{ROUTE}": {"Type": "Choice", "Choices": routes, "Default": f"{name}{WITHIN}"},
        f"{name}{WITHIN}": {"Type": "Pass", "InputPath": "$.output", **onward},
        f"{name}{EXCEEDED_STATE}": {"Type": "Fail", "Error": UNCAUGHT, "CausePath": "$.cause"},
    }
    for i, catcher in enumerate(catchers):
        replaced[f"{name}{CAUGHT}{i}"] = {
            "Type": "Pass",
            "InputPath": "$.output",
            "Next": catcher["Next"],
        }
    return replaced


def _at(document: Any, path: str) -> Any:
    return document if path == "$" else document[path[2:]]


def _put(document: Any, path: str | None, value: Any) -> Any:
    if path is None:
        return document
    if path == "$":
        return value
    return {**document, path[2:]: value}


def _matches(errors: list[str]) -> bool:
    """Whether a catcher's ``ErrorEquals`` takes the threshold's error (``States.ALL`` does:
    it leaves out only ``States.DataLimitExceeded`` and ``States.Runtime``)."""
    return EXCEEDED in errors or "States.ALL" in errors


def answer(environ: Environ, payload: bytes, moto: WsgiApp) -> Answer:
    """The threshold check's Lambda answer: the ``route`` taken (``within``, ``catch-N`` or
    ``fail``), the ``output`` it carries on, and the threshold error's ``cause``."""
    check = json.loads(payload)
    state_input = dict(check["input"])
    results = state_input.pop(RESULTS_KEY, None)
    counts = _item_counts(environ, moto, str(check["execution"]))
    failed = int(counts.get("failed", 0)) + int(counts.get("timedOut", 0))
    total = int(counts.get("total", 0)) or len(results or [])
    percentage, count = check.get("percentage"), check.get("count")
    limits = []
    if percentage is not None:
        limits.append(total > 0 and failed * 100.0 > float(percentage) * total)
    if count is not None:
        limits.append(failed > int(count))
    exceeded = any(limits) if limits else failed > 0
    if not exceeded:
        output = _at(_put(state_input, check["result_path"], results), check["output_path"])
        return json_answer({"route": "within", "output": output})
    cause = (
        f"The Map Run of {check['state']} failed {failed} of {total} items, over its tolerated "
        "failure threshold"
    )
    for i, catcher in enumerate(check["catchers"]):
        if _matches(catcher["errors"]):
            error = {"Error": EXCEEDED, "Cause": cause}
            output = _put(state_input, catcher["result_path"], error)
            return json_answer({"route": f"catch-{i}", "output": output, "cause": cause})
    return json_answer({"route": "fail", "output": state_input, "cause": cause})


def _item_counts(environ: Environ, moto: WsgiApp, execution_arn: str) -> dict[str, Any]:
    """The item counts of the execution's latest Map Run, from moto's own API."""

    def ask(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        made = request_for(
            environ,
            "states",
            json.dumps(params).encode(),
            "application/x-amz-json-1.0",
            f"AWSStepFunctions.{operation}",
        )
        answered = call(moto, made)
        if answered.status != 200:
            raise RuntimeError(f"{operation}: {answered.body.decode('utf-8', 'replace')}")
        parsed: dict[str, Any] = json.loads(answered.body)
        return parsed

    runs = ask("ListMapRuns", {"executionArn": execution_arn}).get("mapRuns") or []
    if not runs:
        return {}
    latest = max(runs, key=lambda r: r.get("startDate") or 0)
    counts: dict[str, Any] = (
        ask("DescribeMapRun", {"mapRunArn": latest["mapRunArn"]}).get("itemCounts") or {}
    )
    return counts
