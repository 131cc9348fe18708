"""The simulator's HTTP front: connections kept open, requests timed."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sagesaver.demo.simulator import Simulator


def test_each_request_is_timed_with_the_added_latency_apart(sim: Simulator) -> None:
    sim.middleware.latency_s = 0.02
    client = sim.client("sagemaker", "us-east-1")
    client.list_endpoints()
    client.list_endpoints()
    client.list_notebook_instances()
    sim.middleware.latency_s = 0.0
    assert sim.middleware.settle()  # the server threads are done with the three requests
    # (an earlier test's last request may still be noted after the reset: only these count)
    served = {op: sim.middleware.served[op] for op in ("ListEndpoints", "ListNotebookInstances")}
    assert served["ListEndpoints"].requests == 2 == sim.middleware.counts["ListEndpoints"]
    assert served["ListNotebookInstances"].requests == 1
    for figures in served.values():
        assert figures.latency_s >= 0.02 * figures.requests  # slept at least that long
        # nested spans: the service and the latency happen inside the whole request
        assert 0 < figures.service_s <= figures.request_s - figures.latency_s
        assert figures.service_cpu_s <= figures.request_cpu_s
    sim.middleware.clear()
    assert not sim.middleware.served and not sim.middleware.counts


def test_request_lines_are_formatted_only_when_werkzeug_logs_them(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from werkzeug.serving import WSGIRequestHandler

    formatted: list[str] = []

    def counted(self: WSGIRequestHandler, code: int | str = "-", size: int | str = "-") -> None:
        formatted.append(str(int(code)))

    monkeypatch.setattr(WSGIRequestHandler, "log_request", counted)
    client = sim.client("sagemaker", "us-east-1")
    client.list_endpoints()
    assert sim.middleware.settle()
    assert formatted == []  # the simulator keeps werkzeug's logger at ERROR
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        client.list_endpoints()
        assert sim.middleware.settle()
    finally:
        logger.setLevel(level)
    assert formatted == ["200"]


def _counting_connections(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    handler = sim._server.RequestHandlerClass
    opened: list[int] = []
    setup = handler.setup

    def counted(self: object) -> None:
        opened.append(1)
        setup(self)

    monkeypatch.setattr(handler, "setup", counted)
    return opened


def test_a_client_keeps_its_connection_open_across_calls(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    opened = _counting_connections(sim, monkeypatch)
    client = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=sim.url)
    for _ in range(5):
        assert client.list_endpoints()["Endpoints"] == []
    client.list_endpoint_configs()
    assert len(opened) == 1  # werkzeug's own handler opened one per call
    assert sim.middleware.settle()
    assert sim.middleware.served["ListEndpoints"].requests == 5  # each request timed apart
    assert sim.middleware.served["ListEndpointConfigs"].requests == 1


def _raw(sim: Simulator, headers: dict[str, str], body: bytes) -> Any:
    import http.client

    host, port = sim.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    base = {
        "X-Amz-Target": "SageMaker.ListEndpoints",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/sagemaker/"
        "aws4_request, SignedHeaders=host, Signature=0",
    }
    return connection, {**base, **headers}, body


def test_requests_on_one_connection_and_those_that_close_it(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _counting_connections(sim, monkeypatch)
    connection, headers, body = _raw(sim, {}, b"{}")
    for _ in range(2):  # two answers on one open connection, each with its own length
        connection.request("POST", "/", body, headers)
        answer = connection.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read()) == {"Endpoints": []}
        assert answer.getheader("Connection") is None
    # asked to close: answered, then closed
    connection.request("POST", "/", body, {**headers, "Connection": "close"})
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Connection")) == (200, "close")
    assert json.loads(answer.read()) == {"Endpoints": []}
    connection.close()
    # a chunked body goes through werkzeug's own handling, which closes the connection
    connection, headers, _ = _raw(sim, {}, b"")
    connection.request("POST", "/", iter([b"{", b"}"]), headers, encode_chunked=True)
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Connection")) == (200, "close")
    assert json.loads(answer.read()) == {"Endpoints": []}
    connection.close()
    assert len(opened) == 2


def test_an_application_error_is_a_500_and_closes_the_connection(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    monkeypatch.setattr(sim.middleware, "app", failing)
    connection, headers, body = _raw(sim, {}, b"{}")
    connection.request("POST", "/", body, headers)
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Connection")) == (500, "close")
    answer.read()
    connection.close()
    monkeypatch.undo()
    assert sim.client("sagemaker", "us-east-1").list_endpoints()["Endpoints"] == []


def test_a_client_that_gives_up_waiting_leaves_the_server_serving(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ReadTimeoutError

    from sagesaver.demo.simulator import Fault

    slow = Fault(500, "InternalFailure", "slow", delay_s=1.0)
    monkeypatch.setattr(sim.middleware, "fault", lambda op, region, environ: slow)
    client = boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=sim.url,
        config=Config(read_timeout=0.2, retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ReadTimeoutError):
        client.list_endpoints()
    monkeypatch.setattr(sim.middleware, "fault", None)
    time.sleep(1.2)  # the server writes its late answer to a connection the client closed
    assert client.list_endpoints()["Endpoints"] == []
    assert sim.client("sagemaker", "us-east-1").list_endpoints()["Endpoints"] == []
