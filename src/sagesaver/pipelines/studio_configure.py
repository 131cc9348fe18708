"""``sagesaver studio configure``: SageMaker Studio's own idle shutdown
(``AppLifecycleManagement.IdleSettings``) set on the domains, user profiles and spaces that lack
it, dry run first.

What counts as set is what the scan reads (:func:`sagesaver.aws.studio.has_idle_shutdown`): a
resource that has it is kept as it is; so is a profile or space of a domain whose default has it
(or gets it in this run: the domain's default applies to them). Only the JupyterLab and Code
Editor settings the policy's ``studio_apps.app_types`` selects are written; a profile or space
the policy's ``studio_apps`` include/exclude/tags leave out is not touched, nor is any resource
carrying ``studio_apps.protect_tag``. With ``apply``, each resource is described again with its
tags immediately before its update, and the update carries the app settings it already has with
the idle settings added. A resource that cannot be read or updated is reported; the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sagesaver.aws import studio as aws_studio
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.aws.studio import DOMAIN, PROFILE, SPACE, StudioSettings
from sagesaver.core.errors import InputError
from sagesaver.core.formats import iso
from sagesaver.core.model import ScanError
from sagesaver.core.policy import Policy
from sagesaver.render.scan import error_dict

# The app types with built-in idle shutdown, and where their settings are.
APP_SETTINGS = {"JupyterLab": "JupyterLabAppSettings", "CodeEditor": "CodeEditorAppSettings"}
# IdleTimeoutInMinutes and its min and max, as the SageMaker API accepts them.
MIN_MINUTES, MAX_MINUTES = 60, 525_600
SCOPES = ("domains", "profiles", "spaces", "all")
WOULD_SET, SET, KEPT, PROTECTED, NOT_SELECTED, FAILED = (
    "would set",
    "set",
    "kept",
    "protected",
    "not selected",
    "failed",
)


@dataclass(frozen=True)
class IdleRequest:
    """What to set: the time-out, the range users may choose (domains only), and where."""

    idle_minutes: int
    min_minutes: int | None = None
    max_minutes: int | None = None
    scope: str = "all"

    def levels(self) -> set[str]:
        """The resource levels in scope."""
        chosen = {"domains": DOMAIN, "profiles": PROFILE, "spaces": SPACE}
        return set(chosen.values()) if self.scope == "all" else {chosen[self.scope]}


def check_request(
    idle_minutes: int, min_minutes: int | None, max_minutes: int | None, scope: str
) -> IdleRequest:
    """The request, checked before any AWS call: every value within 60..525,600 minutes, the
    time-out within the range, the range only where domains are in scope. Raises
    :class:`InputError` naming the option and the problem."""
    if scope not in SCOPES:
        raise InputError(f"--scope {scope}: choose one of {', '.join(SCOPES)}")
    for option, value in (
        ("--idle-minutes", idle_minutes),
        ("--min-minutes", min_minutes),
        ("--max-minutes", max_minutes),
    ):
        if value is not None and not MIN_MINUTES <= value <= MAX_MINUTES:
            raise InputError(
                f"{option} {value}: SageMaker accepts {MIN_MINUTES} to {MAX_MINUTES} minutes "
                "(1 hour to 365 days)"
            )
    if (min_minutes is not None or max_minutes is not None) and scope not in ("domains", "all"):
        raise InputError(
            "--min-minutes and --max-minutes set a domain's range: use them with --scope "
            "domains or all"
        )
    if min_minutes is not None and max_minutes is not None and min_minutes > max_minutes:
        raise InputError(f"--min-minutes {min_minutes} is above --max-minutes {max_minutes}")
    if min_minutes is not None and idle_minutes < min_minutes:
        raise InputError(f"--idle-minutes {idle_minutes} is below --min-minutes {min_minutes}")
    if max_minutes is not None and idle_minutes > max_minutes:
        raise InputError(f"--idle-minutes {idle_minutes} is above --max-minutes {max_minutes}")
    return IdleRequest(idle_minutes, min_minutes, max_minutes, scope)


def chosen_app_types(policy: Policy) -> list[str]:
    """The app types with built-in idle shutdown that ``studio_apps.app_types`` selects.
    Raises :class:`InputError` when it selects neither."""
    chosen: list[str] = [t for t in APP_SETTINGS if t in policy.studio_apps.app_types]
    if not chosen:
        raise InputError(
            "studio_apps.app_types selects neither JupyterLab nor CodeEditor, the apps with "
            "built-in idle shutdown: nothing to configure"
        )
    return chosen


@dataclass(frozen=True)
class Change:
    """One domain, user profile or space: what it has, what is (or would be) set, and what
    happened."""

    region: str
    level: str
    domain_id: str
    name: str
    arn: str
    has: str
    sets: str
    outcome: str
    reason: str


@dataclass
class ConfigureResult:
    """Everything a ``studio configure`` run found and did."""

    generated_at: datetime
    dry_run: bool
    request: IdleRequest
    changes: list[Change] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The JSON document of the run."""
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.outcome] = counts.get(change.outcome, 0) + 1
        return {
            "generated_at": iso(self.generated_at),
            "dry_run": self.dry_run,
            "request": asdict(self.request),
            "resources": [asdict(c) for c in self.changes],
            "counts": counts,
            "errors": [error_dict(e) for e in self.errors],
        }


def describe_idle(found: StudioSettings) -> str:
    """What idle shutdown ``found`` has, for people: ``JupyterLab ENABLED 120 min`` ..."""
    settings = found.settings
    if found.level == DOMAIN:
        settings = dict(settings.get("DefaultUserSettings") or {})
    parts = []
    for app_type, idle in aws_studio.idle_settings_of(settings).items():
        words = [str(idle["LifecycleManagement"])] if idle.get("LifecycleManagement") else []
        if idle.get("IdleTimeoutInMinutes"):
            words.append(f"{idle['IdleTimeoutInMinutes']} min")
        if idle.get("MinIdleTimeoutInMinutes") or idle.get("MaxIdleTimeoutInMinutes"):
            low = idle.get("MinIdleTimeoutInMinutes", "-")
            high = idle.get("MaxIdleTimeoutInMinutes", "-")
            words.append(f"range {low}-{high} min")
        if words:
            parts.append(f"{app_type} {' '.join(words)}")
    if found.level == DOMAIN and aws_studio.has_idle_shutdown(found) and not parts:
        parts.append("default space settings ENABLED")
    return "; ".join(parts) or "no idle shutdown"


def app_types_of(found: StudioSettings, chosen: Sequence[str]) -> list[str]:
    """The app types whose idle settings are written on ``found``: the chosen ones, or for a
    space of one app type, that type when chosen (none otherwise)."""
    own = found.settings.get("AppType") if found.level == SPACE else None
    if own:
        return [own] if own in chosen else []
    return list(chosen)


def new_settings(
    found: StudioSettings, request: IdleRequest, app_types: Sequence[str]
) -> dict[str, Any]:
    """The settings an update sends: for each of ``app_types``, the app settings ``found``
    has, with ``AppLifecycleManagement.IdleSettings`` set (``ENABLED`` and the time-out; on a
    domain, the range users may choose, when asked; on a space, the time-out alone, all its
    idle settings take)."""
    settings = found.settings
    if found.level == DOMAIN:
        settings = dict(settings.get("DefaultUserSettings") or {})
    idle: dict[str, Any] = {"IdleTimeoutInMinutes": request.idle_minutes}
    if found.level != SPACE:
        idle = {"LifecycleManagement": "ENABLED", **idle}
    if found.level == DOMAIN and request.min_minutes is not None:
        idle["MinIdleTimeoutInMinutes"] = request.min_minutes
    if found.level == DOMAIN and request.max_minutes is not None:
        idle["MaxIdleTimeoutInMinutes"] = request.max_minutes
    update: dict[str, Any] = {}
    for app_type in app_types:
        key = APP_SETTINGS[app_type]
        app = dict(settings.get(key) or {})
        app["AppLifecycleManagement"] = {"IdleSettings": dict(idle)}
        update[key] = app
    return update


def describe_update(update: dict[str, Any]) -> str:
    """What an update sets, for people: ``JupyterLab, CodeEditor: ENABLED 120 min``."""
    if not update:
        return ""
    names = [t for t, key in APP_SETTINGS.items() if key in update]
    idle = next(iter(update.values()))["AppLifecycleManagement"]["IdleSettings"]
    words = [idle["LifecycleManagement"]] if "LifecycleManagement" in idle else []
    words.append(f"{idle['IdleTimeoutInMinutes']} min")
    if "MinIdleTimeoutInMinutes" in idle or "MaxIdleTimeoutInMinutes" in idle:
        low = idle.get("MinIdleTimeoutInMinutes", "-")
        high = idle.get("MaxIdleTimeoutInMinutes", "-")
        words.append(f"(users may choose {low}-{high} min)")
    return f"{', '.join(names)}: {' '.join(words)}"


@dataclass(frozen=True)
class _Run:
    aws: Aws
    policy: Policy
    request: IdleRequest
    app_types: tuple[str, ...]
    apply: bool


def _change(found: StudioSettings, outcome: str, reason: str, sets: str = "") -> Change:
    return Change(
        found.region,
        found.level,
        found.domain_id,
        found.name,
        found.arn,
        describe_idle(found),
        sets,
        outcome,
        reason,
    )


def _configure_one(run: _Run, found: StudioSettings, errors: list[ScanError]) -> Change:
    """One resource that lacked idle shutdown when read: its tags (with ``apply``, it and its
    tags read again now), the policy's selection and protect tag, then the update."""
    rules = run.policy.studio_apps
    where = found.name if found.level == DOMAIN else f"{found.domain_id}/{found.name}"
    try:
        if run.apply:
            found, tags = aws_studio.settings_now(run.aws, found)
        else:
            tags = aws_studio.resource_tags(run.aws, found.region, found.arn)
    except AWS_ERRORS as exc:
        error = scan_error(exc, found.region, getattr(exc, "operation_name", "ListTags"), where)
        errors.append(error)
        return _change(found, FAILED, f"could not be read: {error.message}")
    if aws_studio.has_idle_shutdown(found):
        return _change(found, KEPT, "its idle shutdown was set since it was read")
    if found.level != DOMAIN:
        selected, why = rules.selects(found.name, tags)
        if not selected:
            return _change(found, NOT_SELECTED, f"studio_apps: {why}")
    if rules.is_protected(tags):
        return _change(found, PROTECTED, f"protected by tag {rules.protect_tag}")
    app_types = app_types_of(found, run.app_types)
    if not app_types:
        own = found.settings.get("AppType")
        return _change(found, NOT_SELECTED, f"its app type {own} is not in studio_apps.app_types")
    update = new_settings(found, run.request, app_types)
    sets = describe_update(update)
    if not run.apply:
        return _change(found, WOULD_SET, "no idle shutdown", sets)
    try:
        aws_studio.update_settings(run.aws, found, update)
    except AWS_ERRORS as exc:
        operation = {DOMAIN: "UpdateDomain", PROFILE: "UpdateUserProfile", SPACE: "UpdateSpace"}
        error = scan_error(exc, found.region, operation[found.level], where)
        errors.append(error)
        return _change(found, FAILED, f"not changed: {error.message}", sets)
    return _change(found, SET, "had no idle shutdown", sets)


def _configure_domain(
    run: _Run, read: aws_studio.DomainSettings, errors: list[ScanError]
) -> list[Change]:
    """A domain, then its user profiles and spaces, as the request's scope says."""
    levels = run.request.levels()
    changes: list[Change] = []
    covered = ""
    if aws_studio.has_idle_shutdown(read.domain):
        covered = "the domain's default idle shutdown applies"
    if DOMAIN in levels:
        if covered:
            changes.append(_change(read.domain, KEPT, "its default idle shutdown is set"))
        else:
            change = _configure_one(run, read.domain, errors)
            changes.append(change)
            if change.outcome in (WOULD_SET, SET):
                covered = "the domain's default idle shutdown, set by this run, applies"
    children = [
        *(read.profiles if PROFILE in levels else []),
        *(read.spaces if SPACE in levels else []),
    ]
    for child in children:
        if aws_studio.has_idle_shutdown(child):
            changes.append(_change(child, KEPT, "its own idle shutdown is set"))
        elif covered:
            changes.append(_change(child, KEPT, covered))
        else:
            changes.append(_configure_one(run, child, errors))
    return changes


def studio_configure(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    request: IdleRequest,
    now: datetime,
    apply: bool,
) -> ConfigureResult:
    """Set Studio's idle shutdown where it is missing in each region (module docstring); with
    ``apply`` false, only say what would be set. Raises :class:`InputError` when the policy
    selects no app type with idle shutdown."""
    run = _Run(aws, policy, request, tuple(chosen_app_types(policy)), apply)
    result = ConfigureResult(now, not apply, request)
    profiles = PROFILE in request.levels()
    for region in regions:
        try:
            domains = aws_studio.studio_settings(aws, region, result.errors, profiles)
        except AWS_ERRORS as exc:
            result.errors.append(scan_error(exc, region, "ListDomains"))
            continue
        for read in domains:
            result.changes.extend(_configure_domain(run, read, result.errors))
    return result
