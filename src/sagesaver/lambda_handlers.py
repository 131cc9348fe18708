"""AWS Lambda entry points: thin wrappers around :mod:`sagesaver.pipelines.scan`.

Configuration (all optional): ``SAGESAVER_POLICY`` (policy YAML text),
``SAGESAVER_REGIONS`` (comma-separated; default: the function's region),
``SAGESAVER_APPLY`` (``true`` to act), ``SAGESAVER_LEDGER`` (ledger location; without it the
schedule tick looks back ``interval_minutes``), ``SAGESAVER_PRICES`` (a price file, usually
``s3://BUCKET/KEY``; default: the policy's ``prices``), ``SAGESAVER_EXTERNAL_ID`` (the external
id member roles require, sent with each AssumeRole). The event may override ``regions`` and
``apply``; for the schedule tick it may name one ``schedule``. A role the function assumes is
assumed under the session name ``sagesaver-lambda-<function name>``.

With ``studio_apps.action: delete``, the idle scan also runs the Studio pipeline, as
``sagesaver studio`` does (same ledger, its digest before any deletion, the same guard).

Each run logs one JSON line per decision, action and error, and one for the run; a run with
errors raises :class:`RunFailed` after recording what it did, so Lambda counts an error.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sagesaver.aws.endpoint_configs import ConfigMemory
from sagesaver.aws.session import Aws
from sagesaver.core.accounts import check_external_id, lambda_session_name
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso
from sagesaver.core.model import Action, ScanError
from sagesaver.core.policy import LEDGER_TABLE_RE, Policy, parse_policy
from sagesaver.core.price_file import PriceFile
from sagesaver.core.pricing import Pricer
from sagesaver.pipelines.enforce import enforce_and_notify, step_dict
from sagesaver.pipelines.kinds import acting_problem
from sagesaver.pipelines.scan import resolve_regions, scan
from sagesaver.render import scan as report

# How long the schedule tick lets an unpark wait for its endpoint to be InService (its
# time-out is 5 minutes; a restore takes longer, and the next tick resumes it).
LAMBDA_UNPARK_WAIT_MINUTES = 1.0

if TYPE_CHECKING:
    from sagesaver.ledger import Ledger


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _configuration(event: dict[str, Any]) -> tuple[Aws, Policy, list[str], bool]:
    """Policy, regions and apply flag from the environment and the event."""
    text = os.environ.get("SAGESAVER_POLICY")
    policy = parse_policy(text, "SAGESAVER_POLICY") if text else Policy()
    source = "event.regions" if event.get("regions") else "SAGESAVER_REGIONS"
    requested = event.get("regions") or [
        r.strip() for r in os.environ.get("SAGESAVER_REGIONS", "").split(",") if r.strip()
    ]
    apply = _truthy(event.get("apply", os.environ.get("SAGESAVER_APPLY", "false")))
    external_id = os.environ.get("SAGESAVER_EXTERNAL_ID") or None
    if external_id is not None:
        check_external_id(external_id, "SAGESAVER_EXTERNAL_ID")
    aws = Aws(
        external_id=external_id,
        session_name=lambda_session_name(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")),
    )
    regions = resolve_regions(aws, requested, False, policy, "SAGESAVER_POLICY", source)
    return aws, policy, regions, apply


class RunFailed(Exception):
    """A run had errors. Raised after everything it did was recorded and logged, so that Lambda
    counts an error (the stack's alarm tells the topic) and its retry is safe."""

    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        problems = summary.get("input_error") or "; ".join(
            f"{e['operation']} {e.get('resource') or e['region']}: {e['message']}"
            for e in summary.get("errors", [])
        )
        super().__init__(problems[:2000])


def _log(record: dict[str, Any]) -> None:
    """One JSON line on stdout: CloudWatch Logs keeps it, Logs Insights can query its fields."""
    present = {k: v for k, v in record.items() if v is not None}  # absent, not null
    sys.stdout.write(json.dumps(present, sort_keys=True, default=str) + "\n")


def _finish(function: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Log one line per decision, action and error, then the run; raise when it failed."""
    for item in summary.get("idle_endpoints", []):
        _log({"function": function, "event": "decision", **item})
    acted = ("enforcement", "studio_apps", "actions")
    for item in [item for key in acted for item in summary.get(key, [])]:
        _log({"function": function, "event": "action", **item})
    for item in summary.get("errors", []):
        _log({"function": function, "event": "error", **item})
    _log(
        {
            "function": function,
            "event": "run",
            "ok": summary["ok"],
            "input_error": summary.get("input_error"),
            "errors": len(summary.get("errors", [])),
            "notified": summary.get("notified"),
        }
    )
    if not summary["ok"]:
        raise RunFailed(summary)
    return summary


def idle_endpoints(event: dict[str, Any] | None, context: object) -> dict[str, Any]:
    """Scan for idle endpoints, enforce and notify. Returns the run's summary; raises
    :class:`RunFailed` (after recording and logging everything) when any part failed."""
    return _finish("idle-scan", _idle_endpoints(event, context))


def schedule_tick(event: dict[str, Any] | None, context: object) -> dict[str, Any]:
    """Start and stop notebook instances whose schedule boundaries fell since the last tick.
    Raises :class:`RunFailed` (after recording and logging everything) when any part failed."""
    return _finish("schedule-tick", _schedule_tick(event, context))


def _price_file(aws: Aws, policy: Policy, regions: list[str]) -> PriceFile | None:
    """The price file ``SAGESAVER_PRICES`` names, else the policy's ``prices`` (read from S3
    with the function's role: it needs s3:GetObject on it), or None. Raises
    :class:`InputError` naming the setting, the file and the problem."""
    from sagesaver.aws.price_files import read_price_file

    setting, location = "SAGESAVER_PRICES", os.environ.get("SAGESAVER_PRICES")
    if not location:
        setting, location = "SAGESAVER_POLICY: prices", policy.prices
    if not location:
        return None
    region = os.environ.get("AWS_REGION") or (regions[0] if regions else None)
    try:
        return read_price_file(location, aws, region)
    except InputError as exc:
        raise InputError(f"{setting} {exc}") from exc


def _live_pricer(
    aws: Aws,
    ledger: str | None,
    regions: list[str],
    function: str,
    prices: PriceFile | None = None,
) -> Pricer:
    """The price file's prices first (``prices``), then live prices from the partition's
    Price List, cached in the ledger's DynamoDB table (a Lambda's disk does not outlive it),
    the bundled table as the fallback. A Price List that fails is logged once (``"event":
    "warning"``) and, with the table, not asked again for an hour."""
    from sagesaver.aws.prices import LivePrices, PriceListTrouble, TableCache

    match = LEDGER_TABLE_RE.match(ledger or "")
    home = os.environ.get("AWS_REGION") or (regions[0] if regions else None)
    cache = None
    if match is not None and (match.group("region") or home):
        cache = TableCache(aws, match.group("region") or str(home), match.group("table"))

    def warn(trouble: PriceListTrouble) -> None:
        message = f"{trouble.describe()}; using cached and bundled prices (unknown where none)"
        _log({"function": function, "event": "warning", "message": message})

    return Pricer(live=LivePrices(aws, cache, on_trouble=warn), file=prices)


def _config_memory(ledger: object) -> ConfigMemory:
    """Endpoint configurations remembered in the ledger table (none without one: the
    function's disk does not outlive it)."""
    from sagesaver.ledger.dynamodb import DynamoConfigStore, DynamoLedger

    if isinstance(ledger, DynamoLedger):
        return ConfigMemory(DynamoConfigStore(ledger))
    return ConfigMemory(None)


def _studio_apps(
    aws: Aws,
    regions: list[str],
    policy: Policy,
    now: datetime,
    apply: bool,
    ledger: Ledger | None,
    pricer: Pricer,
    run_id: str | None,
) -> tuple[list[dict[str, Any]], list[ScanError]]:
    """With ``studio_apps.action: delete``, the CLI's Studio run (:func:`studio_run`): the
    same ledger, its own digest sent before anything is deleted (once per invocation: its run
    id is the request's, marked), the same last-moment guard. Each app's decision and fate,
    and the run's errors; nothing without the policy's delete."""
    if policy.studio_apps.action != "delete":
        return [], []
    from sagesaver.pipelines.studio import studio_run

    studio_id = f"{run_id}-studio" if run_id else None
    done = studio_run(aws, regions, policy, now, apply, ledger, pricer, studio_id)
    apps = [
        {
            "kind": "studio-app",
            "name": a.decision.resource.name,
            "region": a.decision.resource.region,
            "decision": a.decision.action.value,
            "reason": a.decision.reason,
            "outcome": a.outcome,
            "applied": a.applied,
        }
        for a in done.apps
    ]
    return apps, done.errors


def _idle_endpoints(event: dict[str, Any] | None, context: object) -> dict[str, Any]:
    try:
        aws, policy, regions, apply = _configuration(event or {})
    except InputError as exc:
        return {"ok": False, "input_error": str(exc), "errors": []}
    from sagesaver.ledger import open_ledger

    location = os.environ.get("SAGESAVER_LEDGER")
    problem = acting_problem(policy, apply, location, "SAGESAVER_LEDGER", "SAGESAVER_APPLY")
    if problem:
        return {"ok": False, "input_error": problem, "errors": []}
    try:
        ledger = (
            open_ledger(location, read_only=not apply, setting="SAGESAVER_LEDGER")
            if location
            else None
        )
        prices = _price_file(aws, policy, regions)
    except InputError as exc:
        return {"ok": False, "input_error": str(exc), "errors": []}
    now = datetime.now(timezone.utc)
    memory = _config_memory(ledger)
    pricer = _live_pricer(aws, location, regions, "idle-scan", prices)
    result = scan(aws, regions, policy, now, pricer, configs=memory)
    memory.save()
    # A retried invocation keeps its request id: its digest is not sent a second time.
    run_id = getattr(context, "aws_request_id", None)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_left = (lambda: remaining() / 1000.0) if callable(remaining) else None
    done = enforce_and_notify(aws, result, policy, now, apply, ledger, run_id, time_left)
    steps, outcome = done.steps, done.notified
    if outcome is None:  # enforce_and_notify always notifies
        raise RuntimeError("the run ended without a notification outcome")
    studio_apps, studio_errors = _studio_apps(
        aws, regions, policy, now, apply, ledger, pricer, run_id
    )
    result.errors.extend(studio_errors)
    return {
        "ok": not result.errors,
        "generated_at": iso(now),
        "regions": regions,
        "summary": report.summary(result.decisions, result.errors, result.regions),
        "idle_endpoints": [
            {
                "name": d.resource.name,
                "region": d.resource.region,
                "hourly_cost": d.hourly_cost,
                "currency": d.cost_currency,
                "price_source": d.price_source,
                "price_date": d.price_date,
                "hourly_cost_usd": d.hourly_cost_usd,
                "reason": d.reason,
            }
            for d in result.decisions
            if d.action is not Action.KEEP
        ],
        "enforcement": [step_dict(s) for s in steps],
        "studio_apps": studio_apps,
        "notified": outcome.applied,
        "messages": len(outcome.messages),
        # the chat channels, by type and reference (never a webhook URL or secret)
        "channels": [r.document() for r in outcome.channels],
        "errors": [report.error_dict(e) for e in result.errors],
    }


def _schedule_tick(event: dict[str, Any] | None, context: object) -> dict[str, Any]:
    from sagesaver.ledger import open_ledger
    from sagesaver.pipelines.schedules import run_document, schedule_run

    event = event or {}
    try:
        aws, policy, regions, apply = _configuration(event)
        name = event.get("schedule")
        only = None
        if name is not None:
            if name not in policy.schedules:
                raise InputError(f"event.schedule: unknown schedule {name!r}")
            only = frozenset({name})
        location = os.environ.get("SAGESAVER_LEDGER")
        ledger = open_ledger(location, setting="SAGESAVER_LEDGER") if location else None
    except InputError as exc:
        return {"ok": False, "input_error": str(exc), "errors": []}
    now = datetime.now(timezone.utc)
    pricer = None
    if apply and ledger is not None:
        try:
            prices = _price_file(aws, policy, list(regions))
        except InputError as exc:
            return {"ok": False, "input_error": str(exc), "errors": []}
        pricer = _live_pricer(aws, location, list(regions), "schedule-tick", prices)
    # An unpark does not wait in the function for InService (minutes, past its time-out): the
    # schedule's rate tick, every lead_minutes at most, resumes the restore where it stopped.
    result = schedule_run(
        aws, regions, policy, now, apply, ledger, only, pricer, LAMBDA_UNPARK_WAIT_MINUTES
    )
    return {"ok": not result.errors, "applied": apply, **run_document(result, apply)}
