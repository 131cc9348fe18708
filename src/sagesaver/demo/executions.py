"""Step Functions executions on the simulator: waiting for one to end, and where moto's
interpreter differs from AWS.

``Simulator.execute_state_machines()`` turns on moto's ASL interpreter (ported from
LocalStack); its Lambda tasks reach the functions of ``functions.py`` and its S3 reads the
simulator's S3. Each ASL behaviour the organisation run's state machine uses (issue 32) has a
test in ``tests/demo/test_simulated_step_functions.py`` that fails if the interpreter gets it
wrong: ``lambda:invoke`` (the result wrapped as ``{"Payload", "StatusCode", ...}``, a function
error's ``Error`` its ``errorType`` and ``Cause`` its error document), ``Retry`` (interval,
backoff, attempts, full jitter, each Map item retried on its own), ``Catch`` with
``ResultPath``, a ``Fail`` state in an item processor, Distributed Map's ``ItemReader`` (S3
JSON), ``ItemSelector`` with ``$$.Map.Item.Value``, ``MaxConcurrency``, the tolerated failure
threshold, ``ResultPath: null``, ``Choice`` ``NumericGreaterThan``, ``OutputPath``,
``$$.Execution.Name`` and ``StartTime``, and the ``aws-cn`` partition's ARNs.

Closed here, at the wire (moto untouched):
- the tolerated failure threshold of Distributed Maps, which moto ignores (a Map with failed
  items always succeeds there), and its refusal of an integer ``ToleratedFailurePercentage``:
  ``map_tolerance.py`` rewrites the definitions moto is given.

Left as moto has them (moto 5.2.6; AWS's behaviour from the Step Functions developer guide):
- ``$$.Execution.StartTime`` is ``2026-03-26T20:14:13.192337+00:00`` (microseconds, offset);
  AWS gives ``2026-03-26T20:14:13.192Z`` (context object page). Python's
  ``datetime.fromisoformat`` reads both as the same instant: a handler should parse it so,
  never compare or slice the text.
- An uncaught threshold error ends the execution with the error
  ``SageSaver.Simulator.ExceedToleratedFailureThreshold`` (moto refuses a ``Fail`` state
  named ``States.*``); caught, it is ``States.ExceedToleratedFailureThreshold`` as on AWS. A
  Map's ``Retry`` is not applied to the threshold error. The execution's history shows the
  check's states (``<Map>.SageSaver...``) and its Lambda task; the threshold is read
  from the execution's latest Map Run, so two Distributed Maps running at once in one
  execution (in Parallel branches) are not told apart. Maps the rewrite leaves alone (see
  ``map_tolerance.py``) keep moto's behaviour.
- A failed item's entry in a Map's result is null (not checked against AWS; the
  organisation run discards the result with ``ResultPath: null``).
- ``lambda:invoke``'s result has ``Payload``, ``StatusCode`` and ``ExecutedVersion``; AWS
  adds ``SdkHttpMetadata`` and ``SdkResponseMetadata``. A function error's ``Cause`` is its
  error document re-serialised without spaces (the same JSON).
- A JSONPath with an array index followed by a field (``$.a[0].b``) gives a one-element
  list, where AWS gives the value; ``$[0]`` alone gives the value.
- The interpreter calls Lambda and S3 with moto's default credentials: in account
  :data:`~sagesaver.demo.simulator.ACCOUNT_ID`, whatever the state machine's account.
- Not enforced: payload size limits (``States.DataLimitExceeded``, 256 KiB) and a
  function's own time-out; ``MaxConcurrency: 0`` runs one thread per item.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Execution:
    """An execution as ``DescribeExecution`` gives it once it has ended."""

    arn: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    output: Any  # the output parsed (None when there is none)
    error: str | None
    cause: str | None
    seconds: float  # from start to stop, as the service recorded them


def wait_for_execution(
    stepfunctions: Any, execution_arn: str, timeout_s: float = 60.0, poll_s: float = 0.05
) -> Execution:
    """Poll ``DescribeExecution`` until the execution is no longer ``RUNNING``; TimeoutError
    when it still is after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = stepfunctions.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout_s:g} s")
        time.sleep(poll_s)
    output = described.get("output")
    stopped = described.get("stopDate")
    return Execution(
        arn=execution_arn,
        status=str(described["status"]),
        output=json.loads(output) if output is not None else None,
        error=described.get("error"),
        cause=described.get("cause"),
        seconds=(stopped - described["startDate"]).total_seconds() if stopped else 0.0,
    )
