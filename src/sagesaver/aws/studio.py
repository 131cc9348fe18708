"""SageMaker Studio: domains, spaces and apps, and deleting an app (its space's storage stays).

The idle signal of most apps is ``DescribeApp``'s ``LastUserActivityTimestamp``. **Canvas** bills
its workspace session until the user logs out, and reports its activity as the CloudWatch metric
``TimeSinceLastActive`` (seconds; namespace ``/aws/sagemaker/Canvas/AppActivity``, dimensions
``DomainId`` + ``UserProfileName``; AWS: "Automatically shut down idle SageMaker Canvas
applications" and the Canvas logging-out page,
https://docs.aws.amazon.com/sagemaker/latest/dg/canvas-log-out.html; AWS's own sample,
github.com/aws-samples/sagemaker-canvas-auto-shutdown-on-idle, reads the metric with this
namespace and these two dimensions and deletes the app named ``default``; checked 2026-12-01;
the metric's reference page itself was not available to check). The last activity of a
Canvas app is read from its newest datapoint (one batched ``GetMetricData`` for all Canvas apps
of a region); a Canvas app with no datapoint in the window has unknown activity, never idle.

moto implements none of the app and space operations; the tests use botocore's Stubber.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sagesaver.aws.inventory import account_of
from sagesaver.aws.metrics import metric_query, read_metric_data
from sagesaver.aws.session import Aws
from sagesaver.core.model import Kind, Resource


@dataclass(frozen=True)
class StudioApp:
    """An app with what the idle rule needs."""

    resource: Resource
    domain_id: str
    app_type: str
    app_name: str
    space: str | None
    user_profile: str | None
    last_activity: datetime | None
    # False when the activity could not be read (a Canvas app without a recent datapoint).
    activity_known: bool = True


@dataclass(frozen=True)
class ShutdownGap:
    """A domain or space with no built-in idle shutdown configured."""

    region: str
    domain_id: str
    space: str | None
    detail: str


def _idle_settings(settings: dict[str, Any] | None) -> list[dict[str, Any]]:
    found = []
    for key in ("JupyterLabAppSettings", "CodeEditorAppSettings"):
        lifecycle = ((settings or {}).get(key) or {}).get("AppLifecycleManagement") or {}
        found.append(lifecycle.get("IdleSettings") or {})
    return found


def _idle_shutdown_enabled(settings: dict[str, Any] | None) -> bool:
    """Domain defaults: JupyterLab or Code Editor idle shutdown ``ENABLED``."""
    return any(i.get("LifecycleManagement") == "ENABLED" for i in _idle_settings(settings))


def _space_idle_timeout(settings: dict[str, Any] | None) -> bool:
    """Space settings: an idle time-out set for JupyterLab or Code Editor."""
    return any(i.get("IdleTimeoutInMinutes") for i in _idle_settings(settings))


def shutdown_gaps(aws: Aws, region: str) -> list[ShutdownGap]:
    """Domains, and spaces of domains, without built-in idle shutdown."""
    client = aws.sagemaker(region)
    gaps = []
    for page in client.get_paginator("list_domains").paginate():
        for summary in page["Domains"]:
            domain_id = summary["DomainId"]
            domain = client.describe_domain(DomainId=domain_id)
            domain_on = _idle_shutdown_enabled(dict(domain.get("DefaultUserSettings") or {}))
            domain_on = domain_on or _idle_shutdown_enabled(
                dict(domain.get("DefaultSpaceSettings") or {})
            )
            if not domain_on:
                gaps.append(ShutdownGap(region, domain_id, None, "no default idle shutdown"))
            spaces = client.get_paginator("list_spaces").paginate(DomainIdEquals=domain_id)
            for space_page in spaces:
                for space in space_page["Spaces"]:
                    described = client.describe_space(
                        DomainId=domain_id, SpaceName=space["SpaceName"]
                    )
                    if not domain_on and not _space_idle_timeout(
                        dict(described.get("SpaceSettings") or {})
                    ):
                        gaps.append(
                            ShutdownGap(region, domain_id, space["SpaceName"], "no idle shutdown")
                        )
    return gaps


def in_service_apps(aws: Aws, region: str, app_types: list[str]) -> list[StudioApp]:
    """InService apps of the given types, described (last user activity) and tagged."""
    client = aws.sagemaker(region)
    apps = []
    for page in client.get_paginator("list_apps").paginate():
        for summary in page["Apps"]:
            if summary.get("Status") != "InService" or summary["AppType"] not in app_types:
                continue
            described = client.describe_app(
                **_key(
                    summary["DomainId"],
                    summary["AppType"],
                    summary["AppName"],
                    summary.get("SpaceName"),
                    summary.get("UserProfileName"),
                )
            )
            arn = described["AppArn"]
            tags = {t["Key"]: t["Value"] for t in client.list_tags(ResourceArn=arn)["Tags"]}
            created = described["CreationTime"]
            spec = described.get("ResourceSpec") or {}
            name = summary.get("SpaceName") or summary.get("UserProfileName") or ""
            resource = Resource(
                kind=Kind.STUDIO_APP,
                name=f"{name}/{summary['AppType']}/{summary['AppName']}",
                arn=arn,
                region=region,
                account=account_of(arn),
                status=described["Status"],
                created=created,
                modified=described.get("LastHealthCheckTimestamp", created),
                tags=tags,
                instance_type=spec.get("InstanceType"),
                instance_count=1 if spec.get("InstanceType") else 0,
            )
            last = described.get("LastUserActivityTimestamp")
            apps.append(
                StudioApp(
                    resource=resource,
                    domain_id=summary["DomainId"],
                    app_type=summary["AppType"],
                    app_name=summary["AppName"],
                    space=summary.get("SpaceName"),
                    user_profile=summary.get("UserProfileName"),
                    last_activity=last,
                    # RStudio, TensorBoard, the profiler...: no reported activity is unknown
                    activity_known=last is not None or summary["AppType"] in CREATION_FALLBACK,
                )
            )
    return apps


def _key(
    domain_id: str, app_type: str, app_name: str, space: str | None, user: str | None
) -> dict[str, Any]:
    """The parameters that name one app."""
    key: dict[str, Any] = {"DomainId": domain_id, "AppType": app_type, "AppName": app_name}
    if space:
        key["SpaceName"] = space
    elif user:
        key["UserProfileName"] = user
    return key


# The app types whose idle rule may count from creation when DescribeApp reports no user
# activity (a Jupyter-based app that was never opened). Others without it are unknown.
CREATION_FALLBACK = frozenset({"JupyterLab", "CodeEditor", "KernelGateway", "JupyterServer"})
CANVAS = "Canvas"
CANVAS_NAMESPACE = "/aws/sagemaker/Canvas/AppActivity"
CANVAS_METRIC = "TimeSinceLastActive"
CANVAS_PERIOD = 300


def with_canvas_activity(
    aws: Aws, region: str, apps: Sequence[StudioApp], window: timedelta, now: datetime
) -> list[StudioApp]:
    """``apps`` with the last activity of each Canvas app read from ``TimeSinceLastActive``
    over the last ``window`` (one batched read; raises on a failed call). The newest datapoint
    at time ``t`` saying ``v`` seconds gives the latest possible activity, ``t + period - v``:
    never earlier than the truth, so an app is never called idle too soon."""
    canvas = [a for a in apps if a.app_type == CANVAS and a.user_profile]
    if not canvas:
        return list(apps)
    queries = [
        metric_query(
            f"cv{i}",
            CANVAS_NAMESPACE,
            CANVAS_METRIC,
            "Minimum",
            {"DomainId": a.domain_id, "UserProfileName": a.user_profile or ""},
            CANVAS_PERIOD,
        )
        for i, a in enumerate(canvas)
    ]
    read: dict[str, Any] = {}
    for offset in range(0, len(queries), 500):
        read.update(
            read_metric_data(aws, region, queries[offset : offset + 500], now - window, now)
        )
    found: dict[str, StudioApp] = {}
    for i, app in enumerate(canvas):
        series = read[f"cv{i}"]
        if series.problem is not None or not series.timestamps:
            found[app.resource.arn] = replace(app, last_activity=None, activity_known=False)
            continue
        newest = max(range(len(series.timestamps)), key=lambda j: series.timestamps[j])
        at = series.timestamps[newest] + timedelta(seconds=CANVAS_PERIOD)
        last = min(now, at - timedelta(seconds=series.values[newest]))
        found[app.resource.arn] = replace(app, last_activity=last, activity_known=True)
    return [found.get(a.resource.arn, a) for a in apps]


def still_idle(aws: Aws, app: StudioApp, now: datetime, window: timedelta | None = None) -> bool:
    """A fresh describe: still InService with the same last user activity (for Canvas, its
    ``TimeSinceLastActive`` read again over ``window`` shows no newer activity)."""
    described = aws.sagemaker(app.resource.region).describe_app(
        **_key(app.domain_id, app.app_type, app.app_name, app.space, app.user_profile)
    )
    if described["Status"] != "InService":
        return False
    if app.app_type != CANVAS:
        return bool(described.get("LastUserActivityTimestamp") == app.last_activity)
    if app.last_activity is None or window is None:
        return False
    (fresh,) = with_canvas_activity(aws, app.resource.region, [app], window, now)
    return (
        fresh.activity_known
        and fresh.last_activity is not None
        and (fresh.last_activity <= app.last_activity)
    )


def delete_app(aws: Aws, app: StudioApp) -> None:
    """DeleteApp: the app goes, the space and its storage stay."""
    aws.sagemaker(app.resource.region).delete_app(
        **_key(app.domain_id, app.app_type, app.app_name, app.space, app.user_profile)
    )
