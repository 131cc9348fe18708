"""The policy: which resources SageSaver looks at and what it does with the idle ones.

A YAML file validated into typed, frozen pydantic models. No file means the defaults.
Errors name the file, the key, its line (when YAML gives it) and the problem, and raise
:class:`~sagesaver.core.errors.PolicyError` (exit code 2).
"""

from __future__ import annotations

import fnmatch
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from sagesaver.core.channels import ChannelSpec, owner_problems
from sagesaver.core.cron import Schedule, ScheduleError, make_period, parse_cron, zone
from sagesaver.core.errors import InputError, PolicyError
from sagesaver.core.partitions import one_partition, partition_of, partition_of_arn
from sagesaver.core.workdays import CalendarError, WorkDays, holiday_calendar, parse_calendar

DEFAULT_PROTECT_TAG = "sagesaver:protect"
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
SNS_TOPIC_ARN_RE = re.compile(
    r"^arn:aws(-cn|-us-gov|-iso[a-z]?)?:sns:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<name>[A-Za-z0-9_-]{1,256}(\.fifo)?)$"
)
# CloudWatch keeps 1-hour datapoints for 455 days: a longer look-back cannot be answered.
MAX_LOOKBACK_HOURS = 455 * 24
# Values of the protect tag that explicitly do *not* protect.
FALSE_VALUES = frozenset({"false", "no", "0", "off"})


def _check_glob(pattern: str) -> str:
    if not pattern.strip():
        raise ValueError("a name pattern must not be empty")
    depth = 0
    for char in pattern:
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
    if depth:
        raise ValueError(f"pattern {pattern!r} has an unclosed '['")
    return pattern


Glob = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_check_glob)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Selection(_Strict):
    """Which resources of one kind the policy applies to."""

    include: list[Glob] = Field(default_factory=list)
    exclude: list[Glob] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    protect_tag: str = Field(default=DEFAULT_PROTECT_TAG, min_length=1, max_length=128)

    def selects(self, name: str, tags: dict[str, str]) -> tuple[bool, str]:
        """Whether the resource is in scope, and if not, why (a readable reason)."""
        if self.include and not any(fnmatch.fnmatchcase(name, p) for p in self.include):
            return False, f"name matches none of include {self.include}"
        for pattern in self.exclude:
            if fnmatch.fnmatchcase(name, pattern):
                return False, f"name matches exclude {pattern!r}"
        for key, wanted in self.tags.items():
            value = tags.get(key)
            if value is None:
                return False, f"tag {key!r} is missing (policy wants {key}={wanted})"
            if not fnmatch.fnmatchcase(value, wanted):
                return False, f"tag {key}={value} does not match {wanted!r}"
        return True, "selected by the policy"

    def is_protected(self, tags: dict[str, str]) -> bool:
        """A resource carrying the protect tag (with any value but false/no/0/off)."""
        value = tags.get(self.protect_tag)
        return value is not None and value.strip().lower() not in FALSE_VALUES


class RightsizePolicy(_Strict):
    """Right-sizing of busy endpoints from their utilisation peaks."""

    enabled: bool = True
    days: float = Field(default=14.0, gt=0, le=63)
    # A smaller type is recommended when every peak, scaled to it, stays at or under this.
    target_peak_percent: float = Field(default=60.0, gt=0, le=100)


class EndpointPolicy(Selection):
    """Idle detection for real-time endpoints."""

    rightsize: RightsizePolicy = Field(default_factory=RightsizePolicy)

    idle_hours: float = Field(default=24.0, gt=0, le=MAX_LOOKBACK_HOURS)
    min_age_hours: float | None = Field(default=None, ge=0, le=MAX_LOOKBACK_HOURS)
    action: Literal["notify", "delete"] = "notify"
    grace_hours: float = Field(default=24.0, ge=0, le=24 * 90)
    max_actions_per_run: int = Field(default=10, ge=0, le=10000)
    delete_config: bool = False
    # At most this many invocations, summed over the idle window, count as idle (0: none).
    max_invocations: int = Field(default=0, ge=0, le=10**12)

    @property
    def min_age(self) -> float:
        """Minimum age in hours; defaults to ``idle_hours``."""
        return self.idle_hours if self.min_age_hours is None else self.min_age_hours


class NotebookPolicy(Selection):
    """Inventory of notebook instances (the auto-stop agent and schedules act on them)."""


StudioAppType = Literal[
    "JupyterLab",
    "CodeEditor",
    "KernelGateway",
    "JupyterServer",
    "Canvas",
    "RSessionGateway",
    "RStudioServerPro",
    "TensorBoard",
    "DetailedProfiler",
]
# Every app type Studio can run (CreateApp's AppType); all are judged by default.
STUDIO_APP_TYPES: tuple[StudioAppType, ...] = get_args(StudioAppType)


class StudioPolicy(Selection):
    """Idle SageMaker Studio apps. Names matched by include/exclude are space (or user
    profile) names."""

    idle_hours: float = Field(default=3.0, gt=0, le=MAX_LOOKBACK_HOURS)
    action: Literal["notify", "delete"] = "notify"
    grace_hours: float = Field(default=1.0, ge=0, le=24 * 90)
    app_types: list[StudioAppType] = Field(default_factory=lambda: list(STUDIO_APP_TYPES))
    max_actions_per_run: int = Field(default=10, ge=0, le=10000)


# UpdateTrainingJob's longest KeepAlivePeriodInSeconds (21,600 s, botocore's service model): a
# warm pool never stays Available longer after its job ends.
MAX_KEEP_ALIVE_HOURS = 6.0


class WarmPoolPolicy(Selection):
    """Training jobs whose warm pool is ``Available`` (retained, billed, unused). Names matched
    by include/exclude are training job names.

    ``action: release`` ends the pool with ``UpdateTrainingJob`` (``KeepAlivePeriodInSeconds``
    0) once it has waited ``idle_hours`` since its job ended; ``notify`` (the default) only
    reports it. There is no grace tag: a pool lives at most 6 hours, so the release is announced
    in the digest of the run that makes it, sent before it.
    """

    action: Literal["notify", "release"] = "notify"
    # How long a pool may wait for a matching job before it is released: reuse is what it is for.
    idle_hours: float = Field(default=0.5, ge=0, le=MAX_KEEP_ALIVE_HOURS)
    max_actions_per_run: int = Field(default=10, ge=0, le=10000)


class JobsPolicy(_Strict):
    """Long-running and parked compute: training jobs holding warm pools (released only with
    ``warm_pools.action: release``), training and processing jobs running beyond a limit,
    HyperPod clusters (reported, never changed)."""

    enabled: bool = True
    max_running_hours: float = Field(default=72.0, gt=0, le=24 * 366)
    warm_pools: WarmPoolPolicy = Field(default_factory=WarmPoolPolicy)


class BackupPolicy(_Strict):
    """How the backups taken before deletions are kept (``backups:``)."""

    # Days a backup is kept once its deletion is recorded (DynamoDB's TTL on ``expires_at``;
    # a SQLite ledger prunes when it writes a backup); none: kept for good. A backup whose
    # deletion is still pending never expires.
    keep_days: float | None = Field(default=None, gt=0, le=36500)
    # The models' container environment values (often secrets): kept (sealed under the
    # ledger table's KMS key where it has one, else in clear with a warning), or with false
    # their names only (restore then says which it cannot set).
    environment: bool = True


class NotifyPolicy(_Strict):
    """Where notifications go."""

    sns_topic_arn: str | None = None
    subject_prefix: str = Field(default="SageSaver", max_length=40)
    # A digest goes out when something changed (newly idle, announced, acted on); the same idle
    # set is sent again at most this often, as a reminder (0: every run).
    repeat_hours: float = Field(default=24.0, ge=0, le=24 * 366)
    # Besides the admin digest, one digest per value of this tag, naming only the resources
    # carrying it, published with the SNS message attribute ``owner`` = the value.
    owner_tag: str | None = Field(default=None, min_length=1, max_length=128)
    # Chat webhooks the digests go to besides the topic (core/channels.py).
    channels: list[ChannelSpec] = Field(default_factory=list, max_length=50)

    @field_validator("sns_topic_arn")
    @classmethod
    def _arn(cls, value: str | None) -> str | None:
        if value is not None and not SNS_TOPIC_ARN_RE.match(value):
            raise ValueError(
                f"{value!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT_ID:NAME)"
            )
        return value

    @model_validator(mode="after")
    def _channel_owners(self) -> NotifyPolicy:
        problems = owner_problems(self.channels, self.owner_tag)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def can_announce(self) -> bool:
        """Whether a digest has somewhere to go: the topic or a chat channel."""
        return self.sns_topic_arn is not None or bool(self.channels)

    @property
    def topic_region(self) -> str | None:
        """The region of the topic, taken from its ARN."""
        if self.sns_topic_arn is None:
            return None
        match = SNS_TOPIC_ARN_RE.match(self.sns_topic_arn)
        return match.group("region") if match else None


LEDGER_TABLE_RE = re.compile(
    r"^dynamodb://(?:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)/)?(?P<table>[A-Za-z0-9_.-]{3,255})$"
)
SCHEDULE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# A price file in S3 (the Lambda reads it there): s3://BUCKET/KEY.
PRICES_S3_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")


class PeriodSpec(_Strict):
    """A running period: ``{weekdays: mon-fri, begin: "07:00", end: "21:00"}``."""

    weekdays: str = "daily"
    begin: str
    end: str

    @model_validator(mode="after")
    def _valid(self) -> PeriodSpec:
        try:
            make_period(self.weekdays, self.begin, self.end)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from exc
        return self


# What a schedule may act on (``resources:``).
ScheduleTarget = Literal["notebooks", "endpoints"]


def _notebooks_only() -> list[ScheduleTarget]:
    return ["notebooks"]


class ScheduleSpec(_Strict):
    """One named schedule: ``periods`` or ``start``/``stop`` crons, a time zone, targets, and
    its working days: a ``calendar`` (ISO 3166: ``CN``, ``DE-BY``), ``skip_dates`` (days off)
    and ``work_dates`` (workdays) of its own (:mod:`sagesaver.core.workdays`); the kinds it
    acts on (``resources``) and, for endpoints, ``quiet_minutes`` and ``lead_minutes``."""

    timezone: str = "UTC"
    periods: list[PeriodSpec] | None = None
    start: str | None = None
    stop: str | None = None
    calendar: str | None = None
    skip_dates: list[date] = Field(default_factory=list)
    work_dates: list[date] = Field(default_factory=list)
    enforced: bool = False
    interval_minutes: int = Field(default=10, ge=1, le=1440)
    name_contains: str | None = Field(default=None, min_length=1)
    include: list[Glob] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    # What the schedule acts on: notebook instances are started and stopped; endpoints are
    # parked (backed up and deleted) at a stop and restored at a start, ``lead_minutes``
    # early. An endpoint is parked only after ``quiet_minutes`` without invocations.
    resources: list[ScheduleTarget] = Field(default_factory=_notebooks_only, min_length=1)
    quiet_minutes: int = Field(default=30, ge=0, le=1440)
    lead_minutes: int = Field(default=20, ge=0, le=240)

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: list[ScheduleTarget]) -> list[ScheduleTarget]:
        twice = sorted({r for r in value if value.count(r) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once")
        return value

    def targets(self, resources: ScheduleTarget) -> bool:
        """Whether the schedule acts on ``resources`` (notebooks or endpoints)."""
        return resources in self.resources

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_calendar(value)
        except CalendarError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("start", "stop")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_cron(value)
            except ScheduleError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _shape(self) -> ScheduleSpec:
        crons = self.start is not None or self.stop is not None
        if self.periods is not None and crons:
            raise ValueError("use either periods or start/stop, not both")
        if self.periods is None and not crons:
            raise ValueError("needs periods, or a start and/or stop cron expression")
        if self.periods is not None and not self.periods:
            raise ValueError("periods must not be empty")
        both = sorted(set(self.skip_dates) & set(self.work_dates))
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"{listed}: in both skip_dates and work_dates (choose one)")
        return self

    @property
    def has_selectors(self) -> bool:
        """Whether the schedule targets instances by name or tags (else only by tag)."""
        return bool(self.name_contains or self.include or self.tags)

    def selects(self, name: str, tags: dict[str, str]) -> bool:
        """Whether an instance without a schedule tag falls under this schedule."""
        if not self.has_selectors:
            return False
        if self.name_contains and self.name_contains not in name:
            return False
        if self.include and not any(fnmatch.fnmatchcase(name, p) for p in self.include):
            return False
        return all(
            key in tags and fnmatch.fnmatchcase(tags[key], wanted)
            for key, wanted in self.tags.items()
        )

    def build(self, name: str) -> Schedule:
        """The pure :class:`~sagesaver.core.cron.Schedule` this spec describes."""
        return Schedule(
            name=name,
            tz=zone(self.timezone),
            periods=tuple(make_period(p.weekdays, p.begin, p.end) for p in self.periods or ()),
            start=parse_cron(self.start) if self.start else None,
            stop=parse_cron(self.stop) if self.stop else None,
            enforced=self.enforced,
            days=self.work_days(),
        )

    def work_days(self) -> WorkDays | None:
        """The schedule's working days; None when it names no calendar and no dates."""
        if self.calendar is None and not self.skip_dates and not self.work_dates:
            return None
        return WorkDays(
            holiday_calendar(self.calendar) if self.calendar is not None else None,
            frozenset(self.skip_dates),
            frozenset(self.work_dates),
        )


class Policy(_Strict):
    """The whole policy file."""

    version: Literal[1] = 1
    regions: list[str] = Field(default_factory=list)
    endpoints: EndpointPolicy = Field(default_factory=EndpointPolicy)
    notebooks: NotebookPolicy = Field(default_factory=NotebookPolicy)
    studio_apps: StudioPolicy = Field(default_factory=StudioPolicy)
    jobs: JobsPolicy = Field(default_factory=JobsPolicy)
    backups: BackupPolicy = Field(default_factory=BackupPolicy)
    notify: NotifyPolicy = Field(default_factory=NotifyPolicy)
    schedules: dict[str, ScheduleSpec] = Field(default_factory=dict)
    schedule_protect_tag: str = Field(default=DEFAULT_PROTECT_TAG, min_length=1, max_length=128)
    # Where the team's ledger is (a path, or dynamodb://[REGION/]TABLE): every command given
    # this policy uses it unless --ledger says otherwise, and the deployed stack's table is it.
    ledger: str | None = Field(default=None, min_length=1, max_length=1024)
    # A price file (``sagesaver prices fetch``, or an AWS offer file): a path, or
    # s3://BUCKET/KEY. Its prices win over the Price List; --prices and SAGESAVER_PRICES win
    # over it.
    prices: str | None = Field(default=None, min_length=1, max_length=1024)
    # A resource whose known price per hour (in its own currency) is below this is reported,
    # kept (rule below-min-cost): never acted on, never in a digest. An unknown price is never
    # below it.
    min_hourly_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: str | None) -> str | None:
        if value is None or "://" not in value or PRICES_S3_RE.match(value):
            return value
        raise ValueError(
            f"{value!r}: use a file path or s3://BUCKET/KEY (a bucket name: 3 to 63 lower-case "
            "letters, digits, '.' and '-')"
        )

    @field_validator("ledger")
    @classmethod
    def _ledger(cls, value: str | None) -> str | None:
        if value is None or "://" not in value:
            return value
        if not LEDGER_TABLE_RE.match(value):
            raise ValueError(
                f"{value!r}: use a file path or dynamodb://[REGION/]TABLE "
                "(a table name: 3 to 255 letters, digits, '_', '-', '.')"
            )
        return value

    @property
    def ledger_table(self) -> str | None:
        """The DynamoDB table the policy's ledger names, if it names one."""
        match = LEDGER_TABLE_RE.match(self.ledger or "")
        return match.group("table") if match else None

    @field_validator("schedules")
    @classmethod
    def _schedule_names(cls, schedules: dict[str, ScheduleSpec]) -> dict[str, ScheduleSpec]:
        for name in schedules:
            if not SCHEDULE_NAME_RE.match(name):
                raise ValueError(
                    f"schedule name {name!r}: letters, digits, '.', '_' and '-', up to 64"
                )
            if name.lower() == "none":
                raise ValueError("'none' is reserved: the tag sagesaver:schedule=none opts out")
        return schedules

    @field_validator("regions")
    @classmethod
    def _regions(cls, regions: list[str]) -> list[str]:
        for region in regions:
            check_region(region)
        return regions

    @model_validator(mode="after")
    def _topic_region(self) -> Policy:
        region = self.notify.topic_region
        if region is not None and not REGION_RE.match(region):
            raise ValueError(f"notify.sns_topic_arn names an unknown region {region!r}")
        return self

    @model_validator(mode="after")
    def _one_partition(self) -> Policy:
        """The regions, the topic and the ledger table are of one partition: one set of
        credentials reaches only one (an ARN's partition must be its region's too)."""
        named: dict[str, list[str]] = {"regions": list(self.regions)}
        topic = self.notify.sns_topic_arn
        if topic is not None and self.notify.topic_region is not None:
            stated = partition_of_arn(topic)
            if stated != partition_of(self.notify.topic_region):
                raise ValueError(
                    f"notify.sns_topic_arn: partition {stated} with region "
                    f"{self.notify.topic_region}, which is in "
                    f"{partition_of(self.notify.topic_region)}"
                )
            named["notify.sns_topic_arn"] = [self.notify.topic_region]
        match = LEDGER_TABLE_RE.match(self.ledger or "")
        if match and match.group("region"):
            named["ledger"] = [match.group("region")]
        try:
            one_partition(named)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self


def check_region(region: str) -> str:
    """Validate a region name's shape (``us-east-1``); raise ``ValueError`` otherwise."""
    if not REGION_RE.match(region):
        raise ValueError(f"{region!r} is not an AWS region name (like us-east-1)")
    return region


def _line_of(root: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the key at ``loc`` in a composed YAML tree, or of its parent."""
    node = root
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Parse and validate policy YAML. Raises :class:`PolicyError` naming key and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{source}{where}: not valid YAML: {problem}") from exc
    except RecursionError as exc:  # the YAML parser recurses once per level of nesting
        raise PolicyError(f"{source}: not a policy: nested too deeply") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}: the policy must be a mapping of keys, not a {type(data).__name__}"
        )
    try:
        return Policy.model_validate(data)
    except RecursionError as exc:
        raise PolicyError(f"{source}: not a policy: nested too deeply") from exc
    except ValidationError as exc:
        found = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            found.append((_line_of(root, loc), loc, message))
        found.sort(key=lambda item: item[0] or 0)  # in the order of the file
        raise policy_error(
            source, [policy_problem(source, line, loc, message) for line, loc, message in found]
        ) from exc


def policy_problem(source: str, line: int | None, loc: tuple[str | int, ...], message: str) -> str:
    """One problem of a policy file with its location: ``policy.yaml:2: endpoints.idle_hours:
    Input should be greater than 0`` (no line when YAML does not give one)."""
    key = ".".join(str(p) for p in loc) or "(top level)"
    where = f":{line}" if line is not None else ""
    return f"{source}{where}: {key}: {message}"


def policy_error(source: str, problems: list[str]) -> PolicyError:
    """Every problem of a policy file in one error: one problem is its own line; several are
    counted, then listed one a line."""
    if len(problems) == 1:
        return PolicyError(problems[0])
    listed = "\n".join(f"  {p}" for p in problems)
    return PolicyError(f"{source}: {len(problems)} problems\n{listed}")


def key_line(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the key at ``loc`` in policy YAML (None when it is not YAML)."""
    try:
        return _line_of(yaml.compose(text, Loader=yaml.SafeLoader), loc)
    except (yaml.YAMLError, RecursionError):
        return None


def load_policy(path: Path | None) -> Policy:
    """Load the policy from ``path``, or the defaults when ``path`` is None."""
    if path is None:
        return Policy()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: policy file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc}") from exc
    return parse_policy(text, str(path))
