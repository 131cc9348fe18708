"""The benchmarks' front of moto: routing and method lookup remembered, answers unchanged."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from benchmarks.fast_moto.front import remembering_dispatcher
from benchmarks.fast_moto.simulator import FastSimulator

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
    remembering = remembering_dispatcher(create_backend_app)
    for _ in range(3):
        found = {host: remembering.get_backend_for_host(host) for host in HOSTS}  # type: ignore[attr-defined]
        assert found == expected
    assert expected["api.sagemaker.us-east-1.amazonaws.com"] == "sagemaker"
    assert expected["monitoring.us-east-1.amazonaws.com"] == "cloudwatch"
    # moto lists its modules for every host but the two it answers without (None, "moto_api")
    assert len(listed) <= len(HOSTS)


def test_moto_finds_the_same_action_methods_and_sees_one_added_later(
    sim: FastSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core import responses, utils
    from moto.sagemaker.responses import SageMakerResponse

    remembered = vars(responses)["method_names_from_class"]
    assert remembered is not utils.method_names_from_class  # installed by the benchmarks' simulator
    expected = utils.method_names_from_class(SageMakerResponse)
    assert remembered(SageMakerResponse) == expected
    assert "describe_endpoint_config" in expected

    monkeypatch.setattr(SageMakerResponse, "zz_added_later", lambda self: None, raising=False)
    assert remembered(SageMakerResponse) == [*expected, "zz_added_later"]
    monkeypatch.undo()
    assert remembered(SageMakerResponse) == expected
    # and requests are still routed to their methods
    assert sim.client("sagemaker", "us-east-1").list_endpoints()["Endpoints"] == []
