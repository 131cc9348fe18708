"""AWS Lambda entry points: thin wrappers around :mod:`sagesaver.run`.

Configuration (all optional): ``SAGESAVER_POLICY`` (policy YAML text),
``SAGESAVER_REGIONS`` (comma-separated; default: the function's region),
``SAGESAVER_APPLY`` (``true`` to act). The event may override ``regions`` and ``apply``.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from sagesaver import report
from sagesaver.aws.session import Aws
from sagesaver.errors import InputError
from sagesaver.model import Action
from sagesaver.policy import Policy, parse_policy
from sagesaver.run import notify_idle, resolve_regions, scan


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def idle_endpoints(event: dict[str, Any] | None, context: object) -> dict[str, Any]:
    """Scan for idle endpoints and notify. Returns a summary with per-resource errors."""
    event = event or {}
    try:
        text = os.environ.get("SAGESAVER_POLICY")
        policy = parse_policy(text, "SAGESAVER_POLICY") if text else Policy()
        requested = event.get("regions") or [
            r.strip() for r in os.environ.get("SAGESAVER_REGIONS", "").split(",") if r.strip()
        ]
        apply = _truthy(event.get("apply", os.environ.get("SAGESAVER_APPLY", "false")))
        aws = Aws()
        regions = resolve_regions(aws, requested, False, policy)
    except InputError as exc:
        return {"ok": False, "input_error": str(exc), "errors": []}
    now = datetime.now(timezone.utc)
    result = scan(aws, regions, policy, now)
    outcome = notify_idle(aws, result, policy, apply)
    return {
        "ok": not result.errors,
        "generated_at": report.iso(now),
        "regions": regions,
        "summary": report.summary(result.decisions, result.errors),
        "idle_endpoints": [
            {
                "name": d.resource.name,
                "region": d.resource.region,
                "hourly_cost_usd": d.hourly_cost_usd,
                "reason": d.reason,
            }
            for d in result.decisions
            if d.action is Action.NOTIFY
        ],
        "notified": outcome.applied,
        "messages": len(outcome.messages),
        "errors": [report.error_dict(e) for e in result.errors],
    }
