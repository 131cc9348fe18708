"""moto's routing and method lookup, remembered: the same answers for less CPU per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sagesaver.demo.wire import WsgiApp


def remember_method_names() -> None:
    """moto finds the method of an action by listing every function of the response class
    (``inspect.getmembers``, through the whole class hierarchy) for every request: 7 % of
    the simulator's CPU per ``DescribeEndpointConfig`` (py-spy, GIL holder). The list only changes
    when a class of the hierarchy gains or loses an attribute, so it is remembered per class
    and recomputed when the size of any of their ``__dict__`` changes (as when
    :func:`sagesaver.demo.behaviours.install_behaviours` adds an operation)."""
    from moto.core import responses, utils

    original = utils.method_names_from_class
    remembered: dict[type, tuple[tuple[int, ...], list[str]]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        if not isinstance(clazz, type):
            return original(clazz)
        sizes = tuple(len(vars(k)) for k in clazz.__mro__)
        found = remembered.get(clazz)
        if found is None or found[0] != sizes:
            found = (sizes, original(clazz))
            remembered[clazz] = found
        return list(found[1])

    setattr(responses, "method_names_from_class", method_names_from_class)  # noqa: B010


def remembering_dispatcher(create_app: Callable[[Any], Any]) -> WsgiApp:
    """moto's dispatcher of requests to its service apps, remembering which backend serves a
    host. moto finds it anew for every request, under one lock for the whole server: it lists
    its own package directory (``os.listdir`` and one ``stat`` per service, about 200) and
    tries its URL patterns, so concurrent requests wait for one another there. Both only
    depend on the host name and on the installed moto, so the first answer for a host is the
    answer for every later request to it."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class RememberingDispatcher(DomainDispatcherApplication):
        def __init__(self, create: Callable[[Any], Any]) -> None:
            super().__init__(create)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:  # moto calls this under its own lock
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    dispatcher: WsgiApp = RememberingDispatcher(create_app)
    return dispatcher
