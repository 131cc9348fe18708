"""The cheaper parks: an endpoint kept, its instances (or its inference components' copies)
taken to 0 at a schedule's stop and put back before its start, where AWS allows it
(:mod:`sagesaver.aws.scaling` cites what it allows).

- **instances**: an asynchronous endpoint whose every instance variant has a scalable target:
  each target's minimum goes to 0 (scale-out suspended), then each variant's desired count
  (``UpdateEndpointWeightsAndCapacities``). Without a target, or when AWS refuses, the caller
  backs it up and deletes it as before, and says why.
- **copies**: an endpoint hosting inference components whose configuration lets its instances
  go to 0 (every variant's ``ManagedInstanceScaling`` enabled with ``MinInstanceCount`` 0):
  each component's copies go to 0 (its scalable target's minimum too). Any other host stays
  up, and the run says why: copies at 0 on instances that stay would save nothing.

What was there before (each target's bounds and suspended state, each variant's desired count,
each component's copies) is kept in the ledger as a snapshot (a backup named
``<endpoint>:scaled``, never chosen by ``sagesaver restore``), named by the ``park`` entry; the
unpark puts exactly that back and waits until all is ``InService`` with its counts. The park's
last-moment guard runs before anything is written and again immediately before the first
change; a lease in the ledger keeps two runs from acting at once, and a run that died after
sending the change is resolved by the next one (:func:`resolve_scaled`).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sagesaver.aws import inference_components, scaling
from sagesaver.aws.errors import AWS_ERRORS, scan_error
from sagesaver.aws.metrics import UnreadableMetrics
from sagesaver.aws.session import Aws
from sagesaver.core.formats import iso
from sagesaver.core.grace import Step
from sagesaver.core.model import Resource
from sagesaver.core.records import BACKED_UP, DELETE_SENT, RELEASED, Backup, Entry, Lease, Outcome
from sagesaver.ledger import Ledger
from sagesaver.ledger.errors import LEDGER_ERRORS
from sagesaver.pipelines.acts import LEASE, Check, RunContext, lease_key, record_done

INSTANCES, COPIES, DELETE, KEEP = "instances", "copies", "delete", "keep"
SNAPSHOT_SUFFIX = ":scaled"  # no endpoint name has a ':'
SNAPSHOT_KEY = "scaled_park"
LEASE_KIND = "endpoint-scaling"  # not "endpoint": the idle run's recovery leaves it alone
POLL_SECONDS = 15.0


def snapshot_name(endpoint: str) -> str:
    """The ledger name of an endpoint's scaling snapshot."""
    return f"{endpoint}{SNAPSHOT_SUFFIX}"


def is_snapshot(backup: Backup) -> bool:
    """A scaled park's snapshot, not an endpoint's backup."""
    return SNAPSHOT_KEY in backup.document


@dataclass(frozen=True)
class Means:
    """How an endpoint is parked (:data:`INSTANCES`, :data:`COPIES`, :data:`DELETE` or
    :data:`KEEP`), why, and what it changes: each variant's desired count, each component's
    copies, and the scalable targets found (by resource id)."""

    kind: str
    why: str = ""
    variants: dict[str, int] = field(default_factory=dict)
    components: dict[str, int] = field(default_factory=dict)
    targets: dict[str, scaling.Bounds] = field(default_factory=dict)


def _zero_instances(config: dict[str, Any]) -> str:
    """ "" when every variant of the configuration lets its instances go to 0; else why not."""
    for variant in config.get("ProductionVariants", []):
        managed = variant.get("ManagedInstanceScaling") or {}
        name = variant.get("VariantName", "?")
        if managed.get("Status") != "ENABLED":
            return f"variant {name} has no managed instance scaling"
        if int(managed.get("MinInstanceCount", 1)) != 0:
            return f"variant {name} keeps MinInstanceCount {managed.get('MinInstanceCount', 1)}"
    return ""


def choose_means(aws: Aws, resource: Resource, described: dict[str, Any]) -> Means:
    """The cheapest safe way to park ``resource`` (``described``: its DescribeEndpoint
    answer), from reads only. Raises on a failed read of its targets or copies."""
    region, name = resource.region, resource.name
    try:
        hosted = inference_components.hosted_components(aws, region, name)
    except AWS_ERRORS as exc:
        error = scan_error(exc, region, "ListInferenceComponents", name)
        return Means(
            KEEP,
            f"its inference components could not be listed ({error.code}): kept up, since "
            "parking would lose any it hosts",
        )
    if hosted:
        listed = ", ".join(sorted(hosted))
        config = scaling.configuration(aws, region, str(described["EndpointConfigName"]))
        why_not = _zero_instances(config)
        if why_not:
            return Means(
                KEEP,
                f"it hosts inference components ({listed}) and {why_not}: its instances "
                "would stay up with no copies on them, saving nothing; kept up (a "
                "configuration with MinInstanceCount 0 lets it park by its copies)",
            )
        copies = {c: scaling.component_now(aws, region, c).desired for c in sorted(hosted)}
        ids = [scaling.component_resource(c) for c in copies]
        found = scaling.targets(aws, region, ids, scaling.COPIES_DIMENSION)
        why = f"it hosts inference components ({listed}) whose instances may go to 0"
        return Means(COPIES, why, components=copies, targets=found)
    if not resource.asynchronous:
        return Means(DELETE)
    now = scaling.endpoint_now(aws, region, name)
    if not now.desired:
        return Means(DELETE, "it has no instance variant to take to 0")
    by_id = {scaling.variant_resource(name, v): v for v in now.desired}
    found = scaling.targets(aws, region, by_id, scaling.VARIANT_DIMENSION)
    missing = sorted(v for rid, v in by_id.items() if rid not in found)
    if missing:
        return Means(
            DELETE,
            f"asynchronous, but variant {', '.join(missing)} has no scalable target to take "
            "to 0, so it is backed up and deleted instead",
        )
    why = "asynchronous: its instances go to 0, its requests wait in its queue"
    return Means(INSTANCES, why, variants=dict(now.desired), targets=found)


@dataclass(frozen=True)
class Scaled:
    """What a scaled park did: its typed outcome and text, its snapshot, and, when AWS
    refused the change (everything put back), why (the caller may park it otherwise)."""

    status: Outcome
    outcome: str
    snapshot: str | None = None
    refused: str | None = None


def _document(resource: Resource, described: dict[str, Any], means: Means) -> dict[str, Any]:
    config = str(described.get("EndpointConfigName", ""))
    return {
        SNAPSHOT_KEY: {
            "means": means.kind,
            "endpoint": resource.name,
            "created": iso(described["CreationTime"]),
            "config": config,
            "variants": dict(means.variants),
            "components": dict(means.components),
            "targets": [b.as_document() for _, b in sorted(means.targets.items())],
        },
        # what the park's "changed since its last unpark" check reads
        "endpoint": {"EndpointName": resource.name, "EndpointConfigName": config},
    }


def _apply_park(aws: Aws, region: str, name: str, means: Means, done: list[str]) -> None:
    """The park's changes, each appended to ``done`` once sent."""
    for bounds in means.targets.values():
        scaling.register(aws, region, scaling.parked_bounds(bounds))
        done.append(f"target {bounds.resource_id}")
    if means.kind == INSTANCES:
        scaling.set_instances(aws, region, name, {v: 0 for v in means.variants})
        done.append("instances")
    for component in means.components:
        scaling.set_copies(aws, region, component, 0)
        done.append(f"copies {component}")


def _undo(aws: Aws, region: str, name: str, means: Means, done: list[str]) -> str:
    """Put back what a refused park changed; "" when all of it is back, else what is not."""
    left = []
    for bounds in means.targets.values():
        if f"target {bounds.resource_id}" in done:
            try:
                scaling.register(aws, region, bounds)
            except AWS_ERRORS as exc:
                left.append(f"{bounds.resource_id}: {exc}")
    if "instances" in done:
        try:
            scaling.set_instances(aws, region, name, means.variants)
        except AWS_ERRORS as exc:
            left.append(f"instances: {exc}")
    for component, copies in means.components.items():
        if f"copies {component}" in done:
            try:
                scaling.set_copies(aws, region, component, copies)
            except AWS_ERRORS as exc:
                left.append(f"{component}: {exc}")
    return "; ".join(left)


def _said(means: Means) -> str:
    if means.kind == INSTANCES:
        counts = ", ".join(f"{v} {n}" for v, n in sorted(means.variants.items()))
        return f"instances taken to 0 (were {counts}), scale-out suspended"
    copies = ", ".join(f"{c} {n}" for c, n in sorted(means.components.items()))
    return f"inference component copies taken to 0 (were {copies}), the instances released"


def park_scaled(aws: Aws, step: Step, ctx: RunContext, means: Means, check: Check) -> Scaled:
    """Guard, lease, snapshot, guard again at the last moment, take to 0, record. Raises on a
    failed read before any change (nothing was changed)."""
    resource = step.decision.resource
    region, name = resource.region, resource.name
    guarded, described, _ = check(aws, resource, ctx)
    if not guarded.act:
        return Scaled(Outcome.SKIPPED, f"kept up: {guarded.reason}")
    created = described["CreationTime"]
    key = lease_key(resource, created, f"park-{means.kind}")
    subject = {
        "kind": LEASE_KIND,
        "account": resource.account,
        "region": region,
        "name": name,
        "arn": resource.arn,
        "created": iso(created),
        "action": "park",
        "rule": step.decision.rule,
        "means": means.kind,
    }
    if not ctx.ledger.take_lease(key, ctx.run_id, ctx.now, ctx.now + LEASE, subject):
        return Scaled(Outcome.SKIPPED, "kept up: another run is acting on it")
    snapshot_id = f"{name}-scaled-{ctx.now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    try:
        document = _document(resource, described, means)
        ctx.ledger.save_backup(
            Backup(snapshot_id, ctx.now, resource.account, region, snapshot_name(name), document)
        )
        ctx.ledger.advance_lease(key, ctx.run_id, BACKED_UP, snapshot_id)
        guarded, _, _ = check(aws, resource, ctx)  # the last moment
        if not guarded.act:
            _give_back(ctx.ledger, key, ctx.run_id, snapshot_id)
            return Scaled(Outcome.SKIPPED, f"kept up: {guarded.reason}")
        ctx.ledger.advance_lease(key, ctx.run_id, DELETE_SENT, snapshot_id)
    except (*AWS_ERRORS, *LEDGER_ERRORS, UnreadableMetrics):
        with contextlib.suppress(*LEDGER_ERRORS):
            _give_back(ctx.ledger, key, ctx.run_id, snapshot_id)
        raise
    done: list[str] = []
    try:
        _apply_park(aws, region, name, means, done)
    except AWS_ERRORS as exc:
        refused = scan_error(exc, region, "park", name)
        left = _undo(aws, region, name, means, done)
        with contextlib.suppress(*LEDGER_ERRORS):
            _give_back(ctx.ledger, key, ctx.run_id, snapshot_id)
        message = f"AWS refused it ({refused.code}: {refused.message})"
        if left:  # not all put back: say so, and let no other means act on it
            return Scaled(Outcome.FAILED, f"failed: {message}; NOT put back: {left}", refused=None)
        return Scaled(Outcome.FAILED, f"not taken to 0: {message}", refused=message)
    outcome = record_done(ctx, step, key, f"parked: {_said(means)}", snapshot_id)
    return Scaled(Outcome.DONE, outcome, snapshot_id)


def _give_back(ledger: Ledger, key: str, holder: str, snapshot_id: str) -> None:
    ledger.advance_lease(key, holder, RELEASED)
    ledger.drop_backup(snapshot_id)


# --- unpark ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Back:
    """What an unpark of a scaled park found: ``back`` (all InService with its counts),
    ``coming`` (put back, not yet there: the next run checks again) or ``failed``."""

    state: str
    message: str


def _put_back(
    aws: Aws, region: str, saved: dict[str, Any], now: scaling.EndpointNow, targets: bool
) -> bool:
    """Set back the counts that differ from the snapshot (with ``targets``, its scalable
    targets too); True when one could not be yet (its endpoint or component Updating: AWS
    takes no other update then)."""
    name = str(saved["endpoint"])
    if targets:
        for document in saved.get("targets", []):
            scaling.register(aws, region, scaling.Bounds.from_document(document))
    pending = False
    variants = {str(v): int(n) for v, n in (saved.get("variants") or {}).items()}
    if any(now.desired.get(v) != n for v, n in variants.items()):
        if now.status == "Updating":
            pending = True
        else:
            scaling.set_instances(aws, region, name, variants)
    for component, copies in (saved.get("components") or {}).items():
        state = scaling.component_now(aws, region, component)
        if state.desired == int(copies):
            continue
        if state.status == "Updating":
            pending = True
        else:
            scaling.set_copies(aws, region, component, int(copies))
    return pending


def _there(aws: Aws, region: str, saved: dict[str, Any]) -> str:
    """ "" when the endpoint and its components are InService with their counts; else what
    is still on its way."""
    name = str(saved["endpoint"])
    now = scaling.endpoint_now(aws, region, name)
    if now.status != "InService":
        return f"{name} is {now.status}"
    for variant, count in (saved.get("variants") or {}).items():
        if now.current.get(variant) != int(count):
            return f"variant {variant} runs {now.current.get(variant, 0)} of {count} instances"
    for component, copies in (saved.get("components") or {}).items():
        state = scaling.component_now(aws, region, component)
        if state.status != "InService" or state.current != int(copies):
            return f"{component} is {state.status} with {state.current} of {copies} copies"
    return ""


def unpark_scaled(
    aws: Aws,
    ledger: Ledger,
    backup: Backup,
    wait_minutes: float,
    sleep: Callable[[float], None] = time.sleep,
    protected: Callable[[dict[str, str]], bool] | None = None,
) -> Back:
    """Put back what the snapshot ``backup`` holds (checked first: its digest), on that very
    endpoint only, then wait up to ``wait_minutes`` for it all to be InService with its
    counts. An endpoint someone protected while it was parked (``protected`` says so of its
    tags) is not touched: the row says so, and how to bring it back. Raises
    :class:`~sagesaver.core.sealing.BackupRefused` when the snapshot does not verify, and AWS
    errors (the next run tries again)."""
    opened = ledger.open_backup(backup, decrypt=True)
    saved: dict[str, Any] = opened.document[SNAPSHOT_KEY]
    region, name = backup.region, str(saved["endpoint"])
    try:
        now = scaling.endpoint_now(aws, region, name)
    except AWS_ERRORS as exc:
        error = scan_error(exc, region, "DescribeEndpoint", name)
        if error.code not in ("ValidationException", "ResourceNotFound"):
            raise
        return Back("failed", f"endpoint {name} is gone: its instances cannot be put back")
    if iso(now.created) != saved["created"]:
        return Back(
            "failed",
            f"another endpoint named {name} exists (created {iso(now.created)}): the scaling "
            "of the one parked is not put on it",
        )
    if protected is not None and now.arn and protected(scaling.endpoint_tags(aws, region, now.arn)):
        return Back(
            "failed",
            f"protected while it was parked: SageSaver does not touch it, so its instances "
            f"stay at 0 ({_counts(saved)} when parked); remove the protect tag for the next "
            "run to bring it back, or scale it yourself",
        )
    # Counted, not timed: every 15 s on AWS, as restore's waiter polls. What is still
    # Updating from the park (AWS takes no other update then) is set back once it is over.
    pending, waiting = True, f"{name} is {now.status}"
    for attempt in range(int(max(0.0, wait_minutes) * 60 // 15) + 1):
        if attempt:
            sleep(POLL_SECONDS)
        if pending:
            if attempt:
                now = scaling.endpoint_now(aws, region, name)
            pending = _put_back(aws, region, saved, now, targets=attempt == 0)
        waiting = _there(aws, region, saved)
        if not waiting and not pending:
            return Back("back", f"back (InService), {_counts(saved)} put back from {backup.id}")
    return Back("coming", f"coming back ({waiting}): the next run checks it again")


def _counts(saved: dict[str, Any]) -> str:
    if saved.get("means") == COPIES:
        copies = saved.get("components") or {}
        return "copies " + ", ".join(f"{c} {n}" for c, n in sorted(copies.items()))
    variants = saved.get("variants") or {}
    return "instances " + ", ".join(f"{v} {n}" for v, n in sorted(variants.items()))


# --- a run that died after sending the change ------------------------------------------------


def resolve_scaled(ledger: Ledger, lease: Lease, ctx: RunContext) -> Entry | None:
    """An expired lease of a scaled park. Sent (or perhaps sent): the park is recorded
    (confirmed, no price: no saving is claimed) with its snapshot, so the unpark puts it all
    back, whatever part was done. Not sent: the lease is given back, its snapshot forgotten."""
    subject = lease.subject
    if lease.state != DELETE_SENT or lease.backup_id is None:
        ledger.advance_lease(lease.key, ctx.run_id, RELEASED)
        if lease.backup_id is not None:
            ledger.drop_backup(lease.backup_id)
        return None
    return Entry(
        at=ctx.now,
        account=subject["account"],
        region=subject["region"],
        kind="endpoint",
        resource=subject["name"],
        action="park",
        rule=subject.get("rule", ""),
        reason="a run stopped after taking it to 0",
        hourly_cost=None,
        dry_run=False,
        outcome=f"parked (confirmed by a later run): {subject.get('means')} taken to 0 or on "
        "their way; the unpark puts back its snapshot",
        backup_ref=lease.backup_id,
        status=Outcome.CONFIRMED,
    )
