"""Savings never count hours a resource was billing again: another endpoint of the same name,
created after SageSaver deleted one (by a person or a pipeline, not by ``restore``), ends the
time off at its creation. Found by the model-based search (tests/pipelines/test_model_based.py)
with its recreate rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import time_machine

from sagesaver.core.savings import off_intervals
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, Simulator
from sagesaver.ledger import Outcome, SqliteLedger
from tests.conftest import Cli
from tests.pipelines import test_enforce_faults as faults
from tests.pipelines.test_enforce import announced_and_due
from tests.pipelines.test_enforce_faults import EAST, OLD, run

setup = faults.setup  # the fixture: a policy deleting after 24 h, a topic, a ledger


def test_an_endpoint_created_again_by_hand_ends_the_hours_saved(
    cli: Cli, sim: Simulator, fleet: Fleet, now: datetime, setup: dict[str, str]
) -> None:
    arn = fleet.endpoint(EAST, "doomed", changed=now - OLD)
    announced_and_due(sim, setup["ledger"], arn)
    with time_machine.travel(now, tick=False):
        code, doc = run(cli, setup)
    assert code == 0 and doc["enforcement"][0]["status"] == "done", doc

    back = now + timedelta(hours=10)  # a person creates it again, by hand
    from moto.sagemaker.models import sagemaker_backends

    sagemaker_backends[ACCOUNT_ID][EAST].endpoint_configs.pop("doomed-config", None)
    with time_machine.travel(back, tick=False):
        fleet.endpoint(EAST, "doomed", changed=back)
    later = now + timedelta(days=2)
    with time_machine.travel(later, tick=False):
        code, doc = run(cli, setup)
    assert code == 0, doc["errors"]
    ledger = SqliteLedger(Path(setup["ledger"]))
    [seen] = [e for e in ledger.entries() if e.action == "recreated"]
    assert (seen.resource, seen.status) == ("doomed", Outcome.CONFIRMED)
    assert abs((seen.at - back).total_seconds()) < 1  # its creation (AWS keeps milliseconds)
    [interval] = off_intervals(ledger.entries(), later)
    assert round(interval.hours, 3) == 10.0  # not 48: it billed again from its creation

    with time_machine.travel(later + timedelta(days=1), tick=False):
        run(cli, setup)  # seen again, not recorded again
    assert len([e for e in ledger.entries() if e.action == "recreated"]) == 1
