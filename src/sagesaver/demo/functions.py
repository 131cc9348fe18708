"""Lambda functions served by Python callables: what a simulated Step Functions task invokes.

moto's own Lambda runs function code in Docker, which the simulator does not have. A test or
the demo registers a handler under a function's name or ARN (:meth:`Functions.register`), and
Lambda's ``Invoke`` for that function (``POST /2015-03-31/functions/{FunctionName}/invocations``)
is answered here, never reaching moto, as Lambda answers it
(https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html):

- ``RequestResponse`` (the default): 200, the handler's result as JSON, and
  ``X-Amz-Executed-Version``; a handler that raises: still 200, with
  ``X-Amz-Function-Error: Unhandled`` and the Python runtime's error document
  ``{"errorMessage", "errorType": <the exception's class name>, "requestId", "stackTrace"}``
  (https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html); a result that is
  not JSON: ``Runtime.MarshalError``, as the runtime reports it;
- ``Event``: 202 and an empty body, the handler run on a thread of its own;
- ``DryRun``: 204, the handler not run;
- a function nobody registered: 404 ``ResourceNotFoundException``.

The handler is called as ``handler(event, context)`` in the server's thread serving the
request, ``context`` a :class:`Context`. Its time-out is not enforced (a slow handler is
answered late, not cut off). Invocations and their wall time are counted per function, for
the tests and for a cost on paper (GB-seconds = seconds x memory).
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from sagesaver.demo.wire import Answer, Environ, read_body

Handler = Callable[[Any, "Context"], Any]

INVOKE_OPERATION = "Invoke"
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
# A function's name, partial ARN (ACCOUNT:function:NAME) or ARN, each with an optional
# qualifier (version or alias) after a colon.
_FUNCTION_ARN = re.compile(
    r"^(?:arn:(?P<partition>[\w-]+):lambda:(?P<region>[a-z0-9-]+):)?"
    r"(?:(?P<account>\d{12}):function:)?(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[\w$-]+))?$"
)
_JSON = "application/json"


@dataclass(frozen=True)
class FunctionRef:
    """A function as named in a request or a registration: its name and what else was said."""

    name: str
    partition: str | None = None
    region: str | None = None
    account: str | None = None
    qualifier: str | None = None

    @classmethod
    def parse(cls, text: str) -> FunctionRef:
        """``text`` read as a function name, partial ARN or ARN; ValueError if it is none."""
        found = _FUNCTION_ARN.match(text)
        if found is None:
            raise ValueError(f"not a Lambda function name or ARN: {text!r}")
        return cls(
            name=found["name"],
            partition=found["partition"],
            region=found["region"],
            account=found["account"],
            qualifier=found["qualifier"],
        )

    def arn(self, region: str, account: str) -> str:
        """The function's ARN (without qualifier), the region and account filled in where the
        reference did not say them."""
        from sagesaver.core.partitions import partition_of

        where = self.region or region
        partition = self.partition or partition_of(where)
        return f"arn:{partition}:lambda:{where}:{self.account or account}:function:{self.name}"

    def matches(self, other: FunctionRef) -> bool:
        """Whether a registration (self) answers the invocation ``other``: the same name, and
        the same partition, region and account wherever both say one."""
        return self.name == other.name and all(
            mine is None or theirs is None or mine == theirs
            for mine, theirs in (
                (self.partition, other.partition),
                (self.region, other.region),
                (self.account, other.account),
            )
        )


@dataclass
class Context:
    """The Lambda context object a handler receives (the parts SageSaver's handlers read)."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int
    deadline: float  # time.monotonic() at which the function would time out
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's time-out (0 once past it)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Function:
    """A registered function: its handler, time-out and memory."""

    ref: FunctionRef
    handler: Handler
    timeout_s: float
    memory_mb: int


@dataclass
class Functions:
    """The functions the simulator serves, and how often and how long each one ran."""

    invocations: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    _registered: list[Function] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(
        self, function: str, handler: Handler, timeout_s: float = 900.0, memory_mb: int = 512
    ) -> None:
        """Serve ``function`` (a name, or an ARN: then only invocations of that ARN, or of its
        bare name) with ``handler``; a second registration of the same name replaces it."""
        ref = FunctionRef.parse(function)
        with self._lock:
            self._registered = [f for f in self._registered if f.ref != ref]
            self._registered.append(Function(ref, handler, timeout_s, memory_mb))

    def reset(self) -> None:
        """Forget every registration and count."""
        with self._lock:
            self._registered.clear()
            self.invocations.clear()
            self.errors.clear()
            self.seconds.clear()

    def find(self, wanted: FunctionRef) -> Function | None:
        """The registration that answers an invocation of ``wanted`` (the latest of those
        that match)."""
        with self._lock:
            found = [f for f in self._registered if f.ref.matches(wanted)]
        return found[-1] if found else None

    def answer(self, environ: Environ, region: str, account: str) -> Answer | None:
        """Lambda's answer to an ``Invoke`` request; None when the request is not one."""
        path = _INVOKE_PATH.match(str(environ.get("PATH_INFO", "")))
        if path is None or environ.get("REQUEST_METHOD") != "POST":
            return None
        named = unquote(path["name"])
        try:
            wanted = FunctionRef.parse(named)
        except ValueError:
            return _error(400, "ValidationException", f"1 validation error detected: {named}")
        function = self.find(wanted)
        if function is None:
            arn = wanted.arn(region, account)
            return _error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        payload = read_body(environ)
        invocation = str(environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse")
        if invocation == "DryRun":
            return Answer(204, [], b"")
        try:
            event = json.loads(payload) if payload.strip() else {}
        except ValueError:
            return _error(400, "InvalidRequestContentException", "Could not parse request body")
        context = Context(
            function_name=function.ref.name,
            invoked_function_arn=_invoked_arn(wanted, function.ref, region, account),
            aws_request_id=str(uuid.uuid4()),
            memory_limit_in_mb=function.memory_mb,
            deadline=time.monotonic() + function.timeout_s,
        )
        if invocation == "Event":
            threading.Thread(target=self._run, args=(function, event, context), daemon=True).start()
            return Answer(202, [("Content-Type", _JSON)], b"")
        body, failed = self._run(function, event, context)
        headers = [("Content-Type", _JSON), ("X-Amz-Executed-Version", "$LATEST")]
        if failed:
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        return Answer(200, headers, body)

    def _run(self, function: Function, event: Any, context: Context) -> tuple[bytes, bool]:
        """Run the handler: its answer's body, and whether it is an error document."""
        started = time.perf_counter()
        failed = True
        try:
            result = function.handler(event, context)
            try:
                body, failed = json.dumps(result).encode(), False
            except (TypeError, ValueError) as problem:
                body = _error_document(
                    "Runtime.MarshalError",
                    f"Unable to marshal response: {problem}",
                    context.aws_request_id,
                    [],
                )
        except Exception as raised:  # the handler's error, reported as the runtime does
            stack = traceback.format_list(traceback.extract_tb(raised.__traceback__)[1:])
            body = _error_document(
                type(raised).__name__, str(raised), context.aws_request_id, stack
            )
        with self._lock:
            name = function.ref.name
            self.invocations[name] += 1
            self.errors[name] += int(failed)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        return body, failed


def _invoked_arn(wanted: FunctionRef, registered: FunctionRef, region: str, account: str) -> str:
    """The ARN the function was invoked by, as ``context.invoked_function_arn`` gives it (with
    its qualifier, when one was named)."""
    merged = FunctionRef(
        name=wanted.name,
        partition=wanted.partition or registered.partition,
        region=wanted.region or registered.region,
        account=wanted.account or registered.account,
    )
    arn = merged.arn(region, account)
    return f"{arn}:{wanted.qualifier}" if wanted.qualifier else arn


def _error_document(kind: str, message: str, request_id: str, stack: list[str]) -> bytes:
    return json.dumps(
        {"errorMessage": message, "errorType": kind, "requestId": request_id, "stackTrace": stack}
    ).encode()


def _error(status: int, code: str, message: str) -> Answer:
    """A Lambda API error (REST JSON: the code in ``x-amzn-ErrorType`` and the body)."""
    body = json.dumps({"Type": "User", "Message": message}).encode()
    return Answer(status, [("Content-Type", _JSON), ("x-amzn-ErrorType", code)], body)


def invoked_function(environ: Environ) -> FunctionRef | None:
    """The function an ``Invoke`` request names (None: not an Invoke, or not a function)."""
    path = _INVOKE_PATH.match(str(environ.get("PATH_INFO", "")))
    if path is None or environ.get("REQUEST_METHOD") != "POST":
        return None
    try:
        return FunctionRef.parse(unquote(path["name"]))
    except ValueError:
        return None


def is_invoke(environ: Environ) -> bool:
    """Whether a request is Lambda's ``Invoke`` (its path), whatever the function."""
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and _INVOKE_PATH.match(str(environ.get("PATH_INFO", ""))) is not None
    )
