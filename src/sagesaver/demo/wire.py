"""What the simulator reads of a request and how it writes an error: the operation asked for
(JSON target, RPC v2 path or query ``Action``), the region it was signed for, and a fault
answered in the request's own protocol (JSON, CBOR or XML)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import parse_qs

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_OPERATION_IN_PATH = re.compile(r"/operation/([A-Za-z0-9]+)$")


def operation_of(environ: Environ) -> str:
    """The AWS operation a request asks for (JSON target, RPC v2 path or query Action).

    Reads and restores the body for query-protocol requests.
    """
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    if target:
        return str(target).rsplit(".", 1)[-1]
    match = _OPERATION_IN_PATH.search(str(environ.get("PATH_INFO", "")))
    if match:
        return str(match.group(1))
    query: dict[str, list[str]] = parse_qs(str(environ.get("QUERY_STRING", "")))
    if "Action" in query:
        return query["Action"][0]
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form: dict[str, list[str]] = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"


_REGION_IN_AUTH = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


_SERVICE_OF_AUTH = re.compile(r"Credential=[^/]+/\d{8}/[a-z0-9-]+/([a-z0-9-]+)/")


def service_of(environ: Environ) -> str:
    """The service a request was signed for (``sagemaker``, ``monitoring``, ``ec2``...)."""
    match = _SERVICE_OF_AUTH.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return match.group(1) if match else ""


def region_of(environ: Environ) -> str:
    """The region a request was signed for (from its SigV4 credential scope)."""
    match = _REGION_IN_AUTH.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return match.group(1) if match else ""


@dataclass(frozen=True)
class Fault:
    """An error response to send instead of the real answer, after ``delay_s`` seconds.

    ``hang``: no answer at all, as behind a proxy or firewall that accepts the connection and
    never answers: the request is held until the simulator is reset (``Middleware.release``)
    or ``HANG_LIMIT_S`` has passed, long after any client gave up waiting.
    """

    status: int
    code: str
    message: str
    delay_s: float = 0.0
    hang: bool = False


FaultRule = Callable[[str, str, Environ], "Fault | None"]


def _cbor_text(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) < 24:
        return bytes([0x60 + len(data)]) + data
    if len(data) < 256:
        return bytes([0x78, len(data)]) + data
    return bytes([0x79]) + len(data).to_bytes(2, "big") + data


def error_body(environ: Environ, fault: Fault) -> tuple[str, bytes]:
    """The error response in the protocol the request used (JSON, CBOR or XML)."""
    if str(environ.get("HTTP_SMITHY_PROTOCOL", "")).startswith("rpc-v2-cbor"):
        fields = {"__type": fault.code, "message": fault.message}
        body = bytes([0xA0 + len(fields)]) + b"".join(
            _cbor_text(k) + _cbor_text(v) for k, v in fields.items()
        )
        return "application/cbor", body
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in str(environ.get("CONTENT_TYPE", "")):
        return "application/x-amz-json-1.1", json.dumps(
            {"__type": fault.code, "message": fault.message}
        ).encode()
    xml = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
        "<RequestId>fault</RequestId></ErrorResponse>"
    )
    if "ec2" in str(environ.get("HTTP_AUTHORIZATION", "")):
        xml = (
            f"<Response><Errors><Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            "</Error></Errors><RequestID>fault</RequestID></Response>"
        )
    return "text/xml", xml.encode()


def read_body(environ: Environ) -> bytes:
    """The request's body, read whole and put back for whoever reads it next."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


@dataclass
class Answer:
    """An HTTP answer, whole: status code, headers and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def send(self, start_response: StartResponse) -> list[bytes]:
        """Start the WSGI response with this answer (its ``Content-Length`` its body's)."""
        headers = [(k, v) for k, v in self.headers if k.lower() != "content-length"]
        reason = "OK" if self.status == 200 else "Error"
        start_response(
            f"{self.status} {reason}", [*headers, ("Content-Length", str(len(self.body)))]
        )
        return [self.body]

    def with_body(self, body: bytes) -> Answer:
        """The same answer with another body."""
        return Answer(self.status, self.headers, body)


def call(app: WsgiApp, environ: Environ) -> Answer:
    """Ask ``app`` (moto's server) for its answer to the request in ``environ``."""
    started: list[Any] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        started[:] = [status, list(headers)]
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = started
    return Answer(int(str(status).split(" ", 1)[0]), headers, body)


_SERVICE_IN_SCOPE = re.compile(r"(Credential=[^/]+/\d{8}/[a-z0-9-]+/)([a-z0-9-]+)(/)")
JSON_1_1 = "application/x-amz-json-1.1"


def request_for(
    environ: Environ, service: str, body: bytes, content_type: str, target: str | None = None
) -> Environ:
    """A request to ``service`` with the credentials and region of the request in ``environ``
    (moto routes by the credential scope, as the endpoint here is one address for all)."""
    made = {k: v for k, v in environ.items() if not k.startswith("HTTP_") or k == "HTTP_HOST"}
    made.update(
        REQUEST_METHOD="POST",
        PATH_INFO="/",
        QUERY_STRING="",
        CONTENT_TYPE=content_type,
        CONTENT_LENGTH=str(len(body)),
    )
    made["wsgi.input"] = io.BytesIO(body)
    made["HTTP_AUTHORIZATION"] = _SERVICE_IN_SCOPE.sub(
        rf"\g<1>{service}\g<3>", str(environ.get("HTTP_AUTHORIZATION", ""))
    )
    if target is not None:
        made["HTTP_X_AMZ_TARGET"] = target
    return made


def _timestamp(value: Any) -> float:
    """A time as the JSON protocols send it: seconds since the epoch (naive times are UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_dumps(payload: Any) -> bytes:
    """``payload`` in the JSON 1.1 protocol (times as epoch seconds)."""
    return json.dumps(payload, default=_timestamp).encode()


def json_answer(payload: Any, status: int = 200) -> Answer:
    """An answer in the JSON 1.1 protocol."""
    return Answer(status, [("Content-Type", JSON_1_1)], json_dumps(payload))


def error_answer(environ: Environ, code: str, message: str, status: int = 400) -> Answer:
    """An error in the protocol of the request in ``environ``."""
    content_type, body = error_body(environ, Fault(status, code, message))
    return Answer(status, [("Content-Type", content_type), ("x-amzn-ErrorType", code)], body)


class BehaviourRequest(Protocol):
    """What a behaviour module (``studio``, ``scaling``) needs of a request; the simulator's
    ``behaviours.Request`` has it."""

    operation: str
    environ: Environ

    @property
    def region(self) -> str: ...

    @property
    def account(self) -> str: ...

    def params(self) -> dict[str, Any]: ...

    def forward(self) -> Answer: ...

    def sagemaker(self, operation: str, params: dict[str, Any]) -> Answer: ...
