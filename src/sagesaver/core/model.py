"""Plain, immutable data passed between the stages of a run.

inventory -> :class:`Resource`; metrics -> :class:`Activity`; decide -> :class:`Decision`.
Nothing here talks to AWS or reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from sagesaver.core.partitions import currency_of

Session = TypeVar("Session")


class Kind(str, Enum):
    """The kinds of persistent SageMaker resources SageSaver looks after."""

    ENDPOINT = "endpoint"
    NOTEBOOK = "notebook"
    STUDIO_APP = "studio-app"
    INFERENCE_COMPONENT = "inference-component"
    TRAINING_JOB = "training-job"
    PROCESSING_JOB = "processing-job"
    HYPERPOD_CLUSTER = "hyperpod-cluster"

    @property
    def noun(self) -> str:
        """One of them, in a sentence ("1 idle SageMaker {noun}"; the plural from
        ``formats.plural``)."""
        return _KIND_WORDS[self][0]

    @property
    def heading(self) -> str:
        """The heading of their table."""
        return _KIND_WORDS[self][1]


# Every kind's words, in the order their tables are printed.
_KIND_WORDS = {
    Kind.ENDPOINT: ("endpoint", "Real-time endpoints"),
    Kind.INFERENCE_COMPONENT: ("inference component", "Inference components"),
    Kind.NOTEBOOK: ("notebook", "Notebook instances"),
    Kind.STUDIO_APP: ("Studio app", "Studio apps"),
    Kind.TRAINING_JOB: ("training job", "Training jobs (warm pools, long runs)"),
    Kind.PROCESSING_JOB: ("processing job", "Processing jobs (long runs)"),
    Kind.HYPERPOD_CLUSTER: ("HyperPod cluster", "HyperPod clusters"),
}


class Action(str, Enum):
    """What a decision asks for. ``keep`` means: leave the resource alone; ``delete`` and
    ``release`` are carried out by the enforcement executor (:data:`ACTED_ON`)."""

    KEEP = "keep"
    NOTIFY = "notify"
    DELETE = "delete"
    RELEASE = "release"  # a training job's warm pool, ended (the job itself is untouched)


# The actions the enforcement executor carries out (after its guards), not only reports.
ACTED_ON = frozenset({Action.DELETE, Action.RELEASE})


@dataclass(frozen=True)
class Variant:
    """One production variant of an endpoint, as far as cost is concerned."""

    name: str
    instance_type: str | None
    instance_count: int
    serverless: bool = False
    # Serverless variants: the provisioned concurrency (billed by the hour, used or not) and
    # the memory of each concurrent slot, from ``ServerlessConfig``.
    provisioned_concurrency: int = 0
    memory_mb: int | None = None
    # The model its configuration names (``ModelName``). None: it names none (a variant made
    # to host inference components), or the configuration was not read.
    model: str | None = None

    @property
    def bills_while_idle(self) -> bool:
        """True when the variant costs money with no traffic: instances, or serverless
        provisioned concurrency."""
        if self.serverless:
            return self.provisioned_concurrency > 0
        return self.instance_count > 0


@dataclass(frozen=True)
class Resource:
    """A persistent SageMaker resource found by the inventory."""

    kind: Kind
    name: str
    arn: str
    region: str
    account: str
    status: str
    created: datetime
    modified: datetime
    tags: dict[str, str] = field(default_factory=dict)
    instance_type: str | None = None
    instance_count: int | None = None
    variants: tuple[Variant, ...] = ()
    lifecycle_config: str | None = None
    # An asynchronous endpoint (its configuration has AsyncInferenceConfig): its traffic shows
    # in its own metrics, not in Invocations.
    asynchronous: bool = False
    # An inference component: the endpoint that hosts it (``instance_count`` is its copies).
    parent: str | None = None

    @property
    def last_changed(self) -> datetime:
        """The later of creation and last modification: where age is counted from."""
        return max(self.created, self.modified)


def instances_text(resource: Resource) -> str:
    """What a resource runs on, for people: ``2 x ml.m5.large`` (counts summed per type, so a
    two-type endpoint reads ``1 x ml.g4dn.xlarge, 1 x ml.m5.large``), ``serverless,
    2 provisioned x 4096 MB``, ``3 copies on host``, with ``(async)`` for an asynchronous
    endpoint; empty when unknown. The one wording of the table, the reports and the digest."""
    counts: dict[str, int] = {}
    for variant in resource.variants:
        if variant.instance_type and not variant.serverless:
            counts[variant.instance_type] = counts.get(variant.instance_type, 0) + (
                variant.instance_count
            )
    running = {t: n for t, n in counts.items() if n}
    types = ", ".join(f"{n} x {t}" for t, n in sorted((running or counts).items()))
    parts = [types] if types else []
    if not resource.variants and resource.instance_type and resource.instance_count is not None:
        parts.append(f"{resource.instance_count} x {resource.instance_type}")
    for variant in resource.variants:
        if variant.serverless:
            parts.append(
                f"serverless, {variant.provisioned_concurrency} provisioned x "
                f"{variant.memory_mb or '?'} MB"
                if variant.provisioned_concurrency
                else "serverless (on demand)"
            )
    if resource.kind is Kind.INFERENCE_COMPONENT:
        copies = "?" if resource.instance_count is None else resource.instance_count
        parts.append(f"{copies} copies on {resource.parent}")
    text = "; ".join(parts)
    return f"{text} (async)" if text and resource.asynchronous else text


@dataclass(frozen=True)
class Activity:
    """Invocations of an endpoint, summed over all its variants, in a look-back window.

    ``signal`` names what was counted: ``Invocations`` for real-time endpoints, the
    asynchronous metrics for an asynchronous one.
    """

    invocations: float
    window_hours: float
    variants_seen: tuple[str, ...] = ()
    signal: str = "Invocations"


@dataclass(frozen=True)
class Recommendation:
    """Something a person can do to pay less for a resource, with the evidence for it.

    ``kind`` is ``rightsize`` (``to`` names the smaller instance type) or ``scale-to-zero``.
    """

    kind: str
    evidence: str
    to: str | None = None
    # In the currency of the decision it belongs to (:attr:`Decision.cost_currency`); the name
    # is historic: renderers show it in that currency and call it ``hourly_saving`` in JSON.
    hourly_saving_usd: float | None = None


# Rules under which a decision was taken without the facts it needs (metrics, instances or
# tags could not be read): such a resource is never idle for enforcement, and never changed.
UNKNOWN_RULES = frozenset({"activity-unknown", "details-unknown", "tags-unknown"})


@dataclass(frozen=True)
class Decision:
    """The verdict on one resource, with the reason a person can read."""

    resource: Resource
    action: Action
    rule: str
    reason: str
    idle: bool
    idle_hours: float | None = None
    # The price per hour in ``currency`` (the region's partition's when not set), where it
    # came from (file, live, cached, bundled, unknown), when unknown why (or which file or
    # cache answered), and the date of a file's or a cached price (ISO 8601).
    hourly_cost: float | None = None
    protected: bool = False
    currency: str | None = None
    price_source: str = "unknown"
    price_note: str | None = None
    price_date: str | None = None
    recommendations: tuple[Recommendation, ...] = ()
    # The end of the last day with traffic, when looked back for (idle endpoints): what
    # ``idle_hours`` then counts from. None: no traffic in what CloudWatch keeps, or not read.
    last_activity_at: datetime | None = None

    @property
    def cost_currency(self) -> str:
        """The currency of :attr:`hourly_cost`."""
        return self.currency or currency_of(self.resource.region)

    @property
    def hourly_cost_usd(self) -> float | None:
        """:attr:`hourly_cost` when it is in USD; None for any other currency."""
        return self.hourly_cost if self.cost_currency == "USD" else None

    @property
    def unknown(self) -> bool:
        """True when the facts that decide this resource could not be read."""
        return self.rule in UNKNOWN_RULES


@dataclass
class ScanResult:
    """Decisions on every scanned resource, and every error met on the way."""

    generated_at: datetime
    regions: list[str]
    decisions: list[Decision] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    # The AWS session that reached each member account, for acting there afterwards (kept
    # opaque here: the core knows nothing of AWS).
    sessions: dict[str, Any] = field(default_factory=dict)

    def extend(self, other: ScanResult) -> None:
        """Merge another region's or account's result into this one."""
        self.decisions.extend(other.decisions)
        self.errors.extend(other.errors)
        self.sessions.update(other.sessions)

    def session_for(self, account: str, default: Session) -> Session:
        """The session to act in ``account`` with (the caller's own when not fanned out)."""
        found: Session = self.sessions.get(account, default)
        return found


@dataclass(frozen=True)
class ScanError:
    """A failed AWS call, confined to one region or one resource."""

    region: str
    operation: str
    message: str
    resource: str | None = None
    code: str | None = None
    account: str | None = None
