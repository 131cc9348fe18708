"""A model-based search for wrongful deletions and lying ledgers (hypothesis stateful testing).

Random interleavings of ``run --apply`` (some killed at a step of a deletion, some under
transient AWS faults), time passing, and what people do meanwhile (invoke an endpoint,
protect it, postpone its deadline, redeploy it). The model knows what people did; at the
moment the simulator receives each ``DeleteEndpoint`` it checks that the endpoint may go:

- not protected, not postponed, not redeployed after its announcement;
- not invoked since its announcement nor within ``idle_hours``;
- announced by a digest that was sent (a message id), at least the grace period before.

After every run that was not killed: no traceback (the JSON document came out), no expired
lease left open, and every endpoint gone from AWS has exactly one ``delete`` entry in the
ledger once a run has had the chance to recover it.

``make test`` runs a small fixed-seed budget; ``make test-deep`` (``SAGESAVER_DEEP=1``) a long
random search.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from sagesaver.core.grace import SCHEDULED_TAG, announcement_key, tag_value
from sagesaver.core.model import Kind, Resource
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, Simulator, TransientFaults
from sagesaver.ledger import DELETE_SENT, open_ledger
from sagesaver.pipelines import acts
from tests.conftest import Cli

EAST = "us-east-1"
NAMES = ("ep-a", "ep-b", "ep-c")
GRACE_HOURS = 24
IDLE_HOURS = 2
PROTECT = "sagesaver:protect"
DEEP = bool(os.environ.get("SAGESAVER_DEEP"))
# What the search reached (a search that never deleted anything would prove nothing).
REACHED = {"runs": 0, "deletions": 0, "refusals": 0}


class Killed(BaseException):
    """The run's process dies here."""


def _backend() -> Any:
    from moto.backends import get_backend

    return get_backend("sagemaker")[ACCOUNT_ID][EAST]


class Deletions(RuleBasedStateMachine):
    """The fleet, the people, and the runs (module docstring)."""

    def __init__(self, sim: Simulator, cli: Cli, folder: Path) -> None:
        super().__init__()
        sim.reset()
        self.sim, self.cli = sim, cli
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.fleet = Fleet(sim)
        topic = self.fleet.topic(EAST, "admins")
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        self.ledger_path = str(folder / "ledger.sqlite")
        self.policy = folder / "policy.yaml"
        self.policy.write_text(
            f"endpoints: {{action: delete, grace_hours: {GRACE_HOURS}, idle_hours: {IDLE_HOURS},"
            f" max_actions_per_run: 3}}\nnotify: {{sns_topic_arn: '{topic}'}}\n"
        )
        self.arns: dict[str, str] = {}
        self.created: dict[str, datetime] = {}
        self.invoked: dict[str, list[datetime]] = {n: [] for n in NAMES}
        self.protected: set[str] = set()
        self.postponed: dict[str, datetime] = {}
        self.redeployed: dict[str, datetime] = {}
        self.violations: list[str] = []
        self.last_kill: datetime | None = None
        self.faults: TransientFaults | None = None
        self.seed = 0
        for name in NAMES:
            self.arns[name] = self.fleet.endpoint(EAST, name, changed=self.now - timedelta(days=5))
            self.created[name] = _backend().endpoints[name].creation_time
        sim.middleware.fault = self._hook

    # --- what the simulator sees -------------------------------------------------------

    def _hook(self, operation: str, region: str, environ: dict[str, Any]) -> Any:
        if operation == "DeleteEndpoint":
            import io

            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            name = json.loads(body or b"{}").get("EndpointName", "")
            if name in _backend().endpoints:
                self._check_deletion(name, datetime.now(timezone.utc))
        return self.faults(operation, region, environ) if self.faults else None

    def _check_deletion(self, name: str, at: datetime) -> None:
        endpoint = _backend().endpoints[name]
        created = endpoint.creation_time
        created = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
        resource = Resource(
            Kind.ENDPOINT, name, self.arns[name], EAST, ACCOUNT_ID, "InService", created, created
        )
        key = announcement_key(resource)
        told = open_ledger(self.ledger_path).announcements([key]).get(key)
        wrong = []
        if name in self.protected:
            wrong.append("protected")
        if self.postponed.get(name, at) > at:
            wrong.append("postponed")
        if told is None or not told.delivered:
            wrong.append("no delivered digest announced it")
        else:
            if told.at + timedelta(hours=GRACE_HOURS) > at:
                wrong.append("announced less than the grace period before")
            if self.redeployed.get(name, told.at) > told.at:
                wrong.append("redeployed after its announcement")
            since = min(told.at, at - timedelta(hours=IDLE_HOURS))
            if any(t >= since for t in self.invoked[name]):
                wrong.append("invoked since its announcement or within idle_hours")
        if wrong:
            self.violations.append(f"{name} deleted at {at}: {', '.join(wrong)}")

    @initialize()
    def first_run_announces(self) -> None:
        """Every case starts where the endpoints have been announced (5 days idle)."""
        self.run(faulty=False)

    # --- time, and what people do ------------------------------------------------------

    @rule(hours=st.sampled_from([25, 12, 3, 1]))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    def _alive(self, name: str) -> bool:
        """True when the endpoint is there; people take ten minutes to do anything."""
        self.now += timedelta(minutes=10)
        return name in _backend().endpoints

    @rule(name=st.sampled_from(NAMES))
    def invoke(self, name: str) -> None:
        if self._alive(name):
            moment = self.now - timedelta(minutes=1)
            self.fleet.invocations(EAST, name, "AllTraffic", [(moment, 3)])
            self.invoked[name].append(moment)
            self.postponed.pop(name, None)  # used again: any announcement is void, and so its
            # postponement (SageSaver announces afresh, with a new deadline)

    @rule(name=st.sampled_from(NAMES))
    def protect(self, name: str) -> None:
        if self._alive(name):
            self.sim.client("sagemaker", EAST).add_tags(
                ResourceArn=self.arns[name], Tags=[{"Key": PROTECT, "Value": "true"}]
            )
            self.protected.add(name)

    @rule(name=st.sampled_from(NAMES), days=st.sampled_from([1, 3]))
    def postpone(self, name: str, days: int) -> None:
        if self._alive(name):
            until = self.now + timedelta(days=days)
            self.sim.client("sagemaker", EAST).add_tags(
                ResourceArn=self.arns[name],
                Tags=[{"Key": SCHEDULED_TAG, "Value": tag_value("delete", until)}],
            )
            self.postponed[name] = until.replace(microsecond=0)

    @rule(name=st.sampled_from(NAMES))
    def redeploy(self, name: str) -> None:
        if self._alive(name):
            _backend().endpoints[name].last_modified_time = self.now.replace(tzinfo=None)
            self.redeployed[name] = self.now
            self.postponed.pop(name, None)  # as for an invocation

    # --- the runs ------------------------------------------------------------------------

    def _args(self) -> list[str]:
        return [
            "run", "--region", EAST, "--policy", str(self.policy),
            "--ledger", self.ledger_path, "--apply", "--output", "json",
        ]  # fmt: skip

    @rule(faulty=st.booleans())
    def run(self, faulty: bool) -> None:
        # server errors (throttling and time-outs cost seconds of back-off: the deep search)
        kinds = TransientFaults.KINDS if DEEP else ("500", "503")
        self.faults = TransientFaults(0.15, seed=self.seed, kinds=kinds) if faulty else None
        self.seed += 1
        try:
            # botocore's adaptive retry refills its token bucket as time passes: a throttled
            # run needs a clock that ticks
            with time_machine.travel(self.now, tick=faulty):
                result = self.cli(*self._args())
        finally:
            self.faults = None
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert result.stdout.strip(), result.stderr  # a document, never a traceback alone
        steps = json.loads(result.stdout).get("enforcement", [])
        REACHED["runs"] += 1
        REACHED["deletions"] += sum(1 for s in steps if s["outcome"].startswith("deleted"))
        REACHED["refusals"] += sum(1 for s in steps if s["outcome"].startswith("skipped"))
        self._check_quiet()

    @rule(hours=st.sampled_from([25, 49]), faulty=st.booleans())
    def run_a_day_later(self, hours: int, faulty: bool) -> None:
        """The daily run: past the announced deadlines, where deletions happen."""
        self.time_passes(hours)
        self.run(faulty)

    @rule(state=st.sampled_from(["backed-up", DELETE_SENT, "done"]))
    def run_killed(self, state: str) -> None:
        real = acts._advance
        real_record = acts.record_done

        def advance(ctx: Any, key: str, reached: str, backup_id: str | None = None) -> None:
            if reached == state:
                raise Killed
            real(ctx, key, reached, backup_id)

        def record(*args: Any, **kwargs: Any) -> str:
            if state == "done":
                raise Killed  # after the delete, before its entry
            return real_record(*args, **kwargs)

        with pytest.MonkeyPatch.context() as patch, time_machine.travel(self.now, tick=False):
            patch.setattr(acts, "_advance", advance)
            patch.setattr(acts, "record_done", record)
            patch.setattr(acts, "_release", lambda *args: None)  # a dead process cleans nothing
            try:
                self.cli.runner.invoke(_app(), self._args(), catch_exceptions=False)
            except Killed:
                self.last_kill = self.now

    def _check_quiet(self) -> None:
        ledger = open_ledger(self.ledger_path)
        expired = [lease for lease in ledger.open_leases() if lease.expires <= self.now]
        assert not expired, expired
        if self.last_kill is not None and self.now < self.last_kill + acts.LEASE:
            return  # a killed run's lease has not expired yet: not recovered before then
        entries = ledger.entries()
        acting = {lease.subject.get("name") for lease in ledger.open_leases()}
        for name in NAMES:
            if name in _backend().endpoints or name in acting:
                continue  # still there, or its deletion's outcome is not known yet
            deletes = [
                e for e in entries if e.resource == name and e.action == "delete" and e.carried_out
            ]
            assert len(deletes) == 1, (name, deletes)  # exactly one record of the deletion

    @invariant()
    def nothing_deleted_wrongly(self) -> None:
        assert not self.violations, self.violations


def _app() -> Any:
    from sagesaver.cli import app

    return app


@pytest.mark.slow
def test_no_interleaving_deletes_wrongly_or_loses_a_record(
    sim: Simulator, cli: Cli, tmp_path: Path
) -> None:
    budget = settings(
        max_examples=300 if DEEP else 16,
        stateful_step_count=30 if DEEP else 6,
        deadline=None,
        derandomize=not DEEP,
        suppress_health_check=list(HealthCheck),
    )
    REACHED.update(runs=0, deletions=0, refusals=0)
    run_state_machine_as_test(lambda: Deletions(sim, cli, tmp_path / "case"), settings=budget)
    assert REACHED["deletions"] > 0 and REACHED["refusals"] > 0, REACHED
