"""The simulator's WSGI middleware: how many requests of each operation were served and what
they cost, the latency added on purpose, and the faults answered instead of moto's answer (a
rule per request, or :class:`TransientFaults` drawn by seed), or no answer at all (a hang)."""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sagesaver.demo.behaviours import AwsBehaviours
from sagesaver.demo.functions import INVOKE_OPERATION, is_invoke
from sagesaver.demo.wire import (
    Environ,
    Fault,
    FaultRule,
    StartResponse,
    WsgiApp,
    error_body,
    operation_of,
    region_of,
)


@dataclass
class Served:
    """What the simulator spent on the requests of one operation (``Middleware.served``).

    ``service_s``: wall time inside moto and the AWS behaviours, from the middleware's call to
    the last byte of the answer's body, the added latency aside; ``service_cpu_s``: the CPU
    time of the serving thread in that span (wall minus CPU is mostly waiting for the GIL
    other threads of this process hold). ``latency_s``: the latency added on purpose.
    ``request_s`` / ``request_cpu_s``: the whole request in the HTTP server (reading and
    parsing it, the middleware, writing the answer, closing the connection), so the HTTP
    front costs ``request - service - latency``.
    """

    requests: int = 0
    service_s: float = 0.0
    service_cpu_s: float = 0.0
    latency_s: float = 0.0
    request_s: float = 0.0
    request_cpu_s: float = 0.0

    def add(self, other: Served) -> None:
        """Add ``other``'s figures to these."""
        self.requests += other.requests
        self.service_s += other.service_s
        self.service_cpu_s += other.service_cpu_s
        self.latency_s += other.latency_s
        self.request_s += other.request_s
        self.request_cpu_s += other.request_cpu_s


OPERATION_KEY = "sagesaver.operation"
# How long a hanging request (``Fault.hang``) is held at most when nothing releases it.
HANG_LIMIT_S = 120.0


class Middleware:
    """Counts requests per operation and times how long the simulator takes to serve them
    (``served``); optionally adds latency or answers with a fault.

    ``fault`` is called with (operation, region, environ) and may return a :class:`Fault`;
    ``behaviours`` answer what moto lacks, ``app`` (moto's server) the rest.
    """

    def __init__(self, app: WsgiApp, behaviours: AwsBehaviours) -> None:
        self.app = app
        self.behaviours = behaviours
        self.latency_s = 0.0
        self.fault: FaultRule | None = None
        self.counts: Counter[str] = Counter()
        self.faults_sent: Counter[str] = Counter()
        self.served: dict[str, Served] = {}
        self._lock = threading.Lock()
        self._held = threading.Event()  # set: the requests held by a hang go

    def release(self) -> None:
        """Let every request held by a hanging fault go (its answer finds the client gone)."""
        with self._lock:
            held, self._held = self._held, threading.Event()
        held.set()

    def clear(self) -> None:
        """Forget the counts and times of the requests served so far."""
        with self._lock:
            self.counts.clear()
            self.served.clear()

    def settle(self, timeout_s: float = 2.0) -> bool:
        """Wait (up to ``timeout_s``) until every request counted has been noted whole: a
        client has its answer a moment before the server's request thread is done with it.
        True when none is missing."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                noted = sum(f.requests for f in self.served.values())
                counted = sum(self.counts.values())
            if noted >= counted:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)

    def note(self, operation: str, figures: Served) -> None:
        """Add ``figures`` to what ``operation``'s requests cost."""
        with self._lock:
            self.served.setdefault(operation, Served()).add(figures)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        wall, cpu = time.perf_counter(), time.thread_time()
        operation = INVOKE_OPERATION if is_invoke(environ) else operation_of(environ)
        environ[OPERATION_KEY] = operation
        with self._lock:
            self.counts[operation] += 1
        slept = 0.0
        if self.latency_s:
            before = time.perf_counter()
            time.sleep(self.latency_s)
            slept = time.perf_counter() - before
        answer: Iterable[bytes] = ()
        try:
            answer = self._answer(operation, environ, start_response)
            body = list(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
            self.note(
                operation,
                Served(
                    service_s=time.perf_counter() - wall - slept,
                    service_cpu_s=time.thread_time() - cpu,
                    latency_s=slept,
                ),
            )
        return body

    def _answer(
        self, operation: str, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        fault = self.fault(operation, region_of(environ), environ) if self.fault else None
        if fault is None and operation == "GetProducts":
            fault = self.behaviours.price_list.refusal(region_of(environ))
        if fault is None:
            return self.behaviours.answer(operation, environ, start_response, self.app)
        with self._lock:
            self.faults_sent[operation] += 1
            held = self._held
        if fault.hang:
            held.wait(HANG_LIMIT_S)
        if fault.delay_s:
            time.sleep(fault.delay_s)
        content_type, body = error_body(environ, fault)
        start_response(
            f"{fault.status} Fault",
            [
                ("Content-Type", content_type),
                ("x-amzn-ErrorType", fault.code),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


class TransientFaults:
    """Fails a share of requests with transient errors, deterministically by seed.

    Whether a request fails depends only on the seed, its operation and body, and how many
    times that same request was seen before, so the outcome does not depend on thread timing.
    Kinds: throttling (HTTP 400 ``ThrottlingException``), HTTP 429, 500, 503, and time-outs
    (the answer comes after ``timeout_s``, which should exceed the client's read timeout).
    """

    KINDS = ("throttle", "429", "500", "503", "timeout")

    def __init__(
        self,
        rate: float,
        seed: int = 0,
        kinds: tuple[str, ...] = KINDS,
        operations: frozenset[str] | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self.rate = rate
        self.seed = seed
        self.kinds = kinds
        self.operations = operations
        self.timeout_s = timeout_s
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def __call__(self, operation: str, region: str, environ: Environ) -> Fault | None:
        if self.operations is not None and operation not in self.operations:
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        digest = hashlib.sha256(
            f"{operation}|{region}|{environ.get('QUERY_STRING', '')}|".encode() + body
        ).hexdigest()
        with self._lock:
            attempt = self._seen[digest]
            self._seen[digest] += 1
        draw = random.Random(f"{self.seed}|{digest}|{attempt}")
        if draw.random() >= self.rate:
            return None
        kind = draw.choice(self.kinds)
        with self._lock:
            self.injected[kind] += 1
        if kind == "throttle":
            return Fault(400, "ThrottlingException", "Rate exceeded")
        if kind == "429":
            return Fault(429, "TooManyRequestsException", "Too many requests")
        if kind == "timeout":
            return Fault(503, "ServiceUnavailable", "late answer", delay_s=self.timeout_s)
        return Fault(
            int(kind), "InternalFailure" if kind == "500" else "ServiceUnavailable", "try again"
        )
