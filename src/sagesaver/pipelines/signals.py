"""What the scan reads beyond ``Invocations``, for the endpoints that need it.

Asynchronous endpoints publish no ``Invocations``: their activity is replaced by their own
traffic metrics (:mod:`sagesaver.aws.endpoint_signals`), read in one batch per region for the
asynchronous endpoints among the described candidates.

Busy endpoints get right-sizing recommendations (:mod:`sagesaver.core.rules.rightsize`): one
``ListMetrics`` listing finds the variants with utilisation data, one batched read takes their
peaks, and only the endpoints whose memory peak leaves room for a smaller type are described
(for their instance types and counts), so the call count stays bounded by what can be saved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sagesaver.aws import endpoint_signals, inference_components
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws
from sagesaver.core.instances import same_family
from sagesaver.core.model import (
    Action,
    Activity,
    Decision,
    Kind,
    Recommendation,
    Resource,
    ScanError,
    Variant,
)
from sagesaver.core.policy import EndpointPolicy, RightsizePolicy
from sagesaver.core.pricing import Pricer
from sagesaver.core.rules.components import components_unknown, decide_component
from sagesaver.core.rules.endpoints import ASYNC_SIGNAL, endpoint_quote
from sagesaver.core.rules.rightsize import Peaks, recommend

DESCRIBE_WORKERS = 8
Describe = Callable[[str], tuple[Variant, ...]]
Enrich = Callable[[Resource, tuple[Variant, ...]], Resource]


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


def _peaks(found: dict[str, float | None]) -> Peaks:
    return Peaks(
        cpu=found.get("CPUUtilization"),
        memory=found.get("MemoryUtilization"),
        gpu=found.get("GPUUtilization"),
        gpu_memory=found.get("GPUMemoryUtilization"),
    )


def with_rightsizing(
    aws: Aws,
    region: str,
    decisions: Sequence[Decision],
    rules: RightsizePolicy,
    pricer: Pricer,
    now: datetime,
    describe: Describe,
    enrich: Enrich,
    errors: list[ScanError],
) -> list[Decision]:
    """``decisions`` with ``rightsize`` recommendations on the busy endpoints whose 14-day
    peaks fit a smaller, cheaper type of their family (``describe`` reads an endpoint's
    variants; ``enrich`` puts them on its resource). A failed read is an error for its
    region or endpoint, and nothing is recommended there."""
    busy = {
        d.resource.name: d
        for d in decisions
        if d.resource.kind is Kind.ENDPOINT
        and d.rule == "active"
        and not d.resource.asynchronous
        and d.resource.status == "InService"
    }
    if not rules.enabled or not busy:
        return list(decisions)
    start = now - timedelta(days=rules.days)
    try:
        listed = endpoint_signals.utilization_variants(aws, region)
        keys = [(n, v) for n in sorted(busy) for v in sorted(listed.get(n, ()))]
        read = endpoint_signals.utilization_peaks(aws, region, keys, start, now)
    except AWS_ERRORS as exc:
        errors.append(scan_error(exc, region, "GetMetricData"))
        return list(decisions)
    # The next size down offers about half the memory (core/instances.py): an endpoint whose
    # memory peak is above half the target is not described (this may miss a rare move across
    # GPU counts; it never recommends a wrong one, which the rule checks on every peak).
    room = rules.target_peak_percent / 2
    unreadable = {name for name, _ in read.problems}  # unknown is never "low": no advice
    worth = sorted(
        {
            name
            for (name, _), found in read.peaks.items()
            if (memory := found.get("MemoryUtilization")) is not None
            and memory <= room
            and name not in unreadable
        }
    )

    def one(name: str) -> tuple[str, tuple[Variant, ...] | None, ScanError | None]:
        try:
            return name, describe(name), None
        except AWS_ERRORS as exc:
            return name, None, scan_error(exc, region, "DescribeEndpoint", name)

    described: dict[str, tuple[Variant, ...]] = {}
    with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS) as pool:
        for name, variants, error in pool.map(one, worth):
            if error is not None:
                errors.append(error)
            elif variants is not None:
                described[name] = variants

    out = []
    for decision in decisions:
        variants = described.get(decision.resource.name)
        if variants is None or decision.resource.kind is not Kind.ENDPOINT:
            out.append(decision)
            continue
        found: list[Recommendation] = []
        for variant in variants:
            peaks = read.peaks.get((decision.resource.name, variant.name))
            if peaks is None or variant.serverless or not variant.instance_type:
                continue
            prices = {
                t: pricer.hourly(region, "hosting", t) for t in same_family(variant.instance_type)
            }
            advice = recommend(
                variant.instance_type,
                variant.instance_count,
                _peaks(peaks),
                prices,
                rules.target_peak_percent,
                rules.days,
            )
            if advice is not None:
                if len(variants) > 1:
                    advice = replace(advice, evidence=f"variant {variant.name}: {advice.evidence}")
                found.append(advice)
        resource = enrich(decision.resource, variants)
        quote = endpoint_quote(resource, pricer)
        if quote.currency != "USD":  # the saving is in the region's currency, not USD
            found = [replace(advice, hourly_saving_usd=None) for advice in found]
        out.append(
            replace(
                decision,
                resource=resource,
                hourly_cost=quote.amount,
                currency=quote.currency,
                price_source=quote.source,
                price_note=quote.note,
                price_date=quote.date,
                recommendations=(*decision.recommendations, *found),
            )
        )
    return out


@dataclass
class Components:
    """The inference components of a region and what was read of them."""

    listed: list[Resource] = field(default_factory=list)
    activity: dict[str, Activity | None] = field(default_factory=dict)
    # The failed listing (None: listed): the endpoints that could host components are unknown.
    failure: ScanError | None = None

    @property
    def hosts(self) -> set[str]:
        """The endpoints that host at least one component."""
        return {c.parent for c in self.listed if c.parent}

    def judge_unlisted(self, decision: Decision) -> Decision:
        """``decision`` on an endpoint in the light of a failed listing: unknown when idle and
        its configuration could host components (:func:`components_unknown`); unchanged
        when the listing succeeded or the endpoint names a model in every variant."""
        if self.failure is None:
            return decision
        why = f"{self.failure.operation}: {self.failure.code or self.failure.message}"
        return components_unknown(decision, why)


def component_activity(
    aws: Aws,
    region: str,
    endpoint_activity: dict[str, Activity | None],
    window_hours: float,
    now: datetime,
    errors: list[ScanError],
) -> Components:
    """List the region's inference components, read their ``Invocations``, and add each
    component's traffic to its endpoint's activity (an endpoint is idle only when all its
    components are; one unreadable component makes its endpoint unknown). When the listing
    fails, the endpoints' activity is left as it is: which of them could host components is
    known only from their configurations (:meth:`Components.judge_unlisted`)."""
    found = read_components(aws, region, window_hours, now, errors)
    add_component_activity(found, endpoint_activity)
    return found


def read_components(
    aws: Aws, region: str, window_hours: float, now: datetime, errors: list[ScanError]
) -> Components:
    """The region's inference components and each serving one's activity over the window
    (None when unreadable); ``failure`` is the error of a failed listing (also added to
    ``errors``, once). Independent of the endpoints' own metrics, so a scan can read it while
    those are read."""
    found = Components()
    try:
        found.listed = inference_components.list_inference_components(aws, region)
    except AWS_ERRORS as exc:
        found.failure = scan_error(exc, region, "ListInferenceComponents")
        errors.append(found.failure)
        return found
    serving = [c for c in found.listed if c.status == "InService"]
    if not serving:
        return found
    try:
        read = inference_components.component_invocations(
            aws, region, [c.name for c in serving], now - timedelta(hours=window_hours), now
        )
    except AWS_ERRORS as exc:
        errors.append(scan_error(exc, region, "GetMetricData"))
        read = endpoint_signals.SignalTotals(
            problems={c.name: "GetMetricData failed" for c in serving}
        )
    for component in serving:
        problem = read.problems.get(component.name)
        if problem is not None:
            errors.append(
                ScanError(region, "GetMetricData", problem, component.name, "IncompleteData")
            )
            found.activity[component.name] = None
        else:
            found.activity[component.name] = Activity(
                read.totals.get(component.name, 0.0), window_hours
            )
    return found


def add_component_activity(
    found: Components, endpoint_activity: dict[str, Activity | None]
) -> None:
    """Add the components' traffic to the activity of their endpoints among
    ``endpoint_activity`` (in place). After a failed listing nothing is added: an endpoint
    without traffic stays an idle candidate, so its configuration is read as any candidate's
    (no call more), and says whether it could host components
    (:meth:`Components.judge_unlisted`)."""
    for component in found.listed:
        if component.name not in found.activity:  # not serving
            continue
        parent = component.parent or ""
        if parent not in endpoint_activity:
            continue
        host, mine = endpoint_activity[parent], found.activity[component.name]
        endpoint_activity[parent] = (
            None
            if host is None or mine is None
            else replace(host, invocations=host.invocations + mine.invocations)
        )


def component_decisions(
    aws: Aws,
    region: str,
    components: Components,
    endpoints: Sequence[Resource],
    untagged: set[str],
    rules: EndpointPolicy,
    now: datetime,
    errors: list[ScanError],
) -> list[Decision]:
    """Decide every listed component with its endpoint's tags; describe (for the copy count)
    only the idle candidates."""
    tags = {e.name: e.tags for e in endpoints}
    candidates = [
        c.name
        for c in components.listed
        if c.status == "InService"
        and (act := components.activity.get(c.name)) is not None
        and act.invocations == 0
        and (c.parent or "") not in untagged
    ]

    def copies(name: str) -> tuple[str, int | None, ScanError | None]:
        try:
            return name, inference_components.current_copies(aws, region, name), None
        except AWS_ERRORS as exc:
            return name, None, scan_error(exc, region, "DescribeInferenceComponent", name)

    counts: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS) as pool:
        for name, count, error in pool.map(copies, candidates):
            if error is not None:
                errors.append(error)
            elif count is not None:
                counts[name] = count
    decisions = []
    for component in components.listed:
        resource = replace(
            component,
            tags=dict(tags.get(component.parent or "", {})),
            instance_count=counts.get(component.name),
        )
        decision = decide_component(resource, components.activity.get(component.name), rules, now)
        if (component.parent or "") in untagged and decision.idle:
            decision = replace(
                decision,
                action=Action.KEEP,
                rule="tags-unknown",
                reason=f"{decision.reason.split(';')[0]}; its endpoint's tags could not be "
                "read, so nothing is done",
                recommendations=(),
            )
        decisions.append(decision)
    return decisions


def judge_hosts(
    decisions: Sequence[Decision], components: Sequence[Decision], hosts: set[str]
) -> list[Decision]:
    """Endpoint decisions in the light of their inference components: a host is not idle
    while one of its components is too young to judge, and an idle host is reported, never
    deleted (its backup would not hold the components). Traffic and unreadable metrics of a
    component already reached its host's activity."""
    young = {
        d.resource.parent: d.resource.name
        for d in components
        if d.rule == "min-age" and d.resource.parent
    }
    out = []
    for d in decisions:
        name = d.resource.name
        if d.resource.kind is not Kind.ENDPOINT or name not in hosts or not d.idle:
            out.append(d)
            continue
        if name in young:
            d = replace(
                d,
                action=Action.KEEP,
                rule="min-age",
                idle=False,
                idle_hours=None,
                reason=f"no invocations, but its inference component {young[name]} was "
                "created or changed recently (min_age_hours)",
                recommendations=(),
            )
        elif d.action is Action.DELETE:
            d = replace(
                d,
                action=Action.NOTIFY,
                reason=f"{d.reason}; it hosts inference components: reported, never deleted",
            )
        out.append(d)
    return out
