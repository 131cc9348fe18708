"""The simulator's HTTP server: moto's request handler keeping connections open, as AWS and
boto3 do, and timing each request whole."""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from sagesaver.demo.middleware import OPERATION_KEY, Middleware, Served


def request_handler(middleware: Middleware) -> Any:
    """moto's request handler, keeping connections open and timing each request.

    werkzeug's development server closes the connection after every answer (it cannot tell
    the end of a request body from the next request), so every call paid a TCP connection,
    and the server a new thread, on top of what it asked for: measured with 3,000
    ``DescribeEndpointConfig`` calls on 16 threads, 1.9-2.1 ms of the simulator's CPU per call
    against 1.2-1.3 ms kept open, and 1.6-1.7 against 1.3-1.5 ms of the client's. AWS keeps
    connections open, and so does boto3. Here a request whose body has a ``Content-Length``
    is read whole before the application sees it, and its answer is sent with its own
    length, so the connection can carry the next request; anything else (a chunked body,
    ``Expect``, ``HEAD``) goes through werkzeug's own handling, which closes it."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.exceptions import InternalServerError

    werkzeug_log = logging.getLogger("werkzeug")

    class TimedRequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave in one write anyway

        def handle_one_request(self) -> None:
            self.environ = {}  # the request's, once werkzeug or run_wsgi has made it
            self._started: tuple[float, float] | None = None
            super().handle_one_request()
            operation = self.environ.get(OPERATION_KEY)
            if operation is not None and self._started is not None:
                wall, cpu = self._started
                middleware.note(
                    str(operation),
                    Served(
                        requests=1,
                        request_s=time.perf_counter() - wall,
                        request_cpu_s=time.thread_time() - cpu,
                    ),
                )

        def parse_request(self) -> bool:
            # the request line has arrived: from here on the request is being served (the
            # wait for it on an open connection is not)
            self._started = time.perf_counter(), time.thread_time()
            return bool(super().parse_request())

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # werkzeug formats each request's line (its path decoded, a date) before its
            # logger drops it: 16 % of the simulator's CPU per DescribeEndpointConfig.
            if werkzeug_log.isEnabledFor(logging.INFO):
                super().log_request(code, size)

        def run_wsgi(self) -> None:
            length = self.headers.get("Content-Length")
            if (
                self.command == "HEAD"
                or self.headers.get("Transfer-Encoding")
                or self.headers.get("Expect")
                or (length is not None and not length.isdigit())
            ):
                self.close_connection = True
                super().run_wsgi()
                return
            self.environ = environ = self.make_environ()
            size = int(length or 0)
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(size) if size else b"")
            answered: list[Any] = []
            chunks: list[bytes] = []

            def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                answered[:] = [status, headers]
                return chunks.append

            try:
                answer = self.server.app(environ, start_response)
                try:
                    chunks.extend(answer)
                finally:
                    close = getattr(answer, "close", None)
                    if close is not None:
                        close()
            except Exception:  # as werkzeug does: a 500, the error logged, then closed
                werkzeug_log.exception("Error on request")
                self.close_connection = True
                chunks.clear()
                chunks.extend(InternalServerError()(environ, start_response))
            body = b"".join(chunks)
            status, headers = answered
            code, _, reason = str(status).partition(" ")
            try:
                self.send_response(int(code), reason)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self._headers_buffer.append(b"\r\n" + body)
                self.flush_headers()
            except OSError:  # the client gave up (a read time-out) and closed its end
                self.close_connection = True

    return TimedRequestHandler
