"""One pass of the pipeline: inventory -> activity -> decide, region by region.

Every AWS failure is confined: a failed list affects its region and kind, a failed describe
its endpoint. Failures are collected as :class:`~sagesaver.core.model.ScanError` and the rest of
the run completes. The CLI, the Lambda handler and the demo all call :func:`scan`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sagesaver.aws import endpoint_search, inventory, metrics, tags
from sagesaver.aws import notify as aws_notify
from sagesaver.aws.endpoint_configs import ConfigMemory, RegionConfigs
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws, env_number
from sagesaver.core.digest import REPORTED, Message, build_digest, digest_is_due, digest_keys
from sagesaver.core.errors import InputError
from sagesaver.core.model import (
    Action,
    Activity,
    Resource,
    ScanError,
    ScanResult,
    Variant,
)
from sagesaver.core.policy import Policy, check_region
from sagesaver.core.pricing import Pricer
from sagesaver.core.rules.endpoints import decide_endpoint, endpoint_hourly_cost, is_idle_candidate
from sagesaver.core.rules.notebooks import decide_notebook, notebook_hourly_cost
from sagesaver.ledger import Ledger

DEFAULT_WORKERS = 16
REGION_WORKERS = 8
# CloudWatch's ListMetrics only returns metrics with data in the last two weeks.
LIST_METRICS_HORIZON = timedelta(days=14)

Progress = Callable[[str], None]


def _no_progress(_: str) -> None:
    return None


def _total(
    read: metrics.InvocationSums,
    region: str,
    name: str,
    variants: Sequence[str],
    errors: list[ScanError],
) -> float | None:
    """The endpoint's invocations over ``variants``; None, with an error for the endpoint,
    when any of them came back incomplete (unknown, never idle)."""
    try:
        return read.total((name, v) for v in variants)
    except metrics.UnreadableMetrics as exc:
        errors.append(ScanError(region, "GetMetricData", str(exc), name, "IncompleteData"))
        return None


def _recheck_unlisted_variants(
    aws: Aws,
    region: str,
    candidates: dict[str, tuple[Variant, ...]],
    activity: dict[str, Activity | None],
    window_hours: float,
    now: datetime,
    errors: list[ScanError],
) -> None:
    """For look-backs longer than ListMetrics' two weeks, read the variants it could not list.

    Without this, traffic older than 14 days but inside the window would go unseen.
    """
    keys = [
        (name, v.name)
        for name, variants in candidates.items()
        for v in variants
        if (act := activity.get(name)) is not None and v.name not in act.variants_seen
    ]
    if not keys:
        return
    try:
        read = metrics.invocation_sums(aws, region, keys, now - timedelta(hours=window_hours), now)
    except AWS_ERRORS as exc:
        errors.append(scan_error(exc, region, "GetMetricData"))
        for name, _ in keys:
            activity[name] = None
        return
    by_name: dict[str, list[str]] = {}
    for name, variant in keys:
        by_name.setdefault(name, []).append(variant)
    for name, variants in sorted(by_name.items()):
        act = activity[name]
        if act is None:
            continue
        total = _total(read, region, name, variants, errors)
        activity[name] = (
            None
            if total is None
            else replace(
                act,
                invocations=act.invocations + total,
                variants_seen=(*act.variants_seen, *variants),
            )
        )


def workers() -> int:
    """Threads per region for the reads that fan out (``SAGESAVER_WORKERS``, default 16).

    Clients retry in botocore's *adaptive* mode, so throttling slows the pool down instead of
    failing it."""
    return int(env_number("SAGESAVER_WORKERS", DEFAULT_WORKERS, 1, 128))


def _metric_batches(
    names: Sequence[str], dims: Mapping[str, set[str]]
) -> list[list[metrics.VariantKey]]:
    """(endpoint, variant) keys in batches of at most one ``GetMetricData`` call each, an
    endpoint's variants never split across two batches (so each batch decides whole
    endpoints as soon as it returns)."""
    batches: list[list[metrics.VariantKey]] = []
    current: list[metrics.VariantKey] = []
    for name in sorted(names):
        keys = [(name, variant) for variant in sorted(dims.get(name, ()))]
        if current and len(current) + len(keys) > metrics.MAX_QUERIES_PER_CALL:
            batches.append(current)
            current = []
        current += keys
    if current:
        batches.append(current)
    return batches


def _batch_activity(
    read: metrics.InvocationSums,
    region: str,
    keys: Sequence[metrics.VariantKey],
    window_hours: float,
    errors: list[ScanError],
) -> dict[str, Activity | None]:
    by_name: dict[str, list[str]] = {}
    for name, variant in keys:
        by_name.setdefault(name, []).append(variant)
    activity: dict[str, Activity | None] = {}
    for name, variants in by_name.items():
        total = _total(read, region, name, variants, errors)
        activity[name] = (
            None
            if total is None
            else Activity(
                invocations=total, window_hours=window_hours, variants_seen=tuple(variants)
            )
        )
    return activity


def _scan_endpoints(
    aws: Aws,
    region: str,
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    progress: Progress,
    memory: ConfigMemory | None = None,
) -> ScanResult:
    """Endpoints of one region. The independent reads run at once on one pool: the endpoint
    listing (``Search``, or ``ListEndpoints`` + ``GetResources``), ``ListMetrics``, and the
    check of remembered configurations; each ``GetMetricData`` batch, as it returns, starts
    the reads of its idle candidates' instances."""
    result = ScanResult(generated_at=now, regions=[region])
    errors = result.errors
    rules = policy.endpoints
    start = now - timedelta(hours=rules.idle_hours)
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        listing_read = pool.submit(endpoint_search.read_endpoints, aws, region, errors)
        dims_read = pool.submit(metrics.variant_dimensions, aws, region)
        # GetMetricData needs only ListMetrics' answer: its batches start while the endpoint
        # listing still pages (a metric of an endpoint no longer in service is read for
        # nothing, as long as ListMetrics still lists it).
        try:
            dims: dict[str, set[str]] | None = dims_read.result()
        except AWS_ERRORS as exc:
            errors.append(scan_error(exc, region, "ListMetrics"))
            dims = None
        reads: dict[Future[metrics.InvocationSums], list[metrics.VariantKey]] = {}
        if dims is not None:
            reads = {
                pool.submit(metrics.invocation_sums, aws, region, keys, start, now): keys
                for keys in _metric_batches(sorted(dims), dims)
            }
        listing = listing_read.result()
        endpoints = listing.everything
        progress(f"{region}: {len(endpoints)} endpoints in service")
        if not endpoints:
            for read in reads:
                read.cancel()
            return result
        account = aws.account or endpoints[0].account
        configs = (
            memory.region(aws, region, account)
            if memory is not None
            else RegionConfigs(aws, region, None, f"{account}|{region}")
        )
        pool.submit(configs.validate)
        # Endpoints whose tags are unknown (the protect tag could hide there) are never acted on.
        untagged = {e.name for e in listing.untagged}
        by_name = {e.name: e for e in endpoints}
        activity: dict[str, Activity | None] = {}
        described: dict[str, Future[tuple[Variant, ...]]] = {}

        def consider(names: Iterable[str]) -> None:
            for name in names:
                endpoint = by_name.get(name)
                if (
                    endpoint is not None
                    and name not in untagged
                    and is_idle_candidate(endpoint, activity.get(name), rules, now)
                    and rules.selects(name, endpoint.tags)[0]
                ):
                    described[name] = pool.submit(
                        endpoint_search.endpoint_variants,
                        aws,
                        region,
                        configs,
                        name,
                        listing.configs.get(name),
                        listing.live.get(name),
                    )

        if dims is not None:
            silent = [name for name in by_name if name not in dims]
            for name in silent:  # no metric at all in two weeks: no invocations
                activity[name] = Activity(0.0, rules.idle_hours, ())
            consider(silent)
            for done in as_completed(reads):
                keys = [key for key in reads[done] if key[0] in by_name]
                try:
                    batch = _batch_activity(done.result(), region, keys, rules.idle_hours, errors)
                except AWS_ERRORS as exc:
                    errors.append(scan_error(exc, region, "GetMetricData"))
                    batch = dict.fromkeys((name for name, _ in keys), None)
                activity.update(batch)
                consider(batch)
        else:
            activity = dict.fromkeys(by_name, None)
        progress(f"{region}: describing {len(described)} idle candidates")
        details: dict[str, tuple[Variant, ...]] = {}
        for name, future in described.items():
            try:
                details[name] = future.result()
            except AWS_ERRORS as exc:
                operation = getattr(exc, "operation_name", None) or "DescribeEndpoint"
                errors.append(scan_error(exc, region, operation, name))
    configs.remember()

    if timedelta(hours=rules.idle_hours) > LIST_METRICS_HORIZON:
        _recheck_unlisted_variants(aws, region, details, activity, rules.idle_hours, now, errors)

    for endpoint in endpoints:
        variants = details.get(endpoint.name, ())
        enriched = _with_variants(endpoint, variants) if variants else endpoint
        cost = endpoint_hourly_cost(enriched, pricer) if variants else None
        decision = decide_endpoint(enriched, activity.get(endpoint.name), rules, now, cost)
        if endpoint.name in untagged and decision.idle:
            # Without tags the protect tag and the policy's tag filter are unknown.
            decision = replace(
                decision,
                action=Action.KEEP,
                rule="tags-unknown",
                reason=f"no Invocations on any variant for {decision.idle_hours or 0:.1f} h; "
                "tags could not be read, so nothing is done",
            )
        result.decisions.append(decision)
    return result


def _with_variants(endpoint: Resource, variants: tuple[Variant, ...]) -> Resource:
    types = sorted({v.instance_type for v in variants if v.instance_type and v.instance_count})
    if not types:  # scaled to zero: still say what it would run on
        types = sorted({v.instance_type for v in variants if v.instance_type})
    return replace(
        endpoint,
        variants=variants,
        instance_type=", ".join(types) if types else None,
        instance_count=sum(v.instance_count for v in variants),
    )


def _scan_notebooks(
    aws: Aws, region: str, policy: Policy, now: datetime, pricer: Pricer
) -> ScanResult:
    result = ScanResult(generated_at=now, regions=[region])
    listing = tags.list_with_tags(
        aws, region, inventory.list_notebook_instances, tags.NOTEBOOK_TYPE, result.errors
    )
    for notebook in listing.everything:
        cost = notebook_hourly_cost(notebook, pricer)
        result.decisions.append(decide_notebook(notebook, policy.notebooks, cost))
    return result


def scan_region(
    aws: Aws,
    region: str,
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    progress: Progress = _no_progress,
    memory: ConfigMemory | None = None,
) -> ScanResult:
    """Scan one region: endpoints and notebook instances, at the same time."""
    with ThreadPoolExecutor(max_workers=1) as side:
        notebooks = side.submit(_scan_notebooks, aws, region, policy, now, pricer)
        result = _scan_endpoints(aws, region, policy, now, pricer, progress, memory)
        result.extend(notebooks.result())
    return result


def scan(
    aws: Aws,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    pricer: Pricer | None = None,
    progress: Progress = _no_progress,
    configs: ConfigMemory | None = None,
) -> ScanResult:
    """Scan every region in parallel (bounded) and merge the results in region order.

    ``configs`` remembers endpoint configurations across runs (see
    :mod:`sagesaver.aws.endpoint_configs`); the caller saves it."""
    pricer = pricer or Pricer()
    total = ScanResult(generated_at=now, regions=list(regions))
    region_workers = max(1, min(REGION_WORKERS, len(regions)))
    with ThreadPoolExecutor(max_workers=region_workers) as pool:
        results = pool.map(
            lambda r: scan_region(aws, r, policy, now, pricer, progress, configs), regions
        )
        for region_result in results:
            total.extend(region_result)
    return total


ACCOUNT_WORKERS = 4


def scan_accounts(
    aws: Aws,
    accounts: Sequence[str],
    role_name: str,
    regions: Sequence[str],
    policy: Policy,
    now: datetime,
    pricer: Pricer | None = None,
    progress: Progress = _no_progress,
    configs: ConfigMemory | None = None,
) -> ScanResult:
    """Scan every region of every account, assuming ``role_name`` in each (bounded pool).

    An account that cannot be assumed is listed in ``errors`` and the others complete.
    """
    pricer = pricer or Pricer()

    def one(account: str) -> ScanResult:
        try:
            member = aws.assume(account, role_name, regions[0] if regions else None)
        except AWS_ERRORS as exc:
            error = scan_error(exc, "-", "AssumeRole", f"arn:aws:iam::{account}:role/{role_name}")
            return ScanResult(now, list(regions), errors=[replace(error, account=account)])
        part = scan(member, regions, policy, now, pricer, progress, configs)
        part.errors = [replace(e, account=e.account or account) for e in part.errors]
        part.sessions[account] = member
        return part

    total = ScanResult(generated_at=now, regions=list(regions))
    with ThreadPoolExecutor(max_workers=max(1, min(ACCOUNT_WORKERS, len(accounts)))) as pool:
        for part in pool.map(one, accounts):
            total.extend(part)
    return total


def resolve_regions(
    aws: Aws,
    requested: Sequence[str],
    all_regions: bool,
    policy: Policy,
    policy_source: str = "policy",
    regions_source: str = "--region",
) -> list[str]:
    """The regions to scan: ``--region``, else ``--all-regions``, else the policy's, else the
    boto3 default. Raises :class:`InputError` for bad or missing regions (and for a policy
    naming regions that do not exist, which pydantic cannot know)."""
    if requested and all_regions:
        raise InputError("--region and --all-regions cannot be used together")
    offered = aws.known_regions("sagemaker")
    for region in requested:
        try:
            check_region(region)
        except ValueError as exc:
            raise InputError(f"{regions_source}: {exc}") from exc
        if region not in offered:
            raise InputError(f"{regions_source} {region}: SageMaker is not offered in that region")
    topic_region = policy.notify.topic_region
    if topic_region is not None and topic_region not in aws.known_regions("sns"):
        raise InputError(
            f"{policy_source}: notify.sns_topic_arn: {topic_region} is not a region that offers SNS"
        )
    if all_regions:
        try:
            return aws.sagemaker_regions()
        except AWS_ERRORS as exc:
            error = scan_error(exc, aws.default_region or "us-east-1", "DescribeRegions")
            raise InputError(
                f"--all-regions: cannot list the account's regions: {error.message}"
            ) from exc
    for region in policy.regions:
        if region not in offered:
            raise InputError(f"{policy_source}: regions: SageMaker is not offered in {region}")
    chosen = list(requested) or list(policy.regions)
    if not chosen and aws.default_region:
        chosen = [aws.default_region]
    if not chosen:
        raise InputError(
            "no region: pass --region REGION (repeatable) or --all-regions, "
            "or set AWS_DEFAULT_REGION"
        )
    return list(dict.fromkeys(chosen))


@dataclass
class NotifyOutcome:
    """The digest of a run and what became of it."""

    messages: list[Message]
    applied: bool
    topic_arn: str | None
    message_ids: list[str] = field(default_factory=list)
    held: str | None = None  # why an unchanged digest was not sent again


def notify_idle(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    apply: bool,
    notes: Mapping[str, str] | None = None,
    run_id: str | None = None,
    ledger: Ledger | None = None,
    news: bool = False,
) -> NotifyOutcome:
    """Build the idle-resource digest and, with ``apply``, publish it to the SNS topic.

    ``notes`` (by ARN) add what enforcement did or will do. With a ``ledger``, a digest goes
    out only when it tells of something new (``news``: it announces or acts; or a resource is
    idle that the last digest did not name), or as a reminder every ``notify.repeat_hours``.
    With a ``run_id`` too, the digest of a run is sent once: a retried run (a Lambda retry
    keeps its request id) does not send it again. A failed publish is added to
    ``result.errors``; it never raises.
    """
    messages = build_digest(
        result.decisions, result.generated_at, policy.notify.subject_prefix, notes
    )
    topic = policy.notify.sns_topic_arn
    outcome = NotifyOutcome(messages=messages, applied=False, topic_arn=topic)
    if not apply or not messages or topic is None:
        return outcome
    once = f"digest|{run_id}" if run_id and ledger is not None else None
    if once is not None and ledger is not None and ledger.is_claimed(once):
        outcome.applied = True  # sent by an earlier attempt of this same run
        return outcome
    keys = digest_keys(result.decisions)
    # One stream of digests per topic and kind of resource reported (endpoints, Studio apps).
    kinds = ",".join(
        sorted({d.resource.kind.value for d in result.decisions if d.action in REPORTED})
    )
    scope = f"{topic}|{kinds}"
    if ledger is not None:
        due, why = digest_is_due(
            keys, news, ledger.last_digest(scope), policy.notify.repeat_hours, result.generated_at
        )
        if not due:
            outcome.held = why
            return outcome
    try:
        outcome.message_ids = aws_notify.publish(aws, topic, messages)
        outcome.applied = True
    except AWS_ERRORS as exc:
        result.errors.append(scan_error(exc, policy.notify.topic_region or "", "Publish", topic))
        return outcome
    if ledger is not None:
        ledger.record_digest(scope, result.generated_at, keys)
        if once is not None:
            ledger.claim(once, result.generated_at)
    return outcome
