"""A model-based search for wrongful deletions and lying ledgers (hypothesis stateful testing).

Random interleavings of ``run --apply`` with either of two ledgers (the deployment's, and
another operator's), the Lambda handler on the deployment's ledger (some invocations retried
with the same request id, as Lambda retries), runs killed at a step of a deletion, transient
AWS faults, time passing, and what people do meanwhile (invoke an endpoint, protect it,
postpone its deadline, redeploy it, edit its other tags, delete it and create another of the
same name). The model knows what people did; at the moment the simulator receives each
``DeleteEndpoint`` it checks that the endpoint may go:

- not protected, not postponed, not redeployed after its announcement;
- not invoked since its announcement nor within ``idle_hours``;
- announced by a digest that was sent (a message id), at least the grace period before.

After every run that was not killed: no traceback (the JSON document came out, or the
handler's documented RunFailed), no expired lease left open in the ledger it used, every
deletion SageSaver made has exactly one ``delete`` entry carried out, across both ledgers,
once a run has had the chance to recover it, and the hours off the ledgers claim never exceed
the hours the endpoints were really gone.

A schedule parks two more endpoints at its stop (21:00 UTC) and brings them back 20 minutes
before its start (07:00): an asynchronous one by taking its instances to 0 (its scalable
target's bounds kept in a snapshot), a real-time one by backup and deletion; its ticks run on
the deployment's ledger, with the same faults, while people use and protect those endpoints
too. Checked: an endpoint is never lost (it is up, or the ledger holds the park or deletion
that took it, with the backup or snapshot that brings it back); none parked by scaling is
ever deleted by a run on that ledger; a protected endpoint, or one used within the park's
``quiet_minutes``, is never parked; and the hours the ledgers count (parks included) never
exceed the hours an endpoint was really gone or at 0 instances.

``make test`` runs a small fixed-seed budget; ``make test-deep`` (``SAGESAVER_DEEP=1``) a long
random search (300 cases of 30 steps; ``SAGESAVER_DEEP_EXAMPLES`` sets the number of cases).
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
    precondition,
    rule,
    run_state_machine_as_test,
)

from sagesaver.aws.session import Aws
from sagesaver.core.grace import SCHEDULED_TAG, announcement_key, tag_value
from sagesaver.core.model import Kind, Resource
from sagesaver.core.policy import parse_policy
from sagesaver.core.rules.parking import parked
from sagesaver.core.savings import off_intervals
from sagesaver.demo.simulator import ACCOUNT_ID, Fleet, Simulator, TransientFaults, VariantSpec
from sagesaver.lambda_handlers import RunFailed, idle_endpoints
from sagesaver.ledger import DELETE_SENT, open_ledger
from sagesaver.pipelines import acts
from sagesaver.pipelines.schedules import schedule_run
from tests.conftest import Cli

EAST = "us-east-1"
NAMES = ("ep-a", "ep-b", "ep-c")
# The schedule's: an asynchronous endpoint (parked by its instances) and a real-time one
# (parked by backup and deletion).
QUEUE, PLAIN = "dev-q", "dev-r"
PARKED = (QUEUE, PLAIN)
ALL = NAMES + PARKED
QUIET_MINUTES = 30  # the schedule's default quiet_minutes
SCHEDULE = """schedules:
  nightly:
    timezone: UTC
    periods: [{weekdays: mon-sun, begin: "07:00", end: "21:00"}]
    name_contains: dev-
    resources: [endpoints]
"""
GRACE_HOURS = 24
IDLE_HOURS = 2
PROTECT = "sagesaver:protect"
DEEP = bool(os.environ.get("SAGESAVER_DEEP"))
# The deep search's number of cases (SAGESAVER_DEEP_EXAMPLES), 300 unless told.
DEEP_EXAMPLES = int(os.environ.get("SAGESAVER_DEEP_EXAMPLES") or 300)
# The deployment's ledger (its Lambda and its operators' CLI), and another operator's.
LEDGERS = ("deployed", "other")
# What the search reached (a search that never deleted anything would prove nothing).
REACHED = {
    "runs": 0, "deletions": 0, "refusals": 0, "lambda": 0, "recreated": 0, "killed": 0,
    "parks": 0, "unparks": 0, "park-refusals": 0,
}  # fmt: skip


class _Invocation:
    """A Lambda context: its request id (a retry repeats it) and 15 minutes left."""

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


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
        self.ledgers = {key: str(folder / f"ledger-{key}.sqlite") for key in LEDGERS}
        self.acting = LEDGERS[0]  # the ledger of the run going on
        self.policy = folder / "policy.yaml"
        self.policy.write_text(
            f"endpoints: {{action: delete, grace_hours: {GRACE_HOURS}, idle_hours: {IDLE_HOURS},"
            f" max_actions_per_run: 3}}\nnotify: {{sns_topic_arn: '{topic}'}}\n{SCHEDULE}"
        )
        # Each endpoint SageSaver deleted: (name, when it was gone, when one came back, and
        # which run: "idle" or "park").
        self.gone: list[list[Any]] = []
        # Each time the queue ran 0 instances: (since, until).
        self.zero: list[list[Any]] = []
        self.mode = "idle"
        self.request = 0
        self.arns: dict[str, str] = {}
        self.created: dict[str, datetime] = {}
        self.invoked: dict[str, list[datetime]] = {n: [] for n in ALL}
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
        old = self.now - timedelta(days=5)
        self.arns[QUEUE] = self.fleet.endpoint(
            EAST, QUEUE, [VariantSpec("AllTraffic", "ml.m5.large", 2)], changed=old,
            asynchronous=True,
        )  # fmt: skip
        sim.client("application-autoscaling", EAST).register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=f"endpoint/{QUEUE}/variant/AllTraffic",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
            MinCapacity=1,
            MaxCapacity=4,
        )
        self.arns[PLAIN] = self.fleet.endpoint(EAST, PLAIN, changed=old)
        for name in PARKED:
            self.created[name] = _backend().endpoints[name].creation_time
        sim.middleware.fault = self._hook

    # --- what the simulator sees -------------------------------------------------------

    def _hook(self, operation: str, region: str, environ: dict[str, Any]) -> Any:
        fault = self.faults(operation, region, environ) if self.faults else None
        if operation in ("DeleteEndpoint", "UpdateEndpointWeightsAndCapacities"):
            import io

            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            asked = json.loads(body or b"{}")
            name = asked.get("EndpointName", "")
            at = datetime.now(timezone.utc)
            if operation == "UpdateEndpointWeightsAndCapacities":
                wanted = asked.get("DesiredWeightsAndCapacities") or []
                if any(w.get("DesiredInstanceCount") == 0 for w in wanted):
                    self._check_park(name, at)
            elif name in _backend().endpoints:
                if self.mode == "park":
                    self._check_park(name, at)
                else:
                    self._check_deletion(name, at)
                if fault is None:  # it reaches the simulator: deleted now
                    self.gone.append([name, at, None, self.mode])
        return fault

    def _check_park(self, name: str, at: datetime) -> None:
        """A park (instances to 0, or a deletion at a stop) of a protected endpoint, or of
        one used within the schedule's quiet_minutes, is wrong."""
        wrong = []
        if name in self.protected:
            wrong.append("protected")
        if any(t >= at - timedelta(minutes=QUIET_MINUTES) for t in self.invoked[name]):
            wrong.append(f"used within quiet_minutes ({QUIET_MINUTES})")
        if wrong:
            self.violations.append(f"{name} parked at {at}: {', '.join(wrong)}")

    def _check_deletion(self, name: str, at: datetime) -> None:
        endpoint = _backend().endpoints[name]
        created = endpoint.creation_time
        created = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
        resource = Resource(
            Kind.ENDPOINT, name, self.arns[name], EAST, ACCOUNT_ID, "InService", created, created
        )
        key = announcement_key(resource)
        ledger = open_ledger(self.ledgers[self.acting])
        told = ledger.announcements([key]).get(key)
        wrong = []
        held = parked(ledger.entries()).get((ACCOUNT_ID, EAST, name))
        if held is not None and "-scaled-" in (held.backup_id or ""):
            wrong.append("parked by scaling in the ledger of the run")
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

    @rule(name=st.sampled_from(NAMES), value=st.sampled_from(["ml", "research"]))
    def edit_other_tags(self, name: str, value: str) -> None:
        """A tag SageSaver does not read changes: nothing of its decision does."""
        if self._alive(name):
            self.sim.client("sagemaker", EAST).add_tags(
                ResourceArn=self.arns[name], Tags=[{"Key": "team", "Value": value}]
            )

    @precondition(lambda self: any(name not in _backend().endpoints for name in ALL))
    @rule(data=st.data())
    def recreate(self, data: st.DataObject) -> None:
        """Someone creates another endpoint of a name SageSaver deleted: the new one is judged
        on its own, never deleted on the old one's announcement, and the hours saved end at its
        creation. (Only a name that is free: an endpoint created and deleted again by hand
        between two runs is one no run can see, and its hours cannot be told apart.)"""
        backend = _backend()
        name = data.draw(st.sampled_from([n for n in ALL if n not in backend.endpoints]))
        self.now += timedelta(minutes=10)
        backend.endpoint_configs.pop(f"{name}-config", None)
        with time_machine.travel(self.now, tick=False):
            self.fleet.endpoint(EAST, name, changed=self.now)
        for record in self.gone:
            if record[0] == name and record[2] is None:
                record[2] = self.now  # billing again from now
        self.created[name] = backend.endpoints[name].creation_time
        self.protected.discard(name)
        self.postponed.pop(name, None)
        self.redeployed.pop(name, None)
        REACHED["recreated"] += 1

    @rule(name=st.sampled_from(NAMES))
    def redeploy(self, name: str) -> None:
        if self._alive(name):
            _backend().endpoints[name].last_modified_time = self.now.replace(tzinfo=None)
            self.redeployed[name] = self.now
            self.postponed.pop(name, None)  # as for an invocation

    @rule(name=st.sampled_from(PARKED))
    def use_parked(self, name: str) -> None:
        """A request to one of the schedule's endpoints: the queue's waits in its backlog."""
        if self._alive(name):
            moment = self.now - timedelta(minutes=1)
            if name == QUEUE:
                dimensions = {"EndpointName": name}
                self.fleet.metric(EAST, "ApproximateBacklogSize", dimensions, [(moment, 3)])
            else:
                self.fleet.invocations(EAST, name, "AllTraffic", [(moment, 3)])
            self.invoked[name].append(moment)
            self.postponed.pop(name, None)

    @rule(name=st.sampled_from(PARKED))
    def protect_parked(self, name: str) -> None:
        self.protect(name)

    # --- the runs ------------------------------------------------------------------------

    def _next(self, hour: int, minute: int) -> datetime:
        moment = self.now.replace(hour=hour, minute=minute, second=0)
        return moment if moment > self.now else moment + timedelta(days=1)

    @rule(boundary=st.sampled_from(["stop", "start", "night"]), faulty=st.booleans())
    def schedule_tick(self, boundary: str, faulty: bool) -> None:
        """The schedule's tick at its next stop (21:00), 20 minutes before its next start, or
        both in turn (a night), on the deployment's ledger: endpoints parked or brought
        back."""
        for stop in {"stop": [True], "start": [False], "night": [True, False]}[boundary]:
            self._tick(stop, faulty)

    def _tick(self, stop: bool, faulty: bool) -> None:
        self.now = self._next(21, 0) if stop else self._next(6, 40)
        self.acting, self.mode = LEDGERS[0], "park"
        self._faults(faulty)
        policy = parse_policy(self.policy.read_text())
        try:
            with time_machine.travel(self.now, tick=faulty):
                result = schedule_run(
                    Aws(), [EAST], policy, self.now, True, open_ledger(self.ledgers[self.acting]),
                    unpark_wait_minutes=0.05,
                )  # fmt: skip
        finally:
            self.faults, self.mode = None, "idle"
        for row in result.parking.rows:
            if row.applied:
                REACHED["parks" if row.action == "park" else "unparks"] += 1
            elif row.action == "park" and "kept up" in row.outcome:
                REACHED["park-refusals"] += 1
        self._observe()
        self._check_quiet()
        self._check_never_lost()

    def _observe(self) -> None:
        """What the tick changed for real: the queue at 0 instances or not, an endpoint the
        park deleted back (restored)."""
        backend = _backend()
        for record in self.gone:
            if record[2] is None and record[0] in backend.endpoints:
                record[2] = self.now
                self.created[record[0]] = backend.endpoints[record[0]].creation_time
        if QUEUE not in backend.endpoints:
            counts = [1]
        else:
            described = self.sim.client("sagemaker", EAST).describe_endpoint(EndpointName=QUEUE)
            counts = [v.get("CurrentInstanceCount", 1) for v in described["ProductionVariants"]]
        open_zero = self.zero and self.zero[-1][1] is None
        if not any(counts) and not open_zero:
            self.zero.append([self.now, None])
        elif any(counts) and open_zero:
            self.zero[-1][1] = self.now

    def _check_never_lost(self) -> None:
        """Each of the schedule's endpoints is up, or the ledger holds the park or deletion
        that took it with its backup; one parked by scaling is up (its snapshot kept)."""
        backend = _backend()
        ledger = open_ledger(self.ledgers[LEDGERS[0]])
        entries = ledger.entries()
        held = parked(entries)
        for name in PARKED:
            park = held.get((ACCOUNT_ID, EAST, name))
            backup = park.backup_id if park is not None else None
            if backup is not None and "-scaled-" in backup:
                assert name in backend.endpoints, f"{name} parked by scaling, and gone"
                snapshots = ledger.backups(f"{name}:scaled", EAST)
                assert backup in {b.id for b in snapshots}, (name, backup)
                continue
            if name in backend.endpoints:
                continue
            if park is not None:
                assert backup in {b.id for b in ledger.backups(name, EAST)}, (name, backup)
                continue
            # not parked: deleted by an idle run, with its backup in that run's ledger
            kept = {
                e.backup_ref
                for path in self.ledgers.values()
                for e in open_ledger(path).entries()
                if e.resource == name and e.action == "delete" and e.carried_out
            }
            stored = {
                b.id for path in self.ledgers.values() for b in open_ledger(path).backups(name)
            }
            assert kept & stored or name in self._leased(), (name, kept, stored)

    def _leased(self) -> set[str]:
        return {
            str(lease.subject.get("name"))
            for path in self.ledgers.values()
            for lease in open_ledger(path).open_leases()
        }

    def _args(self) -> list[str]:
        return [
            "run", "--region", EAST, "--policy", str(self.policy),
            "--ledger", self.ledgers[self.acting], "--apply", "--output", "json",
        ]  # fmt: skip

    def _faults(self, faulty: bool) -> None:
        # server errors (throttling and time-outs cost seconds of back-off: the deep search)
        kinds = TransientFaults.KINDS if DEEP else ("500", "503")
        self.faults = TransientFaults(0.15, seed=self.seed, kinds=kinds) if faulty else None
        self.seed += 1

    @rule(faulty=st.booleans(), retry=st.booleans())
    def lambda_run(self, faulty: bool, retry: bool) -> None:
        """The deployed function, on the deployment's ledger; ``retry``: Lambda invokes it
        again with the request id of the previous invocation."""
        if not retry or not self.request:
            self.request += 1
        self.acting = LEDGERS[0]
        self._faults(faulty)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SAGESAVER_POLICY", self.policy.read_text())
            patch.setenv("SAGESAVER_REGIONS", EAST)
            patch.setenv("SAGESAVER_APPLY", "true")
            patch.setenv("SAGESAVER_LEDGER", self.ledgers[self.acting])
            try:
                with time_machine.travel(self.now, tick=faulty):
                    idle_endpoints({}, _Invocation(f"request-{self.request}"))
            except RunFailed:
                pass  # the handler's way to say some part failed, after recording everything
            finally:
                self.faults = None
        REACHED["lambda"] += 1
        self._check_quiet()

    @rule(faulty=st.booleans(), ledger=st.sampled_from(LEDGERS))
    def run(self, faulty: bool, ledger: str = LEDGERS[0]) -> None:
        self.acting = ledger
        self._faults(faulty)
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

    @rule(
        state=st.sampled_from(["backed-up", DELETE_SENT, "done"]), ledger=st.sampled_from(LEDGERS)
    )
    def run_killed(self, state: str, ledger: str) -> None:
        self.acting = ledger
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

    @rule(
        at=st.integers(min_value=1, max_value=60),
        after=st.booleans(),
        ledger=st.sampled_from(LEDGERS),
    )
    def run_killed_at_a_call(self, at: int, after: bool, ledger: str) -> None:
        """The process dies at its ``at``-th AWS or ledger call, as it is made or once it
        returned: anywhere, not only between the steps of a deletion."""
        from botocore.client import BaseClient

        from sagesaver.ledger import SqliteLedger

        self.acting = ledger
        calls = [0]

        def dies(real: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                calls[0] += 1
                if calls[0] == at and not after:
                    raise Killed
                answer = real(*args, **kwargs)
                if calls[0] == at:
                    raise Killed
                return answer

            return call

        writes = ("record", "take_lease", "advance_lease", "save_backup", "record_announcement")
        with pytest.MonkeyPatch.context() as patch, time_machine.travel(self.now, tick=False):
            patch.setattr(BaseClient, "_make_api_call", dies(BaseClient._make_api_call))
            for method in writes:
                patch.setattr(SqliteLedger, method, dies(getattr(SqliteLedger, method)))
            patch.setattr(acts, "_release", lambda *args: None)  # a dead process cleans nothing
            try:
                self.cli.runner.invoke(_app(), self._args(), catch_exceptions=False)
            except Killed:
                self.last_kill = self.now
                REACHED["killed"] += 1

    def _check_quiet(self) -> None:
        ledger = open_ledger(self.ledgers[self.acting])
        expired = [lease for lease in ledger.open_leases() if lease.expires <= self.now]
        assert not expired, expired
        if self.last_kill is not None and self.now < self.last_kill + acts.LEASE:
            return  # a killed run's lease has not expired yet: not recovered before then
        ledgers = [open_ledger(path) for path in self.ledgers.values()]
        acting = {lease.subject.get("name") for led in ledgers for lease in led.open_leases()}
        entries = [e for led in ledgers for e in led.entries()]
        for name in ALL:
            if name in acting:
                continue  # its deletion's outcome is not known yet (a lease not resolved)
            deletes = [
                e for e in entries if e.resource == name and e.action == "delete" and e.carried_out
            ]
            made = [g for g in self.gone if g[0] == name and g[3] == "idle"]
            assert len(deletes) == len(made), (name, deletes, made)  # one record per deletion
            parks = [
                e
                for e in entries
                if e.resource == name
                and e.action == "park"
                and e.carried_out
                and "-scaled-" not in (e.backup_ref or "")
            ]
            made = [g for g in self.gone if g[0] == name and g[3] == "park"]
            assert len(parks) == len(made), (name, parks, made)  # one park per park deletion
        self._check_savings()

    def _check_savings(self) -> None:
        """The hours off the ledgers claim never exceed the hours really gone (a few minutes
        allowed: an entry is dated at its run's start, the delete comes seconds later)."""
        claimed = {name: 0.0 for name in ALL}
        for path in self.ledgers.values():
            ledger = open_ledger(path)
            for interval in off_intervals(ledger.entries(), self.now, seen=ledger.seen()):
                claimed[interval.entry.resource] += interval.hours
        for name in ALL:
            real = sum(
                ((back or self.now) - at).total_seconds() / 3600
                for gone, at, back, _ in self.gone
                if gone == name
            )
            if name == QUEUE:  # its instances at 0 cost nothing either
                real += sum(
                    ((until or self.now) - since).total_seconds() / 3600
                    for since, until in self.zero
                )
            assert claimed[name] <= real + 0.25, (name, claimed[name], real)

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
        max_examples=DEEP_EXAMPLES if DEEP else 16,
        stateful_step_count=30 if DEEP else 7,
        deadline=None,
        derandomize=not DEEP,
        suppress_health_check=list(HealthCheck),
    )
    REACHED.update(dict.fromkeys(REACHED, 0))
    run_state_machine_as_test(lambda: Deletions(sim, cli, tmp_path / "case"), settings=budget)
    # The short fixed-seed budget deletes, refuses and runs the Lambda; the deep search takes
    # every kind of step (a recreation needs a deletion first; tests/pipelines/
    # test_savings_truth.py and test_enforce_faults.py cover recreation and kills directly).
    wanted = (
        set(REACHED) if DEEP else {"runs", "deletions", "refusals", "lambda", "parks", "unparks"}
    )
    assert {key for key, count in REACHED.items() if count} >= wanted, REACHED


@pytest.mark.slow
def test_the_park_invariants_hold_on_a_directed_night(
    sim: Simulator, cli: Cli, tmp_path: Path
) -> None:
    """The fixed-seed search above may not draw every order: the one that matters, driven by
    hand. A protected endpoint and a busy one are kept up at the stop; the others park (one
    by its instances, one by deletion), idle runs during the night and the morning leave the
    parked ones alone, the start brings them back, and the ledgers count no more than the
    hours really off."""
    machine = Deletions(sim, cli, tmp_path / "night")
    machine.first_run_announces()
    machine.protect_parked(PLAIN)
    machine.now = machine._next(20, 45)
    machine.use_parked(QUEUE)  # a request at 20:54: within quiet_minutes of 21:00
    machine.schedule_tick("stop", faulty=False)
    assert not machine.zero and PLAIN in _backend().endpoints  # both kept up
    machine.time_passes(25)
    machine.protected.discard(PLAIN)
    machine.sim.client("sagemaker", EAST).delete_tags(
        ResourceArn=machine.arns[PLAIN], TagKeys=[PROTECT]
    )
    machine.schedule_tick("stop", faulty=False)
    assert machine.zero and machine.zero[-1][1] is None  # the queue at 0 instances
    assert PLAIN not in _backend().endpoints  # backed up and deleted
    machine.run_a_day_later(25, faulty=False)  # the idle run, past every deadline
    machine.schedule_tick("start", faulty=False)
    assert machine.zero[-1][1] is not None and PLAIN in _backend().endpoints
    machine.run(faulty=True)
    machine.nothing_deleted_wrongly()
    machine._check_quiet()
    machine._check_never_lost()
