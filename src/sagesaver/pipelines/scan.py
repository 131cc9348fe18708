"""One pass of the pipeline: inventory -> activity -> decide, region by region.

Every AWS failure is confined: a failed list affects its region and kind, a failed describe
its endpoint. Failures are collected as :class:`~sagesaver.core.model.ScanError` and the rest of
the run completes. The CLI, the Lambda handler and the demo all call :func:`scan`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sagesaver.aws import endpoint_search, inventory, metrics, tags
from sagesaver.aws.chat import ChannelResult, SecretReader
from sagesaver.aws.endpoint_configs import ConfigMemory, RegionConfigs
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.session import Aws, env_number
from sagesaver.core.channels import ChannelSpec
from sagesaver.core.digest import REPORTED, Message, build_digest, digest_is_due, digest_keys
from sagesaver.core.errors import InputError
from sagesaver.core.formats import plural
from sagesaver.core.model import (
    Activity,
    Decision,
    Resource,
    ScanError,
    ScanResult,
    Variant,
)
from sagesaver.core.owners import by_owner
from sagesaver.core.partitions import one_partition, partition_of, role_arn
from sagesaver.core.policy import Policy, check_region
from sagesaver.core.pricing import Pricer, Quote, currency_of
from sagesaver.core.rules.endpoints import (
    decide_endpoint,
    endpoint_quote,
    is_idle_candidate,
    tags_unknown,
)
from sagesaver.core.rules.notebooks import decide_notebook, notebook_quote
from sagesaver.core.thresholds import below_min_cost
from sagesaver.ledger import Ledger
from sagesaver.ledger.errors import LEDGER_ERRORS, ledger_error
from sagesaver.pipelines import lookback, parked, signals
from sagesaver.pipelines.chat import (
    channels_for,
    delivered,
    delivery_ids,
    publish_once,
    reader_for,
    send_to_channels,
)

# Measured (benchmarks/README.md, make bench): at 25 ms a call, 20,000 endpoints' first scan
# took 31.6 s on 16 threads and 25.0 s on 32; AWS's throttling slows the adaptive retry mode.
DEFAULT_WORKERS = 32
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
    """Threads per region for the reads that fan out (``SAGESAVER_WORKERS``, default 32).

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
    component_errors: list[ScanError] = []
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        listing_read = pool.submit(endpoint_search.read_endpoints, aws, region, errors)
        dims_read = pool.submit(metrics.variant_dimensions, aws, region)
        # Inference components (their traffic counts for their host endpoint before its
        # candidacy is judged) are read alongside, independent of the endpoints' own metrics.
        components_read = pool.submit(
            signals.read_components, aws, region, rules.idle_hours, now, component_errors
        )
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
        progress(f"{region}: {plural(len(endpoints), 'endpoint')} in service")
        if not endpoints:
            for read in reads:
                read.cancel()
            components_read.cancel()
            return result
        account = aws.account or endpoints[0].account
        configs = (
            memory.region(aws, region, account)
            if memory is not None
            else RegionConfigs(aws, region, None, f"{account}|{region}")
        )
        pool.submit(configs.validate)
        # Endpoints whose tags are unknown (the protect tag could hide there) are never acted on,
        # but they are described like the others: an idle one's cost is shown, and one that
        # turns out asynchronous is judged by its own traffic.
        untagged = {e.name for e in listing.untagged}
        by_name = {e.name: e for e in endpoints}
        activity: dict[str, Activity | None] = {}
        described: dict[str, Future[tuple[tuple[Variant, ...], bool]]] = {}
        known: dict[str, tuple[tuple[Variant, ...], bool]] = {}  # answered without a call
        components = components_read.result()

        def consider(batch: dict[str, Activity | None]) -> None:
            """Add the components' traffic to a batch of endpoints' activity, then start the
            reads of the batch's idle candidates: every one, in the policy's selection or not,
            since only its configuration says whether it is asynchronous (and so judged by
            other metrics than Invocations) and what it costs; remembered configurations make
            this free on later runs."""
            signals.add_component_activity(components, batch)
            activity.update(batch)
            for name in batch:
                endpoint = by_name.get(name)
                if endpoint is None or not is_idle_candidate(
                    endpoint, activity.get(name), rules, now
                ):
                    continue
                config_name, live = listing.configs.get(name), listing.live.get(name)
                if config_name and live is not None and configs.ready(config_name):
                    known[name] = endpoint_search.endpoint_variants(
                        aws, region, configs, name, config_name, live
                    )  # remembered: no call, so not worth a thread
                    continue
                described[name] = pool.submit(
                    endpoint_search.endpoint_variants,
                    aws,
                    region,
                    configs,
                    name,
                    config_name,
                    live,
                )

        if dims is not None:
            # No metric at all in two weeks: no invocations.
            consider(
                {name: Activity(0.0, rules.idle_hours, ()) for name in by_name if name not in dims}
            )
            for done in as_completed(reads):
                keys = [key for key in reads[done] if key[0] in by_name]
                try:
                    batch = _batch_activity(done.result(), region, keys, rules.idle_hours, errors)
                except AWS_ERRORS as exc:
                    errors.append(scan_error(exc, region, "GetMetricData"))
                    batch = dict.fromkeys((name for name, _ in keys), None)
                consider(batch)
        else:
            consider(dict.fromkeys(by_name, None))
        errors.extend(component_errors)
        progress(f"{region}: describing {plural(len(described), 'idle candidate')}")
        details = {name: variants for name, (variants, _) in known.items()}
        asynchronous = {name for name, (_, is_async) in known.items() if is_async}
        for name, future in described.items():
            try:
                details[name], is_async = future.result()
            except AWS_ERRORS as exc:
                operation = getattr(exc, "operation_name", None) or "DescribeEndpoint"
                errors.append(scan_error(exc, region, operation, name))
            else:
                if is_async:
                    asynchronous.add(name)
    # Asynchronous endpoints publish no Invocations: read their own traffic metrics.
    signals.apply_async_activity(aws, region, asynchronous, activity, rules.idle_hours, now, errors)

    if timedelta(hours=rules.idle_hours) > LIST_METRICS_HORIZON:
        _recheck_unlisted_variants(aws, region, details, activity, rules.idle_hours, now, errors)

    for endpoint in endpoints:
        variants = details.get(endpoint.name, ())
        enriched = _with_variants(endpoint, variants) if variants else endpoint
        if endpoint.name in asynchronous:
            enriched = replace(enriched, asynchronous=True)
        if variants:
            quote = endpoint_quote(enriched, pricer)
        else:  # only idle candidates are described (what keeps the call count low)
            quote = Quote(None, currency_of(region), "unknown", "not described: not idle")
        decision = priced(
            decide_endpoint(enriched, activity.get(endpoint.name), rules, now, quote.amount),
            quote,
        )
        if endpoint.name in untagged and decision.idle:
            # Without tags the protect tag and the policy's tag filter are unknown.
            decision = tags_unknown(decision, activity.get(endpoint.name))
        # Components unlisted: unknown only if its configuration could host some.
        result.decisions.append(components.judge_unlisted(decision))
    judged = signals.component_decisions(
        aws, region, components, endpoints, untagged, rules, now, result.errors
    )
    result.decisions = signals.judge_hosts(result.decisions, judged, components.hosts)
    result.decisions += judged
    result.decisions = signals.with_rightsizing(
        aws,
        region,
        result.decisions,
        rules.rightsize,
        pricer,
        now,
        lambda name: endpoint_search.endpoint_variants(
            aws, region, configs, name, listing.configs.get(name), listing.live.get(name)
        )[0],
        _with_variants,
        result.errors,
    )
    configs.remember()
    return result


def priced(decision: Decision, quote: Quote) -> Decision:
    """``decision`` with the currency and the source of its price."""
    return replace(
        decision,
        currency=quote.currency,
        price_source=quote.source,
        price_note=quote.note,
        price_date=quote.date,
    )


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
        quote = notebook_quote(notebook, pricer)
        decision = decide_notebook(notebook, policy.notebooks, quote.amount)
        result.decisions.append(priced(decision, quote))
    return result


def _region_notebooks(
    aws: Aws, region: str, policy: Policy, now: datetime, pricer: Pricer
) -> ScanResult:
    notebooks = _scan_notebooks(aws, region, policy, now, pricer)
    notebooks.decisions = parked.with_notebook_storage(
        aws, region, notebooks.decisions, policy, now, pricer, notebooks.errors
    )
    return notebooks


def scan_region(
    aws: Aws,
    region: str,
    policy: Policy,
    now: datetime,
    pricer: Pricer,
    progress: Progress = _no_progress,
    memory: ConfigMemory | None = None,
) -> ScanResult:
    """Scan one region: endpoints (and inference components), notebook instances (with the
    storage of stopped ones), warm pools, long-running jobs and HyperPod clusters; the
    notebooks and the parked compute are read while the endpoints are."""
    with ThreadPoolExecutor(max_workers=2) as side:
        notebooks = side.submit(_region_notebooks, aws, region, policy, now, pricer)
        parked_read = side.submit(parked.scan_parked, aws, region, policy, now, pricer)
        result = _scan_endpoints(aws, region, policy, now, pricer, progress, memory)
        result.decisions = lookback.with_idle_since(
            aws, region, result.decisions, now, workers(), memory
        )
        result.extend(notebooks.result())
        result.extend(parked_read.result())
    result.decisions = [below_min_cost(d, policy.min_hourly_cost) for d in result.decisions]
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
            partition = partition_of(regions[0]) if regions else aws.partition()
            role = role_arn(partition, account, role_name)
            error = scan_error(exc, "-", "AssumeRole", role)
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
    topic = policy.notify.topic_region
    one_partition(
        {
            regions_source: requested,
            f"{policy_source}: regions": [] if requested else policy.regions,
            f"{policy_source}: notify.sns_topic_arn": [topic] if topic else [],
        }
    )
    topic_region = policy.notify.topic_region
    if topic_region is not None and topic_region not in aws.known_regions("sns"):
        raise InputError(
            f"{policy_source}: notify.sns_topic_arn: {topic_region} is not a region that offers SNS"
        )
    if all_regions:
        try:
            found = aws.sagemaker_regions()
        except AWS_ERRORS as exc:
            error = scan_error(exc, aws.default_region or "-", "DescribeRegions")
            raise InputError(
                f"--all-regions: cannot list the account's regions: {error.message}"
            ) from exc
        one_partition(
            {
                "--all-regions": found,
                f"{policy_source}: notify.sns_topic_arn": [topic] if topic else [],
            }
        )
        return found
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
class OwnerDigest:
    """The digest of one owner (a value of ``notify.owner_tag``) and what became of it."""

    owner: str
    messages: list[Message]
    applied: bool = False
    message_ids: list[str] = field(default_factory=list)
    held: str | None = None


@dataclass
class NotifyOutcome:
    """The digest of a run and what became of it."""

    messages: list[Message]
    applied: bool
    topic_arn: str | None
    message_ids: list[str] = field(default_factory=list)
    held: str | None = None  # why an unchanged digest was not sent again
    owners: list[OwnerDigest] = field(default_factory=list)
    channels: list[ChannelResult] = field(default_factory=list)  # every digest's, admin first


@dataclass
class _Stream:
    """One stream of digests on the topic and its channels: the admin's, or one owner's."""

    scope: str  # what the ledger remembers the last digest under
    once: str | None  # the claim that keeps a retried run from sending it twice
    keys: list[str]
    news: bool
    messages: list[Message]
    attributes: dict[str, str] | None
    channels: list[ChannelSpec] = field(default_factory=list)


def _send(
    aws: Aws,
    topic: str | None,
    stream: _Stream,
    policy: Policy,
    result: ScanResult,
    ledger: Ledger | None,
    outcome: NotifyOutcome,
    reader: SecretReader,
) -> tuple[bool, list[str], str | None]:
    """Send one stream's digest when it is due, to the topic and the stream's chat channels:
    (delivered, message ids, why it was held). Delivered: pipelines/chat.delivered."""
    if stream.once is not None and ledger is not None and ledger.is_claimed(stream.once):
        return True, [], None  # sent by an earlier attempt of this same run
    if ledger is not None:
        due, why = digest_is_due(
            stream.keys,
            stream.news,
            ledger.last_digest(stream.scope),
            policy.notify.repeat_hours,
            result.generated_at,
        )
        if not due:
            return False, [], why
    topic_ok: bool | None = None
    ids: list[str] = []
    if topic is not None:
        topic_ok, ids = publish_once(
            aws, topic, stream.messages, stream.attributes, stream.once, ledger, result
        )
    chats = send_to_channels(
        reader,
        stream.channels,
        stream.messages,
        result.generated_at,
        result.errors,
        stream.once,
        ledger,
    )
    outcome.channels += chats
    ids += delivery_ids(chats)
    if not delivered(topic_ok, chats):
        return False, ids, None
    if ledger is not None:
        try:
            ledger.record_digest(stream.scope, result.generated_at, stream.keys)
            if stream.once is not None:
                ledger.claim(stream.once, result.generated_at)
        except LEDGER_ERRORS as exc:  # it was sent all the same: said, and the run goes on
            result.errors.append(ledger_error(exc, ledger.location, "the digest it sent"))
    return True, ids, None


def _kinds(decisions: Sequence[Decision]) -> str:
    return ",".join(sorted({d.resource.kind.value for d in decisions if d.action in REPORTED}))


# The errors that leave a whole account (or one of its regions) unread, named in the digest:
# the role not assumed, and an organisation run's item that failed after its retries (its
# message says why).
UNREAD_OPERATIONS = ("AssumeRole", "ListAccounts", "PlanItem")


def _unread(error: ScanError) -> str:
    """``333333333333: AssumeRole AccessDenied``, ``111111111111 eu-west-1: PlanItem ...``."""
    where = error.account if error.region == "-" else f"{error.account} {error.region}"
    why = f"{error.operation} {error.code or ''}".rstrip()
    return f"{where}: {why}" + (
        f" ({error.message[:200]})" if error.operation == "PlanItem" else ""
    )


def notify_idle(
    aws: Aws,
    result: ScanResult,
    policy: Policy,
    apply: bool,
    notes: Mapping[str, str] | None = None,
    run_id: str | None = None,
    ledger: Ledger | None = None,
    news: bool = False,
    news_arns: Collection[str] | None = None,
) -> NotifyOutcome:
    """Build the idle-resource digest and, with ``apply``, publish it to the SNS topic and
    post it to the chat channels (``notify.channels``: pipelines/chat; an owner's digest to
    the channels with that ``owner``).

    ``notes`` (by ARN) add what enforcement did or will do. With a ledger, a digest goes
    out only when it tells of something new (``news``: it announces or acts; or a resource is
    idle that the last digest did not name), or as a reminder every ``notify.repeat_hours``.
    With a ``run_id`` too, the digest of a run is sent once: a retried run (a Lambda retry
    keeps its request id) does not send it again. A failed publish is added to
    ``result.errors``; it never raises.

    With ``notify.owner_tag``, each owner (a value of that tag) also gets a digest naming only
    their resources, published with the message attribute ``owner`` (and ``digest``: ``owner``;
    the admin digest carries ``digest``: ``admin``), under the same rules, kept per owner: an
    owner's digest is news when one of their resources is in ``news_arns`` (the resources
    announced or acted on; all of them count as news for every owner when it is None).
    """
    prefix = policy.notify.subject_prefix
    unread = [_unread(e) for e in result.errors if e.account and e.operation in UNREAD_OPERATIONS]
    messages = build_digest(result.decisions, result.generated_at, prefix, notes, unread)
    topic = policy.notify.sns_topic_arn
    outcome = NotifyOutcome(messages=messages, applied=False, topic_arn=topic)
    owner_tag = policy.notify.owner_tag
    groups = by_owner(result.decisions, owner_tag) if owner_tag else {}
    outcome.owners = [
        OwnerDigest(
            owner, build_digest(chosen, result.generated_at, f"{prefix} for {owner}", notes)
        )
        for owner, chosen in groups.items()
    ]
    if not apply or not messages or not policy.notify.can_announce:
        return outcome
    with_ledger = run_id is not None and ledger is not None
    reader = reader_for(aws, policy)
    # One stream of digests per topic (or chat, without one) and kind of resource reported.
    where = topic or "chat"
    admin = _Stream(
        scope=f"{where}|{_kinds(result.decisions)}",
        once=f"digest|{run_id}" if with_ledger else None,
        keys=digest_keys(result.decisions),
        news=news,
        messages=messages,
        attributes={"digest": "admin"} if owner_tag else None,
        channels=channels_for(policy, None),
    )
    outcome.applied, outcome.message_ids, outcome.held = _send(
        aws, topic, admin, policy, result, ledger, outcome, reader
    )
    for digest in outcome.owners:
        chosen = groups[digest.owner]
        owner_news = news if news_arns is None else any(d.resource.arn in news_arns for d in chosen)
        stream = _Stream(
            scope=f"{where}|{_kinds(chosen)}|owner={digest.owner}",
            once=f"digest|{run_id}|owner={digest.owner}" if with_ledger else None,
            keys=digest_keys(chosen),
            news=owner_news,
            messages=digest.messages,
            attributes={"digest": "owner", "owner": digest.owner},
            channels=channels_for(policy, digest.owner),
        )
        if topic is None and not stream.channels:
            continue  # nowhere to send this owner's digest
        digest.applied, digest.message_ids, digest.held = _send(
            aws, topic, stream, policy, result, ledger, outcome, reader
        )
    # A required channel of an owner that failed holds back every act, as the admin's does.
    if any(r.channel.required and not r.ok for r in outcome.channels):
        outcome.applied = False
    return outcome
