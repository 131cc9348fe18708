"""Long-running and parked compute: what bills while nobody uses it, outside endpoints. Pure.

- A **training job holding a warm pool** (``WarmPoolStatus.Status`` ``Available``) keeps its
  instances, billed, until ``KeepAlivePeriodInSeconds`` runs out after the job ended
  (https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools.html). It is reported with
  its cost; the safe way to release it is ``UpdateTrainingJob`` with
  ``ResourceConfig.KeepAlivePeriodInSeconds`` 0, which terminates the pool and keeps the job
  and its model (https://docs.aws.amazon.com/sagemaker/latest/dg/train-warm-pools-how-to-use.html,
  "Using the low-level SageMaker APIs"). With ``jobs.warm_pools.action: release`` a pool unused
  for ``idle_hours`` since its job ended, selected and not protected, is decided ``release``;
  otherwise it is reported (``notify``) with the recommendation.
- A **training or processing job** running longer than ``jobs.max_running_hours`` is reported
  with its cost. Stopping it could lose work: SageSaver never does.
- A **HyperPod cluster** bills for every instance of its groups until it is deleted; there is
  no idle signal for it here, so it is reported with its cost, for review.
- A **stopped notebook instance** bills for its ML storage volume (``VolumeSizeInGB``) until it is
  deleted; it is reported with that cost. Deleting it deletes the volume: never done.

Training, processing and HyperPod instances are priced from the real-time inference column of
the price table: SageMaker's on-demand price of an ``ml.`` type is the same for training and
hosting in the bundled regions (an estimate; a type not in the table has cost null).
"""

from __future__ import annotations

from datetime import datetime

from sagesaver.core.formats import HOURS_PER_30_DAYS, fmt_hours, hours_between, minute
from sagesaver.core.model import Action, Decision, Recommendation, Resource
from sagesaver.core.policy import JobsPolicy, NotebookPolicy, WarmPoolPolicy

# SageMaker ML storage of notebook instances, USD per GB-month, in the regions of the bundled
# price table (Amazon SageMaker AI pricing page, "ML storage", us-east-1; transcribed by hand).
ML_STORAGE_USD_PER_GB_MONTH = 0.14
HOURS_PER_MONTH = 730.0


def storage_hourly_cost(volume_gb: int | None, region_known: bool) -> float | None:
    """USD per hour of a notebook's ML storage volume; None when the size or region's price is
    unknown."""
    if volume_gb is None or not region_known:
        return None
    return round(volume_gb * ML_STORAGE_USD_PER_GB_MONTH / HOURS_PER_MONTH, 6)


def decide_warm_pool(
    resource: Resource,
    now: datetime,
    hourly_cost: float | None,
    policy: WarmPoolPolicy | None = None,
    expires: datetime | None = None,
) -> Decision:
    """A finished training job whose warm pool still holds (and bills) its instances:
    ``release`` when the policy releases warm pools and this one is selected, unprotected and
    unused for ``idle_hours``; else ``notify``. ``expires``: when the pool would end by itself
    (the job's end plus its ``KeepAlivePeriodInSeconds``), if known."""
    held = round(hours_between(resource.modified, now), 2)
    what = f"{resource.instance_count} x {resource.instance_type}"
    release = (
        "release it with UpdateTrainingJob, ResourceConfig.KeepAlivePeriodInSeconds = 0 "
        "(or reuse it by starting a matching training job)"
    )
    until = f"until {minute(expires)}" if expires else "until its keep-alive period ends"
    reason = f"training ended {fmt_hours(held)} ago; its warm pool keeps {what} billing {until}"
    action, protected = Action.NOTIFY, False
    if policy is None or policy.action == "notify":
        reason += f"; {release}"
    else:
        selected, why = policy.selects(resource.name, resource.tags)
        if not selected:
            reason += f"; not released: {why}; {release}"
        elif policy.is_protected(resource.tags):
            protected = True
            reason += f"; protected by tag {policy.protect_tag}: never released"
        elif held < policy.idle_hours:
            reason += (
                f"; released once unused for {fmt_hours(policy.idle_hours)} "
                "(jobs.warm_pools.idle_hours), if no matching job reuses it first"
            )
        else:
            action = Action.RELEASE
            reason += (
                f"; unused for {fmt_hours(held)} (jobs.warm_pools.idle_hours "
                f"{policy.idle_hours:g}): released with UpdateTrainingJob, "
                "KeepAlivePeriodInSeconds = 0 (the job and its model are kept)"
            )
    return Decision(
        resource=resource,
        action=action,
        rule="warm-pool",
        reason=reason,
        idle=True,
        idle_hours=held,
        hourly_cost=hourly_cost,
        protected=protected,
        recommendations=(
            Recommendation(
                kind="release-warm-pool", evidence=release, hourly_saving_usd=hourly_cost
            ),
        ),
    )


def decide_running_job(
    resource: Resource, policy: JobsPolicy, now: datetime, hourly_cost: float | None
) -> Decision:
    """A training or processing job still running: reported when beyond the limit."""
    running = round(hours_between(resource.created, now), 2)
    what = f"{resource.instance_count} x {resource.instance_type}"
    noun = resource.kind.value.replace("-", " ")
    if running <= policy.max_running_hours:
        return Decision(
            resource, Action.KEEP, "running", f"{noun} running for {fmt_hours(running)}",
            False, None, hourly_cost,
        )  # fmt: skip
    spent = None if hourly_cost is None else hourly_cost * running
    return Decision(
        resource=resource,
        action=Action.NOTIFY,
        rule="long-running",
        reason=f"{noun} running for {fmt_hours(running)} on {what}, beyond "
        f"jobs.max_running_hours {policy.max_running_hours:g}"
        + (f" (about ${spent:,.2f} so far)" if spent is not None else "")
        + "; check it is not stuck (SageSaver never stops a job)",
        idle=False,
        hourly_cost=hourly_cost,
    )


def decide_cluster(resource: Resource, hourly_cost: float | None) -> Decision:
    """A HyperPod cluster: reported with its cost, for review."""
    return Decision(
        resource=resource,
        action=Action.KEEP,
        rule="hyperpod",
        reason=f"HyperPod cluster ({resource.status}) with {resource.instance_count} instances "
        f"({resource.instance_type or 'unknown types'}): they bill until it is deleted; "
        "SageSaver has no idle signal for it, review it",
        idle=False,
        hourly_cost=hourly_cost,
    )


def decide_stopped_notebook(
    decision: Decision,
    volume_gb: int | None,
    policy: NotebookPolicy,
    now: datetime,
    hourly_cost: float | None,
) -> Decision:
    """A stopped notebook instance: its storage volume keeps billing (reported, never acted
    on: deleting the instance deletes the volume)."""
    resource = decision.resource
    stopped = round(hours_between(resource.modified, now), 2)
    monthly = None if hourly_cost is None else hourly_cost * HOURS_PER_30_DAYS
    money = "an unknown amount" if monthly is None else f"${monthly:,.2f} per 30 days"
    size = "its" if volume_gb is None else f"its {volume_gb} GB"
    reason = (
        f"stopped for {fmt_hours(stopped)}: no instance cost, but {size} ML storage volume "
        f"bills {money} until the instance is deleted"
    )
    if decision.protected:
        reason += f"; protected by tag {policy.protect_tag}"
    return Decision(
        resource=resource,
        action=Action.KEEP,
        rule="stopped-storage",
        reason=reason,
        idle=True,
        idle_hours=stopped,
        hourly_cost=hourly_cost,
        protected=decision.protected,
        price_source="unknown" if hourly_cost is None else "bundled",
        price_note=None
        if hourly_cost is not None
        else "ML storage is priced only in the regions the bundled table has figures for",
    )
