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

moto implements none of the app, space and user profile operations: the simulator adds them
at the wire (``demo/studio.py``); the pipeline tests of the scan use botocore's Stubber.

``studio configure`` reads and changes the idle shutdown of domains, user profiles and spaces
with :func:`studio_settings` (the same reading as the scan's gaps), :func:`settings_now` and
:func:`update_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.inventory import account_of
from sagesaver.aws.metrics import metric_query, read_metric_data
from sagesaver.aws.session import Aws
from sagesaver.core.guard import Observed
from sagesaver.core.model import Kind, Resource, ScanError


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


def _failed(exc: Exception, region: str, operation: str, resource: str) -> ScanError:
    """The error of a failed call on one domain or app: the operation botocore names, else
    ``operation`` (the calls it may have been)."""
    return scan_error(exc, region, getattr(exc, "operation_name", None) or operation, resource)


DOMAIN, PROFILE, SPACE = "domain", "user-profile", "space"


@dataclass(frozen=True)
class StudioSettings:
    """A domain, user profile or space as described, with its settings: a domain's
    ``DefaultUserSettings`` and ``DefaultSpaceSettings`` under those keys, a profile's
    ``UserSettings``, a space's ``SpaceSettings``. ``name`` is the profile or space name (the
    domain id for a domain)."""

    region: str
    level: str  # DOMAIN, PROFILE or SPACE
    domain_id: str
    name: str
    arn: str
    settings: dict[str, Any]


@dataclass
class DomainSettings:
    """One domain and, as far as they were read, its spaces and user profiles."""

    domain: StudioSettings
    spaces: list[StudioSettings] = field(default_factory=list)
    profiles: list[StudioSettings] = field(default_factory=list)


def has_idle_shutdown(found: StudioSettings) -> bool:
    """Whether built-in idle shutdown is set: on a domain, its JupyterLab or Code Editor
    default ``ENABLED`` (for users or spaces); on a user profile, ``ENABLED`` or a time-out;
    on a space, a time-out (a space's idle settings have nothing else)."""
    settings = found.settings
    if found.level == DOMAIN:
        return _idle_shutdown_enabled(settings.get("DefaultUserSettings")) or (
            _idle_shutdown_enabled(settings.get("DefaultSpaceSettings"))
        )
    if found.level == PROFILE:
        return _idle_shutdown_enabled(settings) or _space_idle_timeout(settings)
    return _space_idle_timeout(settings)


def idle_settings_of(settings: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The JupyterLab and Code Editor ``IdleSettings`` in ``settings`` (empty when unset)."""
    keys = ("JupyterLab", "CodeEditor")
    return dict(zip(keys, _idle_settings(settings), strict=True))


def _read_domain(
    client: Any, region: str, domain_id: str, profiles: bool, found: list[DomainSettings]
) -> None:
    """Add one domain to ``found``, then its spaces (and with ``profiles`` its user profiles)
    as they are read (raises on a failed call: what was read before it stays)."""
    described = client.describe_domain(DomainId=domain_id)
    settings = {
        key: dict(described.get(key) or {})
        for key in ("DefaultUserSettings", "DefaultSpaceSettings")
    }
    domain = StudioSettings(
        region, DOMAIN, domain_id, domain_id, described.get("DomainArn", ""), settings
    )
    read = DomainSettings(domain)
    found.append(read)
    for space_page in client.get_paginator("list_spaces").paginate(DomainIdEquals=domain_id):
        for space in space_page["Spaces"]:
            one = client.describe_space(DomainId=domain_id, SpaceName=space["SpaceName"])
            read.spaces.append(
                StudioSettings(
                    region,
                    SPACE,
                    domain_id,
                    space["SpaceName"],
                    one.get("SpaceArn", ""),
                    dict(one.get("SpaceSettings") or {}),
                )
            )
    if not profiles:
        return
    pages = client.get_paginator("list_user_profiles").paginate(DomainIdEquals=domain_id)
    for page in pages:
        for profile in page["UserProfiles"]:
            name = profile["UserProfileName"]
            one = client.describe_user_profile(DomainId=domain_id, UserProfileName=name)
            read.profiles.append(
                StudioSettings(
                    region,
                    PROFILE,
                    domain_id,
                    name,
                    one.get("UserProfileArn", ""),
                    dict(one.get("UserSettings") or {}),
                )
            )


def studio_settings(
    aws: Aws, region: str, errors: list[ScanError], profiles: bool = False
) -> list[DomainSettings]:
    """Each domain of ``region`` with its settings and its spaces' (and with ``profiles``
    its user profiles'). A failed ``ListDomains`` raises; a domain whose settings, spaces or
    profiles cannot be read is an error in ``errors`` naming it (what was read of it before
    the failure stays), and the others are read."""
    client = aws.sagemaker(region)
    found: list[DomainSettings] = []
    calls = "DescribeDomain/ListSpaces" + ("/ListUserProfiles" if profiles else "")
    for page in client.get_paginator("list_domains").paginate():
        for summary in page["Domains"]:
            domain_id = summary["DomainId"]
            try:
                _read_domain(client, region, domain_id, profiles, found)
            except AWS_ERRORS as exc:
                errors.append(_failed(exc, region, calls, domain_id))
    return found


def shutdown_gaps(aws: Aws, region: str, errors: list[ScanError]) -> list[ShutdownGap]:
    """Domains, and spaces of domains, without built-in idle shutdown (a space of a domain
    whose default has it is covered). A failed ``ListDomains`` raises; a domain whose
    settings or spaces cannot be read is an error in ``errors`` naming it (the gaps found
    before the failure stay), and the others are read."""
    gaps: list[ShutdownGap] = []
    for read in studio_settings(aws, region, errors):
        if has_idle_shutdown(read.domain):
            continue
        domain_id = read.domain.domain_id
        gaps.append(ShutdownGap(region, domain_id, None, "no default idle shutdown"))
        gaps += [
            ShutdownGap(region, domain_id, space.name, "no idle shutdown")
            for space in read.spaces
            if not has_idle_shutdown(space)
        ]
    return gaps


def settings_now(aws: Aws, found: StudioSettings) -> tuple[StudioSettings, dict[str, str]]:
    """``found`` described again now, and its tags (raises on a failed call)."""
    client: Any = aws.sagemaker(found.region)  # settings as plain dicts, as they are sent
    if found.level == DOMAIN:
        described = client.describe_domain(DomainId=found.domain_id)
        settings = {
            key: dict(described.get(key) or {})
            for key in ("DefaultUserSettings", "DefaultSpaceSettings")
        }
        fresh = replace(found, settings=settings, arn=described.get("DomainArn", found.arn))
    elif found.level == PROFILE:
        described = client.describe_user_profile(
            DomainId=found.domain_id, UserProfileName=found.name
        )
        fresh = replace(found, settings=dict(described.get("UserSettings") or {}))
    else:
        described = client.describe_space(DomainId=found.domain_id, SpaceName=found.name)
        fresh = replace(found, settings=dict(described.get("SpaceSettings") or {}))
    return fresh, resource_tags(aws, fresh.region, fresh.arn)


def resource_tags(aws: Aws, region: str, arn: str) -> dict[str, str]:
    """The tags of a domain, user profile or space (raises on a failed call)."""
    tags: dict[str, str] = {}
    for page in aws.sagemaker(region).get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({t["Key"]: t["Value"] for t in page["Tags"]})
    return tags


def update_settings(aws: Aws, found: StudioSettings, settings: dict[str, Any]) -> None:
    """``UpdateDomain`` (``settings`` its ``DefaultUserSettings``), ``UpdateUserProfile``
    (its ``UserSettings``) or ``UpdateSpace`` (its ``SpaceSettings``)."""
    client: Any = aws.sagemaker(found.region)  # settings as plain dicts, as described
    if found.level == DOMAIN:
        client.update_domain(DomainId=found.domain_id, DefaultUserSettings=settings)
    elif found.level == PROFILE:
        client.update_user_profile(
            DomainId=found.domain_id, UserProfileName=found.name, UserSettings=settings
        )
    else:
        client.update_space(DomainId=found.domain_id, SpaceName=found.name, SpaceSettings=settings)


def in_service_apps(
    aws: Aws, region: str, app_types: list[str], errors: list[ScanError]
) -> list[StudioApp]:
    """InService apps of the given types, described (last user activity) and tagged. A
    failed ``ListApps`` raises; an app that cannot be described or whose tags cannot be read
    is an error in ``errors`` naming it, and the others are read."""
    client = aws.sagemaker(region)
    apps = []
    for page in client.get_paginator("list_apps").paginate():
        for summary in page["Apps"]:
            if summary.get("Status") != "InService" or summary["AppType"] not in app_types:
                continue
            owner = summary.get("SpaceName") or summary.get("UserProfileName") or ""
            name = f"{owner}/{summary['AppType']}/{summary['AppName']}"
            try:
                apps.append(_described_app(client, region, summary, name))
            except AWS_ERRORS as exc:
                errors.append(_failed(exc, region, "DescribeApp/ListTags", name))
    return apps


def _described_app(client: Any, region: str, summary: Mapping[str, Any], name: str) -> StudioApp:
    """One listed app, described and tagged (raises on a failed call)."""
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
    resource = Resource(
        kind=Kind.STUDIO_APP,
        name=name,
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
    return StudioApp(
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


def delete_app(aws: Aws, app: StudioApp) -> None:
    """DeleteApp: the app goes, the space and its storage stay."""
    aws.sagemaker(app.resource.region).delete_app(
        **_key(app.domain_id, app.app_type, app.app_name, app.space, app.user_profile)
    )


def read_for_guard(aws: Aws, app: StudioApp, now: datetime, window: timedelta) -> Observed:
    """Everything the last-moment guard checks before ``DeleteApp``, read now: the app
    (``DescribeApp``: state, creation, user activity), its tags, and for Canvas its activity
    metric over ``window``. Activity newer than the scan saw is ``used``; a Canvas app whose
    activity cannot be read raises :class:`UnreadableActivity` (unknown is never idle).
    Raises on any failed read."""
    client = aws.sagemaker(app.resource.region)
    described = client.describe_app(
        **_key(app.domain_id, app.app_type, app.app_name, app.space, app.user_profile)
    )
    tags = client.list_tags(ResourceArn=app.resource.arn)["Tags"]
    used = ""
    if app.app_type != CANVAS:
        last = described.get("LastUserActivityTimestamp")
        if last is not None and (app.last_activity is None or last > app.last_activity):
            used = f"user activity at {last:%Y-%m-%d %H:%M} UTC, after the scan"
    else:
        (fresh,) = with_canvas_activity(aws, app.resource.region, [app], window, now)
        if not fresh.activity_known or fresh.last_activity is None:
            raise UnreadableActivity(f"{app.resource.name}: its Canvas activity cannot be read")
        if app.last_activity is None or fresh.last_activity > app.last_activity:
            used = f"Canvas activity at {fresh.last_activity:%Y-%m-%d %H:%M} UTC, after the scan"
    return Observed(
        status=str(described["Status"]),
        created=described["CreationTime"],
        modified=described["CreationTime"],  # an app has no deployment that changes
        tags={t["Key"]: t["Value"] for t in tags},
        invocations=0.0,
        at=now,
        used=used,
    )


class UnreadableActivity(Exception):
    """A Canvas app's activity could not be read at the moment of the act."""


def app_state(aws: Aws, region: str, subject: dict[str, str]) -> tuple[str, datetime] | None:
    """The state and creation time of the app a lease names (its ``domain``, ``app_type``,
    ``app_name``, ``space`` or ``user_profile``), or None when there is no such app. Raises on
    any other failed read."""
    client = aws.sagemaker(region)
    try:
        described = client.describe_app(
            **_key(
                subject["domain"],
                subject["app_type"],
                subject["app_name"],
                subject.get("space") or None,
                subject.get("user_profile") or None,
            )
        )
    except client.exceptions.ResourceNotFound:
        return None
    return str(described["Status"]), described["CreationTime"]
