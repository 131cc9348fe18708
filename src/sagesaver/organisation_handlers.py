"""AWS Lambda entry points of the organisation stack's Step Functions state machine.

Each is one stage of :mod:`sagesaver.pipelines.organisation` (the stages the CLI's ``run
--organization`` calls in one process), for one item or for the whole run; they hand each
other documents in S3 (:class:`~sagesaver.aws.run_store.RunStore`) under
``runs/<run id>/`` of ``SAGESAVER_RUN_BUCKET``, and return small JSON objects the state
machine routes on (the contract: ``docs/ORGANISATION.md``).

Settings, from the environment shared by every function of the stack: ``SAGESAVER_POLICY``,
``SAGESAVER_REGIONS`` (comma-separated; default: the policy's regions, else every enabled
SageMaker region of the partition), ``SAGESAVER_APPLY``, ``SAGESAVER_LEDGER``,
``SAGESAVER_PRICES``, ``SAGESAVER_EXTERNAL_ID``, ``SAGESAVER_MEMBER_ROLE`` (the role name in
each member account) and ``SAGESAVER_RUN_BUCKET``.

Every function of one execution uses the execution's start time as its clock (``now``), and
the execution's name as the run id (the digest goes out once per run, even when its Lambda is
retried). An error a retry may cure is raised as :class:`Transient` (the state machine
retries it with backoff); any other error fails the item, which the state machine records
(:func:`record_failure`) without stopping the others.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from sagesaver.aws.run_store import RunStore, TransientStoreError
from sagesaver.aws.session import Aws
from sagesaver.core.accounts import check_external_id, check_role_name, lambda_session_name
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso
from sagesaver.core.model import ScanError
from sagesaver.core.policy import Policy, parse_policy
from sagesaver.lambda_handlers import _config_memory, _live_pricer, _price_file, _truthy
from sagesaver.ledger import Ledger, open_ledger
from sagesaver.ledger.errors import LEDGER_ERRORS, ledger_error
from sagesaver.pipelines import organisation as stages
from sagesaver.pipelines.kinds import acting_problem
from sagesaver.pipelines.scan import resolve_regions


class Transient(Exception):
    """A failure a retry may cure (S3 or the ledger throttled, a connection lost): the state
    machine retries the item with backoff."""


class Settings:
    """The stack's settings, read once per invocation."""

    def __init__(self) -> None:
        env = os.environ
        text = env.get("SAGESAVER_POLICY")
        self.policy: Policy = parse_policy(text, "SAGESAVER_POLICY") if text else Policy()
        self.apply = _truthy(env.get("SAGESAVER_APPLY", "false"))
        self.bucket = env.get("SAGESAVER_RUN_BUCKET", "")
        if not self.bucket:
            raise InputError("SAGESAVER_RUN_BUCKET is not set (the bucket of the run's documents)")
        self.role_name = check_role_name(env.get("SAGESAVER_MEMBER_ROLE", ""))
        external_id = env.get("SAGESAVER_EXTERNAL_ID") or None
        if external_id is not None:
            check_external_id(external_id, "SAGESAVER_EXTERNAL_ID")
        self.ledger_location = env.get("SAGESAVER_LEDGER") or None
        self.aws = Aws(
            external_id=external_id,
            session_name=lambda_session_name(env.get("AWS_LAMBDA_FUNCTION_NAME", "")),
        )
        self.regions = [r.strip() for r in env.get("SAGESAVER_REGIONS", "").split(",") if r.strip()]
        self.home = env.get("AWS_REGION") or self.aws.default_region or "us-east-1"

    def store(self, run: dict[str, Any]) -> RunStore:
        """The run's documents."""
        return RunStore(self.aws, run["bucket"], run["prefix"], self.home)

    def ledger(self) -> Ledger | None:
        """The ledger (read-only in a dry run), or None when none is set."""
        if self.ledger_location is None:
            return None
        return open_ledger(
            self.ledger_location, read_only=not self.apply, setting="SAGESAVER_LEDGER"
        )


# What the settings are read from; a warm function keeps its settings (and their boto3
# session, with its loaded service models and clients) while these stay the same.
SETTINGS_ENV = (
    "SAGESAVER_POLICY",
    "SAGESAVER_APPLY",
    "SAGESAVER_RUN_BUCKET",
    "SAGESAVER_MEMBER_ROLE",
    "SAGESAVER_EXTERNAL_ID",
    "SAGESAVER_LEDGER",
    "SAGESAVER_REGIONS",
    "SAGESAVER_PRICES",
    "AWS_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
)
_warm: dict[tuple[str | None, ...], Settings] = {}
_warm_lock = threading.Lock()


def _settings() -> Settings:
    """The settings of this environment, made once per warm function (Lambda reuses a
    function's process between invocations: the SDK's session is made outside the handler)."""
    key = tuple(os.environ.get(name) for name in SETTINGS_ENV)
    with _warm_lock:
        found = _warm.get(key)
        if found is None:
            found = Settings()
            _warm.clear()
            _warm[key] = found
        return found


def _now(run: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(str(run["now"]).replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc)


def _transient(call: Any, *args: Any) -> Any:
    """``call(*args)`` on the run's documents, a failure a retry may cure raised as
    :class:`Transient` (the state machine retries it); any other failure as it is."""
    try:
        return call(*args)
    except TransientStoreError as exc:
        raise Transient(str(exc)) from exc


def _error_dict(error: ScanError) -> dict[str, Any]:
    return asdict(error)


def list_items(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Stage 0: the (account, region) items of this execution, written to ``items.json``.
    The execution input may name ``accounts`` or ``organizational_units``; by default every
    active account of the organisation."""
    settings = _settings()
    problem = acting_problem(
        settings.policy,
        settings.apply,
        settings.ledger_location,
        "SAGESAVER_LEDGER",
        "SAGESAVER_APPLY",
    )
    if problem:
        raise InputError(problem)
    given = event.get("input") or {}
    if not isinstance(given, dict):
        raise InputError("the execution input must be a JSON object")
    unknown = sorted(set(given) - {"accounts", "organizational_units"})
    if unknown:
        raise InputError(f"the execution input has unknown keys: {', '.join(unknown)}")
    if given.get("accounts"):
        from sagesaver.core.accounts import parse_accounts

        accounts = parse_accounts("\n".join(map(str, given["accounts"])), "input.accounts")
    else:
        units = [str(u) for u in given.get("organizational_units") or []]
        accounts, error = stages.organisation_accounts(settings.aws, units)
        if error is not None:
            raise RuntimeError(f"{error.operation}: {error.message}")
    policy = settings.policy
    everywhere = not settings.regions and not policy.regions
    regions = resolve_regions(
        settings.aws, settings.regions, everywhere, policy, "SAGESAVER_POLICY", "SAGESAVER_REGIONS"
    )
    run_id = str(event["execution"])
    started = datetime.fromisoformat(str(event["started"]).replace("Z", "+00:00"))
    run = {
        "run_id": run_id,
        "now": iso(started.astimezone(timezone.utc)),
        "bucket": settings.bucket,
        "prefix": f"runs/{run_id}/",
    }
    items = [{"account": a, "region": r} for a in accounts for r in regions]
    run["items_key"] = _transient(settings.store(run).put, "items.json", items)
    return {**run, "items": len(items), "accounts": len(accounts), "regions": regions}


def plan_item(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Stage 1 for one (account, region): its plan, written to ``plans/ACCOUNT/REGION.json``."""
    settings = _settings()
    run, account, region = event["run"], str(event["account"]), str(event["region"])
    now = _now(run)
    ledger = settings.ledger()
    prices = _price_file(settings.aws, settings.policy, [region])
    pricer = _live_pricer(settings.aws, settings.ledger_location, [region], "org-plan", prices)
    memory = _config_memory(ledger)
    plan, _ = stages.plan_item(
        settings.aws,
        account,
        region,
        settings.role_name,
        settings.policy,
        now,
        pricer,
        settings.apply,
        ledger,
        run["run_id"],
        memory,
    )
    memory.save()
    _transient(settings.store(run).put, f"plans/{account}/{region}.json", plan.document())
    return {
        "account": account,
        "region": region,
        "ok": not plan.errors,
        "due": plan.due,
        "errors": len(plan.errors),
    }


def _failed_items(store: RunStore, stage: str) -> list[dict[str, Any]]:
    return list(_transient(store.documents, f"failures/{stage}/"))


def announce(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Stage 2: one digest from every plan (an item that could not be planned is named as an
    error), its announcements and the settled steps recorded; the items with acts written to
    ``act-items.json`` when acts may follow."""
    settings = _settings()
    run = event["run"]
    store = settings.store(run)
    plans = [stages.ItemPlan.from_document(doc) for doc in _transient(store.documents, "plans/")]
    for failure in _failed_items(store, "plan"):
        error = ScanError(
            failure["region"],
            "PlanItem",
            f"not read in this run: {failure['error']}",
            code="ItemFailed",
            account=failure["account"],
        )
        plans.append(stages.ItemPlan(failure["account"], failure["region"], errors=[error]))
    ledger = settings.ledger()
    now = _now(run)
    told = stages.announce(
        settings.aws, plans, settings.policy, now, settings.apply, ledger, run["run_id"]
    )
    items = [{"account": a, "region": r} for a, r in told.act_items]
    act_key = _transient(store.put, "act-items.json", items)
    _transient(
        store.put,
        "announced.json",
        {
            "may_act": told.may_act,
            "notified": told.notified.applied,
            "message_ids": told.notified.message_ids,
            "digest": [{"subject": m.subject, "body": m.body} for m in told.notified.messages],
            "settled": stages.step_results_document(told.settled),
            "errors": [_error_dict(e) for e in told.errors],
        },
    )
    return {"act_key": act_key, "acts": len(items), "notified": told.notified.applied}


def act_item(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Stage 3 for one (account, region) with acts: each through the last-moment guard in
    its own account; results written to ``acts/ACCOUNT/REGION.json``."""
    settings = _settings()
    run, account, region = event["run"], str(event["account"]), str(event["region"])
    store = settings.store(run)
    announced = _transient(store.get, "announced.json")
    if not announced["may_act"] or not settings.apply:
        raise RuntimeError("the announcement of this run does not allow acts")
    ledger = settings.ledger()
    if ledger is None:
        raise InputError("acting needs SAGESAVER_LEDGER (e.g. dynamodb://TABLE)")
    plan = stages.ItemPlan.from_document(_transient(store.get, f"plans/{account}/{region}.json"))
    member, error = stages.member_session(settings.aws, account, settings.role_name, region)
    if member is None:
        raise RuntimeError(f"AssumeRole in {account}: {error.message if error else 'failed'}")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_left = (lambda: remaining() / 1000.0) if callable(remaining) else None
    acts, errors = stages.act_item(
        member, plan, settings.policy, _now(run), ledger, run["run_id"], time_left
    )
    document = {
        "steps": stages.step_results_document(acts),
        "errors": [_error_dict(e) for e in errors],
    }
    _transient(store.put, f"acts/{account}/{region}.json", document)
    return {
        "account": account,
        "region": region,
        "acted": sum(1 for a in acts if a.applied),
        "failed": sum(1 for a in acts if a.status.value == "failed"),
    }


def record_failure(event: dict[str, Any], context: object) -> dict[str, Any]:
    """An item that failed after its retries: written to ``failures/STAGE/ACCOUNT/REGION.json``
    (the announcement names it; the summary counts it as missed)."""
    settings = _settings()
    stage = str(event["stage"])
    if stage not in ("plan", "act"):
        raise InputError(f"record_failure: unknown stage {stage!r}")
    account, region = str(event["account"]), str(event["region"])
    error = event.get("error") or {}
    cause = str(error.get("Cause") or "")[:2000]
    text = f"{error.get('Error', 'failed')}: {cause}" if cause else str(error.get("Error"))
    document = {"stage": stage, "account": account, "region": region, "error": text}
    _transient(
        settings.store(event["run"]).put, f"failures/{stage}/{account}/{region}.json", document
    )
    return {"recorded": True}


def summarise(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Stage 4: per account, region and kind, the idle cost, the acts and the errors, and
    what was missed, written to ``summary.json`` and, with ``SAGESAVER_APPLY``, kept in the
    ledger for ``report`` (a ledger that refuses it is an error of the run, in the result's
    ``errors`` and ``ledger_error``); with every item read and nothing missed, the ledger
    records that the run saw every resource of its kinds."""
    settings = _settings()
    run = event["run"]
    store = settings.store(run)
    plans = [stages.ItemPlan.from_document(doc) for doc in _transient(store.documents, "plans/")]
    missed = [
        stages.Missed(f["stage"], f["account"], f["region"], f["error"])
        for stage in ("plan", "act")
        for f in _failed_items(store, stage)
    ]
    for stage in ("plan", "announce", "act"):
        failure = event.get(f"{stage}_failed")
        if failure:
            cause = str(failure.get("Cause") or "")[:500]
            missed.append(stages.Missed(stage, "-", "-", f"{failure.get('Error')}: {cause}"))
    steps = []
    errors: list[ScanError] = []
    if _transient(store.exists, "announced.json"):
        announced = _transient(store.get, "announced.json")
        steps += stages.step_results_from_document(announced["settled"])
        errors += [ScanError(**e) for e in announced["errors"]]
    for doc in _transient(store.documents, "acts/"):
        steps += stages.step_results_from_document(doc["steps"])
        errors += [ScanError(**e) for e in doc["errors"]]
    summary = stages.summary_document(plans, steps, errors, missed)
    summary.update(run_id=run["run_id"], generated_at=run["now"], applied=settings.apply)
    ledger = settings.ledger()
    if settings.apply and ledger is not None and not missed:
        stages.mark_seen_if_complete(ledger, settings.policy, plans, missed, _now(run))
    key = _transient(store.put, "summary.json", summary)
    unkept: dict[str, str] = {}
    if settings.apply and ledger is not None:
        try:  # what `report` draws the organisation from; the summary stays in S3 regardless
            ledger.record_run_summary(run["run_id"], _now(run), summary)
        except LEDGER_ERRORS as exc:  # an error of the run, not a failed execution
            unkept["ledger_error"] = ledger_error(exc, ledger.location, "the run's summary").message
    return {
        "summary_key": key,
        "complete": summary["complete"] and not unkept,
        "missed": summary["missed"][:50],
        "missed_count": len(summary["missed"]),
        "actions": sum(row["acted"] for row in summary["rows"]),
        "errors": sum(item["errors"] for item in summary["errors"]) + len(unkept),
        "accounts": summary["accounts"],
        **unkept,
    }
