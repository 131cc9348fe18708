"""SageMaker Studio as far as SageSaver reads and changes it, which moto 5.2 lacks: user
profiles, spaces and apps (create, describe, list, update, delete), ``UpdateDomain`` and the
default settings it changes (moto keeps the domains themselves), and the tags of profiles,
spaces and apps.

What AWS does that matters here: an app is ``InService`` when created and ``Deleted`` after
``DeleteApp`` (still listed, as AWS lists it for a while); a missing app, space or profile is
``ResourceNotFound``; an ``IdleTimeoutInMinutes`` outside 60..525,600 or outside the domain's
``MinIdleTimeoutInMinutes``/``MaxIdleTimeoutInMinutes`` is refused (``ValidationException``);
an update replaces each top-level settings key it gives and keeps the others; a domain created
without tags lists none (moto fails on it).

A test sets what no API sets (an app's creation and last user activity) with
:meth:`StudioStore.set_app_times`. Times are kept as ``datetime``; the wire writes them as
epoch seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sagesaver.core.partitions import arn, partition_of
from sagesaver.demo.wire import Answer, BehaviourRequest, error_answer, json_answer

MIN_IDLE, MAX_IDLE = 60, 525_600
_PAGE = 100
_APP_KEYS = ("JupyterLabAppSettings", "CodeEditorAppSettings")


StudioRequest = BehaviourRequest


@dataclass
class StudioStore:
    """Profiles, spaces and apps by (account, region, ...), the settings ``UpdateDomain`` gave
    each domain, and the tags of profiles, spaces and apps by ARN."""

    domains: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    profiles: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    spaces: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)  # by ARN
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def clear(self) -> None:
        """Everything forgotten, as after moto's reset."""
        with self.lock:
            for held in (self.domains, self.profiles, self.spaces, self.apps, self.tags):
                held.clear()

    def set_app_times(
        self, app_arn: str, created: datetime | None = None, last_activity: datetime | None = None
    ) -> None:
        """Set an app's ``CreationTime`` and ``LastUserActivityTimestamp`` (a test's hook: no
        API sets them)."""
        with self.lock:
            app = self.apps[app_arn]
            if created is not None:
                app["CreationTime"] = created
            if last_activity is not None:
                app["LastUserActivityTimestamp"] = last_activity


STUDIO = StudioStore()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _not_found(request: StudioRequest, what: str) -> Answer:
    return error_answer(request.environ, "ResourceNotFound", f"{what} does not exist.")


def _invalid(request: StudioRequest, message: str) -> Answer:
    return error_answer(request.environ, "ValidationException", message)


def _arn(request: StudioRequest, resource: str) -> str:
    region = request.region
    return arn(partition_of(region), "sagemaker", region, request.account, resource)


def _domain(request: StudioRequest, domain_id: str) -> dict[str, Any] | None:
    """moto's description of the domain with the settings ``UpdateDomain`` changed, or None."""
    import json

    answer = request.sagemaker("DescribeDomain", {"DomainId": domain_id})
    if answer.status != 200:
        return None
    described: dict[str, Any] = json.loads(answer.body)
    with STUDIO.lock:
        described.update(STUDIO.domains.get((request.account, request.region, domain_id), {}))
    return described


def _idle_values(settings: dict[str, Any] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in _APP_KEYS:
        lifecycle = ((settings or {}).get(key) or {}).get("AppLifecycleManagement") or {}
        yield key, lifecycle.get("IdleSettings") or {}


def _idle_refusal(settings: dict[str, Any] | None, domain: dict[str, Any] | None) -> str | None:
    """Why AWS refuses the idle settings in ``settings`` (None when it takes them): a value
    outside 60..525,600 minutes, or a time-out outside the domain's min and max."""
    bounds: dict[str, Any] = {}
    for key, idle in _idle_values((domain or {}).get("DefaultUserSettings")):
        bounds[key] = idle
    for key, idle in _idle_values(settings):
        for name in ("IdleTimeoutInMinutes", "MinIdleTimeoutInMinutes", "MaxIdleTimeoutInMinutes"):
            value = idle.get(name)
            if value is not None and not MIN_IDLE <= int(value) <= MAX_IDLE:
                return f"{key}.AppLifecycleManagement.IdleSettings.{name} must be 60..525600"
        timeout = idle.get("IdleTimeoutInMinutes")
        low = idle.get(
            "MinIdleTimeoutInMinutes", bounds.get(key, {}).get("MinIdleTimeoutInMinutes")
        )
        high = idle.get(
            "MaxIdleTimeoutInMinutes", bounds.get(key, {}).get("MaxIdleTimeoutInMinutes")
        )
        if timeout is not None and low is not None and int(timeout) < int(low):
            return f"{key}: IdleTimeoutInMinutes {timeout} is below the minimum {low}"
        if timeout is not None and high is not None and int(timeout) > int(high):
            return f"{key}: IdleTimeoutInMinutes {timeout} is above the maximum {high}"
    return None


def _merged(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """An update's settings: each top-level key given replaces the one held."""
    return {**(old or {}), **(new or {})}


def _page(request: StudioRequest, items: list[dict[str, Any]], key: str) -> Answer:
    params = request.params()
    start = int(params.get("NextToken") or 0)
    size = int(params.get("MaxResults") or _PAGE)
    answer: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        answer["NextToken"] = str(start + size)
    return json_answer(answer)


def _tagged(resource_arn: str, tags: list[dict[str, str]] | None) -> None:
    with STUDIO.lock:
        STUDIO.tags.setdefault(resource_arn, {}).update({t["Key"]: t["Value"] for t in tags or []})


# --- domains ----------------------------------------------------------------------------


def _describe_domain(request: StudioRequest) -> Answer:
    found = _domain(request, str(request.params().get("DomainId")))
    return request.forward() if found is None else json_answer(found)


def _update_domain(request: StudioRequest) -> Answer:
    params = request.params()
    domain_id = str(params.get("DomainId"))
    found = _domain(request, domain_id)
    if found is None:
        return _not_found(request, f"Domain {domain_id}")
    user = params.get("DefaultUserSettings")
    refusal = _idle_refusal(_merged(found.get("DefaultUserSettings"), user), None)
    if refusal is not None:
        return _invalid(request, refusal)
    with STUDIO.lock:
        held = STUDIO.domains.setdefault((request.account, request.region, domain_id), {})
        for key in ("DefaultUserSettings", "DefaultSpaceSettings"):
            if params.get(key) is not None:
                held[key] = _merged(found.get(key), params[key])
    return json_answer({"DomainArn": found["DomainArn"]})


# --- user profiles and spaces -------------------------------------------------------------


@dataclass(frozen=True)
class _Owner:
    """What a user profile and a space share here: their table, name and settings keys."""

    table: Callable[[], dict[tuple[str, str, str, str], dict[str, Any]]]
    name_key: str
    settings_key: str
    arn_key: str
    arn_type: str
    noun: str
    summary_keys: tuple[str, ...]


PROFILE = _Owner(
    lambda: STUDIO.profiles,
    "UserProfileName",
    "UserSettings",
    "UserProfileArn",
    "user-profile",
    "User profile",
    ("DomainId", "UserProfileName", "Status", "CreationTime", "LastModifiedTime"),
)
SPACE = _Owner(
    lambda: STUDIO.spaces,
    "SpaceName",
    "SpaceSettings",
    "SpaceArn",
    "space",
    "Space",
    ("DomainId", "SpaceName", "Status", "CreationTime", "LastModifiedTime"),
)


def _create(owner: _Owner) -> Callable[[StudioRequest], Answer]:
    def create(request: StudioRequest) -> Answer:
        params = request.params()
        domain_id, name = str(params.get("DomainId")), str(params.get(owner.name_key))
        domain = _domain(request, domain_id)
        if domain is None:
            return _not_found(request, f"Domain {domain_id}")
        settings = params.get(owner.settings_key) or {}
        refusal = _idle_refusal(settings, domain)
        if refusal is not None:
            return _invalid(request, refusal)
        key = (request.account, request.region, domain_id, name)
        resource_arn = _arn(request, f"{owner.arn_type}/{domain_id}/{name}")
        with STUDIO.lock:
            if key in owner.table():
                return error_answer(
                    request.environ, "ResourceInUse", f"{owner.noun} {name} already exists."
                )
            at = _now()
            owner.table()[key] = {
                "DomainId": domain_id,
                owner.name_key: name,
                owner.arn_key: resource_arn,
                "Status": "InService",
                "CreationTime": at,
                "LastModifiedTime": at,
                owner.settings_key: settings,
            }
        _tagged(resource_arn, params.get("Tags"))
        return json_answer({owner.arn_key: resource_arn})

    return create


def _held(owner: _Owner, request: StudioRequest) -> dict[str, Any] | None:
    params = request.params()
    key = (
        request.account,
        request.region,
        str(params.get("DomainId")),
        str(params.get(owner.name_key)),
    )
    return owner.table().get(key)


def _describe(owner: _Owner) -> Callable[[StudioRequest], Answer]:
    def describe(request: StudioRequest) -> Answer:
        with STUDIO.lock:
            found = _held(owner, request)
            answer = None if found is None else json_answer(found)
        name = request.params().get(owner.name_key)
        return answer or _not_found(request, f"{owner.noun} {name}")

    return describe


def _list(owner: _Owner, plural: str) -> Callable[[StudioRequest], Answer]:
    def listing(request: StudioRequest) -> Answer:
        domain_id = request.params().get("DomainIdEquals")
        with STUDIO.lock:
            found = [
                {k: v[k] for k in owner.summary_keys if k in v}
                for (account, region, domain, _), v in sorted(owner.table().items())
                if (account, region) == (request.account, request.region)
                and (domain_id is None or domain == domain_id)
            ]
        return _page(request, found, plural)

    return listing


def _update(owner: _Owner) -> Callable[[StudioRequest], Answer]:
    def update(request: StudioRequest) -> Answer:
        params = request.params()
        name = params.get(owner.name_key)
        domain = _domain(request, str(params.get("DomainId")))
        with STUDIO.lock:
            found = _held(owner, request)
            if found is None:
                return _not_found(request, f"{owner.noun} {name}")
            settings = _merged(found.get(owner.settings_key), params.get(owner.settings_key))
            refusal = _idle_refusal(settings, domain)
            if refusal is not None:
                return _invalid(request, refusal)
            found[owner.settings_key] = settings
            found["LastModifiedTime"] = _now()
            return json_answer({owner.arn_key: found[owner.arn_key]})

    return update


# --- apps ---------------------------------------------------------------------------------


def _app_owner(params: dict[str, Any]) -> tuple[str, str] | None:
    for key in ("SpaceName", "UserProfileName"):
        if params.get(key):
            return key, str(params[key])
    return None


def _app_arn(request: StudioRequest, params: dict[str, Any]) -> str | None:
    owner = _app_owner(params)
    if owner is None:
        return None
    app_type = str(params.get("AppType", "")).lower()
    return _arn(
        request, f"app/{params.get('DomainId')}/{owner[1]}/{app_type}/{params.get('AppName')}"
    )


def _create_app(request: StudioRequest) -> Answer:
    params = request.params()
    owner = _app_owner(params)
    app_arn = _app_arn(request, params)
    if owner is None or app_arn is None:
        return _invalid(request, "CreateApp needs a SpaceName or a UserProfileName")
    table = STUDIO.spaces if owner[0] == "SpaceName" else STUDIO.profiles
    with STUDIO.lock:
        if (request.account, request.region, str(params.get("DomainId")), owner[1]) not in table:
            return _not_found(request, f"{owner[0]} {owner[1]}")
        held = STUDIO.apps.get(app_arn)
        if held is not None and held["Status"] != "Deleted":
            return error_answer(request.environ, "ResourceInUse", f"App {app_arn} exists.")
        at = _now()
        STUDIO.apps[app_arn] = {
            "AppArn": app_arn,
            "AppType": params.get("AppType"),
            "AppName": params.get("AppName"),
            "DomainId": params.get("DomainId"),
            owner[0]: owner[1],
            "Status": "InService",
            "CreationTime": at,
            "ResourceSpec": params.get("ResourceSpec") or {},
            "_account_region": (request.account, request.region),
        }
    _tagged(app_arn, params.get("Tags"))
    return json_answer({"AppArn": app_arn})


def _shown(app: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in app.items() if not k.startswith("_")}


def _describe_app(request: StudioRequest) -> Answer:
    params = request.params()
    app_arn = _app_arn(request, params)
    with STUDIO.lock:
        found = STUDIO.apps.get(app_arn or "")
        if found is not None:
            return json_answer(_shown(found))
    return _not_found(request, f"App {params.get('AppType')}/{params.get('AppName')}")


def _list_apps(request: StudioRequest) -> Answer:
    domain_id = request.params().get("DomainIdEquals")
    keys = ("DomainId", "UserProfileName", "SpaceName", "AppType", "AppName", "Status")
    with STUDIO.lock:
        found = [
            {k: a[k] for k in (*keys, "CreationTime", "ResourceSpec") if k in a}
            for _, a in sorted(STUDIO.apps.items())
            if a["_account_region"] == (request.account, request.region)
            and (domain_id is None or a["DomainId"] == domain_id)
        ]
    return _page(request, found, "Apps")


def _delete_app(request: StudioRequest) -> Answer:
    params = request.params()
    app_arn = _app_arn(request, params)
    with STUDIO.lock:
        found = STUDIO.apps.get(app_arn or "")
        if found is None or found["Status"] == "Deleted":
            return _not_found(request, f"App {params.get('AppType')}/{params.get('AppName')}")
        found["Status"] = "Deleted"
    return json_answer({})


# --- tags of profiles, spaces and apps (moto keeps those of domains) ----------------------


def is_studio_arn(resource_arn: str) -> bool:
    """An ARN of a user profile, space or app: its tags are kept here."""
    resource = resource_arn.split(":", 5)[-1]
    return resource.startswith(("app/", "space/", "user-profile/"))


def _known(resource_arn: str) -> bool:
    if resource_arn in STUDIO.apps:
        return True
    tables = (STUDIO.spaces, STUDIO.profiles)
    return any(
        v.get("SpaceArn", v.get("UserProfileArn")) == resource_arn
        for t in tables
        for v in t.values()
    )


def studio_tags(request: StudioRequest) -> Answer:
    """``ListTags``, ``AddTags`` (replacing a key's value) and ``DeleteTags`` on a profile,
    space or app."""
    params = request.params()
    resource_arn = str(params.get("ResourceArn"))
    with STUDIO.lock:
        if not _known(resource_arn):
            return _invalid(request, f"Could not find resource {resource_arn}")
        held = STUDIO.tags.setdefault(resource_arn, {})
        if request.operation == "AddTags":
            held.update({t["Key"]: t["Value"] for t in params.get("Tags") or []})
            return json_answer({"Tags": [{"Key": k, "Value": v} for k, v in held.items()]})
        if request.operation == "DeleteTags":
            for key in params.get("TagKeys") or []:
                held.pop(key, None)
            return json_answer({})
        return json_answer({"Tags": [{"Key": k, "Value": v} for k, v in sorted(held.items())]})


def domain_tags(request: StudioRequest) -> Answer:
    """``ListTags`` of a domain: moto's, but for a domain created without tags, on which moto
    fails (500); AWS lists no tags."""
    resource_arn = str(request.params().get("ResourceArn"))
    try:
        answer = request.forward()
        if answer.status < 500:
            return answer
    except TypeError:  # moto's paginator over the tags it holds as None
        pass
    if _domain(request, resource_arn.rsplit("/", 1)[-1]) is None:
        return _invalid(request, f"Could not find resource {resource_arn}")
    return json_answer({"Tags": []})


HANDLERS: dict[str, Callable[[StudioRequest], Answer]] = {
    "DescribeDomain": _describe_domain,
    "UpdateDomain": _update_domain,
    "CreateUserProfile": _create(PROFILE),
    "DescribeUserProfile": _describe(PROFILE),
    "ListUserProfiles": _list(PROFILE, "UserProfiles"),
    "UpdateUserProfile": _update(PROFILE),
    "CreateSpace": _create(SPACE),
    "DescribeSpace": _describe(SPACE),
    "ListSpaces": _list(SPACE, "Spaces"),
    "UpdateSpace": _update(SPACE),
    "CreateApp": _create_app,
    "DescribeApp": _describe_app,
    "ListApps": _list_apps,
    "DeleteApp": _delete_app,
}
