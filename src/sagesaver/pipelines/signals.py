"""What the scan reads beyond ``Invocations``, for the endpoints that need it.

Asynchronous endpoints publish no ``Invocations``: their activity is replaced by their own
traffic metrics (:mod:`sagesaver.aws.endpoint_signals`), read in one batch per region for the
asynchronous endpoints among the described candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sagesaver.aws import endpoint_signals
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.model import Activity, ScanError
from sagesaver.core.rules.endpoints import ASYNC_SIGNAL


def apply_async_activity(
    aws: Aws,
    region: str,
    endpoints: Iterable[str],
    activity: dict[str, Activity | None],
    window_hours: float,
    now: datetime,
    errors: list[ScanError],
) -> None:
    """Replace the activity of each asynchronous endpoint by its asynchronous traffic over
    the window; an endpoint whose traffic cannot be read completely becomes unknown."""
    names = sorted(set(endpoints))
    if not names:
        return
    try:
        read = endpoint_signals.async_traffic(
            aws, region, names, now - timedelta(hours=window_hours), now
        )
    except AWS_ERRORS as exc:
        errors.append(scan_error(exc, region, "GetMetricData"))
        for name in names:
            activity[name] = None
        return
    for name in names:
        problem = read.problems.get(name)
        if problem is not None:
            errors.append(
                ScanError(
                    region,
                    "GetMetricData",
                    f"asynchronous metrics could not be read completely: {problem}",
                    name,
                    "IncompleteData",
                )
            )
            activity[name] = None
            continue
        before = activity.get(name)
        # Any Invocations the endpoint did publish still count: traffic is never hidden.
        activity[name] = Activity(
            invocations=read.totals.get(name, 0.0) + (before.invocations if before else 0.0),
            window_hours=window_hours,
            variants_seen=before.variants_seen if before is not None else (),
            signal=ASYNC_SIGNAL,
        )
