"""The simulator's HTTP front: the dispatcher remembers moto's routing; requests are timed."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from sagesaver.demo.simulator import Simulator, _remembering_dispatcher

HOSTS = (
    "api.sagemaker.us-east-1.amazonaws.com",
    "monitoring.us-east-1.amazonaws.com",
    "api.sagemaker.eu-west-1.amazonaws.com",
    "tagging.us-east-1.amazonaws.com",
    "sagemaker",  # a moto module's own name
    "no-such-service.example",
    None,
)


def test_the_dispatcher_routes_as_moto_does_and_lists_moto_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_own = DomainDispatcherApplication(create_backend_app)
    expected = {host: moto_own.get_backend_for_host(host) for host in HOSTS}
    listed = []
    original = backends.list_of_moto_modules

    def counted() -> Iterable[str]:
        listed.append(1)
        return original()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    remembering = _remembering_dispatcher(create_backend_app)
    for _ in range(3):
        found = {host: remembering.get_backend_for_host(host) for host in HOSTS}  # type: ignore[attr-defined]
        assert found == expected
    assert expected["api.sagemaker.us-east-1.amazonaws.com"] == "sagemaker"
    assert expected["monitoring.us-east-1.amazonaws.com"] == "cloudwatch"
    # moto lists its modules for every host but the two it answers without (None, "moto_api")
    assert len(listed) <= len(HOSTS)


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
