"""The run over many accounts, in stages that any orchestrator can call apart.

A run over an organisation is the same plan -> announce -> act -> record pipeline as a run
in one account (:mod:`.enforce`), cut where a distributed orchestrator needs it cut:

1. :func:`plan_item`, once per (account, region): assume the member role, scan, resolve what
   earlier runs left half-done there, plan every step and write the announcement and spare
   tags (:func:`~.enforce.prepare_run`). Its :class:`ItemPlan` is a plain document.
2. :func:`announce`, once: one digest (and the owners' digests) built from every item's plan,
   the announcements it carried recorded, and every step that is not an act recorded. It says
   which items have acts to make, and whether they may be made.
3. :func:`act_item`, once per item with acts: each act through its kind's last-moment guard,
   in its own account (:func:`~.enforce.act_steps`), recorded.
4. :func:`summarise`: per account, region and kind, the idle cost, the actions and the errors,
   and what was missed.

Two orchestrators call these stages with the same settings: :func:`run_organisation` (the
CLI's ``run --accounts/--organization``, items in threads) and the organisation stack's Step
Functions state machine (:mod:`sagesaver.organisation_handlers`, items in Lambda, documents in
S3). So both announce the same digest before any act and act on the same resources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from sagesaver.aws.endpoint_configs import ConfigMemory
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso
from sagesaver.core.grace import EnforcementPlan, Stage, Step
from sagesaver.core.model import Decision, ScanError, ScanResult
from sagesaver.core.partitions import partition_of, role_arn
from sagesaver.core.policy import Policy
from sagesaver.core.pricing import Pricer
from sagesaver.ledger import Ledger, Outcome
from sagesaver.ledger.errors import LEDGER_ERRORS, ledger_error
from sagesaver.pipelines.enforce import (
    EnforcementRun,
    Prepared,
    StepResult,
    act_steps,
    announce_run,
    lanes_of,
    prepare_run,
    record_steps,
)
from sagesaver.pipelines.kinds import run_lanes
from sagesaver.pipelines.scan import NotifyOutcome, notify_idle, scan

# Items planned or acted on at once by the CLI's run (each one's own scan is parallel too).
ITEM_WORKERS = 8


@dataclass
class ItemPlan:
    """One (account, region)'s part of a run: what its scan found and failed to read, and its
    steps (by index: what became of every step but the acts, which are made later)."""

    account: str
    region: str
    decisions: list[Decision] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    outcomes: dict[int, StepResult] = field(default_factory=dict)

    @property
    def due(self) -> int:
        """How many steps of this item are acts."""
        return sum(1 for step in self.steps if step.stage is Stage.ACT)

    def document(self) -> dict[str, Any]:
        """The plan as JSON-ready data (:meth:`from_document` reads it back)."""
        data: dict[str, Any] = _PLAN.dump_python(self, mode="json")
        return data

    @classmethod
    def from_document(cls, data: Any) -> ItemPlan:
        """The plan :meth:`document` wrote."""
        return _PLAN.validate_python(data)


_PLAN: TypeAdapter[ItemPlan] = TypeAdapter(ItemPlan)
_RESULTS: TypeAdapter[list[StepResult]] = TypeAdapter(list[StepResult])


def step_results_document(results: Sequence[StepResult]) -> list[Any]:
    """Step results as JSON-ready data (:func:`step_results_from_document` reads them)."""
    data: list[Any] = _RESULTS.dump_python(list(results), mode="json")
    return data


def step_results_from_document(data: Any) -> list[StepResult]:
    """The step results :func:`step_results_document` wrote."""
    return _RESULTS.validate_python(data)


def _result(plans: Sequence[ItemPlan], now: datetime, sessions: dict[str, Any]) -> ScanResult:
    """One scan result of every item's findings (regions in first-seen order). An error met
    alike by several items (an account whose role cannot be assumed fails each of its
    regions' items the same way) is kept once."""
    regions = list(dict.fromkeys(plan.region for plan in plans))
    total = ScanResult(generated_at=now, regions=regions, sessions=dict(sessions))
    for plan in plans:
        total.decisions.extend(plan.decisions)
    total.errors = _once(e for plan in plans for e in plan.errors)
    return total


def _once(errors: Iterable[ScanError]) -> list[ScanError]:
    """``errors`` with each one kept once, in order."""
    return list(dict.fromkeys(errors))


def _prepared(plans: Sequence[ItemPlan], policy: Policy) -> Prepared:
    """The steps of ``plans`` as one run's (indexes renumbered in order)."""
    steps: list[Step] = []
    outcomes: dict[int, StepResult] = {}
    for plan in plans:
        base = len(steps)
        steps.extend(plan.steps)
        outcomes.update({base + i: r for i, r in plan.outcomes.items()})
    lanes = run_lanes(policy)
    return Prepared(EnforcementPlan(steps), outcomes, lanes_of(policy, lanes) if lanes else {})


def organisation_accounts(
    aws: Aws, units: Sequence[str] = ()
) -> tuple[list[str], ScanError | None]:
    """The active accounts of the organisation (from its management or delegated
    administrator account), or of the organisational units ``units`` and the units under
    them; or the error that stopped the listing (no accounts then)."""
    try:
        return (aws.unit_accounts(units) if units else aws.organization_accounts()), None
    except AWS_ERRORS as exc:
        operation = "ListAccountsForParent" if units else "ListAccounts"
        return [], scan_error(exc, aws.default_region or "-", operation)


# --- 1. plan ---------------------------------------------------------------------------------


def member_session(
    aws: Aws, account: str, role_name: str | None, region: str
) -> tuple[Aws | None, ScanError | None]:
    """The session that reaches ``account``: the member role assumed (the caller's own session
    when ``role_name`` is None), or the AssumeRole error."""
    if role_name is None:
        return aws, None
    try:
        return aws.assume(account, role_name, region), None
    except AWS_ERRORS as exc:
        role = role_arn(partition_of(region), account, role_name)
        return None, replace(scan_error(exc, "-", "AssumeRole", role), account=account)


def plan_item(
    aws: Aws,
    account: str,
    region: str,
    role_name: str | None,
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    apply: bool,
    ledger: Ledger | None,
    run_id: str,
    configs: ConfigMemory | None = None,
) -> tuple[ItemPlan, Aws | None]:
    """Stage 1 for one (account, region): scan it through the member role, and prepare its
    steps (tags written with ``apply``). An account that cannot be reached gives a plan with
    its AssumeRole error and nothing else. Returns the plan and the member session."""
    member, error = member_session(aws, account, role_name, region)
    if member is None:
        return ItemPlan(account, region, errors=[error] if error else []), None
    result = scan(member, [region], policy, now, pricer, configs=configs)
    result.errors = [replace(e, account=e.account or account) for e in result.errors]
    result.sessions[account] = member
    lanes = run_lanes(policy)
    if not lanes:
        return ItemPlan(account, region, result.decisions, result.errors), member
    # "seen" means every account and region read: only the summary can tell.
    prepared = prepare_run(
        member, result, policy, now, apply, ledger, run_id, lanes, mark_seen=False
    )
    plan = ItemPlan(
        account,
        region,
        result.decisions,
        result.errors,
        prepared.plan.steps,
        prepared.outcomes,
    )
    return plan, member


# --- 2. announce -----------------------------------------------------------------------------


@dataclass
class Announcement:
    """What the one announcement of a run did: its digest, whether acts may follow, the items
    with acts, and the results of the steps it settled (every one but the acts to make)."""

    notified: NotifyOutcome
    may_act: bool
    act_items: list[tuple[str, str]]
    settled: list[StepResult]
    errors: list[ScanError]


def announce(
    aws: Aws,
    plans: Sequence[ItemPlan],
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    run_id: str,
) -> Announcement:
    """Stage 2: one digest naming every item's findings and steps, with the acts about to be
    made; its announcements recorded; every step that is not an act to make recorded (an act
    that may not be made is settled here too, with the reason). ``aws``: the caller's session
    (the topic and channels are the caller's)."""
    ordered = sorted(plans, key=lambda p: (p.account, p.region))
    result = _result(ordered, now, {})
    before = len(result.errors)
    prepared = _prepared(ordered, policy)
    if not prepared.lanes:
        notified = notify_idle(aws, result, policy, apply, None, run_id, ledger)
        return Announcement(notified, False, [], [], result.errors[before:])
    notified, may_act = announce_run(aws, result, policy, now, apply, ledger, run_id, prepared)
    may_act = may_act and ledger is not None
    if may_act:
        settled = [prepared.outcomes[i] for i in sorted(prepared.outcomes)]
        act_items = [(p.account, p.region) for p in ordered if p.due]
    else:  # nothing will act: each act settled now, with why not
        outcomes = act_steps(aws, result, policy, now, apply, ledger, run_id, prepared, False)
        settled = [outcomes[i] for i in sorted(outcomes)]
        act_items = []
    if ledger is not None and apply:
        record_steps(ledger, settled, now, result)
    return Announcement(notified, may_act, act_items, settled, result.errors[before:])


# --- 3. act ----------------------------------------------------------------------------------


def act_item(
    member: Aws,
    plan: ItemPlan,
    policy: Policy,
    now: datetime,
    ledger: Ledger,
    run_id: str,
    time_left: Callable[[], float] | None = None,
) -> tuple[list[StepResult], list[ScanError]]:
    """Stage 3 for one item, once the announcement allowed acts: each act through its kind's
    act (last-moment guard, intent, the call, the record) with ``member``'s session; the acts
    not made recorded with why. Returns the acts' results and the errors met."""
    result = ScanResult(now, [plan.region], sessions={plan.account: member})
    prepared = _prepared([plan], policy)
    prepared = Prepared(prepared.plan, {}, prepared.lanes)  # the other steps: settled already
    outcomes = act_steps(
        member, result, policy, now, True, ledger, run_id, prepared, True, time_left
    )
    acts = [outcomes[i] for i in sorted(outcomes)]
    record_steps(ledger, acts, now, result)
    return acts, result.errors


# --- 4. summarise ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Missed:
    """An item a stage could not finish (its error, after retries)."""

    stage: str
    account: str
    region: str
    error: str


def mark_seen_if_complete(
    ledger: Ledger,
    policy: Policy,
    plans: Sequence[ItemPlan],
    missed: Sequence[Missed],
    now: datetime,
) -> bool:
    """With every item planned and read without error, record that the run saw every resource
    of its kinds (what the savings count until); True when it did."""
    lanes = run_lanes(policy)
    if not lanes or missed or any(plan.errors for plan in plans):
        return False
    try:
        for kind in lanes_of(policy, lanes):
            ledger.mark_seen(kind.value, now)
    except LEDGER_ERRORS:
        return False
    return True


def summary_document(
    plans: Sequence[ItemPlan],
    steps: Iterable[StepResult],
    errors: Sequence[ScanError],
    missed: Sequence[Missed],
) -> dict[str, Any]:
    """Per account, region and kind: resources, idle ones, their known hourly cost by
    currency, the acts carried out, and the errors; and what was missed."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}

    def row(account: str, region: str, kind: str) -> dict[str, Any]:
        key = (account, region, kind)
        if key not in rows:
            rows[key] = {
                "account": account,
                "region": region,
                "kind": kind,
                "resources": 0,
                "idle": 0,
                "idle_hourly_cost": {},
                "unknown_cost": 0,
                "acted": 0,
                "failed": 0,
            }
        return rows[key]

    for plan in plans:
        for decision in plan.decisions:
            resource = decision.resource
            entry = row(resource.account, resource.region, resource.kind.value)
            entry["resources"] += 1
            if decision.idle:
                entry["idle"] += 1
                if decision.hourly_cost is None:
                    entry["unknown_cost"] += 1
                else:
                    costs = entry["idle_hourly_cost"]
                    currency = decision.cost_currency
                    costs[currency] = round(costs.get(currency, 0.0) + decision.hourly_cost, 6)
    for step in steps:
        if step.step.stage is not Stage.ACT:
            continue
        resource = step.step.decision.resource
        entry = row(resource.account, resource.region, resource.kind.value)
        if step.applied:
            entry["acted"] += 1
        elif step.status is Outcome.FAILED:
            entry["failed"] += 1
    every_error = _once([*errors, *(e for plan in plans for e in plan.errors)])
    by_place: dict[tuple[str, str], int] = {}
    for error in every_error:
        place = (error.account or "-", error.region)
        by_place[place] = by_place.get(place, 0) + 1
    return {
        "rows": [rows[key] for key in sorted(rows)],
        "errors": [
            {"account": a, "region": r, "errors": n} for (a, r), n in sorted(by_place.items())
        ],
        "missed": [asdict(m) for m in missed],
        "accounts": len({plan.account for plan in plans}),
        "complete": not missed and not every_error,
    }


# --- the whole run, in this process ----------------------------------------------------------


@dataclass
class OrganisationRun:
    """A run over many accounts as one result: every finding and error, and every step; and
    its summary (:func:`summary_document`, as the stack's ``summarise`` writes it)."""

    result: ScanResult
    done: EnforcementRun
    plans: list[ItemPlan]
    summary: dict[str, Any] = field(default_factory=dict)


def run_organisation(
    aws: Aws,
    accounts: Sequence[str],
    role_name: str,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    apply: bool,
    ledger: Ledger | None,
    run_id: str,
    configs: ConfigMemory | None = None,
    workers: int = ITEM_WORKERS,
) -> OrganisationRun:
    """Every stage of the run over ``accounts`` x ``regions``, items in a bounded pool (one
    AssumeRole per account): the CLI's ``run`` over accounts."""
    sessions: dict[str, Aws] = {}
    failed: dict[str, ScanError] = {}
    for account in dict.fromkeys(accounts):
        member, error = member_session(aws, account, role_name, regions[0])
        if member is not None:
            sessions[account] = member
        elif error is not None:
            failed[account] = error

    def plan(item: tuple[str, str]) -> ItemPlan:
        account, region = item
        part, _ = plan_item(
            sessions[account],
            account,
            region,
            None,
            policy,
            now,
            pricer,
            apply,
            ledger,
            run_id,
            configs,
        )
        return part

    items = [(a, r) for a in sessions for r in regions]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        plans = list(pool.map(plan, items))
    plans += [ItemPlan(a, regions[0], errors=[e]) for a, e in failed.items()]
    told = announce(aws, plans, policy, now, apply, ledger, run_id)
    steps = list(told.settled)
    errors = list(told.errors)
    if told.may_act and ledger is not None:
        due = {(p.account, p.region): p for p in plans}

        def act(item: tuple[str, str]) -> tuple[list[StepResult], list[ScanError]]:
            return act_item(sessions[item[0]], due[item], policy, now, ledger, run_id)

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(told.act_items)))) as pool:
            for acts, act_errors in pool.map(act, told.act_items):
                steps += acts
                errors += act_errors
    summary = summary_document(plans, steps, errors, [])
    summary.update(run_id=run_id, generated_at=iso(now), applied=apply)
    if apply and ledger is not None:
        mark_seen_if_complete(ledger, policy, plans, [], now)
        try:  # what `report` draws the organisation from; a failure is the run's error
            ledger.record_run_summary(run_id, now, summary)
        except LEDGER_ERRORS as exc:
            errors.append(ledger_error(exc, ledger.location, "the run's summary"))
    result = _result(sorted(plans, key=lambda p: (p.account, p.region)), now, dict(sessions))
    result.regions = list(regions)
    result.errors.extend(errors)
    done = EnforcementRun(_in_plan_order(steps), told.notified)
    return OrganisationRun(result, done, plans, summary)


def _in_plan_order(steps: Sequence[StepResult]) -> list[StepResult]:
    """Steps ordered as one run's plan lists them: by account, region, then as planned."""
    order = {id(s): i for i, s in enumerate(steps)}
    return sorted(
        steps,
        key=lambda s: (
            s.step.decision.resource.account,
            s.step.decision.resource.region,
            order[id(s)],
        ),
    )
