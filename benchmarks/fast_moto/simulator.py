"""The shipped simulator with the benchmarks' speed-ups of moto installed."""

from __future__ import annotations

from benchmarks.fast_moto import answer_writer, fast_serialization, indexed_cloudwatch, search
from benchmarks.fast_moto.flags import SPEEDUPS, SpeedUps
from benchmarks.fast_moto.front import remember_method_names, remembering_dispatcher
from sagesaver.demo.simulator import Simulator
from sagesaver.demo.wire import WsgiApp

_INSTALLED: list[bool] = []


def install_speedups() -> None:
    """Patch moto once in this process (what each patch does is switched by :data:`SPEEDUPS`,
    but for the remembered method lists and the paged Search, always on: the shipped
    simulator's own paging is off in a :class:`FastSimulator`)."""
    if _INSTALLED:
        return
    remember_method_names()
    indexed_cloudwatch.install()
    fast_serialization.install()
    answer_writer.install()
    search.install()
    _INSTALLED.append(True)


class FastSimulator(Simulator):
    """:class:`Simulator` whose moto routes each host once and may answer faster
    (``speedups``; reset turns them off again)."""

    def __init__(self) -> None:
        install_speedups()
        self.speedups: SpeedUps = SPEEDUPS
        super().__init__()
        self.behaviours.page_endpoint_search = False  # paged inside moto (fast_moto/search.py)

    def backend_app(self) -> WsgiApp:
        """moto's dispatcher, remembering which backend serves each host."""
        from moto.moto_server.werkzeug_app import create_backend_app

        return remembering_dispatcher(create_backend_app)

    def reset(self) -> None:
        """Forget every resource and count; both speed-ups off."""
        super().reset()
        self.behaviours.page_endpoint_search = False
        self.speedups.indexed_metrics = False
        self.speedups.fast_serialization = False
